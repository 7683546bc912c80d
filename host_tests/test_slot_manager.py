"""Slot table: allocation rule, out-of-service, the idempotent-deposit ring, persistence."""
import json

import pytest
from core.slot_manager import FREE, LEFT_PICKUP, OCCUPIED, RECENT_DEPOSITS, SlotManager
from hypothesis import given, settings
from hypothesis import strategies as st

CRED = bytes(range(20))


def brute_force(sizes, occupied, oos, usable, size):
    """Smallest slot that fits, lowest id among equals: written the obvious way."""
    fits = [sid for sid in range(1, len(sizes) + 1)
            if sid not in occupied and sid not in oos and sid in usable
            and sizes[sid - 1] >= size]
    if not fits:
        return None
    smallest = min(sizes[sid - 1] for sid in fits)
    return min(sid for sid in fits if sizes[sid - 1] == smallest)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), sizes=st.lists(st.integers(1, 4), min_size=1, max_size=40),
       size=st.integers(1, 4))
def test_allocation_is_smallest_that_fits_then_lowest_id(data, sizes, size):
    n = len(sizes)
    sids = st.sets(st.integers(1, n))
    occupied, oos, unusable = data.draw(sids), data.draw(sids), data.draw(sids)
    sm = SlotManager(sizes)
    for sid in occupied:
        sm.deposit(sid, 1, 1000, CRED, b"r%07d" % sid, b"c")
    for sid in oos:
        sm.set_service(sid, False)
    usable = set(range(1, n + 1)) - unusable
    got = sm.allocate(size, lambda sid: sid in usable)
    assert got == brute_force(sizes, occupied, oos, usable, size)
    if got is not None:
        assert got not in oos and got not in occupied and sizes[got - 1] >= size


def test_out_of_service_slot_is_never_allocated():
    sm = SlotManager([1, 1, 2])
    sm.set_service(1, False)
    assert sm.allocate(1, lambda sid: True) == 2
    sm.set_service(2, False)
    assert sm.allocate(1, lambda sid: True) == 3
    sm.set_service(3, False)
    assert sm.allocate(1, lambda sid: True) is None
    sm.set_service(1, True)
    assert sm.allocate(1, lambda sid: True) == 1


def test_recent_deposit_ring_is_bounded_and_keeps_the_newest():
    sm = SlotManager([1])
    reqs = [b"req%05d" % i for i in range(RECENT_DEPOSITS + 10)]
    for gen, req in enumerate(reqs, 1):
        sm.deposit(1, gen, 1000 + gen, CRED, req, b"courier")
        assert sm.find_deposit(b"courier", req) == 1
        assert sm.find_deposit(b"other", req) is None         # bound to the courier
        assert not sm.finished_deposit(b"courier", req)
        sm.release(1, 2000 + gen, LEFT_PICKUP)
        assert sm.find_deposit(b"courier", req) is None
        assert sm.finished_deposit(b"courier", req)
        assert len(sm.recent) <= RECENT_DEPOSITS
    assert len(sm.recent) == RECENT_DEPOSITS
    kept = [r for r in reqs if sm.finished_deposit(b"courier", r)]
    assert kept == reqs[-RECENT_DEPOSITS:]


def test_undo_release_restores_the_parcel_and_forgets_it_was_finished():
    sm = SlotManager([1, 2])
    sm.deposit(2, 7, 1000, CRED, b"reqreq01", b"courier")
    sm.release(2, 1100, LEFT_PICKUP)
    sm.undo_release(2)
    assert sm.get(2).state == OCCUPIED and sm.get(2).gen == 7
    assert sm.find_deposit(b"courier", b"reqreq01") == 2
    assert not sm.finished_deposit(b"courier", b"reqreq01")
    sm.undo_release(1)                           # never used: nothing to restore
    assert sm.get(1).state == FREE


def test_void_deposit_frees_without_marking_it_finished():
    sm = SlotManager([1])
    sm.deposit(1, 1, 1000, CRED, b"reqreq01", b"courier")
    sm.void_deposit(1)
    assert sm.get(1).state == FREE
    assert not sm.finished_deposit(b"courier", b"reqreq01")


ops = st.lists(st.tuples(st.sampled_from(["dep", "rel", "oos", "ins", "undo", "void"]),
                         st.integers(1, 6), st.integers(0, 2 ** 32 - 1)), max_size=60)


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=6, max_size=6), ops=ops)
def test_to_dict_load_round_trip(sizes, ops):
    sm = SlotManager(sizes)
    for op, sid, x in ops:
        if op == "dep":
            sm.deposit(sid, x, x // 2, bytes((x & 0xFF,)) * 20, x.to_bytes(8, "big"),
                       b"c%d" % (x % 3))
        elif op == "rel":
            sm.release(sid, x, LEFT_PICKUP)
        elif op == "oos":
            sm.set_service(sid, False)
        elif op == "ins":
            sm.set_service(sid, True)
        elif op == "undo":
            sm.undo_release(sid)
        else:
            sm.void_deposit(sid)
    stored = json.loads(json.dumps(sm.to_dict()))       # as the snapshot stores it
    again = SlotManager(sizes)
    again.load(stored)
    assert again.to_dict() == sm.to_dict()
    for sid in sm.sids():
        assert vars(again.get(sid)) == vars(sm.get(sid))
    assert again.recent == sm.recent


def test_load_refuses_a_different_slot_count():
    sm = SlotManager([1, 2, 3])
    with pytest.raises(ValueError):
        SlotManager([1, 2]).load(sm.to_dict())
