"""`make bench` works: a tiny run of tools/bench on the real MicroPython unix port.

Checks the structure of the report and relations the figures must satisfy (never timings):
the pickup PAKE's work per attempt (scalar passes, point additions, hashes) does not depend
on occupancy or on the code being right; one durable write per state change; compaction
bounds replay."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "tools", "bench", "run.py")
MICROPYTHON = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    if not os.path.exists(MICROPYTHON):
        pytest.skip("no MicroPython unix port at %s (set MICROPYTHON)" % MICROPYTHON)
    out = tmp_path_factory.mktemp("bench")
    result = out / "bench.json"
    proc = subprocess.run([sys.executable, RUN, "--quick", "--json", str(result),
                           "--build-dir", str(out / "build")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(result.read_text())
    data["stdout"] = proc.stdout
    return data


def section(bench, number):
    return next(v for k, v in bench["results"].items() if k.startswith("%d." % number))


def test_report_has_a_table_per_section_and_a_summary(bench):
    out = bench["stdout"]
    for title in ("1. Pickup PAKE cost", "2. Durable writes", "3. Memory",
                  "4. Recovery", "5. Firmware size", "6. Protocol on the air",
                  "7. Host side throughput", "8. The simulator's heap", "Summary"):
        assert "## " + title in out
    summary = out.split("## Summary")[1]
    for target in ("Pickup attempt (SPAKE2)", "One durable write", "Bytes written", "RAM",
                   "Firmware size", "Boot/recovery", "RAM: the simulator"):
        assert target in summary
    assert summary.count("\n|") >= 10        # header, rule and one row per target


def test_pake_cost_is_independent_of_occupancy_and_of_the_code(bench):
    d = section(bench, 1)
    rows = d["alloc"]["rows"]
    assert len(rows) >= 2
    work = {(r[k]["mul2"], r[k]["adds"], r[k]["hashes"]["hmacs"], r[k]["hashes"]["sha"])
            for r in rows for k in ("right", "wrong")}
    assert len(work) == 1, "PAKE work depends on occupancy or on the code: %s" % work
    mul2, adds, hmacs, _ = work.pop()
    # RFC 9382 on the locker: pB = y*G + w*N and K = y*pA + (-y*w)*M, one pass each; every
    # pass is 256 doublings + 256 additions (+1 for its table), all complete additions
    assert mul2 == 2 and adds == 2 * (2 * 256 + 1)
    assert hmacs >= 3                      # HKDF extract + expand, cA, cB (+ the journal MAC)
    for r in d["timed"]["rows"]:
        assert r["right"]["status"] == 0 and r["wrong"]["status"] == 9
    assert d["timed"]["phone"]["mul2"] == 4     # the phone's two passes + the locker's in it


def test_one_durable_write_per_state_change(bench):
    d = section(bench, 2)
    for name, least, (writes, nbytes, renames, _) in d["rows"]:
        if least is not None:
            assert writes == least, name
            assert (nbytes > 0) == (least > 0), name
            if least:
                assert renames == 0, "%s: a state change must be an append" % name
    a = d["amortised"]
    assert a["compactions"] >= 1
    assert a["records"] < a["writes"] <= a["records"] + 2 * a["compactions"]
    assert a["replaced_bytes"] > 0


def test_memory_figures_are_consistent(bench):
    m = section(bench, 3)
    runs = [m["work"]] + ([m["mp32"]] if m["mp32"] else [])
    for run in runs:
        # every import costs heap; the boot-only module dropped after boot gives some back
        assert all(n > 0 for name, n in run["imports"] if not name.startswith("(dropped"))
        assert all(n < 0 for name, n in run["imports"] if name.startswith("(dropped"))
        for n in m["slot_counts"]:
            per = run["per_slots"][str(n)]
            assert per["filled"] == n
            assert 0 < per["retained_empty"] < per["retained_full"]
            for name, used, _, _ in per["transient"]:
                # the PAKE's big-integer garbage can outgrow the 64-bit heap with the
                # collector off (-1); everything else must have been measured
                assert used > 0 or (used == -1 and ("PAKE" in name or "PICKUP" in name)), name
    if m["mp32"]:        # 4-byte words: every figure below the 64-bit port's
        code32 = sum(n for _, n in m["mp32"]["imports"])
        assert code32 < sum(n for _, n in m["work"]["imports"])
        n = str(m["slot_counts"][-1])
        assert (m["mp32"]["per_slots"][n]["retained_full"]
                < m["work"]["per_slots"][n]["retained_full"])
    for key, found in m["min_heap"].items():
        assert found["min_kb"], key
        if found["fails_kb"]:
            assert found["fails_kb"] < found["min_kb"]
    # (no order between the empty and the full flow any more: since the pickup PAKE the
    # smallest heap is set by where the pickup's bytecode and big integers find room in a
    # heap fragmented by boot, not by the number of parcels; docs/performance.md)


def test_compaction_bounds_replay(bench):
    rec = section(bench, 4)
    bounded = rec["configured"]
    for r in bounded["rows"]:
        assert r["replayed"] <= bounded["segment_records"]
    off = rec["compaction off"]["rows"]
    assert off[-1]["replayed"] >= off[-1]["ops"]          # every record since the start
    assert bounded["rows"][-1]["replayed"] < off[-1]["replayed"]


def test_size_and_protocol(bench):
    size = section(bench, 5)
    assert size["total"] == sum(size["modules"].values())
    assert 0 < size["device"] < size["total"]
    from lockerctl import firmware
    fw = {rel[:-3] for _, rel in firmware.sources("sim") if rel not in firmware.AS_SOURCE}
    assert set(size["modules"]) == fw
    flows = section(bench, 6)["flows"]
    for flow in ("deposit", "pickup"):
        small, big = flows[flow + "@20"], flows[flow + "@244"]
        assert small["round_trips"] == big["round_trips"] == 2
        assert small["fragments"] > big["fragments"] >= 2 * big["round_trips"]
        assert small["bytes"] == small["message_bytes"] + small["fragments"]
    host = section(bench, 7)
    assert all(rate > 0 for rate in host.values())


def test_simulator_heap_figures(bench):
    sim = section(bench, 8)
    st = sim["stages"]
    order = ["start", "asyncio", "firmware", "main", "board_shared", "sim_hw", "sim_board",
             "locker", "booted", "serving"]
    assert set(st) == set(order)
    # every import stage keeps something and interns names; the pools only grow
    for a, b in zip(order, order[1:6]):
        assert st[b]["alloc"] > st[a]["alloc"], (a, b, st)
    assert all(st[b]["names"] >= st[a]["names"] and st[b]["pools"] >= st[a]["pools"]
               for a, b in zip(order, order[1:]))
    assert st["booted"]["alloc"] < st["locker"]["alloc"]       # boot-only modules dropped
    assert st["serving"]["qstr_bytes"] < st["serving"]["alloc"]
    # the demo passes at the default SIM_HEAP and the bisection found a smaller or equal cap
    assert sim["demo_min_kb"] and sim["demo_min_kb"] <= sim["default_kb"]
    assert sim["demo_fails_kb"] is None or sim["demo_fails_kb"] < sim["demo_min_kb"]
    for heap, (now, total, peak) in sim["demo_heap"].items():
        assert 0 < now < total and 0 < peak <= total, (heap, now, peak, total)
        cap = 1024 * int(heap[:-1])       # -X heapsize: the collector's table comes off it
        assert 0.95 * cap <= total <= cap, (heap, total)
