"""API keys: who is calling, as an owner id that never is the key itself.

Keys are compared in constant time against every configured key (no early exit), and a caller
is known by a digest of its key, so job records and logs never hold a key. Without keys every
caller is the same owner (the server then binds loopback only, see :class:`ServerConfig`).
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import APIError

#: The one owner when the server has no keys.
ANONYMOUS = "anonymous"


class KeyRing:
    def __init__(self, keys: tuple[str, ...]):
        self._digests = tuple(_digest(key) for key in keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def owner(self, token: str | None) -> str:
        """The owner id for a bearer token, or a 401."""
        if not self._digests:
            return ANONYMOUS
        if not token or not token.strip():
            raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        given = _digest(token.strip())
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(given, digest)
        if not matched:
            raise _unauthorized("invalid API key")
        return "key-" + given.hex()[:24]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


__all__ = ["ANONYMOUS", "KeyRing"]
