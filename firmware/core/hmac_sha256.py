# HMAC-SHA256 (RFC 2104) for MicroPython and CPython.
# Neither the ESP32 firmware nor the unix port ships `hmac`, so the locker carries its own.
import hashlib

from micropython import const

_BLOCK = const(64)
_IPAD = const(0x36)
_OPAD = const(0x5C)


def _padded(key, pad, out=None):
    """key XOR pad, padded to the block: filled in place (no per-byte temporaries, which
    cost ~5 KB of heap per HMAC on MicroPython)."""
    if out is None:
        out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ pad
    return out


# One-shot HMACs share this block: hashlib copies it when a hash object is made, so it is
# free again at once (nothing here awaits, so calls never interleave). Saves two 64-byte
# buffers and an object per HMAC: the verifier runs up to 2 * (2k + 1) + 1 per attempt.
_PAD = bytearray(_BLOCK)


class HmacSha256:
    """Incremental HMAC-SHA256: lets the store MAC a snapshot while streaming it to flash
    instead of building it in the small heap first."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        self._outer_key = _padded(key, _OPAD)
        self._inner = hashlib.sha256(_padded(key, _IPAD))

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        outer = hashlib.sha256(self._outer_key)
        outer.update(self._inner.digest())
        return outer.digest()


def hmac_sha256(key, msg, *more):
    """Return the 32-byte HMAC-SHA256 of msg (then each of more, concatenated) under key.

    Taking the message in parts saves copying a large body just to prefix it. Allocates
    two hash objects and two digests, nothing else (RFC 2104 section 2)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    inner = hashlib.sha256(_padded(key, _IPAD, _PAD))
    inner.update(msg)
    for part in more:
        inner.update(part)
    outer = hashlib.sha256(_padded(key, _OPAD, _PAD))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b, n=-1):
    """Constant-time comparison: a wrong tag must not reveal how many bytes matched.

    n >= 0 compares the first n bytes of each (False if either is shorter): a truncated
    tag against the whole digest, without slicing the digest first."""
    if n < 0:
        if len(a) != len(b):
            return False
        n = len(a)
    elif len(a) < n or len(b) < n:
        return False
    diff = 0
    for i in range(n):              # indexing, not zip(): no iterator objects on the heap
        diff |= a[i] ^ b[i]
    return diff == 0
