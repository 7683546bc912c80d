# Lock driver for boards that wire each door straight to the ESP32: one GPIO per lock output
# (relay or MOSFET) and, optionally, one GPIO per door sensor (reed switch).
# Outputs are created already at their OFF level, so constructing the driver never pulses a
# lock (ADR 0003). Sensors are debounced in software (drivers/debounce.py).
from drivers import gpio_lock
from drivers.debounce import DEBOUNCE_MS, Debouncer


def _machine():
    try:
        import machine
        machine.Pin.OUT        # the unix port's machine has no Pin
    except (ImportError, AttributeError):
        raise ImportError("this lock driver needs machine.Pin (an ESP32 board)")
    return machine


class GpioLockDriver(gpio_lock.LockDriver):
    def __init__(self, outputs, ticks_ms, ticks_diff, active_low=False, sensors=None,
                 sensor_open_level=1, sensor_pull="up", debounce_ms=DEBOUNCE_MS):
        machine = _machine()
        Pin = machine.Pin
        self._off = 1 if active_low else 0
        # value= at construction: the pin never shows the ON level, not even for a moment
        self._out = [Pin(n, Pin.OUT, value=self._off) for n in outputs]
        self._in = None
        if sensors:
            if len(sensors) != len(outputs):
                raise ValueError("one door sensor per lock output, or none")
            pull = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN, "none": None}[sensor_pull]
            self._in = [Pin(n, Pin.IN, pull) for n in sensors]
            self._open_level = sensor_open_level
            self._debounce = Debouncer(len(sensors), debounce_ms, ticks_diff)
        self._ticks = ticks_ms

    def slot_count(self):
        return len(self._out)

    def set_output(self, sid, on):
        self._out[sid - 1].value(self._off ^ 1 if on else self._off)

    def door_open(self, sid):
        if self._in is None:
            return None
        raw = self._in[sid - 1].value() == self._open_level
        return self._debounce.feed(sid - 1, raw, self._ticks())
