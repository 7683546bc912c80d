# The requests technicians and operators make, rarely: TECH_OPEN, STATUS, AUDIT_READ and
# ADMIN (operator-signed revoke and set-time, relayed by any phone). The locker imports this
# module on the first such request, so its code is not on the heap through every deposit and
# pickup. Byte layouts and the order of checks: docs/protocol.md sections 5.6 to 5.9.
import struct

from micropython import const

from core import credentials
from core import protocol as P
from core.hmac_sha256 import equal, hmac_sha256
from core.slot_manager import OCCUPIED
from core.store import StoreCorrupt, read_audit

MAX_REVOKED = const(256)

# Slot status bits in STATUS and TECH_OPEN answers
ST_OCCUPIED = const(1)
ST_EXPIRED = const(2)
ST_OUT_OF_SERVICE = const(4)
ST_DOOR_OPEN = const(8)
ST_HAS_SENSOR = const(16)


def tech_open(lk, session, frame):
    """TECH_OPEN: slot u16, action u8 -> slot u16, slot bits u8 after the action."""
    r = lk._read_cred(frame)
    sid = r.u16()
    action = r.u8()
    cred = lk._authenticate(session, frame, r, credentials.TECHNICIAN)
    if lk.slots.get(sid) is None:
        raise P.ProtocolError(P.E_VALUE, "no slot %d on this locker" % sid)
    if action > P.TECH_IN_SERVICE:
        raise P.ProtocolError(P.E_VALUE, "unknown technician action %d" % action)
    lk._commit({"e": "tech", "s": sid, "a": action, "serial": cred.serial})
    if action in (P.TECH_OPEN_ONLY, P.TECH_CLEAR):
        lk._open(session, sid, "tech")
    return struct.pack(">HB", sid, slot_bits(lk, lk.slots.at(sid), lk.clock.now()))


def status(lk, session, frame):
    """STATUS: time u32, slot count u16, then per slot size u8, bits u8."""
    lk._authenticate(session, frame, lk._read_cred(frame))
    now = lk.clock.now()
    out = bytearray(struct.pack(">IH", now, len(lk.slots)))
    for sid in lk.slots.sids():
        s = lk.slots.at(sid)
        out.append(s.size)
        out.append(slot_bits(lk, s, now))
    return bytes(out)


def slot_bits(lk, s, now):
    bits = 0
    if s.state == OCCUPIED:
        bits |= ST_OCCUPIED
        if now > s.deposit_ts + lk.cfg["ttl_s"]:
            bits |= ST_EXPIRED
    if s.out_of_service:
        bits |= ST_OUT_OF_SERVICE
    door = lk.locks.driver.door_open(s.sid)
    if door is not None:
        bits |= ST_HAS_SENSOR
        if door:
            bits |= ST_DOOR_OPEN
    return bits


def audit_read(lk, session, frame):
    """AUDIT_READ: count u8, then count x (len u16 | line), lines as stored (the operator
    re-checks the chain over those very bytes)."""
    r = lk._read_cred(frame)
    from_seq = r.u32()
    limit = r.u8()
    cred = lk._authenticate(session, frame, r)
    if cred.kind != credentials.TECHNICIAN and not cred.has_scope(credentials.SCOPE_AUDIT):
        raise P.ProtocolError(P.E_SCOPE, "credential may not read the audit log")
    out = bytearray()
    count = 0
    budget = P.MAX_RESPONSE - 3 - P.CHALLENGE_LEN - 1 - P.TAG_LEN
    try:
        for line in read_audit(lk.store.fs, lk.store.key, from_seq, True):
            if count >= limit or len(out) + 2 + len(line) > budget:
                break
            out += struct.pack(">H", len(line)) + line
            count += 1
    except StoreCorrupt as e:
        raise P.ProtocolError(P.E_INTERNAL, "audit log corrupt: %s" % e)
    return bytes((count,)) + bytes(out)


def admin(lk, session, frame):
    """ADMIN: operation u8, sequence u32, payload; answer: operation, sequence, locker time."""
    r = P.Reader(frame)
    op = r.u8()
    seq = r.u32()
    payload = r.take(r.u8())
    tag = r.tag_and_end()
    if not equal(hmac_sha256(lk.admin_key, bytes(frame[:-P.TAG_LEN]))[:P.TAG_LEN], tag):
        raise P.ProtocolError(P.E_AUTH, "admin message MAC does not verify")
    session.answer = (lk.admin_key, b"", tag)        # authentic: the answer is tagged
    if op not in (P.ADMIN_REVOKE, P.ADMIN_SET_TIME):
        raise P.ProtocolError(P.E_VALUE, "unknown admin operation %d" % op)
    want = 8 if op == P.ADMIN_REVOKE else 4
    if len(payload) != want:
        raise P.ProtocolError(P.E_LENGTH, "admin operation %d takes a %d-byte payload"
                              % (op, want))
    if seq <= lk.admin_seq:
        raise P.ProtocolError(P.E_REPLAY, "admin message %d already applied" % seq)
    if op == P.ADMIN_REVOKE:
        serial, until = struct.unpack(">II", payload)
        now = lk.clock.now()
        for s in [s for s, u in lk.revoked.items() if u < now]:
            del lk.revoked[s]                          # expired anyway: make room
        if len(lk.revoked) >= MAX_REVOKED:
            raise P.ProtocolError(P.E_INTERNAL, "revocation list full")
        lk._commit({"e": "revoke", "serial": serial, "until": until, "a": seq})
    else:
        # Never backwards: a time at or behind the clock is delivered (its sequence number is
        # used, so it cannot void a later message) and moves nothing ("by": 0); the answer's
        # time field shows the clock as it is.
        (t,) = struct.unpack(">I", payload)
        moved = lk.clock.advance_to(t)
        lk._commit({"e": "time", "to": t, "by": moved, "a": seq})
    return struct.pack(">BII", op, seq, lk.clock.now())
