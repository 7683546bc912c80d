"""Short runs of the replay, clock and brute-force campaigns (the full runs are
`make replay`, `make clock-attacks`, `make bruteforce`; figures in docs/reliability.md)."""


from campaigns import bruteforce, clock_attacks, replay
from core import throttle  # (firmware)


def test_replayed_frames_are_never_accepted():
    r = replay.run(sessions=12, seed=7)
    assert r["captured"] > 20 and r["replayed"] > r["captured"]
    assert r["accepted"] == 0
    assert set(r["written"]) <= {"try"}


def test_every_clock_attack_case_holds():
    for name, case in clock_attacks.CASES:
        checks, violations = case()
        assert checks > 0 and violations == 0, name


def test_bruteforce_month_stays_under_the_throttle_bound():
    r = bruteforce.attack(days=30, slots=10, secret_digits=10)
    assert r["successes"] == 0
    assert 0 < r["failures"] <= throttle.max_attempts(30 * 86400) == r["failure_bound"]


def test_bruteforce_measurement_sees_hits_on_a_weak_code():
    """Proves the campaign can report a break: 2 secret digits, a month, a full locker."""
    r = bruteforce.attack(days=30, slots=10, secret_digits=2, seed=3)
    assert r["successes"] > 0
