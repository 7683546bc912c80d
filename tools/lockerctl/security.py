"""The brute-force bound and the lockout figures of docs/security.md, from the shipped constants.

Since the pickup is a PAKE (SPAKE2, docs/adr/0009-pickup-pake.md), a captured or fake-locker
transcript gives no offline test: the only way to try a code is an ONLINE PICKUP_START that
the locker answers, one password per run. Human-form attempts are budgeted by two GCRA
buckets (firmware/core/throttle.py): the locker-wide one admits at most GLOBAL_BURST +
t // GLOBAL_PERIOD_S attempts in any t seconds. One guess names ONE slot (ADR 0002) and tests
ONE password (the code binds the locker's own deposit bucket: skew 0), so

    P(any slot opened in a year) <= (GLOBAL_BURST + year // GLOBAL_PERIOD_S) / 10^SECRET_DIGITS
                                    + (machine-form attempts) / 2^128

(a union bound). Nothing is typed in twice: the numbers come from the firmware modules, so
changing a constant there changes the figure here, and test_security_bound.py fails if the
target is lost.

    .venv/bin/python -m lockerctl.security [--secret-digits N] [--period S] [--burst B]
Exit status 0 when the configuration meets the target, 1 when it does not."""
import argparse
import sys
from dataclasses import dataclass
from fractions import Fraction

from core import pickup_code, throttle

YEAR_S = 365 * 86400
TARGET = Fraction(1, 10 ** 6)
# Machine-form attempts are never budgeted, only paced; even one every millisecond for a year:
MACHINE_ATTEMPTS_PER_YEAR = YEAR_S * 1000


@dataclass
class Bound:
    period_s: int
    attempts: int              # the most human-form guesses the throttle answers in period_s
    secret_digits: int
    per_guess: Fraction        # chance that one human guess opens the slot it names
    machine: Fraction          # chance from machine-form attempts at 1 per ms
    p_open: Fraction           # chance that any slot is opened in the period (union bound)
    target: Fraction

    @property
    def ok(self):
        return self.p_open <= self.target


def bound(period_s=YEAR_S, secret_digits=pickup_code.SECRET_DIGITS,
          burst=throttle.GLOBAL_BURST, period=throttle.GLOBAL_PERIOD_S, target=TARGET):
    attempts = throttle.max_attempts(period_s, burst, period)
    per_guess = Fraction(1, 10 ** secret_digits)
    machine = Fraction(MACHINE_ATTEMPTS_PER_YEAR * period_s // YEAR_S,
                       2 ** (8 * pickup_code.TOKEN_BYTES))
    return Bound(period_s, attempts, secret_digits, per_guess, machine,
                 min(Fraction(1), attempts * per_guess + machine), target)


def shortest_period(secret_digits=pickup_code.SECRET_DIGITS, burst=throttle.GLOBAL_BURST):
    """Smallest GLOBAL_PERIOD_S (s) meeting the target, or None if the burst alone misses it."""
    allowed = TARGET * 10 ** secret_digits - burst          # refills a year may add
    if allowed < 1:
        return None
    period = -(-YEAR_S // int(allowed))                     # ceil
    while not bound(secret_digits=secret_digits, burst=burst, period=period).ok:
        period += 1
    return period


def digits_table(burst=throttle.GLOBAL_BURST):
    """(secret digits, typed digits, shortest refill period s or None) for 6..12 digits."""
    return [(d, d + pickup_code.SLOT_DIGITS, shortest_period(d, burst)) for d in range(6, 13)]


def dos_figures():
    """What ONE attacker with no code can do to recipients (docs/security.md, "Lockout")."""
    return {
        "slot_guesses_to_lock_one_slot": throttle.SLOT_BURST,
        "slot_lock_s_per_guess": throttle.SLOT_PERIOD_S,
        "guesses_to_lock_all_human_pickups": throttle.GLOBAL_BURST,
        "slots_needed_to_drain_global": -(-throttle.GLOBAL_BURST // throttle.SLOT_BURST),
        "keep_locked_one_guess_every_s": throttle.GLOBAL_PERIOD_S,
        "recovery_after_attacker_leaves_s": throttle.GLOBAL_PERIOD_S,
        "machine_form_locked_out": False,
    }


def _sci(x):
    return "%.3g" % float(x)


def _hours(s):
    return "%.3g h" % (s / 3600) if s is not None else "impossible (the burst alone misses)"


def report(secret_digits=pickup_code.SECRET_DIGITS, burst=throttle.GLOBAL_BURST,
           period=throttle.GLOBAL_PERIOD_S):
    b = bound(secret_digits=secret_digits, burst=burst, period=period)
    dos = dos_figures()
    lines = [
        "Brute-force bound (firmware/core/throttle.py, firmware/core/pickup_code.py)",
        "  offline search of any captured pickup (or fake-locker) transcript: nothing to test "
        "(SPAKE2, RFC 9382)",
        "  human-form budget: GLOBAL_BURST = %d, one more per GLOBAL_PERIOD_S = %d s;"
        " per slot SLOT_BURST = %d, one more per SLOT_PERIOD_S = %d s"
        % (burst, period, throttle.SLOT_BURST, throttle.SLOT_PERIOD_S),
        "  human guesses per year <= %d + %d // %d = %d"
        % (burst, YEAR_S, period, b.attempts),
        "  code: %d secret digits, one password per guess (skew_buckets = %d)"
        % (b.secret_digits, pickup_code.SKEW_BUCKETS),
        "  per-guess success = 1 / 10^%d = %s" % (b.secret_digits, _sci(b.per_guess)),
        "  machine form: never budgeted; 1 attempt per ms for a year x 2^-128 = %s"
        % _sci(b.machine),
        "  P(any slot opened in a year, locker full) <= %d x %s + %s = %s"
        % (b.attempts, _sci(b.per_guess), _sci(b.machine), _sci(b.p_open)),
        "  target <= %s: %s" % (_sci(b.target), "MET" if b.ok else "NOT MET"),
        "  expected years to a first success >= %s" % _sci(1 / b.p_open),
        "Digits a recipient types (slot 3 + secret): the fastest refill that meets the target",
    ]
    for d, typed, p in digits_table(burst):
        lines.append("  %2d secret (%2d typed): GLOBAL_PERIOD_S >= %s" % (d, typed, _hours(p)))
    lines += [
        "What one attacker with no code can do to recipients",
        "  lock ONE slot's human code: %d guesses, then 1 guess per %d s keeps it locked"
        % (dos["slot_guesses_to_lock_one_slot"], dos["slot_lock_s_per_guess"]),
        "  lock ALL human-code pickups: %d guesses (over >= %d slots), then 1 guess per %d s"
        % (dos["guesses_to_lock_all_human_pickups"], dos["slots_needed_to_drain_global"],
           dos["keep_locked_one_guess_every_s"]),
        "  after the attacker stops: human pickups resume within %d s (a confirmed pickup "
        "gives its unit back)" % dos["recovery_after_attacker_leaves_s"],
        "  machine-form (QR / link) pickups: never locked out, only paced (busy <= 2 x one PAKE)",
    ]
    return b, "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lockerctl.security", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secret-digits", type=int, default=pickup_code.SECRET_DIGITS)
    ap.add_argument("--burst", type=int, default=throttle.GLOBAL_BURST)
    ap.add_argument("--period", type=int, default=throttle.GLOBAL_PERIOD_S)
    args = ap.parse_args(argv)
    b, text = report(args.secret_digits, args.burst, args.period)
    print(text)
    return 0 if b.ok else 1


if __name__ == "__main__":
    sys.exit(main())
