# Scoped, expiring credentials the locker checks offline.
# A credential is a public block (who, what, until when) plus a key derived from it:
#   key = HMAC(master, "LKR1/credential" | locker_id | block)
# The operator issues both; the phone keeps the key and sends only the block. The locker
# re-derives the key from its master secret, so it needs no per-courier table, and the
# master secret never leaves the locker and the operator's key store.
import struct

from micropython import const

from core.kdf import LABEL_CREDENTIAL, derive

COURIER = const(1)
TECHNICIAN = const(2)
KINDS = (COURIER, TECHNICIAN)

SCOPE_RECLAIM_ANY = const(1)   # a depot courier may reclaim anyone's expired parcels
SCOPE_AUDIT = const(2)         # may read the audit log (to sync it to the backend)

_HEAD = ">BBIIIB"              # kind flags serial issued_at not_after holder_len
_HEAD_LEN = const(15)
MAX_HOLDER = const(16)
MAX_BLOCK = const(31)          # _HEAD_LEN + MAX_HOLDER: the longest encoded credential
HOLDER_AT = const(15)          # _HEAD_LEN: the holder's offset (its length byte just before)


class CredentialError(ValueError):
    pass


class Credential:
    def __init__(self, kind, holder, serial, issued_at, not_after, flags=0):
        self.kind = kind
        self.holder = bytes(holder)
        self.serial = serial
        self.issued_at = issued_at
        self.not_after = not_after
        self.flags = flags

    def _head(self):
        return struct.pack(_HEAD, self.kind, self.flags, self.serial, self.issued_at,
                           self.not_after, len(self.holder))

    def encode(self):
        return self._head() + self.holder

    def key(self, master, locker_id):
        """HMAC(master, label | 0 | locker_id | encode()): the block MACed in its two parts."""
        return derive(master, LABEL_CREDENTIAL, locker_id, self._head(), self.holder)

    def has_scope(self, flag):
        return bool(self.flags & flag)


def decode(buf, offset=0):
    """Decode a credential block at buf[offset:]; return (credential, next_offset)."""
    end = offset + _HEAD_LEN
    if len(buf) < end:
        raise CredentialError("credential truncated")
    kind, flags, serial, issued, until, hlen = struct.unpack_from(_HEAD, buf, offset)
    if kind not in KINDS:
        raise CredentialError("unknown credential kind")
    if not 1 <= hlen <= MAX_HOLDER or len(buf) < end + hlen:
        raise CredentialError("bad holder length")
    if until < issued:
        raise CredentialError("credential expires before it is issued")
    return Credential(kind, bytes(buf[end:end + hlen]), serial, issued, until, flags), end + hlen


def check_usable(cred, now, revoked_serials):
    """Raise CredentialError unless the credential may act now (time and revocation)."""
    if cred.serial in revoked_serials:
        raise CredentialError("credential revoked")
    if now > cred.not_after:
        raise CredentialError("credential expired")
