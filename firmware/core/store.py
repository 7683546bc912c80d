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


def _index(name, prefix):
    if not name.startswith(prefix) or name.endswith(".tmp"):
        return -1
    tail = name[len(prefix):]
    return int(tail) if tail.isdigit() else -1


def _names(fs, prefix, listed=None):
    """Sorted indices of the files prefix.N in fs (or in listed, a listing already made)."""
    if listed is None:
        listed = fs.listdir()
    return sorted(i for i in (_index(n, prefix) for n in listed) if i >= 0)


_PAGE_BUF = const(128)      # > a segment header line (< 80 bytes)


def _open_segment(fs, n, buf):
    """(file, seq, start, end): segment n opened, its header line read into buf and its "n"
    (the record number before the segment's first record) read in place; buf[start:end] holds
    the bytes after the header. Raises StoreCorrupt when the file is missing or its header
    line does not name segment n ("seg") with a record number ("n")."""
    try:
        f = fs.open_read("j.%d" % n)
    except OSError:
        raise StoreCorrupt("segment %d missing" % n)
    end = f.readinto(buf) or 0
    lf = buf.find(b"\n", 0, end)
    seq = v = -1
    for key in (b'"n":', b'"seg":'):
        seq = v                   # after the loop: "n" here, "seg" in v
        i = buf.find(key, 0, lf) if lf > 0 else -1
        i = lf if i < 0 else i + len(key)
        v = -1
        while i < lf and buf[i] == 32:
            i += 1
        while i < lf and 48 <= buf[i] <= 57:
            v = max(v, 0) * 10 + buf[i] - 48
            i += 1
    if v != n or seq < 0:
        f.close()
        raise StoreCorrupt("segment %d: bad header" % n)
    return f, seq, lf + 1, end


class Store:
    def __init__(self, fs, key, segment_records=SEGMENT_RECORDS, keep_segments=KEEP_SEGMENTS):
        self.fs = fs
        self.key = key
        self.segment_records = segment_records
        self.keep_segments = keep_segments
        self.segment = 0
        self.oldest = 0           # the oldest segment kept (recover and _prune set it)
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
        self.oldest = self.segment
        for i in _names(self.fs, "j."):
            if i <= self.segment - self.keep_segments:
                self.fs.remove("j.%d" % i)
            elif i < self.oldest:
                self.oldest = i

    # ---- the audit log, as AUDIT_READ serves it ------------------------------------------

    def page(self, from_seq, limit, out, pos):
        """Write the journal lines from record from_seq on into out[pos:] as the AUDIT_READ
        answer has them (len u16 | line without its LF), at most limit lines and only whole
        lines that fit in out. Returns (count, end of what was written).

        The lines are copied as stored, their MACs unchecked (the operator checks the chain
        over them, docs/protocol.md 5.7), at a cost that does not grow with the journal: the
        segment holding from_seq is guessed from the record count and confirmed from segment
        headers alone, the lines before from_seq are counted, not decoded, and every byte
        goes through one fixed buffer. A from_seq older than the kept segments starts at the
        oldest; a torn last line (no LF) is never served. Raises StoreCorrupt when a segment
        it needs is missing, or its header has no readable "seg" and "n" or does not
        continue the previous segment's count."""
        count = 0
        if not limit:
            return count, pos
        buf = bytearray(_PAGE_BUF)
        r = self.segment_records
        # segments back from the newest (whose header says seq - in_segment), if all are full
        i = max(self.oldest, self.segment - max(0, self.seq - self.in_segment - from_seq + r) // r)
        while True:               # down to the newest segment whose records start <= from_seq
            f, seq, a, k = _open_segment(self.fs, i, buf)
            if seq < from_seq or i <= self.oldest:
                break
            f.close()
            i -= 1
        line_at = -1              # where the line being copied starts in out (-1: skipping)
        try:
            while True:
                if a >= k:
                    a, k = 0, f.readinto(buf) or 0
                    if not k:     # end of the segment: a partial line is a torn write
                        f.close()
                        if line_at >= 0:
                            pos, line_at = line_at, -1
                        i += 1
                        if i > self.segment:
                            break
                        f, start, a, k = _open_segment(self.fs, i, buf)
                        if start != seq:
                            raise StoreCorrupt("segment %d does not continue segment %d"
                                               % (i, i - 1))
                        continue
                lf = buf.find(b"\n", a, k)
                stop = k if lf < 0 else lf
                if line_at < 0 and seq >= from_seq - 1:       # record seq + 1 starts here
                    line_at = pos
                    pos += 2
                if line_at >= 0:
                    if pos + stop - a > len(out):             # the line does not fit: the end
                        pos = line_at
                        break
                    for j in range(a, stop):      # byte by byte: no slice object
                        out[pos] = buf[j]
                        pos += 1
                if lf < 0:
                    a = k
                    continue
                a = lf + 1
                seq += 1
                if line_at >= 0:
                    n = pos - line_at - 2
                    out[line_at] = n >> 8
                    out[line_at + 1] = n & 0xFF
                    line_at = -1
                    count += 1
                    if count >= limit:
                        break
        finally:
            f.close()
        return count, pos


def read_audit(fs, key, from_seq=1, raw=False):
    """Every retained record from from_seq on, the whole chain checked: core/audit_chain.py
    (host tools and tests; a board never runs it, so its code is not in the board's heap)."""
    from core import audit_chain
    return audit_chain.read_audit(fs, key, from_seq, raw)
