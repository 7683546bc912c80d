# Slots of one cabinet and the life of a parcel in them.
#
# Persisted state per slot: FREE or OCCUPIED, plus flags: bit 0 out of service, bits 1-3
# how its last parcel left (LEFT_*: the reopen windows of ADR 0004). A slot's
# occupancy fields (generation, deposit time, courier credential block, request id) stay
# after release until the next deposit, so a pickup whose door jammed can be undone.
# Derived, never stored: "expired" (occupied longer than the TTL) and the door's own state
# (sensors and the door monitor own that).
import hashlib
from struct import pack_into, unpack_from

from micropython import const

from core.credentials import MAX_BLOCK as CRED_MAX
from core.credentials import HOLDER_AT
from core.protocol import REQ_ID_LEN as REQ_LEN

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
_OOS = const(1)                 # flags bit 0: out of service; bits 1-3: LEFT_*
RECENT_DEPOSITS = const(32)     # finished deposits remembered for idempotent retries
REOPEN_S = const(120)           # a pickup code reopens its door this long after use

SIZE_NAMES = ("S", "M", "L", "XL")


def size_from_name(name):
    return SIZE_NAMES.index(name.upper()) + 1


def _deposit_key(holder, req):
    """A finished deposit, remembered as 16 hex digits (not holder + request id in full): the
    list sits in the snapshot's first line, which boot must read in one piece. holder and
    req may be memoryview slices of the table (no copies)."""
    h = hashlib.sha256(holder)
    h.update(b"/")
    h.update(req)
    return h.digest()[:8].hex()


class Slot:
    """A read-only view of one slot, made on demand (the table itself is packed columns)."""

    def __init__(self, table, sid):
        i = sid - 1
        self.sid = sid
        self.size = table.size[i]
        self.state = table.state[i]
        self.out_of_service = table.out_of_service(sid)
        self.gen = _u32(table.gen, i)
        self.deposit_ts = _u32(table.deposit_ts, i)
        n = table.clen[i]
        self.cred = bytes(table.cred[CRED_MAX * i:CRED_MAX * i + n])   # depositing courier's
        self.req = bytes(table.req[REQ_LEN * i:REQ_LEN * i + REQ_LEN]) if n else b""
        self.holder = holder_of(self.cred)    # courier id (inside the credential block)
        self.released_ts = _u32(table.released_ts, i)  # when the last parcel left (0: never)
        self.released_by = table.released_by(sid)      # how it left: LEFT_* (0: unknown)


def reopens_for(slot, how, now):
    """True while slot (FREE) is in the reopen window of the flow `how` (LEFT_*): emptied by
    that flow less than REOPEN_S ago, nothing deposited since (ADR 0004)."""
    return (slot.state == FREE and slot.released_by == how and slot.released_ts != 0
            and 0 <= now - slot.released_ts <= REOPEN_S)


def holder_of(cred):
    """The courier id inside an encoded credential block (core.credentials layout: the
    holder length at byte HOLDER_AT - 1, the holder from HOLDER_AT); b"" for no block."""
    if not cred:
        return b""
    return cred[HOLDER_AT:HOLDER_AT + cred[HOLDER_AT - 1]]


def expiry_limit(now, ttl_s):
    """4 big-endian bytes: a parcel deposited before them has expired at now (now >
    deposit time + ttl_s), for SlotManager.deposited_before()."""
    return (now - ttl_s if now > ttl_s else 0).to_bytes(4, "big")


def _u32(col, i):
    return unpack_from(">I", col, 4 * i)[0]


def _same(col, at, data):
    """col[at:at + len(data)] == data, without making a slice (no heap allocation)."""
    for k in range(len(data)):
        if col[at + k] != data[k]:
            return False
    return True


def _put(col, at, width, data):
    """Store data at col[at:at + width], zero-padded (no heap allocation)."""
    n = len(data)
    if n > width:
        raise ValueError("field longer than %d bytes" % width)
    col[at:at + n] = data
    for k in range(at + n, at + width):
        col[k] = 0


class SlotManager:
    def __init__(self, sizes):
        """sizes[i] is the size class (1=S, 2=M, ...) of slot i+1.

        Packed fixed-width columns (bytearrays), not an object per slot: a 100-slot cabinet
        must fit the ESP32's heap next to BLE, and the snapshot writes and reads the columns
        as they are, so compaction and boot allocate nothing per slot (docs/performance.md).
        u32 fields are big-endian; a variable field has a length column (0: none yet)."""
        n = len(sizes)
        self.size = bytearray(sizes)
        self.state = bytearray(n)
        self.flags = bytearray(n)                # bit 0 out of service, bits 1-3 LEFT_*
        self.gen = bytearray(4 * n)
        self.deposit_ts = bytearray(4 * n)
        self.released_ts = bytearray(4 * n)
        self.clen = bytearray(n)                 # 0 marks "never occupied"
        self.cred = bytearray(CRED_MAX * n)      # depositing courier's credential block
        self.req = bytearray(REQ_LEN * n)        # deposit request id (idempotent retries)
        self.recent = []         # _deposit_key() of finished deposits, newest last

    def __len__(self):
        return len(self.size)

    def columns(self):
        """The persisted columns, in snapshot order (the store writes and fills them as
        they are). The size column is configuration, not state: it is not among them."""
        return (self.state, self.flags, self.gen, self.deposit_ts, self.released_ts, self.clen,
                self.cred, self.req)

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

    def deposit_time(self, sid):
        return _u32(self.deposit_ts, sid - 1)

    def generation(self, sid):
        return _u32(self.gen, sid - 1)

    # ---- column reads that make no object (a request must not allocate per slot) --------

    def deposited_before(self, i, limit):
        """Slot i+1's deposit time < limit (4 big-endian bytes, expiry_limit()): compared
        in the column byte by byte, so no (big) int is made per slot."""
        at = 4 * i
        col = self.deposit_ts
        for k in range(4):
            if col[at + k] != limit[k]:
                return col[at + k] < limit[k]
        return False

    def out_of_service(self, sid):
        return bool(self.flags[sid - 1] & _OOS)

    def released_by(self, sid):
        """How slot sid last emptied: LEFT_* (0: unknown)."""
        return self.flags[sid - 1] >> 1

    def holder_is(self, sid, holder):
        """The holder of slot sid's (last) deposit is holder."""
        at = CRED_MAX * (sid - 1) + HOLDER_AT
        return (self.clen[sid - 1] > 0 and self.cred[at - 1] == len(holder)
                and _same(self.cred, at, holder))


    # ---- queries --------------------------------------------------------------------

    def allocate(self, size, usable):
        """Smallest free slot that fits, lowest id among equals; None if none fits.

        usable(sid) lets the caller veto slots whose door is not known closed."""
        best = None
        for i in range(len(self.size)):
            if (self.state[i] != FREE or self.flags[i] & _OOS or self.size[i] < size
                    or not usable(i + 1)):
                continue
            if best is None or self.size[i] < self.size[best]:
                best = i
        return None if best is None else best + 1

    def find_deposit(self, holder, req):
        """The slot currently holding this courier's deposit with this request id."""
        if len(req) != REQ_LEN:
            return None
        hn = len(holder)
        for i in range(len(self.size)):
            at = CRED_MAX * i + HOLDER_AT
            if (self.state[i] == OCCUPIED and self.cred[at - 1] == hn
                    and _same(self.req, REQ_LEN * i, req) and _same(self.cred, at, holder)):
                return i + 1
        return None

    def finished_deposit(self, holder, req):
        return _deposit_key(holder, req) in self.recent

    def expired(self, now, ttl_s):
        limit = expiry_limit(now, ttl_s)
        return [i + 1 for i in range(len(self.size))
                if self.state[i] == OCCUPIED and self.deposited_before(i, limit)]

    # ---- transitions (called only when applying a journal record) -----------------

    def deposit(self, sid, gen, ts, cred, req):
        """cred: the courier's encoded credential block (its holder is read from it).
        Raises ValueError for a block or request id that does not fit its column."""
        i = sid - 1
        if len(req) != REQ_LEN or len(cred) <= HOLDER_AT:
            raise ValueError("deposit needs a credential and a %d-byte request id" % REQ_LEN)
        _put(self.cred, CRED_MAX * i, CRED_MAX, cred)
        self.req[REQ_LEN * i:REQ_LEN * i + REQ_LEN] = req
        self.clen[i] = len(cred)
        self.state[i] = OCCUPIED
        pack_into(">I", self.gen, 4 * i, gen)
        pack_into(">I", self.deposit_ts, 4 * i, ts)

    def release(self, sid, ts, how):
        """The parcel left (how: LEFT_*). Releasing a FREE slot (a technician clear of an
        empty slot) only ends its reopen window."""
        i = sid - 1
        if self.state[i] != OCCUPIED:
            if how == LEFT_TECH:
                self.flags[i] = (self.flags[i] & _OOS) | (LEFT_TECH << 1)
            return
        pack_into(">I", self.released_ts, 4 * i, ts)
        self.flags[i] = (self.flags[i] & _OOS) | (how << 1)
        if self.clen[i]:
            self.recent.append(self._key_at(i))
            if len(self.recent) > RECENT_DEPOSITS:
                self.recent.pop(0)
        self.state[i] = FREE

    def undo_release(self, sid):
        """A pickup/reclaim/cancel whose door never opened: the parcel is still inside."""
        i = sid - 1
        if not self.clen[i]:
            return
        self.state[i] = OCCUPIED
        key = self._key_at(i)
        if key in self.recent:
            self.recent.remove(key)

    def _key_at(self, i):
        """_deposit_key() of slot i+1's deposit, read from the columns in place."""
        cred, at = memoryview(self.cred), CRED_MAX * i + HOLDER_AT
        return _deposit_key(cred[at:at + self.cred[at - 1]],
                            memoryview(self.req)[REQ_LEN * i:REQ_LEN * (i + 1)])

    def rekey(self, sid, cred):
        """The same holder's renewed credential block replaces the deposit's (issue 11.7):
        the parcel's code is made with the new key from now on."""
        i = sid - 1
        _put(self.cred, CRED_MAX * i, CRED_MAX, cred)
        self.clen[i] = len(cred)

    def void_deposit(self, sid):
        """A deposit whose door never opened: nothing was put in."""
        self.state[sid - 1] = FREE

    def set_service(self, sid, in_service):
        i = sid - 1
        self.flags[i] = (self.flags[i] & ~_OOS) | (0 if in_service else _OOS)
