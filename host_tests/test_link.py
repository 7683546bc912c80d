"""The locker's end of a connection (firmware/core/link.py): credits, one answer per bad
request, and the limits that stop one phone holding the locker (docs/protocol.md 2)."""
import pytest
from core import fragment, phone
from core import link as L
from core import protocol as P
from hypothesis import given, settings
from hypothesis import strategies as st


def diff(a, b):
    return a - b


def rx(now=0, **kw):
    return L.Receiver(P.MAX_REQUEST, now, diff, **kw)


def feed_all(r, pieces, now=0):
    return [r.feed(p, now) for p in pieces]


@settings(max_examples=200)
@given(message=st.binary(max_size=P.MAX_REQUEST), link=st.integers(20, 244))
def test_a_whole_request_credits_every_window_and_completes(message, link):
    pieces = list(fragment.split(message, link))
    r = rx()
    out = feed_all(r, pieces)
    assert out[-1] == L.MESSAGE and r.message == message
    assert out.count(L.CREDIT_DUE) == phone.credit_points(len(pieces))
    assert [i + 1 for i, o in enumerate(out) if o == L.CREDIT_DUE] == \
        [k for k in range(L.WINDOW, len(pieces), L.WINDOW)]
    assert set(out[:-1]) <= {L.NOTHING, L.CREDIT_DUE}


# arbitrary fragments a phone (or an attacker) may send: real pieces, shuffled, cut, junk
junk = st.one_of(st.binary(max_size=30),
                 st.builds(lambda h, b: bytes((h,)) + b, st.integers(0, 255),
                           st.binary(max_size=30)))


@settings(max_examples=300)
@given(pieces=st.lists(junk, max_size=60))
def test_at_most_one_answer_per_request_whatever_arrives(pieces):
    r = rx()
    out = feed_all(r, pieces)
    # between two FIRST fragments: at most one request answered and at most one error
    run = []
    for p, o in zip(pieces, out):
        if p and p[0] & fragment.FIRST:
            run = []
        run.append(o)
        assert run.count(L.MESSAGE) <= 1 and run.count(L.ERROR) <= 1
    # after an ERROR nothing is answered until a FIRST fragment
    silent = False
    for p, o in zip(pieces, out):
        first = bool(p) and p[0] & fragment.FIRST
        if silent and not first:
            assert o == L.NOTHING
        if o == L.ERROR:
            silent = True
        elif first:
            silent = False


@settings(max_examples=100)
@given(message=st.binary(min_size=60, max_size=P.MAX_REQUEST), data=st.data())
def test_a_phone_resyncs_with_a_new_first_after_any_fault(message, data):
    pieces = list(fragment.split(message, 20))
    drop = data.draw(st.integers(1, len(pieces) - 2))
    r = rx()
    out = feed_all(r, pieces[:drop] + pieces[drop + 1:])     # one fragment lost
    assert out.count(L.ERROR) == 1 and L.MESSAGE not in out
    out = feed_all(r, pieces)
    assert out[-1] == L.MESSAGE and r.message == message


def test_oversize_request_is_one_error_then_silence():
    pieces = list(fragment.split(bytes(300), 20))               # 16 fragments
    out = feed_all(rx(), pieces)
    assert out.count(L.ERROR) == 1 and out.index(L.ERROR) == 13   # byte 257 is in #14
    assert out[14:] == [L.NOTHING, L.NOTHING]
    assert out.count(L.CREDIT_DUE) == 1


def test_credit_fragment_is_never_a_data_fragment():
    assert phone.is_credit(L.CREDIT_FRAGMENT)
    with pytest.raises(fragment.FragmentError):
        fragment.Reassembler(P.MAX_RESPONSE).feed(L.CREDIT_FRAGMENT)
    assert not any(phone.is_credit(p) for n in range(0, 300, 7) for link in (20, 244)
                   for p in fragment.split(bytes(n), link))


# ---- limits (issue 12.3) ---------------------------------------------------------------

def test_fragments_of_an_unfinished_request_do_not_restart_the_idle_timer():
    r = rx(idle_ms=30000, request_ms=10 ** 9, connection_ms=10 ** 9)
    pieces = list(fragment.split(bytes(200), 20))
    now = 0
    for p in pieces[:-1]:                        # one fragment every 29 s
        assert r.expired(now) is None
        r.feed(p, now)
        now += 29000
        if r.expired(now):
            break
    assert r.expired(now) == "idle"
    assert now == 58000


def test_a_request_has_a_deadline_from_its_first_fragment():
    r = rx(idle_ms=10 ** 9, request_ms=10000, connection_ms=10 ** 9)
    r.feed(next(fragment.split(bytes(200), 20)), 5000)
    assert r.expired(14999) is None and r.wait_ms(14999) == 1
    assert r.expired(15000) == "request too slow"


def test_hello_every_few_seconds_ends_at_the_connection_lifetime():
    r = rx(idle_ms=30000, request_ms=10000, connection_ms=300000)
    hello = next(fragment.split(P.request(P.HELLO)))
    now = 0
    while r.expired(now) is None:
        assert r.feed(hello, now) == L.MESSAGE
        now += 3000
    assert r.expired(now) == "connection too long"
    assert now == 300000


def test_wait_ms_is_the_time_to_the_next_limit():
    r = rx(idle_ms=30000, request_ms=10000, connection_ms=300000)
    assert r.wait_ms(0) == 30000
    r.feed(next(fragment.split(P.request(P.HELLO))), 25000)
    assert r.wait_ms(25000) == 30000
    r.feed(next(fragment.split(bytes(200), 20)), 40000)
    assert r.wait_ms(40000) == 10000
    assert r.wait_ms(299500) == 1                  # never 0: aioble treats 0 as "no timeout"
