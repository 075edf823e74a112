"""The user's platform token, sealed for the UWS worker alone.

django-uws shows every job's parameters to every authenticated user of the gateway, so the token
the worker checks the site policy with never travels in clear: the user side encrypts it to the
worker's public key (RSA-OAEP wrapping an AES-256-GCM key) with the digest of the job's request as
associated data, so a sealed token copied into another request does not open.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AuthError, BadInput, Unreachable

PREFIX = "esap-sealed-v1:"
PUBLIC_KEY_ENV = "ESAP_UWS_WORKER_KEY"  # user side: the worker's public key (a PEM file or an http(s) URL)
PRIVATE_KEY_ENV = "ESAP_UWS_PRIVATE_KEY"  # worker side: its private key (a PEM file, mode 0600)
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(token: str, public_key_pem: bytes, binding: bytes) -> str:
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadInput("the worker's key is not an RSA public key", field=PUBLIC_KEY_ENV)
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    sealed = AESGCM(content_key).encrypt(nonce, token.encode(), binding)
    return PREFIX + ".".join(_b64(part) for part in (key.encrypt(content_key, _OAEP), nonce, sealed))


def unseal(sealed: str, private_key_pem: bytes, binding: bytes) -> str:
    if not sealed.startswith(PREFIX):
        raise AuthError("the platform token is not sealed for this worker (submit with esap uws submit)")
    try:
        wrapped, nonce, body = (_unb64(part) for part in sealed[len(PREFIX):].split("."))
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key")
        return AESGCM(key.decrypt(wrapped, _OAEP)).decrypt(nonce, body, binding).decode()
    except (ValueError, InvalidTag):
        raise AuthError("the sealed platform token does not open for this job's request "
                        "(sealed for another worker or another request)") from None


def worker_public_key(where: str | None) -> bytes:
    """The public key the user side seals with: a PEM file, or an http(s) URL serving one."""
    if not where:
        raise BadInput(f"no UWS worker key: set ${PUBLIC_KEY_ENV} (a PEM file or URL the platform publishes)",
                       field=PUBLIC_KEY_ENV)
    if urlsplit(where).scheme in ("http", "https"):
        try:
            reply = requests.get(where, timeout=30)
        except requests.RequestException as exc:
            raise Unreachable(f"the UWS worker key at {where} unreachable ({type(exc).__name__})") from None
        if reply.status_code != 200:
            raise Unreachable(f"the UWS worker key at {where}: HTTP {reply.status_code}")
        return reply.content
    path = Path(where)
    if not path.is_file():
        raise BadInput("no such file", source=where, field=PUBLIC_KEY_ENV)
    return path.read_bytes()


def worker_private_key() -> bytes:
    where = os.environ.get(PRIVATE_KEY_ENV)
    if not where or not Path(where).is_file():
        raise AuthError(f"the worker has no private key (${PRIVATE_KEY_ENV})")
    return Path(where).read_bytes()


def new_key_pair(private_path: Path, public_path: Path) -> None:
    """A worker's key pair: the private key readable by its owner only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    public_path.chmod(0o644)
