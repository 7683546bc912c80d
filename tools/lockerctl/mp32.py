"""The 32-bit MicroPython VM: the official WebAssembly port from npm, run under Node.

The ESP32 is a 32-bit machine (4-byte words, 16-byte GC blocks, 31-bit small ints); the PyPI
unix port is 64-bit, so its heap figures are ~1.5x a board's. The WebAssembly port
(`@micropython/micropython-webassembly-pyscript`, pinned in tools/mp32/package-lock.json) is
the published 32-bit build: `make mp32` (or the first use here) installs it with `npm ci`.

What it does differently from a board (docs/performance.md): its heap grows on demand (so a
figure is an allocation measured with gc.mem_alloc(), never a MemoryError), its filesystem is
in memory (the firmware tree is copied in at start), and it has no `machine`, no
`asyncio.run`, no `os.urandom`.

    run(script, args, trees)  -> subprocess.CompletedProcess
    run_json(...)             -> the last `RESULT {json}` or `{json}` line, parsed
Raises Unavailable (with the reason) when Node or the package cannot be had.
"""
import json
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP32_DIR = os.path.join(REPO, "tools", "mp32")
RUNNER = os.path.join(MP32_DIR, "run.mjs")
PACKAGE = "@micropython/micropython-webassembly-pyscript"


class Unavailable(Exception):
    """Node, npm or the WebAssembly package is missing and cannot be installed."""


class RunError(RuntimeError):
    """The script failed on the 32-bit VM (exit status, stdout and stderr in the message)."""


def node_binary():
    exe = os.environ.get("NODE") or shutil.which("node")
    if not exe or not os.path.exists(exe):
        raise Unavailable("Node.js not found (install node >= 18 or set NODE)")
    return exe


def _installed():
    return os.path.exists(os.path.join(MP32_DIR, "node_modules", *PACKAGE.split("/"),
                                       "micropython.wasm"))


def ensure(install=True):
    """Return the node binary once the package is installed (`npm ci` on first use)."""
    node = node_binary()
    if _installed():
        return node
    if not install:
        raise Unavailable("%s not installed: run `make mp32`" % PACKAGE)
    npm = os.environ.get("NPM") or shutil.which("npm")
    if not npm:
        raise Unavailable("npm not found: cannot install %s" % PACKAGE)
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MP32_DIR,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode or not _installed():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise Unavailable("`npm ci` in tools/mp32 failed: %s" % " / ".join(tail))
    return node


def version():
    """sys.implementation of the VM, e.g. 'micropython 1.27.0 (mpy 6.3)'."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write("import sys\ni = sys.implementation\n"
                "print('RESULT', '%s %d.%d.%d (mpy %d.%d), sys.maxsize 2**%d-1' % ("
                "i.name, i.version[0], i.version[1], i.version[2], i._mpy & 0xff, "
                "i._mpy >> 8 & 3, len(bin(sys.maxsize)) - 2))\n")
    try:
        proc = run(f.name, [], [])
    finally:
        os.unlink(f.name)
    return proc.stdout.split("RESULT", 1)[1].strip()


def run(script, args=(), trees=(), timeout=600):
    """Run a MicroPython script on the 32-bit VM.

    trees: (host dir, VM dir) pairs copied into the VM's in-memory filesystem; the VM dirs go
    first on sys.path in that order. Returns the CompletedProcess (text)."""
    node = ensure()
    cmd = [node, RUNNER]
    for host, vm in trees:
        cmd += ["--tree", "%s=%s" % (host, vm)]
    cmd += [script] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_json(script, args=(), trees=(), timeout=600):
    """Run and return the last line starting `RESULT ` (or `{`), parsed; RunError if none."""
    proc = run(script, args, trees, timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
        if line.startswith("{"):
            return json.loads(line)
    raise RunError("%s on the 32-bit VM failed (exit %d):\n%s%s" % (
        os.path.basename(script), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))


BENCH_DEVICE = os.path.join(REPO, "tools", "bench", "device")


def run_steps(out, target, scripts, launcher, timeout=600):
    """The firmware image for target ("sim" or "device", lockerctl.firmware) plus the named
    tools/bench/device scripts compiled into out/fw, then `launcher` (MicroPython source
    that defines MP32_STEPS) run on the VM with that tree first on sys.path. Returns its
    RESULT dict; Unavailable without Node or the npm package, RunError if it fails."""
    from lockerctl import firmware
    ensure()
    tree = os.path.join(out, "fw")
    firmware.compile_tree(tree, target, incremental=False, extra=[
        (os.path.join(BENCH_DEVICE, n), n) for n in scripts])
    script = os.path.join(out, "launch.py")
    with open(script, "w") as f:
        f.write(launcher)
    return run_json(script, [], [(tree, "/fw")], timeout)
