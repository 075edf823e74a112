"""Checksums of transferred files: adler32 (the data lake's), sha256 and md5; RFC 3230 Digest headers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from dataclasses import dataclass

from ..errors import BadInput

ALGORITHMS = ("adler32", "sha256", "md5")
# RFC 3230 / RFC 5843 names -> ours
_DIGEST_NAMES = {"adler32": "adler32", "sha-256": "sha256", "md5": "md5"}
WANT_DIGEST = "adler32, sha-256;q=0.5, md5;q=0.3"


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # adler32 | sha256 | md5
    value: str  # lower-case hex (adler32: 8 digits)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"

    @classmethod
    def parse(cls, text: str, field: str = "checksum") -> Checksum:
        """`adler32:0a1b2c3d`, `sha256:…`, `md5:…`; a bad one is BadInput naming `field`."""
        algorithm, _, value = text.strip().partition(":")
        algorithm = algorithm.lower().replace("-", "")
        value = value.strip().lower()
        if algorithm not in ALGORITHMS or not value:
            raise BadInput(f"{text!r}: expected ALGORITHM:HEX with ALGORITHM one of {', '.join(ALGORITHMS)}",
                           field=field)
        if algorithm == "adler32":
            value = value.rjust(8, "0")
        try:
            int(value, 16)
        except ValueError:
            raise BadInput(f"{text!r}: the value is not hexadecimal", field=field) from None
        return cls(algorithm, value)


def from_digest_header(header: str | None) -> tuple[Checksum, ...]:
    """`Digest: adler32=0a1b2c3d,sha-256=<base64>` -> checksums (unknown algorithms are skipped)."""
    found = []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        algorithm = _DIGEST_NAMES.get(name.strip().lower())
        if not algorithm or not value:
            continue
        value = value.strip()
        if algorithm == "adler32":
            found.append(Checksum(algorithm, value.lower().rjust(8, "0")))
        else:
            try:
                found.append(Checksum(algorithm, base64.b64decode(value, validate=True).hex()))
            except (binascii.Error, ValueError):
                continue
    return tuple(found)


class Hasher:
    """adler32 always (cheap), plus whichever other algorithm will be compared."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self._adler = 1
        self._others = {a: hashlib.new(a) for a in dict.fromkeys(extra) if a != "adler32"}
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._adler = zlib.adler32(data, self._adler)
        for hasher in self._others.values():
            hasher.update(data)
        self.size += len(data)

    def value(self, algorithm: str) -> Checksum | None:
        if algorithm == "adler32":
            return Checksum("adler32", f"{self._adler:08x}")
        hasher = self._others.get(algorithm)
        return Checksum(algorithm, hasher.hexdigest()) if hasher else None

    def mismatch(self, expected: tuple[Checksum, ...]) -> tuple[Checksum, Checksum] | None:
        """(expected, got) for the first expected checksum this data does not match."""
        for want in expected:
            got = self.value(want.algorithm)
            if got is not None and got.value != want.value:
                return want, got
        return None
