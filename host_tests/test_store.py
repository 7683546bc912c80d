"""The journal + snapshot store: what survives, what is refused, what the audit chain proves.

A store that fails its checks must stop the locker (docs/architecture.md rule 3, Open-Locker:
"a corrupt state file blocks start-up"); a write the power cut interrupted must not."""
import json
import os

import pytest
from core import phone
from core import protocol as P
from core import store as S
from core import store_recover
from drivers import flash_fs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockerctl.rig import LOCKER_ID, MASTER, Bench
from test_anchor import cycle   # n deposits and pickups through the Bench

KEY = bytes(range(100, 132))


class ListUser:
    """The smallest store user: its live state is a list of values, one record each.

    Follows the locker's rules: recover or create at boot, compact when asked, one append
    per change."""

    def __init__(self, fs, segment_records=4, keep_segments=3):
        self.fs = fs
        self.store = S.Store(fs, KEY, segment_records, keep_segments)
        self.items = []

    def boot(self):
        if not self.store.recover(self._load, self._apply):
            self.store.create(self._state())
        if self.store.needs_compaction():
            self.store.snapshot(self._state())
        return self

    def _state(self):
        return {"items": list(self.items)}

    def _load(self, d):
        self.items = list(d["items"])

    def _apply(self, record):
        self.items.append(record["v"])

    def add(self, v):
        record = self.store.append({"v": v})
        self._apply(record)
        if self.store.needs_compaction():
            self.store.snapshot(self._state())
        return record


def reboot(folder, **kw):
    return ListUser(flash_fs.FolderFs(folder), **kw).boot()


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "store")


def files(folder, prefix):
    return sorted(int(n[len(prefix):]) for n in os.listdir(folder)
                  if n.startswith(prefix) and n[len(prefix):].isdigit())


def records_in(folder, seg):
    with open(os.path.join(folder, "j.%d" % seg), "rb") as f:
        return len(f.read().splitlines()) - 1          # minus the header line


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes((b[0] ^ 0x01,)))


# ---- round trip, compaction, pruning, audit --------------------------------------------

def test_empty_folder_is_a_fresh_store(folder):
    st_ = S.Store(flash_fs.FolderFs(folder), KEY)
    assert st_.recover(lambda d: 1 / 0, lambda r: 1 / 0) is False
    assert os.path.isdir(folder)


def test_append_then_recover_round_trip(folder):
    u = reboot(folder, segment_records=50)
    for v in range(7):
        u.add(v)
    again = reboot(folder, segment_records=50)
    assert again.items == list(range(7))
    assert again.store.seq == u.store.seq == 7
    assert again.store.head == u.store.head
    again.add(7)
    assert reboot(folder, segment_records=50).items == list(range(8))


def test_compaction_every_segment_records(folder):
    u = reboot(folder, segment_records=4, keep_segments=100)
    for v in range(1, 15):
        u.add(v)
        assert u.store.segment == 1 + v // 4
        assert u.store.in_segment == v % 4
    # every full segment holds exactly segment_records records; the live one the rest
    assert [records_in(folder, s) for s in files(folder, "j.")] == [4, 4, 4, 2]
    assert files(folder, "s.") == [4]          # only the newest snapshot is kept
    assert reboot(folder, segment_records=4, keep_segments=100).items == list(range(1, 15))


def test_old_segments_pruned_to_keep_segments(folder):
    u = reboot(folder, segment_records=3, keep_segments=2)
    for v in range(20):
        u.add(v)
    seg = u.store.segment
    assert files(folder, "j.") == [seg - 1, seg]
    assert files(folder, "s.") == [seg]
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_read_audit_checks_the_chain_across_segments(folder):
    u = reboot(folder, segment_records=3, keep_segments=3)
    for v in range(11):
        u.add(v)
    got = list(S.read_audit(u.fs, KEY))
    ns = [r["n"] for r in got]
    assert ns == list(range(ns[0], 12))          # consecutive up to the last record
    assert [r["v"] for r in got] == list(range(11))[-len(got):]
    assert len(got) > 3                          # spans more than one segment
    assert [r["n"] for r in S.read_audit(u.fs, KEY, from_seq=9)] == [9, 10, 11]
    # the wrong key cannot verify the chain
    with pytest.raises(S.StoreCorrupt):
        list(S.read_audit(u.fs, bytes(32)))


# ---- torn writes ---------------------------------------------------------------------------

def test_torn_tail_is_dropped_and_store_compacts_before_appending(folder):
    u = reboot(folder, segment_records=50)
    for v in range(3):
        u.add(v)
    seg = u.store.segment
    line, _ = S.encode_line(KEY, u.store.head, {"v": 99, "n": 4})
    with open(os.path.join(folder, "j.%d" % seg), "ab") as f:
        f.write(line[:len(line) // 2])                         # the power cut mid-append
    again = ListUser(flash_fs.FolderFs(folder), segment_records=50)
    assert again.store.recover(again._load, again._apply)
    assert again.items == [0, 1, 2]
    assert again.store.needs_compaction()
    again.boot()                                  # recover again + compact (as at boot)
    assert again.store.segment == seg + 1         # new segment: never append after garbage
    again.add(3)
    assert reboot(folder, segment_records=50).items == [0, 1, 2, 3]
    assert [r["v"] for r in S.read_audit(again.fs, KEY)] == [0, 1, 2, 3]


def test_damaged_whole_last_record_is_corrupt_not_torn(folder):
    """A cut never leaves a complete line behind (a torn write lacks its newline), so a
    whole last line that fails its MAC is damage, not a cut: refused, not dropped."""
    u = reboot(folder, segment_records=50)
    for v in range(3):
        u.add(v)
    path = os.path.join(folder, "j.%d" % u.store.segment)
    size = os.path.getsize(path)
    for offset in (size - 5, size - 40):          # in the MAC, in the JSON body
        with open(path, "rb") as f:
            original = f.read()
        flip(path, offset)
        with pytest.raises(S.StoreCorrupt):
            reboot(folder, segment_records=50)
        with open(path, "wb") as f:
            f.write(original)
    assert reboot(folder, segment_records=50).items == [0, 1, 2]


# ---- corruption is refused --------------------------------------------------------------

def _store_with_records(folder, n=5, **kw):
    u = reboot(folder, segment_records=50, **kw)
    for v in range(n):
        u.add(v)
    return u


def test_flipped_byte_anywhere_in_a_non_last_record_is_corrupt(folder):
    u = _store_with_records(folder)
    path = os.path.join(folder, "j.%d" % u.store.segment)
    with open(path, "rb") as f:
        original = f.read()
    lines = original.splitlines(keepends=True)
    start = len(lines[0])                         # after the header
    end = len(original) - len(lines[-1])          # before the last record
    for offset in range(start, end):
        with open(path, "wb") as f:
            f.write(original)
        flip(path, offset)
        with pytest.raises(S.StoreCorrupt):
            reboot(folder)
    assert end - start > 100                      # really walked several records


def test_flipped_byte_in_the_segment_chain_link_is_corrupt(folder):
    u = _store_with_records(folder)
    path = os.path.join(folder, "j.%d" % u.store.segment)
    with open(path, "rb") as f:
        header = f.readline()
    h_at = header.index(b'"h": "') + 6
    flip(path, h_at + 3)
    with pytest.raises(S.StoreCorrupt):
        reboot(folder)


def test_flipped_byte_in_snapshot_is_corrupt(folder):
    u = _store_with_records(folder)
    path = os.path.join(folder, "s.%d" % u.store.segment)
    with open(path, "rb") as f:
        original = f.read()
    for offset in range(0, len(original) - 1):     # every byte but the final newline
        with open(path, "wb") as f:
            f.write(original)
        flip(path, offset)
        with pytest.raises(S.StoreCorrupt):
            reboot(folder)


def test_journal_without_snapshot_is_corrupt(folder):
    u = _store_with_records(folder)
    os.remove(os.path.join(folder, "s.%d" % u.store.segment))
    with pytest.raises(S.StoreCorrupt):
        reboot(folder)


def test_deleted_middle_segment_breaks_the_audit_chain(folder):
    u = reboot(folder, segment_records=3, keep_segments=4)
    for v in range(12):
        u.add(v)
    segs = files(folder, "j.")
    assert len(segs) == 4
    os.remove(os.path.join(folder, "j.%d" % segs[1]))
    assert reboot(folder, segment_records=3, keep_segments=4).items == list(range(12))
    with pytest.raises(S.StoreCorrupt):
        list(S.read_audit(flash_fs.FolderFs(folder), KEY))


def test_flipped_byte_in_an_old_segment_breaks_the_audit_chain(folder):
    u = reboot(folder, segment_records=3, keep_segments=4)
    for v in range(12):
        u.add(v)
    old = files(folder, "j.")[1]
    path = os.path.join(folder, "j.%d" % old)
    for offset in (os.path.getsize(path) // 2, os.path.getsize(path) - 3):  # middle / last
        with open(path, "rb") as f:
            original = f.read()
        flip(path, offset)
        with pytest.raises(S.StoreCorrupt):
            list(S.read_audit(flash_fs.FolderFs(folder), KEY))
        with open(path, "wb") as f:
            f.write(original)
    assert len(list(S.read_audit(flash_fs.FolderFs(folder), KEY))) >= 9


# ---- the locker refuses to serve from a corrupt store ------------------------------------

class DeskBoard:
    """The board interface main.Runtime needs, built from sim_hw's fakes (no radio)."""

    def __init__(self, folder, time):
        from targets import sim_hw
        self.folder = folder
        self.time = time
        os.makedirs(folder, exist_ok=True)
        with open(self.path("locker.json"), "w") as f:
            json.dump({"locker_id": LOCKER_ID.hex(), "layout": "S*2,M*2,L"}, f)
        self.driver = sim_hw.SimLockDriver(5, ticks_ms=time.ticks_ms)
        self.rtc_unix, self.uptime_s = time.rtc_unix, time.uptime_s
        self.ticks_ms, self.ticks_diff = time.ticks_ms, time.ticks_diff
        self.random_bytes = os.urandom

    def path(self, name):
        return self.folder + "/" + name

    def lock_driver(self):
        return self.driver

    def read_secret(self):
        return MASTER

    def store_fs(self):
        return flash_fs.FolderFs(self.path("store"))


def test_corrupt_store_halts_the_locker_with_a_clear_answer(tmp_path):
    from lockerctl import firmware
    from targets import sim_hw
    main = firmware.load_main()

    folder = str(tmp_path / "board")
    board = DeskBoard(folder, sim_hw.ManualTime())
    rt = main.Runtime(board)
    rt.boot()
    assert rt.locker.halted == ""            # serving
    session = rt.locker.new_session()
    assert rt.locker.handle(session, P.request(P.HELLO))[2] == P.OK
    for _ in range(3):                 # a few records after the boot record
        rt.locker._commit({"e": "clock"})
    store_dir = board.path("store")
    seg = max(files(store_dir, "j."))
    flip(os.path.join(store_dir, "j.%d" % seg), os.path.getsize(
        os.path.join(store_dir, "j.%d" % seg)) // 2)

    rt = main.Runtime(DeskBoard(folder, board.time))
    rt.boot()
    assert rt.locker.halted and "store corrupt" in rt.locker.halted
    answer = rt.locker.handle(rt.locker.new_session(), P.request(P.HELLO))
    _, status, _, body = phone.parse_response(answer)
    assert status == P.E_INTERNAL
    assert "locker halted" in phone.parse_error(body)[1]
    assert rt.bank.energised() == []


def test_bench_boot_raises_store_corrupt(tmp_path):
    b = Bench(str(tmp_path / "s"))
    b.client.deposit(b.courier(), size=1)
    b.client.deposit(b.courier(), size=1)
    seg = b.locker.store.segment
    path = os.path.join(b.folder, "j.%d" % seg)
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    flip(path, len(lines[0]) + 10)               # inside the first record (not the last)
    with pytest.raises(S.StoreCorrupt):
        b.boot()


def test_audit_read_over_a_broken_chain_answers_an_error(tmp_path):
    """The handler never raises: a tampered old segment is an error answer, not a crash."""
    b = Bench(str(tmp_path / "s"), segment_records=3, keep_segments=4)
    cred = cycle(b, 4)
    segs = files(b.folder, "j.")
    assert len(segs) >= 3
    os.remove(os.path.join(b.folder, "j.%d" % segs[1]))
    tech = b.technician()
    from lockerctl.client import LockerRefused
    with pytest.raises(LockerRefused) as e:
        b.client.audit_page(tech, from_seq=1)
    assert e.value.status == P.E_INTERNAL
    # the live state is untouched: deposits still work
    assert b.client.deposit(cred, size=1).slot >= 1


def test_audit_read_serves_a_tampered_line_and_refuses_a_bad_header(tmp_path):
    """AUDIT_READ (docs/protocol.md 5.7): a flipped byte in an old record is served as stored
    and the operator's chain check names it; a segment header without its record number
    is E_INTERNAL "audit log corrupt" for the pages that need it, and changes nothing."""
    from lockerctl.client import LockerRefused
    from lockerctl.operator import verify_chain
    from core.kdf import audit_key
    b = Bench(str(tmp_path / "s"), segment_records=3, keep_segments=4)
    cred = cycle(b, 5)
    tech = b.technician()
    clean = b.client.audit_page(tech, from_seq=1)
    assert verify_chain(clean, audit_key(MASTER)) == (
        [json.loads(line.split(b"\t")[0]) for line in clean], None)
    segs = files(b.folder, "j.")
    assert len(segs) == 4 and segs[-1] == b.locker.store.segment, segs
    path = os.path.join(b.folder, "j.%d" % segs[1])
    with open(path, "rb") as f:
        head = len(f.readline())
        at = head + f.readline().index(b'"t": ') + 6      # a digit of the time: stays JSON
    flip(path, at)
    served = b.client.audit_page(tech, from_seq=1)
    assert len(served) == len(clean) and served != clean
    records, problem = verify_chain(served, audit_key(MASTER))
    assert problem and "does not match its chain MAC" in problem
    flip(path, at)
    _spoil_header(b.folder, segs[1], b'{"seg": %d, "h": "00"}\n' % segs[1])
    with pytest.raises(LockerRefused) as e:
        b.client.audit_page(tech, from_seq=1)
    assert e.value.status == P.E_INTERNAL and "bad header" in str(e.value)
    last = b.client.audit_page(tech, from_seq=b.locker.store.seq)    # needs segment 5 alone
    assert [json.loads(line.split(b"\t")[0])["n"] for line in last] == [b.locker.store.seq]
    assert b.client.deposit(cred, size=1).slot >= 1


def test_torn_tail_in_the_locker_journal_boots_and_compacts(tmp_path):
    b = Bench(str(tmp_path / "s"))
    d = b.client.deposit(b.courier(), size=1)
    seg = b.locker.store.segment
    with open(os.path.join(b.folder, "j.%d" % seg), "ab") as f:
        f.write(b'{"e": "pick", "s": 1, "g"')          # half a record: a cut mid-append
    b.boot()
    assert b.locker.store.segment == seg + 1
    assert b.locker.slots.get(d.slot).state == 1
    assert b.client.pickup(d.code)["slot"] == d.slot


# ---- the store against a list model ------------------------------------------------------

ops = st.lists(st.one_of(st.tuples(st.just("add"), st.integers(0, 10 ** 6)),
                         st.tuples(st.just("reboot"), st.none()),
                         st.tuples(st.just("compact"), st.none())), max_size=40)


@settings(max_examples=int(os.environ.get("LOCKER_EXAMPLES", 60)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, seg=st.integers(1, 6), keep=st.integers(2, 4))
def test_store_matches_a_list_model(tmp_path_factory, ops, seg, keep):
    folder = str(tmp_path_factory.mktemp("model") / "store")
    model = []
    u = reboot(folder, segment_records=seg, keep_segments=keep)
    for op, arg in ops:
        if op == "add":
            r = u.add(arg)
            model.append(arg)
            assert r["n"] == len(model)          # one record per change, no gaps
        elif op == "reboot":
            u = reboot(folder, segment_records=seg, keep_segments=keep)
        else:
            u.store.snapshot(u._state())
        assert u.items == model
        assert len(files(folder, "s.")) == 1
        assert len(files(folder, "j.")) <= keep
    u = reboot(folder, segment_records=seg, keep_segments=keep)
    assert u.items == model
    audit = [r["v"] for r in S.read_audit(u.fs, KEY)]
    assert audit == model[len(model) - len(audit):]
    assert len(audit) >= min(len(model), u.store.in_segment)


def test_record_lines_are_what_the_doc_says():
    """<json>\\t<mac hex>\\n with mac = HMAC(key, prev | json)[:16], checked independently."""
    import hashlib
    import hmac
    line, mac = S.encode_line(KEY, S.GENESIS, {"e": "x", "n": 1})
    body, _, tail = line.rstrip(b"\n").rpartition(b"\t")
    want = hmac.new(KEY, S.GENESIS + body, hashlib.sha256).digest()[:16]
    assert bytes.fromhex(tail.decode()) == want == mac
    assert line.endswith(b"\n") and body == json.dumps({"e": "x", "n": 1}).encode()


# ---- the journal line decoder: the same verdicts as its plain reading ------------------------

def _plain_decode(key, prev_mac, line):
    """decode_line as first written (split, hex-decode, compare): the reference the in-place
    decoder must agree with on every input."""
    if not line.endswith(b"\n"):
        return None
    body, sep, mac_hex = line[:-1].rpartition(b"\t")
    if not sep or len(mac_hex) != 2 * S.MAC_LEN:
        return None
    try:
        mac = bytes.fromhex(mac_hex.decode())
    except ValueError:
        return None
    if S.chain_mac(key, prev_mac, body) != mac:
        return None
    try:
        return json.loads(body), mac
    except ValueError:
        return None


_records = st.dictionaries(st.sampled_from(["e", "s", "n", "t", "c"]),
                           st.one_of(st.integers(0, 2 ** 32), st.text(max_size=12)),
                           max_size=5)


@settings(max_examples=400, deadline=None)
@given(record=_records, edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                       max_size=3),
       upper=st.booleans(), cut=st.integers(0, 400))
def test_decode_line_agrees_with_its_plain_reading(record, edits, upper, cut):
    """Fuzzed journal lines (byte edits, upper-case MAC digits, truncation): the in-place
    decoder accepts exactly the lines the plain one does, with the same record and MAC."""
    line, _ = S.encode_line(KEY, S.GENESIS, record)
    line = bytearray(line)
    if upper:
        tab = line.rfind(b"\t")
        line[tab + 1:-1] = bytes(line[tab + 1:-1]).upper()
    for at, value in edits:
        if at < len(line):
            line[at] = value
    line = bytes(line[:len(line) - cut % (len(line) + 1)] if cut % 3 == 0 else line)
    assert store_recover.decode_line(KEY, S.GENESIS, line) == _plain_decode(KEY, S.GENESIS, line)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_decode_line_refuses_noise_like_its_plain_reading(noise):
    for line in (noise, noise + b"\n", noise + b"\t" + b"0" * 32 + b"\n"):
        assert store_recover.decode_line(KEY, S.GENESIS, line) == _plain_decode(
            KEY, S.GENESIS, line)


# ---- AUDIT_READ's page: the stored lines, unchecked, at a fixed cost ---------------------

_ANSWER = P.MAX_RESPONSE - 3 - P.CHALLENGE_LEN - P.TAG_LEN      # what locker._audit_read uses


def page_by_reading_the_chain(fs, from_seq, limit, budget):
    """The answer as the locker built it before audit_page: every retained line decoded and
    its MAC checked from the oldest segment on (read_audit raw), then packed the same way."""
    out, count = bytearray(1), 0
    for line in S.read_audit(fs, KEY, from_seq, True):
        if count >= limit or len(out) + 2 + len(line) > budget:
            break
        out += len(line).to_bytes(2, "big") + line
        count += 1
    out[0] = count
    return bytes(out)


def page(store, from_seq, limit, budget=_ANSWER):
    out = bytearray(budget)
    count, end = store.page(from_seq, limit, out, 1)
    out[0] = count
    return bytes(out[:end])


def tear(folder, u, size):
    """A power cut mid-append: the first `size` bytes of the next record's line, no LF."""
    line, _ = S.encode_line(KEY, u.store.head, {"v": "x" * 40, "n": u.store.seq + 1})
    with open(os.path.join(folder, "j.%d" % u.store.segment), "ab") as f:
        f.write(line[:min(size, len(line) - 1)])


journal_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.text(max_size=700)),       # lines longer than the buffer
    st.tuples(st.just("tear"), st.integers(0, 120)),        # torn tail, then reboot/compact
    st.tuples(st.just("compact"), st.none())), max_size=30)


@settings(max_examples=int(os.environ.get("LOCKER_EXAMPLES", 60)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=journal_ops, seg=st.integers(1, 5), keep=st.integers(1, 4),
       last_torn=st.integers(0, 120) | st.none(), asks=st.lists(st.tuples(
           st.integers(0, 40), st.integers(0, 255), st.integers(1, _ANSWER)), min_size=1,
           max_size=8))
def test_audit_page_gives_what_reading_the_chain_gave(tmp_path_factory, ops, seg, keep,
                                                      last_torn, asks):
    """Any journal (segment boundaries, segments compaction dropped, torn tails in old
    segments and at the end, lines longer than the read buffer or the answer), any from_seq,
    limit and answer size: the same bytes as the reading that checked the whole chain."""
    folder = str(tmp_path_factory.mktemp("page") / "store")
    u = reboot(folder, segment_records=seg, keep_segments=keep)
    for op, arg in ops:
        if op == "add":
            u.add(arg)
        elif op == "tear":
            tear(folder, u, arg)
            u = reboot(folder, segment_records=seg, keep_segments=keep)
        else:
            u.store.snapshot(u._state())
    if last_torn is not None:
        tear(folder, u, last_torn)
    for from_seq, limit, budget in asks:
        assert page(u.store, from_seq, limit, budget) == \
            page_by_reading_the_chain(u.fs, from_seq, limit, budget)


def _journal(folder, n=12):
    u = reboot(folder, segment_records=3, keep_segments=4)
    for v in range(n):
        u.add(v)
    return u, files(folder, "j.")


def _spoil_header(folder, seg, header=b'{"seg": 0, "h": "00"}\n'):
    path = os.path.join(folder, "j.%d" % seg)
    with open(path, "rb") as f:
        rest = f.read().split(b"\n", 1)[1]
    with open(path, "wb") as f:
        f.write(header + rest)


@pytest.mark.parametrize("header", [b'{"seg": 3, "h": "00"}\n', b'{"seg": 3, "n": "9"}\n',
                                    b'{"seg": 2, "n": 6}\n', b'{"n": 6}\n',
                                    b"", b"\xff" * 300, b'{"n": 9'])
def test_audit_page_refuses_a_header_it_reads_that_has_no_record_number(folder, header):
    """The page needs the header of the segment it starts in (and of each one it goes on
    into) for the record numbers: without one it cannot say which line is which."""
    u, segs = _journal(folder)
    assert segs == [2, 3, 4, 5]              # records 4-6, 7-9, 10-12, none yet
    before = page(u.store, 10, 255)
    _spoil_header(folder, 3, header)
    with pytest.raises(S.StoreCorrupt, match="segment 3: bad header"):
        page(u.store, 8, 255)                   # found by the newest-first search
    with pytest.raises(S.StoreCorrupt, match="segment 3: bad header"):
        page(u.store, 1, 255)                   # crossed into from the oldest segment
    # the pages that never read that header are served, as stored
    assert page(u.store, 10, 255) == before and before[0] == 3


@pytest.mark.parametrize("gone", [2, 3])
def test_audit_page_refuses_a_missing_segment_it_needs(folder, gone):
    """Every segment from the oldest kept to the newest must be there (the store knows which
    it kept): a deleted one, oldest or in the middle, is corruption once a page needs it."""
    u, segs = _journal(folder)
    before = page(u.store, 10, 255)
    os.remove(os.path.join(folder, "j.%d" % gone))
    for from_seq in (1, 5, 8) if gone == 3 else (1, 5):
        with pytest.raises(S.StoreCorrupt, match="segment %d missing" % gone):
            page(u.store, from_seq, 255)
    assert page(u.store, 10, 255) == before and before[0] == 3       # after the gap: served
    again = reboot(folder, segment_records=3, keep_segments=4)
    if gone == 3:                     # after a reboot, the gap is still found
        with pytest.raises(S.StoreCorrupt, match="segment 3 missing"):
            page(again.store, 1, 255)
    else:                             # the oldest present is the oldest kept (as ever)
        assert json.loads(page(again.store, 1, 1)[3:].split(b"\t")[0])["n"] == 7


def test_audit_page_refuses_a_segment_that_does_not_continue_the_count(folder):
    u, segs = _journal(folder)
    _spoil_header(folder, 4, b'{"seg": 4, "n": 7, "h": "00"}\n')     # records 10-12 say 8-10
    with pytest.raises(S.StoreCorrupt, match="segment 4 does not continue segment 3"):
        page(u.store, 8, 255)
    with pytest.raises(S.StoreCorrupt, match="segment 5 does not continue segment 4"):
        page(u.store, 10, 255)                   # counted from segment 4's header: 8-10
    assert page(u.store, 13, 255) == b"\x00"    # the newest segment alone: nothing yet


def test_audit_page_serves_a_tampered_line_as_stored_and_the_operator_sees_it(folder):
    """The locker no longer re-checks the MACs of the lines it serves (their key is in the
    same flash as the journal): a flipped byte reaches the operator, whose check refuses it."""
    from lockerctl.operator import verify_chain
    u, segs = _journal(folder)
    first = next(S.read_audit(u.fs, KEY))["n"]
    path = os.path.join(folder, "j.%d" % segs[1])
    with open(path, "rb") as f:
        head = len(f.readline())
    flip(path, head + 3)                                    # in the segment's first record
    with pytest.raises(S.StoreCorrupt):
        list(S.read_audit(u.fs, KEY))                       # the full check still sees it
    body, pos, lines = page(u.store, 1, 255), 1, []
    for _ in range(body[0]):
        n = int.from_bytes(body[pos:pos + 2], "big")
        lines.append(body[pos + 2:pos + 2 + n])
        pos += 2 + n
    assert len(lines) == 12 - first + 1                     # every retained line
    records, problem = verify_chain(lines, KEY)
    assert problem and len(records) < len(lines)
