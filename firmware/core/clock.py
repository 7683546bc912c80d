# The locker's clock: never goes backwards, moves forward only on authenticated time, and an
# unauthenticated RTC can move it forward only by a bounded step (docs/reliability.md "Time").
#
# now() follows the RTC while the RTC agrees with the uptime counter: a reading behind the
# locker's time is ignored (never backwards: the time carries on from the last value plus
# uptime), a reading more than _MAX_RTC_STEP_S ahead of it, or beyond _MAX_TIME, is refused as
# a jump nobody vouched for (a typo like `sim clock +100000d`, an RTC returning garbage).
# The floor is the latest time the locker has persisted (every journal record and the
# anchor carry one); resume() at boot starts from it, plus the longest time that can have
# passed unrecorded before the cut when the RTC lost its time.
from micropython import const

EPOCH_2000 = const(946684800)   # seconds from 1970-01-01 to 2000-01-01 (ESP32's epoch)
# Protocol times are u32 seconds (docs/protocol.md); an expiry (time + TTL, at most
# config.MAX_TTL_S) must still fit, so the clock itself stays below this.
_MAX_TIME = const(4294967295 - 366 * 86400)
# Largest unauthenticated forward step of the RTC against the uptime counter and, at boot,
# against the persisted floor (seconds): a week of power-off with a battery RTC, a 72 h
# expiry test in the simulator. Further is believed only from authenticated time.
_MAX_RTC_STEP_S = const(8 * 86400)


def unix_from_epoch2000(t):
    return t + EPOCH_2000


class LockerClock:
    def __init__(self, rtc_unix, uptime_s, floor=0):
        """rtc_unix() -> board RTC in Unix seconds (any int: garbage is tolerated);
        uptime_s() -> seconds since boot, never decreasing."""
        self._rtc = rtc_unix
        self._uptime = uptime_s
        self._last = floor            # locker time at uptime _boot_uptime (last returned)
        self._boot_uptime = uptime_s()
        self._offset = 0              # added by authenticated time
        self._floor = floor
        self.rtc_refused = 0          # latest RTC reading refused as a jump (0: none)

    def now(self):
        """Unix seconds, never less than any value returned before, at most _MAX_TIME."""
        # Unix times do not fit a 31-bit small int (ESP32, 32-bit VM): every sum of two
        # makes a big int on the heap, so the usual call (nothing moved) makes none.
        up = self._uptime()
        follow = self._last
        if up != self._boot_uptime:
            follow += up - self._boot_uptime
        r = self._rtc()
        if self._offset:
            r += self._offset
        if r > follow:
            if r <= _MAX_TIME and (not self._last or r - follow <= _MAX_RTC_STEP_S):
                follow = r            # the RTC agrees with the uptime counter: take it
            else:
                self.rtc_refused = r  # a jump nobody vouched for: follow the uptime
        if follow > _MAX_TIME:
            follow = _MAX_TIME
        self._last = follow
        self._boot_uptime = up
        return follow

    def raise_floor(self, t):
        """Called for every persisted record: time the locker has committed to."""
        if t > self._floor:
            self._floor = t
        if t > self._last and t - self._last > self._uptime() - self._boot_uptime:
            self._last = t
            self._boot_uptime = self._uptime()

    def resume(self, max_unrecorded_s):
        """At boot, after the floor was loaded: when the RTC is behind the floor (it lost
        its time at the power cut, or was set back) the cut may have happened up to
        max_unrecorded_s after the floor was written, so carry on from floor + that: an
        expiry the locker had reached before the cut stays reached. Returns the seconds
        added to the floor for it (0 when the RTC kept its time)."""
        floor = self._floor
        if self._rtc() + self._offset >= floor:
            return 0
        self.raise_floor(min(floor + max_unrecorded_s, _MAX_TIME))
        return self._floor - floor

    def advance_to(self, authenticated_t):
        """Move forward to a time vouched for by the operator's key; never backwards.

        Returns the number of seconds the clock moved (0 when it was already later, and
        for a time beyond _MAX_TIME: the protocol could not carry its expiries)."""
        if authenticated_t > _MAX_TIME:
            return 0
        now = self.now()
        if authenticated_t <= now:
            return 0
        moved = authenticated_t - now
        self._offset += moved
        self._last = authenticated_t
        self._boot_uptime = self._uptime()
        return moved
