# Lock outputs and door sensors: the interface drivers implement, and the safety rules
# every driver gets for free (LockBank).
#
# Safety rules (docs/adr/0003-lock-safety.md):
#   * every output is off at boot (LockBank turns them off before anything else runs);
#   * a solenoid is never energised longer than its rated pulse, and rests at least one
#     pulse length before it is driven again (at most 50 % duty);
#   * at most `max_concurrent` doors are driven at once (power budget), others queue.
# Every open request gets a pulse that starts AFTER the request: a request for a lock that
# is already in its pulse queues a new pulse (the door may have been pushed shut meanwhile),
# requests for a lock whose pulse has not started yet share that pulse.
# LockBank never sleeps: the main loop calls service() every few milliseconds.


class LockDriver:
    """What a board's lock driver provides. Slots are numbered from 1."""

    def slot_count(self):
        raise NotImplementedError

    def set_output(self, sid, on):
        raise NotImplementedError

    def door_open(self, sid):
        """True (open), False (closed) or None when this slot has no door sensor."""
        return None

    def all_off(self):
        for sid in range(1, self.slot_count() + 1):
            self.set_output(sid, False)


class LockBank:
    def __init__(self, driver, pulse_ms, rated_pulse_ms, max_concurrent, ticks_ms, ticks_diff):
        if pulse_ms > rated_pulse_ms:
            raise ValueError("pulse %d ms exceeds the lock's rating of %d ms"
                             % (pulse_ms, rated_pulse_ms))
        if max_concurrent < 1:
            raise ValueError("power budget must allow at least one door")
        self.driver = driver
        driver.all_off()
        self.pulse_ms = pulse_ms
        self.max_concurrent = max_concurrent
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._queue = []
        self._active = {}         # sid -> tick at which the output must be off
        self._rest = {}           # sid -> tick before which it must not be driven again
        self.peak_concurrent = 0
        self.on_start = None      # on_start(sid, tick): a queued pulse really began

    def request_open(self, sid):
        """Ask for a pulse of lock sid that starts after this call (queued if needed)."""
        if sid not in self._queue:
            self._queue.append(sid)

    def queued(self, sid):
        """True while the pulse asked for by the last request_open(sid) has not started."""
        return sid in self._queue

    def busy(self):
        """A pulse is queued or energised (a lock merely resting is not busy)."""
        return bool(self._queue or self._active)

    def pending(self, sid):
        """Queued or energised: the door has been asked to open and not yet released."""
        return sid in self._active or sid in self._queue

    def energised(self):
        return list(self._active)

    def service(self):
        """Turn off pulses that are due, then start queued ones within the power budget."""
        now = self._ticks_ms()
        for sid in list(self._active):
            if self._ticks_diff(self._active[sid], now) <= 0:
                self.driver.set_output(sid, False)
                del self._active[sid]
                self._rest[sid] = now + self.pulse_ms
        for sid in list(self._rest):
            if self._ticks_diff(self._rest[sid], now) <= 0:
                del self._rest[sid]
        i = 0
        while i < len(self._queue) and len(self._active) < self.max_concurrent:
            sid = self._queue[i]
            if sid in self._active or sid in self._rest:
                i += 1                # still in (or resting from) its previous pulse
                continue
            self._queue.pop(i)
            self._active[sid] = now + self.pulse_ms
            self.driver.set_output(sid, True)
            if self.on_start is not None:
                self.on_start(sid, now)
        if len(self._active) > self.peak_concurrent:
            self.peak_concurrent = len(self._active)

    def all_off(self):
        self.driver.all_off()
        self._active = {}
        self._queue = []
        self._rest = {}
