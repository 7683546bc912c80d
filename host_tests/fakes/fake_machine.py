"""Fake `machine` for host tests of the real-board drivers: Pin and I2C that behave like
the ESP32 port (invalid and input-only pins refused, missing I2C devices raise ENODEV), plus
an MCP23017 and a DS3231 on the fake bus. Every level a pin ever shows is recorded with the
tick it happened at, so tests can prove that no lock output was ever ON when it should not
have been. install() puts it in sys.modules as `machine`."""
import errno
import sys
import types

ESP32_PINS = set(range(0, 40)) - {20, 24, 28, 29, 30, 31}
INPUT_ONLY = set(range(34, 40))


class Bench:
    """The pins and buses of one fake board, and the tick source it stamps history with."""

    def __init__(self):
        self.ms = 0
        self.pins = {}
        self.buses = {}

    def ticks_ms(self):
        return self.ms

    @staticmethod
    def ticks_diff(a, b):
        return a - b

    def advance(self, ms):
        self.ms += ms


BENCH = Bench()


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, pin, mode=-1, pull=-1, *, value=None):
        if pin not in ESP32_PINS:
            raise ValueError("invalid pin")
        if mode == Pin.OUT and pin in INPUT_ONLY:
            raise ValueError("pin can only be input")
        if pull == Pin.PULL_UP and pin in INPUT_ONLY:
            pull = None        # the ESP32 silently has no pull resistor there
        self.id = pin
        self.mode = mode
        self.pull = pull
        old = BENCH.pins.get(pin)
        self.level = old.level if old else 0
        self.history = old.history if old else []
        self.outside = old.outside if old else None   # level an external circuit drives
        if value is not None:
            self.level = value
        if mode == Pin.OUT:
            self.history.append((BENCH.ms, self.level))
        BENCH.pins[pin] = self

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.OUT:
                return self.level
            if self.outside is not None:
                return self.outside
            return 1 if self.pull == Pin.PULL_UP else 0
        self.level = 1 if v else 0
        self.history.append((BENCH.ms, self.level))
        return None


def drive(pin, level):
    """What the outside world does to an input (a reed switch opening or closing)."""
    BENCH.pins[pin].outside = level


# ---- I2C ------------------------------------------------------------------------------------

class I2C:
    def __init__(self, bus_id, scl=None, sda=None, freq=400000):
        self.bus = BENCH.buses.setdefault(bus_id, FakeBus())
        self.freq = freq

    def scan(self):
        return sorted(self.bus.devices)

    def _dev(self, addr):
        if self.bus.fail:
            self.bus.fail -= 1
            raise OSError(errno.ETIMEDOUT, "ETIMEDOUT")
        dev = self.bus.devices.get(addr)
        if dev is None:
            raise OSError(errno.ENODEV, "ENODEV")
        self.bus.transactions += 1
        return dev

    def readfrom_mem(self, addr, reg, n):
        return bytes(self._dev(addr).read(reg, n))

    def writeto_mem(self, addr, reg, data):
        self._dev(addr).write(reg, bytes(data))


class FakeBus:
    def __init__(self):
        self.devices = {}
        self.fail = 0              # the next n transactions time out
        self.transactions = 0


class FakeMcp23017:
    """Register file in IOCON.BANK=0 layout with sequential addressing."""

    def __init__(self):
        self.regs = bytearray(0x16)
        self.regs[0x00] = self.regs[0x01] = 0xFF     # power-on: all inputs
        self.inputs = 0xFFFF                          # levels on input pins (pull-ups)
        self.on_events = []                           # (pin) whenever an output shows 1

    def _word(self, reg):
        return self.regs[reg] | (self.regs[reg + 1] << 8)

    def outputs(self):
        """Level of each pin that is an output, as a 16-bit mask (others 0)."""
        return self._word(0x14) & ~self._word(0x00) & 0xFFFF

    def read(self, reg, n):
        out = []
        for i in range(n):
            r = reg + i
            if r in (0x12, 0x13):
                port = r - 0x12
                iodir = self.regs[r - 0x12]
                latch = self.regs[0x14 + port]
                pins = (self.inputs >> (8 * port)) & 0xFF
                out.append((pins & iodir) | (latch & ~iodir & 0xFF))
            else:
                out.append(self.regs[r])
        return out

    def write(self, reg, data):
        for i, b in enumerate(data):
            self.regs[reg + i] = b
        on = self.outputs()
        for pin in range(16):
            if on >> pin & 1:
                self.on_events.append(pin)


class FakeDS3231:
    def __init__(self):
        self.regs = bytearray(0x13)
        self.regs[0x0F] = 0x80                    # OSF set: never been set

    def read(self, reg, n):
        return self.regs[reg:reg + n]

    def write(self, reg, data):
        self.regs[reg:reg + len(data)] = data


def install():
    global BENCH
    BENCH = Bench()
    mod = types.ModuleType("machine")
    mod.Pin = Pin
    mod.I2C = I2C
    sys.modules["machine"] = mod
    return BENCH


def uninstall():
    sys.modules.pop("machine", None)


def add_device(bus_id, address, device):
    BENCH.buses.setdefault(bus_id, FakeBus()).devices[address] = device
    return device
