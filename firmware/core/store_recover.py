# The store's recovery (core/store.py): read the latest snapshot, replay its segment, find
# a torn tail. Only boot runs it (Store.recover imports it), so main.Runtime.boot drops
# this module afterwards (core.unload) and its bytecode leaves the heap of a board.
# Formats, checks and what counts as corruption: core/store.py.
import json

from core.hmac_sha256 import HmacSha256
from core.store import MAC_LEN, StoreCorrupt, _index, _names, read_segment


def recover(store, load_state, apply, table=None):
    """Load the latest snapshot through load_state(dict), then replay its segment
    through apply(record). Returns False for a brand-new (empty) store.

    table: the live slot table (its columns() are filled from the snapshot in place);
    without one, a snapshot that holds a table is refused."""
    store.fs.ensure()
    oldest = -1                          # the oldest segment kept (Store.page needs it)
    for name in store.fs.listdir():
        if name.endswith(".tmp"):
            store.fs.remove(name)        # an interrupted atomic write: never live
        elif name.startswith("j."):
            i = _index(name, "j.")
            if i >= 0 and (oldest < 0 or i < oldest):
                oldest = i
    snaps = _names(store.fs, "s.")
    if not snaps:
        if _names(store.fs, "j."):
            raise StoreCorrupt("journal present but no snapshot")
        return False
    n = snaps[-1]
    load_state(_load_snapshot(store, n, table))
    store.segment = n
    store.in_segment = 0
    store.oldest = n if oldest < 0 else oldest
    if not store.fs.exists("j.%d" % n):
        store._start_segment()           # cut between snapshot and segment creation
        return True
    rows = read_segment(store.fs, store.key, n)
    header, prev = next(rows)
    if header["n"] != store.seq or prev != store.head:
        raise StoreCorrupt("segment %d does not continue snapshot %d" % (n, n))
    for record, mac in rows:
        apply(record)
        store.seq = record["n"]
        store.head = mac
        store.in_segment += 1
    store.torn_tail = _has_torn_tail(store, n)
    return True


def _has_torn_tail(store, n):
    with store.fs.open_read("j.%d" % n) as f:
        lines = 0
        while f.readline():
            lines += 1
    return lines != store.in_segment + 1


def _load_snapshot(store, n, table=None):
    """Read s.N, checking its MAC as it goes: the header line, then the table's columns
    straight into table.columns() (no per-slot allocation), then the MAC line.

    The columns are filled before the MAC at the end is checked: on a MAC failure the
    caller gets StoreCorrupt and must not serve whatever was loaded."""
    mac = HmacSha256(store.key)
    mac.update(b"snapshot")
    with store.fs.open_read("s.%d" % n) as f:
        head_line = f.readline()
        mac.update(head_line)
        try:
            head = json.loads(head_line)
            cols = head.get("cols")
            state = head["state"]
            seq, prev = head["n"], bytes.fromhex(head["h"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoreCorrupt("snapshot %d is malformed" % n)
        if cols is not None:
            if table is None:
                raise StoreCorrupt("snapshot %d holds a slot table nobody loads" % n)
            mine = table.columns()
            if [len(c) for c in mine] != cols:
                raise StoreCorrupt("snapshot %d holds a table of another shape (%d slots"
                                   " configured)" % (n, len(table)))
            for col in mine:
                if f.readinto(col) != len(col):
                    raise StoreCorrupt("snapshot %d is truncated" % n)
                mac.update(col)
        line = f.readline()
        try:
            stored = bytes.fromhex(line[:-1].decode())
        except ValueError:
            raise StoreCorrupt("snapshot %d is malformed" % n)
        if not line.endswith(b"\n"):
            raise StoreCorrupt("snapshot %d is truncated" % n)
        if f.readline() or stored != mac.digest()[:MAC_LEN]:
            raise StoreCorrupt("snapshot %d fails its MAC" % n)
    store.seq = seq
    store.head = prev
    return state
