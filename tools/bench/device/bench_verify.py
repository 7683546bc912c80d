# Section 1: what one pickup attempt costs, shipped verifier (slot from the code) against
# the naive scan (every occupied slot x every window bucket), as occupancy and window grow.
from bench_naive_verifier import NaiveVerifier
from bench_util import (
    LOCKER_ID,
    MASTER,
    HashCount,
    Rig,
    count_hashes,
    emit,
    req_id,
    ticks_diff,
    ticks_us,
    wrong_code,
)
from core import code_verifier, pickup_code
from core import protocol as P


def _timed(fn, budget_us):
    """Mean microseconds per call: one call, then as many more as fit the budget."""
    t0 = ticks_us()
    fn()
    one = max(1, ticks_diff(ticks_us(), t0))
    reps = max(1, min(200, budget_us // one))
    t0 = ticks_us()
    for _ in range(reps):
        fn()
    return ticks_diff(ticks_us(), t0) // reps, reps


def _counted(fn):
    count_hashes(True)
    HashCount.reset()
    out = fn()
    got = HashCount.get()
    count_hashes(False)
    return out, got


def main(folder, occupancies, skews, budget_us):
    rig = Rig(folder, layout="S*%d" % max(occupancies))
    lk = rig.locker
    challenge = bytes(range(16))
    rows = []
    requests = []
    deposited = 0
    last_code = None
    for occ in sorted(occupancies):
        while deposited < occ:
            deposited += 1
            cred, key = rig.courier(1 + deposited % 10)
            sid, last_code = rig.deposit(cred, key, req_id(deposited))
            rig.settle(sid)
        sid, form, material = pickup_code.parse(last_code)
        good = pickup_code.proof(form, material, challenge, sid)
        _, _, bad_material = pickup_code.parse(wrong_code(last_code))
        bad = pickup_code.proof(form, bad_material, challenge, sid)
        now = lk.clock.now()
        for k in skews:
            lk.verifier.skew_buckets = k
            naive = NaiveVerifier(MASTER, LOCKER_ID, rig.cfg["bucket_s"], k)

            def shipped_wrong():
                return lk.verifier.verify(lk.slots.get(sid), form, bad, challenge, now)

            def shipped_valid():
                return lk.verifier.verify(lk.slots.get(sid), form, good, challenge, now)

            def naive_wrong():
                return naive.verify(lk.slots, form, bad, challenge)

            def naive_valid():
                return naive.verify(lk.slots, form, good, challenge)

            verdict_w, sw = _counted(shipped_wrong)
            verdict_v, sv = _counted(shipped_valid)
            found_w, nw = _counted(naive_wrong)
            found_v, nv = _counted(naive_valid)
            assert verdict_w == code_verifier.WRONG and verdict_v == code_verifier.VALID
            assert found_w is None and found_v == sid
            us_s, reps_s = _timed(shipped_wrong, budget_us)
            us_n, reps_n = _timed(naive_wrong, budget_us)
            rows.append({"occupied": occ, "skew_buckets": k, "window_buckets": 2 * k + 1,
                         "shipped_wrong": sw, "shipped_valid": sv, "naive_wrong": nw,
                         "naive_valid": nv, "shipped_us": us_s, "naive_us": us_n,
                         "reps": [reps_s, reps_n]})
        # One whole wrong-code request through the handler, at the configured window.
        lk.verifier.skew_buckets = rig.cfg["skew_buckets"]
        _, ch = rig.hello()
        frame = rig.pickup_frame(wrong_code(last_code), ch)
        resp, whole = _counted(lambda: lk.handle(rig.session, frame))
        requests.append({"occupied": occ, "status": resp[2], "hashes": whole,
                         "ok": resp[2] == P.E_CODE})
    emit({"rows": rows, "requests": requests, "default_skew": rig.cfg["skew_buckets"]})
