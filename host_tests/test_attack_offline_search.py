"""Issue 11, the attack as an attacker runs it: capture a pickup, then search the code offline.

1. On the simulator (the real firmware on the MicroPython unix port): wrong guesses force the
   recipient's slot into its lockout; the recipient then tries the RIGHT code and is refused,
   while every frame is recorded.
2. In process: a complete, successful pickup is recorded.
3. A fake locker (the real firmware with another master secret, advertising the same id)
   collects what the recipient's phone sends it.
Each time an offline search runs over a reduced code space of 1000 codes that CONTAINS the
right one, with every check a passive attacker (or the fake locker, which also knows its own
secrets) can compute. It must find nothing to verify against: no candidate may stand out.

The checks are written from docs/protocol.md, not from the firmware:
- the version-1 PICKUP proof, HMAC(SHA256("LKR1/proof-key" | form | code), "LKR1/proof" |
  challenge | slot)[:16], recomputed for each candidate against each captured challenge;
- for a PAKE share pA = x*G + w*M: pA - w'*M for each candidate w', looked for anywhere else
  in the capture; and, for the fake locker that knows its own y, the whole SPAKE2 key
  schedule per candidate, its confirmation looked for in what the phone sent.
"""
import hashlib
import hmac
import struct

import pytest
from core import p256, phone, pickup_code
from lockerctl import rig
from lockerctl.client import LockerClient, LockerRefused
from test_e2e_sim import compiled_firmware, load_cred, locker, make_locker  # noqa: F401

PICKUP_V1 = 0x20


class Recorder:
    """A transport that keeps every (request, answer) pair it carries."""

    def __init__(self, inner):
        self.inner = inner
        self.frames = []

    def exchange(self, frame):
        answer = self.inner.exchange(frame)
        self.frames.append((bytes(frame), bytes(answer)))
        return answer

    @property
    def session(self):
        return getattr(self.inner, "session", None)


def candidates_around(code, n=1000):
    """n human codes of the same slot, the right one among them (last 3 digits vary)."""
    slot, _, digits = phone.parse(code)
    head = digits.decode()[:-3]
    return [(slot, (head + "%03d" % i).encode()) for i in range(n)]


def _v1_proof(material, challenge, slot):
    key = hashlib.sha256(b"LKR1/proof-key" + bytes((0,)) + material).digest()
    return hmac.new(key, b"LKR1/proof" + challenge + struct.pack(">H", slot),
                    hashlib.sha256).digest()[:16]


def offline_search(frames, cands, fake_secret=None):
    """Candidates that some offline check over the capture singles out."""
    hits = set()
    blob = b"".join(req + ans for req, ans in frames)
    challenges = [phone.parse_response(ans)[2] for _, ans in frames if len(ans) >= 19]
    for req, _ in frames:
        if len(req) == 21 and req[1] == PICKUP_V1:
            proof = req[5:21]
            for slot, material in cands:
                if any(_v1_proof(material, ch, slot) == proof for ch in challenges):
                    hits.add(material)
    shares = [req[5:70] for req, _ in frames if len(req) >= 70 and req[1] != PICKUP_V1]
    scalar = getattr(pickup_code, "password_scalar", None)
    if shares and scalar is not None:
        from core import spake2
        for pa in shares:
            try:
                pa_pt = p256.decode(pa)
            except p256.PointError:
                continue
            for slot, material in cands:
                w = scalar(pickup_code.FORM_HUMAN, slot, material)
                q = p256.add(pa_pt, p256.neg(p256.mul(w, spake2.M)))
                if not p256.is_infinity(q) and p256.encode(q)[1:33] in blob.replace(pa, b""):
                    hits.add(material)
                if fake_secret is not None:
                    for c in fake_secret(pa, w):
                        if c in blob:
                            hits.add(material)
    return hits


def test_locked_out_pickup_on_the_simulator_gives_nothing_to_search(locker):  # noqa: F811
    dep = locker.ok("deposit", "--credential", locker.courier(), "--size", "S")
    code = dep["code"]
    slot, _, digits = phone.parse(code)
    wrong = "%03d-%s" % (slot, "%010d" % ((int(digits) + 1) % 10 ** 10))
    attacker = locker.client()
    seen = []
    for _ in range(30):                      # the attacker's guesses until the lockout
        try:
            attacker.pickup(wrong)
        except LockerRefused as e:
            seen.append(e.name)
            if e.name == "locked-out":
                break
    else:
        pytest.fail("no lockout after 30 wrong guesses: %s" % seen)
    rec = Recorder(locker.client().transport)
    recipient = LockerClient(rec)
    with pytest.raises(LockerRefused) as e:
        recipient.pickup(code)               # the right code, refused: locked out
    assert e.value.name == "locked-out"
    assert rec.frames, "nothing was captured"
    assert offline_search(rec.frames, candidates_around(code)) == set()


def test_recorded_successful_pickup_gives_nothing_to_search(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    rec = Recorder(bench.client.transport)
    assert LockerClient(rec).pickup(dep.code)["slot"] == dep.slot
    assert offline_search(rec.frames, candidates_around(dep.code)) == set()


def test_fake_locker_collects_nothing_to_search(bench, tmp_path, monkeypatch):
    dep = bench.client.deposit(bench.courier(), size=1)
    # the impostor: real firmware, same locker id and layout, its own master secret, and a
    # parcel of its own in the same slot so it plays the whole protocol
    monkeypatch.setattr(rig, "MASTER", bytes(range(100, 132)))
    fake = rig.Bench(str(tmp_path / "fake"))
    fake_dep = fake.client.deposit(fake.courier(), size=1)
    assert fake_dep.slot == dep.slot
    rec = Recorder(fake.client.transport)
    with pytest.raises(LockerRefused):
        LockerClient(rec).pickup(dep.code)
    assert rec.frames, "the phone sent nothing"

    def fake_knows(pa, w):
        """Every confirmation value the impostor could expect for candidate w."""
        pake = getattr(rec.session, "pake_log", None) or []
        out = []
        from core import spake2
        for y, pb, aad, id_a, id_b in pake:
            try:
                _, ca, cb = spake2.run(spake2.ROLE_B, w, y, pb, pa, id_a, id_b, aad)
            except spake2.Spake2Error:
                continue
            out += [ca, ca[:16]]
        return out
    assert offline_search(rec.frames, candidates_around(dep.code), fake_knows) == set()
