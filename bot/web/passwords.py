"""Password hashes for `web.users`: scrypt (stdlib), salted, with the cost parameters kept in the hash line
so that they can be raised later without breaking old lines: N=2^17 (OWASP's minimum for scrypt), r=8, p=1.

Its own module, free of the web framework: `carebot check-config` and `carebot web hash-password` use it
without loading the desk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_MEM = 2**28  # scrypt needs 128 * r * N bytes: 128 MiB at the default cost


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A line for `web.users`: scrypt$N$r$p$salt$key (base64)."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, line: str) -> bool:
    try:
        scheme, n, r, p, salt, key = line.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def weak_hash(line: str) -> bool:
    """True for a hash line made with less than today's cost: it should be made again."""
    try:
        _scheme, n, r, p, _salt, _key = line.split("$")
        return int(n) < SCRYPT_N or int(r) < SCRYPT_R or int(p) < SCRYPT_P
    except ValueError:
        return True


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEM, dklen=_KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
