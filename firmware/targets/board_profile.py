# Board profiles: which pins drive which door on a given board (boards/*.json, copied to the
# board as /board.json by `make deploy`). Validated before anything is wired, with errors
# that name the pin and the rule, because a wrong pin on an ESP32 does real damage: GPIO 6-11
# are the SPI flash (touching them crashes the chip), GPIO 34-39 are inputs only and have no
# pull resistors, and a solenoid pulsed past its rating burns out.
import json

DRIVERS = ("gpio", "mcp23017", "sim")
VALID_PINS = tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))
FLASH_PINS = (6, 7, 8, 9, 10, 11)
INPUT_ONLY = (34, 35, 36, 37, 38, 39)
STRAPPING = (0, 2, 5, 12, 15)     # sampled at reset: an output here may glitch or block boot
MAX_RATED_PULSE_MS = 10000

TOP_KEYS = ("name", "description", "driver", "doors", "lock", "gpio", "mcp23017", "rtc")
LOCK_KEYS = ("rated_pulse_ms", "pulse_ms", "max_concurrent")
GPIO_KEYS = ("outputs", "active_low", "sensors", "sensor_open_level", "sensor_pull",
             "debounce_ms")
MCP_KEYS = ("i2c", "chips", "active_low", "sensor_chips", "sensor_open_level", "debounce_ms")
I2C_KEYS = ("id", "scl", "sda", "freq")
CHIP_KEYS = ("address", "doors")
RTC_KEYS = ("type", "i2c")


class ProfileError(ValueError):
    pass


def _keys(d, allowed, where):
    if not isinstance(d, dict):
        raise ProfileError("%s must be an object" % where)
    unknown = sorted(k for k in d if k not in allowed)
    if unknown:
        raise ProfileError("unknown key%s in %s: %s (allowed: %s)"
                           % ("s" if len(unknown) > 1 else "", where, ", ".join(unknown),
                              ", ".join(allowed)))


def _int(d, key, where, lo, hi, default=None):
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ProfileError("%s.%s must be an integer %d..%d, got %r" % (where, key, lo, hi, v))
    return v


def _bool(d, key, where):
    v = d.get(key, False)
    if not isinstance(v, bool):
        raise ProfileError("%s.%s must be true or false" % (where, key))
    return v


class _Pins:
    """Collects every pin the profile uses; a pin used twice is an error naming both uses."""

    def __init__(self):
        self.used = {}
        self.warnings = []

    def take(self, pin, use, output):
        if pin is None:
            raise ProfileError("%s: pin missing" % use)
        if not isinstance(pin, int) or isinstance(pin, bool) or pin not in VALID_PINS:
            raise ProfileError("%s: GPIO%s does not exist on the ESP32" % (use, pin))
        if pin in FLASH_PINS:
            raise ProfileError("%s: GPIO%d is wired to the SPI flash (GPIO 6-11 are off "
                               "limits)" % (use, pin))
        if output and pin in INPUT_ONLY:
            raise ProfileError("%s: GPIO%d is input-only (GPIO 34-39 cannot drive a lock)"
                               % (use, pin))
        if pin in self.used:
            raise ProfileError("GPIO%d used twice: %s and %s" % (pin, self.used[pin], use))
        if output and pin in STRAPPING:
            self.warnings.append("%s: GPIO%d is a strapping pin; the lock may twitch at reset"
                                 % (use, pin))
        self.used[pin] = use


def _i2c(d, where, pins, buses):
    _keys(d, I2C_KEYS, where)
    bus = (_int(d, "id", where, 0, 1, 0), d.get("scl"), d.get("sda"),
           _int(d, "freq", where, 10000, 1000000, 400000))
    if bus[0] in buses:                      # the same bus shared by two devices: fine
        if buses[bus[0]] != bus:
            raise ProfileError("%s: I2C bus %d is configured twice with different pins"
                               % (where, bus[0]))
        return bus
    pins.take(d.get("scl"), where + ".scl", True)
    pins.take(d.get("sda"), where + ".sda", True)
    buses[bus[0]] = bus
    return bus


def validate(p):
    """Return (profile with defaults filled in, [warnings]); ProfileError on any problem."""
    _keys(p, TOP_KEYS, "profile")
    driver = p.get("driver")
    if driver not in DRIVERS:
        raise ProfileError("driver must be one of %s, got %r" % (", ".join(DRIVERS), driver))
    doors = _int(p, "doors", "profile", 1, 999)
    lock = dict(p.get("lock", {}))
    _keys(lock, LOCK_KEYS, "lock")
    rated = _int(lock, "rated_pulse_ms", "lock", 1, MAX_RATED_PULSE_MS, 1000)
    pulse = _int(lock, "pulse_ms", "lock", 1, MAX_RATED_PULSE_MS, min(500, rated))
    if pulse > rated:
        raise ProfileError("lock.pulse_ms %d exceeds the lock's rating of %d ms"
                           % (pulse, rated))
    lock.update(rated_pulse_ms=rated, pulse_ms=pulse,
                max_concurrent=_int(lock, "max_concurrent", "lock", 1, doors, 1))
    out = dict(p)
    out["lock"] = lock
    pins, buses = _Pins(), {}
    for key in ("gpio", "mcp23017"):
        if key in p and key != driver:
            raise ProfileError("profile has a %r section but driver is %r" % (key, driver))
    if driver == "gpio":
        out["gpio"] = _gpio(p.get("gpio"), doors, pins)
    elif driver == "mcp23017":
        out["mcp23017"] = _mcp(p.get("mcp23017"), doors, pins, buses)
    if p.get("rtc") is not None:
        rtc = p["rtc"]
        _keys(rtc, RTC_KEYS, "rtc")
        if rtc.get("type") != "ds3231":
            raise ProfileError("rtc.type must be \"ds3231\"")
        _i2c(rtc.get("i2c", {}), "rtc.i2c", pins, buses)
    return out, pins.warnings


def _gpio(g, doors, pins):
    if g is None:
        raise ProfileError("driver gpio needs a \"gpio\" section")
    _keys(g, GPIO_KEYS, "gpio")
    outputs = g.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != doors:
        raise ProfileError("gpio.outputs must list one pin per door (%d)" % doors)
    for i, pin in enumerate(outputs):
        pins.take(pin, "door %d output" % (i + 1), True)
    g = dict(g)
    g["active_low"] = _bool(g, "active_low", "gpio")
    sensors = g.get("sensors")
    pull = g.setdefault("sensor_pull", "up")
    if pull not in ("up", "down", "none"):
        raise ProfileError("gpio.sensor_pull must be up, down or none")
    if sensors is not None:
        if not isinstance(sensors, list) or len(sensors) != doors:
            raise ProfileError("gpio.sensors must list one pin per door (%d) or be null"
                               % doors)
        for i, pin in enumerate(sensors):
            pins.take(pin, "door %d sensor" % (i + 1), False)
            if pull != "none" and pin in INPUT_ONLY:
                raise ProfileError("door %d sensor: GPIO%d has no internal pull resistor; "
                                   "fit an external one and set gpio.sensor_pull to none"
                                   % (i + 1, pin))
    g["sensor_open_level"] = _int(g, "sensor_open_level", "gpio", 0, 1, 1)
    g["debounce_ms"] = _int(g, "debounce_ms", "gpio", 0, 1000, 50)
    return g


def _mcp(m, doors, pins, buses):
    if m is None:
        raise ProfileError("driver mcp23017 needs a \"mcp23017\" section")
    _keys(m, MCP_KEYS, "mcp23017")
    m = dict(m)
    _i2c(m.get("i2c", {}), "mcp23017.i2c", pins, buses)
    chips = m.get("chips")
    if not isinstance(chips, list) or not chips:
        raise ProfileError("mcp23017.chips must list the output chips")
    seen, total = set(), 0
    for i, c in enumerate(chips):
        where = "mcp23017.chips[%d]" % i
        _keys(c, CHIP_KEYS, where)
        a = _int(c, "address", where, 0x20, 0x27)
        total += _int(c, "doors", where, 1, 16)
        if a in seen:
            raise ProfileError("%s: address 0x%02x used twice" % (where, a))
        seen.add(a)
    if total != doors:
        raise ProfileError("mcp23017.chips drive %d doors, profile says %d" % (total, doors))
    sensors = m.get("sensor_chips")
    if sensors is not None:
        if not isinstance(sensors, list) or len(sensors) * 16 < doors:
            raise ProfileError("mcp23017.sensor_chips: %d doors need %d sensor chips"
                               % (doors, (doors + 15) // 16))
        for a in sensors:
            if not isinstance(a, int) or not 0x20 <= a <= 0x27 or a in seen:
                raise ProfileError("mcp23017.sensor_chips: bad or reused address %r" % (a,))
            seen.add(a)
    m["active_low"] = _bool(m, "active_low", "mcp23017")
    m["sensor_open_level"] = _int(m, "sensor_open_level", "mcp23017", 0, 1, 1)
    m["debounce_ms"] = _int(m, "debounce_ms", "mcp23017", 0, 1000, 50)
    return m


def check_config(profile, cfg):
    """The locker config must fit the hardware: one slot per door, pulse within rating."""
    lock = profile["lock"]
    if len(cfg["sizes"]) != profile["doors"]:
        raise ProfileError("locker layout has %d slots but the board has %d doors"
                           % (len(cfg["sizes"]), profile["doors"]))
    if cfg["pulse_ms"] > lock["rated_pulse_ms"]:
        raise ProfileError("locker pulse_ms %d exceeds the board's rated %d ms"
                           % (cfg["pulse_ms"], lock["rated_pulse_ms"]))
    if cfg["rated_pulse_ms"] > lock["rated_pulse_ms"]:
        raise ProfileError("locker rated_pulse_ms %d exceeds the board's rated %d ms"
                           % (cfg["rated_pulse_ms"], lock["rated_pulse_ms"]))


def load(path):
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        raise ProfileError("no board profile at %s: run `make deploy BOARD=...`" % path)
    except ValueError:
        raise ProfileError("board profile %s is not valid JSON" % path)
    return validate(raw)


# ---- on the board at boot (targets/board_esp32.py; dropped with the rest of this module) ----

def make_driver(profile, i2c, ticks_ms, ticks_diff):
    """The lock driver a validated profile describes: GpioLockDriver or Mcp23017LockDriver
    (drivers/), i2c(spec) -> the machine.I2C bus of an "i2c" section. ProfileError for a
    driver that only the simulator runs."""
    if profile["driver"] == "gpio":
        from drivers.lock_gpio import GpioLockDriver
        g = profile["gpio"]
        return GpioLockDriver(g["outputs"], ticks_ms, ticks_diff,
                              active_low=g["active_low"], sensors=g.get("sensors"),
                              sensor_open_level=g["sensor_open_level"],
                              sensor_pull=g["sensor_pull"], debounce_ms=g["debounce_ms"])
    if profile["driver"] == "mcp23017":
        from drivers.lock_mcp23017 import Mcp23017LockDriver
        m = profile["mcp23017"]
        return Mcp23017LockDriver(i2c(m["i2c"]), [(c["address"], c["doors"]) for c in m["chips"]],
                                  ticks_ms, ticks_diff, active_low=m["active_low"],
                                  sensor_chips=m.get("sensor_chips"),
                                  sensor_open_level=m["sensor_open_level"],
                                  debounce_ms=m["debounce_ms"])
    raise ProfileError("driver %r does not run on a real board: use the simulator "
                       "(main.py sim <dir>)" % profile["driver"])


def check_locker_json(profile, path):
    """After the outputs are off: refuse a locker.json (at path) that does not fit this
    board (check_config). A locker not provisioned yet passes: main.Runtime reports it."""
    from core import config
    try:
        cfg = config.load(path)
    except config.ConfigError:
        return
    check_config(profile, cfg)
