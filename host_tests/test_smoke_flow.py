"""The patent's two flows end to end through the request handler."""
import pytest

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


def test_code_is_single_use(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.client.pickup(dep.code)
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(dep.code)
    assert e.value.name == "wrong-code"


def test_state_survives_reboot(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.boot()
    assert bench.client.pickup(dep.machine_code)["slot"] == dep.slot
