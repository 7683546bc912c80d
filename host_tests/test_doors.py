"""Lock outputs and door sensors: the solenoid safety rules (ADR 0003) and what the locker
does when a door does not do what it was told."""
import pytest
from core import protocol as P
from core import store as S
from core.slot_manager import FREE, OCCUPIED
from drivers import gpio_lock
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl.client import LockerRefused
from targets import sim_hw

# ---- LockBank: outputs off at boot, pulse cap, power budget -----------------------------

class Ticks:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


def diff(a, b):
    return a - b


def test_outputs_are_off_at_construction():
    drv = sim_hw.SimLockDriver(6)
    for sid in range(1, 7):
        drv.set_output(sid, True)            # e.g. pins floating high after a reset
    assert sum(drv.outputs) == 6
    gpio_lock.LockBank(drv, 500, 1000, 2, Ticks(), diff)
    assert sum(drv.outputs) == 0


@pytest.mark.parametrize("pulse, rated", [(1001, 1000), (5000, 4999)])
def test_pulse_longer_than_the_rating_is_refused(pulse, rated):
    with pytest.raises(ValueError):
        gpio_lock.LockBank(sim_hw.SimLockDriver(2), pulse, rated, 1, Ticks(), diff)


def test_zero_power_budget_is_refused():
    with pytest.raises(ValueError):
        gpio_lock.LockBank(sim_hw.SimLockDriver(2), 500, 1000, 0, Ticks(), diff)


@settings(max_examples=60, deadline=None)
@given(pulse=st.integers(20, 1000), extra=st.integers(0, 500), budget=st.integers(1, 4),
       period=st.sampled_from([1, 5, 10, 20]),
       requests=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 8)), max_size=25))
def test_pulses_are_capped_budgeted_and_none_is_lost(pulse, extra, budget, period, requests):
    ticks = Ticks()
    drv = sim_hw.SimLockDriver(8, ticks_ms=ticks)
    bank = gpio_lock.LockBank(drv, pulse, pulse + extra, budget, ticks, diff)
    due = sorted(requests)
    asked = []
    while due or bank.busy():
        while due and due[0][0] <= ticks.ms:
            sid = due.pop(0)[1]
            bank.request_open(sid)
            asked.append(sid)
        bank.service()
        assert sum(drv.outputs) <= budget                     # power budget, at every step
        ticks.ms += period
    assert drv.max_on_ms <= pulse + period - 1                # the loop's granularity only
    assert drv.max_on_ms <= pulse + extra or period > 1       # never past the rating
    if pulse % period == 0:
        assert drv.max_on_ms <= pulse
    assert drv.peak_on <= budget
    assert set(drv.pulses) == set(asked)                      # every open really happened
    assert sum(drv.outputs) == 0                              # and every output is off again


def test_queued_opens_run_in_request_order_within_the_budget():
    ticks = Ticks()
    drv = sim_hw.SimLockDriver(5, ticks_ms=ticks)
    bank = gpio_lock.LockBank(drv, 100, 200, 2, ticks, diff)
    for sid in (4, 1, 5, 2):
        bank.request_open(sid)
    bank.service()
    assert sorted(bank.energised()) == [1, 4]
    ticks.ms = 100
    bank.service()
    assert sorted(bank.energised()) == [2, 5]
    assert drv.pulses == [4, 1, 5, 2]


# ---- the locker and its door sensors ------------------------------------------------------

def audit(b):
    return list(S.read_audit(b.fs, b.locker.store.key))


def door_events(b):
    return [(r["e"], r["s"], r.get("k"), r.get("undo")) for r in audit(b)
            if r["e"] in ("door", "jam")]


def deposit_and_close(b, size=1, cred=None):
    d = b.client.deposit(cred or b.courier(), size=size)
    b.run_hardware()
    assert b.driver.door_open(d.slot)
    b.driver.close(d.slot)
    b.run_hardware()
    return d


def test_jam_on_pickup_keeps_the_parcel_until_a_technician_clears_the_slot(bench):
    b = bench
    d = deposit_and_close(b)
    b.driver.jam(d.slot)
    assert b.client.pickup(d.code)["slot"] == d.slot        # answered: the door was asked
    b.run_hardware(12)                                       # > jam_ms, door never opened
    assert ("jam", d.slot, None, "pick") in door_events(b)
    s = b.locker.slots.get(d.slot)
    assert s.state == OCCUPIED and s.out_of_service
    with pytest.raises(LockerRefused):                       # out of service: refused
        b.client.pickup(d.code)
    b.driver.jam(d.slot, False)                              # the technician frees the door
    b.client.tech_open(b.technician(), d.slot, P.TECH_IN_SERVICE)
    assert b.client.pickup(d.code)["slot"] == d.slot
    b.run_hardware()
    assert b.driver.door_open(d.slot)
    assert b.locker.slots.get(d.slot).state == FREE
    b.boot()                                                 # and the records agree
    assert b.locker.slots.get(d.slot).state == FREE


def test_jam_on_deposit_voids_the_deposit(bench):
    b = bench
    b.driver.jam(1)                                          # slot 1 is the first S
    cred = b.courier()
    d = b.client.deposit(cred, size=1)
    assert d.slot == 1
    b.run_hardware(12)
    assert ("jam", 1, None, "dep") in door_events(b)
    s = b.locker.slots.get(1)
    assert s.state == FREE and s.out_of_service
    with pytest.raises(LockerRefused):
        b.client.pickup(d.code)
    again = b.client.deposit(cred, size=1)                   # never the jammed slot
    assert again.slot == 2
    b.boot()
    assert b.locker.slots.get(1).state == FREE and b.locker.slots.get(1).out_of_service


def test_left_open_and_uncommanded_open_are_logged_distinctly(bench):
    b = bench
    d = b.client.deposit(b.courier(), size=1)
    b.run_hardware()                                         # opened on command
    b.time.advance(b.cfg["left_open_ms"] // 1000 + 1)
    b.run_hardware()
    b.driver.force_open(3)                                   # nobody asked for door 3
    b.run_hardware()
    ev = door_events(b)
    assert ("door", d.slot, "left_open", None) in ev
    assert ("door", 3, "uncommanded", None) in ev
    assert ("door", d.slot, "uncommanded", None) not in ev
    assert [e for e in ev if e[0] == "jam"] == []
    assert len([e for e in ev if e[2] == "left_open"]) == 1   # reported once, not per poll


def test_found_open_at_boot(bench):
    b = bench
    b.boot()
    b.driver.force_open(2)                                   # open while the power was off
    b.run_hardware()
    ev = door_events(b)
    assert ("door", 2, "found_open", None) in ev
    assert ("door", 2, "uncommanded", None) not in ev
    assert b.client.deposit(b.courier(), size=1).slot == 1   # an open door is not handed out
    assert b.client.deposit(b.courier(), size=1).slot == 3


def test_no_sensor_board_logs_no_door_events(make_bench):
    b = make_bench(sensors=False)
    d = b.client.deposit(b.courier(), size=1)
    b.run_hardware(15)
    assert door_events(b) == []
    assert b.locker.slots.get(d.slot).state == OCCUPIED


def test_deposit_retry_while_the_door_is_still_open_is_not_a_jam(bench):
    """A dropped link right after the door opened: the retry commands an open door."""
    b = bench
    cred = b.courier()
    d = b.client.deposit(cred, size=1)
    b.run_hardware()
    assert b.driver.door_open(d.slot)
    again = b.client.deposit(cred, size=1, request_id=d.request_id)
    assert again.slot == d.slot
    b.run_hardware(15)
    assert [e for e in door_events(b) if e[0] == "jam"] == []
    s = b.locker.slots.get(d.slot)
    assert s.state == OCCUPIED and not s.out_of_service
    b.driver.close(d.slot)
    b.run_hardware()
    assert b.client.pickup(d.code)["slot"] == d.slot


def test_pickup_of_a_door_left_open_is_not_undone(bench):
    """The courier never closed the door; the recipient takes the parcel anyway."""
    b = bench
    d = b.client.deposit(b.courier(), size=1)
    b.run_hardware()
    assert b.client.pickup(d.code)["slot"] == d.slot
    b.run_hardware(15)
    assert [e for e in door_events(b) if e[0] == "jam"] == []
    assert b.locker.slots.get(d.slot).state == FREE


def test_doors_queued_behind_the_power_budget_are_not_jams(make_bench):
    """The jam timer runs from the pulse, not from the request that queued it."""
    b = make_bench(layout="S*6", max_concurrent=1, pulse_ms=500, jam_ms=1000)
    tech = b.technician()
    for sid in range(1, 7):                     # six opens at once: 3 s of pulses queued
        b.client.tech_open(tech, sid, P.TECH_OPEN_ONLY)
    b.run_hardware(5)
    assert [e for e in door_events(b) if e[0] == "jam"] == []
    assert all(b.driver.door_open(sid) for sid in range(1, 7))
    assert b.driver.peak_on == 1
    b.driver.jam(1)                              # and a real jam is still seen
    b.driver.close(1)
    b.run_hardware()
    b.client.tech_open(tech, 1, P.TECH_OPEN_ONLY)
    b.run_hardware(3)
    assert ("jam", 1, None, "tech") in door_events(b)
