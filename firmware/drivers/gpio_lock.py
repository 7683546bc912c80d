# Lock outputs and door sensors: the interface drivers implement, and the safety rules
# every driver gets for free (LockBank).
#
# Safety rules (docs/adr/0003-lock-safety.md):
#   * every output is off at boot (LockBank turns them off before anything else runs);
#   * a solenoid is never energised longer than its rated pulse;
#   * at most `max_concurrent` doors are driven at once (power budget), others queue.
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
        self.peak_concurrent = 0
        self.on_start = None      # on_start(sid, tick): a queued pulse really began

    def request_open(self, sid):
        if sid not in self._queue and sid not in self._active:
            self._queue.append(sid)

    def busy(self):
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
        while self._queue and len(self._active) < self.max_concurrent:
            sid = self._queue.pop(0)
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
