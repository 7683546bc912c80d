# Runs ON MicroPython (unix port, -X heapsize=100k): the locker core on a store whose flash
# fills up. Usage: micropython mp_fullstore.py <firmware .mpy dir> <state dir> [requests]
# A quota on the folder makes writes fail with OSError(ENOSPC) the way a full littlefs does:
# the write that does not fit changes nothing. Prints one JSON line of figures.
import gc
import json
import os
import struct
import sys

sys.path.insert(0, sys.argv[1])
STATE = sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 40

from core import phone
from core import clock as C
from core import config, credentials, recipient
from core import locker as L
from core import protocol as P
from drivers import flash_fs, gpio_lock
from targets import sim_hw

ENOSPC = 28


class QuotaFs(flash_fs.FolderFs):
    """A folder with a byte quota (None: unlimited)."""
    quota = None
    refused = 0

    def used(self):
        total = 0
        for name in self.listdir():
            total += self.size(name)
        return total

    def _write(self, name, chunks, mode):
        if self.quota is not None:
            chunks = list(chunks)        # the store may stream a snapshot: size it first
            size = 0
            for c in chunks:
                size += len(c)
            if self.used() + size > self.quota:
                self.refused += 1
                raise OSError(ENOSPC)
        flash_fs.FolderFs._write(self, name, chunks, mode)


t = sim_hw.ManualTime()
master = b"\x22" * 32
lid = bytes.fromhex("0102030405060709")
cfg = config.build({"locker_id": lid.hex(), "layout": "S*6,M*3,L", "segment_records": 6,
                    "keep_segments": 2})
fs = QuotaFs(STATE)
figs = {"requests": 0, "internal errors": 0, "changed on internal error": 0,
        "reads refused while full": 0, "boot failures while full": 0,
        "recovery failures": 0, "served after space returned": 0, "heap peak": 0}


def boot():
    drv = sim_hw.SimLockDriver(10, ticks_ms=t.ticks_ms)
    bank = gpio_lock.LockBank(drv, 500, 1000, 1, t.ticks_ms, t.ticks_diff)
    clk = C.LockerClock(t.rtc_unix, t.uptime_s)
    lk = L.Locker(cfg, master, fs, clk, bank, t.ticks_ms, t.ticks_diff, os.urandom)
    lk.boot()
    return lk, drv, bank


lk, drv, bank = boot()
session = lk.new_session()
challenge = lk.handle(session, P.request(P.HELLO))[3:19]
cred = credentials.Credential(credentials.COURIER, b"courier-9", 9, t.rtc, t.rtc + 86400 * 30)
tech = credentials.Credential(credentials.TECHNICIAN, b"tech-9", 99, t.rtc, t.rtc + 86400 * 30)
key = cred.key(master, lid)
tkey = tech.key(master, lid)
codes = {}


def call(frame):
    global challenge
    resp = lk.handle(session, frame)
    challenge = resp[3:19]
    figs["requests"] += 1
    gc.collect()
    used = gc.mem_alloc()
    if used > figs["heap peak"]:
        figs["heap peak"] = used
    return resp


def settle():
    for _ in range(8):
        bank.service()
        lk.poll_doors()
        t.advance(0.1)
    for sid in range(1, 11):
        drv.close(sid)
    bank.service()
    lk.poll_doors()


def fingerprint():
    s = lk.slots
    return (bytes(s.state), bytes(s.gen), lk.store.seq, lk.throttle.to_list(), fs.used())


def deposit(n):
    frame = phone.sign(P.request(P.DEPOSIT, cred.encode() + struct.pack(">Q", n) + b"\x01"),
                       key, challenge)
    resp = call(frame)
    if resp[2] == P.OK:
        slot, gen, ts, size, ttl = struct.unpack(">HIIBI", resp[19:34])
        codes[slot] = phone.human_code(key, lid, slot, gen, ts)
    return resp[2]


def pickup(slot):
    sid, form, material = phone.parse(codes[slot])
    resp, _ = recipient.pickup(call, sid, form, material, lid, os.urandom)
    if resp[2] == P.OK and resp[1] == P.PICKUP_FINISH | P.RESPONSE_BIT:
        del codes[slot]
    return resp[2]


def reads_ok():
    ok = call(P.request(P.HELLO))[2] == P.OK
    ok = call(phone.sign(P.request(P.STATUS, tech.encode()), tkey, challenge))[2] == P.OK and ok
    frame = phone.sign(P.request(P.AUDIT_READ, tech.encode() + struct.pack(">IB", 1, 5)), tkey,
                       challenge)
    return call(frame)[2] == P.OK and ok


# Fill the flash a little at a time: every round sets the quota just above what is used,
# so the next writes hit ENOSPC at every kind of write point (append, snapshot, segment).
for rnd in range(ROUNDS):
    fs.quota = fs.used() + (rnd * 37) % 700
    for op in range(6):
        before = fingerprint()
        if codes and op % 2:
            status = pickup(sorted(codes)[0])
        else:
            status = deposit(rnd * 10 + op)
        settle()
        if status == P.E_INTERNAL:
            figs["internal errors"] += 1
            if fingerprint()[:4] != before[:4]:
                figs["changed on internal error"] += 1
            if not reads_ok():
                figs["reads refused while full"] += 1
    # reboot while (maybe) full: must come up and serve reads
    lk = drv = bank = session = None
    gc.collect()
    try:
        lk, drv, bank = boot()
    except OSError:
        figs["boot failures while full"] += 1
        fs.quota = None
        gc.collect()
        try:
            lk, drv, bank = boot()
        except Exception as e:
            figs["recovery failures"] += 1
            figs["error"] = repr(e)
            break
    except Exception as e:
        figs["recovery failures"] += 1
        figs["error"] = repr(e)
        break
    session = lk.new_session()
    challenge = lk.handle(session, P.request(P.HELLO))[3:19]
    if not reads_ok():
        figs["reads refused while full"] += 1
    # space returns: a normal deposit and pickup must work again
    fs.quota = None
    if deposit(10000 + rnd) == P.OK and pickup(sorted(codes)[-1]) == P.OK:
        figs["served after space returned"] += 1
    settle()
    while codes:                               # empty the locker for the next round
        if pickup(sorted(codes)[0]) != P.OK:
            figs["recovery failures"] += 1
            codes.pop(sorted(codes)[0])
        settle()

figs["rounds"] = ROUNDS
figs["writes refused (ENOSPC)"] = fs.refused
figs["heap total"] = gc.mem_alloc() + gc.mem_free()
print(json.dumps(figs))
