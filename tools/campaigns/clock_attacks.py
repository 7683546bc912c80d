"""Clock campaign: rollback via reboot, via unauthenticated time and via an old credential;
forward jumps; phone/locker skew at every edge of the coarse time window.
Each case prints how many checks ran and how many were violated (must be 0).

    .venv/bin/python tools/campaigns/clock_attacks.py
"""
import sys
import tempfile

from core import phone
from lockerctl import operator as op
from lockerctl.client import LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench

DAY = 86400


def fresh():
    return Bench(tempfile.mkdtemp(prefix="clock-"), layout="S*4,M*2")


def refused(fn, *args):
    try:
        fn(*args)
        return None
    except LockerRefused as e:
        return e.name


def rollback_via_reboot():
    checks = violations = 0
    for back_days in (1, 10, 365, 20 * 365):
        b = fresh()
        dep = b.client.deposit(b.courier(), size=1)
        b.time.advance(b.cfg["ttl_s"] + 60)          # the code is now expired
        high = b.clock.now()
        b.locker.tick()
        b.time.rtc -= back_days * DAY                # RTC reset / set back by hand
        b.boot()
        checks += 2
        violations += b.clock.now() < high
        violations += refused(b.client.pickup, dep.code) != "code-expired"
    return checks, violations


def rollback_via_unauthenticated_time():
    b = fresh()
    checks = violations = 0
    start = b.clock.now()
    forged = op.set_time_message(b"\x00" * 32, LOCKER_ID, 1, start + 10 * DAY)
    checks += 2
    violations += refused(b.client.admin, forged) != "bad-mac"
    violations += b.clock.now() > start + 5
    genuine = op.set_time_message(MASTER, LOCKER_ID, 1, start + DAY)
    b.client.admin(genuine)
    checks += 3
    violations += refused(b.client.admin, genuine) != "replayed"
    backwards = op.set_time_message(MASTER, LOCKER_ID, 2, start - 30 * DAY)
    before = b.clock.now()
    b.client.admin(backwards)
    violations += b.clock.now() < before
    tampered = bytearray(op.set_time_message(MASTER, LOCKER_ID, 3, start + 400 * DAY))
    tampered[8] ^= 1                                  # one bit of the time field
    violations += refused(b.client.admin, bytes(tampered)) != "bad-mac"
    return checks, violations


def rollback_via_old_credential():
    b = fresh()
    checks = violations = 0
    old = op.issue(MASTER, LOCKER_ID, 1, "old-courier", 5, 2 * DAY, now=b.clock.now() - 30 * DAY)
    before = b.clock.now()
    checks += 2
    violations += refused(b.client.deposit, old, 1) != "credential-refused"
    violations += b.clock.now() < before
    expiring = b.courier("c2", serial=6, valid_s=DAY)
    b.time.advance(2 * DAY)
    b.locker.tick()
    b.time.rtc -= 3 * DAY                             # try to make it valid again
    b.boot()
    checks += 1
    violations += refused(b.client.deposit, expiring, 1) != "credential-refused"
    return checks, violations


def forward_jumps():
    b = fresh()
    checks = violations = 0
    dep = b.client.deposit(b.courier(), size=1)
    future = op.issue(MASTER, LOCKER_ID, 1, "from-the-future", 7, 30 * DAY,
                      now=b.clock.now() + 100 * DAY)
    b.client.status(future)                           # authenticated time moves the clock
    checks += 2
    violations += b.clock.now() < future.credential.issued_at
    violations += refused(b.client.pickup, dep.code) != "code-expired"
    return checks, violations


def skew_at_window_edges():
    """Codes the phone makes from its OWN clock, offset from the locker's deposit time."""
    checks = violations = 0
    b = fresh()
    bucket_s, skew = b.cfg["bucket_s"], b.cfg["skew_buckets"]
    courier = b.courier(valid_s=60 * DAY)
    key = courier.key
    for phase in (0, 1, bucket_s // 2, bucket_s - 2, bucket_s - 1):
        b.time.advance((bucket_s - b.clock.now() % bucket_s + phase) % bucket_s or bucket_s)
        for offset in range(-(skew + 2) * bucket_s, (skew + 2) * bucket_s + 1, bucket_s // 4):
            for edge in (-1, 0, 1):
                dep = b.client.deposit(courier, size=1)
                phone_ts = dep.deposit_ts + offset + edge
                code = phone.human_code(key, LOCKER_ID, dep.slot, dep.generation, phone_ts,
                                        bucket_s)
                expect_ok = abs(phone_ts // bucket_s - dep.deposit_ts // bucket_s) <= skew
                got = refused(b.client.pickup, code)
                checks += 1
                violations += (got is None) != expect_ok
                if got is not None:              # clean up: the courier takes it back
                    b.client.cancel(courier, dep.request_id)
                b.run_hardware(1.0)
                b.driver.close(dep.slot)
                b.run_hardware(0.2)
                b.time.advance(b.locker.throttle.retry_after(dep.slot, b.clock.now()))
    return checks, violations


CASES = (
    ("rollback via RTC + reboot", rollback_via_reboot),
    ("rollback via unauthenticated / replayed / tampered time", rollback_via_unauthenticated_time),
    ("rollback via an old or expired credential", rollback_via_old_credential),
    ("forward jump by authenticated time", forward_jumps),
    ("phone/locker skew at every window edge", skew_at_window_edges),
)


def main():
    print("| case | checks | violations |")
    print("|---|---|---|")
    total = 0
    for name, fn in CASES:
        checks, violations = fn()
        total += violations
        print("| %s | %d | %d |" % (name, checks, violations))
    print("clock:", "PASS" if total == 0 else "FAIL")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
