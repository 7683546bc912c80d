"""Shared fixtures: a locker on a temp folder with fake hardware and a hand-moved clock."""
import os

import pytest

from lockerctl.rig import LOCKER_ID, MASTER, Bench  # noqa: F401  (re-exported for tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def bench(tmp_path):
    return Bench(str(tmp_path / "store"))


@pytest.fixture
def make_bench(tmp_path):
    def make(**kw):
        return Bench(str(tmp_path / "store"), **kw)
    return make
