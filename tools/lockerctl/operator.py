"""The operator's side: locker identity and master secret, courier/technician credentials,
and signed admin messages (revocation, time) that any phone can carry to the locker."""
import os
import struct
import time

from core import (
    credentials,
    kdf,  # firmware module, on the path via .fw
)
from core import protocol as P
from core.hmac_sha256 import hmac_sha256

from .client import CourierCredential

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text):
    """'90s', '15m', '72h', '7d', '2w' or plain seconds -> seconds."""
    text = text.strip().lower().lstrip("+")
    if text.isdigit():
        return int(text)
    unit = text[-1:]
    if unit not in DURATIONS or not text[:-1].isdigit():
        raise ValueError("bad duration %r (use e.g. 90s, 15m, 72h, 7d)" % text)
    return int(text[:-1]) * DURATIONS[unit]


def new_identity():
    return os.urandom(8), os.urandom(32)


def issue(master, locker_id, kind, holder, serial, valid_s, now=None, flags=0):
    now = int(time.time()) if now is None else now
    holder_b = holder.encode() if isinstance(holder, str) else holder
    cred = credentials.Credential(kind, holder_b, serial, now, now + valid_s, flags)
    return CourierCredential(locker_id, cred.encode(), cred.key(master, locker_id))


def admin_message(master, locker_id, op, seq, payload):
    body = P.request(P.ADMIN, struct.pack(">BIB", op, seq, len(payload)) + payload)
    return body + hmac_sha256(kdf.admin_key(master, locker_id), body)[:P.TAG_LEN]


def revoke_message(master, locker_id, seq, serial, not_after):
    return admin_message(master, locker_id, P.ADMIN_REVOKE, seq,
                         struct.pack(">II", serial, not_after))


def set_time_message(master, locker_id, seq, unix_time):
    return admin_message(master, locker_id, P.ADMIN_SET_TIME, seq, struct.pack(">I", unix_time))


def recover_message(master, locker_id, seq, journal_seq, anchor_seq):
    """RECOVER: the operator accepts the loss a halted locker reported (its journal ends at
    journal_seq, its anchor said anchor_seq) and lets it serve again (docs/reliability.md)."""
    return admin_message(master, locker_id, P.ADMIN_RECOVER, seq,
                         struct.pack(">II", journal_seq, anchor_seq))
