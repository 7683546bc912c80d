# Crash-safe journal + snapshot store; the journal doubles as the hash-chained audit log.
#
# Files:  s.N  snapshot of the live state after every record before segment N: a header
#              line (JSON), the slot table's columns as raw bytes (their lengths are in the
#              header), then the MAC line. Written and read straight from/into the live
#              columns: no copy of the table is ever made, whatever the slot count.
#         j.N  segment N: a header line, then one line per record appended since s.N
# A record line is  <json>\t<mac hex>\n  with mac = HMAC(audit_key, prev_mac | json)[:16]:
# a chain that nobody without the locker's master secret can rewrite unnoticed.
# One state change = one append (one durable write). Every `segment_records` records the
# live state is written to s.N+1 (temp file + rename) and j.N+1 starts; recovery reads one
# snapshot and at most one segment, so boot time is bounded by live state, not history.
# Old segments are kept (`keep_segments`) as audit history, then deleted.
# A torn last line is a write the power cut interrupted: nothing acted on it, so it is
# dropped. Anything else that fails its check is corruption: recovery refuses to start.
import json

from micropython import const

from core.hmac_sha256 import HmacSha256, hmac_sha256

MAC_LEN = const(16)
GENESIS = b"\x00" * 16
SEGMENT_RECORDS = const(200)
KEEP_SEGMENTS = const(8)


class StoreCorrupt(Exception):
    """The store fails its integrity checks: operation must stop until an operator acts."""


def chain_mac(key, prev_mac, body):
    return hmac_sha256(key, prev_mac, body)[:MAC_LEN]


_HEX = b"0123456789abcdef"


def encode_line(key, prev_mac, record):
    """(line, mac): the journal line of record, made in one buffer (the MAC's hex digits
    written in place)."""
    body = json.dumps(record).encode()
    mac = chain_mac(key, prev_mac, body)
    n = len(body)
    line = bytearray(n + 2 * MAC_LEN + 2)
    line[:n] = body
    line[n] = 9                  # TAB
    for i in range(MAC_LEN):
        line[n + 1 + 2 * i] = _HEX[mac[i] >> 4]
        line[n + 2 + 2 * i] = _HEX[mac[i] & 15]
    line[-1] = 10                # LF
    return line, mac


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


def _index(name, prefix):
    if not name.startswith(prefix) or name.endswith(".tmp"):
        return -1
    tail = name[len(prefix):]
    return int(tail) if tail.isdigit() else -1


def _names(fs, prefix):
    return sorted(i for i in (_index(n, prefix) for n in fs.listdir()) if i >= 0)


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


class Store:
    def __init__(self, fs, key, segment_records=SEGMENT_RECORDS, keep_segments=KEEP_SEGMENTS):
        self.fs = fs
        self.key = key
        self.segment_records = segment_records
        self.keep_segments = keep_segments
        self.segment = 0
        self.seq = 0              # number of the last record
        self.head = GENESIS       # mac of the last record
        self.in_segment = 0
        self.torn_tail = False

    # ---- recovery -----------------------------------------------------------------

    def recover(self, load_state, apply, table=None):
        """Load the latest snapshot through load_state(dict), then replay its segment
        through apply(record). Returns False for a brand-new (empty) store; raises
        StoreCorrupt. table: the live slot table (its columns() are filled from the
        snapshot in place); without one, a snapshot that holds a table is refused.

        The code lives in core/store_recover.py: only boot runs it, and main.Runtime
        drops that module after boot (core.unload) so its bytecode leaves the heap."""
        from core import store_recover
        return store_recover.recover(self, load_state, apply, table)

    # ---- writing ------------------------------------------------------------------

    def create(self, state):
        """Initialise an empty store (first boot)."""
        self.fs.ensure()
        self.segment = 0
        self.snapshot(state)

    def append(self, record):
        """Persist one record (assigns record['n']); one durable write.

        Raises OSError when the write fails (flash full): nothing is acted on, but part of
        the line may have landed, so the segment's tail counts as torn and every further
        append raises until snapshot() has started a clean segment (needs_compaction()
        says so): a partial line stays last in its segment, where recovery drops it."""
        if self.torn_tail:
            raise OSError(5, "torn tail")
        record["n"] = self.seq + 1
        line, mac = encode_line(self.key, self.head, record)
        try:
            self.fs.append("j.%d" % self.segment, line)
        except OSError:
            self.torn_tail = True
            raise
        self.seq = record["n"]
        self.head = mac
        self.in_segment += 1
        return record

    def needs_compaction(self):
        return self.torn_tail or self.in_segment >= self.segment_records

    def snapshot(self, state):
        """Write the live state as snapshot N+1 and start segment N+1 (the compaction)."""
        n = self.segment + 1
        self.fs.replace("s.%d" % n, self._snapshot_lines(state))
        self.segment = n
        try:
            self._start_segment()
        except OSError:       # flash full between the two files: stay on segment N, whole
            self.segment = n - 1
            self.fs.remove("s.%d" % n)
            raise
        self.torn_tail = False
        self._prune()

    def _snapshot_lines(self, state):
        """Yield the snapshot file piece by piece, MACing as it goes. state["slots"], if
        present, is the live slot table: its columns are yielded as they are (the write
        allocates nothing per slot; the fs writes each chunk before asking for the next)."""
        mac = HmacSha256(self.key)
        mac.update(b"snapshot")
        table = state.get("slots")
        rest = {}
        for k in state:
            if k != "slots":
                rest[k] = state[k]
        head = {"n": self.seq, "h": self.head.hex(), "state": rest}
        if table is not None:
            head["cols"] = [len(c) for c in table.columns()]
        head = json.dumps(head).encode() + b"\n"
        mac.update(head)
        yield head
        if table is not None:
            for col in table.columns():
                mac.update(col)
                yield col
        yield mac.digest()[:MAC_LEN].hex().encode() + b"\n"

    def _start_segment(self):
        header = json.dumps({"seg": self.segment, "n": self.seq, "h": self.head.hex()})
        self.fs.replace("j.%d" % self.segment, (header.encode(), b"\n"))
        self.in_segment = 0

    def _prune(self):
        for i in _names(self.fs, "s."):
            if i < self.segment:
                self.fs.remove("s.%d" % i)
        for i in _names(self.fs, "j."):
            if i <= self.segment - self.keep_segments:
                self.fs.remove("j.%d" % i)


def read_audit(fs, key, from_seq=1, raw=False):
    """Yield every retained record with n >= from_seq, checking the whole chain.
    raw: yield the stored lines instead, so the operator can check the MACs over the very
    bytes that were chained (a re-encoded dict may order its keys differently).

    Segments must join up: each header names the (n, mac) where the previous one ended.
    Raises StoreCorrupt on any break."""
    segs = _names(fs, "j.")
    end_seq = end_mac = None      # where the previous segment ended
    for n in segs:
        rows = read_segment(fs, key, n, raw)
        header, mac = next(rows)
        if end_seq is not None and (header["n"] != end_seq or mac != end_mac):
            raise StoreCorrupt("segment %d does not continue segment %d" % (n, n - 1))
        seq = header["n"]
        for record, mac in rows:
            seq += 1              # read_segment checked that records count up by one
            if seq >= from_seq:
                yield record[:-1] if raw else record     # a raw line without its LF
        end_seq, end_mac = seq, mac
