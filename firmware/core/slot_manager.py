# Slots of one cabinet and the life of a parcel in them.
#
# Persisted state per slot: FREE or OCCUPIED, plus an out-of-service flag. A slot's
# occupancy fields (generation, deposit time, courier credential block, request id) stay
# after release until the next deposit, so a pickup whose door jammed can be undone.
# Derived, never stored: "expired" (occupied longer than the TTL) and the door's own state
# (sensors and the door monitor own that).
import hashlib
from array import array

from micropython import const

FREE = const(0)
OCCUPIED = const(1)
# How a slot's last parcel left (released_by): only a pickup opens a reopen window for its
# code (ADR 0004); a cancel or reclaim one for that same courier request; a technician's
# clear ends any window (the slot was checked empty by hand).
LEFT_NONE = const(0)
LEFT_PICKUP = const(1)
LEFT_CANCEL = const(2)
LEFT_RECLAIM = const(3)
LEFT_TECH = const(4)
RECENT_DEPOSITS = const(32)     # finished deposits remembered for idempotent retries
REOPEN_S = const(120)           # a pickup code reopens its door this long after use

SIZE_NAMES = ("S", "M", "L", "XL")


def size_from_name(name):
    return SIZE_NAMES.index(name.upper()) + 1


def _deposit_key(holder, req):
    """A finished deposit, remembered as 16 hex digits (not holder + request id in full): the
    list sits in the snapshot's first line, which boot must read in one piece."""
    return hashlib.sha256(holder + b"/" + req).digest()[:8].hex()


class Slot:
    """A read-only view of one slot, made on demand (the table itself is packed arrays)."""

    def __init__(self, table, sid):
        i = sid - 1
        self.sid = sid
        self.size = table.size[i]
        self.state = table.state[i]
        self.out_of_service = bool(table.oos[i])
        self.gen = table.gen[i]
        self.deposit_ts = table.deposit_ts[i]
        self.cred = table.cred[i]           # depositing courier's credential block
        self.req = table.req[i]             # deposit request id (idempotent retries)
        self.holder = table.holder[i]       # courier id
        self.released_ts = table.released_ts[i]  # when the last parcel left (0: never)
        self.released_by = table.released_by[i]  # how it left: LEFT_* (0: never / unknown)


def reopens_for(slot, how, now):
    """True while slot (FREE) is in the reopen window of the flow `how` (LEFT_*): emptied by
    that flow less than REOPEN_S ago, nothing deposited since (ADR 0004)."""
    return (slot.state == FREE and slot.released_by == how and slot.released_ts != 0
            and 0 <= now - slot.released_ts <= REOPEN_S)


class SlotManager:
    def __init__(self, sizes):
        """sizes[i] is the size class (1=S, 2=M, ...) of slot i+1.

        Packed per-field arrays, not an object per slot: a 100-slot cabinet must fit the
        ESP32's heap next to BLE (docs/performance.md)."""
        n = len(sizes)
        self.size = bytearray(sizes)
        self.state = bytearray(n)
        self.oos = bytearray(n)
        self.gen = array("I", bytes(4 * n))
        self.deposit_ts = array("I", bytes(4 * n))
        self.released_ts = array("I", bytes(4 * n))
        self.released_by = bytearray(n)
        self.cred = [b""] * n     # b"" (a shared constant) marks "never occupied"
        self.req = [b""] * n
        self.holder = [b""] * n
        self.recent = []         # _deposit_key() of finished deposits, newest last

    def __len__(self):
        return len(self.size)

    def get(self, sid):
        """A view of slot sid, or None if there is no such slot (ids come off the air)."""
        if 1 <= sid <= len(self.size):
            return Slot(self, sid)
        return None

    def at(self, sid):
        """A view of slot sid, which the caller knows exists."""
        return Slot(self, sid)

    def sids(self):
        return range(1, len(self.size) + 1)

    def max_size(self):
        return max(self.size)

    # ---- queries --------------------------------------------------------------------

    def allocate(self, size, usable):
        """Smallest free slot that fits, lowest id among equals; None if none fits.

        usable(sid) lets the caller veto slots whose door is not known closed."""
        best = None
        for i in range(len(self.size)):
            if (self.state[i] != FREE or self.oos[i] or self.size[i] < size
                    or not usable(i + 1)):
                continue
            if best is None or self.size[i] < self.size[best]:
                best = i
        return None if best is None else best + 1

    def find_deposit(self, holder, req):
        """The slot currently holding this courier's deposit with this request id."""
        for i in range(len(self.size)):
            if self.state[i] == OCCUPIED and self.req[i] == req and self.holder[i] == holder:
                return i + 1
        return None

    def finished_deposit(self, holder, req):
        return _deposit_key(holder, req) in self.recent

    def expired(self, now, ttl_s):
        return [i + 1 for i in range(len(self.size))
                if self.state[i] == OCCUPIED and now > self.deposit_ts[i] + ttl_s]

    # ---- transitions (called only when applying a journal record) -----------------

    def deposit(self, sid, gen, ts, cred, req, holder):
        i = sid - 1
        self.state[i] = OCCUPIED
        self.gen[i] = gen
        self.deposit_ts[i] = ts
        self.cred[i] = cred
        self.req[i] = req
        self.holder[i] = holder

    def release(self, sid, ts, how):
        """The parcel left (how: LEFT_*). Releasing a FREE slot (a technician clear of an
        empty slot) only ends its reopen window."""
        i = sid - 1
        if self.state[i] != OCCUPIED:
            if how == LEFT_TECH:
                self.released_by[i] = LEFT_TECH
            return
        self.released_ts[i] = ts
        self.released_by[i] = how
        if self.req[i]:
            self.recent.append(_deposit_key(self.holder[i], self.req[i]))
            if len(self.recent) > RECENT_DEPOSITS:
                self.recent.pop(0)
        self.state[i] = FREE

    def undo_release(self, sid):
        """A pickup/reclaim/cancel whose door never opened: the parcel is still inside."""
        i = sid - 1
        if not self.cred[i]:
            return
        self.state[i] = OCCUPIED
        key = _deposit_key(self.holder[i], self.req[i])
        if key in self.recent:
            self.recent.remove(key)

    def void_deposit(self, sid):
        """A deposit whose door never opened: nothing was put in."""
        self.state[sid - 1] = FREE

    def set_service(self, sid, in_service):
        self.oos[sid - 1] = 0 if in_service else 1

    # ---- persistence ----------------------------------------------------------------

    def row(self, i):
        return [self.state[i], self.oos[i], self.gen[i], self.deposit_ts[i],
                self.cred[i].hex(), self.req[i].hex(), self.holder[i].hex(), self.released_ts[i],
                self.released_by[i]]

    def rows(self):
        """The snapshot rows, made one at a time as the store writes them."""
        return _Rows(self)

    def to_dict(self):
        return {"slots": [self.row(i) for i in range(len(self.size))], "recent": self.recent}

    def load(self, data):
        """Restore from to_dict() output (rows inline, as tests and tools use it)."""
        rows = data["slots"]
        if len(rows) != len(self.size):
            raise ValueError("stored slot count %d != configured %d" % (len(rows), len(self.size)))
        for i, row in enumerate(rows):
            self.load_row(i, row)
        self.recent = data["recent"]

    def load_row(self, i, row):
        """Restore slot i+1 from one snapshot row (the store streams them at boot)."""
        if i >= len(self.size):
            raise ValueError("stored slot %d beyond configured %d" % (i + 1, len(self.size)))
        if len(row) > 8:
            state, oos, gen, ts, cred, req, holder, released, self.released_by[i] = row
        else:                                   # a snapshot from before released_by
            state, oos, gen, ts, cred, req, holder, released = row
            self.released_by[i] = LEFT_NONE
        self.released_ts[i] = released
        self.state[i] = state
        self.oos[i] = oos
        self.gen[i] = gen
        self.deposit_ts[i] = ts
        # empty fields keep the shared b"": on MicroPython bytes.fromhex("") allocates a new
        # object (64 bytes of heap each: 19 KB for an empty 100-slot locker after a reboot)
        self.cred[i] = bytes.fromhex(cred) if cred else b""
        self.req[i] = bytes.fromhex(req) if req else b""
        self.holder[i] = bytes.fromhex(holder) if holder else b""


class _Rows:
    """Sized, lazy sequence of snapshot rows (len() for the header, then iteration)."""

    def __init__(self, table):
        self._table = table

    def __len__(self):
        return len(self._table.size)

    def __iter__(self):
        for i in range(len(self._table.size)):
            yield self._table.row(i)
