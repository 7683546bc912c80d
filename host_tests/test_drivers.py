"""Real-board drivers (lock_gpio, lock_mcp23017, rtc_ds3231, board_esp32) against the fake
machine module (host_tests/fakes/fake_machine.py): outputs off from the first instant, polarity,
debounce, pulse cap through LockBank, I2C faults, DS3231 dates checked against CPython's
datetime, and every real-board module importing on the MicroPython unix port."""
import datetime
import json
import os
import shutil
import subprocess
import sys

import pytest
from drivers import gpio_lock
from fakes import fake_machine as fm
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = os.path.join(ROOT, "boards")


@pytest.fixture
def machine():
    bench = fm.install()
    yield bench
    fm.uninstall()


def gpio_driver(bench, **kw):
    from drivers import lock_gpio
    args = dict(outputs=[25, 26, 27, 14], ticks_ms=bench.ticks_ms, ticks_diff=bench.ticks_diff)
    args.update(kw)
    return lock_gpio.GpioLockDriver(**args)


# ---- direct GPIO ----------------------------------------------------------------------------

@pytest.mark.parametrize("active_low", [False, True])
def test_gpio_outputs_never_show_on_before_a_command(machine, active_low):
    drv = gpio_driver(machine, active_low=active_low)
    off = 1 if active_low else 0
    for pin in (25, 26, 27, 14):
        assert {lvl for _, lvl in fm.BENCH.pins[pin].history} == {off}
    drv.set_output(2, True)
    assert fm.BENCH.pins[26].level == off ^ 1
    assert fm.BENCH.pins[25].level == off
    drv.all_off()
    assert fm.BENCH.pins[26].level == off


def test_gpio_pulse_is_capped_by_lockbank(machine):
    drv = gpio_driver(machine)
    bank = gpio_lock.LockBank(drv, 300, 1000, 1, machine.ticks_ms, machine.ticks_diff)
    bank.request_open(1)
    bank.request_open(3)
    for _ in range(100):
        bank.service()
        machine.advance(20)
    hist = fm.BENCH.pins[25].history
    on_at = [t for t, lvl in hist if lvl == 1]
    off_at = [t for t, lvl in hist if lvl == 0 and on_at and t > on_at[0]]
    assert on_at and off_at[0] - on_at[0] <= 300 + 20
    # power budget 1: door 3 only after door 1 is off
    assert [t for t, lvl in fm.BENCH.pins[27].history if lvl == 1][0] >= off_at[0]


def test_input_only_pin_cannot_be_an_output(machine):
    with pytest.raises(ValueError, match="input"):
        gpio_driver(machine, outputs=[25, 34, 27, 14])


def test_door_sensor_debounce(machine):
    drv = gpio_driver(machine, sensors=[32, 33, 34, 35], sensor_pull="none", debounce_ms=50)
    for pin in (32, 33, 34, 35):
        fm.drive(pin, 0)                          # reed closed: door shut
    assert drv.door_open(1) is False
    for level in (1, 0, 1, 0, 1):                 # the door swings: contact chatter
        fm.drive(32, level)
        machine.advance(5)
        assert drv.door_open(1) is False
    machine.advance(30)
    assert drv.door_open(1) is False              # stable for 30 ms only
    machine.advance(25)
    assert drv.door_open(1) is True
    assert drv.door_open(2) is False


def test_gpio_without_sensors_reports_none(machine):
    assert gpio_driver(machine).door_open(1) is None


# ---- MCP23017 -------------------------------------------------------------------------------

def cabinet(machine, sensors=False, active_low=False):
    from drivers import lock_mcp23017
    a = fm.add_device(0, 0x20, fm.FakeMcp23017())
    b = fm.add_device(0, 0x21, fm.FakeMcp23017())
    s = fm.add_device(0, 0x22, fm.FakeMcp23017()) if sensors else None
    i2c = fm.I2C(0)
    drv = lock_mcp23017.Mcp23017LockDriver(i2c, [(0x20, 16), (0x21, 8)], machine.ticks_ms,
                                           machine.ticks_diff, active_low=active_low,
                                           sensor_chips=[0x22, 0x23] if sensors else None)
    return drv, a, b, s


def test_mcp_maps_24_doors_over_two_chips_and_starts_off(machine):
    drv, a, b, _ = cabinet(machine)
    assert drv.slot_count() == 24
    assert a.on_events == [] and b.on_events == []
    drv.set_output(1, True)
    drv.set_output(16, True)
    drv.set_output(17, True)
    assert a.outputs() == 0x8001
    assert b.outputs() == 0x0001
    drv.set_output(16, False)
    assert a.outputs() == 0x0001
    drv.all_off()
    assert a.outputs() == 0 and b.outputs() == 0


def test_mcp_active_low_latches_off_before_pins_become_outputs(machine):
    drv, a, b, _ = cabinet(machine, active_low=True)
    assert a.outputs() == 0xFFFF                  # off = high
    assert b.regs[0x14] == 0xFF
    drv.set_output(18, True)
    assert b.outputs() == 0xFFFD


def test_mcp_missing_chip_is_named(machine):
    from drivers import lock_mcp23017
    fm.add_device(0, 0x20, fm.FakeMcp23017())
    with pytest.raises(lock_mcp23017.ExpanderError, match="0x21"):
        lock_mcp23017.Mcp23017LockDriver(fm.I2C(0), [(0x20, 16), (0x21, 8)],
                                         machine.ticks_ms, machine.ticks_diff)


def test_mcp_retries_a_glitch_but_reports_a_dead_bus(machine):
    from drivers import lock_mcp23017
    drv, a, _, _ = cabinet(machine)
    bus = fm.BENCH.buses[0]
    bus.fail = 2
    drv.set_output(3, True)
    assert a.outputs() == 0x0004
    bus.fail = 10
    with pytest.raises(lock_mcp23017.ExpanderError, match="0x20"):
        drv.set_output(3, False)


def test_mcp_sensor_chip_needs_a_second_chip_for_24_doors(machine):
    from drivers import lock_mcp23017
    fm.add_device(0, 0x20, fm.FakeMcp23017())
    fm.add_device(0, 0x21, fm.FakeMcp23017())
    fm.add_device(0, 0x22, fm.FakeMcp23017())
    with pytest.raises(ValueError, match="sensor chips"):
        lock_mcp23017.Mcp23017LockDriver(fm.I2C(0), [(0x20, 16), (0x21, 8)],
                                         machine.ticks_ms, machine.ticks_diff,
                                         sensor_chips=[0x22])


def test_mcp_sensors_read_once_per_sweep_and_debounce(machine):
    s2 = fm.add_device(0, 0x23, fm.FakeMcp23017())
    drv, _, _, s = cabinet(machine, sensors=True)
    s.inputs = 0x0000                             # every reed closed (pulled to GND)
    s2.inputs = 0x0000
    bus = fm.BENCH.buses[0]
    before = bus.transactions
    assert [drv.door_open(sid) for sid in range(1, 25)] == [False] * 24
    assert bus.transactions - before == 2         # one read per sensor chip, not 24
    s2.inputs = 1 << 4                            # door 21 opens
    machine.advance(10)
    assert drv.door_open(21) is False             # first sighting: not yet stable
    machine.advance(60)
    assert drv.door_open(21) is True


# ---- DS3231 --------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=946684800, max_value=4102444799))   # 2000-01-01 .. 2099-12-31
def test_ds3231_round_trip_matches_cpython_datetime(t):
    from drivers import rtc_ds3231
    dev = fm.FakeDS3231()
    bus = fm.FakeBus()
    bus.devices[0x68] = dev

    class I2C:
        def readfrom_mem(self, a, r, n):
            return bytes(bus.devices[a].read(r, n))

        def writeto_mem(self, a, r, d):
            bus.devices[a].write(r, bytes(d))
    rtc = rtc_ds3231.DS3231(I2C())
    rtc.write_unix(t)
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    regs = dev.regs
    assert int("%x" % regs[4]) == d.day and int("%x" % regs[5]) == d.month
    assert int("%x" % regs[6]) == d.year - 2000
    assert regs[3] == d.isoweekday()
    assert int("%x" % regs[2]) == d.hour and int("%x" % regs[0]) == d.second
    assert rtc.read_unix() == t


def test_ds3231_that_lost_its_time_is_not_trusted(machine):
    from drivers import rtc_ds3231
    fm.add_device(0, 0x68, fm.FakeDS3231())
    assert rtc_ds3231.DS3231(fm.I2C(0)).read_unix() is None


# ---- board_esp32 ---------------------------------------------------------------------------

def provision(tmp_path, profile_name, layout, **cfg):
    data = tmp_path / "locker"
    data.mkdir()
    (data / "locker.json").write_text(json.dumps(dict(
        {"locker_id": "4c4b520000000001", "layout": layout}, **cfg)))
    (data / "secret.bin").write_bytes(bytes(range(32)))
    profile = tmp_path / "board.json"
    shutil.copy(os.path.join(BOARDS, profile_name + ".json"), profile)
    return str(profile), str(data)


def esp32_board(machine, profile, data):
    from targets import board_esp32
    return board_esp32.Esp32Board(profile, data, ticks=(machine.ticks_ms, machine.ticks_diff))


def test_devkit_board_builds_its_driver_and_checks_the_config(machine, tmp_path):
    profile, data = provision(tmp_path, "esp32-devkitc-4door", "S*2,M*2")
    board = esp32_board(machine, profile, data)
    drv = board.lock_driver()
    assert drv.slot_count() == 4
    assert all(fm.BENCH.pins[p].level == 1 for p in (25, 26, 27, 14))   # active-low relays
    assert board.read_secret() == bytes(range(32))
    assert board.rtc_unix() > 1700000000                 # no DS3231: the system clock


def test_board_refuses_a_layout_that_does_not_match_its_doors(machine, tmp_path):
    from targets import board_profile
    profile, data = provision(tmp_path, "esp32-devkitc-4door", "S*4,M*4")
    board = esp32_board(machine, profile, data)
    with pytest.raises(board_profile.ProfileError, match="8 slots but the board has 4"):
        board.lock_driver()
    assert all(fm.BENCH.pins[p].level == 1 for p in (25, 26, 27, 14))   # still all off


def test_board_refuses_a_pulse_above_the_boards_rating(machine, tmp_path):
    from targets import board_profile
    profile, data = provision(tmp_path, "cabinet-24-mcp23017", "S*24", pulse_ms=900,
                              rated_pulse_ms=1000)
    for a in (0x20, 0x21):
        fm.add_device(0, a, fm.FakeMcp23017())
    fm.add_device(0, 0x68, fm.FakeDS3231())
    with pytest.raises(board_profile.ProfileError, match="rated 800"):
        esp32_board(machine, profile, data).lock_driver()


def test_cabinet_board_takes_time_from_its_ds3231(machine, tmp_path):
    from drivers import rtc_ds3231
    profile, data = provision(tmp_path, "cabinet-24-mcp23017", "S*12,M*8,L*4", pulse_ms=400,
                              rated_pulse_ms=800)
    for a in (0x20, 0x21):
        fm.add_device(0, a, fm.FakeMcp23017())
    fm.add_device(0, 0x68, fm.FakeDS3231())
    rtc_ds3231.DS3231(fm.I2C(0)).write_unix(1767225600)
    board = esp32_board(machine, profile, data)
    assert board.lock_driver().slot_count() == 24
    assert board.rtc_unix() == 1767225600
    machine.advance(5000)
    assert board.rtc_unix() == 1767225605


def test_uptime_survives_the_ticks_wraparound():
    from targets import board_esp32
    period = 1 << 30
    now = [period - 1000]
    up = board_esp32.Uptime(lambda: now[0],
                            lambda a, b: ((a - b + period // 2) % period) - period // 2)
    for _ in range(10):
        now[0] = (now[0] + 600) % period
        up.seconds()
    assert up.seconds() == 6


def test_simulator_profile_is_refused_on_a_real_board(machine, tmp_path):
    from targets import board_profile
    profile, data = provision(tmp_path, "sim", "S*4,M*4,L*2")
    with pytest.raises(board_profile.ProfileError, match="simulator"):
        esp32_board(machine, profile, data).lock_driver()


# ---- MicroPython unix port ---------------------------------------------------------------

REAL_BOARD_MODULES = ["radio.ble_service", "targets.board_esp32", "targets.board_profile",
                      "drivers.lock_gpio", "drivers.lock_mcp23017", "drivers.rtc_ds3231"]


def test_real_board_modules_import_on_the_unix_port(tmp_path):
    import mp_runner
    mp = mp_runner.micropython()
    fw = mp_runner.firmware_mpy()
    script = tmp_path / "imp.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\n" % fw
        + "".join("import %s\n" % m for m in REAL_BOARD_MODULES)
        + "from drivers import lock_gpio\n"
        "try:\n    lock_gpio.GpioLockDriver([25], None, None)\n"
        "except ImportError as e:\n    print('gpio:', e)\n"
        "from radio import ble_service\n"
        "try:\n    ble_service.BleService(None, '00', (None, None))\n"
        "except ImportError as e:\n    print('ble:', e)\n"
        "print(ble_service.advertised_name('4c4b520000000001'))\n")
    out = subprocess.run([mp, "-X", "heapsize=100k", str(script)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "gpio: this lock driver needs machine.Pin" in out.stdout
    assert "ble: BLE needs the bluetooth module and aioble" in out.stdout
    assert "LKR-4C4B520000000001" in out.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
