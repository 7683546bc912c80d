"""The operator's side: locker identity and master secret, courier/technician credentials,
signed admin messages (revocation, time) that any phone can carry to the locker, and the
check of the audit log's keyed hash chain."""
import json
import os
import struct
import time

from core import (
    credentials,
    kdf,
    store,
)
from core import protocol as P
from core.hmac_sha256 import hmac_sha256

from .client import CourierCredential

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text):
    """'90s', '15m', '72h', '7d', '2w' or plain seconds -> seconds (ValueError otherwise)."""
    t = text.strip().lower().lstrip("+")
    if t.isascii() and t.isdigit():
        return int(t)
    unit = t[-1:]
    if unit not in DURATIONS or not t[:-1].isascii() or not t[:-1].isdigit():
        raise ValueError("bad duration %r (use e.g. 90s, 15m, 72h, 7d)" % text)
    return int(t[:-1]) * DURATIONS[unit]


def new_identity():
    return os.urandom(8), os.urandom(32)


def issue(master, locker_id, kind, holder, serial, valid_s, now=None, flags=0):
    now = int(time.time()) if now is None else now
    if not 0 <= now <= now + valid_s <= 0xFFFFFFFF:
        raise ValueError("a credential's times are u32 seconds: valid until %d is out of range"
                         % (now + valid_s))
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


def verify_chain(lines, audit_key):
    """Check raw journal lines ("<json>\\t<mac hex>") against the keyed hash chain.

    Returns (records, problem): problem is None when every MAC and the numbering hold. The
    first record's predecessor is only known for record 1 (older segments get pruned)."""
    records, prev, problem = [], None, None
    for raw in lines:
        body, sep, mac_hex = raw.rpartition(b"\t")
        try:
            rec = json.loads(body)
            mac = bytes.fromhex(mac_hex.decode())
        except (ValueError, UnicodeDecodeError):
            return records, "line %d is not a journal line" % (len(records) + 1)
        if not isinstance(rec, dict):
            return records, "line %d is not a journal record" % (len(records) + 1)
        if not sep or len(mac) != store.MAC_LEN:
            return records, "line %d has no chain MAC" % (len(records) + 1)
        if prev is None and rec.get("n") == 1:
            prev = store.GENESIS
        if records and rec.get("n") != records[-1]["n"] + 1:
            return records, "record %s follows record %s" % (rec.get("n"), records[-1]["n"])
        if prev is not None and store.chain_mac(audit_key, prev, body) != mac:
            return records, "record %s does not match its chain MAC" % rec.get("n")
        prev = mac
        records.append(rec)
    return records, problem
