# Lock driver for cabinets with many doors: MCP23017 I2C port expanders, 16 lock outputs per
# chip (port A = doors 1-8 of the chip, port B = 9-16), several chips on one bus; door
# sensors optionally on further MCP23017s used as inputs (pull-ups on, reed switch to GND).
# Outputs are driven from a cached latch (one register write per change, no read-back over
# a noisy bus), I2C errors are retried, and a chip that does not answer at start-up is a
# clear error naming its address.
from micropython import const

from drivers import gpio_lock
from drivers.debounce import DEBOUNCE_MS, Debouncer

_IODIRA = const(0x00)           # IOCON.BANK = 0 (power-on default) register map
_GPPUA = const(0x0C)
_GPIOA = const(0x12)
_OLATA = const(0x14)
_TRIES = const(3)
_SENSOR_CACHE_MS = const(5)     # one 2-byte read serves a whole door-monitor sweep


class ExpanderError(OSError):
    pass


class Mcp23017:
    def __init__(self, i2c, address):
        self.i2c = i2c
        self.address = address
        self.latch = bytearray(2)

    def write(self, reg, data):
        for attempt in range(_TRIES):
            try:
                self.i2c.writeto_mem(self.address, reg, data)
                return
            except OSError as e:
                err = e
        raise ExpanderError("MCP23017 at 0x%02x: I2C write failed (%s)" % (self.address, err))

    def read(self, reg, n):
        for attempt in range(_TRIES):
            try:
                return self.i2c.readfrom_mem(self.address, reg, n)
            except OSError as e:
                err = e
        raise ExpanderError("MCP23017 at 0x%02x: I2C read failed (%s)" % (self.address, err))

    def setup_outputs(self, off_bits):
        self.latch[0] = off_bits & 0xFF
        self.latch[1] = off_bits >> 8
        self.write(_OLATA, self.latch)          # latch OFF first, then make the pins outputs
        self.write(_IODIRA, b"\x00\x00")

    def setup_inputs(self):
        self.write(_IODIRA, b"\xff\xff")
        self.write(_GPPUA, b"\xff\xff")

    def set_pin(self, pin, level):
        port, bit = pin >> 3, 1 << (pin & 7)
        if level:
            self.latch[port] |= bit
        else:
            self.latch[port] &= ~bit & 0xFF
        self.write(_OLATA + port, self.latch[port:port + 1])

    def read_pins(self):
        b = self.read(_GPIOA, 2)
        return b[0] | (b[1] << 8)


def _present(i2c, addresses):
    found = i2c.scan()
    missing = [a for a in addresses if a not in found]
    if missing:
        raise ExpanderError("MCP23017 not answering at %s (found %s): check wiring, power "
                            "and the A0-A2 address pins"
                            % (", ".join("0x%02x" % a for a in missing),
                               ", ".join("0x%02x" % a for a in found) or "nothing"))


class Mcp23017LockDriver(gpio_lock.LockDriver):
    """chips: [(address, doors)] for outputs in door order; sensor_chips: [address] giving
    door sensors in door order (16 per chip), or None."""

    def __init__(self, i2c, chips, ticks_ms, ticks_diff, active_low=False, sensor_chips=None,
                 sensor_open_level=1, debounce_ms=DEBOUNCE_MS):
        _present(i2c, [a for a, _ in chips] + list(sensor_chips or ()))
        self._level_on = 0 if active_low else 1
        self._map = []                         # door index -> (chip, pin)
        self._chips = []
        for address, doors in chips:
            chip = Mcp23017(i2c, address)
            chip.setup_outputs(0xFFFF if active_low else 0)
            self._chips.append(chip)
            for pin in range(doors):
                self._map.append((chip, pin))
        self._sensors = None
        if sensor_chips:
            self._sensors = []
            for address in sensor_chips:
                chip = Mcp23017(i2c, address)
                chip.setup_inputs()
                self._sensors.append(chip)
            if len(self._sensors) * 16 < len(self._map):
                raise ValueError("%d sensor chips cannot watch %d doors"
                                 % (len(self._sensors), len(self._map)))
            self._cache = [0] * len(self._sensors)
            self._cache_at = [None] * len(self._sensors)
            self._open_level = sensor_open_level
            self._debounce = Debouncer(len(self._map), debounce_ms, ticks_diff)
        self._ticks = ticks_ms
        self._diff = ticks_diff

    def slot_count(self):
        return len(self._map)

    def set_output(self, sid, on):
        chip, pin = self._map[sid - 1]
        chip.set_pin(pin, self._level_on if on else self._level_on ^ 1)

    def all_off(self):
        off = 0 if self._level_on else 0xFFFF
        for chip in self._chips:
            chip.setup_outputs(off)

    def door_open(self, sid):
        if self._sensors is None:
            return None
        i = (sid - 1) >> 4
        now = self._ticks()
        at = self._cache_at[i]
        if at is None or self._diff(now, at) >= _SENSOR_CACHE_MS:
            self._cache[i] = self._sensors[i].read_pins()
            self._cache_at[i] = now
        level = (self._cache[i] >> ((sid - 1) & 15)) & 1
        return self._debounce.feed(sid - 1, level == self._open_level, now)
