"""The firmware's layout rule (docs/architecture.md), read from the imports themselves:

  core/     imports nothing from drivers/, targets/, radio/, nor any hardware module
            (machine, bluetooth, aioble, esp32, network): it runs unchanged on CPython,
            the unix port and the ESP32;
  drivers/  imports nothing from targets/ or radio/;
  radio/    imports nothing from targets/;
  targets/  may import everything (a board wires the parts together).

Every import statement is read with `ast`, including the ones inside functions and `try`
blocks: a lazy import is still a dependency."""
import ast

import pytest

from lockerctl import firmware

HARDWARE = {"machine", "bluetooth", "aioble", "esp32", "network", "esp", "neopixel"}
FORBIDDEN = {
    "core": {"drivers", "targets", "radio"} | HARDWARE,
    "drivers": {"targets", "radio", "bluetooth", "aioble", "network"},
    "radio": {"targets", "drivers", "machine"},
}


def imported_roots(source):
    """Top-level names of every module an import statement in `source` names."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level:
            roots.add("." * node.level + (node.module or ""))
    return roots


def violations(package, source):
    bad = imported_roots(source) & FORBIDDEN.get(package, set())
    relative = {r for r in imported_roots(source) if r.startswith(".")}
    return sorted(bad | relative)


def firmware_modules():
    for path, rel in firmware.sources("sim"):
        if "/" in rel:
            yield rel.split("/")[0], rel, path


@pytest.mark.parametrize("package,rel,path", list(firmware_modules()),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".py") else "")
def test_module_respects_the_layout_rule(package, rel, path):
    with open(path) as f:
        assert violations(package, f.read()) == [], rel


def test_every_firmware_module_is_in_a_package():
    loose = [rel for _, rel in firmware.sources("sim") if "/" not in rel]
    assert loose == ["main.py"]


@pytest.mark.parametrize("package,source,expected", [
    ("core", "import machine\n", ["machine"]),
    ("core", "def f():\n    from targets import sim_board\n", ["targets"]),
    ("core", "try:\n    import aioble\nexcept ImportError:\n    pass\n", ["aioble"]),
    ("core", "from drivers.gpio_lock import LockBank\n", ["drivers"]),
    ("core", "import bluetooth as bt\n", ["bluetooth"]),
    ("core", "from . import store\n", ["."]),
    ("drivers", "from targets import board_esp32\n", ["targets"]),
    ("drivers", "import machine\nfrom core import clock\n", []),
    ("radio", "import aioble\nfrom core import protocol\n", []),
    ("targets", "import machine\nfrom radio import ble_service\n", []),
])
def test_the_rule_catches_what_it_must(package, source, expected):
    assert violations(package, source) == expected
