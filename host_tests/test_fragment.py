"""Fragmentation (firmware/fragment.py): messages cut to the BLE link payload and put back.

A lost, repeated or reordered fragment must never yield a wrong message: it is a
FragmentError, and the reassembler starts clean on the next FIRST fragment."""
import pytest
from core import protocol as P
from core.fragment import (
    DEFAULT_LINK_PAYLOAD,
    FIRST,
    LAST,
    SEQ_MASK,
    FragmentError,
    Reassembler,
    split,
)
from hypothesis import given, settings
from hypothesis import strategies as st

links = st.integers(DEFAULT_LINK_PAYLOAD, 244)          # 20-byte ATT default .. ESP32 MTU
messages = st.binary(max_size=P.MAX_REQUEST)


def feed_all(reasm, fragments):
    out = [reasm.feed(f) for f in fragments]
    assert all(o is None for o in out[:-1])
    return out[-1]


@settings(max_examples=200)
@given(message=messages, link=links)
def test_round_trip(message, link):
    frags = list(split(message, link))
    assert all(1 < len(f) <= link or (len(f) == 1 and message == b"") for f in frags)
    assert len(frags) == max(1, -(-len(message) // (link - 1)))
    assert frags[0][0] & FIRST and frags[-1][0] & LAST
    assert [f[0] & SEQ_MASK for f in frags] == [i % 64 for i in range(len(frags))]
    assert sum(1 for f in frags if f[0] & FIRST) == 1 == sum(1 for f in frags if f[0] & LAST)
    reasm = Reassembler(P.MAX_REQUEST)
    assert feed_all(reasm, frags) == message
    assert not reasm.pending()


@settings(max_examples=100)
@given(a=messages, b=messages, link=links)
def test_back_to_back_messages(a, b, link):
    reasm = Reassembler(P.MAX_REQUEST)
    assert feed_all(reasm, list(split(a, link))) == a
    assert feed_all(reasm, list(split(b, link))) == b


def _recovers(reasm, link):
    good = bytes(range(100))
    assert feed_all(reasm, list(split(good, link))) == good


@settings(max_examples=100)
@given(message=st.binary(min_size=60, max_size=P.MAX_REQUEST), link=st.integers(20, 30),
       data=st.data())
def test_missing_fragment_is_an_error_then_recovers(message, link, data):
    frags = list(split(message, link))
    assert len(frags) >= 3
    drop = data.draw(st.integers(1, len(frags) - 2))    # a middle fragment is lost
    reasm = Reassembler(P.MAX_REQUEST)
    for f in frags[:drop]:
        assert reasm.feed(f) is None
    with pytest.raises(FragmentError):
        reasm.feed(frags[drop + 1])
    assert not reasm.pending()
    with pytest.raises(FragmentError):          # the rest of the broken message is refused
        reasm.feed(frags[-1])
    _recovers(reasm, link)


@settings(max_examples=100)
@given(message=st.binary(min_size=60, max_size=P.MAX_REQUEST), link=st.integers(20, 30),
       data=st.data())
def test_duplicate_fragment_is_an_error_then_recovers(message, link, data):
    frags = list(split(message, link))
    i = data.draw(st.integers(1, len(frags) - 1))        # a non-FIRST fragment sent twice
    reasm = Reassembler(P.MAX_REQUEST)
    for f in frags[:i]:
        reasm.feed(f)
    got = reasm.feed(frags[i])
    with pytest.raises(FragmentError):
        reasm.feed(frags[i])
    assert got is None or i == len(frags) - 1
    _recovers(reasm, link)


@settings(max_examples=100)
@given(message=st.binary(min_size=60, max_size=P.MAX_REQUEST), link=st.integers(20, 30),
       data=st.data())
def test_out_of_order_is_an_error_then_recovers(message, link, data):
    frags = list(split(message, link))
    i = data.draw(st.integers(1, len(frags) - 2))
    reasm = Reassembler(P.MAX_REQUEST)
    for f in frags[:i]:
        reasm.feed(f)
    with pytest.raises(FragmentError):
        reasm.feed(frags[i + 1])                         # i+1 before i
    with pytest.raises(FragmentError):
        reasm.feed(frags[i])
    _recovers(reasm, link)


def test_a_new_first_fragment_abandons_an_unfinished_message():
    """A phone that reconnects mid-message starts over; the stale half is dropped."""
    reasm = Reassembler(P.MAX_REQUEST)
    old = list(split(bytes(100), 20))
    reasm.feed(old[0])
    reasm.feed(old[1])
    assert reasm.pending()
    new = b"fresh request"
    assert feed_all(reasm, list(split(new, 20))) == new


def test_fragment_before_any_first_is_an_error():
    reasm = Reassembler(P.MAX_REQUEST)
    with pytest.raises(FragmentError):
        reasm.feed(bytes((1,)) + b"middle")
    with pytest.raises(FragmentError):
        reasm.feed(bytes((LAST | 2,)) + b"end")
    with pytest.raises(FragmentError):
        reasm.feed(b"")
    _recovers(reasm, 20)


@pytest.mark.parametrize("link", [20, 64, 244])
def test_oversize_is_rejected_and_the_next_message_goes_through(link):
    reasm = Reassembler(P.MAX_REQUEST)
    frags = list(split(bytes(P.MAX_REQUEST + 1), link))
    with pytest.raises(FragmentError):
        for f in frags:
            reasm.feed(f)
    assert not reasm.pending()
    assert feed_all(reasm, list(split(bytes(P.MAX_REQUEST), link))) == bytes(P.MAX_REQUEST)


def test_oversize_is_rejected_before_the_message_is_buffered():
    """The limit is enforced per fragment, so a flood never grows the buffer past it."""
    reasm = Reassembler(100)
    frags = list(split(bytes(10_000), 20))
    fed = 0
    with pytest.raises(FragmentError):
        for f in frags:
            reasm.feed(f)
            fed += 1
    assert fed == 100 // 19           # the fragment that would pass 100 bytes is refused
    assert reasm._len == 0 and len(reasm._buf) == 100    # one fixed buffer, emptied


def test_a_message_outlives_the_reused_buffer():
    """The reassembly buffer is reused for the next message: what feed() returned must be
    the caller's own copy (a request kept past the next one would otherwise change)."""
    reasm = Reassembler(P.MAX_REQUEST)
    a, b = bytes(range(60)), bytes(range(100, 160))
    got_a = feed_all(reasm, list(split(a, 20)))
    got_b = feed_all(reasm, list(split(b, 20)))
    assert (got_a, got_b) == (a, b)
    partial = list(split(bytes(200), 20))[:3]        # a third message, left half-fed
    for f in partial:
        reasm.feed(f)
    assert got_a == a and got_b == b


def test_fragments_outlive_the_next_one():
    """split() makes every fragment anew: a transport may still hold (queue, retry) the
    previous notification while the next is made."""
    message = bytes(range(200))
    held = []
    for piece in split(message, 20):
        held.append((piece, bytes(piece)))
    assert all(p == copy for p, copy in held)
    assert len({id(p) for p, _ in held}) == len(held)
    assert b"".join(bytes(p[1:]) for p, _ in held) == message


@pytest.mark.parametrize("link", [20, 21, 64])
def test_sequence_wraps_past_64_fragments(link):
    message = bytes(i * 7 & 0xFF for i in range(150 * (link - 1) + 5))
    frags = list(split(message, link))
    assert len(frags) > 128
    assert frags[64][0] & SEQ_MASK == 0 and not frags[64][0] & FIRST
    reasm = Reassembler(len(message))
    assert feed_all(reasm, frags) == message


def test_a_wrapped_sequence_still_detects_a_skip():
    frags = list(split(bytes(100 * 19), 20))
    reasm = Reassembler(len(frags) * 19)
    for f in frags[:70]:
        reasm.feed(f)
    with pytest.raises(FragmentError):
        reasm.feed(frags[71])


def test_link_payload_too_small():
    with pytest.raises(ValueError):
        list(split(b"abc", 1))
