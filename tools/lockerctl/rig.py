"""A locker rig: the real locker core on a folder, with the fake hardware of
firmware/sim_hw.py and a hand-moved clock. Used by the tests, campaigns and benchmarks
(CPython, in-process; the simulator runs the same core on MicroPython)."""
import os

from core import (
    clock,  # firmware modules, on the path via .fw
    config,
    credentials,
    locker,
)
from core.slot_manager import Slot
from drivers import flash_fs, gpio_lock
from targets import sim_hw

from . import operator as op
from .client import DirectTransport, LockerClient

LOCKER_ID = bytes.fromhex("4c4b520000000001")
MASTER = bytes(range(32))


def slot_rows(slots):
    """Every slot of a SlotManager as a JSON-friendly list [state, flags, gen, deposit_ts,
    cred hex, req hex, holder hex, released_ts], for tests and tools to compare (the board
    never materialises its packed table: core/slot_manager.py)."""
    rows = []
    for sid in slots.sids():
        s = Slot(slots, sid)
        rows.append([s.state, slots.flags[sid - 1], s.gen, s.deposit_ts, s.cred.hex(),
                     s.req.hex(), s.holder.hex(), s.released_ts])
    return rows


def locker_state(lk):
    """A materialised copy of a Locker's live state (what its snapshot holds), to compare."""
    d = lk._state()
    d["slots"] = slot_rows(lk.slots)
    d["recent"] = list(d["recent"])
    return d


class Bench:
    """A locker, its fake hardware and clock, rebootable from the same folder."""

    def __init__(self, folder, layout="S*2,M*2,L", sensors=True, fs=None, anchor=None, **cfg):
        """anchor: the journal's anchor (drivers.nvs_anchor over sim_hw.SimNvs), kept across
        boot(); None boots without the anchor check."""
        self.folder = folder
        self.anchor = anchor
        self.time = sim_hw.ManualTime()
        self.cfg = config.build(dict({"locker_id": LOCKER_ID.hex(), "layout": layout}, **cfg))
        self.sensors = sensors
        self.fs = fs or flash_fs.FolderFs(folder)
        self.boot()

    def boot(self, fs=None):
        """(Re)boot from the folder: new RAM state, same flash. fs swaps the flash view."""
        if fs is not None:
            self.fs = fs
        t = self.time
        n = len(self.cfg["sizes"])
        self.driver = sim_hw.SimLockDriver(n, sensors=self.sensors, ticks_ms=t.ticks_ms)
        self.bank = gpio_lock.LockBank(self.driver, self.cfg["pulse_ms"],
                                       self.cfg["rated_pulse_ms"], self.cfg["max_concurrent"],
                                       t.ticks_ms, t.ticks_diff)
        self.clock = clock.LockerClock(t.rtc_unix, t.uptime_s)
        args = (self.cfg, MASTER, self.fs, self.clock, self.bank, t.ticks_ms, t.ticks_diff,
                os.urandom)
        anchor = getattr(self, "anchor", None)
        if anchor is None:
            self.locker = locker.Locker(*args)
        else:
            from core.anchored import AnchoredLocker
            self.locker = AnchoredLocker(*(args + (anchor,)))
        # the client first: a boot that halts (StoreCorrupt) leaves a locker to talk to
        self.client = LockerClient(DirectTransport(self.locker))
        self.locker.boot()
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
