"""The request paths that read in place (issue 14) against the plain arithmetic they replaced:
Reader.u8/u16/u32 without slices, equal() over the first n bytes of a digest, the expiry
test on the packed deposit-time column (byte-wise, up to the u32 end in 2106), STATUS bits
from the columns, and LockerClock.now()/raise_floor() written to make no big ints. Each
reference below is the code as it was before the rework (main 6d09c71)."""
import hmac
import struct
from types import SimpleNamespace

import pytest
from core import protocol as P
from core.clock import LockerClock
from core.credentials import COURIER, Credential
from core.hmac_sha256 import equal, hmac_sha256
from core.locker import ST_OCCUPIED, ST_OUT_OF_SERVICE, Locker
from core.slot_manager import LEFT_PICKUP, OCCUPIED, SlotManager, expiry_limit
from hypothesis import given, settings
from hypothesis import strategies as st

U32 = 2 ** 32 - 1
CRED = Credential(COURIER, b"courier", 7, 1000, 2000).encode()


# ---- Reader: the same values, and E_LENGTH at the same reads -------------------------------

def _plain_read(buf, pos, kinds):
    """The Reader as it was: every read through take() (a slice), then struct.unpack."""
    out = []
    for k in kinds:
        n = {"u8": 1, "u16": 2, "u32": 4}[k]
        if pos + n > len(buf):
            out.append(("E_LENGTH", pos))
            return out
        piece = bytes(buf[pos:pos + n])
        pos += n
        out.append(piece[0] if n == 1 else struct.unpack(">H" if n == 2 else ">I", piece)[0])
    return out


@settings(max_examples=300, deadline=None)
@given(buf=st.binary(max_size=12), pos=st.integers(0, 14),
       kinds=st.lists(st.sampled_from(["u8", "u16", "u32"]), max_size=6),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_reader_reads_what_slices_read_and_stops_with_e_length(buf, pos, kinds, kind):
    r = P.Reader(kind(buf), pos)
    got = []
    for k in kinds:
        at = r.pos
        try:
            got.append(getattr(r, k)())
        except P.ProtocolError as e:
            assert e.status == P.E_LENGTH
            assert r.pos == at                  # a refused read consumes nothing
            got.append(("E_LENGTH", at))
            break
    assert got == _plain_read(buf, pos, kinds)


# ---- equal(a, b, n): a truncated tag compared against the whole digest -----------------------

@settings(max_examples=300, deadline=None)
@given(a=st.binary(max_size=40), b=st.binary(max_size=40), n=st.integers(0, 40))
def test_equal_over_n_bytes_is_the_comparison_of_the_n_byte_prefixes(a, b, n):
    want = len(a) >= n and len(b) >= n and hmac.compare_digest(a[:n], b[:n])
    assert equal(a, b, n) == want


@given(key=st.binary(min_size=1, max_size=32), msg=st.binary(max_size=64),
       cut=st.integers(0, P.TAG_LEN - 1), flip=st.integers(0, 8 * P.TAG_LEN - 1))
def test_a_short_or_changed_tag_never_verifies_against_the_digest(key, msg, cut, flip):
    digest = hmac_sha256(key, msg)
    tag = digest[:P.TAG_LEN]
    assert equal(digest, tag, P.TAG_LEN)
    assert not equal(digest, tag[:cut], P.TAG_LEN)          # truncated frame's tag
    wrong = bytearray(tag)
    wrong[flip // 8] ^= 1 << (flip % 8)
    assert not equal(digest, bytes(wrong), P.TAG_LEN)


# ---- expiry on the packed column: deposited_before(expiry_limit(now, ttl)) -----------------

_edges = st.one_of(st.integers(0, U32),
                   st.sampled_from([0, 1, 2, 255, 256, 65535, 65536, 2 ** 24, 2 ** 31 - 1,
                                    2 ** 31, U32 - 1, U32]))


@settings(max_examples=500, deadline=None)
@given(deposit=_edges, now=_edges, ttl=st.one_of(st.integers(1, U32),
                                                 st.sampled_from([1, 86400, 3 * 86400, U32])),
       near=st.integers(-2, 2))
def test_expiry_in_the_column_is_now_past_deposit_plus_ttl(deposit, now, ttl, near):
    """Old arithmetic: expired when now > deposit_ts + ttl_s (Python ints, no wrap). Also
    right at the boundary (now = deposit + ttl + near) and at the u32 end (2106)."""
    for t in (now, min(max(deposit + ttl + near, 0), U32)):
        sm = SlotManager([1])
        sm.deposit(1, 1, deposit, CRED, bytes(8))
        assert sm.deposited_before(0, expiry_limit(t, ttl)) == (t > deposit + ttl)
        assert sm.expired(t, ttl) == ([1] if t > deposit + ttl else [])


# ---- STATUS bits from the columns against the slot view --------------------------------------

_ops = st.lists(st.tuples(st.sampled_from(["dep", "rel", "oos", "ins"]), st.integers(1, 4),
                          st.integers(0, U32)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, now=_edges, ttl=st.integers(1, U32),
       doors=st.lists(st.sampled_from([None, False, True]), min_size=4, max_size=4))
def test_status_bits_from_the_columns_are_the_slot_views_bits(ops, now, ttl, doors):
    sm = SlotManager([1, 2, 3, 4])
    for op, sid, x in ops:
        if op == "dep" and sm.get(sid).state != OCCUPIED:
            sm.deposit(sid, x % 7, x, CRED, x.to_bytes(8, "big"))
        elif op == "rel" and sm.get(sid).state == OCCUPIED:
            sm.release(sid, x, LEFT_PICKUP)
        elif op == "oos":
            sm.set_service(sid, False)
        elif op == "ins":
            sm.set_service(sid, True)
    lk = SimpleNamespace(slots=sm, cfg={"ttl_s": ttl},
                         locks=SimpleNamespace(driver=SimpleNamespace(
                             door_open=lambda sid: doors[sid - 1])))
    expiry = Locker._expiry(lk, now)
    for sid in sm.sids():
        s = sm.at(sid)                       # the bits as _slot_bits(s, now) made them
        want = 0
        if s.state == OCCUPIED:
            want |= ST_OCCUPIED
            if now > s.deposit_ts + ttl:
                want |= 2
        if s.out_of_service:
            want |= ST_OUT_OF_SERVICE
        if doors[sid - 1] is not None:
            want |= 16 | (8 if doors[sid - 1] else 0)
        assert Locker._slot_bits(lk, sid, expiry) == want


# ---- LockerClock: the same times as the plain sums --------------------------------------------

_MAX_TIME = U32 - 366 * 86400
_STEP = 8 * 86400


class _PlainClock(LockerClock):
    def now(self):
        up = self._uptime()
        follow = self._last + up - self._boot_uptime
        r = self._rtc() + self._offset
        if follow < r <= (follow + _STEP if self._last else _MAX_TIME) and r <= _MAX_TIME:
            follow = r
        elif r > follow:
            self.rtc_refused = r
        self._last = follow = min(follow, _MAX_TIME)
        self._boot_uptime = up
        return follow

    def raise_floor(self, t):
        if t > self._floor:
            self._floor = t
        if t > self._last + self._uptime() - self._boot_uptime:
            self._last = t
            self._boot_uptime = self._uptime()


_clock_steps = st.lists(st.tuples(
    st.sampled_from(["now", "near", "floor", "advance"]),
    st.integers(0, 10 ** 6),                                     # uptime step (never back)
    st.one_of(st.integers(-2 ** 33, 2 ** 33), st.integers(0, 2 * 86400),
              st.sampled_from([0, _MAX_TIME, _MAX_TIME + 1, U32, _STEP - 1, _STEP, _STEP + 1]))),
    max_size=25)


@settings(max_examples=300, deadline=None)
@given(floor=st.one_of(st.just(0), st.integers(0, _MAX_TIME)), steps=_clock_steps,
       rtc0=st.integers(0, U32))
def test_clock_gives_the_times_its_plain_sums_gave(floor, steps, rtc0):
    clocks = []
    for cls in (LockerClock, _PlainClock):
        st_ = {"up": 0, "rtc": rtc0}
        clocks.append((cls(lambda s=st_: s["rtc"], lambda s=st_: s["up"], floor), st_))
    for op, up_step, value in steps:
        seen = []
        last = clocks[0][0]._last             # the same in both (checked below)
        for clock, st_ in clocks:
            st_["up"] += up_step
            if op in ("now", "near"):           # near: the RTC a step off the clock
                st_["rtc"] = value if op == "now" else last + up_step + value % (_STEP + 2)
                seen.append(clock.now())
            elif op == "floor":
                clock.raise_floor(abs(value) % (_MAX_TIME + 1))
                seen.append(clock.now())
            else:
                seen.append(clock.advance_to(abs(value) % (U32 + 1)))
            seen.append((clock.rtc_refused, clock._last, clock._floor, clock._offset))
        half = len(seen) // 2
        assert seen[:half] == seen[half:]


@pytest.mark.parametrize("now,ttl", [(U32, 1), (U32, U32), (0, U32), (_MAX_TIME, 86400)])
def test_expiry_limit_fits_four_bytes_over_the_whole_u32_range(now, ttl):
    assert len(expiry_limit(now, ttl)) == 4


# ---- reused buffers: nothing handed out changes when the next one is built --------------------

@settings(max_examples=100, deadline=None)
@given(a=st.binary(min_size=1, max_size=P.MAX_REQUEST), b=st.binary(min_size=1,
                                                                    max_size=P.MAX_REQUEST),
       payload=st.integers(2, 64))
def test_a_reassembled_message_stays_put_while_the_next_one_arrives(a, b, payload):
    """The connection's reassembly buffer is reused: the request the locker got must not
    change when the next request's fragments are written into it (also a cut one)."""
    from core import fragment, link
    rx = link.Receiver(P.MAX_REQUEST, 0, lambda x, y: x - y, window=10 ** 6)
    got = []
    for message in (a, b):
        for piece in fragment.split(message, payload):
            if rx.feed(piece, 0) == link.MESSAGE:
                got.append(rx.message)
    assert got == [a, b]
    for piece in list(fragment.split(b"\xee" * P.MAX_REQUEST, payload))[:-1]:
        rx.feed(piece, 0)                     # a third request, never finished
    assert got == [a, b]


def test_answers_and_journal_lines_are_not_shared_buffers():
    """response() builds every answer through one 3-byte header buffer and encode_line() a
    line in one buffer: an answer still queued for notification, or a line handed to the
    flash, is not changed by the next one."""
    from core import store as S
    first = P.response(P.HELLO, P.OK, b"\x01" * 16, b"body-1", (b"k" * 32, b"pre", b""))
    kept = bytes(first)
    P.response(P.STATUS, P.E_AUTH, b"\x02" * 16, b"other body")
    assert first == kept
    line, _ = S.encode_line(b"k" * 32, S.GENESIS, {"e": "x", "n": 1})
    kept = bytes(line)
    S.encode_line(b"k" * 32, S.GENESIS, {"e": "yy", "n": 2})
    assert line == kept


@settings(max_examples=200, deadline=None)
@given(holders=st.lists(st.one_of(st.none(), st.binary(min_size=1, max_size=12)), min_size=3,
                        max_size=3),
       asked=st.binary(min_size=1, max_size=12), pick=st.integers(0, 2))
def test_holder_is_in_the_column_is_the_slot_views_holder(holders, asked, pick):
    """RECLAIM's "your own parcel" test, read in the credential column in place."""
    sm = SlotManager([1, 1, 1])
    for sid, h in enumerate(holders, 1):
        if h is not None:
            sm.deposit(sid, 1, 1000, Credential(COURIER, h, 7, 1000, 2000).encode(), bytes(8))
    for who in (asked, holders[pick] or asked, (holders[pick] or b"x")[:-1] or b"y"):
        for sid in sm.sids():
            assert sm.holder_is(sid, who) == (holders[sid - 1] == who)
