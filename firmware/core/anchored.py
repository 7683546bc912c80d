# A locker whose journal is anchored (docs/adr/0008-journal-anchor.md): every durable record
# is anchored (drivers/nvs_anchor.py on the boards), the journal is checked against the
# anchor at boot, and a halted locker still opens doors for a technician and takes the
# operator's RECOVER. The boards run AnchoredLocker (main.py); the plain Locker (tests,
# campaigns without an anchor) stays as small as before. The rarely needed code lives in
# core/recovery.py, loaded on demand and dropped again.
import struct
import sys

from micropython import const

from core import protocol as P
from core.hmac_sha256 import hmac_sha256
from core.locker import Locker

ADMIN_RECOVER = const(3)   # admin operation (docs/protocol.md 5.9): journal seq u32, anchor seq u32

# what a halted locker still answers: HELLO (the challenge), a technician opening a door,
# the operator's ADMIN (RECOVER only)
_HALTED_OK = (P.HELLO, P.TECH_OPEN, P.ADMIN)


def anchor_id(lk):
    """The u32 naming this provisioning (master secret + locker id) in the anchor."""
    return struct.unpack(">I", hmac_sha256(lk._master, b"anchor" + lk.locker_id)[:4])[0]


def recovery():
    from core import recovery as r
    return r


def halted():
    from core import halted as h
    return h


def drop_recovery():
    """Forget core/recovery.py and core/halted.py so their code leaves the heap."""
    import core
    for name in ("recovery", "halted"):
        sys.modules.pop("core." + name, None)
        try:
            delattr(core, name)
        except (AttributeError, KeyError):     # MicroPython raises KeyError
            pass


class AnchoredLocker(Locker):
    """Locker(...) plus `anchor` (drivers/nvs_anchor.NvsAnchor, or anything with its
    interface): every durable record is anchored, the journal is checked against the anchor
    at boot, and a halted locker can be recovered by the operator. A subclass so that the
    plain Locker's class (its heap) does not grow with this."""

    def __init__(self, cfg, master, fs, clock, locks, ticks_ms, ticks_diff, random_bytes,
                 anchor):
        Locker.__init__(self, cfg, master, fs, clock, locks, ticks_ms, ticks_diff,
                        random_bytes)
        self.anchor = anchor
        self.halt_seqs = None     # [journal seq, anchor seq, technician opens, store missing]
        h = self._handlers        # Locker maps request types to its own functions
        h[P.TECH_OPEN] = AnchoredLocker._tech_open
        h[P.ADMIN] = AnchoredLocker._admin
        self.suspended = ""       # the halt reason while a halted locker serves a request

    def boot(self):
        """Locker.boot with the anchor check between recovery and serving, and the clock
        carried past the floor by at most 2 minutes (the anchor's time is written every
        minute, + tick's lateness). Raises StoreCorrupt (self.halted says why)."""
        fresh = not self.store.recover(self._load_state, self._apply, self.slots)
        try:
            recovery().check_anchor(self, fresh)  # raises StoreCorrupt (halted)
        finally:
            drop_recovery()
        self._serve_from(fresh, 120)
        drop_recovery()

    def _commit(self, record):
        """Anchor after the record is durable (never claims more); catch up first (never
        lags by more than the record in flight). Nothing is journalled while halted."""
        if self.halted or self.suspended:
            return record
        anchor = self.anchor
        anchor.sync(self.store.seq)
        record = Locker._commit(self, record)
        try:
            anchor.sync(self.store.seq)
        except OSError:           # durable in the journal; the next commit catches up
            pass
        return record

    def tick(self):
        Locker.tick(self)
        self.anchor.keep_time(self.clock.now())   # at most once a minute

    def handle(self, session, frame):
        """A halted locker still answers HELLO (the challenge), a technician opening a door
        and the operator's RECOVER; everything else: "locker halted: <reason>"."""
        halted = self.halted
        if not halted or len(frame) < 2 or frame[1] not in _HALTED_OK:
            return Locker.handle(self, session, frame)
        self.halted, self.suspended = "", halted
        try:
            return Locker.handle(self, session, frame)
        finally:
            if self.suspended:    # still halted (RECOVER clears it)
                self.halted, self.suspended = self.suspended, ""
            drop_recovery()       # loaded for this request only

    def _tech_open(self, session, frame):
        if not self.suspended:
            return Locker._tech_open(self, session, frame)
        return halted().halted_tech_open(self, session, frame)

    def _admin(self, session, frame):
        if len(frame) > 2 and frame[2] == ADMIN_RECOVER:
            return halted().admin_recover(self, session, frame)
        if self.suspended:
            raise P.ProtocolError(P.E_INTERNAL, "locker halted: " + self.suspended)
        return Locker._admin(self, session, frame)
