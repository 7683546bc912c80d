# The ESP32 heap budget (docs/performance.md), measured on the 32-bit WebAssembly port: the
# heap the modules a real board imports take as .mpy files (core, drivers, the ESP32 board,
# the BLE service, main.py compiled at boot), then aioble's when the bench was given its
# source (AIOBLE_SRC), and the asyncio package the board has frozen. A board imports one
# lock driver (its profile's): the larger, the MCP23017 expander, is counted, with the
# DS3231 RTC driver. A generator of steps like bench_memory (the port collects only between
# them). The `bluetooth` module in the tree is a measurement stand-in (the VM has no radio):
# just enough for `import aioble` to run its module-level code.
#
# Boot: the modules only boot uses (main.BOOT_ONLY and the board's) are imported as boot
# imports them, then dropped with the firmware's own call (core.unload.drop, the names
# main.Runtime.boot passes): "dropped" is what the collector really got back, "firmware
# after boot" what stays for the board's life.
import gc

DEVICE = ("core", "core.hmac_sha256", "core.kdf", "core.credentials", "core.protocol",
          "core.p256", "core.spake2", "core.pickup_code", "core.slot_manager",
          "core.code_verifier", "core.fragment", "core.throttle", "core.clock", "core.store",
          "core.door_monitor", "core.unload", "drivers", "drivers.flash_fs", "drivers.gpio_lock",
          "drivers.lock_mcp23017", "core.locker", "core.anchored", "drivers.nvs_anchor",
          "targets", "targets.board_esp32", "core.link", "radio", "radio.ble_service", "main")

R = {}


def _import(names, into):
    for name in names:
        a = gc.mem_alloc()
        __import__(name)
        yield
        into.append([name, gc.mem_alloc() - a])


def boot_only():
    """The modules main.Runtime.boot drops on the ESP32 board: main.BOOT_ONLY and the
    board's Esp32Board.BOOT_ONLY (the firmware's own lists), and the anchor check that
    AnchoredLocker.boot loads and drops (core.recovery, core/anchored.drop_recovery)."""
    import sys
    return (sys.modules["main"].BOOT_ONLY
            + sys.modules["targets.board_esp32"].Esp32Board.BOOT_ONLY + ("core.recovery",))


def steps(with_aioble):
    yield
    a = gc.mem_alloc()
    import asyncio  # noqa: F401  (frozen on the ESP32: measured apart)
    yield
    R["asyncio"] = gc.mem_alloc() - a
    R["firmware"] = []
    yield from _import(DEVICE, R["firmware"])
    R["boot_only"] = []
    yield from _import(boot_only(), R["boot_only"])
    import sys
    a = gc.mem_alloc()
    sys.modules["core.unload"].drop(*boot_only())
    yield
    R["dropped"] = a - gc.mem_alloc()
    R["boot_only_left"] = [n for n in boot_only() if n in sys.modules]
    # the phone's side: never in the board's heap (core/phone.py, core/recipient.py)
    R["phone_side_loaded"] = [n for n in ("core.phone", "core.recipient") if n in sys.modules]
    if with_aioble:
        import bluetooth  # noqa: F401  (the stand-in: not part of any figure)
        yield
        R["aioble"] = []
        yield from _import(("aioble",), R["aioble"])
