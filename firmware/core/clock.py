# The locker's clock: never goes backwards, moves forward only on authenticated time.
# now() = max(RTC, floor + uptime, last value returned). The floor is the latest time the
# locker has persisted (every journal record carries one), so a reboot that resets the RTC
# (ESP32 at power-on) or an RTC set back by hand cannot make an expired code valid again.
from micropython import const

EPOCH_2000 = const(946684800)   # seconds from 1970-01-01 to 2000-01-01 (ESP32's epoch)


def unix_from_epoch2000(t):
    return t + EPOCH_2000


class LockerClock:
    def __init__(self, rtc_unix, uptime_s, floor=0):
        """rtc_unix() -> board RTC in Unix seconds; uptime_s() -> seconds since boot."""
        self._rtc = rtc_unix
        self._uptime = uptime_s
        self._boot_uptime = uptime_s()
        self._floor = floor
        self._offset = 0          # added by authenticated time, lost at reboot by design
        self._last = floor

    def now(self):
        t = max(self._rtc() + self._offset,
                self._floor + self._uptime() - self._boot_uptime)
        if t < self._last:
            t = self._last
        self._last = t
        return t

    def raise_floor(self, t):
        """Called for every persisted record: time the locker has committed to."""
        if t > self._floor:
            self._floor = t
            self._boot_uptime = self._uptime()
        if t > self._last:
            self._last = t

    def advance_to(self, authenticated_t):
        """Move forward to a time vouched for by the operator's key; never backwards.

        Returns the number of seconds the clock moved (0 when it was already later)."""
        now = self.now()
        if authenticated_t <= now:
            return 0
        self._offset += authenticated_t - now
        self._last = authenticated_t
        return authenticated_t - now
