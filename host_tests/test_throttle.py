"""The pickup budgets (core/throttle.py): what bounds brute force, and what an attacker with no
code can do to recipients (docs/security.md, "Lockout").

The year bound multiplies max_attempts(one year) by the chance of one guess; if an attacker
could get more human-form attempts answered than max_attempts() says, the bound would be a
lie. Attacker strategies run against the real buckets (hypothesis) and through the real
locker, and are counted. The lockout must never touch machine-form pickups, must stay per
slot until the global budget is spent, and a confirmed pickup gives its unit back."""
import pytest
from core import protocol as P
from core import throttle as th
from core.throttle import GLOBAL, Throttle, max_attempts
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl.client import DirectTransport, LockerClient, LockerRefused

DAY = 86400
YEAR = 365 * DAY


def greedy(bucket, start, horizon, extra_waits=(), limit=10 ** 6):
    """Attempts a bucket admits to an attacker who tries as soon as allowed (plus any extra
    pauses), over horizon seconds from start; returns the attempt times (at most limit)."""
    tat, now, times, waits = 0, start, [], list(extra_waits)
    while len(times) < limit:
        now += bucket.wait(tat, now) + (waits.pop(0) if waits else 0)
        if now - start >= horizon:
            return times
        tat = bucket.charge(tat, now)
        times.append(now)
    return times


def test_bound_formula_for_the_shipped_constants():
    assert max_attempts(YEAR) == th.GLOBAL_BURST + YEAR // th.GLOBAL_PERIOD_S == 8790
    assert max_attempts(0) == th.GLOBAL_BURST


def test_greedy_attacker_meets_the_bound_exactly():
    times = greedy(GLOBAL, 1000, YEAR)
    assert max_attempts(YEAR) - 1 <= len(times) <= max_attempts(YEAR)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3 * th.GLOBAL_PERIOD_S), max_size=60),
       st.integers(1, 30 * DAY), st.integers(0, 10 * DAY))
def test_no_window_of_an_attack_exceeds_the_bound(waits, window, offset):
    """GCRA: in ANY window of t seconds at most burst + t // period attempts, whatever the
    attacker's timing (this is the property the year bound stands on)."""
    times = greedy(GLOBAL, offset, 40 * DAY, waits)
    j = 0
    for i, t0 in enumerate(times):          # two pointers: attempts in [t0, t0 + window)
        j = max(j, i)
        while j < len(times) and times[j] < t0 + window:
            j += 1
        assert j - i <= max_attempts(window)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 50), st.integers(60, 10000), st.integers(1, 5 * DAY))
def test_bound_holds_for_other_settings(burst, period, horizon):
    b = th.Bucket(burst, period)
    assert len(greedy(b, 0, horizon)) <= max_attempts(horizon, burst, period)


def test_simulation_would_catch_a_bucket_that_forgets():
    """Guard: a bucket whose charge forgets the backlog admits more than the bound."""
    class Forgetful(th.Bucket):
        def charge(self, tat, now):
            return now + self.period
    assert len(greedy(Forgetful(30, 3600), 0, 2 * DAY, limit=1000)) > max_attempts(2 * DAY)


def test_refund_and_reset():
    t = Throttle()
    for _ in range(th.SLOT_BURST):
        t.charge(3, 1000)
    assert t.retry_after(3, 1000) > 0 and t.retry_after(4, 1000) == 0
    t.refund(3, 1000)
    assert t.retry_after(3, 1000) == 0
    t.charge(3, 1000)
    t.reset_slot(3)
    assert t.retry_after(3, 1000) == 0
    assert len(t.slot_tat) == 0
    back = Throttle()
    back.load(t.to_list())
    assert back.to_list() == t.to_list()
    old = Throttle()
    old.load([7, 123, 456])                 # a journal from before the PAKE: fresh budgets
    assert old.retry_after(1, 0) == 0


def test_slot_entries_do_not_grow_with_history():
    t = Throttle()
    for i in range(2000):
        t.charge(1 + i % 7, i * 4000)
    assert len(t.slot_tat) <= 7
    assert len(t.to_list()[1]) <= 7


# ---- through the locker ---------------------------------------------------------------------

def wrong_code(code):
    digits = code.replace("-", "").replace(" ", "")
    return "%s-%010d" % (digits[:3], (int(digits[3:]) + 1) % 10 ** 10)


def refused(client, code):
    with pytest.raises(LockerRefused) as e:
        client.pickup(code)
    return e.value


def test_slot_budget_locks_only_that_slot(bench):
    a = bench.client.deposit(bench.courier(), size=1)
    b = bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.SLOT_BURST):
        assert refused(bench.client, wrong_code(a.code)).name == "wrong-code"
    e = refused(bench.client, wrong_code(a.code))
    assert e.name == "locked-out" and 0 < e.retry_after <= th.SLOT_PERIOD_S
    assert refused(bench.client, a.code).name == "locked-out"   # not evaluated while locked
    # the other slot's recipient is not affected, and neither is slot a's machine code
    assert bench.client.pickup(b.code)["slot"] == b.slot
    assert bench.client.pickup(a.machine_code)["slot"] == a.slot


def test_machine_form_is_never_locked_out(bench):
    deps = [bench.client.deposit(bench.courier(), size=1) for _ in range(2)]
    for i in range(th.GLOBAL_BURST + 10):        # drain everything, on every slot
        sid = bench.locker.slots.sids()[i % len(bench.locker.slots)]
        e = refused(LockerClient(DirectTransport(bench.locker)), "%03d-0000000000" % sid)
        assert e.name in ("wrong-code", "locked-out")
    assert bench.locker.throttle.retry_after(deps[0].slot, bench.locker.clock.now()) > 0
    for dep in deps:
        assert bench.client.pickup(dep.machine_code)["slot"] == dep.slot


def test_global_budget_and_recovery(make_bench):
    """Draining the global budget blocks human codes on every slot; one refill later a
    recipient's confirmed pickup goes through and gives its unit back."""
    bench = make_bench(layout="S*8")
    deps = [bench.client.deposit(bench.courier(), size=1) for _ in range(2)]
    n = len(bench.locker.slots)
    answered = 0
    for i in range(th.GLOBAL_BURST + n * th.SLOT_BURST):
        e = refused(LockerClient(DirectTransport(bench.locker)),
                    "%03d-0000000000" % (1 + i % n))
        answered += e.name == "wrong-code"
    assert answered == th.GLOBAL_BURST           # 8 slots x SLOT_BURST > GLOBAL_BURST
    assert refused(bench.client, deps[0].code).name == "locked-out"
    bench.time.advance(th.GLOBAL_PERIOD_S)
    now = bench.locker.clock.now()
    assert bench.locker.throttle.retry_after(deps[0].slot, now) == 0
    assert bench.client.pickup(deps[0].code)["slot"] == deps[0].slot
    # the confirmed pickup was refunded: the next recipient is served too
    assert bench.client.pickup(deps[1].code)["slot"] == deps[1].slot


def test_a_successful_pickup_and_a_new_deposit_reset_the_slot(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.SLOT_BURST - 1):
        refused(bench.client, wrong_code(dep.code))
    assert bench.client.pickup(dep.code)["slot"] == dep.slot        # a typo or four, then ok
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    bench.time.advance(200)
    again = bench.client.deposit(bench.courier(), size=1)
    assert again.slot == dep.slot
    assert bench.locker.throttle.retry_after(dep.slot, bench.locker.clock.now()) == 0
    for _ in range(th.SLOT_BURST):              # a full fresh budget for the new parcel
        assert refused(bench.client, wrong_code(again.code)).name == "wrong-code"


def test_budget_is_global_across_connections(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.SLOT_BURST):
        # every guess on a brand-new connection, as a rotating BLE address would do
        refused(LockerClient(DirectTransport(bench.locker)), wrong_code(dep.code))
    assert refused(LockerClient(DirectTransport(bench.locker)),
                   wrong_code(dep.code)).name == "locked-out"


def test_budget_survives_reboot_and_a_clock_set_back(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.SLOT_BURST):
        refused(bench.client, wrong_code(dep.code))
    state = bench.locker.throttle.to_list()
    bench.boot()
    assert bench.locker.throttle.to_list() == state
    assert refused(bench.client, dep.code).name == "locked-out"
    bench.time.rtc -= 10 * DAY                  # and the RTC does not rewind it either
    bench.boot()
    assert refused(bench.client, dep.code).name == "locked-out"


def test_locker_attacker_stays_under_the_bound_for_two_days(bench):
    """Greedy guessing through the request handler: answered guesses counted."""
    n = len(bench.locker.slots)
    start = bench.locker.clock.now()
    answered = 0
    while True:
        now = bench.locker.clock.now()
        waits = {s: bench.locker.throttle.retry_after(s, now) for s in range(1, n + 1)}
        sid = min(waits, key=waits.get)            # the slot that can be guessed soonest
        bench.time.advance(waits[sid])
        if bench.locker.clock.now() - start >= 2 * DAY:
            break
        e = refused(bench.client, "%03d-0000000000" % sid)
        assert e.name == "wrong-code"
        answered += 1
    assert max_attempts(2 * DAY) - 3 <= answered <= max_attempts(2 * DAY)


def test_pacing_caps_the_pake_duty_cycle(bench):
    """A computation of d ms blocks the next one for d ms (any connection) and 2d (same)."""
    dep = bench.client.deposit(bench.courier(), size=1)
    lk = bench.locker
    s1, s2 = lk.new_session(), lk.new_session()
    lk.pacer.done(s1, bench.time.ticks_ms() - 300)      # as if a PAKE had just taken 300 ms
    assert lk.pacer.wait_ms(s2) == 300 and lk.pacer.wait_ms(s1) == 600
    with pytest.raises(LockerRefused) as e:
        LockerClient(DirectTransport(lk, s2)).pickup(dep.machine_code, busy_retries=0)
    assert e.value.name == "busy"
    bench.time.advance(0.3)
    assert lk.pacer.wait_ms(s2) == 0 and lk.pacer.wait_ms(s1) == 300
    assert LockerClient(DirectTransport(lk, s2)).pickup(dep.machine_code)["slot"] == dep.slot


def test_a_clock_skip_at_boot_refills_no_budget():
    """core/recovery.apply of a "boot" record with "resumed": the skipped seconds were not
    waited by anyone, so what the budgets owe moves with the clock (review finding: the
    recovery still used the pre-PAKE strike fields and crashed every boot after a cut)."""
    from core import recovery
    from core.throttle import SLOT_BURST

    class Lk:
        throttle = Throttle()

    lk = Lk()
    now = 1_000_000
    for _ in range(SLOT_BURST):
        lk.throttle.charge(4, now)
    assert lk.throttle.retry_after(4, now) > 0
    owed = lk.throttle.retry_after(4, now)
    recovery.apply(lk, {"e": "boot", "resumed": 7200})
    # 2 h later by the clock, but those 2 h were skipped: still exactly as much to wait
    assert lk.throttle.retry_after(4, now + 7200) == owed
    assert lk.throttle.retry_after(5, now + 7200) == 0      # an untouched slot stays full
    fresh = Throttle()
    fresh.shift(7200)
    assert fresh.tat == 0 and fresh.slot_tat == {}


def test_a_forged_busy_answer_cannot_park_the_phone(bench, monkeypatch):
    """E_BUSY is unauthenticated: a relay or a fake locker can answer PICKUP_START with any
    retry_after. The real locker's is at most a few seconds (2 x a PAKE run); one that asks
    for longer ends the pickup at once with the refusal (its retry_after shown), rather than
    a recipient's phone waiting 11 days (review finding: the client slept retry_after)."""
    from lockerctl import client as C
    dep = bench.client.deposit(bench.courier(), size=1)
    waits = []
    monkeypatch.setattr(C.time, "sleep", waits.append)

    class ForgedBusy:
        def __init__(self, inner):
            self.inner = inner

        def exchange(self, frame):
            answer = self.inner.exchange(frame)
            if frame[1] != P.PICKUP_START:
                return answer
            return P.response(P.PICKUP_START, P.E_BUSY, answer[3:3 + P.CHALLENGE_LEN],
                              P.error_body("busy", 10 ** 6))

    with pytest.raises(LockerRefused) as e:
        LockerClient(ForgedBusy(DirectTransport(bench.locker))).pickup(dep.machine_code)
    assert e.value.name == "busy" and e.value.retry_after == 10 ** 6
    assert sum(waits) <= C.BUSY_RETRIES * 10, waits
