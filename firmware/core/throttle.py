# Global, persisted, escalating throttle for failed pickup attempts.
# Global because BLE addresses rotate (per-address bans are useless); persisted because a
# reboot must not hand out fresh attempts. Strikes decay one per DECAY_S without failures.
#   after failure s: wait 0 for s <= FREE_FAILURES, then BASE_DELAY_S * 2^(s-FREE-1),
#   capped at MAX_DELAY_S.
# Bound (docs/security.md): failures in T seconds <= L + 1 + T // DECAY_S, where L is the
# first strike count whose delay reaches DECAY_S. max_failures() computes it.
from micropython import const

FREE_FAILURES = const(5)
BASE_DELAY_S = const(60)
MAX_DELAY_S = const(14400)
DECAY_S = const(14400)


def delay_after(strikes, free=FREE_FAILURES, base=BASE_DELAY_S, cap=MAX_DELAY_S):
    if strikes <= free:
        return 0
    shift = strikes - free - 1
    if shift > 30:
        return cap
    return min(cap, base << shift)


def max_failures(period_s, free=FREE_FAILURES, base=BASE_DELAY_S, cap=MAX_DELAY_S,
                 decay=DECAY_S):
    """Upper bound on failed attempts an attacker can make in period_s seconds."""
    if cap < decay:
        raise ValueError("throttle cap below decay period: no useful bound")
    level = free + 1
    while delay_after(level, free, base, cap) < decay:
        level += 1
    return level + 1 + period_s // decay


class Throttle:
    def __init__(self):
        self.strikes = 0
        self.last_fail = 0
        self.locked_until = 0

    def effective_strikes(self, now):
        if now <= self.last_fail:
            return self.strikes
        return max(0, self.strikes - (now - self.last_fail) // DECAY_S)

    def retry_after(self, now):
        """Seconds until the next attempt is allowed (0: allowed now)."""
        return max(0, self.locked_until - now)

    def failure_fields(self, now):
        """The state after one more failure at now, as stored in the journal record."""
        strikes = self.effective_strikes(now) + 1
        return strikes, now + delay_after(strikes)

    def apply_failure(self, now, strikes, locked_until):
        self.strikes = strikes
        self.last_fail = now
        self.locked_until = locked_until

    def to_list(self):
        return [self.strikes, self.last_fail, self.locked_until]

    def load(self, data):
        self.strikes, self.last_fail, self.locked_until = data
