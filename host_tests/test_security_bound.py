"""PRODUCT.md: the probability that an attacker guessing at the maximum permitted rate for
one year opens any slot of a full locker is at most 1e-6. Checked against the SHIPPED
constants, and shown to fail for weaker settings (so the check can fail)."""
import os
import re
import subprocess
import sys
from fractions import Fraction

import pytest
from core import config, pickup_code, throttle
from lockerctl import firmware as fw, security

DOC = os.path.join(fw.REPO, "docs", "security.md")


def test_shipped_configuration_meets_the_target():
    b = security.bound()
    assert b.secret_digits == pickup_code.SECRET_DIGITS
    assert pickup_code.SKEW_BUCKETS == 0
    assert b.ok, "P = %s > 1e-6" % float(b.p_open)


def test_figures_worked_out_by_hand():
    b = security.bound()
    assert b.attempts == 30 + 8760 == 8790
    assert b.per_guess == Fraction(1, 10 ** 10)
    assert b.p_open == Fraction(8790, 10 ** 10) + b.machine
    assert b.machine < Fraction(1, 10 ** 28)


def test_target_would_fail_with_fewer_digits_or_a_faster_refill():
    assert not security.bound(secret_digits=9).ok
    assert not security.bound(period=1800).ok
    assert not security.bound(burst=2000).ok
    assert security.shortest_period(10) <= throttle.GLOBAL_PERIOD_S
    assert security.shortest_period(9) > 8 * 3600
    assert security.shortest_period(7) is None      # the burst alone is too many guesses


def test_dos_figures_follow_the_constants():
    d = security.dos_figures()
    assert d["guesses_to_lock_all_human_pickups"] == throttle.GLOBAL_BURST
    assert d["slots_needed_to_drain_global"] * throttle.SLOT_BURST >= throttle.GLOBAL_BURST
    assert d["machine_form_locked_out"] is False


def test_command_prints_the_figures_and_its_exit_status_says_if_the_target_holds():
    run = [sys.executable, "-m", "lockerctl.security"]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "8790" in ok.stdout and "8.79e-07" in ok.stdout and "MET" in ok.stdout
    weak = subprocess.run(run + ["--secret-digits", "9"], capture_output=True, text=True,
                          timeout=60)
    assert weak.returncode == 1 and "NOT MET" in weak.stdout


def test_docs_quote_the_figures_the_code_computes():
    """docs/security.md must not drift from the constants: its worked numbers are checked."""
    with open(DOC) as f:
        doc = f.read()
    b = security.bound()
    assert str(b.attempts) in doc
    assert re.search(r"8\.79\s*(x|×)\s*10\^?-7|8\.79e-0?7", doc)
    assert "python -m lockerctl.security" in doc
    for name in ("GLOBAL_BURST", "GLOBAL_PERIOD_S", "SLOT_BURST", "SLOT_PERIOD_S"):
        assert name in doc


def test_locker_config_refuses_a_skew_window():
    """A PAKE run tests one password: the code binds the locker's own deposit bucket."""
    assert config.build({"locker_id": "00" * 8})["skew_buckets"] == 0
    with pytest.raises(config.ConfigError):
        config.build({"locker_id": "00" * 8, "skew_buckets": 1})
