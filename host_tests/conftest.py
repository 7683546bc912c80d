"""Shared fixtures: a locker on a temp folder with fake hardware and a hand-moved clock."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from lockerctl import fw  # noqa: E402,F401  (puts firmware/ on sys.path)
from lockerctl import operator as op  # noqa: E402
from lockerctl.client import DirectTransport, LockerClient  # noqa: E402

import clock  # noqa: E402
import config  # noqa: E402
import credentials  # noqa: E402
import flash_fs  # noqa: E402
import gpio_lock  # noqa: E402
import locker  # noqa: E402
import sim_hw  # noqa: E402

LOCKER_ID = bytes.fromhex("4c4b520000000001")
MASTER = bytes(range(32))


class Bench:
    """A locker, its fake hardware and clock, rebootable from the same folder."""

    def __init__(self, folder, layout="S*2,M*2,L", sensors=True, fs=None, **cfg):
        self.folder = folder
        self.time = sim_hw.ManualTime()
        self.cfg = config.build(dict({"locker_id": LOCKER_ID.hex(), "layout": layout}, **cfg))
        self.sensors = sensors
        self.fs = fs or flash_fs.FolderFs(folder)
        self.boot()

    def boot(self):
        t = self.time
        n = len(self.cfg["sizes"])
        self.driver = sim_hw.SimLockDriver(n, sensors=self.sensors, ticks_ms=t.ticks_ms)
        self.bank = gpio_lock.LockBank(self.driver, self.cfg["pulse_ms"],
                                       self.cfg["rated_pulse_ms"], self.cfg["max_concurrent"],
                                       t.ticks_ms, t.ticks_diff)
        self.clock = clock.LockerClock(t.rtc_unix, t.uptime_s)
        self.locker = locker.Locker(self.cfg, MASTER, self.fs, self.clock, self.bank,
                                    t.ticks_ms, t.ticks_diff, os.urandom)
        self.locker.boot()
        self.client = LockerClient(DirectTransport(self.locker))
        return self.locker

    def courier(self, holder="courier-1", serial=1, valid_s=7 * 86400, flags=0):
        return op.issue(MASTER, LOCKER_ID, credentials.COURIER, holder, serial, valid_s,
                        now=self.time.rtc, flags=flags)

    def technician(self, holder="tech-1", serial=900, valid_s=86400):
        return op.issue(MASTER, LOCKER_ID, credentials.TECHNICIAN, holder, serial, valid_s,
                        now=self.time.rtc)

    def run_hardware(self, seconds=1.0):
        """Let pulses finish and the door monitor see the result."""
        steps = max(1, int(seconds * 10))
        for _ in range(steps):
            self.bank.service()
            self.locker.poll_doors()
            self.time.advance(seconds / steps)
        self.bank.service()
        self.locker.poll_doors()


@pytest.fixture
def bench(tmp_path):
    return Bench(str(tmp_path / "store"))


@pytest.fixture
def make_bench(tmp_path):
    def make(**kw):
        return Bench(str(tmp_path / "store"), **kw)
    return make
