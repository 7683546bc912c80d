"""Runs a script on the real MicroPython unix port against the firmware compiled to .mpy.

Why .mpy: compiling the firmware's .py source inside an ESP32-sized heap runs out of memory,
and a board runs .mpy anyway. The firmware is compiled once per test session into a temp dir.
Environment: MICROPYTHON names the binary (default .venv/bin/micropython), MP_HEAP the heap
cap (default 100k, the ESP32-without-PSRAM budget with BLE running)."""
import atexit
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from lockerctl import firmware

ROOT = firmware.REPO
MP_SCRIPTS = os.path.join(ROOT, "host_tests", "mp")
_compiled = {}


def micropython():
    """The unix-port binary, or a pytest skip naming how to provide one."""
    try:
        return firmware.micropython_binary()
    except firmware.BuildError as e:
        pytest.skip(str(e))


def heap():
    """MP_HEAP (default 100k), checked: a typo fails with its name, not MicroPython's
    "Invalid command line arguments"."""
    try:
        return firmware.heap_setting("MP_HEAP", "100k")
    except firmware.SettingError as e:
        pytest.fail(str(e), pytrace=False)


# Scripts that hold the WHOLE locker (Locker, store, the pickup PAKE's p256 + spake2) plus a
# phone and their own source, with the firmware loaded as .mpy INTO the heap of the 64-bit
# unix port, no longer fit 100k since the PAKE (~12 KB more bytecode; the 100-slot flow
# passed with under 5 KB to spare before). Measured (1 KB bisection): flow_check.py passes at
# 120k (fails at 119k), vectors_check.py at 115k (114k): 128k keeps 8 KB over both. A frozen
# image keeps bytecode in flash (docs/performance.md, "Heap and the pickup PAKE").
WHOLE_LOCKER_HEAP = os.environ.get("MP_WHOLE_LOCKER_HEAP", "128k")


def firmware_mpy():
    """A temp dir with the firmware tree as .mpy (lockerctl.firmware; once per session)."""
    if "dir" not in _compiled:
        out = tempfile.mkdtemp(prefix="fw-mpy-")
        atexit.register(shutil.rmtree, out, True)
        firmware.compile_tree(out, "sim")
        _compiled["dir"] = out
    return _compiled["dir"]


def run_script(script, *args, timeout=300, heap_size=None):
    """Run host_tests/mp/<script> as `micropython -X heapsize=.. script <mpy dir> args..`;
    return the CompletedProcess (stdout/stderr as text). heap_size overrides MP_HEAP."""
    binary = micropython()
    mpy = firmware_mpy()
    return subprocess.run([binary, "-X", "heapsize=" + (heap_size or heap()),
                           os.path.join(MP_SCRIPTS, script),
                           mpy] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def run_json(script, *args, timeout=300, heap_size=None):
    """Run a script that prints one JSON line last; return it parsed (assert on failure)."""
    proc = run_script(script, *args, timeout=timeout, heap_size=heap_size)
    assert proc.returncode == 0, "MicroPython %s failed:\n%s\n%s" % (script, proc.stdout,
                                                                     proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, "no JSON line from %s:\n%s" % (script, proc.stdout)
    return json.loads(lines[-1])
