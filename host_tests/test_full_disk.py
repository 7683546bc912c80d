"""A full disk never leaves half a record that the next one is glued to (issue 12.1).

On a full file system an append can land part of its bytes and then fail (ENOSPC). The
journal must then skip that partial line for good: the store marks its tail torn and
starts a clean segment (compaction) before the next append, so the partial line stays last
in its segment where recovery drops it. Meanwhile the locker keeps serving reads.

Tested on a real full file system (a small tmpfs, where this machine lets us mount one),
on tools/campaigns/faultfs.py's model of short writes, and on littlefs itself in the
MicroPython campaign (tools/campaigns/mp_littlefs.py, test_littlefs.py)."""
import errno
import os
import shutil
import subprocess

import pytest
from campaigns.faultfs import FaultFs
from core import protocol as P
from core import store as S
from drivers import flash_fs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockerctl.client import LockerRefused
from lockerctl.rig import Bench, locker_state


def test_faultfs_short_write_lands_a_prefix_then_enospc(tmp_path):
    inner = flash_fs.FolderFs(str(tmp_path / "f"))
    inner.ensure()
    fs = FaultFs(inner, capacity=10)
    fs.append("a", b"12345")
    with pytest.raises(OSError) as e:
        fs.append("a", b"abcdefgh")
    assert e.value.errno == errno.ENOSPC
    with inner.open_read("a") as f:
        assert f.read() == b"12345abcde"            # the part that fit landed
    assert fs.short_writes == 1 and not fs.dead      # the board keeps running
    with pytest.raises(OSError):
        fs.replace("b", (b"xyz",))                   # still full
    fs.remove("a")                                   # space comes back
    fs.append("c", b"0123456789")
    with pytest.raises(OSError):
        fs.append("c", b"!")


def deposit_until_full(b):
    """Deposit and pick up until a request answers a storage error; returns the deposits
    answered OK and still in their slots."""
    cred = b.courier()
    answered = []
    for _ in range(300):
        try:
            d = b.client.deposit(cred, size=1)
            answered.append(d)
            b.run_hardware()
            b.driver.close(d.slot)
            b.run_hardware()
            if len(answered) > 2:
                first = answered.pop(0)
                b.client.pickup(first.code)
                b.run_hardware()
                b.driver.close(first.slot)
                b.run_hardware()
        except LockerRefused as e:
            assert e.status == P.E_INTERNAL and "storage" in e.message, e
            return [d for d in answered if b.locker.slots.get(d.slot).state == 1]
    raise AssertionError("never filled up")


def check_reads(b):
    tech = b.technician()
    assert b.client.hello().slot_count == len(b.locker.slots)
    b.client.status(tech)
    assert b.client.audit_page(tech, 1, 3)


def fill_then_free(tmp_path, capacity):
    fs = FaultFs(flash_fs.FolderFs(str(tmp_path / "s")), capacity=capacity)
    b = Bench(str(tmp_path / "s"), fs=fs, segment_records=8, keep_segments=2)
    answered = deposit_until_full(b)
    assert fs.short_writes >= 1
    return b, fs, answered


def test_short_write_on_a_full_disk_leaves_nothing_that_breaks_recovery(tmp_path):
    b, fs, answered = fill_then_free(tmp_path, 3500)
    seq = b.locker.store.seq
    state = locker_state(b.locker)
    check_reads(b)                               # still serving reads while full
    assert b.locker.store.seq == seq and locker_state(b.locker) == state   # nothing applied
    fs.capacity += 100000                        # an operator frees space
    later = b.client.deposit(b.courier(serial=2), size=1)   # the next acknowledged record
    b.boot(fs=flash_fs.FolderFs(b.folder))      # and a reboot
    assert b.locker.halted == ""
    assert b.locker.slots.get(later.slot).state == 1
    for d in answered:
        assert b.locker.slots.get(d.slot).state == 1
    assert [r["n"] for r in S.read_audit(b.fs, b.locker.store.key)][-1] == b.locker.store.seq


def test_reboot_while_full_boots_and_serves_reads(tmp_path):
    b, fs, answered = fill_then_free(tmp_path, 3000)
    b.boot(fs=fs)
    assert b.locker.halted == ""
    check_reads(b)
    for d in answered:
        assert b.locker.slots.get(d.slot).state == 1


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.integers(1000, 3200), extra=st.integers(0, 400))
def test_any_short_write_point_recovers(tmp_path_factory, capacity, extra):
    tmp = tmp_path_factory.mktemp("full")
    b, fs, answered = fill_then_free(tmp, capacity)
    for _ in range(3):                            # more writes against the full disk
        with pytest.raises(LockerRefused):
            b.client.deposit(b.courier(serial=3), size=1)
    fs.capacity += extra                          # a little space back: maybe not enough
    try:
        b.client.deposit(b.courier(serial=4), size=1)
    except LockerRefused as e:
        assert e.status in (P.E_INTERNAL, P.E_NO_SLOT)
    b.boot(fs=flash_fs.FolderFs(b.folder))
    assert b.locker.halted == ""
    list(S.read_audit(b.fs, b.locker.store.key))


# ---- a real full file system ---------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 48 KB tmpfs: a real file system that fills up (needs mount rights: root in a
    container, or CI with sudo); skipped with the reason elsewhere."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; faultfs and littlefs cover full disks")
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if got.returncode:
        pytest.skip("cannot mount a tmpfs here: %s" % got.stderr.strip())
    yield str(where)
    subprocess.run(["umount", str(where)], check=False)


def test_full_tmpfs_keeps_the_journal_whole(small_tmpfs):
    ballast = os.path.join(small_tmpfs, "ballast")
    with open(ballast, "wb") as f:             # space an operator can free later
        f.write(b"\0" * 12 * 1024)
    folder = os.path.join(small_tmpfs, "store")
    b = Bench(folder, segment_records=40, keep_segments=8)
    answered = deposit_until_full(b)
    check_reads(b)                             # reads still served while full
    os.remove(ballast)
    later = b.client.deposit(b.courier(serial=2), size=1)   # acknowledged after the failure
    b.boot()                                   # used to halt: "bad record after N"
    assert b.locker.halted == ""
    for d in answered + [later]:
        assert b.locker.slots.get(d.slot).state == 1
    list(S.read_audit(b.fs, b.locker.store.key))
