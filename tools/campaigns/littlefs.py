"""Power cuts on littlefs itself: the locker's store on the MicroPython unix port's
vfs.VfsLfs2 (the littlefs v2 the ESP32 port mounts), over a block device with the ESP32's
geometry (4096-byte blocks, a 1.75 MB partition by default) that cuts the power at any block
program or erase, leaving a half-programmed or half-erased block, and at any NVS commit of
the journal's anchor. The work runs on MicroPython (tools/campaigns/mp_littlefs.py); this
prints its figures and exits 1 when any cut broke a promise (docs/reliability.md).

    .venv/bin/python -m campaigns.littlefs [--sequences 3] [--ops 12] [--stride 1]
        [--blocks 448] [--seed 0] [--full]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from lockerctl import firmware

HERE = os.path.dirname(os.path.abspath(__file__))
HEAP = "16m"                  # the flash image lives in the MicroPython heap, not the firmware


def run(mode, extra=(), timeout=3600):
    """Run mp_littlefs.py in `mode` ("powercut" or "full"); return its figures (a dict).
    Raises firmware.BuildError (no MicroPython) or RuntimeError (the script failed)."""
    binary = firmware.micropython_binary()
    with tempfile.TemporaryDirectory(prefix="lfs-fw-") as fw:
        firmware.compile_tree(fw, "sim")
        done = subprocess.run([binary, "-X", "heapsize=" + HEAP,
                               os.path.join(HERE, "mp_littlefs.py"), fw, mode] + list(extra),
                              capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError("mp_littlefs.py %s failed:\n%s\n%s" % (mode, done.stdout[-2000:],
                                                                  done.stderr[-2000:]))
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=3)
    ap.add_argument("--ops", type=int, default=12)
    ap.add_argument("--stride", type=int, default=1, help="cut at every S-th write point")
    ap.add_argument("--blocks", type=int, default=448, help="partition size in 4 KB blocks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="also the full-flash check")
    ap.add_argument("--mutant", action="store_true",
                    help="self-check: a store that rewrites files in place must FAIL")
    a = ap.parse_args(argv)
    try:
        figs = run("powercut", ["--sequences", str(a.sequences), "--ops", str(a.ops),
                                "--stride", str(a.stride), "--blocks", str(a.blocks),
                                "--seed", str(a.seed)] + (["--mutant"] if a.mutant else []))
    except (firmware.BuildError, RuntimeError) as e:
        print("littlefs campaign: %s" % e, file=sys.stderr)
        return 2
    print("littlefs power cut: %d sequences on a %d KB partition (%d-byte blocks): "
          "%d write points (%s), %d cuts exercised: %d at a block program, %d at a block "
          "erase, %d at an NVS commit; %d left a half-written block" % (
              figs["sequences"], figs["partition_bytes"] // 1024, figs["block_size"],
              figs["write_points"], ", ".join("%s %d" % kv for kv in
                                              sorted(figs["points_by_kind"].items())),
              figs["cuts"], figs["cuts_at_program"], figs["cuts_at_erase"],
              figs["cuts_at_nvs_commit"], figs["half_written_blocks"]))
    failures = list(figs["failures"])
    if a.full:
        full = run("full")
        print("littlefs full: %d deposits before full, %d storage errors, %d changed state, "
              "%d reads refused, reboot while full: %s, served after space freed: %s, "
              "audit chain ok: %s" % (
                  full["deposits_before_full"], full["storage_errors"],
                  full["changed_on_error"], full["reads_refused_while_full"],
                  full["boot_while_full"], full["served_after_space_freed"], full["audit_ok"]))
        failures += full["failures"]
    for f in failures[:20]:
        print("FAIL:", f)
    print("littlefs:", "PASS" if not failures else "FAIL (%d)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
