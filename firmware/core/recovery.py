# The anchor check at boot, the operator's recovery of a locker it halted, and the rare
# records (docs/adr/0005-journal-anchor.md, docs/reliability.md "A halted locker"). Loaded
# by core/anchored.py only at boot, while halted and for those records, then dropped again
# (core/anchored.drop_recovery): a serving locker does not keep this code in its heap.
import struct

from core import credentials
from core import protocol as P
from core.hmac_sha256 import equal, hmac_sha256
from core.slot_manager import OCCUPIED
from core.store import StoreCorrupt


def halted_tech_open(lk, session, frame):
    """TECH_OPEN while halted: authenticated as always, then open only, not journalled."""
    r = lk._read_cred(frame)
    sid = r.u16()
    action = r.u8()
    lk._authenticate(session, frame, r, credentials.TECHNICIAN)
    if lk.slots.get(sid) is None:
        raise P.ProtocolError(P.E_VALUE, "no slot %d on this locker" % sid)
    return tech_open(lk, sid, action)


def admin_recover(lk, frame):
    """ADMIN RECOVER: signed by the operator, counter-checked, then recover()."""
    r = P.Reader(frame)
    op = r.u8()
    seq = r.u32()
    payload = r.take(r.u8())
    tag = r.tag_and_end()
    expected = hmac_sha256(lk._admin_key, bytes(frame[:-P.TAG_LEN]))[:P.TAG_LEN]
    if not equal(expected, tag):
        raise P.ProtocolError(P.E_AUTH, "admin message MAC does not verify")
    if seq <= lk.admin_seq:
        raise P.ProtocolError(P.E_REPLAY, "admin message %d already applied" % seq)
    if len(payload) != 8:
        raise P.ProtocolError(P.E_LENGTH, "RECOVER payload is journal u32, anchor u32")
    recover(lk, seq, payload)
    return struct.pack(">BI", op, seq)


def anchor_id(lk):
    """The i32 naming this provisioning (master secret + locker id) in the anchor."""
    return struct.unpack(">i", hmac_sha256(lk._master, b"anchor" + lk.locker_id)[:4])[0] \
        & 0xFFFFFFFF


def check_anchor(lk, fresh):
    """The journal must reach the record the anchor says was written, less at most the one
    in flight at a cut (journal durable, anchor not yet written): A <= S <= A + 1.

    Raises StoreCorrupt with lk.halted saying why and lk.halt_seqs = [S, A, technician
    opens while halted, store missing] otherwise."""
    ident, anchored, t = lk.anchor.read()
    if t:
        lk.clock.raise_floor(t)
    have = 0 if fresh else lk.store.seq
    mine = anchor_id(lk)
    if ident != mine:
        if have > 1:              # a journal with history but no anchor of this locker
            _halt(lk, "journal has %d records but no anchor for them (NVS erased or "
                  "replaced)" % have, have, 0, fresh)
        lk.anchor.reset(mine)               # first boot after provisioning
        anchored = 0
    anchored = anchored or 0
    if have < anchored:
        _halt(lk, ("store missing" if fresh else "journal ends at record %d" % have)
              + " but record %d was written (anchor): records lost" % anchored,
              have, anchored, fresh)
    if have > anchored + 1:
        _halt(lk, "journal has records up to %d, the anchor only %d" % (have, anchored),
              have, anchored, fresh)
    lk.anchor.held = anchored


def _halt(lk, reason, have, anchored, fresh):
    lk.halted = ("journal rolled back: %s; an operator-signed RECOVER (journal %d, anchor "
                 "%d) accepts the loss" % (reason, have, anchored))
    lk.halt_seqs = [have, anchored, 0, fresh]
    lk.anchor.held = -1       # whatever it holds, the anchor is rewritten on recovery
    raise StoreCorrupt(reason)


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


def tech_open(lk, sid, action):
    """TECH_OPEN on a halted locker: the journal is in doubt, so the door opens and nothing
    is recorded (counted, and the count goes into the RECOVER record)."""
    if action > P.TECH_IN_SERVICE:
        raise P.ProtocolError(P.E_VALUE, "unknown technician action %d" % action)
    if action != P.TECH_OPEN_ONLY:
        raise P.ProtocolError(P.E_STATE, "locker halted: a technician can only open doors "
                              "until an operator recovers it")
    if lk.halt_seqs is not None:
        lk.halt_seqs[2] += 1
    lk._open(sid, "tech")
    return struct.pack(">HB", sid, lk._slot_bits(lk.slots.at(sid), lk.clock.now()))


def apply(lk, r):
    """Records written rarely, applied live and at replay:
    "recover": records were lost, so a slot with no parcel on record may hold one: out of
    service until a technician has looked inside.
    "boot" with "resumed": the clock skipped that many seconds at a boot that found the RTC
    behind its floor (core/clock.resume); that is not time an attacker waited, so the
    throttle's lockout and decay move with it."""
    if r["e"] == "recover":
        lk.admin_seq = r["a"]
        for sid in lk.slots.sids():
            if lk.slots.at(sid).state != OCCUPIED:
                lk.slots.set_service(sid, False)
        return
    th = lk.throttle
    if th.strikes:
        th.last_fail += r["resumed"]
        th.locked_until += r["resumed"]
