"""The in-place reads of issue 14 on the 32-bit VM (the ESP32's word size: Unix times are big
ints there, and `int.to_bytes`, `struct.unpack_from`, `bytes.rfind` are MicroPython's own)
give the verdicts their plain CPython references give (host_tests/test_in_place_reads.py,
test_store.py): expiry on the packed column up to the u32 end, journal lines (MAC digits in
either case, edited, cut), Reader reads at and past the end, the clock. Cases are drawn with
a fixed seed plus the boundaries; skipped with the reason without Node or npm."""
import json
import random

import pytest
from core import store as S
from lockerctl import firmware, mp32
from test_in_place_reads import _MAX_TIME, _STEP, U32, _PlainClock, _plain_read
from test_store import KEY, _plain_decode

SCRIPT = r'''
import json, struct, sys
from core.slot_manager import SlotManager, expiry_limit
from core import store as S
from core import store_recover as SR
from core import protocol as P
from core.clock import LockerClock
cases = json.load(open("/t/cases.json"))
out = {"expiry": [], "lines": [], "reader": [], "clock": []}
sm = SlotManager([1])
for d, now, ttl in cases["expiry"]:
    struct.pack_into(">I", sm.deposit_ts, 0, d)
    out["expiry"].append(sm.deposited_before(0, expiry_limit(now, ttl)))
key = bytes.fromhex(cases["key"])
for line in cases["lines"]:
    got = SR.decode_line(key, S.GENESIS, bytes.fromhex(line))
    out["lines"].append(None if got is None else [got[0], got[1].hex()])
for buf, pos, kinds in cases["reader"]:
    r = P.Reader(bytes.fromhex(buf), pos)
    got = []
    for k in kinds:
        at = r.pos
        try:
            got.append(getattr(r, k)())
        except P.ProtocolError as e:
            got.append(["E_LENGTH", at] if e.status == P.E_LENGTH and r.pos == at else "bad")
            break
    out["reader"].append(got)
for floor, rtc0, steps in cases["clock"]:
    s = {"up": 0, "rtc": rtc0}
    c = LockerClock(lambda: s["rtc"], lambda: s["up"], floor)
    seen = []
    for op, up, value in steps:
        s["up"] += up
        if op == "now":
            s["rtc"] = value
            seen.append(c.now())
        elif op == "floor":
            c.raise_floor(value)
            seen.append(c.now())
        else:
            seen.append(c.advance_to(value))
        seen.append([c.rtc_refused, c._last])
    out["clock"].append(seen)
print("RESULT " + json.dumps(out))
'''


def _cases(rng):
    edges = [0, 1, 2, 255, 256, 65535, 65536, 2 ** 24, 2 ** 30 - 1, 2 ** 30, 2 ** 31 - 1, 2 ** 31,
             _MAX_TIME, U32 - 1, U32]
    pick = lambda: rng.choice(edges) if rng.random() < 0.4 else rng.randrange(U32 + 1)  # noqa
    expiry = []
    for _ in range(400):
        d, ttl = pick(), max(1, pick())
        now = rng.choice([pick(), min(U32, max(0, d + ttl + rng.randint(-2, 2)))])
        expiry.append([d, now, ttl])
    lines = []
    for i in range(150):
        line = bytearray(S.encode_line(KEY, S.GENESIS, {"e": "x", "n": i, "t": pick()})[0])
        tab = line.rfind(b"\t")
        if i % 3 == 0:
            line[tab + 1:-1] = bytes(line[tab + 1:-1]).upper()
        if i % 5 == 1:
            line[rng.randrange(len(line))] = rng.randrange(256)
        if i % 7 == 2:
            line = line[:rng.randrange(len(line))]
        lines.append(bytes(line).hex())
    reader = [[bytes(rng.randrange(256) for _ in range(rng.randrange(10))).hex(),
               rng.randrange(12), [rng.choice(["u8", "u16", "u32"]) for _ in range(5)]]
              for _ in range(200)]
    clock = []
    for _ in range(60):
        steps = []
        for _ in range(12):
            op = rng.choice(["now", "now", "floor", "advance"])
            value = rng.choice([rng.randrange(-2 ** 33, 2 ** 33), rng.randrange(0, 2 * 86400),
                                _STEP, _STEP + 1, _MAX_TIME, _MAX_TIME + 1, U32])
            if op != "now":
                value = abs(value) % ((_MAX_TIME if op == "floor" else U32) + 1)
            steps.append([op, rng.randrange(10 ** 6), value])
        clock.append([rng.choice([0, rng.randrange(_MAX_TIME)]), rng.randrange(U32 + 1), steps])
    return {"key": KEY.hex(), "expiry": expiry, "lines": lines, "reader": reader,
            "clock": clock}


def _expected(cases):
    want = {"expiry": [now > d + ttl for d, now, ttl in cases["expiry"]], "lines": [],
            "reader": [], "clock": []}
    for line in cases["lines"]:
        got = _plain_decode(KEY, S.GENESIS, bytes.fromhex(line))
        want["lines"].append(None if got is None else [got[0], got[1].hex()])
    for buf, pos, kinds in cases["reader"]:
        want["reader"].append([list(v) if isinstance(v, tuple) else v
                               for v in _plain_read(bytes.fromhex(buf), pos, kinds)])
    for floor, rtc0, steps in cases["clock"]:
        s = {"up": 0, "rtc": rtc0}
        c = _PlainClock(lambda: s["rtc"], lambda: s["up"], floor)
        seen = []
        for op, up, value in steps:
            s["up"] += up
            if op == "now":
                s["rtc"] = value
                seen.append(c.now())
            elif op == "floor":
                c.raise_floor(value)
                seen.append(c.now())
            else:
                seen.append(c.advance_to(value))
            seen.append([c.rtc_refused, c._last])
        want["clock"].append(seen)
    return want


def test_in_place_reads_on_the_32_bit_vm_agree_with_the_plain_arithmetic(tmp_path):
    try:
        mp32.ensure()
    except mp32.Unavailable as e:
        pytest.skip("32-bit VM unavailable: %s" % e)
    fw = tmp_path / "fw"
    firmware.compile_tree(str(fw), "sim")
    tree = tmp_path / "t"
    tree.mkdir()
    cases = _cases(random.Random(14))
    (tree / "cases.json").write_text(json.dumps(cases))
    script = tree / "in_place_reads.py"
    script.write_text(SCRIPT)
    got = mp32.run_json(str(script), [], [(str(fw), "/fw"), (str(tree), "/t")])
    want = _expected(cases)
    for part in ("expiry", "lines", "reader", "clock"):
        bad = [(c, g, w) for c, g, w in zip(cases[part], got[part], want[part]) if g != w]
        assert len(got[part]) == len(want[part]) and not bad, (part, bad[:3])
    assert sum(want["expiry"]) and sum(1 for x in want["lines"] if x)      # both verdicts seen
    assert any(U32 in c for c in cases["expiry"])                          # the u32 end (2106)
