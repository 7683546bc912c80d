"""The firmware's share of an ESP32's heap, on the 32-bit MicroPython VM (npm WebAssembly port,
the board's word size): a regression guard for docs/performance.md, "The ESP32 heap budget".

The device image (`lockerctl.firmware.compile_tree(..., "device")`, what `make deploy` copies)
is imported as a board imports it (tools/bench/device/bench_budget.py): every module kept for
the board's life, then the boot-only ones, which main.Runtime.boot drops (core.unload). What
stays must not exceed CEILING by more than MARGIN; the boot-only modules must really leave
the heap. New firmware code that makes the figure grow should move CEILING up in the same
commit, with the budget table in docs/performance.md re-measured (`make bench`).

Skips, with the reason, when Node or the npm package cannot be had (lockerctl.mp32)."""

import pytest
from lockerctl import firmware, mp32

CEILING = 70_000     # bytes: firmware after boot, measured 2026-11-30 with the modules the
#                      board really keeps (AnchoredLocker, NvsAnchor: 73,152 B), after the
#                      budget round of ADR 0010 (docs/performance.md, per-step rows)
MARGIN = 1024        # bytes: what may move without a decision (GC blocks, qstr pool steps)


@pytest.fixture(scope="module")
def budget(tmp_path_factory):
    try:
        return mp32.run_steps(str(tmp_path_factory.mktemp("budget")), "device",
                              ["bench_budget.py"],
                              "import bench_budget\n"
                              "def _all():\n"
                              "    yield from bench_budget.steps(False)\n"
                              "    import json\n"
                              "    print('RESULT ' + json.dumps(bench_budget.R))\n"
                              "MP32_STEPS = _all()\n")
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)


def _after_boot(b):
    kept = sum(n for _, n in b["firmware"])
    boot_only = sum(n for _, n in b["boot_only"])
    return kept + boot_only - b["dropped"]


def test_firmware_heap_after_boot_stays_under_its_ceiling(budget):
    got = _after_boot(budget)
    assert got <= CEILING + MARGIN, (
        "the device image keeps %d B of heap after boot, ceiling %d B (+%d): %s" % (
            got, CEILING, MARGIN, sorted(budget["firmware"], key=lambda x: -x[1])[:5]))


def test_boot_only_modules_leave_the_heap(budget):
    """Dropped after boot: gone from sys.modules, and the collector got back most of their
    import (their interned names stay; MicroPython never frees a qstr)."""
    names = [n for n, _ in budget["boot_only"]]
    assert "core.config" in names and "targets.board_profile" in names
    assert budget["boot_only_left"] == []
    imported = sum(n for _, n in budget["boot_only"])
    assert budget["dropped"] >= 0.85 * imported, (budget["dropped"], budget["boot_only"])


def test_the_phones_side_is_not_in_the_boards_heap(budget):
    """Signing, reading answers, making and reading pickup codes (core/phone.py) and the
    recipient's PAKE side (core/recipient.py) are the phone's: the board never imports them."""
    assert budget["phone_side_loaded"] == []


def test_boot_only_modules_are_not_imported_by_what_stays(budget):
    """A module-level import by a kept module would hold them (and defeat the drop): the
    kept modules are imported first, so the boot-only ones must cost their own import."""
    assert all(n > 0 for _, n in budget["boot_only"]), budget["boot_only"]


def test_device_image_has_no_line_numbers(tmp_path):
    """`-X no-source-lines` for the board and the simulator process (the board's bytecode):
    the tests' image keeps them (tracebacks in tests name lines)."""
    firmware.compile_tree(str(tmp_path / "sim"), "sim", incremental=False)
    firmware.compile_tree(str(tmp_path / "dev"), "device", incremental=False)
    firmware.compile_tree(str(tmp_path / "run"), "simulator", incremental=False)
    for rel in ("core/locker.mpy", "core/store.mpy"):
        sim = (tmp_path / "sim" / rel).read_bytes()
        dev = (tmp_path / "dev" / rel).read_bytes()
        assert len(dev) < len(sim), (rel, len(dev), len(sim))
        assert (tmp_path / "run" / rel).read_bytes() == dev       # the same bytes as a board's


def test_simulator_image_runs_main_compiled(tmp_path):
    """`lockerctl sim` runs main.mpy (`-m main`): a main.py left in the folder by an older
    build would shadow it, so a rebuild for the "simulator" target removes it, and a folder
    built for another target is rebuilt whole (its .image stamp)."""
    out = tmp_path / "fw"
    firmware.compile_tree(str(out), "sim")
    assert (out / "main.py").exists() and not (out / "main.mpy").exists()
    with_lines = (out / "core" / "locker.mpy").read_bytes()
    firmware.compile_tree(str(out), "simulator")           # incremental, but another target
    assert (out / "main.mpy").exists() and not (out / "main.py").exists()
    assert (out / ".image").read_text().strip() == "simulator"
    assert len((out / "core" / "locker.mpy").read_bytes()) < len(with_lines)


def test_simulator_image_follows_an_edited_source(tmp_path):
    """`lockerctl sim start` after an edit in firmware/ runs the edit: the incremental build
    recompiles a module whose source is newer than its .mpy (and only that one)."""
    import os
    src = tmp_path / "probe.py"
    src.write_text("WHO = 'before'\n")
    out = tmp_path / "fw"
    firmware.compile_tree(str(out), "simulator", extra=[(str(src), "core/probe.py")])
    first = (out / "core" / "probe.mpy").read_bytes()
    locker = os.path.getmtime(out / "core" / "locker.mpy")
    src.write_text("WHO = 'after, edited'\n")
    t = os.path.getmtime(out / "core" / "probe.mpy") + 1
    os.utime(src, (t, t))                     # an edit made after the build
    firmware.compile_tree(str(out), "simulator", extra=[(str(src), "core/probe.py")])
    second = (out / "core" / "probe.mpy").read_bytes()
    assert second != first and b"after, edited" in second
    assert os.path.getmtime(out / "core" / "locker.mpy") == locker     # untouched: not rebuilt
