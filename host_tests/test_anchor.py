"""The store never silently resets or rolls back (issue 12.1, docs/adr/0008-journal-anchor.md).

A provisioned locker whose store is missing or shorter than what it had written refuses to
serve, with the reason; its anchor (how far the journal got, kept in NVS where the journal's
files cannot take it along) is checked at boot. The anchor may lag the journal by the one
record in flight at a cut, never more, and never claims more than is durable. An operator
recovers a halted locker with a signed RECOVER that states the loss; a technician can still
open doors while it is halted; nothing lost is guessed."""
import os
import shutil

import pytest
from core import protocol as P
from core import store as S
from core.anchored import ADMIN_RECOVER
from drivers.nvs_anchor import NvsAnchor
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl import operator as op
from lockerctl.client import LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench
from targets.sim_nvs import SimNvs


def refused(call, status=None):
    with pytest.raises(LockerRefused) as e:
        call()
    if status is not None:
        assert e.value.status == status, e.value
    return e.value


def bench(tmp_path, nvs=None, **cfg):
    nvs = nvs if nvs is not None else SimNvs()
    b = Bench(str(tmp_path / "store"), anchor=NvsAnchor(nvs), **cfg)
    b.nvs = nvs
    return b


def cycle(b, n):
    """n deposits and pickups (2 records each plus door events): a history to lose."""
    cred = b.courier()
    for _ in range(n):
        d = b.client.deposit(cred, size=1)
        b.run_hardware()
        b.driver.close(d.slot)
        b.run_hardware()
        b.client.pickup(d.code)
        b.run_hardware()
        b.driver.close(d.slot)
        b.run_hardware()
    return cred


def reboot_halts(b, words):
    with pytest.raises(S.StoreCorrupt):
        b.boot()
    assert b.locker.halted.startswith("journal rolled back"), b.locker.halted
    for w in words:
        assert w in b.locker.halted, b.locker.halted
    return b.locker.halted


def drop_last_records(folder, k):
    seg = max(int(n[2:]) for n in os.listdir(folder) if n.startswith("j.") and n[2:].isdigit())
    path = os.path.join(folder, "j.%d" % seg)
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    assert len(lines) > k
    with open(path, "wb") as f:
        f.writelines(lines[:-k])


# ---- the cases of the issue ------------------------------------------------------------

def test_deleted_store_folder_halts_instead_of_booting_empty(tmp_path):
    b = bench(tmp_path)
    d = b.client.deposit(b.courier(), size=1)
    shutil.rmtree(b.folder)
    reason = reboot_halts(b, ["store missing", "record"])
    # it does not hand the occupied slot to the next courier
    e = refused(lambda: b.client.deposit(b.courier(serial=2), size=1), P.E_INTERNAL)
    assert "halted" in e.message and "store missing" in e.message
    assert os.listdir(b.folder) == [] or not os.path.exists(b.folder) or \
        not any(n.startswith("j.") for n in os.listdir(b.folder))
    assert d.slot and reason


def test_deleted_current_segment_halts(tmp_path):
    b = bench(tmp_path)
    cycle(b, 2)
    os.remove(os.path.join(b.folder, "j.%d" % b.locker.store.segment))
    # a snapshot without its segment is a cut during compaction: the journal is then
    # shorter than the anchor says, and that is refused
    reboot_halts(b, ["journal ends at record", "records lost"])


def test_last_five_records_removed_halts(tmp_path):
    b = bench(tmp_path)
    cycle(b, 3)
    seq = b.locker.store.seq
    drop_last_records(b.folder, 5)
    reboot_halts(b, ["journal ends at record %d" % (seq - 5), "record %d was written" % seq])


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 12), extra=st.integers(0, 3))
def test_any_rollback_beyond_the_record_in_flight_halts(tmp_path_factory, k, extra):
    """Lose k >= 2 records (anything but the one in flight): always refused, and with
    exactly the numbers an operator's RECOVER must state."""
    b = bench(tmp_path_factory.mktemp("rb"), segment_records=50)
    cycle(b, 7 + extra)
    seq = b.locker.store.seq
    drop_last_records(b.folder, k)
    reboot_halts(b, ["journal ends at record %d" % (seq - k)])
    assert b.locker.halt_seqs[:2] == [seq - k, seq]


def test_anchor_lagging_by_the_record_in_flight_boots(tmp_path):
    """Power cut after the journal write, before the anchor write: the anchor is one
    behind, which is the one tolerated case."""
    b = bench(tmp_path)
    cycle(b, 1)
    b.nvs.fail_writes = True              # the anchor write of the next record fails
    d = b.client.deposit(b.courier(), size=1)
    b.nvs.fail_writes = False
    assert NvsAnchor(b.nvs).read()[1] == b.locker.store.seq - 1
    b.boot()
    assert b.locker.halted == ""
    assert b.locker.slots.get(d.slot).state == 1
    assert NvsAnchor(b.nvs).read()[1] == b.locker.store.seq


def test_anchor_never_lags_by_two_a_failing_nvs_stops_writes(tmp_path):
    b = bench(tmp_path)
    cycle(b, 1)
    b.nvs.fail_writes = True
    b.client.deposit(b.courier(), size=1)           # journal ok, anchor one behind
    seq = b.locker.store.seq
    e = refused(lambda: b.client.deposit(b.courier(serial=2), size=1), P.E_INTERNAL)
    assert "storage" in e.message
    assert b.locker.store.seq == seq                # nothing appended past the anchor
    b.nvs.fail_writes = False
    b.boot()
    assert b.locker.halted == ""


def test_anchor_two_behind_halts(tmp_path):
    b = bench(tmp_path)
    cycle(b, 1)
    seq = b.locker.store.seq
    b.nvs.set_i32("seq", seq - 2)
    b.nvs.commit()
    reboot_halts(b, ["journal has records up to %d, the anchor only %d" % (seq, seq - 2)])


def test_erased_nvs_with_a_journal_halts(tmp_path):
    b = bench(tmp_path)
    cycle(b, 1)
    b.nvs.erase_key("id")
    b.nvs.erase_key("seq")
    reboot_halts(b, ["no anchor"])


def test_first_boot_after_provisioning_takes_over_an_old_anchor(tmp_path):
    """NVS still holds the anchor of a previous provisioning (other master secret): a new
    locker's empty store is not a rollback."""
    nvs = SimNvs()
    old = NvsAnchor(nvs)
    old.reset(12345)
    old.write_seq(500)
    b = bench(tmp_path, nvs=nvs)
    assert b.locker.halted == ""
    assert NvsAnchor(nvs).read()[1] == b.locker.store.seq == 1
    b.client.deposit(b.courier(), size=1)
    b.boot()
    assert b.locker.halted == ""


def test_cut_during_first_boot_before_the_anchor_write_boots(tmp_path):
    nvs = SimNvs()
    nvs.fail_writes = True
    with pytest.raises(OSError):
        bench(tmp_path, nvs=nvs)          # store created, boot record written, no anchor
    nvs.fail_writes = False
    b = bench(tmp_path, nvs=nvs)
    assert b.locker.halted == "" and b.locker.store.seq >= 1


def test_compactions_keep_the_anchor_and_prune_nothing_it_needs(tmp_path):
    b = bench(tmp_path, segment_records=4, keep_segments=2)
    cycle(b, 6)
    assert b.locker.store.segment > 3
    for _ in range(3):                     # pruned old segments are not a rollback
        b.boot()
        assert b.locker.halted == ""


def test_anchor_writes_one_nvs_entry_per_record(tmp_path):
    """Wear: one NVS commit per journal record (docs/reliability.md "Anchor wear")."""
    b = bench(tmp_path)
    before_c, before_s = b.nvs.commits, b.locker.store.seq
    cycle(b, 3)
    assert b.nvs.commits - before_c == b.locker.store.seq - before_s


def test_anchor_time_written_once_a_minute_at_most(tmp_path):
    b = bench(tmp_path)
    c0 = b.nvs.commits
    for _ in range(30):                    # 30 ticks, 10 s apart: 300 s
        b.time.advance(10)
        b.locker.tick()
    assert b.nvs.commits - c0 == 5
    assert b.locker.clock.now() - 60 <= NvsAnchor(b.nvs).read()[2] <= b.locker.clock.now()


# ---- the simulator board keeps its anchor outside store/ ---------------------------------

def test_sim_nvs_file_commits_atomically_and_outlives_the_store(tmp_path):
    path = str(tmp_path / "sim_nvs.txt")
    nvs = SimNvs(path)
    with pytest.raises(OSError):
        nvs.get_i32("seq")
    nvs.set_i32("seq", 7)
    assert not os.path.exists(path)          # not durable before commit
    nvs.commit()
    nvs.set_i32("seq", 8)                    # a cut before commit: the old value stays
    assert SimNvs(path).get_i32("seq") == 7
    anchor = NvsAnchor(SimNvs(path))
    anchor.write_time(0xFFFFFF00)            # u32 times survive the i32 keys
    assert NvsAnchor(SimNvs(path)).read()[2] == 0xFFFFFF00


# ---- recovery by the operator -------------------------------------------------------------

def rolled_back(tmp_path):
    b = bench(tmp_path)
    cred = b.courier()
    kept = b.client.deposit(cred, size=1)
    b.run_hardware()
    b.driver.close(kept.slot)
    b.run_hardware()
    kept_seq = b.locker.store.seq
    lost = b.client.deposit(cred, size=2)            # the journal loses this one
    b.run_hardware()
    b.driver.close(lost.slot)
    b.run_hardware()
    refused(lambda: b.client.pickup("%03d-00000-00000" % kept.slot))   # and a strike
    seq = b.locker.store.seq
    assert seq - kept_seq >= 2                      # more than the record in flight
    drop_last_records(b.folder, seq - kept_seq)     # the deposit of `lost` and after
    with pytest.raises(S.StoreCorrupt):
        b.boot()
    return b, kept, lost


def test_halted_locker_refuses_everything_but_technician_open_and_recover(tmp_path):
    b, kept, lost = rolled_back(tmp_path)
    have, anchored = b.locker.halt_seqs[:2]
    assert have < anchored
    refused(lambda: b.client.deposit(b.courier(serial=3), size=2), P.E_INTERNAL)
    refused(lambda: b.client.pickup(kept.code), P.E_INTERNAL)
    refused(lambda: b.client.status(b.technician()), P.E_INTERNAL)
    # the technician can open the lost parcel's door (the locker cannot know it is there)
    tech = b.technician()
    seq = b.locker.store.seq
    assert b.client.tech_open(tech, lost.slot)["slot"] == lost.slot
    b.run_hardware()
    assert b.driver.door_open(lost.slot)
    assert b.locker.store.seq == seq                # nothing journalled while halted
    # ...but cannot change slot state while the journal is in doubt
    refused(lambda: b.client.tech_open(tech, lost.slot, P.TECH_CLEAR), P.E_STATE)
    # revocation and time need a journal: refused
    refused(lambda: b.client.admin(op.set_time_message(MASTER, LOCKER_ID, 50,
                                                       b.time.rtc + 10)), P.E_INTERNAL)


def test_recover_must_state_the_loss_exactly_and_be_signed(tmp_path):
    b, kept, lost = rolled_back(tmp_path)
    have, anchored = b.locker.halt_seqs[:2]
    refused(lambda: b.client.admin(op.recover_message(MASTER, LOCKER_ID, 10, have,
                                                      anchored + 1)), P.E_VALUE)
    refused(lambda: b.client.admin(op.recover_message(bytes(32), LOCKER_ID, 10, have,
                                                      anchored)), P.E_AUTH)
    assert b.locker.halted


def test_recover_accepts_the_loss_and_never_guesses(tmp_path):
    b, kept, lost = rolled_back(tmp_path)
    have, anchored = b.locker.halt_seqs[:2]
    b.client.tech_open(b.technician(), lost.slot)
    assert b.client.admin(op.recover_message(MASTER, LOCKER_ID, 10, have, anchored))[:2] == (
        ADMIN_RECOVER, 10)
    assert b.locker.halted == ""
    # the parcel on record is still there and its code works
    # every slot without a parcel on record is out of service until a technician looked
    for sid in b.locker.slots.sids():
        s = b.locker.slots.at(sid)
        assert s.out_of_service == (sid != kept.slot), sid
    # the lost parcel's slot is not handed to the next courier
    refused(lambda: b.client.deposit(b.courier(serial=4), size=2), P.E_NO_SLOT)
    # the recovery is in the audit log with the stated loss
    rec = [r for r in S.read_audit(b.fs, b.locker.store.key) if r["e"] == "recover"]
    assert rec and rec[-1]["have"] == have and rec[-1]["anchor"] == anchored
    assert rec[-1]["opens"] == 1
    # survives a reboot; the same message is a replay now
    b.boot()
    assert b.locker.halted == ""
    refused(lambda: b.client.admin(op.recover_message(MASTER, LOCKER_ID, 10, have,
                                                      anchored)), P.E_REPLAY)
    assert b.client.pickup(kept.code)["slot"] == kept.slot
    # a technician who emptied the slot puts it back in service
    b.client.tech_open(b.technician(), lost.slot, P.TECH_IN_SERVICE)
    assert b.client.deposit(b.courier(serial=5), size=2).slot == lost.slot


def test_recover_of_a_missing_store_starts_a_new_one_with_every_slot_out_of_service(tmp_path):
    b = bench(tmp_path)
    cycle(b, 1)
    shutil.rmtree(b.folder)
    with pytest.raises(S.StoreCorrupt):
        b.boot()
    have, anchored = b.locker.halt_seqs[:2]
    assert have == 0 and anchored > 0
    b.client.admin(op.recover_message(MASTER, LOCKER_ID, 1, 0, anchored))
    assert all(b.locker.slots.at(s).out_of_service for s in b.locker.slots.sids())
    b.boot()
    assert b.locker.halted == ""


def test_recover_on_a_serving_locker_changes_nothing(tmp_path):
    b = bench(tmp_path)
    seq = b.locker.store.seq
    refused(lambda: b.client.admin(op.recover_message(MASTER, LOCKER_ID, 1, seq, seq)),
            P.E_STATE)
    assert b.locker.store.seq == seq


def test_recover_cannot_fix_a_corrupt_store(tmp_path):
    b = bench(tmp_path)
    cycle(b, 2)
    path = os.path.join(b.folder, "j.%d" % b.locker.store.segment)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 3)
        f.write(b"#")
    with pytest.raises(S.StoreCorrupt):
        b.boot()
    refused(lambda: b.client.admin(op.recover_message(MASTER, LOCKER_ID, 9, 1, 1)),
            P.E_STATE)
