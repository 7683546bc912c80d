# The smallest heap that still serves: deposit -> reboot -> pickup on a 100-slot locker,
# optionally after filling `fill` slots so that the last deposit compacts the full state.
# Imports only what a board would (no benchmark harness), so the heap is the firmware's.
import gc
import os
import struct

from core import clock, config, credentials, locker, phone, recipient
from core import protocol as P
from drivers import flash_fs, gpio_lock
from targets import sim_hw

MASTER = b"\x11" * 32
LID = bytes.fromhex("4c4b520000000001")


def main(folder, fill):
    try:
        for n in os.listdir(folder):      # a fresh store every run
            os.remove(folder + "/" + n)
    except OSError:
        pass
    t = sim_hw.ManualTime()
    over = {"locker_id": LID.hex(), "layout": "S*40,M*40,L*20"}
    if fill:
        over["segment_records"] = fill + 1      # the fill-th deposit compacts
    cfg = config.build(over)

    def boot():
        drv = sim_hw.SimLockDriver(100, ticks_ms=t.ticks_ms, record=False)   # as a board: no log
        bank = gpio_lock.LockBank(drv, 500, 1000, 1, t.ticks_ms, t.ticks_diff)
        clk = clock.LockerClock(t.rtc_unix, t.uptime_s)
        lk = locker.Locker(cfg, MASTER, flash_fs.FolderFs(folder), clk, bank, t.ticks_ms,
                           t.ticks_diff, os.urandom)
        lk.boot()
        return lk, drv, bank

    def call(lk, session, frame):
        resp = lk.handle(session, frame)
        gc.collect()
        return resp

    lk, drv, bank = boot()
    cred = credentials.Credential(credentials.COURIER, b"courier-7", 9, t.rtc, t.rtc + 86400)
    key = cred.key(MASTER, LID)
    session = lk.new_session()
    code = None
    for i in range(max(1, fill)):
        ch = call(lk, session, P.request(P.HELLO))[3:19]
        body = cred.encode() + struct.pack(">Q", i) + b"\x01"
        resp = call(lk, session, phone.sign(P.request(P.DEPOSIT, body), key, ch))
        assert resp[2] == P.OK, resp
        sid, gen, ts, _, _ = struct.unpack(">HIIBI", resp[19:34])
        code = phone.human_code(key, LID, sid, gen, ts)
        bank.service()
        t.advance(1)
        bank.service()
        lk.poll_doors()
        drv.close(sid)
        lk.poll_doors()
    lk = drv = bank = None
    gc.collect()
    lk, drv, bank = boot()                        # reboot between deposit and pickup
    session = lk.new_session()
    call(lk, session, P.request(P.HELLO))
    sid, form, material = phone.parse(code)
    resp, pake = recipient.pickup(lambda f: call(lk, session, f), sid, form, material, LID,
                                  os.urandom)
    assert resp[2] == P.OK and pake.key is not None, resp
    print("RESULT {\"ok\": true}")
