# Runs ON MicroPython (unix port, ESP32-sized heap): the firmware's group and PAKE modules,
# compiled to .mpy, against RFC 9382's SPAKE2 vectors and P-256 point vectors computed by an
# independent library on the host (host_tests/test_p256.py writes them).
# usage: micropython -X heapsize=100k pake_check.py <mpy dir> <rfc9382.json> <points.json>
# Prints one JSON line: {"checked": n, "failures": [...], "mem_peak": .., "ms": ..}.
import gc
import json
import sys
import time

sys.path.insert(0, sys.argv[1])

from core import p256
from core import spake2 as S

checked = 0
failures = []


def check(name, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append("%s: got %s want %s" % (name, got, want))


u = bytes.fromhex
t0 = time.ticks_ms()
with open(sys.argv[2]) as f:
    cases = json.load(f)["cases"]
for c in cases:
    gc.collect()
    name = "A=%r B=%r " % (c["A"], c["B"])
    w, x, y = int(c["w"], 16), int(c["x"], 16), int(c["y"], 16)
    pa = S.share(S.ROLE_A, w, x)
    pb = S.share(S.ROLE_B, w, y)
    check(name + "pA", pa.hex(), c["pA"])
    check(name + "pB", pb.hex(), c["pB"])
    k = S.shared_element(S.ROLE_A, w, x, pb)
    check(name + "K (A)", k.hex(), c["K"])
    check(name + "K (B)", S.shared_element(S.ROLE_B, w, y, pa).hex(), c["K"])
    a, b = c["A"].encode(), c["B"].encode()
    tt = S.transcript(a, b, pa, pb, k, w)
    check(name + "TT", tt.hex(), c["TT"])
    ke, kca, kcb = S.key_schedule(tt)
    check(name + "Ke KcA KcB", (ke.hex(), kca.hex(), kcb.hex()), (c["Ke"], c["KcA"], c["KcB"]))
    check(name + "run A", S.run(S.ROLE_A, w, x, pa, pb, a, b),
          (ke, u(c["A_conf"]), u(c["B_conf"])))
    check(name + "run B", S.run(S.ROLE_B, w, y, pb, pa, a, b),
          (ke, u(c["B_conf"]), u(c["A_conf"])))

with open(sys.argv[3]) as f:
    points = json.load(f)
for v in points["mul"]:
    check("k*G k=" + v["k"][:8], p256.encode(p256.mul(int(v["k"], 16), p256.G)).hex(), v["kG"])
for v in points["decode"]:
    try:
        got = p256.encode(p256.decode(u(v["in"]))).hex()
    except p256.PointError:
        got = "PointError"
    check("decode " + v["in"][:10], got, v["out"])
check("n*G is the neutral element", p256.is_infinity(p256.mul(p256.N - 1, p256.G)), False)
check("P + (-P)", p256.is_infinity(p256.add(p256.G, p256.neg(p256.G))), True)
gc.collect()
print(json.dumps({"checked": checked, "failures": failures,
                  "ms": time.ticks_diff(time.ticks_ms(), t0)}))
