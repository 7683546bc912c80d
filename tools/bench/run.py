"""`make bench`: measured figures for docs/performance.md, printed as markdown tables.

The firmware runs on the real MicroPython unix port (MICROPYTHON), compiled to .mpy with
mpy-cross (MPY_CROSS), heap capped at MP_HEAP for the memory figures. Sections that count
hashes, writes, records and bytes run at BENCH_WORK_HEAP: they measure work, not memory, and
the benchmark harness itself must fit next to a full locker. Counts and ratios from one run
are the figures; times are supporting detail (a shared, noisy machine).

    python tools/bench/run.py [--quick] [--json FILE] [--build-dir DIR]
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

from core import phone  # noqa: E402
from core import protocol as P  # noqa: E402
from lockerctl import firmware  # noqa: E402
from lockerctl.client import STATUS_NAMES  # noqa: E402
from report import kb, ms, num, table  # noqa: E402  (this script's own folder)

try:                             # a missing binary or a typo in a heap setting: one line
    MICROPYTHON = firmware.micropython_binary()
    MP_HEAP = firmware.heap_setting("MP_HEAP", "100k")
    WORK_HEAP = firmware.heap_setting("BENCH_WORK_HEAP", "1m")
    # The memory section's 64-bit run: with the collector off, a PICKUP_START's SPAKE2
    # arithmetic allocates ~6.4 MB there (reported on its own row, docs/performance.md)
    MEM_HEAP = firmware.heap_setting("BENCH_MEM_HEAP", "16m")
except (firmware.BuildError, firmware.SettingError) as e:
    sys.exit("bench: %s" % e)
SIM_ONLY = tuple(rel[:-3] for rel in firmware.SIM_ONLY)   # simulator board, never flashed

FULL = {"occupancies": [1, 10, 100], "skews": [0], "verify_budget_us": 100000,
        "prefill": 50, "cycles": 210, "segment_records": None,
        "history": [10, 1000, 10000], "history_nocompact": [10, 1000, 10000],
        "bisect_step_kb": 1, "host_s": 0.5, "slot_counts": [100, 200]}
QUICK = {"occupancies": [1, 3], "skews": [0], "verify_budget_us": 2000,
         "prefill": 3, "cycles": 20, "segment_records": 16,
         "history": [10, 60], "history_nocompact": [10, 60],
         "bisect_step_kb": 16, "host_s": 0.02, "slot_counts": [10, 20]}


class BenchError(RuntimeError):
    pass


heap_bytes = firmware.heap_bytes


# ---- building and running on MicroPython --------------------------------------------------

def compile_all(build_dir):
    """Firmware (except main.py) and the on-device bench scripts, compiled to .mpy."""
    out = os.path.join(build_dir, "mpy")
    device = os.path.join(HERE, "device")
    extra = [(os.path.join(device, n), n) for n in sorted(os.listdir(device)) if n.endswith(".py")]
    firmware.compile_tree(out, "sim", extra=extra, incremental=False)
    return out


def run_mp(mpy_dir, module, args, heap, timeout=600):
    """Run module.main(*args) on MicroPython; return its RESULT dict (BenchError if none)."""
    code = "import sys;sys.path[:0]=[%r];import %s;%s.main(%s)" % (
        mpy_dir, module, module, ", ".join(repr(a) for a in args))
    proc = subprocess.run([MICROPYTHON, "-X", "heapsize=%s" % heap, "-c", code],
                          capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise BenchError("%s on MicroPython (heap %s) failed:\n%s%s" % (
        module, heap, proc.stdout[-2000:], proc.stderr[-2000:]))


def passes(argv, timeout=300):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return proc.returncode == 0 and "RESULT" in proc.stdout or (
        proc.returncode == 0 and proc.stdout.strip().startswith("{"))


def min_heap_kb(make_argv, lo_kb, hi_kb, step_kb):
    """Smallest heap (KB, to step_kb) at which make_argv(heap) passes; None if hi fails."""
    return bisect_kb(lambda heap: passes(make_argv(heap)), lo_kb, hi_kb, step_kb)


def bisect_kb(ok, lo_kb, hi_kb, step_kb):
    """Smallest heap (KB, to step_kb) with ok("<n>k") true, and the largest tried that
    failed: (passes, fails); (None, None) if hi_kb fails, (lo_kb, None) if lo_kb passes."""
    if not ok("%dk" % hi_kb):
        return None, None
    lo = lo_kb                     # assumed failing; checked below
    if ok("%dk" % lo):
        return lo, None
    hi = hi_kb
    while hi - lo > step_kb:
        mid = (lo + hi) // 2
        if ok("%dk" % mid):
            hi = mid
        else:
            lo = mid
    return hi, lo


# ---- sections -------------------------------------------------------------------------------

def section_verify(ctx):
    """The pickup PAKE per attempt (locker side through Locker.handle, phone side), right and
    wrong code, at several occupancies; allocation counted with the GC off on a big heap,
    time measured with the GC on at BENCH_WORK_HEAP."""
    p = ctx["p"]
    occ = p["occupancies"]
    alloc = run_mp(ctx["mpy"], "bench_verify", [ctx["tmp"] + "/pake-alloc", occ, True], "32m")
    timed = run_mp(ctx["mpy"], "bench_verify", [ctx["tmp"] + "/pake-time", occ, False],
                   WORK_HEAP)
    rows = []
    for ra, rt in zip(alloc["rows"], timed["rows"]):
        for kind in ("right", "wrong"):
            a, t = ra[kind], rt[kind]
            rows.append([ra["occupied"], kind + " code", a["mul2"], num(a["adds"]),
                         a["hashes"]["hmacs"], a["hashes"]["sha"], num(a["heap_alloc"]),
                         ms(t["start_us"]), ms(t["finish_us"]) if t["finish_us"] else "-",
                         STATUS_NAMES.get(t["status"], t["status"])])
    text = table(["occupied slots", "attempt", "256-step scalar passes (mul2)",
                  "point additions", "HMACs", "SHA-256 objects", "bytes allocated (START)",
                  "START time", "FINISH time", "outcome"], rows)
    ph = timed["phone"]
    mm = timed["modmul_us"]
    adds = alloc["rows"][0]["right"]["adds"]
    text += ("\n\nPhone and locker in one process (share, locker reply, confirmation): %d "
             "scalar passes, %s point additions, %s; two passes are the phone's.\n"
             % (ph["mul2"], num(ph["adds"]), ms(ph["us"])))
    text += ("Raw 256-bit `a * b %% p` on this VM: %.2f us; the locker's START does %s point "
             "additions x 14 such products = %s products, i.e. %s of pure big-int work; the "
             "rest is interpreter overhead.\n" % (mm, num(adds), num(14 * adds),
                                                  ms(14 * adds * mm)))
    return text, {"alloc": alloc, "timed": timed}


def section_writes(ctx):
    p = ctx["p"]
    d = run_mp(ctx["mpy"], "bench_writes",
               [ctx["tmp"] + "/writes", p["prefill"], p["cycles"], p["segment_records"]],
               WORK_HEAP)
    rows = [[name, "-" if least is None else least, c[0], c[2], num(c[1])]
            for name, least, c in d["rows"]]
    text = table(["request", "design minimum (writes)", "durable writes", "of which renames",
                  "bytes written"], rows)
    a = d["amortised"]
    per = a["records"] or 1
    text += "\n\n" + table(
        ["records", "segment_records", "compactions", "writes", "renames", "bytes written",
         "of which snapshots + headers", "writes / record", "bytes / record",
         "flash in use after"],
        [[num(a["records"]), a["segment_records"], a["compactions"], num(a["writes"]),
          a["renames"], num(a["bytes"]), num(a["replaced_bytes"]),
          "%.3f" % (a["writes"] / per), num(round(a["bytes"] / per)),
          "%s in %d files" % (kb(a["bytes_on_flash"]), a["files"])]])
    text += ("\n\nAmortised over deposit/pickup cycles with %d parcels in the locker."
             % a["prefill"])
    return text, d


MP32_LAUNCHER = """import bench_memory
def _all():
    yield from bench_memory.steps(%r, %r, %r, True)
    import bench_util
    bench_util.emit(bench_memory.R)
MP32_STEPS = _all()
"""


def run_mp32(mpy_dir, folder, slot_counts, fill=True):
    """bench_memory on the 32-bit WebAssembly port (tools/mp32); None + reason if it
    cannot be had (no Node, npm package not installable)."""
    from lockerctl import mp32
    try:
        mp32.ensure()
    except mp32.Unavailable as e:
        return None, str(e)
    script = os.path.join(os.path.dirname(folder), "mp32_launcher.py")
    with open(script, "w") as f:
        f.write(MP32_LAUNCHER % ("/tmp/bench-mem", list(slot_counts), fill))
    try:
        return mp32.run_json(script, [], [(mpy_dir, "/fw")]), mp32.version()
    except mp32.RunError as e:
        raise BenchError(str(e))


ESP32_HEAP_KB = 100        # MicroPython heap of an ESP32 without PSRAM, BLE running
BLE_OBJECTS_KB = 3         # estimate: aioble's service, characteristics, write queue, tasks
PAKE_LIVE_KB = 4.0        # estimate: a SPAKE2 run's live working set; on the 64-bit port both
#                           shares and the shared element run in 24k of heap where importing
#                           the PAKE alone needs 22k (-X heapsize bisected in 1 KB steps), so
#                           <= 3 KB live there. The 32-bit VM cannot collect inside a call.
PAKE_LIVE_HOW = ("estimate, bounded by the formulas, not by slots: on the 64-bit port both shares"
                 " and the shared element run in 24k of heap where importing the PAKE alone "
                 "needs 22k, so <= 3 KB live there; its garbage (~4.4 MB a run on the 32-bit "
                 "VM) is collected as it goes")
# Transient rows of bench_memory that are not a moment of their own in the budget: parts of
# a request (the HMAC), the PICKUP_STARTs measured whole (their SPAKE2 garbage; the live
# working set above stands for them), the compaction alone (inside the compacting requests)
# and boot (before the radio: the boot line).
NOT_A_MOMENT = ("one HMAC-SHA256 call (inside every request)",
                "compaction (snapshot), full locker", "boot from the full locker's snapshot")
BLUETOOTH_STAND_IN = """# measurement stand-in (tools/bench/run.py): the VM has no radio
class UUID:
    def __init__(self, value):
        self.value = value


class BLE:
    def active(self, *args):
        return True

    def irq(self, handler):
        pass

    def config(self, *args, **kwargs):
        return None
"""
BUDGET_LAUNCHER = """import bench_budget
def _all():
    yield from bench_budget.steps(%r)
    import json
    print("RESULT " + json.dumps(bench_budget.R))
MP32_STEPS = _all()
"""


def aioble_dir():
    """AIOBLE_SRC (a micropython-lib checkout's micropython/bluetooth/aioble, or its aioble
    package folder): for measurement only, compiled into the bench's build folder."""
    aio = os.environ.get("AIOBLE_SRC")
    if not aio:
        return None
    return os.path.join(aio, "aioble") if os.path.isdir(os.path.join(aio, "aioble")) else aio


def esp32_budget(ctx, mem):
    """The ESP32 heap budget from the 32-bit VM: firmware and aioble .mpy imported into the
    heap, the retained state of a full locker and the worst transient (bench_memory)."""
    from lockerctl import mp32
    if not mem.get("mp32"):
        return "ESP32 budget not computed: %s" % mem.get("mp32_vm"), None
    tree = os.path.join(ctx["tmp"], "budget-tree")
    shutil.rmtree(tree, ignore_errors=True)
    firmware.compile_tree(tree, "device", incremental=False, extra=[
        (os.path.join(HERE, "device", "bench_budget.py"), "bench_budget.py")])
    mpy_size = {}                  # dotted module name -> .mpy bytes of the device image
    for dp, _, fs in os.walk(tree):
        for f in fs:
            if f.endswith(".mpy") and not f.startswith("bench_"):
                rel = os.path.relpath(os.path.join(dp, f[:-4]), tree).replace(os.sep, ".")
                mpy_size[rel[:-9] if rel.endswith(".__init__") else rel] = os.path.getsize(
                    os.path.join(dp, f))
    main_mpy = os.path.join(ctx["tmp"], "main-size.mpy")
    firmware.compile_module(os.path.join(firmware.FIRMWARE, "main.py"), "main.py", main_mpy,
                            "device")
    mpy_size["main"] = os.path.getsize(main_mpy)
    aio = aioble_dir()
    aio_bytes = 0
    if aio:                        # the aioble parts `make deploy` installs
        os.makedirs(os.path.join(tree, "aioble"), exist_ok=True)
        for name in sorted(os.listdir(aio)):
            if name.endswith(".py") and name[:-3] in firmware.AIOBLE_MODULES:
                dst = os.path.join(tree, "aioble", name[:-3] + ".mpy")
                subprocess.run(firmware.mpy_cross_cmd() + ["-o", dst, os.path.join(aio, name)],
                               check=True)
                aio_bytes += os.path.getsize(dst)
        with open(os.path.join(tree, "bluetooth.py"), "w") as f:
            f.write(BLUETOOTH_STAND_IN)
    script = os.path.join(ctx["tmp"], "budget_launcher.py")
    with open(script, "w") as f:
        f.write(BUDGET_LAUNCHER % bool(aio))
    b = mp32.run_json(script, [], [(tree, "/fw")])
    kept = sum(n for _, n in b["firmware"])          # imported and kept for the board's life
    boot_only = sum(n for _, n in b["boot_only"])    # imported by boot, dropped after it
    fw = kept + boot_only - b["dropped"]              # what boot leaves of the firmware
    mpy_bytes = sum(mpy_size.get(n, 0) for n, _ in b["firmware"])
    n100 = str(100 if 100 in mem["slot_counts"] else mem["slot_counts"][0])
    per = mem["mp32"]["per_slots"][n100]
    # The worst moment (PRODUCT.md: a full locker compacting): compaction runs inside the
    # commit of the request whose record fills a segment, so the request and the snapshot
    # write are in the heap together. Candidates: every request measured whole (all it
    # allocates, nothing freed: an upper bound), and a PICKUP_START's SPAKE2 run, whose
    # big-integer arithmetic allocates megabytes of short-lived garbage that a board's
    # collector recycles as it goes (the 32-bit VM cannot collect inside a call, so it shows
    # the total): its LIVE working set is the candidate, an estimate. PICKUP_START's own
    # record ("try") can compact too; by then the run's integers are garbage, so that
    # moment is the PICKUP_FINISH one's size.
    # (bench_requests.py reports a START without its arithmetic, and the arithmetic on its
    # own row; AUDIT_READ's total is per-record garbage too, one record live at a time.)
    moments = [(t[0], t[1]) for t in per["transient"] if t[0] not in NOT_A_MOMENT
               and "group arithmetic" not in t[0]
               and not t[0].startswith(("PICKUP_START", "AUDIT_READ"))]
    moments.append(("a pickup's SPAKE2 run (PICKUP_START), live working set",
                    int(PAKE_LIVE_KB * 1024)))
    moments.sort(key=lambda x: -x[1])
    worst_name, worst = moments[0]
    aio_kb = sum(n for _, n in b["aioble"]) / 1024 if "aioble" in b else 12.2
    aio_how = ("measured: `import aioble` of %s (%s), %s B of .mpy" % (
        " + ".join(firmware.AIOBLE_PACKAGES), ", ".join(firmware.AIOBLE_MODULES),
        num(aio_bytes)) if "aioble" in b else "estimate (set AIOBLE_SRC to measure)")
    frozen_fw = max(0, fw - mpy_bytes)
    rows_in = [
        ("firmware bytecode after boot (%d modules incl. main.py)" % len(b["firmware"]),
         fw / 1024, frozen_fw / 1024,
         ".mpy (`-X no-source-lines`): measured import, plus %s B left of the %s B that "
         "the boot-only modules (%s) take until boot drops them; frozen: estimate = import "
         "minus the %s B of .mpy, which stays in flash" % (
             num(boot_only - b["dropped"]), num(boot_only),
             ", ".join(n for n, _ in b["boot_only"]), num(mpy_bytes))),
        ("aioble bytecode", aio_kb, aio_kb, aio_how),
        ("asyncio (frozen in the stock ESP32 firmware)", b["asyncio"] / 1024,
         b["asyncio"] / 1024, "measured import on the VM"),
        ("BLE objects (service, characteristics, write queue, tasks)", BLE_OBJECTS_KB,
         BLE_OBJECTS_KB, "estimate"),
        ("retained state, %s slots, all occupied" % n100, per["retained_full"] / 1024,
         per["retained_full"] / 1024, "measured"),
        ("the worst moment's transient: %s" % worst_name, worst / 1024, worst / 1024,
         "%s; the next candidates: %s" % (
             PAKE_LIVE_HOW if worst_name.startswith("a pickup's SPAKE2") else
             "measured: all the request allocates, nothing freed (an upper bound)",
             "; ".join("%s %.1f KB" % (name, size / 1024) for name, size in moments[1:4]))),
    ]
    used_mpy = sum(r[1] for r in rows_in)
    used_frozen = sum(r[2] for r in rows_in)
    rows = [[name, "%.1f KB" % a, "%.1f KB" % c, how] for name, a, c, how in rows_in]
    rows.append(["**in use at the worst moment**", "%.1f KB" % used_mpy,
                 "%.1f KB" % used_frozen, ""])
    rows.append(["**free of %d KB**" % ESP32_HEAP_KB,
                 "%.1f KB (%.0f%%)" % (ESP32_HEAP_KB - used_mpy,
                                       100 * (ESP32_HEAP_KB - used_mpy) / ESP32_HEAP_KB),
                 "%.1f KB (%.0f%%)" % (ESP32_HEAP_KB - used_frozen,
                                       100 * (ESP32_HEAP_KB - used_frozen) / ESP32_HEAP_KB),
                 "goal: >= 30% free with .mpy files"])
    text = ("ESP32 without PSRAM, ~%d KB MicroPython heap with BLE running; figures from the "
            "32-bit VM:\n\n" % ESP32_HEAP_KB) + table(
        ["heap", "firmware as .mpy", "firmware frozen", "source"], rows)
    # Boot: every module (boot-only ones too) before the drop, no aioble yet (the radio comes
    # up after boot), retained state and the boot-from-snapshot transient.
    boot_kb = ((kept + boot_only + b["asyncio"] + per["retained_full"]) / 1024
               + _by_name(mem["mp32"], int(n100)).get("boot from the full locker's snapshot",
                                                       0) / 1024)
    text += ("\n\nBoot, before the radio: all %d modules imported (%.1f KB, of which %.1f KB "
             "only boot uses and %.1f KB comes back when boot drops them), asyncio, the "
             "retained state and booting from the full locker's snapshot: %.1f KB in use, "
             "%s the serving peak above." % (
                 len(b["firmware"]) + len(b["boot_only"]), (kept + boot_only) / 1024,
                 boot_only / 1024, b["dropped"] / 1024, boot_kb,
                 "below" if boot_kb < used_mpy else "ABOVE"))
    data = {"budget": b, "mpy_bytes": mpy_bytes, "aioble_mpy_bytes": aio_bytes,
            "firmware_after_boot": fw, "firmware_kept": kept, "boot_only": boot_only,
            "dropped": b["dropped"], "boot_kb": boot_kb,
            "used_mpy_kb": used_mpy, "used_frozen_kb": used_frozen,
            "free_mpy_pct": 100 * (ESP32_HEAP_KB - used_mpy) / ESP32_HEAP_KB,
            "free_frozen_pct": 100 * (ESP32_HEAP_KB - used_frozen) / ESP32_HEAP_KB,
            "worst": [worst_name, worst], "aioble_measured": "aioble" in b}
    return text, data


ARITH_ROW = ": its SPAKE2 group arithmetic (P-256 big integers)"   # bench_requests.py


def _largest_requests(transients, n=3):
    """The n request rows allocating most, the PAKE's group arithmetic left out (it has
    rows of its own), compaction and boot too (not requests)."""
    rows = [(b, name) for name, b in transients.items()
            if "group arithmetic" not in name and not name.startswith(
                ("compaction", "boot", "one HMAC"))]
    return [name for _, name in sorted(rows, reverse=True)[:n]]


def _by_name(d, n):
    per = d["per_slots"].get(str(n)) if d else None
    return {t[0]: t[1] for t in per["transient"]} if per else {}


def capped_run(ctx, n):
    """bench_memory at MP_HEAP: a full n-slot locker, else an empty one, else nothing. The
    harness is in this heap too, so it can outgrow the cap before the firmware does (a new
    qstr pool, docs/performance.md): then the table says so instead of the bench failing."""
    why = None
    for fill in (True, False):
        try:
            cap = run_mp(ctx["mpy"], "bench_memory", [ctx["tmp"] + "/mem-cap-%d" % fill, [n],
                                                      fill], MP_HEAP)
        except BenchError as e:
            why = why or [ln for ln in str(e).splitlines() if ln.strip()][-1]
            continue
        if why:
            for c in cap["per_slots"].values():
                c["filled"], c["fill_error"] = 0, why
        return cap
    return {"error": why, "per_slots": {}}


def section_memory(ctx):
    p = ctx["p"]
    counts = p["slot_counts"]
    big = counts[-1]
    cap = capped_run(ctx, counts[0])
    d = run_mp(ctx["mpy"], "bench_memory", [ctx["tmp"] + "/mem-work", counts, True, True],
               MEM_HEAP)
    d32, vm32 = run_mp32(ctx["mpy"], ctx["tmp"] + "/mem32", counts)
    missing = "-" if d32 else "n/a"

    def col32(fn):
        try:
            return fn(d32) if d32 else missing
        except KeyError:
            return missing

    def per(dd, n, key):
        return dd["per_slots"][str(n)][key]

    code = sum(n for _, n in d["imports"])
    rows = [["firmware code (imports of %d modules, .mpy in RAM)" % len(d["imports"]),
             kb(code), kb(sum(n for _, n in cap["imports"])) if "imports" in cap else
             "did not fit: " + cap["error"],
             col32(lambda x: kb(sum(n for _, n in x["imports"])))],
            ["benchmark harness (not firmware; excluded below)", kb(d["harness"]),
             kb(cap["harness"]) if "harness" in cap else "-",
             col32(lambda x: kb(x["harness"]))]]
    for n in counts:
        c = cap["per_slots"].get(str(n))
        rows += [["retained: booted %d-slot locker, empty" % n, kb(per(d, n, "retained_empty")),
                  kb(c["retained_empty"]) if c else "-",
                  col32(lambda x: kb(per(x, n, "retained_empty")))],
                 ["retained: %d parcels in" % n, kb(per(d, n, "retained_full")),
                  (kb(c["retained_full"]) if c.get("filled") == n else
                   "did not fit (%d filled: %s)" % (c.get("filled", 0), c.get("fill_error"))
                   ) if c else "-",
                  col32(lambda x: kb(per(x, n, "retained_full")))],
                 ["retained: full %d-slot locker after reboot" % n,
                  kb(per(d, n, "retained_full_after_reboot")), "-",
                  col32(lambda x: kb(per(x, n, "retained_full_after_reboot")))]]
    text = ("64-bit: the PyPI unix port; 32-bit: %s (WebAssembly, npm; the ESP32's word "
            "size).\n\n" % (vm32 if d32 else "not run: " + vm32))
    text += table(["heap", "64-bit at " + MEM_HEAP, "64-bit at " + MP_HEAP, "32-bit"], rows)
    names = [t[0] for t in d["per_slots"][str(big)]["transient"]]
    trows = []
    for name in names:
        row = [name]
        for n in counts:
            v64, v32 = _by_name(d, n).get(name), _by_name(d32, n).get(name)
            row += [kb(v64) if v64 is not None and v64 >= 0 else
                    "over %s with the collector off" % MEM_HEAP,
                    kb(v32) if v32 is not None else missing]
        trows.append(row)
    heads = ["operation"]
    for n in counts:
        heads += ["64-bit, %d slots" % n, "32-bit, %d slots" % n]
    text += ("\n\nTransient: bytes allocated while the operation runs, minus what it leaves "
             "retained (64-bit: collector off; 32-bit: that port never collects inside a "
             "call). An upper bound on the extra heap the operation needs. Every request kind "
             "once (tools/bench/device/bench_requests.py); a PICKUP_START's SPAKE2 group "
             "arithmetic (spake2.share, spake2.shared_element) is measured apart, on the row "
             "after it, and left out of the START's own figure:\n\n"
             + table(heads, trows))
    # Smallest heap that still serves.
    mpy, tmp, step = ctx["mpy"], ctx["tmp"], p["bisect_step_kb"]

    def flow(fill, tag):
        def argv(heap):
            folder = "%s/flow-%s-%s" % (tmp, tag, heap)
            os.makedirs(folder, exist_ok=True)
            return [MICROPYTHON, "-X", "heapsize=" + heap, "-c",
                    "import sys;sys.path[:0]=[%r];import bench_flow;bench_flow.main(%r, %d)"
                    % (mpy, folder, fill)]
        return argv

    def flow_check(heap):
        folder = "%s/flowcheck-%s" % (tmp, heap)
        return [MICROPYTHON, "-X", "heapsize=" + heap,
                os.path.join(REPO, "host_tests", "mp", "flow_check.py"), mpy, folder]

    mins = {}
    cases = [("flow_empty", "deposit -> reboot -> pickup, empty 100-slot locker (.mpy)",
              flow(0, "e")),
             ("flow_full", "fill all 100 slots, compaction, reboot, pickup (.mpy)",
              flow(100, "f"))]
    if os.path.exists(os.path.join(REPO, "host_tests", "mp", "flow_check.py")):
        cases.append(("flow_check", "host_tests/mp/flow_check.py (script compiled on board)",
                      flow_check))
    rows = []
    for key, label, argv in cases:
        best, fails = min_heap_kb(argv, 16, 2048, step)
        mins[key] = {"min_kb": best, "fails_kb": fails}
        rows.append([label, "%d KB" % best if best else "> 2048 KB",
                     "%d KB" % fails if fails else "-",
                     "yes" if best and best * 1024 <= heap_bytes(MP_HEAP) else "NO"])
    text += ("\n\nSmallest `-X heapsize` that passes on the 64-bit unix port (bisected to %d KB;"
             " the WebAssembly port's heap cannot be capped):\n\n" % step) + table(
        ["flow", "passes at", "fails at", "fits %s" % MP_HEAP], rows)
    out = {"cap": cap, "work": d, "mp32": d32, "mp32_vm": vm32, "min_heap": mins,
           "mp_heap": MP_HEAP, "slot_counts": counts}
    btext, out["esp32_budget"] = esp32_budget(ctx, out)
    return text + "\n\n" + btext, out


def section_recovery(ctx):
    p = ctx["p"]
    runs = [("configured", run_mp(ctx["mpy"], "bench_recovery",
                                  [ctx["tmp"] + "/rec", p["history"], p["segment_records"]],
                                  WORK_HEAP)),
            ("compaction off", run_mp(ctx["mpy"], "bench_recovery",
                                      [ctx["tmp"] + "/rec-off", p["history_nocompact"],
                                       10 ** 9], WORK_HEAP))]
    rows = []
    for label, d in runs:
        seg = d["segment_records"]
        for r in d["rows"]:
            rows.append(["%s (segment_records %s)" % (label, num(seg)), num(r["ops"]),
                         num(r["replayed"]), ms(r["boot_us"]), num(r["snapshot_bytes"]),
                         num(r["segment_bytes"]),
                         "%s in %d files" % (kb(r["bytes_on_flash"]), r["files"])])
    text = table(["store", "operations in history", "records replayed at boot",
                  "boot to first answer", "snapshot bytes", "live segment bytes",
                  "flash in use"], rows)
    text += ("\n\nEach operation is one request that changes state (deposit or pickup, "
             "alternating). Generating the history took %s per operation."
             % ms(runs[0][1]["us_per_op"]))
    return text, {label: d for label, d in runs}


def section_size(ctx):
    out = tempfile.mkdtemp(prefix="bench-size-", dir=ctx["tmp"])
    rows, total, device = [], 0, 0
    firmware.compile_tree(out, "sim", incremental=False)
    dev = os.path.join(out, "device")        # what a board gets: no line numbers
    firmware.compile_tree(dev, "device", incremental=False)
    for src, rel in firmware.sources("sim"):
        if rel in firmware.AS_SOURCE:
            continue
        dst = os.path.join(out if rel[:-3] in SIM_ONLY else dev, rel[:-3] + ".mpy")
        size = os.path.getsize(dst)
        sim = rel[:-3] in SIM_ONLY
        total += size
        device += 0 if sim else size
        rows.append([rel[:-3], num(os.path.getsize(src)), num(size),
                     "simulator only" if sim else "board"])
    text = ("Board modules as `make deploy` compiles them (`-X no-source-lines`), simulator "
            "modules with line numbers.\n\n"
            + table(["module", ".py bytes", ".mpy bytes", "flashed to"], rows))
    data = {"modules": {r[0]: int(r[2].replace(",", "")) for r in rows}, "total": total,
            "device": device, "aioble": None}
    aio = os.environ.get("AIOBLE_SRC")
    aio_rows = []
    if aio:
        src = os.path.join(aio, "aioble") if os.path.isdir(os.path.join(aio, "aioble")) else aio
        sizes = {}
        for name in sorted(os.listdir(src)):
            if name.endswith(".py"):
                dst = os.path.join(out, "aioble_" + name[:-3] + ".mpy")
                subprocess.run(firmware.mpy_cross_cmd() + ["-o", dst, os.path.join(src, name)],
                               check=True)
                sizes[name[:-3]] = os.path.getsize(dst)
        server = sum(sizes.get(m, 0) for m in firmware.AIOBLE_MODULES)
        data["aioble"] = {"all": sum(sizes.values()), "peripheral_server": server,
                          "modules": sizes}
        aio_rows = [["aioble, as `mip install aioble` installs it (%d modules)" % len(sizes),
                     num(sum(sizes.values()))],
                    ["aioble as `make deploy` installs it (%s: %s)" % (
                        " + ".join(firmware.AIOBLE_PACKAGES),
                        ", ".join(firmware.AIOBLE_MODULES)), num(server)],
                    ["firmware (board modules) + aioble peripheral/server",
                     num(device + server)]]
    summary = [["firmware, board modules (all but %s)" % ", ".join(SIM_ONLY), num(device)],
               ["firmware, all modules", num(total)]] + aio_rows
    text += "\n\n" + table(["total", ".mpy bytes"], summary)
    if not aio:
        text += ("\n\naioble left out: set AIOBLE_SRC to a micropython-lib checkout's "
                 "micropython/bluetooth/aioble to include it.")
    return text, data


def section_protocol(ctx):
    d = run_mp(ctx["mpy"], "bench_protocol", [ctx["tmp"] + "/proto", [20, 244]], WORK_HEAP)
    sizes, frags = d["sizes"], d["fragments"]
    rows = [[name, req, ans] for name, (req, ans) in sorted(sizes.items())]
    text = table(["message", "request bytes", "answer bytes"], rows)
    # a pickup needs no HELLO when the phone knows the locker id (its advertised name)
    flows = {"deposit": ["hello", "deposit"], "pickup": ["pickup_start", "pickup_finish"],
             "failed pickup": ["pickup_wrong_start"]}
    rows, data = [], {}
    for payload in ("20", "244"):
        for flow, msgs in flows.items():
            n_frag = sum(frags[payload][m][0][0] + frags[payload][m][1][0] for m in msgs)
            n_bytes = sum(frags[payload][m][0][1] + frags[payload][m][1][1] for m in msgs)
            app = sum(sizes[m][0] + sizes[m][1] for m in msgs)
            data["%s@%s" % (flow, payload)] = {"round_trips": len(msgs), "fragments": n_frag,
                                               "bytes": n_bytes, "message_bytes": app}
            rows.append([flow, payload, len(msgs), n_frag, num(app), num(n_bytes),
                         num(n_bytes + 7 * n_frag)])
    text += "\n\n" + table(["flow (after connecting)", "link payload", "round trips",
                            "fragments (writes + notifications)", "message bytes",
                            "bytes incl. fragment headers", "+ ATT/L2CAP headers (7 B each)"],
                           rows)
    link_text, link_data = link_figures(sizes, flows)
    text += "\n\n" + link_text
    return text, {"sizes": sizes, "flows": data, "link": link_data}


def _frags(n, payload):
    return max(1, -(-n // (payload - 1)))


def link_figures(sizes, flows):
    """BLE link cost per flow under the flow control of docs/protocol.md 2 (core/link.py):
    requests in 244-byte fragments written with response (a long write below MTU 247:
    Prepare Write of MTU-5 bytes each + Execute Write), or in ATT_MTU-3 fragments with a
    credit wait every link.WINDOW; answers notified in ATT_MTU-3 fragments. Worst-case
    queue depth: request fragments the locker's capture queue can hold at once."""
    from core import link
    from radio import ble_service as svc
    big = svc.MAX_LINK_PAYLOAD
    cases = dict(flows)
    sizes = dict(sizes)
    sizes["longest"] = [P.MAX_REQUEST, sizes["hello"][1]]
    cases["longest request (256 B)"] = ["longest"]
    rows, data = [], {}
    for mtu in (23, 247):
        att = mtu - 3
        for flow, msgs in cases.items():
            for mode in ("long writes", "ATT_MTU-3 writes"):
                payload = big if mode == "long writes" else att
                writes = pdus = credits = depth = notes = 0
                for m in msgs:
                    req, ans = sizes[m]
                    n = _frags(req, payload)
                    writes += n
                    for i in range(n):
                        size = min(payload, req - i * (payload - 1) + 1)
                        pdus += 1 if size <= att else -(-size // (att - 2)) + 1
                    credits += phone.credit_points(n)
                    depth = max(depth, min(n, link.WINDOW))
                    notes += _frags(ans, min(att, big))
                trips = len(msgs) + credits
                key = "%s@%d/%s" % (flow, mtu, mode)
                data[key] = {"writes": writes, "att_pdus": pdus, "credits": credits,
                             "notifications": notes, "round_trips": trips,
                             "queue_depth": depth}
                if mtu == 247 and mode != "long writes":
                    continue                  # the same fragments at MTU 247
                rows.append([flow, mtu, mode if mtu == 23 else "244-byte writes", writes,
                             pdus, credits, notes, trips, depth])
    text = table(["flow (after connecting)", "ATT MTU", "request fragments as",
                  "request fragments", "ATT write PDUs", "credit waits",
                  "answer notifications", "round trips", "worst queue depth (of 10)"], rows)
    return text, data


def section_host(ctx):
    import importlib.util         # the device scripts' helper, loaded by path on CPython
    spec = importlib.util.spec_from_file_location(
        "bench_util", os.path.join(HERE, "device", "bench_util.py"))
    U = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(U)
    from core import pickup_code, recipient
    rig = U.Rig(os.path.join(ctx["tmp"], "host"), layout="S*10")
    cred, key = rig.courier(1)
    sid, code = rig.deposit(cred, key, U.req_id(1), 1)
    lk = rig.locker
    slot = lk.slots.get(sid)
    lid = U.LOCKER_ID
    form = pickup_code.FORM_HUMAN
    _, _, material = phone.parse(code)
    now = lk.clock.now()
    share = recipient.RecipientPake(sid, form, material, lid, os.urandom).share

    def locker_reply(i):
        _, w = lk.verifier.password(slot, form, now, os.urandom)
        return pickup_code.locker_reply(w, pickup_code.random_scalar(os.urandom), sid, form,
                                        lid, share)
    cases = [
        ("human pickup codes generated", lambda i: phone.human_code(key, lid, sid, i, now)),
        ("machine (QR) codes generated",
         lambda i: phone.machine_code(key, lid, sid, i, now)),
        ("phone: parse code + SPAKE2 share", lambda i: recipient.RecipientPake(
            sid, form, material, lid, os.urandom)),
        ("locker: password + SPAKE2 reply", locker_reply),
    ]
    rows, data = [], {}
    for name, fn in cases:
        n, t0 = 0, time.perf_counter()
        while True:
            for _ in range(50):
                fn(n)
                n += 1
            dt = time.perf_counter() - t0
            if dt >= ctx["p"]["host_s"]:
                break
        data[name] = n / dt
        rows.append([name, num(round(n / dt)), "%.1f us" % (1e6 * dt / n)])
    text = table(["operation (CPython %d.%d)" % sys.version_info[:2], "per second", "each"],
                 rows)
    return text, data


# ---- the simulator's heap (SIM_HEAP) -------------------------------------------------------

SIM_STAGES = [
    ("start", "interpreter + the measuring script (not the simulator's)"),
    ("asyncio", "asyncio (frozen in the unix port, as in the ESP32's: its objects only)"),
    ("firmware", "firmware modules main.py imports (core.locker, store, pickup PAKE, ...; "
                 "drivers.gpio_lock)"),
    ("main", "main (main.mpy)"),
    ("board_shared", "core.fragment, core.link, drivers.flash_fs, drivers.nvs_anchor "
                     "(a board loads them too)"),
    ("sim_hw", "targets.sim_hw, targets.sim_nvs (simulated doors, NVS): simulator only"),
    ("sim_board", "targets.sim_board + SimBoard() (socket radio, control channel): "
                  "simulator only"),
    ("locker", "main.Runtime(): config read, core.anchored, the locker and its state "
               "(the demo's 10 slots)"),
    ("booted", "boot(): recovery, first snapshot, boot-only modules dropped"),
    ("serving", "serving: asyncio streams, the two socket servers, the hardware loop"),
]
DEMO_LAYOUT = "S*4,M*4,L*2"      # tools/demo.py's locker
QSTR_RE = r"n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)"
DEMO_HEAP_RE = r"heap in use now (\d+) of (\d+) bytes; peak during a request (\d+)"


def sim_stages(ctx):
    """bench_sim.py on the simulator image: retained heap and interned names per stage."""
    import re
    from lockerctl import sim
    from lockerctl.commands.operator import provision_state
    state = os.path.join(ctx["tmp"], "sim-stages")
    os.environ.setdefault("LOCKERCTL_HOME", os.path.join(ctx["tmp"], "keys"))
    provision_state(state, DEMO_LAYOUT)
    fw = sim.build_firmware(state)
    code = "import sys;sys.path[:0]=[%r,%r];import bench_sim;bench_sim.main(%r)" % (
        fw, ctx["mpy"], os.path.abspath(state))
    proc = subprocess.run([MICROPYTHON, "-X", "heapsize=" + WORK_HEAP, "-c", code],
                          capture_output=True, text=True, timeout=120, cwd=fw)
    stages, key = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith("STAGE "):
            _, key, alloc = line.split()
            stages[key] = {"alloc": int(alloc)}
        elif key and re.search(QSTR_RE, line):
            n = [int(x) for x in re.search(QSTR_RE, line).groups()]
            stages[key].update(pools=n[0], names=n[1], str_bytes=n[2], qstr_bytes=n[3])
    if proc.returncode or "RESULT" not in proc.stdout or len(stages) != len(SIM_STAGES):
        raise BenchError("bench_sim on MicroPython failed:\n%s%s" % (proc.stdout[-2000:],
                                                                      proc.stderr[-2000:]))
    return stages


def demo_run(ctx, heap):
    """`make demo`'s story (tools/demo.py) with SIM_HEAP=heap in a folder of its own:
    (passed, its output)."""
    folder = os.path.join(ctx["tmp"], "demo-" + heap)
    env = dict(os.environ, SIM_HEAP=heap, DEMO_WEB="0", DEMO_DIR=folder)
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "demo.py")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    shutil.rmtree(folder, ignore_errors=True)
    return done.returncode == 0, done.stdout + done.stderr


def section_sim(ctx):
    """Where the simulator's heap goes and the smallest SIM_HEAP `make demo` passes at."""
    import re
    from lockerctl import sim
    st = sim_stages(ctx)
    rows, prev = [], None
    for key, label in SIM_STAGES:
        d = st[key]
        rows.append([label, num(d["alloc"]), "-" if prev is None else
                     "%+d" % (d["alloc"] - st[prev]["alloc"]), num(d["names"]),
                     "%d / %s" % (d["pools"], num(d["qstr_bytes"]))])
        prev = key
    text = ("The simulator image (`lockerctl sim`'s: main.mpy, no line numbers) loaded stage by "
            "stage as `micropython -m main sim STATE` loads it "
            "(`tools/bench/device/bench_sim.py`, 64-bit unix port, heap %s; bytes retained "
            "after a collection; a stage's bytes include the interned names and qstr pools "
            "it adds):\n\n" % WORK_HEAP) + table(
        ["stage", "retained (B)", "this stage (B)", "interned names", "qstr pools / bytes"],
        rows)
    end = st["serving"]
    text += ("\n\nInterned names at the end: %d in %d pools, %s B (of which name text %s B);"
             " MicroPython grows the pool by doubling, so one name more than a pool holds "
             "costs a whole new pool." % (end["names"], end["pools"], num(end["qstr_bytes"]),
                                          num(end["str_bytes"])))
    default = sim.sim_heap()
    default_kb = heap_bytes(default) // 1024
    runs = {}

    def ok(heap):
        runs[heap] = demo_run(ctx, heap)
        return runs[heap][0]

    hi = default_kb if ok(default) else 512
    best, fails = bisect_kb(ok, 64, hi, ctx["p"]["bisect_step_kb"])
    at = {}
    for heap in (default, "%dk" % best if best else None):
        m = heap and re.search(DEMO_HEAP_RE, runs.get(heap, (False, ""))[1])
        if m:
            at[heap] = [int(x) for x in m.groups()]
    rows = [["`make demo` (tools/demo.py: deposit, pickup, a wrong code, status, audit)",
             "%d KB" % best if best else "> 512 KB", "%d KB" % fails if fails else "-",
             default, "%d KB" % (default_kb - best) if best else "-"]]
    text += ("\n\nSmallest `SIM_HEAP` that passes (bisected to %d KB; a capped heap fails "
             "when no free block is large enough, not only when the total is reached):\n\n"
             % ctx["p"]["bisect_step_kb"]) + table(
        ["flow", "passes at", "fails at", "default SIM_HEAP", "margin"], rows)
    for heap, (now, total, peak) in sorted(at.items()):
        text += ("\n\nAt SIM_HEAP=%s the demo ends with %s B in use of %s; the heaviest "
                 "measured request peaked at %s B." % (heap, num(now), num(total), num(peak)))
    return text, {"stages": st, "demo_min_kb": best, "demo_fails_kb": fails,
                  "default": default, "default_kb": default_kb, "demo_heap": at}


SECTIONS = [("1. Pickup PAKE cost", section_verify),
            ("2. Durable writes", section_writes),
            ("3. Memory", section_memory),
            ("4. Recovery", section_recovery),
            ("5. Firmware size", section_size),
            ("6. Protocol on the air", section_protocol),
            ("7. Host side throughput", section_host),
            ("8. The simulator's heap", section_sim)]


def summary(res):
    v = res["1. Pickup PAKE cost"]["timed"]
    va = res["1. Pickup PAKE cost"]["alloc"]["rows"]
    mul2s = sorted({r[k]["mul2"] for r in va for k in ("right", "wrong")})
    w = {name: c for name, _, c in res["2. Durable writes"]["rows"]}
    wd = next(c for n, c in w.items() if n.startswith("deposit ("))
    wp = next(c for n, c in w.items() if n.startswith("pickup, human code"))
    wf = next(c for n, c in w.items() if n.startswith("failed"))
    am = res["2. Durable writes"]["amortised"]
    m = res["3. Memory"]
    n0 = m["slot_counts"][0]
    mw = m["work"]["per_slots"][str(n0)]
    m32 = m["mp32"]["per_slots"][str(n0)] if m["mp32"] else None
    tr = _by_name(m["work"], n0)
    tr32 = _by_name(m["mp32"], n0)
    bud = m.get("esp32_budget")
    rec = res["4. Recovery"]
    rc = rec["configured"]["rows"]
    ro = rec["compaction off"]["rows"]
    size = res["5. Firmware size"]
    proto = res["6. Protocol on the air"]["flows"]
    host = res["7. Host side throughput"]
    mins = m["min_heap"]

    def mk(key):
        x = mins.get(key, {}).get("min_kb")
        return "%s KB" % x if x else "n/a"

    simh = res["8. The simulator's heap"]
    rows = [
        ["Pickup attempt (SPAKE2) does not grow with occupancy",
         "locker: %s scalar passes per attempt, right or wrong, at %s occupied slots; "
         "PICKUP_START %s (wrong code) to %s; %s allocated per START" % (
             "/".join(map(str, mul2s)), "/".join(str(r["occupied"]) for r in va),
             ms(min(r["wrong"]["start_us"] for r in v["rows"])),
             ms(max(r["right"]["start_us"] for r in v["rows"])),
             kb(max(r["right"]["heap_alloc"] for r in va)))],
        ["One durable write per state change",
         "deposit %d, human-code pickup %d (try + pick), failed attempt %d write(s); "
         "amortised with compaction "
         "%.3f writes/record" % (wd[0], wp[0], wf[0], am["writes"] / max(1, am["records"]))],
        ["Bytes written per deposit / per pickup",
         "%d B / %d B (journal line); %d B per record amortised incl. snapshots" % (
             wd[1], wp[1], round(am["bytes"] / max(1, am["records"])))],
        ["RAM: retained heap, %d-slot locker (32-bit VM = ESP32 word size; 64-bit)" % n0,
         "empty %s / %s, full %s / %s; firmware code in RAM %s / %s" % (
             kb(m32["retained_empty"]) if m32 else "-", kb(mw["retained_empty"]),
             kb(m32["retained_full"]) if m32 else "-", kb(mw["retained_full"]),
             kb(sum(n for _, n in m["mp32"]["imports"])) if m32 else "-",
             kb(sum(n for _, n in m["work"]["imports"])))],
        ["RAM: transient allocation (32-bit / 64-bit)",
         "largest request without the PAKE's arithmetic: %s; " % "; ".join(
             "%s %s / %s" % (name, kb(tr32.get(name)), kb(tr.get(name)))
             for name in _largest_requests(tr32 or tr)) +
         "; ".join("%s %s / %s" % (name, kb(tr32.get(name)), kb(tr.get(name))) for name in (
             "DEPOSIT, new parcel", "PICKUP_START, human code",
             "PICKUP_START, human code" + ARITH_ROW, "compaction (snapshot), full locker",
             "boot from the full locker's snapshot"))],
        ["RAM: fits the ~100 KB heap",
         "smallest heap: empty-locker flow %s, full-locker flow with compaction %s "
         "(cap %s)" % (mk("flow_empty"), mk("flow_full"), m["mp_heap"])],
        ["RAM: the simulator (64-bit port, `SIM_HEAP`)",
         "`make demo` passes at %s (fails at %s), default %s; %s B retained while serving "
         "(firmware, simulated board, locker)" % (
             "%d KB" % simh["demo_min_kb"] if simh["demo_min_kb"] else "-",
             "%d KB" % simh["demo_fails_kb"] if simh["demo_fails_kb"] else "-",
             simh["default"], num(simh["stages"]["serving"]["alloc"]
                                  - simh["stages"]["start"]["alloc"]))],
        ["RAM: ESP32 heap budget (100 KB, BLE on; 32-bit VM)",
         ("with .mpy files %.1f KB in use at the worst moment, %.0f%% free; firmware frozen "
          "%.1f KB, %.0f%% free (goal: >= 30%% free with .mpy)" % (
              bud["used_mpy_kb"], bud["free_mpy_pct"], bud["used_frozen_kb"],
              bud["free_frozen_pct"])) if bud else "not computed (no 32-bit VM)"],
        ["Firmware size (.mpy)",
         "%s B board modules (%s B all)%s" % (
             num(size["device"]), num(size["total"]),
             "; + aioble peripheral/server %s B (all aioble %s B)" % (
                 num(size["aioble"]["peripheral_server"]), num(size["aioble"]["all"]))
             if size["aioble"] else "; aioble left out")],
        ["Boot/recovery time as the journal grows",
         "replayed %s records for %s operations (configured compaction) vs %s without; "
         "boot %s vs %s" % (num(rc[-1]["replayed"]), num(rc[-1]["ops"]),
                            num(ro[-1]["replayed"]), ms(rc[-1]["boot_us"]),
                            ms(ro[-1]["boot_us"]))],
        ["Protocol cost per flow",
         "deposit: %d round trips, %d fragments at 20 B / %d at 244 B; pickup: %d / %d" % (
             proto["deposit@20"]["round_trips"], proto["deposit@20"]["fragments"],
             proto["deposit@244"]["fragments"], proto["pickup@20"]["fragments"],
             proto["pickup@244"]["fragments"])],
        ["Host code generation / PAKE",
         "%s codes/s, %s locker PAKE replies/s (CPython)" % (
             num(round(host["human pickup codes generated"])),
             num(round(host["locker: password + SPAKE2 reply"])))],
    ]
    return table(["PRODUCT.md performance target", "measured"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the scripts work")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build", "bench"))
    args = ap.parse_args(argv)
    p = QUICK if args.quick else FULL
    os.makedirs(args.build_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="run-", dir=args.build_dir)
    ctx = {"p": p, "tmp": tmp, "mpy": compile_all(args.build_dir)}
    started = time.time()
    out = ["# Benchmark figures (%s, %s%s)" % (
        datetime.date.today().isoformat(), "quick" if args.quick else "full",
        ", MicroPython heap %s, work heap %s" % (MP_HEAP, WORK_HEAP))]
    results = {}
    for title, fn in SECTIONS:
        t0 = time.time()
        text, data = fn(ctx)
        results[title] = data
        out.append("## %s\n\n%s\n\n(section took %.1f s)" % (title, text, time.time() - t0))
        print(out[-1] + "\n", flush=True)
    out.append("## Summary\n\n" + summary(results))
    print(out[-1])
    print("\nwhole run: %.0f s" % (time.time() - started))
    shutil.rmtree(tmp, ignore_errors=True)        # the lockers' stores, not figures
    with open(os.path.join(args.build_dir, "report.md"), "w") as f:
        f.write("\n\n".join(out) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"params": p, "results": results, "report": "\n\n".join(out)}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
