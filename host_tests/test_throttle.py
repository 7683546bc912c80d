"""The brute-force throttle: global, persisted, escalating, and bounded by max_failures().

The security bound in docs/security.md multiplies max_failures(one year) by the chance of
one guess; if an attacker could squeeze in more failures than max_failures() says, the
bound would be a lie. Here attacker strategies run against the real Throttle (and a short
run against the real locker) and are counted."""
import functools
import itertools
from unittest import mock

import pytest
from core import throttle as th
from core.throttle import DECAY_S, Throttle, delay_after, max_failures
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl.client import DirectTransport, LockerClient, LockerRefused

DAY = 86400
YEAR = 365 * DAY


# ---- the escalation as documented ------------------------------------------------

def test_escalation_sequence_is_the_documented_one():
    # free failures, then 60 s doubling per failure, capped at 4 h (worked out by hand)
    expected = [0, 0, 0, 0, 0, 0, 60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400,
                14400]
    assert [delay_after(s) for s in range(len(expected))] == expected
    assert delay_after(10 ** 6) == th.MAX_DELAY_S


def test_bound_formula_for_the_shipped_constants():
    # first strike count whose delay reaches the decay period is 14 (see above)
    assert max_failures(0) == 15
    assert max_failures(YEAR) == 15 + YEAR // DECAY_S == 2205


def test_bound_needs_a_cap_at_least_the_decay_period():
    with pytest.raises(ValueError):
        max_failures(YEAR, cap=60, decay=3600)


def fail(t, thr):
    """One failure exactly as the locker records it (failure_fields -> apply_failure)."""
    strikes, until = thr.failure_fields(t)
    thr.apply_failure(t, strikes, until)


def test_decay_gives_back_one_strike_per_decay_period():
    thr = Throttle()
    t = 1000
    for _ in range(8):
        t += thr.retry_after(t)
        fail(t, thr)
    assert thr.strikes == 8 and thr.retry_after(t) == 240
    assert thr.effective_strikes(t + DECAY_S - 1) == 8
    assert thr.effective_strikes(t + DECAY_S) == 7
    assert thr.effective_strikes(t + 3 * DECAY_S) == 5
    assert thr.effective_strikes(t + 100 * DECAY_S) == 0
    # after a long quiet spell the free failures are back
    t += 8 * DECAY_S
    fail(t, thr)
    assert thr.strikes == 1 and thr.retry_after(t) == 0


# ---- attackers against the real Throttle ------------------------------------------

def simulate(extras, period, start_strikes=0):
    """Fail as soon as allowed plus extras[i] seconds (cycled); return the failure times."""
    thr = Throttle()
    t = 10 ** 6
    thr.apply_failure(t, start_strikes, t + delay_after(start_strikes))
    end = t + period
    times = []
    for extra in itertools.cycle(extras):
        t += thr.retry_after(t) + extra
        if t > end:
            return times
        fail(t, thr)
        times.append(t)


def most_in_any_window(times, window):
    """Most failures whose times lie in one closed window of the given length."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_greedy_attacker_meets_the_bound_almost_exactly():
    """As-soon-as-allowed for a year: under the bound, and not far under (the bound is not
    an inflated number that would hide a weak throttle)."""
    times = simulate([0], YEAR)
    assert len(times) <= max_failures(YEAR)
    assert len(times) >= max_failures(YEAR) - 3


waits = st.one_of(
    st.integers(0, 3 * DECAY_S),
    st.sampled_from([0, 1, DECAY_S - 1, DECAY_S, DECAY_S + 1, 2 * DECAY_S - 1, 2 * DECAY_S]),
)


@settings(max_examples=150, deadline=None)
@given(extras=st.lists(waits, min_size=1, max_size=40),
       period=st.sampled_from([DAY, 7 * DAY, 30 * DAY]),
       start_strikes=st.integers(0, 20))
def test_no_attacker_strategy_exceeds_max_failures(extras, period, start_strikes):
    times = simulate(extras, period, start_strikes)
    assert len(times) <= max_failures(period)


@settings(max_examples=60, deadline=None)
@given(extras=st.lists(waits, min_size=1, max_size=40),
       window=st.sampled_from([3600, DAY, 3 * DAY, 10 * DAY]))
def test_no_window_of_a_long_attack_exceeds_max_failures(extras, window):
    """The bound holds for every window, not only one that starts with a fresh throttle."""
    times = simulate(extras, 60 * DAY)
    assert most_in_any_window(times, window) <= max_failures(window)


@settings(max_examples=60, deadline=None)
@given(free=st.integers(0, 8), base=st.sampled_from([1, 30, 60, 300]),
       cap_shift=st.integers(0, 3), decay=st.sampled_from([600, 3600, 14400]),
       extras=st.lists(waits, min_size=1, max_size=20))
def test_bound_holds_for_other_throttle_settings(free, base, cap_shift, decay, extras):
    """max_failures() is a formula over the constants, so it must hold whatever they are:
    the real Throttle runs with its module constants swapped."""
    cap = decay << cap_shift
    tuned = functools.partial(delay_after, free=free, base=base, cap=cap)
    with mock.patch.multiple(th, DECAY_S=decay, delay_after=tuned):
        times = simulate([e % (3 * decay) for e in extras], 10 * DAY)
    assert len(times) <= max_failures(10 * DAY, free, base, cap, decay)


def test_simulation_would_catch_a_throttle_that_forgets():
    """The checker is not blind: without decay bookkeeping (strikes reset by waiting one
    period) the greedy-with-pauses attacker exceeds the bound."""
    class Forgetful(Throttle):
        def effective_strikes(self, now):
            return 0 if now - self.last_fail >= DECAY_S else self.strikes

    thr = Forgetful()
    t, count = 0, 0
    while t < 30 * DAY:
        for _ in range(th.FREE_FAILURES + 1):
            fail(t, thr)
            count += 1
        t += DECAY_S
    assert count > max_failures(30 * DAY)


# ---- through the locker: global, persisted, the code is not evaluated while locked ------

def wrong(client, slot=1):
    with pytest.raises(LockerRefused) as e:
        client.pickup("%03d-00000-00000" % slot)
    return e.value


def test_escalation_through_the_locker(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.FREE_FAILURES):
        e = wrong(bench.client, dep.slot)
        assert e.name == "wrong-code" and e.retry_after == 0
    e = wrong(bench.client, dep.slot)
    assert e.name == "wrong-code" and e.retry_after == 60
    e = wrong(bench.client, dep.slot)
    assert e.name == "locked-out" and e.retry_after == 60
    assert bench.locker.throttle.strikes == th.FREE_FAILURES + 1   # a refused try is free
    # even the right code waits: the code is not evaluated while locked out
    e = refused_pickup(bench.client, dep.code)
    assert e.name == "locked-out"
    bench.time.advance(60)
    e = wrong(bench.client, dep.slot)
    assert e.name == "wrong-code" and e.retry_after == 120
    bench.time.advance(120)
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def refused_pickup(client, code):
    with pytest.raises(LockerRefused) as e:
        client.pickup(code)
    return e.value


def test_throttle_is_global_across_connections(bench):
    bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.FREE_FAILURES + 1):
        # every guess on a brand-new connection, as a rotating BLE address would do
        wrong(LockerClient(DirectTransport(bench.locker)))
    assert wrong(LockerClient(DirectTransport(bench.locker))).name == "locked-out"


def test_throttle_survives_reboot_and_a_clock_set_back(bench):
    bench.client.deposit(bench.courier(), size=1)
    for _ in range(th.FREE_FAILURES + 4):
        bench.time.advance(bench.locker.throttle.retry_after(bench.locker.clock.now()))
        last = wrong(bench.client)
    assert last.name == "wrong-code" and last.retry_after == 480
    strikes = bench.locker.throttle.strikes
    bench.boot()
    e = wrong(bench.client)
    assert e.name == "locked-out" and e.retry_after == 480
    bench.time.rtc -= 10 * DAY                  # and the RTC does not rewind it either
    bench.boot()
    assert wrong(bench.client).name == "locked-out"
    assert bench.locker.throttle.strikes == strikes


def test_locker_attacker_stays_under_the_bound_for_two_days(bench):
    """Greedy guessing through the request handler: failures counted from the answers."""
    bench.client.deposit(bench.courier(), size=1)
    start = bench.locker.clock.now()
    failures = 0
    while True:
        now = bench.locker.clock.now()
        bench.time.advance(bench.locker.throttle.retry_after(now))
        if bench.locker.clock.now() - start > 2 * DAY:
            break
        e = wrong(bench.client)
        assert e.name == "wrong-code"
        failures += 1
    assert max_failures(2 * DAY) - 3 <= failures <= max_failures(2 * DAY)
