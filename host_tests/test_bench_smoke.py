"""`make bench` works: a tiny run of tools/bench on the real MicroPython unix port.

Checks the structure of the report and relations the figures must satisfy (never timings):
the shipped verifier's hash count per attempt does not depend on occupancy while the naive
scan grows with it; one durable write per state change; compaction bounds replay."""
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
    for title in ("1. Pickup verification cost", "2. Durable writes", "3. Memory",
                  "4. Recovery", "5. Firmware size", "6. Protocol on the air",
                  "7. Host side throughput", "Summary"):
        assert "## " + title in out
    summary = out.split("## Summary")[1]
    for target in ("Pickup verification", "One durable write", "Bytes written", "RAM",
                   "Firmware size", "Boot/recovery"):
        assert target in summary
    assert summary.count("\n|") >= 10        # header, rule and one row per target


def test_shipped_verifier_cost_is_independent_of_occupancy_naive_grows(bench):
    rows = section(bench, 1)["rows"]
    occupancies = sorted({r["occupied"] for r in rows})
    skews = sorted({r["skew_buckets"] for r in rows})
    assert len(occupancies) >= 3 and len(skews) >= 2
    for k in skews:
        at_k = sorted((r for r in rows if r["skew_buckets"] == k), key=lambda r: r["occupied"])
        shipped = {r["shipped_wrong"]["hmacs"] for r in at_k}
        assert len(shipped) == 1, "shipped cost depends on occupancy: %s" % shipped
        naive = [r["naive_wrong"]["hmacs"] for r in at_k]
        assert naive == sorted(set(naive)), "naive scan must grow with occupancy"
        for r in at_k:
            # same work per candidate: the naive scan is the shipped cost once per slot
            assert r["naive_wrong"]["hmacs"] == r["occupied"] * r["shipped_wrong"]["hmacs"]
            # an HMAC is at least 4 compressions (two 64-byte pads + message + digest)
            assert r["shipped_wrong"]["compressions"] >= 4 * r["shipped_wrong"]["hmacs"]
            assert r["shipped_valid"]["hmacs"] <= r["shipped_wrong"]["hmacs"]
    by_k = {k: next(r["shipped_wrong"]["hmacs"] for r in rows if r["skew_buckets"] == k)
            for k in skews}
    assert by_k[skews[0]] < by_k[skews[-1]], "a wider window costs more candidates"
    requests = section(bench, 1)["requests"]
    assert all(q["ok"] for q in requests)
    assert len({q["hashes"]["hmacs"] for q in requests}) == 1


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
                assert used > 0 or (used == -1 and name.startswith("PAKE")), name
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
    assert m["min_heap"]["flow_empty"]["min_kb"] <= m["min_heap"]["flow_full"]["min_kb"]


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
