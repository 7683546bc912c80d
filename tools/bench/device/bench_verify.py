# Section 1: what one pickup attempt costs the locker (SPAKE2 party B, core/spake2.py) and the
# phone (party A): group operations, hashes, time and heap, for a right and a wrong code, at
# several occupancies (the slot comes from the code: the cost must not grow with them).
# Also the raw rate of the big-integer operation the group arithmetic is made of (a 256-bit
# multiply + reduction mod p), the basis of the ESP32 estimate in docs/performance.md.
import gc

from bench_util import (
    LOCKER_ID,
    HashCount,
    Rig,
    count_hashes,
    emit,
    req_id,
    ticks_diff,
    ticks_us,
    wrong_code,
)
from core import p256, phone, pickup_code, recipient
from core import protocol as P


class GroupCount:
    """Group operations counted by wrapping core/p256's add and mul2 (module attributes:
    p256's own calls and spake2's go through them), only while counting is on, so the timed
    runs carry no counting."""
    mul2 = add = 0


_real_add, _real_mul2 = p256.add, p256.mul2


def _counting_add(p1, p2):
    GroupCount.add += 1
    return _real_add(p1, p2)


def _counting_mul2(k1, p1, k2, p2):
    GroupCount.mul2 += 1
    return _real_mul2(k1, p1, k2, p2)


def count_group(on):
    p256.add = _counting_add if on else _real_add
    p256.mul2 = _counting_mul2 if on else _real_mul2


def _group_counts():
    return GroupCount.mul2, GroupCount.add


def _locker_attempt(rig, code, rand):
    """HELLO, then PICKUP_START (+ FINISH if the phone's check passes) through
    Locker.handle, with the phone's own work kept out of the locker's figures."""
    sid, form, material = phone.parse(code)
    pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, rand)
    rig.hello()
    gc.collect()
    m0, a0 = _group_counts()
    count_hashes(True)
    HashCount.reset()
    heap0 = gc.mem_alloc()
    t0 = ticks_us()
    answer = rig.locker.handle(rig.session, recipient.start_frame(pake))
    us = ticks_diff(ticks_us(), t0)
    heap = gc.mem_alloc() - heap0
    hashes = HashCount.get()
    count_hashes(False)
    m1, a1 = _group_counts()
    status = answer[2]
    finish_us = 0
    if status == P.OK:
        try:
            confirm = pake.finish(answer[19:84], answer[84:116])
            t0 = ticks_us()
            status = rig.handle(P.request(P.PICKUP_FINISH, confirm))[2]
            finish_us = ticks_diff(ticks_us(), t0)
        except recipient.CodeMismatch:
            status = P.E_CODE
    return {"status": status, "start_us": us, "finish_us": finish_us, "mul2": m1 - m0,
            "adds": a1 - a0, "hashes": hashes, "heap_alloc": heap}


def _phone_attempt(code, rand):
    sid, form, material = phone.parse(code)
    m0, a0 = _group_counts()
    t0 = ticks_us()
    pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, rand)
    w = pickup_code.password_scalar(form, sid, material)
    pb, cb, _, _ = pickup_code.locker_reply(w, 7, sid, form, LOCKER_ID, pake.share)
    t_locker = ticks_us()
    pake.finish(pb, cb)
    t1 = ticks_us()
    m1, a1 = _group_counts()
    return {"us": ticks_diff(t1, t0), "locker_part_us": ticks_diff(t_locker, t0),
            "mul2": m1 - m0, "adds": a1 - a0}


def modmul_rate(n=2000):
    """Microseconds per a * b % p on 256-bit operands (the inner operation of p256.add)."""
    a, b, p = p256.GX, p256.GY, p256.P
    t0 = ticks_us()
    for _ in range(n):
        a = a * b % p
    return ticks_diff(ticks_us(), t0) / n


def main(folder, occupancies, gc_off):
    import os
    rig = Rig(folder, layout="S*%d" % max(occupancies))
    rows = []
    deposited = requests = 0
    code = None
    for occ in sorted(occupancies):
        while deposited < occ:
            deposited += 1
            requests += 1                 # request ids are never reused (E_DONE)
            cred, key = rig.courier(1 + requests % 10)
            sid, code = rig.deposit(cred, key, req_id(requests))
            rig.settle(sid)
        count_group(gc_off)       # the counted run; the timed one runs the plain code
        if gc_off:
            gc.disable()          # heap_alloc then counts every byte allocated
        wrong = _locker_attempt(rig, wrong_code(code), os.urandom)
        gc.enable()
        gc.collect()
        if gc_off:
            gc.disable()
        right = _locker_attempt(rig, code, os.urandom)
        count_group(False)
        gc.enable()
        gc.collect()
        rows.append({"occupied": occ, "wrong": wrong, "right": right})
        # put the parcel back for the next occupancy step
        if right["status"] == P.OK:
            rig.settle(sid)
            deposited -= 1
    phone_side = _phone_attempt(code, os.urandom)          # timed: no counting
    count_group(True)
    counted = _phone_attempt(code, os.urandom)
    count_group(False)
    phone_side["mul2"], phone_side["adds"] = counted["mul2"], counted["adds"]
    emit({"rows": rows, "phone": phone_side, "modmul_us": modmul_rate()})
