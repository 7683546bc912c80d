# Board layer of a real ESP32 locker: littlefs folder, RTC (optionally a DS3231), hardware
# RNG, the lock driver the board profile describes, and the BLE service. Implements the same
# interface as sim_board.SimBoard, so main.Runtime does not know which one it runs on.
#
# Files on the board's flash: /board.json (profile, written by `make deploy`),
# /locker/locker.json and /locker/secret.bin (written by provisioning), /locker/store/.
# Hardware modules (machine, aioble) are imported when first used, so this module imports
# on the unix port too.
import os
import time

from micropython import const

from core.clock import EPOCH_2000
from drivers.flash_fs import FolderFs

PROFILE_PATH = "/board.json"
DATA_DIR = "/locker"


_WATCHDOG_MS = const(8000)
FAULT_TAG = b"LKR-FAULT:"       # RTC memory record of why the previous boot gave up
_FAULT_MAX = const(200)


def _epoch_offset():
    """Seconds to add to time.time() for Unix time: the ESP32 port counts from 2000."""
    return EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0


class Uptime:
    """Seconds since boot that never wrap (ticks_ms wraps after ~12 days on the ESP32).

    Needs a call at least every few days; the main loop's clock upkeep does that."""

    def __init__(self, ticks_ms, ticks_diff):
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._last = ticks_ms()
        self._ms = 0

    def seconds(self):
        now = self._ticks()
        self._ms += self._diff(now, self._last)
        self._last = now
        return self._ms // 1000


class Esp32Board:
    # Modules only boot uses, imported inside the methods that need them: main.Runtime
    # drops them after boot (core.unload), so their code leaves the heap.
    BOOT_ONLY = ("targets.board_profile", "drivers.rtc_ds3231")

    def __init__(self, profile_path=PROFILE_PATH, data_dir=DATA_DIR, ticks=None):
        """ticks: (ticks_ms, ticks_diff) stand-ins for host tests; the board's own otherwise.

        ticks_ms, ticks_diff and random_bytes are the port's own functions (time, os:
        os.urandom is the ESP32's hardware RNG, true random while the radio is on), held as
        attributes: no method of ours around them (docs/performance.md)."""
        self.ticks_ms, self.ticks_diff = ticks or (time.ticks_ms, time.ticks_diff)
        self.random_bytes = os.urandom
        from targets import board_profile
        self.profile, self.warnings = board_profile.load(profile_path)
        self.data_dir = data_dir
        self._driver = None
        self._i2c_buses = {}
        self._uptime = Uptime(self.ticks_ms, self.ticks_diff)
        self._rtc_base = None           # DS3231 time at boot minus uptime, when fitted
        self._epoch = _epoch_offset()
        self.ble = None
        for w in self.warnings:
            print("[board] warning:", w)
        self.last_fault = self._previous_fault()
        if self.last_fault:
            print("[board] previous boot gave up:", self.last_fault)

    def path(self, name):
        return self.data_dir + "/" + name

    # ---- hardware construction --------------------------------------------------------
    def _i2c(self, spec):
        bus = spec.get("id", 0)
        if bus not in self._i2c_buses:
            from machine import I2C, Pin
            self._i2c_buses[bus] = I2C(bus, scl=Pin(spec["scl"]), sda=Pin(spec["sda"]),
                                       freq=spec.get("freq", 400000))
        return self._i2c_buses[bus]

    def lock_driver(self):
        if self._driver is None:
            # boot only: board_profile builds the driver and checks the config against the
            # profile, then main.Runtime drops it with BOOT_ONLY
            from targets import board_profile
            self._driver = board_profile.make_driver(self.profile, self._i2c, self.ticks_ms,
                                                     self.ticks_diff)
            self._driver.all_off()
            board_profile.check_locker_json(self.profile, self.path("locker.json"))
        return self._driver

    # ---- board interface ----------------------------------------------------------------
    def read_secret(self):
        with open(self.path("secret.bin"), "rb") as f:
            secret = f.read()
        if len(secret) != 32:
            raise ValueError("secret.bin must hold 32 bytes: provision the locker")
        return secret

    def store_fs(self):
        try:
            os.mkdir(self.data_dir)
        except OSError:
            pass
        return FolderFs(self.path("store"))

    def anchor(self):
        """The journal's anchor in the NVS partition (namespace "locker"), which neither a
        deleted /locker/store nor a reformatted littlefs partition takes along."""
        import esp32
        from drivers.nvs_anchor import NvsAnchor
        return NvsAnchor(esp32.NVS("locker"))

    def rtc_unix(self):
        """Unix seconds from the DS3231 when fitted and trusted, else the ESP32's own RTC
        (2000-01-01 after a power-on). Any value is tolerated: core/clock.py never goes
        behind its persisted floor and refuses unauthenticated jumps beyond MAX_RTC_STEP_S
        or past MAX_TIME (docs/reliability.md "Time")."""
        if self._rtc_base is None:
            self._rtc_base = self._read_ds3231()
        if self._rtc_base:
            return self._rtc_base + self.uptime_s()
        return int(time.time()) + self._epoch

    def _read_ds3231(self):
        """DS3231 time at boot (minus uptime), or 0 to use the ESP32's own RTC."""
        rtc = self.profile.get("rtc")
        if not rtc:
            return 0
        from drivers.rtc_ds3231 import DS3231
        try:
            t = DS3231(self._i2c(rtc["i2c"])).read_unix()
        except OSError as e:
            print("[board] DS3231 not answering (%s): using the internal RTC" % e)
            return 0
        if t is None:           # stopped oscillator or registers holding no valid date
            print("[board] DS3231 time not trusted (battery? never set?): using the "
                  "internal RTC; the locker carries on from its persisted floor")
            return 0
        return t - self.uptime_s()

    def uptime_s(self):
        return self._uptime.seconds()

    def watchdog(self):
        """The ESP32's hardware watchdog: a main loop stalled for _WATCHDOG_MS resets the chip,
        and every lock output is off again at boot (a stuck loop cannot hold a solenoid)."""
        from machine import WDT
        return WDT(timeout=_WATCHDOG_MS)

    def record_fault(self, why):
        """Keep why this boot gave up across the watchdog reset: RTC memory survives resets
        (not power loss) and costs no flash wear. The next boot prints it (serial console)."""
        from machine import RTC
        RTC().memory(FAULT_TAG + why.encode()[:_FAULT_MAX])

    def _previous_fault(self):
        try:
            from machine import RTC
            mem = RTC().memory()
        except (ImportError, AttributeError, OSError):
            return None
        if not mem.startswith(FAULT_TAG):
            return None
        RTC().memory(b"")                # reported once
        return bytes(mem[len(FAULT_TAG):]).decode()

    async def serve(self, runtime):
        from radio import ble_service
        self.ble = ble_service.BleService(runtime, runtime.cfg["locker_id"],
                                          (self.ticks_ms, self.ticks_diff))
        print("[board] advertising as", self.ble.name)
        await self.ble.serve()
