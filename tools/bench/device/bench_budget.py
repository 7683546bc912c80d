# The ESP32 heap budget (docs/performance.md), measured on the 32-bit WebAssembly port: the
# heap the modules a real board imports take as .mpy files (core, drivers, the ESP32 board,
# the BLE service, main.py compiled at boot), then aioble's when the bench was given its
# source (AIOBLE_SRC), and the asyncio package the board has frozen. A board imports one
# lock driver (its profile's): the larger, the MCP23017 expander, is counted, with the
# DS3231 RTC driver. A generator of steps like bench_memory (the port collects only between
# them). The `bluetooth` module in the tree is a measurement stand-in (the VM has no radio):
# just enough for `import aioble` to run its module-level code.
import gc

DEVICE = ("core", "core.hmac_sha256", "core.kdf", "core.credentials", "core.protocol",
          "core.pickup_code", "core.slot_manager", "core.code_verifier", "core.fragment",
          "core.throttle", "core.clock", "core.store", "core.door_monitor", "core.config",
          "drivers", "drivers.flash_fs", "drivers.gpio_lock",
          "drivers.lock_mcp23017", "drivers.rtc_ds3231", "core.locker", "targets",
          "targets.board_profile", "targets.board_esp32", "core.link", "radio",
          "radio.ble_service",
          "main")

R = {}


def _import(names, into):
    for name in names:
        a = gc.mem_alloc()
        __import__(name)
        yield
        into.append([name, gc.mem_alloc() - a])


def steps(with_aioble):
    yield
    a = gc.mem_alloc()
    import asyncio  # noqa: F401  (frozen on the ESP32: measured apart)
    yield
    R["asyncio"] = gc.mem_alloc() - a
    R["firmware"] = []
    yield from _import(DEVICE, R["firmware"])
    if with_aioble:
        import bluetooth  # noqa: F401  (the stand-in: not part of any figure)
        yield
        R["aioble"] = []
        yield from _import(("aioble",), R["aioble"])
