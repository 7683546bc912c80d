# Key derivation from the locker master secret: one label per purpose.
# Every key used on the locker or a phone is HMAC(master, label || context), so a key
# that leaks for one purpose (a courier credential) reveals nothing about the others.
from core.hmac_sha256 import hmac_sha256

LABEL_CREDENTIAL = b"LKR1/credential"
LABEL_AUDIT = b"LKR1/audit-chain"
LABEL_ADMIN = b"LKR1/admin"


def derive(master, label, context=b"", *more):
    """HMAC(master, label | 0x00 | context | more...): the parts are MACed in place."""
    return hmac_sha256(master, label, b"\x00", context, *more)


def audit_key(master):
    return derive(master, LABEL_AUDIT)


def admin_key(master, locker_id):
    return derive(master, LABEL_ADMIN, locker_id)
