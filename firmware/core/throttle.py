# Pickup-attempt budgets, persisted in the journal (docs/security.md, "Lockout").
#
# Only HUMAN-form attempts are budgeted: a 128-bit machine-form attempt wins with chance
# 2^-128, so it is never locked out (PAKE CPU pacing, below, still applies to it).
# Each human attempt (a PICKUP_START the locker answered, i.e. one password guess) spends
# one unit of two GCRA buckets (the "generic cell rate algorithm", RFC 2697's sibling; ITU-T
# I.371): the slot's own and the locker-wide one. A bucket of burst b and period T allows an
# attempt when its theoretical arrival time tat satisfies tat - now <= (b - 1) * T, and an
# attempt moves tat to max(tat, now) + T. So in ANY window of t seconds a bucket admits at
# most b + t // T attempts: the year bound of docs/security.md is GLOBAL_BURST + year //
# GLOBAL_PERIOD_S guesses, whatever the attacker does (reboots included: the state is
# journalled before the answer; the clock never goes back).
# A confirmed pickup gives its unit back (it was no guess), and a deposit gives the slot a
# fresh budget (the old code is dead, so guesses against it are moot).
# Global because BLE addresses rotate; per slot so that one slot's guessing (or a recipient's
# typos) does not spend the whole locker's budget at once.
from micropython import const

GLOBAL_BURST = const(30)
GLOBAL_PERIOD_S = const(3600)
SLOT_BURST = const(5)
SLOT_PERIOD_S = const(3600)

# PAKE pacing (RAM only: it protects CPU time, not the bound). After a PAKE computation that
# took d ms, no new one starts for d ms (duty cycle <= 1/2 whatever the number of
# connections), and the same connection waits 2*d (others get the next turn).
_PACE_SHARE = const(1)            # global gap = _PACE_SHARE * d
_PACE_CONNECTION = const(2)       # per-connection gap = _PACE_CONNECTION * d


def max_attempts(period_s, burst=GLOBAL_BURST, period=GLOBAL_PERIOD_S):
    """Upper bound on budgeted (human) attempts the locker answers in period_s seconds."""
    return burst + period_s // period


class Bucket:
    """One GCRA bucket: tat only (0 = full)."""

    def __init__(self, burst, period):
        self.burst = burst
        self.period = period

    def wait(self, tat, now):
        """Seconds before an attempt is allowed (0: now)."""
        return max(0, tat - now - (self.burst - 1) * self.period)

    def charge(self, tat, now):
        return max(tat, now) + self.period

    def refund(self, tat, now):
        """Undo one charge; 0 (full) once nothing is owed any more."""
        tat -= self.period
        return tat if tat > now else 0


GLOBAL = Bucket(GLOBAL_BURST, GLOBAL_PERIOD_S)
SLOT = Bucket(SLOT_BURST, SLOT_PERIOD_S)


class Throttle:
    def __init__(self):
        self.tat = 0            # global bucket
        self.slot_tat = {}      # sid -> tat; absent = full (at most one entry per slot)

    def retry_after(self, sid, now):
        """Seconds until a human-form attempt on slot sid is allowed (0: allowed now)."""
        return max(GLOBAL.wait(self.tat, now), SLOT.wait(self.slot_tat.get(sid, 0), now))

    def charge(self, sid, now):
        """One human attempt answered (journal record "try")."""
        self.tat = GLOBAL.charge(self.tat, now)
        self.slot_tat[sid] = SLOT.charge(self.slot_tat.get(sid, 0), now)
        self._prune(now)

    def refund(self, sid, now):
        """The attempt was a confirmed pickup: give its units back."""
        self.tat = GLOBAL.refund(self.tat, now)
        if sid in self.slot_tat:
            self.slot_tat[sid] = SLOT.refund(self.slot_tat[sid], now)
        self._prune(now)

    def shift(self, seconds):
        """The clock skipped `seconds` that nobody waited (a boot that found the RTC behind
        its floor, core/clock.resume): every owed tat moves with it, so the skip refills
        no budget. A full bucket (tat 0) stays full."""
        if self.tat:
            self.tat += seconds
        for sid in self.slot_tat:
            self.slot_tat[sid] += seconds

    def reset_slot(self, sid):
        """A new parcel in the slot: a fresh budget for its new code."""
        self.slot_tat.pop(sid, None)

    def _prune(self, now):
        for sid in [s for s, t in self.slot_tat.items() if t <= now]:
            del self.slot_tat[sid]

    def to_list(self):
        return [self.tat, [[s, t] for s, t in self.slot_tat.items()]]

    def load(self, data):
        if len(data) == 2 and isinstance(data[1], list):
            self.tat = data[0]
            self.slot_tat = {s: t for s, t in data[1]}
        else:   # a journal from before the PAKE (strikes, last_fail, locked_until)
            self.tat = 0
            self.slot_tat = {}


class Pacer:
    """PAKE CPU pacing in RAM: ticks_ms-based gaps after each computation."""

    def __init__(self, ticks_ms, ticks_diff):
        self._ticks_ms = ticks_ms
        self._diff = ticks_diff
        self._free_at = None      # ticks when any connection may start the next PAKE

    def wait_ms(self, session):
        now = self._ticks_ms()
        wait = 0
        for at in (self._free_at, session.pake_free_at):
            if at is not None:
                wait = max(wait, self._diff(at, now))
        return wait

    def done(self, session, started):
        """Record a computation that began at ticks started and ended now."""
        now = self._ticks_ms()
        d = max(0, self._diff(now, started))
        self._free_at = now + _PACE_SHARE * d
        session.pake_free_at = now + _PACE_CONNECTION * d
