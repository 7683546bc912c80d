"""PRODUCT.md: the probability that an attacker guessing at the maximum permitted rate for
one year opens any slot of a full locker is at most 1e-6. Checked against the SHIPPED
constants, and shown to fail for weaker settings (so the check can fail)."""
import os
import re
import subprocess
import sys
from fractions import Fraction

from core import pickup_code, throttle
from lockerctl import firmware as fw, security

DOC = os.path.join(fw.REPO, "docs", "security.md")


def test_shipped_configuration_meets_the_target():
    b = security.bound()
    assert (b.secret_digits, b.skew_buckets) == (pickup_code.SECRET_DIGITS,
                                                 pickup_code.SKEW_BUCKETS)
    assert b.failures == throttle.max_failures(security.YEAR_S)
    assert b.p_open <= Fraction(1, 10 ** 6)
    assert b.ok


def test_figures_worked_out_by_hand():
    """5 free, 60 s doubling, 4 h cap and decay: the delay reaches 4 h at strike 14, so a
    year allows at most 14 + 1 + 31536000 // 14400 = 2205 failures; 3 window codes out of
    10^10 per guess: 2205 x 3e-10 = 6.615e-7."""
    b = security.bound()
    assert b.failures == 2205
    assert b.per_guess == Fraction(3, 10 ** 10)
    assert b.p_open == Fraction(6615, 10 ** 10)


def test_target_would_fail_with_eight_or_nine_secret_digits():
    assert not security.bound(secret_digits=8).ok
    assert security.bound(secret_digits=8).p_open > Fraction(6, 10 ** 5)
    assert not security.bound(secret_digits=9).ok


def test_target_would_fail_with_a_wider_window_or_a_laxer_throttle():
    assert not security.bound(skew_buckets=2).ok            # 5 codes per guess: 1.1e-6
    assert security.max_skew_for_target() == 1
    assert not security.bound(decay=3600, cap=3600).ok      # 4x the failures
    assert not security.bound(period_s=2 * security.YEAR_S).ok


def test_the_bound_uses_the_proof_when_it_is_the_weaker_secret():
    """A 2-byte proof would be easier to guess than 10 digits: the bound must notice."""
    assert security.per_guess_probability(10, 1, proof_bytes=2) == Fraction(3, 2 ** 16)
    assert security.per_guess_probability(10, 1) == Fraction(3, 10 ** 10)


def test_slot_in_the_code_is_what_keeps_a_full_locker_safe():
    """ADR 0002: without it, 200 occupied slots multiply the chance by 200."""
    assert security.unslotted_p_open(200) > security.TARGET
    assert security.unslotted_p_open(1) == security.bound().p_open


def test_command_prints_the_figures_and_its_exit_status_says_if_the_target_holds():
    run = [sys.executable, "-m", "lockerctl.security"]
    env = dict(os.environ, PYTHONPATH=os.path.join(fw.REPO, "tools"))
    ok = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "2205" in ok.stdout and "6.62e-07" in ok.stdout and "MET" in ok.stdout
    weak = subprocess.run(run + ["--secret-digits", "8"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert weak.returncode == 1 and "NOT MET" in weak.stdout


def test_docs_quote_the_figures_the_code_computes():
    """docs/security.md must not drift from the constants: its worked numbers are checked."""
    with open(DOC) as f:
        doc = f.read()
    b = security.bound()
    assert str(b.failures) in doc
    assert re.search(r"6\.6[12]\s*(x|×)\s*10\^?-7|6\.6[12]e-0?7", doc)
    assert "python -m lockerctl.security" in doc
    for name in ("FREE_FAILURES", "BASE_DELAY_S", "MAX_DELAY_S", "DECAY_S"):
        assert name in doc


def test_locker_config_refuses_a_window_that_breaks_the_bound():
    import pytest
    from core import config
    assert security.bound(skew_buckets=config.MAX_SKEW_BUCKETS).ok
    assert not security.bound(skew_buckets=config.MAX_SKEW_BUCKETS + 1).ok
    with pytest.raises(config.ConfigError, match="brute-force"):
        config.build({"locker_id": "00" * 8, "skew_buckets": config.MAX_SKEW_BUCKETS + 1})
