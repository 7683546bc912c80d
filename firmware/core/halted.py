# What a locker halted on its anchor still serves: a technician opening a door (not
# journalled) and the operator's RECOVER (docs/reliability.md "A halted locker"). Loaded by
# core/anchored.py for such a request only, then dropped again.
import gc
import struct

from core import credentials
from core import protocol as P
from core.anchored import anchor_id


def halted_tech_open(lk, session, frame):
    """TECH_OPEN while halted: authenticated as always, then open only, not journalled."""
    r = lk._read_cred(frame)
    sid = r.u16()
    action = r.u8()
    lk._authenticate(session, frame, r, credentials.TECHNICIAN)
    if lk.slots.get(sid) is None:
        raise P.ProtocolError(P.E_VALUE, "no slot %d on this locker" % sid)
    return tech_open(lk, session, sid, action)


def admin_recover(lk, session, frame):
    """ADMIN RECOVER: signed by the operator, counter-checked, then recover()."""
    op, seq, payload = lk._admin_message(session, frame)
    if seq <= lk.admin_seq:
        raise P.ProtocolError(P.E_REPLAY, "admin message %d already applied" % seq)
    if len(payload) != 8:
        raise P.ProtocolError(P.E_LENGTH, "RECOVER payload is journal u32, anchor u32")
    gc.collect()                  # the new snapshot and record are written next
    recover(lk, seq, payload)
    return struct.pack(">BII", op, seq, lk.clock.now())


def recover(lk, seq, payload):
    """Operator-signed recovery of a locker halted on its anchor (called while it serves the
    RECOVER: lk.suspended holds the halt reason). The payload states the loss (journal seq
    the locker has, anchor seq it had: two u32) exactly as the halt reported it. Nothing
    lost is guessed: slots with no parcel on record go out of service until a technician has
    looked inside (TECH_IN_SERVICE); parcels on record stay."""
    if not lk.suspended:
        raise P.ProtocolError(P.E_STATE, "locker is not halted: nothing to recover")
    if lk.halt_seqs is None:
        raise P.ProtocolError(P.E_STATE, "store corrupt, not short: the flash must be "
                              "inspected (docs/reliability.md)")
    stated = struct.unpack(">II", payload)
    have, anchored, opens, fresh = lk.halt_seqs
    if stated != (have, anchored):
        raise P.ProtocolError(P.E_VALUE, "recovery states journal %d, anchor %d; the "
                              "locker has journal %d, anchor %d" % (stated + (have, anchored)))
    # doors opened while halted were not watched (nothing could be journalled): start the
    # door monitor afresh, as at boot (an open door is then reported as found open)
    d = lk.doors
    lk.doors = type(d)(len(lk.slots), d._diff, d.jam_ms, d.left_open_ms)
    lk._pending_doors = {}
    halted, lk.suspended = lk.suspended, ""
    try:
        lk.anchor.reset(anchor_id(lk))
        if fresh:
            lk.store.create(lk._state())
            lk.halt_seqs[3] = False
        lk._commit({"e": "recover", "have": have, "anchor": anchored, "a": seq,
                    "opens": opens})
    except OSError:
        lk.suspended = halted     # still halted; the operator may send it again
        raise
    lk.halt_seqs = None


def tech_open(lk, session, sid, action):
    """TECH_OPEN on a halted locker: the journal is in doubt, so the door opens and nothing
    is recorded (counted, and the count goes into the RECOVER record)."""
    if action > P.TECH_IN_SERVICE:
        raise P.ProtocolError(P.E_VALUE, "unknown technician action %d" % action)
    if action != P.TECH_OPEN_ONLY:
        raise P.ProtocolError(P.E_STATE, "locker halted: a technician can only open doors "
                              "until an operator recovers it")
    if lk.halt_seqs is not None:
        lk.halt_seqs[2] += 1
    lk._open(session, sid, "tech")
    return struct.pack(">HB", sid, lk._slot_bits(sid, lk._expiry(lk.clock.now())))
