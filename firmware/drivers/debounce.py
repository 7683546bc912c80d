# Door sensor debouncing shared by the lock drivers (lock_gpio, lock_mcp23017): a reed switch
# chatters for a few ms when the door swings, and the door monitor would otherwise log
# open/close pairs. Its own module so an MCP23017 board does not load the GPIO driver.
from micropython import const

DEBOUNCE_MS = const(50)
_NONE = const(2)               # no reading yet


class Debouncer:
    """Per-door debounce over packed arrays: a new level counts once stable debounce_ms.

    feed(i, level, now) -> the debounced level (bool); the first reading counts at once."""

    def __init__(self, count, debounce_ms, ticks_diff):
        self.stable = bytearray([_NONE] * count)
        self.candidate = bytearray([_NONE] * count)
        self.since = [0] * count
        self.debounce_ms = debounce_ms
        self._diff = ticks_diff

    def feed(self, i, level, now):
        level = 1 if level else 0
        if self.stable[i] == _NONE:
            self.stable[i] = self.candidate[i] = level
            self.since[i] = now
        elif level != self.candidate[i]:
            self.candidate[i] = level
            self.since[i] = now
        elif level != self.stable[i] and self._diff(now, self.since[i]) >= self.debounce_ms:
            self.stable[i] = level
        return self.stable[i] == 1
