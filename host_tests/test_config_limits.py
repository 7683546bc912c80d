"""The firmware refuses a config it cannot hold, with a clear reason (issue 12.2).

`--ttl 100000d` was stored and then printed as a wrapped 2028 expiry: the TTL travels as a
u32 in HELLO and the deposit answer, the bucket as a u16, ms timers are compared with
ticks_diff. core/config.build bounds each (lockerctl's provisioning adds that now + TTL
stays within u32: test_cli.py)."""
import struct

import pytest
from core import config
from core.clock import _MAX_TIME as MAX_TIME
from hypothesis import given
from hypothesis import strategies as st
from lockerctl.rig import LOCKER_ID, Bench

BASE = {"locker_id": LOCKER_ID.hex()}


@pytest.mark.parametrize("key,value", [
    ("ttl_s", 100000 * 86400), ("ttl_s", 0), ("ttl_s", -5), ("ttl_s", 2 ** 32),
    ("ttl_s", "72h"), ("bucket_s", 70000), ("bucket_s", 0), ("pulse_ms", 10 ** 9),
    ("jam_ms", 2 ** 31), ("left_open_ms", 0), ("left_open_ms", 86400001),
    ("keep_segments", 1), ("max_concurrent", 0)])
def test_out_of_range_values_are_refused_with_the_range(key, value):
    with pytest.raises(config.ConfigError) as e:
        config.build(dict(BASE, **{key: value}))
    assert key in str(e.value)


@given(st.integers(-2 ** 40, 2 ** 40))
def test_every_accepted_ttl_fits_the_protocol(ttl):
    try:
        cfg = config.build(dict(BASE, ttl_s=ttl))
    except config.ConfigError:
        assert not 1 <= ttl <= 2 ** 32 - 1
        return
    struct.pack(">I", cfg["ttl_s"])                  # HELLO / deposit answer field


def test_longest_ttl_works_end_to_end(tmp_path):
    ttl = 2 ** 32 - 1 - MAX_TIME                     # the longest that never wraps
    b = Bench(str(tmp_path / "s"), ttl_s=ttl)
    assert b.client.hello().ttl_s == ttl
    dep = b.client.deposit(b.courier(), size=1)
    assert dep.expires_at == dep.deposit_ts + ttl
