# HMAC-SHA256 (RFC 2104) for MicroPython and CPython.
# Neither the ESP32 firmware nor the unix port ships `hmac`, so the locker carries its own.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

import hashlib

_BLOCK = const(64)
_IPAD = bytes(0x36 for _ in range(64))
_OPAD = bytes(0x5C for _ in range(64))


def _xor(key, pad):
    return bytes(k ^ p for k, p in zip(key, pad))


def hmac_sha256(key, msg, *more):
    """Return the 32-byte HMAC-SHA256 of msg (then each of more, concatenated) under key.

    Taking the message in parts saves copying a large body just to prefix it."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(msg)
    for part in more:
        inner.update(part)
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Constant-time comparison: a wrong tag must not reveal how many bytes matched."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
