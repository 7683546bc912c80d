"""Heap on the 32-bit MicroPython VM (the npm WebAssembly port, ESP32 word size).

A full locker's compaction and its boot from the snapshot must not allocate more with more
slots: the snapshot writes and reads the slot table's columns in place (core/store.py). A
per-slot allocation of even one 16-byte GC block would show as 2,400 bytes between 50 and 200
slots; the allowance below is a quarter of that (the header line and the listing of the
journal files vary a little with the history the fill leaves behind).

Skips, with the reason, when Node or the npm package cannot be had (lockerctl.mp32)."""

import pytest
from lockerctl import mp32

COUNTS = (50, 100, 200)
ALLOWANCE = 600            # bytes, between the smallest and the largest locker
TARGET = 8 * 1024          # docs/performance.md: compaction and boot, 32-bit


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    try:
        return mp32.run_steps(str(tmp_path_factory.mktemp("mp32")), "sim",
                              ["bench_memory.py", "bench_util.py", "bench_requests.py"],
                              "import bench_memory\n"
                              "def _all():\n"
                              "    yield from bench_memory.steps('/tmp/heap', %r)\n"
                              "    import bench_util\n"
                              "    bench_util.emit(bench_memory.R)\n"
                              "MP32_STEPS = _all()\n" % (list(COUNTS),))
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)


def _transient(figures, n, name):
    per = figures["per_slots"][str(n)]
    assert per["filled"] == n
    return {t[0]: t[1] for t in per["transient"]}[name]


@pytest.mark.parametrize("name", ["compaction (snapshot), full locker",
                                  "boot from the full locker's snapshot"])
def test_full_locker_transient_does_not_grow_with_slots(figures, name):
    got = [_transient(figures, n, name) for n in COUNTS]
    assert all(0 < g <= TARGET for g in got), dict(zip(COUNTS, got))
    assert max(got) - got[0] <= ALLOWANCE, "grows with the slot count: %s" % dict(
        zip(COUNTS, got))


@pytest.mark.parametrize("name", [
    "pickup (PICKUP_FINISH) whose record compacts the full locker",
    "deposit into the last free slot whose record compacts the locker"])
def test_the_worst_moment_does_not_grow_with_slots(figures, name):
    """PRODUCT.md's worst moment, a full locker compacting: the request whose record fills
    the segment and the snapshot write it triggers, together (the ESP32 budget's row)."""
    got = [_transient(figures, n, name) for n in COUNTS]
    assert all(g > 0 for g in got), dict(zip(COUNTS, got))
    assert max(got) - got[0] <= ALLOWANCE, "grows with the slot count: %s" % dict(
        zip(COUNTS, got))


def test_retained_state_is_the_packed_table(figures):
    """A full locker keeps about the table's bytes per slot, not an object per slot."""
    full = [figures["per_slots"][str(n)]["retained_full"] for n in COUNTS]
    per_slot = (full[-1] - full[0]) / (COUNTS[-1] - COUNTS[0])
    assert per_slot < 100, "retained %.0f bytes per slot" % per_slot
    assert figures["per_slots"]["100"]["retained_full"] <= 16 * 1024


def test_the_vm_is_32_bit():
    try:
        version = mp32.version()
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)
    assert "2**31-1" in version and version.startswith("micropython")


def test_runner_passes_argv_path_and_exit_status(tmp_path):
    """tools/mp32/run.mjs: argv as on the unix port, trees first on sys.path, the script's
    exit status, and a traceback on stderr with status 1."""
    try:
        mp32.ensure()
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "probe_mod.py").write_text("VALUE = 41\n")
    script = tmp_path / "probe.py"
    script.write_text("import sys, probe_mod\nprint('RESULT', probe_mod.VALUE + 1, sys.argv[1:],"
                      " sys.path[0])\nif sys.argv[1] == 'exit':\n    sys.exit(7)\n"
                      "raise ValueError('boom')\n")
    done = mp32.run(str(script), ["exit"], [(str(tree), "/t")])
    assert done.returncode == 7
    assert "RESULT 42 ['exit'] /t" in done.stdout
    done = mp32.run(str(script), ["raise"], [(str(tree), "/t")])
    assert done.returncode == 1 and "ValueError: boom" in done.stderr


def test_steps_run_with_collections_between_them(tmp_path):
    """Garbage made in one step is gone at the next (the port collects at the top level
    only); inside a step nothing is freed: what bench_memory's figures rely on."""
    try:
        mp32.ensure()
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)
    script = tmp_path / "steps.py"
    script.write_text(
        "import gc\n"
        "def steps():\n"
        "    yield\n"
        "    a = gc.mem_alloc()\n"
        "    for _ in range(100):\n"
        "        bytes(1000)\n"
        "    gc.collect()\n"
        "    inside = gc.mem_alloc() - a\n"
        "    yield\n"
        "    print('RESULT', inside, gc.mem_alloc() - a)\n"
        "MP32_STEPS = steps()\n")
    done = mp32.run(str(script))
    inside, after = map(int, done.stdout.split("RESULT", 1)[1].split())
    assert inside >= 100 * 1000          # nothing freed inside a call
    assert after < 2000                  # collected between the steps


def test_retained_heap_does_not_grow_with_the_deposits_served(figures):
    """Memory that does not grow with history: a locker that has just taken n parcels keeps
    about what the same locker keeps after a reboot (the table is the same; nothing per
    request served may stay behind). 2 KB of allowance at any size (the last request's
    challenge, the journal's open segment); one kept object per deposit would be 1.6 KB at
    50 parcels and 6.4 KB at 200."""
    for n in COUNTS:
        per = figures["per_slots"][str(n)]
        kept = per["retained_full"] - per["retained_full_after_reboot"]
        assert kept <= 2048, "%d parcels: %d B more than after a reboot" % (n, kept)
