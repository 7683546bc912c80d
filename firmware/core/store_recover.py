# The store's recovery (core/store.py): read the latest snapshot, replay its segment, find
# a torn tail. Only boot runs it (Store.recover imports it), so main.Runtime.boot drops
# this module afterwards (core.unload) and its bytecode leaves the heap of a board. The
# journal's reader with its MAC checks (decode_line, read_segment) lives here too: only boot
# and the host's core/audit_chain.py read records back (AUDIT_READ copies lines unchecked).
# Formats, checks and what counts as corruption: core/store.py.
import json

from core.hmac_sha256 import HmacSha256
from core.store import _HEX, MAC_LEN, StoreCorrupt, _names, chain_mac


def recover(store, load_state, apply, table=None):
    """Load the latest snapshot through load_state(dict), then replay its segment
    through apply(record). Returns False for a brand-new (empty) store.

    table: the live slot table (its columns() are filled from the snapshot in place);
    without one, a snapshot that holds a table is refused."""
    store.fs.ensure()
    listed = store.fs.listdir()          # one listing: .tmp files are no s.N / j.N name
    for name in listed:
        if name.endswith(".tmp"):
            store.fs.remove(name)        # an interrupted atomic write: never live
    snaps = _names(store.fs, "s.", listed)
    journals = _names(store.fs, "j.", listed)
    if not snaps:
        if journals:
            raise StoreCorrupt("journal present but no snapshot")
        return False
    n = snaps[-1]
    load_state(_load_snapshot(store, n, table))
    store.segment = n
    store.in_segment = 0
    store.oldest = journals[0] if journals else n       # the oldest segment kept (Store.page)
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


def decode_line(key, prev_mac, line):
    """Return (record, mac) or None when the line fails its checks. The MAC's hex digits
    (either case) are checked in place: the body is the one copy made of the line."""
    end = len(line) - 1
    if end < 0 or line[end] != 10:           # LF
        return None
    tab = line.rfind(b"\t", 0, end)
    if tab < 0 or end - tab != 2 * MAC_LEN + 1:
        return None
    body = line[:tab]
    mac = chain_mac(key, prev_mac, body)
    for i in range(2 * MAC_LEN):
        c = line[tab + 1 + i]
        want = _HEX[mac[i >> 1] >> 4 if i & 1 == 0 else mac[i >> 1] & 15]
        if c != want and not (want > 0x60 and c == want - 0x20):     # 'a'-'f' or 'A'-'F'
            return None
    try:
        return json.loads(body), mac
    except ValueError:
        return None


def read_segment(fs, key, n, raw=False):
    """Yield (record, mac) of segment n after checking its header; stops at a torn tail.
    With raw, the record is its journal line as read (json TAB mac LF).

    Returns the generator; the header is checked when iteration starts. Raises StoreCorrupt
    on a bad line that is not the last one."""
    with fs.open_read("j.%d" % n) as f:
        head = f.readline()
        try:
            header = json.loads(head)
            prev = bytes.fromhex(header["h"])
            seq = header["n"]
        except (ValueError, KeyError, TypeError):
            raise StoreCorrupt("segment %d: bad header" % n)
        yield header, prev
        bad = None
        while True:
            line = f.readline()
            if not line:
                break
            if bad is not None:
                raise StoreCorrupt("segment %d: bad record after %d" % (n, seq))
            got = decode_line(key, prev, line)
            if got is None or got[0].get("n") != seq + 1:
                if line.endswith(b"\n"):     # a cut never leaves a whole line: tampering
                    raise StoreCorrupt("segment %d: bad record after %d" % (n, seq))
                bad = line        # acceptable only if it is the last line (torn write)
                continue
            record, prev = got
            seq += 1
            yield (line if raw else record), prev
