# The anchor check at boot and the rare records (docs/adr/0008-journal-anchor.md). Loaded by
# core/anchored.py at boot (and by Locker._apply for those records), then dropped again: a
# serving locker does not keep this code in its heap. What a halted locker still serves is in
# core/halted.py.
from core.anchored import anchor_id
from core.slot_manager import OCCUPIED
from core.store import StoreCorrupt


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
    lk.throttle.shift(r["resumed"])
