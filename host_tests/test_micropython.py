"""The firmware on the real MicroPython unix port, heap capped like an ESP32 with BLE on:
a deposit, a reboot and a pickup through the request handler (host_tests/mp/flow_check.py)."""
import mp_runner

HEAP_SLACK = 4096          # the gc's own bookkeeping around the requested heap size
FLOW_HEAP = mp_runner.WHOLE_LOCKER_HEAP      # why it is over MP_HEAP: mp_runner.py


def _heap_limit(text=None):
    text = (text or mp_runner.heap()).lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("km")) * scale


def test_deposit_reboot_pickup_on_micropython(tmp_path):
    out = mp_runner.run_json("flow_check.py", tmp_path / "state", heap_size=FLOW_HEAP)
    assert out["slot"] == out["picked"]
    assert 1 <= out["slot"] <= 100
    assert out["code"].startswith("%03d-" % out["slot"])
    assert out["heap_booted"] > 0
    assert 0 < out["heap_total"] <= _heap_limit(FLOW_HEAP) + HEAP_SLACK
