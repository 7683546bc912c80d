"""The locker's clock: never backwards (a persisted floor), forward only on authenticated time.

Why it matters: a clock set back makes expired codes valid again and hands a brute-forcer
fresh throttle decay; an unauthenticated set-time command is how a real ESP32 TOTP lock
was rolled back."""
import calendar
import struct

import pytest
from core import credentials
from core import protocol as P
from core.clock import EPOCH_2000, LockerClock, unix_from_epoch2000
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from lockerctl import operator as op
from lockerctl.client import LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER
from core.kdf import admin_key

ADMIN_KEY = admin_key(MASTER, LOCKER_ID)


def refused(call, name):
    with pytest.raises(LockerRefused) as e:
        call()
    assert e.value.name == name, e.value
    return e.value


# ---- LockerClock on its own ------------------------------------------------------

class FakeBoard:
    def __init__(self, rtc=1767225600):
        self.rtc = rtc
        self.up = 0

    def clock(self, floor=0):
        return LockerClock(lambda: self.rtc, lambda: self.up, floor)


class ClockMachine(RuleBasedStateMachine):
    """Random RTC jumps (either way), uptime, persisted records, authenticated time and
    reboots: now() never decreases, and after a reboot never drops below the floor."""

    def __init__(self):
        super().__init__()
        self.board = FakeBoard()
        self.persisted = 0           # what the journal holds as the latest record time
        self.clock = self.board.clock()
        self.last = self.clock.now()

    @rule(dt=st.integers(0, 10 ** 6))
    def uptime_passes(self, dt):
        self.board.up += dt

    @rule(jump=st.integers(-10 ** 9, 10 ** 7))
    def rtc_jumps(self, jump):
        self.board.rtc = max(0, self.board.rtc + jump)

    @rule()
    def persist_a_record(self):
        t = self.clock.now()
        self.clock.raise_floor(t)
        self.persisted = max(self.persisted, t)

    @rule(ahead=st.integers(-10 ** 6, 10 ** 6))
    def authenticated_time(self, ahead):
        before = self.clock.now()
        moved = self.clock.advance_to(before + ahead)
        assert moved == max(0, ahead)
        assert self.clock.now() >= before + max(0, ahead)

    @rule(rtc_reset=st.booleans())
    def reboot(self, rtc_reset):
        if rtc_reset:
            self.board.rtc = 0        # ESP32 RTC restarts at power-on
        self.clock = self.board.clock(floor=self.persisted)
        self.last = self.persisted

    @invariant()
    def never_backwards(self):
        t = self.clock.now()
        assert t >= self.last
        assert t >= self.persisted
        self.last = t


TestClockMachine = ClockMachine.TestCase
TestClockMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_floor_plus_uptime_carries_the_clock_when_the_rtc_restarts():
    board = FakeBoard(rtc=0)
    clock = board.clock(floor=1767225600)
    assert clock.now() == 1767225600
    board.up += 90
    assert clock.now() == 1767225690
    board.rtc = 1767300000                      # RTC set (forward) by the board
    assert clock.now() == 1767300000


def test_advance_to_never_moves_backwards():
    board = FakeBoard()
    clock = board.clock()
    assert clock.advance_to(board.rtc - 3600) == 0
    assert clock.now() == board.rtc
    assert clock.advance_to(board.rtc + 3600) == 3600
    assert clock.now() == board.rtc + 3600


@given(st.integers(0, 2 ** 32 - 1 - EPOCH_2000))
def test_unix_from_epoch2000(t):
    assert EPOCH_2000 == calendar.timegm((2000, 1, 1, 0, 0, 0, 0, 0, 0))
    assert unix_from_epoch2000(t) == calendar.timegm((2000, 1, 1, 0, 0, t, 0, 0, 0))
    assert unix_from_epoch2000(0) == 946684800


# ---- the locker's clock through the request handler ---------------------------------

def test_clock_never_goes_backwards_across_reboot(bench):
    bench.time.advance(5 * 86400)
    dep = bench.client.deposit(bench.courier(), size=1)
    floor = dep.deposit_ts
    bench.time.rtc -= 30 * 86400                # RTC set back by hand
    bench.boot()
    assert bench.locker.clock.now() >= floor
    bench.time.rtc = 0                          # RTC lost at power-on
    bench.boot()
    assert bench.locker.clock.now() >= floor
    assert bench.client.hello().time >= floor   # and it says so over the air


def test_credential_issued_ahead_moves_the_clock_forward_and_it_stays(bench):
    ahead = bench.time.rtc + 2 * 86400
    cred = op.issue(MASTER, LOCKER_ID, credentials.COURIER, "c", 1, 86400, now=ahead)
    assert bench.locker.clock.now() < ahead
    dep = bench.client.deposit(cred, size=1)
    assert dep.deposit_ts >= ahead
    assert bench.locker.clock.now() >= ahead
    bench.boot()                                # RTC still two days behind
    assert bench.locker.clock.now() >= ahead


def test_unauthenticated_requests_cannot_move_the_clock(bench):
    t0 = bench.locker.clock.now()
    future = bench.time.rtc + 10 ** 6
    good = op.issue(MASTER, LOCKER_ID, credentials.COURIER, "c", 1, 86400, now=future)
    forged = op.issue(bytes(32), LOCKER_ID, credentials.COURIER, "c", 1, 86400, now=future)
    refused(lambda: bench.client.deposit(forged, size=1), "bad-mac")
    # the genuine block with a guessed key: same block, wrong MAC
    good.key = bytes(32)
    refused(lambda: bench.client.status(good), "bad-mac")
    refused(lambda: bench.client.pickup("001-00000-00000"), "wrong-code")
    unsigned = P.request(P.ADMIN, struct.pack(">BIB", P.ADMIN_SET_TIME, 1, 4)
                         + struct.pack(">I", future)) + bytes(P.TAG_LEN)
    refused(lambda: bench.client.admin(unsigned), "bad-mac")
    other = op.set_time_message(MASTER, b"\x00" * 8, 1, future)   # signed for another locker
    refused(lambda: bench.client.admin(other), "bad-mac")
    bench.client.hello()
    assert bench.locker.clock.now() == t0
    bench.boot()
    assert bench.locker.clock.now() == t0


def test_signed_set_time_moves_forward_once_and_never_back(bench):
    t0 = bench.locker.clock.now()
    forward = op.set_time_message(MASTER, LOCKER_ID, 1, t0 + 7200)
    assert bench.client.admin(forward, ADMIN_KEY) == (P.ADMIN_SET_TIME, 1, t0 + 7200)
    assert bench.locker.clock.now() == t0 + 7200
    # replayed later, when it would move the clock again: refused as a replay
    bench.time.rtc -= 3600
    e = refused(lambda: bench.client.admin(forward), "replayed")
    assert e.status == P.E_REPLAY
    # a newer message with an older time is delivered (its counter is used up) but moves
    # nothing, and the answer says so: the locker's time, not the message's
    now = bench.locker.clock.now()
    assert bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 2, t0), ADMIN_KEY) == (
        P.ADMIN_SET_TIME, 2, now)
    assert now >= t0 + 7200
    assert bench.locker.clock.now() == t0 + 7200
    # the counter and the time survive a reboot
    bench.boot()
    assert bench.locker.clock.now() >= t0 + 7200
    refused(lambda: bench.client.admin(forward), "replayed")
    refused(lambda: bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 2, t0 + 9000)),
            "replayed")


def test_set_time_forward_expires_codes_and_setting_it_back_does_not_revive_them(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    t0 = bench.locker.clock.now()
    bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 1, dep.expires_at + 1))
    refused(lambda: bench.client.pickup(dep.code), "code-expired")
    bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 2, t0))
    bench.boot()
    refused(lambda: bench.client.pickup(dep.code), "code-expired")


# ---- time is never lost at a power cut (issue 12.2) ---------------------------------------
# A board without a battery-backed RTC (boards/esp32-devkitc-4door.json) restarts its RTC at
# 2000-01-01 at power-on. What the locker had reached before the cut must stay reached.

ESP32_RTC_AT_POWER_ON = EPOCH_2000


def run_for(bench, seconds, step=10):
    """The main loop: tick() every 10 s (main.TICK_PERIOD_MS) while time passes."""
    for _ in range(int(seconds // step)):
        bench.time.advance(step)
        bench.locker.tick()


def cut_power_rtc_lost(bench):
    bench.time.rtc = ESP32_RTC_AT_POWER_ON
    bench.boot()


@pytest.mark.parametrize("anchored", [False, True])
def test_code_expired_before_the_cut_stays_expired_without_battery_rtc(tmp_path, anchored):
    from lockerctl.rig import Bench
    if anchored:
        from drivers.nvs_anchor import NvsAnchor
        from targets.sim_nvs import SimNvs
    b = Bench(str(tmp_path / "s"), **({"anchor": NvsAnchor(SimNvs())} if anchored else {}))
    dep = b.client.deposit(b.courier(valid_s=30 * 86400), size=1)
    b.run_hardware()
    b.driver.close(dep.slot)
    b.run_hardware()
    run_for(b, dep.expires_at - b.locker.clock.now() + 15 * 60, step=30)
    assert b.locker.clock.now() > dep.expires_at + 14 * 60
    cut_power_rtc_lost(b)
    refused(lambda: b.client.pickup(dep.code), "code-expired")
    assert b.locker.clock.now() > dep.expires_at


@pytest.mark.parametrize("anchored", [False, True])
def test_expired_courier_credential_stays_expired_without_battery_rtc(tmp_path, anchored):
    from lockerctl.rig import Bench
    if anchored:
        from drivers.nvs_anchor import NvsAnchor
        from targets.sim_nvs import SimNvs
    b = Bench(str(tmp_path / "s"), **({"anchor": NvsAnchor(SimNvs())} if anchored else {}))
    cred = b.courier(valid_s=2 * 3600)
    run_for(b, 2 * 3600 + 15 * 60)
    cut_power_rtc_lost(b)
    with pytest.raises(LockerRefused) as e:
        b.client.deposit(cred, size=1)
    assert "expired" in e.value.message


def test_anchor_bounds_the_time_added_at_a_cut_to_about_two_minutes(tmp_path):
    """With the anchor (time written once a minute) the locker resumes at most ~2 min ahead
    of where it was, not an hour (docs/reliability.md "Time")."""
    from drivers.nvs_anchor import NvsAnchor
    from lockerctl.rig import Bench
    from targets.sim_nvs import SimNvs
    b = Bench(str(tmp_path / "s"), anchor=NvsAnchor(SimNvs()))
    run_for(b, 5000)
    before = b.locker.clock.now()
    cut_power_rtc_lost(b)
    assert before <= b.locker.clock.now() <= before + 130


def test_battery_rtc_resumes_exactly(bench):
    """A board whose RTC kept its time gets no extra time at boot."""
    run_for(bench, 3000)
    before = bench.locker.clock.now()
    bench.boot()
    assert bench.locker.clock.now() == before


# ---- time never runs away (issue 12.2) ------------------------------------------------------

def test_rtc_jump_of_100000_days_is_refused_and_codes_stay_valid(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    t0 = bench.locker.clock.now()
    bench.time.rtc += 100000 * 86400            # `sim clock +100000d`, or a glitching RTC
    assert bench.locker.clock.now() < t0 + 10
    assert bench.locker.clock.rtc_refused == bench.time.rtc
    bench.boot()                                # nor does a reboot take it
    assert bench.locker.clock.now() < t0 + 10 + 3660
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def test_rtc_step_up_to_the_bound_is_taken(bench):
    t0 = bench.locker.clock.now()
    bench.time.rtc += 73 * 3600                 # the e2e test's `sim clock +73h`
    assert bench.locker.clock.now() == t0 + 73 * 3600


def test_authenticated_time_beyond_u32_range_moves_nothing(bench):
    from core.clock import _MAX_TIME as MAX_TIME
    t0 = bench.locker.clock.now()
    bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 1, 2 ** 32 - 1))
    assert bench.locker.clock.now() < t0 + 10
    bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 2, MAX_TIME))
    assert bench.locker.clock.now() == MAX_TIME
    bench.time.advance(10 ** 6)
    assert bench.locker.clock.now() == MAX_TIME   # never past what u32 expiries can carry


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 40, 2 ** 40), st.integers(0, 10 ** 5)),
                min_size=1, max_size=30))
def test_garbage_rtc_never_moves_the_clock_beyond_bounded_steps(readings):
    """An RTC returning anything (a DS3231 with flipped bits, an unset ESP32 RTC):
    now() never goes back, never exceeds MAX_TIME, and moves at most MAX_RTC_STEP_S past
    the elapsed uptime per reading."""
    from core.clock import _MAX_RTC_STEP_S as MAX_RTC_STEP_S
    from core.clock import _MAX_TIME as MAX_TIME
    board = FakeBoard(rtc=1767225600)
    clock = board.clock(floor=1767225600)
    last = clock.now()
    for rtc, dt in readings:
        board.rtc = rtc
        board.up += dt
        t = clock.now()
        assert last <= t <= MAX_TIME
        assert t - last <= dt + MAX_RTC_STEP_S
        last = t
