# THE place for fake hardware: lock outputs, door sensors, RTC and ticks that a test or
# the simulator can see and drive. Nothing else in the project fakes hardware.
# Door physics: energising a lock opens its door (spring) unless the door is jammed;
# a door closes only when someone closes it (close()), which a person can do at any moment,
# also while the solenoid is still energised: the latch catches when the pulse ends, and
# only a NEW pulse (a rising edge) opens that door again.
from drivers import gpio_lock


class SimLockDriver(gpio_lock.LockDriver):
    def __init__(self, count, sensors=True, ticks_ms=None):
        self.count = count
        self.sensors = sensors
        self.outputs = bytearray(count + 1)
        self.doors = bytearray(count + 1)      # 1 = open
        self.jammed = set()
        self._ticks = ticks_ms
        self._on_since = {}
        self.max_on_ms = 0                      # longest pulse seen, for safety tests
        self.peak_on = 0                        # most outputs on at once
        self.pulses = []                        # slot ids in the order they were driven
        self.pulse_log = []                     # (slot id, tick) of every rising edge

    def slot_count(self):
        return self.count

    def set_output(self, sid, on):
        if not 1 <= sid <= self.count:
            raise ValueError("no lock output %d" % sid)
        now = self._ticks() if self._ticks else 0
        if on and not self.outputs[sid]:
            self._on_since[sid] = now
            self.pulses.append(sid)
            self.pulse_log.append((sid, now))
            if sid not in self.jammed:
                self.doors[sid] = 1
        if not on and self.outputs[sid]:
            self.max_on_ms = max(self.max_on_ms, now - self._on_since.pop(sid, now))
        self.outputs[sid] = 1 if on else 0
        self.peak_on = max(self.peak_on, sum(self.outputs))

    def door_open(self, sid):
        if not self.sensors:
            return None
        return bool(self.doors[sid])

    # ---- what a person at the cabinet does --------------------------------------------
    def close(self, sid):
        self.doors[sid] = 0

    def force_open(self, sid):
        self.doors[sid] = 1

    def jam(self, sid, jammed=True):
        if jammed:
            self.jammed.add(sid)
        else:
            self.jammed.discard(sid)


class ManualTime:
    """A clock a test moves by hand: RTC seconds and millisecond ticks together."""

    def __init__(self, start=1767225600):       # 2026-01-01 00:00:00 UTC
        self.rtc = start
        self.ms = 0
        self._frac_ms = 0          # sub-second advances, so the RTC stays whole seconds

    def advance(self, seconds):
        step = int(seconds * 1000)
        self.ms += step
        self._frac_ms += step
        self.rtc += self._frac_ms // 1000
        self._frac_ms %= 1000

    def rtc_unix(self):
        return self.rtc

    def uptime_s(self):
        return self.ms // 1000

    def ticks_ms(self):
        return self.ms

    @staticmethod
    def ticks_diff(a, b):
        return a - b
