"""The brute-force bound of docs/security.md, computed from the constants the firmware ships.

An attacker at the door guesses pickup codes as fast as the throttle lets them, for a year,
with every slot occupied. One guess names ONE slot (the slot number is part of the code,
docs/adr/0002) and matches if it equals one of that slot's 2k+1 window codes, so

    P(any slot opened in a year) <= max_failures(1 year) x (2k+1) / 10^SECRET_DIGITS

(a union bound: it over-counts, never under-counts). Nothing here is typed in twice: the
numbers come from firmware/throttle.py and firmware/pickup_code.py, so changing a constant
there changes the figure here, and test_security_bound.py fails if the target is lost.

    .venv/bin/python -m lockerctl.security [--secret-digits N] [--skew-buckets K]
Exit status 0 when the configuration meets the target, 1 when it does not."""
import argparse
import sys
from dataclasses import dataclass
from fractions import Fraction

from core import (
    pickup_code,
    throttle,  # firmware module, on the path via .fw
)

YEAR_S = 365 * 86400
TARGET = Fraction(1, 10 ** 6)
# SHA-256 compressions an offline search spends per candidate code: proof_key() is one
# (a 25-byte message), the HMAC of the challenge four (ipad, message, opad, inner digest).
COMPRESSIONS_PER_CANDIDATE = 5


@dataclass
class Bound:
    period_s: int
    failures: int              # max_failures(period): the most wrong guesses the throttle allows
    secret_digits: int
    skew_buckets: int
    per_guess: Fraction        # chance that one guess opens the slot it names
    p_open: Fraction           # chance that any slot is opened in the period (union bound)
    target: Fraction

    @property
    def ok(self):
        return self.p_open <= self.target


def per_guess_probability(secret_digits=pickup_code.SECRET_DIGITS,
                          skew_buckets=pickup_code.SKEW_BUCKETS,
                          proof_bytes=pickup_code.PROOF_BYTES):
    """A guess wins if it hits one of the 2k+1 window codes of the slot it names. Guessing
    the 128-bit proof directly instead of the code is counted too (it is far worse)."""
    candidates = 2 * skew_buckets + 1
    by_code = Fraction(candidates, 10 ** secret_digits)
    by_proof = Fraction(candidates, 2 ** (8 * proof_bytes))
    return max(by_code, by_proof)


def bound(period_s=YEAR_S, secret_digits=pickup_code.SECRET_DIGITS,
          skew_buckets=pickup_code.SKEW_BUCKETS, free=throttle.FREE_FAILURES,
          base=throttle.BASE_DELAY_S, cap=throttle.MAX_DELAY_S, decay=throttle.DECAY_S,
          target=TARGET):
    failures = throttle.max_failures(period_s, free, base, cap, decay)
    p = per_guess_probability(secret_digits, skew_buckets)
    return Bound(period_s, failures, secret_digits, skew_buckets, p, min(Fraction(1), failures * p),
                 target)


def max_skew_for_target(**kw):
    """Largest skew_buckets that still meets the target (-1 if even 0 does not)."""
    k = -1
    while k < 12 and bound(skew_buckets=k + 1, **kw).ok:
        k += 1
    return k


def min_secret_digits(**kw):
    """Fewest secret digits that meet the target with the other settings unchanged."""
    d = 1
    while not bound(secret_digits=d, **kw).ok:
        d += 1
    return d


def unslotted_p_open(slots, **kw):
    """What ADR 0002 avoids: if the code did not name its slot, one guess would be checked
    against every occupied slot, multiplying the chance by the number of slots."""
    b = bound(**kw)
    return min(Fraction(1), b.p_open * slots)


def offline_search(secret_digits=pickup_code.SECRET_DIGITS):
    """Work to recover a human code from ONE captured (challenge, proof) pair by trying every
    code: the residual risk of docs/security.md (the code is single-use)."""
    candidates = 10 ** secret_digits
    return candidates, candidates * COMPRESSIONS_PER_CANDIDATE


def _sci(x):
    return "%.3g" % float(x)


def report(secret_digits=pickup_code.SECRET_DIGITS, skew_buckets=pickup_code.SKEW_BUCKETS):
    b = bound(secret_digits=secret_digits, skew_buckets=skew_buckets)
    level = b.failures - 1 - YEAR_S // throttle.DECAY_S
    candidates, compressions = offline_search(secret_digits)
    lines = [
        "Brute-force bound (firmware/throttle.py, firmware/pickup_code.py)",
        "  throttle: %d free failures, then %d s doubling, cap %d s; one strike decays per %d s"
        % (throttle.FREE_FAILURES, throttle.BASE_DELAY_S, throttle.MAX_DELAY_S,
           throttle.DECAY_S),
        "  strikes before the delay reaches the decay period: L = %d" % level,
        "  failures per year <= L + 1 + year // decay = %d + 1 + %d = %d"
        % (level, YEAR_S // throttle.DECAY_S, b.failures),
        "  code: %d secret digits, window 2k+1 = %d buckets (k = skew_buckets = %d)"
        % (b.secret_digits, 2 * b.skew_buckets + 1, b.skew_buckets),
        "  per-guess success <= (2k+1) / 10^%d = %s" % (b.secret_digits, _sci(b.per_guess)),
        "  P(any slot opened in a year, locker full) <= %d x %s = %s"
        % (b.failures, _sci(b.per_guess), _sci(b.p_open)),
        "  target <= %s: %s" % (_sci(b.target), "MET" if b.ok else "NOT MET"),
        "  expected years to a first success >= %s" % _sci(1 / b.p_open),
        "  largest skew_buckets meeting the target: %d" % max_skew_for_target(
            secret_digits=secret_digits),
        "  fewest secret digits meeting the target: %d" % min_secret_digits(
            skew_buckets=skew_buckets),
        "  without the slot in the code (ADR 0002), 200 full slots: %s"
        % _sci(unslotted_p_open(200, secret_digits=secret_digits, skew_buckets=skew_buckets)),
        "  offline search of one captured human-code proof: %s candidates, %s SHA-256 blocks"
        % (_sci(candidates), _sci(compressions)),
    ]
    return b, "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lockerctl.security", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secret-digits", type=int, default=pickup_code.SECRET_DIGITS)
    ap.add_argument("--skew-buckets", type=int, default=pickup_code.SKEW_BUCKETS)
    args = ap.parse_args(argv)
    b, text = report(args.secret_digits, args.skew_buckets)
    print(text)
    return 0 if b.ok else 1


if __name__ == "__main__":
    sys.exit(main())
