"""Slot table: allocation rule, out-of-service, the idempotent-deposit ring, persistence."""
import json

import pytest
from core.credentials import COURIER, Credential
from core.slot_manager import FREE, LEFT_PICKUP, OCCUPIED, RECENT_DEPOSITS, SlotManager
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl.rig import slot_rows



def cred(holder=b"courier"):
    """An encoded courier credential block (the slot table reads the holder from it)."""
    return Credential(COURIER, holder, 7, 1000, 2000).encode()


CRED = cred()


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
        sm.deposit(sid, 1, 1000, cred(b"c"), b"r%07d" % sid)
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
        sm.deposit(1, gen, 1000 + gen, CRED, req)
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
    sm.deposit(2, 7, 1000, CRED, b"reqreq01")
    sm.release(2, 1100, LEFT_PICKUP)
    sm.undo_release(2)
    assert sm.get(2).state == OCCUPIED and sm.get(2).gen == 7
    assert sm.find_deposit(b"courier", b"reqreq01") == 2
    assert not sm.finished_deposit(b"courier", b"reqreq01")
    sm.undo_release(1)                           # never used: nothing to restore
    assert sm.get(1).state == FREE


def test_void_deposit_frees_without_marking_it_finished():
    sm = SlotManager([1])
    sm.deposit(1, 1, 1000, CRED, b"reqreq01")
    sm.void_deposit(1)
    assert sm.get(1).state == FREE
    assert not sm.finished_deposit(b"courier", b"reqreq01")


ops = st.lists(st.tuples(st.sampled_from(["dep", "rel", "oos", "ins", "undo", "void"]),
                         st.integers(1, 6), st.integers(0, 2 ** 32 - 1)), max_size=60)


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=6, max_size=6), ops=ops)
def test_columns_load_round_trip(sizes, ops):
    sm = SlotManager(sizes)
    for op, sid, x in ops:
        if op == "dep":
            sm.deposit(sid, x, x // 2, cred(b"c%d" % (x % 3)), x.to_bytes(8, "big"))
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
    again = SlotManager(sizes)
    for mine, stored in zip(again.columns(), sm.columns()):   # as the snapshot does
        mine[:] = bytes(stored)
    again.recent = json.loads(json.dumps(sm.recent))
    assert slot_rows(again) == slot_rows(sm)
    for sid in sm.sids():
        assert vars(again.get(sid)) == vars(sm.get(sid))
    assert again.recent == sm.recent


def test_snapshot_of_another_slot_count_is_refused(tmp_path):
    """The snapshot's columns are read in place: a table of another shape is corrupt for
    this locker, never half-loaded."""
    from core.store import Store, StoreCorrupt
    from drivers.flash_fs import FolderFs
    fs = FolderFs(str(tmp_path / "store"))
    sm = SlotManager([1, 2, 3])
    sm.deposit(2, 1, 1000, CRED, b"reqreq01")
    Store(fs, b"k" * 32).create({"slots": sm, "recent": []})
    got = {}
    assert Store(fs, b"k" * 32).recover(got.update, None, SlotManager([1, 2, 3]))
    with pytest.raises(StoreCorrupt):
        Store(fs, b"k" * 32).recover(got.update, None, SlotManager([1, 2]))


def test_snapshot_round_trip_restores_every_slot(tmp_path):
    from core.store import Store
    from drivers.flash_fs import FolderFs
    fs = FolderFs(str(tmp_path / "store"))
    sm = SlotManager([1, 2, 3])
    sm.deposit(2, 5, 2 ** 32 - 1, cred(b"x" * 16), b"reqreq01")
    sm.release(2, 2 ** 31, LEFT_PICKUP)
    sm.deposit(3, 1, 1000, CRED, b"reqreq02")
    sm.set_service(1, False)
    Store(fs, b"k" * 32).create({"slots": sm, "recent": sm.recent})
    again = SlotManager([1, 2, 3])
    got = {}
    Store(fs, b"k" * 32).recover(got.update, None, again)
    assert slot_rows(again) == slot_rows(sm) and got["recent"] == sm.recent
    assert again.find_deposit(b"courier", b"reqreq02") == 3


@pytest.mark.parametrize("cut", [1, 2, 54, 100])
def test_truncated_snapshot_is_corrupt_not_half_loaded(tmp_path, cut):
    """A snapshot cut short inside its columns (or its MAC line) is refused."""
    import os

    from core.store import Store, StoreCorrupt
    from drivers.flash_fs import FolderFs
    folder = tmp_path / "store"
    fs = FolderFs(str(folder))
    sm = SlotManager([1, 2, 3])
    sm.deposit(3, 1, 1000, CRED, b"reqreq02")
    Store(fs, b"k" * 32).create({"slots": sm, "recent": []})
    path = str(folder / "s.1")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - cut)
    with pytest.raises(StoreCorrupt):
        Store(fs, b"k" * 32).recover(lambda d: None, None, SlotManager([1, 2, 3]))


def test_columns_are_fixed_width_whatever_the_occupancy():
    """The snapshot's size depends on the slot count only: 54 bytes per slot."""
    empty, full = SlotManager([1] * 10), SlotManager([1] * 10)
    for sid in full.sids():
        full.deposit(sid, sid, 1000 + sid, cred(b"x" * 16), b"r%07d" % sid)
    assert [len(c) for c in empty.columns()] == [len(c) for c in full.columns()]
    assert sum(len(c) for c in full.columns()) == 54 * 10
