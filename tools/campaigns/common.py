"""Shared helpers of the adversarial campaigns (power cuts, fuzzing, resource exhaustion).

Importable from tools/ and from host_tests/: a locker rig on a scratch folder (the real core,
fake hardware, hand-moved clock), credentials, a figures table whose must-be-zero rows decide
the exit status, and a small launcher for the MicroPython simulator (compiled .mpy firmware,
`micropython -X heapsize=SIM_HEAP -m main sim <state>`)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from core import credentials  # noqa: F401
from core import protocol as P  # noqa: F401  (re-exported for the campaigns)
from lockerctl import firmware, sim
from lockerctl import operator as op
from lockerctl.client import LockerClient, LockerRefused  # noqa: F401
from lockerctl.rig import LOCKER_ID, MASTER, Bench  # noqa: F401
from lockerctl.transport import SimSocketTransport

REPO = firmware.REPO
FIRMWARE = firmware.FIRMWARE
YEAR_S = 365 * 86400


def scratch_dir(prefix):
    """A fresh folder, in RAM when the machine has /dev/shm (flash stand-in, thousands of
    fsyncs per second)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def wipe(folder):
    shutil.rmtree(folder, ignore_errors=True)


def courier(now, holder="courier-1", serial=1, valid_s=YEAR_S, flags=0):
    return op.issue(MASTER, LOCKER_ID, credentials.COURIER, holder, serial, valid_s, now=now,
                    flags=flags)


def technician(now, holder="tech-1", serial=900, valid_s=YEAR_S):
    return op.issue(MASTER, LOCKER_ID, credentials.TECHNICIAN, holder, serial, valid_s, now=now)


def service_doors(bench, seconds=0.6):
    """Let queued pulses run, a repeated open's second pulse and the locks' rest included
    (ADR 0005); return the slots driven meanwhile (in order)."""
    before = len(bench.driver.pulses)
    bench.run_hardware(seconds)
    for _ in range(50):            # a repeated open's second pulse waits for the rest
        if not bench.bank.busy():
            break
        bench.run_hardware(0.1)
    return bench.driver.pulses[before:]


def close_all_doors(bench):
    for sid in bench.locker.slots.sids():
        if bench.driver.doors[sid]:
            bench.driver.close(sid)
    bench.run_hardware(0.2)


class Figures:
    """Named counters; rows listed in must_be_zero fail the campaign when non-zero."""

    def __init__(self, title, must_be_zero):
        self.title = title
        self.must_be_zero = list(must_be_zero)
        self.values = {name: 0 for name in self.must_be_zero}
        self.order = []
        self.examples = []          # first few failures, to replay

    def add(self, name, n=1):
        if name not in self.values:
            self.values[name] = 0
        if name not in self.order:
            self.order.append(name)
        self.values[name] += n

    def set(self, name, value):
        if name not in self.order:
            self.order.append(name)
        self.values[name] = value

    def merge(self, other_values):
        for k, v in other_values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.add(k, v)
            else:
                self.set(k, v)

    def note(self, text):
        if len(self.examples) < 10:
            self.examples.append(text)

    def failed(self):
        return [k for k in self.must_be_zero if self.values.get(k)]

    def report(self, out=sys.stdout):
        print("== %s ==" % self.title, file=out)
        width = max(len(k) for k in list(self.values) + ["x"])
        for k in self.order + [k for k in self.must_be_zero if k not in self.order]:
            mark = "  (must be 0)" if k in self.must_be_zero else ""
            print("  %-*s %s%s" % (width, k, self.values[k], mark), file=out)
        for e in self.examples:
            print("  example: %s" % e, file=out)
        bad = self.failed()
        print("%s: %s" % (self.title, "FAIL (%s)" % ", ".join(bad) if bad else "PASS"),
              file=out)
        return 0 if not bad else 1


# ---- the MicroPython simulator ------------------------------------------------------------

def heap_arg():
    """The simulator's heap cap: the same SIM_HEAP as `lockerctl sim` and `make demo`; a
    value MicroPython would refuse ends the campaign with its name, not a traceback."""
    try:
        return sim.sim_heap()
    except ValueError as e:
        raise SystemExit("campaign: %s" % e)


class Sim:
    """One simulated locker: a state folder and the MicroPython process serving it.

    The process can be stopped cleanly, killed (SIGKILL: a power cut at any instruction) and
    started again on the same folder; doors and RTC offset survive like the real ones."""

    def __init__(self, state_dir, layout="S*2,M*2,L", cfg=None, fw_dir=None):
        self.state = state_dir
        self.proc = None
        self.log_path = os.path.join(state_dir, "sim.log")
        os.makedirs(os.path.join(state_dir, "store"), exist_ok=True)
        conf = {"locker_id": LOCKER_ID.hex(), "layout": layout}
        conf.update(cfg or {})
        with open(os.path.join(state_dir, "locker.json"), "w") as f:
            json.dump(conf, f)
        with open(os.path.join(state_dir, "secret.bin"), "wb") as f:
            f.write(MASTER)
        self.fw = os.path.join(state_dir, "fw")
        if fw_dir:
            shutil.copytree(fw_dir, self.fw)
        else:
            sim.build_firmware(self.state)      # <state>/fw, as `lockerctl sim` does

    def start(self, timeout=20.0, extra_env=None):
        # Fresh ports at every start: the unix port's listener does not set SO_REUSEADDR,
        # so a port with connections in TIME_WAIT from the killed process cannot be reused.
        self.port = sim.free_port()
        self.control_port = sim.free_port()
        with open(os.path.join(self.state, "sim.json"), "w") as f:
            json.dump({"port": self.port, "control_port": self.control_port,
                       "sensors": True}, f)
        log = open(self.log_path, "ab")
        self._log_from = log.tell()
        self.proc = sim.launch(self.state, self.fw, heap_arg(), log,
                               env=dict(os.environ, **(extra_env or {})))
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("simulator exited with %s; log: %s"
                                   % (self.proc.returncode, self.tail()))
            try:
                return self.control({"cmd": "status"}, timeout=1.0)
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("simulator did not come up; log: %s" % self.tail())

    def tail(self, n=2000):
        """The log written since the last start (its last n bytes)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "_log_from", 0))
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: no cleanup, no flush, exactly like pulling the plug."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self):
        if self.alive():
            try:
                self.control({"cmd": "stop"}, timeout=2.0)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        self.kill()

    def control(self, cmd, timeout=5.0):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as s:
            s.sendall(json.dumps(cmd).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        answer = json.loads(buf)
        if not answer.get("ok"):
            raise ValueError("control %r refused: %s" % (cmd, answer.get("error")))
        return answer

    def client(self, link_payload=20, timeout=3.0):
        return LockerClient(SimSocketTransport(port=self.port, link_payload=link_payload,
                                               timeout=timeout))

    def close_doors(self, status=None):
        status = status or self.control({"cmd": "status"})
        for row in status["slots"]:
            if row[5]:
                status = self.control({"cmd": "door", "slot": row[0], "action": "close"})
        return status
