"""The store on littlefs itself (issue 12.1): the real MicroPython unix port mounts
vfs.VfsLfs2 (the littlefs v2 the ESP32 port uses) on a block device with the ESP32's
geometry (4096-byte blocks, a 1.75 MB partition) that cuts the power at block programs,
block erases (leaving half-programmed / half-erased blocks) and the anchor's NVS commits.
A fault found there is fixed in the store, not in the model. `make powercut` runs the long
version (tools/campaigns/littlefs.py); the figures are in docs/reliability.md."""
import pytest
from campaigns import littlefs
from lockerctl import firmware


def run(mode, *args):
    try:
        return littlefs.run(mode, args, timeout=900)
    except firmware.BuildError as e:
        pytest.skip(str(e))


def test_power_cut_at_every_block_program_erase_and_nvs_commit():
    figs = run("powercut", "--sequences", "2", "--ops", "12", "--stride", "1")
    print("\nlittlefs: %(write_points)d write points, %(cuts)d cuts (program "
          "%(cuts_at_program)d, erase %(cuts_at_erase)d, nvs %(cuts_at_nvs_commit)d), "
          "%(half_written_blocks)d half-written blocks" % figs)
    assert figs["failures"] == []
    assert figs["cuts"] == figs["write_points"] > 50
    assert figs["cuts_at_program"] and figs["cuts_at_erase"] and figs["cuts_at_nvs_commit"]
    assert figs["half_written_blocks"] > 0
    assert figs["block_size"] == 4096 and figs["partition_bytes"] >= 1536 * 1024


def test_the_campaign_catches_a_store_that_rewrites_in_place():
    """The harness can fail: a snapshot written in place (no temp file + rename) is found."""
    figs = run("powercut", "--sequences", "1", "--ops", "12", "--mutant")
    assert any("snapshot" in f for f in figs["failures"]), figs["failures"][:3]


def test_full_littlefs_refuses_writes_serves_reads_and_recovers():
    figs = run("full")
    assert figs["failures"] == []
    assert figs["storage_errors"] >= 1 and figs["changed_on_error"] == 0
    assert figs["reads_refused_while_full"] == 0
    assert figs["boot_while_full"] == "ok"
    assert figs["served_after_space_freed"] and figs["audit_ok"]
