"""The patent's code algorithm (firmware/pickup_code.py) and its verifier (code_verifier.py).

The edges that matter to a recipient standing at the door: the time window (the coarse
buckets and the documented skew), expiry at exactly the TTL, binding to ONE occupancy of the
slot, and the round trip through the real locker, expired code included."""
import hashlib
import hmac
import os
import re
import struct
import tempfile
from types import SimpleNamespace

import pytest
from core import credentials, p256, phone, recipient
from core import pickup_code as pc
from core.code_verifier import (
    EXPIRED,
    GONE,
    OUT_OF_SERVICE,
    REOPEN,
    VALID,
    WRONG,
    CodeVerifier,
)
from core.slot_manager import (
    FREE,
    LEFT_CANCEL,
    LEFT_NONE,
    LEFT_PICKUP,
    LEFT_RECLAIM,
    LEFT_TECH,
    OCCUPIED,
    REOPEN_S,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lockerctl.client import LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench

T0 = 1767225600                      # 2026-01-01, a bucket boundary (divisible by 300)
HUMAN = re.compile(r"^\d{3}-\d{5}-\d{5}$")
MACHINE = re.compile(r"^\d{3}\.[0-9a-f]{32}$")

keys = st.binary(min_size=32, max_size=32)
slots = st.integers(1, 999)
gens = st.integers(0, 2 ** 32 - 1)
stamps = st.integers(0, 2 ** 32 - 1)
locker_ids = st.binary(min_size=8, max_size=8)


# ---- the algorithm as documented, re-derived with CPython's hmac --------------------

def reference_digits(key, locker_id, slot, gen, ts, bucket_s=pc.BUCKET_S):
    """The formula in pickup_code.py's header, written out independently."""
    msg = b"LKR1/pickup\x00" + locker_id + struct.pack(">HII", slot, gen, ts // bucket_s)
    tag = hmac.new(key, msg, hashlib.sha256).digest()
    return "%010d" % (int.from_bytes(tag[:8], "big") % 10 ** 10)


@settings(max_examples=100, deadline=None)
@given(keys, locker_ids, slots, gens, stamps)
def test_human_code_is_the_documented_formula(key, lid, slot, gen, ts):
    code = phone.human_code(key, lid, slot, gen, ts)
    assert HUMAN.match(code), code
    digits = reference_digits(key, lid, slot, gen, ts)
    assert code == "%03d-%s-%s" % (slot, digits[:5], digits[5:])
    # deterministic: the phone and the locker compute it apart, and must agree
    assert phone.human_code(key, lid, slot, gen, ts) == code


@settings(max_examples=50, deadline=None)
@given(keys, locker_ids, slots, gens, stamps)
def test_machine_code_is_a_128_bit_token(key, lid, slot, gen, ts):
    code = phone.machine_code(key, lid, slot, gen, ts)
    assert MACHINE.match(code), code
    msg = b"LKR1/pickup\x01" + lid + struct.pack(">HII", slot, gen, ts // pc.BUCKET_S)
    assert code[4:] == hmac.new(key, msg, hashlib.sha256).digest()[:16].hex()


# ---- parse(): what a recipient types or scans ------------------------------------

@settings(max_examples=100, deadline=None)
@given(keys, slots, gens, stamps)
def test_parse_round_trips_both_forms(key, slot, gen, ts):
    human = phone.human_code(key, LOCKER_ID, slot, gen, ts)
    assert phone.parse(human) == (slot, pc.FORM_HUMAN, human.replace("-", "")[3:].encode())
    # typed with spaces or no separators, with stray whitespace around it
    assert phone.parse(" " + human.replace("-", " ") + "\n") == phone.parse(human)
    assert phone.parse(human.replace("-", "")) == phone.parse(human)
    machine = phone.machine_code(key, LOCKER_ID, slot, gen, ts)
    assert phone.parse(machine) == (slot, pc.FORM_MACHINE, bytes.fromhex(machine[4:]))
    assert phone.parse(machine.upper()) == phone.parse(machine)


@pytest.mark.parametrize("text", [
    "", "   ", "017-48219-9301", "017-48219-930155", "000-48219-93015", "O17-48219-93015",
    "017-48219-9301x", "017.", "017.abc", "017." + "0" * 31, "017." + "0" * 33,
    "017." + "g" * 32, "000." + "0" * 32, ".%s" % ("0" * 32), "x17." + "0" * 32,
    "²²²-²²²²²-²²²²²", "٠١٧-٤٨٢١٩-٩٣٠١٥", "017.00 11 2233445566778899aabbccddee",
    "1000." + "0" * 32,
])
def test_parse_rejects_bad_codes_cleanly(text):
    with pytest.raises(phone.CodeFormatError):
        phone.parse(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789- .abcdefABCDEF\u00b2\u0663 \t", max_size=40)))
def test_parse_never_fails_any_other_way(text):
    """Anything a person can type gives a code or a CodeFormatError, nothing else."""
    try:
        slot, form, material = phone.parse(text)
    except phone.CodeFormatError as e:
        assert str(e)
        return
    assert 1 <= slot <= 999
    if form == pc.FORM_HUMAN:
        assert len(material) == pc.SECRET_DIGITS and material.isdigit()
    else:
        assert form == pc.FORM_MACHINE and len(material) == pc.TOKEN_BYTES


# ---- what changes the code -------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(keys, keys, locker_ids, locker_ids, slots, slots, gens, stamps)
def test_each_input_changes_the_code(k1, k2, lid1, lid2, s1, s2, gen, ts):
    b = ts // pc.BUCKET_S
    base = pc.secret_material(k1, pc.FORM_MACHINE, lid1, s1, gen, b)
    if k2 != k1:
        assert pc.secret_material(k2, pc.FORM_MACHINE, lid1, s1, gen, b) != base
    if lid2 != lid1:
        assert pc.secret_material(k1, pc.FORM_MACHINE, lid2, s1, gen, b) != base
    if s2 != s1:
        assert pc.secret_material(k1, pc.FORM_MACHINE, lid1, s2, gen, b) != base
    assert pc.secret_material(k1, pc.FORM_MACHINE, lid1, s1, (gen + 1) % 2 ** 32, b) != base
    assert pc.secret_material(k1, pc.FORM_MACHINE, lid1, s1, gen, b + 1) != base


def test_different_courier_locker_or_slot_gives_a_different_human_code():
    key = bytes(32)
    code = phone.human_code(key, LOCKER_ID, 17, 3, T0)
    assert phone.human_code(b"\x01" + bytes(31), LOCKER_ID, 17, 3, T0) != code
    assert phone.human_code(key, b"\xff" + LOCKER_ID[1:], 17, 3, T0) != code
    assert phone.human_code(key, LOCKER_ID, 18, 3, T0)[4:] != code[4:]
    assert phone.human_code(key, LOCKER_ID, 17, 4, T0) != code
    assert phone.human_code(key, LOCKER_ID, 17, 3, T0 + pc.BUCKET_S) != code
    assert phone.human_code(key, LOCKER_ID, 17, 3, T0 + pc.BUCKET_S - 1) == code


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=10, max_size=10), slots)
def test_password_scalar_changes_with_the_slot_form_and_code(material, slot):
    w = pc.password_scalar(pc.FORM_HUMAN, slot, material)
    assert 0 < w < p256.N and w == pc.password_scalar(pc.FORM_HUMAN, slot, material)
    assert pc.password_scalar(pc.FORM_HUMAN, slot % 999 + 1, material) != w
    assert pc.password_scalar(pc.FORM_MACHINE, slot, material) != w
    assert pc.password_scalar(pc.FORM_HUMAN, slot, material[::-1] + b"x") != w


# ---- the verifier's window and expiry, without a locker around it -------------------

COURIER = credentials.Credential(credentials.COURIER, b"courier-1", 1, T0 - 86400, T0 + 86400)
COURIER_KEY = COURIER.key(MASTER, LOCKER_ID)


def occupied(sid=17, gen=5, deposit_ts=T0 + 123, cred=COURIER):
    return SimpleNamespace(sid=sid, gen=gen, deposit_ts=deposit_ts, state=OCCUPIED,
                           out_of_service=False, cred=cred.encode(), released_ts=0,
                           released_by=LEFT_NONE)


def verifier(bucket_s=pc.BUCKET_S, ttl_s=pc.TTL_S):
    return CodeVerifier(MASTER, LOCKER_ID, bucket_s, ttl_s)


def attempt(v, slot, code, now):
    """What a PAKE run with this code would conclude: the locker's verdict if the phone's
    password equals the locker's (the SPAKE2 confirmations then verify), else WRONG.
    (test_pake_confirms_only_the_right_code runs the SPAKE2 itself.)"""
    sid, form, material = phone.parse(code)
    assert sid == slot.sid
    verdict, w = v.password(slot, form, now, os.urandom)
    if verdict != WRONG and w == pc.password_scalar(form, sid, material):
        return verdict
    return WRONG


@settings(max_examples=100, deadline=None)
@given(deposit_ts=st.integers(10 ** 6, 2 ** 31), bucket_s=st.sampled_from([60, 300, 900]),
       data=st.data())
def test_codes_from_any_time_in_the_locker_bucket_verify(deposit_ts, bucket_s, data):
    """The phone gets the locker's own deposit_ts: any time in that bucket gives the code."""
    slot = occupied(deposit_ts=deposit_ts)
    v = verifier(bucket_s)
    inside = data.draw(st.integers(0, bucket_s - 1), label="second in bucket")
    phone_ts = (deposit_ts // bucket_s) * bucket_s + inside
    for make in (phone.human_code, phone.machine_code):
        code = make(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, phone_ts, bucket_s)
        assert attempt(v, slot, code, deposit_ts) == VALID


@settings(max_examples=100, deadline=None)
@given(deposit_ts=st.integers(10 ** 6, 2 ** 31), bucket_s=st.sampled_from([60, 300, 900]),
       sign=st.sampled_from([-1, 1]), beyond=st.integers(1, 5), inside=st.integers(0, 899))
def test_codes_from_another_bucket_do_not_verify(deposit_ts, bucket_s, sign, beyond, inside):
    slot = occupied(deposit_ts=deposit_ts)
    v = verifier(bucket_s)
    phone_ts = (deposit_ts // bucket_s + sign * beyond) * bucket_s + inside % bucket_s
    code = phone.machine_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, phone_ts, bucket_s)
    assert attempt(v, slot, code, deposit_ts) == WRONG


def test_window_edges_with_the_shipped_settings():
    slot = occupied(deposit_ts=T0 + 150)      # middle of the bucket starting at T0
    v = verifier()
    assert pc.SKEW_BUCKETS == 0
    first_ok = T0
    last_ok = T0 + pc.BUCKET_S - 1
    for ts, want in ((first_ok - 1, WRONG), (first_ok, VALID), (last_ok, VALID),
                     (last_ok + 1, WRONG)):
        code = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, ts)
        assert attempt(v, slot, code, T0 + 150) == want, ts - T0


def test_expiry_is_at_exactly_the_ttl():
    slot = occupied()
    v = verifier()
    code = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, slot.deposit_ts)
    assert attempt(v, slot, code, slot.deposit_ts + pc.TTL_S) == VALID
    assert attempt(v, slot, code, slot.deposit_ts + pc.TTL_S + 1) == EXPIRED
    wrong = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen + 1, slot.deposit_ts)
    assert attempt(v, slot, wrong, slot.deposit_ts + pc.TTL_S + 1) == WRONG


@settings(max_examples=50, deadline=None)
@given(gen=st.integers(0, 2 ** 32 - 2), ts=st.integers(10 ** 6, 2 ** 31))
def test_code_is_bound_to_one_occupancy(gen, ts):
    """The next parcel in the same slot (generation + 1) is not opened by the old code."""
    old = phone.human_code(COURIER_KEY, LOCKER_ID, 17, gen, ts)
    v = verifier()
    assert attempt(v, occupied(gen=gen, deposit_ts=ts), old, ts) == VALID
    assert attempt(v, occupied(gen=gen + 1, deposit_ts=ts), old, ts) == WRONG


def test_a_right_code_is_told_the_truth_and_only_a_wrong_one_is_wrong():
    """Issue 12.4: the right code of a parcel in an out-of-service slot, or of a parcel that
    has left, is not a wrong code (no strike is charged for it)."""
    slot = occupied()
    code = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, slot.deposit_ts)
    v = verifier()
    assert attempt(v, slot, code, slot.deposit_ts) == VALID
    slot.out_of_service = True
    assert attempt(v, slot, code, slot.deposit_ts) == OUT_OF_SERVICE
    assert attempt(v, slot, code, slot.deposit_ts + pc.TTL_S + 1) == OUT_OF_SERVICE
    slot.out_of_service = False
    slot.state, slot.released_ts, slot.released_by = FREE, slot.deposit_ts + 5, LEFT_CANCEL
    assert attempt(v, slot, code, slot.deposit_ts + 6) == GONE
    other = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen + 1, slot.deposit_ts)
    assert attempt(v, slot, other, slot.deposit_ts + 6) == WRONG


@pytest.mark.parametrize("how, want", [(LEFT_PICKUP, REOPEN), (LEFT_CANCEL, GONE),
                                       (LEFT_RECLAIM, GONE), (LEFT_TECH, GONE),
                                       (LEFT_NONE, GONE)])
def test_used_code_reopens_only_the_door_its_own_pickup_emptied(how, want):
    """ADR 0004 / issue 11.6: same occupancy, slot FREE, at most REOPEN_S after release, and
    only if a PICKUP emptied it: after a cancel, reclaim or technician clear there is nothing
    of the recipient's inside, so the door stays shut and the answer says the parcel left."""
    slot = occupied()
    code = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, slot.deposit_ts)
    v = verifier()
    slot.state, slot.released_ts, slot.released_by = FREE, slot.deposit_ts + 600, how
    assert attempt(v, slot, code, slot.released_ts) == want
    assert attempt(v, slot, code, slot.released_ts + REOPEN_S) == want
    assert attempt(v, slot, code, slot.released_ts + REOPEN_S + 1) == GONE
    expired_at = slot.deposit_ts + pc.TTL_S + 1                 # even an expired code
    slot.released_ts = expired_at
    assert attempt(v, slot, code, expired_at + 1) == want
    slot.gen += 1                      # a new parcel went in (and out) since
    assert attempt(v, slot, code, slot.released_ts + 1) == WRONG


def test_pake_confirms_only_the_right_code():
    """The real SPAKE2 run behind attempt(): the phone's cA equals the locker's expected one
    exactly when the codes agree, and the phone sees the locker's cB fail otherwise."""
    slot = occupied()
    code = phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, slot.deposit_ts)
    v = verifier()
    for typed, ok in ((code, True), (code[:-1] + str((int(code[-1]) + 1) % 10), False)):
        sid, form, material = phone.parse(typed)
        pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, os.urandom)
        _, w = v.password(slot, form, slot.deposit_ts, os.urandom)
        pb, cb, expect_a, ke = pc.locker_reply(w, 12345, sid, form, LOCKER_ID, pake.share)
        if ok:
            assert pake.finish(pb, cb) == expect_a and pake.key == ke
        else:
            with pytest.raises(recipient.CodeMismatch):
                pake.finish(pb, cb)


def test_verification_cost_does_not_depend_on_occupancy_or_the_code():
    v = verifier()
    for sid in (1, 500, 999):
        slot = occupied(sid=sid)
        attempt(v, slot, "%03d-00000-00000" % sid, slot.deposit_ts)
    assert v.passwords_derived == 3


# ---- round trip through the real locker --------------------------------------------

def test_round_trip_through_the_locker_opens_the_slot_from_the_code(bench):
    cred = bench.courier()
    dep = bench.client.deposit(cred, size=1)
    assert HUMAN.match(dep.code) and int(dep.code[:3]) == dep.slot
    # the phone's code is the one the documented formula gives for the locker's answer
    assert dep.code.replace("-", "")[3:] == reference_digits(
        cred.key, LOCKER_ID, dep.slot, dep.generation, dep.deposit_ts)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    assert bench.client.pickup(dep.code)["slot"] == dep.slot
    assert bench.locker.slots.get(dep.slot).state == FREE


def test_code_still_works_at_the_ttl_through_the_locker(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.time.advance(dep.deposit_ts + dep.ttl_s - bench.locker.clock.now())
    assert bench.locker.clock.now() == dep.expires_at
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def test_expired_code_is_told_apart_and_costs_no_strike(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.time.advance(dep.ttl_s + 1)
    budget = bench.locker.throttle.to_list()
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(dep.code)
    assert e.value.name == "code-expired"
    assert bench.locker.throttle.to_list() == budget             # the right code is no guess
    assert bench.locker.throttle.retry_after(dep.slot, bench.locker.clock.now()) == 0
    assert bench.locker.slots.get(dep.slot).state == OCCUPIED     # for the courier to reclaim
    # still expired after a reboot: the clock floor does not let it come back
    bench.time.rtc -= 2 * dep.ttl_s
    bench.boot()
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(dep.machine_code)
    assert e.value.name == "code-expired"


def test_old_code_does_not_open_the_next_parcel_in_the_same_slot(tmp_path):
    bench = Bench(str(tmp_path / "s"), layout="S")
    first = bench.client.deposit(bench.courier(), size=1)
    bench.client.pickup(first.code)
    bench.run_hardware()
    bench.driver.close(first.slot)
    bench.run_hardware()
    second = bench.client.deposit(bench.courier(), size=1)
    assert second.slot == first.slot and second.generation == first.generation + 1
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(first.code)
    assert e.value.name == "wrong-code"
    assert bench.client.pickup(second.code)["slot"] == second.slot


@settings(max_examples=15, deadline=None)
@given(wait=st.integers(0, 3 * 86400), machine=st.booleans())
def test_round_trip_property_open_until_ttl_then_expired(wait, machine):
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(d + "/s")
        dep = bench.client.deposit(bench.courier(), size=2)
        bench.time.advance(wait)
        code = dep.machine_code if machine else dep.code
        if bench.locker.clock.now() <= dep.expires_at:
            assert bench.client.pickup(code)["slot"] == dep.slot
        else:
            with pytest.raises(LockerRefused) as e:
                bench.client.pickup(code)
            assert e.value.name == "code-expired"
        assert bench.locker.throttle.to_list() == [0, []]      # right codes spend nothing


def test_ttl_is_configurable(make_bench):
    bench = make_bench(ttl_s=3600)
    dep = bench.client.deposit(bench.courier(), size=1)
    assert dep.ttl_s == 3600
    bench.time.advance(3601)
    with pytest.raises(LockerRefused) as e:
        bench.client.pickup(dep.code)
    assert e.value.name == "code-expired"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10 ** 10 - 1))
def test_a_guess_is_wrong_unless_it_is_one_of_the_window_codes(guess):
    slot = occupied()
    valid = {phone.human_code(COURIER_KEY, LOCKER_ID, slot.sid, slot.gen, slot.deposit_ts)}
    code = "017-%05d-%05d" % divmod(guess, 10 ** 5)
    assume(code not in valid)
    assert attempt(verifier(), slot, code, slot.deposit_ts) == WRONG
