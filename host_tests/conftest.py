"""Shared fixtures: a locker on a temp folder with fake hardware and a hand-moved clock."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from lockerctl import fw  # noqa: E402,F401  (puts firmware/ on sys.path)
from lockerctl.rig import LOCKER_ID, MASTER, Bench  # noqa: E402,F401  (re-exported for tests)


@pytest.fixture
def bench(tmp_path):
    return Bench(str(tmp_path / "store"))


@pytest.fixture
def make_bench(tmp_path):
    def make(**kw):
        return Bench(str(tmp_path / "store"), **kw)
    return make
