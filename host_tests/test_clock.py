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
