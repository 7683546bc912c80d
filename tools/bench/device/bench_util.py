# Shared by the benchmark scripts that run ON MicroPython (and on CPython for checks):
# a locker on a folder with simulated hardware, the phone's side of the two flows, hash
# counters and a microsecond timer. Compiled to .mpy with the firmware (tools/bench/run.py).
import gc
import json
import os
import struct
import sys

from core import clock, config, credentials, locker, phone, recipient
from core import hmac_sha256 as H
from core import protocol as P
from core import unload
from drivers import flash_fs, gpio_lock
from targets import sim_hw

MASTER = b"\x11" * 32
LOCKER_ID = bytes.fromhex("4c4b520000000001")
LAYOUT_100 = "S*40,M*40,L*20"

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


try:
    random_bytes = os.urandom
except AttributeError:  # the WebAssembly port (tools/mp32) has no os.urandom
    import random

    _SCRATCH = {}

    def random_bytes(n):
        """One new bytes object and nothing else, as os.urandom makes (the stand-in's own
        garbage would count in the locker's figures, bench_memory)."""
        b = _SCRATCH.get(n)
        if b is None:
            b = _SCRATCH[n] = bytearray(n)
        for i in range(n):
            b[i] = random.getrandbits(8)
        return bytes(b)


def emit(result):
    """The one line the host runner reads back (streamed: no copy of it in the heap)."""
    import sys
    sys.stdout.write("RESULT ")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        os.remove(path + "/" + n)
    os.rmdir(path)


# ---- durable-write counting ----------------------------------------------------------

class CountingFs(flash_fs.FolderFs):
    """FolderFs that also counts renames (atomic replaces) and removes."""

    def __init__(self, root):
        flash_fs.FolderFs.__init__(self, root)
        self.renames = 0
        self.removes = 0
        self.replaced_bytes = 0      # bytes of whole-file rewrites (snapshots, headers)

    def replace(self, name, chunks):
        before = self.bytes_written
        flash_fs.FolderFs.replace(self, name, chunks)
        self.renames += 1
        self.replaced_bytes += self.bytes_written - before

    def remove(self, name):
        flash_fs.FolderFs.remove(self, name)
        self.removes += 1

    def counters(self):
        return [self.writes, self.bytes_written, self.renames, self.replaced_bytes]

    def usage(self):
        """(files, bytes) the store occupies now."""
        names = self.listdir()
        return len(names), sum(self.size(n) for n in names)


def delta(after, before):
    return [a - b for a, b in zip(after, before)]


# ---- hash counting -------------------------------------------------------------------

class HashCount:
    hmacs = 0
    sha_objects = 0
    compressions = 0      # SHA-256 block compressions: ceil((len + 9) / 64) per digest

    @classmethod
    def reset(cls):
        cls.hmacs = cls.sha_objects = cls.compressions = 0

    @classmethod
    def get(cls):
        return {"hmacs": cls.hmacs, "sha": cls.sha_objects, "compressions": cls.compressions}


_real_hashlib = H.hashlib
_real_hmac = H.hmac_sha256


class _CountingSha:
    def __init__(self, data=b""):
        self._h = _real_hashlib.sha256(data)
        self._n = len(data)

    def update(self, data):
        self._h.update(data)
        self._n += len(data)

    def digest(self):
        HashCount.sha_objects += 1
        HashCount.compressions += (self._n + 8) // 64 + 1
        return self._h.digest()


class _CountingHashlib:
    sha256 = _CountingSha


def _counting_hmac(key, msg, *more):
    HashCount.hmacs += 1
    return _real_hmac(key, msg, *more)


def count_hashes(on):
    """Swap the hash functions every loaded module uses for counting wrappers (or back).

    Module globals are reassignable on MicroPython too; hmac_sha256 itself is included, so
    its inner and outer hashes are counted as well."""
    swaps = ((_real_hashlib, _CountingHashlib), (_real_hmac, _counting_hmac))
    for m in list(sys.modules.values()):
        for name, (real, counting) in zip(("hashlib", "hmac_sha256"), swaps):
            have = getattr(m, name, None)
            if have is (real if on else counting):
                try:
                    setattr(m, name, counting if on else real)
                except (AttributeError, TypeError):
                    pass


# ---- a locker on simulated hardware --------------------------------------------------

# What main.Runtime.boot drops after boot (main.BOOT_ONLY) that this harness does not hold
# itself (it keeps core.config for its configs): a booted rig has the heap a board has. The
# boot itself imports it again, as a board's does; a transient measured around a boot counts
# that import as retained (it is still loaded then), so drop before reading retained heap.
BOOT_ONLY = ("core.store_recover",)


def drop_boot_only():
    unload.drop(*BOOT_ONLY)


class Rig:
    """A locker with fake doors and a hand-moved clock, rebootable from its folder."""

    def __init__(self, folder, layout=LAYOUT_100, fresh=True, **cfg):
        if fresh:
            rmtree(folder)
        self.folder = folder
        self.time = sim_hw.ManualTime()
        overrides = {"locker_id": LOCKER_ID.hex(), "layout": layout}
        overrides.update(cfg)
        self.cfg = config.build(overrides)
        self.fs = CountingFs(folder)
        self.locker = None
        self.boot()

    def make(self):
        """Construct (not boot) a locker over the folder: the object a board would build."""
        t = self.time
        n = len(self.cfg["sizes"])
        # no pulse recordings: they are the fake's, not firmware state (retained figures)
        self.driver = sim_hw.SimLockDriver(n, ticks_ms=t.ticks_ms, record=False)
        self.bank = gpio_lock.LockBank(self.driver, self.cfg["pulse_ms"],
                                       self.cfg["rated_pulse_ms"], self.cfg["max_concurrent"],
                                       t.ticks_ms, t.ticks_diff)
        clk = clock.LockerClock(t.rtc_unix, t.uptime_s)
        self.locker = None
        gc.collect()
        self.locker = locker.Locker(self.cfg, MASTER, self.fs, clk, self.bank, t.ticks_ms,
                                    t.ticks_diff, random_bytes)
        self.session = self.locker.new_session()
        return self.locker

    def boot(self):
        self.make()
        self.locker.boot()
        drop_boot_only()
        return self.locker

    def settle(self, sid):
        """Drive the pulse, let the door open, close it again: no door left awaiting."""
        lk = self.locker
        self.bank.service()
        self.time.advance(1)
        self.bank.service()
        while self.bank.busy():       # a repeated open waits out the lock's rest (ADR 0005)
            self.time.advance(0.1)
            self.bank.service()
        lk.poll_doors()
        self.driver.close(sid)
        lk.poll_doors()

    # ---- the phone's side --------------------------------------------------------------

    def courier(self, n=1):
        t = self.time.rtc
        cred = credentials.Credential(credentials.COURIER, b"courier-%d" % n, n, t,
                                      t + 30 * 86400)
        return cred, cred.key(MASTER, LOCKER_ID)

    def handle(self, frame):
        """As main.Runtime.handle: one request, then a collection (keeps the heap compact)."""
        resp = self.locker.handle(self.session, frame)
        gc.collect()
        return resp

    def hello(self):
        resp = self.handle(P.request(P.HELLO))
        return resp, resp[3:3 + P.CHALLENGE_LEN]

    def deposit_frame(self, cred, key, challenge, req_id, size=1):
        return phone.sign(P.request(P.DEPOSIT, cred.encode() + req_id + bytes((size,))), key,
                          challenge)

    def deposit(self, cred, key, req_id, size=1):
        """HELLO + DEPOSIT; returns (slot, code)."""
        _, ch = self.hello()
        resp = self.handle(self.deposit_frame(cred, key, ch, req_id, size))
        if resp[2] != P.OK:
            raise RuntimeError("deposit refused: %d" % resp[2])
        sid, gen, ts, _, _ = struct.unpack(">HIIBI", resp[19:34])
        return sid, phone.human_code(key, LOCKER_ID, sid, gen, ts, self.cfg["bucket_s"])

    def pickup_frame(self, code, challenge=None):
        """The PICKUP_START of a pickup with code (the phone's share, random x)."""
        sid, form, material = phone.parse(code)
        return recipient.start_frame(recipient.RecipientPake(sid, form, material, LOCKER_ID,
                                                             random_bytes))

    def pickup(self, code):
        """HELLO + PICKUP_START (+ PICKUP_FINISH if the locker proved the code); returns the
        last status byte (a wrong code: 9, E_CODE, as the phone would report it)."""
        self.hello()
        sid, form, material = phone.parse(code)
        resp, pake = recipient.pickup(self.handle, sid, form, material, LOCKER_ID, random_bytes)
        if resp[2] == P.OK and pake.key is None:
            return P.E_CODE
        return resp[2]


def wrong_code(code):
    """The same slot, a different secret: what a guesser sends."""
    digits = code.replace("-", "")
    last = "0" if digits[-1] != "0" else "1"
    return digits[:-1] + last


def req_id(i):
    return struct.pack(">Q", i)
