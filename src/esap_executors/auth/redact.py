"""Keep bearer tokens out of anything a user or a log may see."""

from __future__ import annotations

import re

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
# the password of user:password@ in a URL, and query values named like secrets
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/@\s:]*):[^@/\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:access_token|token|password|passwd|secret|client_secret|key)=)[^&#\s]*")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with JWTs, `Bearer x` values and the given secrets replaced by [redacted]."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    text = _JWT.sub("[redacted]", text)
    text = _URL_PASSWORD.sub(r"\1:***@", text)  # as the store engines mask theirs
    text = _SECRET_QUERY.sub(r"\1[redacted]", text)
    return _BEARER.sub(r"\1[redacted]", text)
