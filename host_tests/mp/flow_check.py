# Runs ON MicroPython (unix port, ESP32-sized heap): a deposit -> pickup through the
# locker's request handler, with the phone side computed by the same firmware modules.
# Prints one JSON line of results that host_tests/test_micropython.py checks.
import gc
import json
import os
import struct
import sys

sys.path.insert(0, sys.argv[1])           # firmware/
STATE = sys.argv[2]

from core import phone
from core import clock as C
from core import config, credentials, recipient
from core import locker as L
from core import protocol as P
from drivers import flash_fs, gpio_lock
from targets import sim_hw

gc.collect()
heap_start = gc.mem_alloc()
t = sim_hw.ManualTime()
master = b"\x11" * 32
lid = bytes.fromhex("0102030405060708")
cfg = config.build({"locker_id": lid.hex(), "layout": "S*40,M*40,L*20"})


def boot():
    drv = sim_hw.SimLockDriver(100, ticks_ms=t.ticks_ms)
    bank = gpio_lock.LockBank(drv, 500, 1000, 1, t.ticks_ms, t.ticks_diff)
    clk = C.LockerClock(t.rtc_unix, t.uptime_s)
    lk = L.Locker(cfg, master, flash_fs.FolderFs(STATE), clk, bank, t.ticks_ms, t.ticks_diff,
                  os.urandom)
    lk.boot()
    return lk


lk = boot()
gc.collect()
heap_booted = gc.mem_alloc() - heap_start
session = lk.new_session()
resp = lk.handle(session, P.request(P.HELLO))
challenge = resp[3:19]
cred = credentials.Credential(credentials.COURIER, b"courier-7", 9, t.rtc, t.rtc + 86400)
key = cred.key(master, lid)
frame = phone.sign(P.request(P.DEPOSIT, cred.encode() + b"R" * 8 + bytes((2,))), key, challenge)
gc.collect()
before = gc.mem_alloc()
resp = lk.handle(session, frame)
assert resp[2] == P.OK, resp
slot, gen, ts, size, ttl = struct.unpack(">HIIBI", resp[19:34])
code = phone.human_code(key, lid, slot, gen, ts)
sid, form, material = phone.parse(code)       # what the recipient types, parsed
lk = None
lk = boot()                                # reboot between deposit and pickup
session = lk.new_session()
lk.handle(session, P.request(P.HELLO))
gc.collect()
before_pickup = gc.mem_alloc()
pake = recipient.RecipientPake(sid, form, material, lid, os.urandom)
resp = lk.handle(session, P.request(P.PICKUP_START, struct.pack(">HB", sid, form) + pake.share))
assert resp[2] == P.OK, resp
confirm_a = pake.finish(resp[19:84], resp[84:116])
resp = lk.handle(session, P.request(P.PICKUP_FINISH, confirm_a))
assert resp[2] == P.OK, resp
assert pake.check_answer(resp) is not None
picked = struct.unpack(">HBI", resp[19:26])[0]
gc.collect()
print(json.dumps({"slot": slot, "picked": picked, "code": code, "heap_booted": heap_booted,
                  "heap_total": gc.mem_alloc() + gc.mem_free()}))
