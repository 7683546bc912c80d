"""Scoped courier credentials, and what a leaked one or a captured frame cannot do.

PRODUCT.md: the master secret never leaves the locker; couriers hold scoped credentials that
expire and can be revoked; a leaked courier credential cannot open others' parcels; nothing
captured over the air can be replayed to deposit or to open a slot."""
import os
import struct
import tempfile

import pytest
from core import credentials, kdf, phone, recipient
from core import protocol as P
from core.slot_manager import OCCUPIED
from hypothesis import given, settings
from hypothesis import strategies as st
from lockerctl import operator as op
from lockerctl.client import DirectTransport, LockerClient, LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench, slot_rows

holders = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=16)


def hello(bench, session):
    answer = bench.locker.handle(session, P.request(P.HELLO))
    assert answer[2] == P.OK
    return answer[3:3 + P.CHALLENGE_LEN]


def deposit_frame(cred, challenge, req_id=b"R" * 8, size=1, block=None):
    body = (cred.block if block is None else block) + req_id + bytes((size,))
    return phone.sign(P.request(P.DEPOSIT, body), cred.key, challenge)


def status_of(answer):
    return answer[2]


def durable_view(bench):
    """Everything that persists: the slots, the throttle, and the bytes on 'flash'."""
    files = {}
    for name in sorted(os.listdir(bench.folder)):
        with open(os.path.join(bench.folder, name), "rb") as f:
            files[name] = f.read()
    return slot_rows(bench.locker.slots), list(bench.locker.throttle.to_list()), files


def refused(call, name):
    with pytest.raises(LockerRefused) as e:
        call()
    assert e.value.name == name, e.value
    return e.value


# ---- a leaked courier credential cannot open parcels deposited by others --------------

@settings(max_examples=20, deadline=None)
@given(a=holders, b=holders, sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       pick=st.integers(0, 3), wait=st.integers(0, 3 * 86400))
def test_courier_a_cannot_open_courier_b_parcel(a, b, sizes, pick, wait):
    if a == b:
        b = b + "x" if len(b) < 16 else "other"
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(d + "/s", layout="S*3,M*3,L*3")
        cred_a = bench.courier(holder=a, serial=1)
        cred_b = bench.courier(holder=b, serial=2)
        deps = [bench.client.deposit(cred_b, size=s) for s in sizes]
        target = deps[pick % len(deps)]
        bench.time.advance(wait)
        # A computes codes for B's slot, generation and timestamp with A's own key
        forged = [phone.human_code(cred_a.key, LOCKER_ID, target.slot, target.generation,
                                   target.deposit_ts),
                  phone.machine_code(cred_a.key, LOCKER_ID, target.slot, target.generation,
                                     target.deposit_ts)]
        for code in forged:
            refused(lambda: bench.client.pickup(code), "wrong-code")
        # nor with B's request id (sent in clear in B's deposit request): not A's deposit
        refused(lambda: bench.client.cancel(cred_a, target.request_id), "wrong-state")
        if bench.locker.clock.now() > target.expires_at:
            refused(lambda: bench.client.reclaim(cred_a, target.slot), "wrong-state")
        assert bench.locker.slots.get(target.slot).state == OCCUPIED
        # the parcel is still B's recipient's: the genuine code works (before the TTL)
        if bench.locker.clock.now() <= target.expires_at:
            bench.time.advance(bench.locker.throttle.retry_after(target.slot,
                                                                 bench.locker.clock.now()))
            assert bench.client.pickup(target.code)["slot"] == target.slot


def test_reclaim_any_scope_is_what_lets_a_depot_courier_take_others_expired_parcels(bench):
    owner = bench.courier(holder="owner", serial=1)
    depot = bench.courier(holder="depot", serial=2, flags=credentials.SCOPE_RECLAIM_ANY)
    plain = bench.courier(holder="plain", serial=3)
    dep = bench.client.deposit(owner, size=1)
    refused(lambda: bench.client.reclaim(depot, dep.slot), "wrong-state")   # not yet expired
    bench.time.advance(dep.ttl_s + 1)
    refused(lambda: bench.client.reclaim(plain, dep.slot), "wrong-state")
    assert bench.client.reclaim(depot, dep.slot) == dep.slot


# ---- expiry, revocation, kind ------------------------------------------------------

def test_credential_works_until_not_after_and_is_refused_after(bench):
    cred = bench.courier(valid_s=3600)
    bench.time.advance(3600)
    bench.client.deposit(cred, size=1)
    bench.time.advance(1)
    e = refused(lambda: bench.client.deposit(cred, size=1), "credential-refused")
    assert "expired" in e.message


def test_revoked_credential_is_refused_even_after_reboot(bench):
    leaked = bench.courier(holder="leaked", serial=7)
    other = bench.courier(holder="other", serial=8)
    bench.client.deposit(leaked, size=1)
    not_after = leaked.credential.not_after
    seq = 1
    assert bench.client.admin(op.revoke_message(MASTER, LOCKER_ID, seq, 7, not_after))[:2] == (
        P.ADMIN_REVOKE, seq)
    for _ in range(2):
        e = refused(lambda: bench.client.deposit(leaked, size=1), "credential-refused")
        assert "revoked" in e.message
        refused(lambda: bench.client.status(leaked), "credential-refused")
        bench.client.deposit(other, size=1)          # only serial 7 is affected
        bench.boot()


def test_revoke_message_replayed_or_forged_is_refused(bench):
    blob = op.revoke_message(MASTER, LOCKER_ID, 5, 7, 2 ** 32 - 1)
    bench.client.admin(blob)
    refused(lambda: bench.client.admin(blob), "replayed")
    refused(lambda: bench.client.admin(op.revoke_message(MASTER, LOCKER_ID, 4, 9, 2 ** 31)),
            "replayed")
    other_master = bytes(32)
    refused(lambda: bench.client.admin(op.revoke_message(other_master, LOCKER_ID, 6, 9, 2 ** 31)),
            "bad-mac")
    other_locker = b"\x00" * 8
    refused(lambda: bench.client.admin(op.revoke_message(MASTER, other_locker, 6, 9, 2 ** 31)),
            "bad-mac")
    tampered = bytearray(op.revoke_message(MASTER, LOCKER_ID, 6, 9, 2 ** 31))
    tampered[-20] ^= 1                               # the serial being revoked
    refused(lambda: bench.client.admin(bytes(tampered)), "bad-mac")
    bench.client.deposit(bench.courier(serial=9), size=1)   # 9 was never revoked


def test_credential_of_the_wrong_kind_is_refused(bench):
    courier = bench.courier()
    tech = bench.technician()
    dep = bench.client.deposit(courier, size=1)
    refused(lambda: bench.client.tech_open(courier, dep.slot), "not-permitted")
    refused(lambda: bench.client.deposit(tech, size=1), "not-permitted")
    refused(lambda: bench.client.cancel(tech, dep.request_id), "not-permitted")
    refused(lambda: bench.client.reclaim(tech, dep.slot), "not-permitted")
    refused(lambda: bench.client.audit_page(courier), "not-permitted")
    assert bench.client.audit_page(bench.courier(serial=2, flags=credentials.SCOPE_AUDIT))
    assert bench.client.tech_open(tech, dep.slot)["slot"] == dep.slot
    assert bench.locker.slots.get(dep.slot).state == OCCUPIED      # open-only keeps the parcel


def test_credential_for_another_locker_is_refused(bench):
    elsewhere = op.issue(MASTER, b"\x00" * 8, credentials.COURIER, "c", 1, 3600,
                         now=bench.time.rtc)
    # its key is derived for the other locker id: the MAC cannot verify here
    refused(lambda: bench.client.deposit(elsewhere, size=1), "bad-mac")


# ---- malformed and tampered credential blocks ---------------------------------------

def block(kind=credentials.COURIER, flags=0, serial=1, issued=1767225600,
          until=1767225600 + 86400, holder=b"courier-1", hlen=None):
    return struct.pack(">BBIIIB", kind, flags, serial, issued, until,
                       len(holder) if hlen is None else hlen) + holder


@pytest.mark.parametrize("bad", [
    b"",                                   # nothing at all
    block()[:10],                          # truncated header
    block(kind=0), block(kind=3), block(kind=255),
    block(holder=b"", hlen=0),             # empty holder
    block(holder=b"x" * 17),               # holder longer than MAX_HOLDER
    block(hlen=12),                        # holder length beyond the frame
    block(issued=2000, until=1000),        # expires before it is issued
])
def test_malformed_credential_block_gets_a_clean_error_and_changes_nothing(bench, bad):
    cred = bench.courier()
    session = bench.locker.new_session()
    challenge = hello(bench, session)
    before = durable_view(bench)
    frame = phone.sign(P.request(P.DEPOSIT, bad + b"R" * 8 + b"\x01"), cred.key, challenge)
    answer = bench.locker.handle(session, frame)
    assert status_of(answer) in (P.E_LENGTH, P.E_CREDENTIAL, P.E_AUTH, P.E_VALUE)
    retry, message = phone.parse_error(answer[3 + P.CHALLENGE_LEN:])
    assert message
    assert durable_view(bench) == before
    assert bench.driver.pulses == []


def test_credential_decoder_reports_each_fault():
    with pytest.raises(credentials.CredentialError, match="truncated"):
        credentials.decode(block()[:14])
    with pytest.raises(credentials.CredentialError, match="kind"):
        credentials.decode(block(kind=9))
    with pytest.raises(credentials.CredentialError, match="holder"):
        credentials.decode(block(hlen=0, holder=b""))
    with pytest.raises(credentials.CredentialError, match="before"):
        credentials.decode(block(issued=5, until=4))
    cred, end = credentials.decode(b"xx" + block(), 2)
    assert end == 2 + len(block()) and cred.holder == b"courier-1"
    assert cred.encode() == block()


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 200), mask=st.integers(1, 255))
def test_tampering_any_byte_of_the_block_breaks_the_mac(index, mask):
    """The phone holds the key of ONE block: changing who, what or until when kills it."""
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(d + "/s")
        cred = bench.courier(holder="courier-1", valid_s=3600)
        i = index % len(cred.block)
        forged = bytearray(cred.block)
        forged[i] ^= mask
        session = bench.locker.new_session()
        before = durable_view(bench)
        answer = bench.locker.handle(
            session, deposit_frame(cred, hello(bench, session), block=bytes(forged)))
        assert status_of(answer) in (P.E_AUTH, P.E_LENGTH, P.E_CREDENTIAL, P.E_VALUE), answer
        assert durable_view(bench) == before
        # the untouched block still works in the same session (the refusal held a challenge)
        ok = bench.locker.handle(session, deposit_frame(cred, answer[3:3 + P.CHALLENGE_LEN]))
        assert status_of(ok) == P.OK


def test_key_is_bound_to_every_field_of_the_block():
    base = credentials.Credential(credentials.COURIER, b"c1", 1, 100, 200, 0)
    key = base.key(MASTER, LOCKER_ID)
    variants = [
        credentials.Credential(credentials.TECHNICIAN, b"c1", 1, 100, 200, 0),
        credentials.Credential(credentials.COURIER, b"c2", 1, 100, 200, 0),
        credentials.Credential(credentials.COURIER, b"c1", 2, 100, 200, 0),
        credentials.Credential(credentials.COURIER, b"c1", 1, 101, 200, 0),
        credentials.Credential(credentials.COURIER, b"c1", 1, 100, 201, 0),
        credentials.Credential(credentials.COURIER, b"c1", 1, 100, 200, 1),
    ]
    assert len({v.key(MASTER, LOCKER_ID) for v in variants} | {key}) == len(variants) + 1
    assert base.key(MASTER, b"\x01" * 8) != key
    assert key not in (MASTER, kdf.audit_key(MASTER), kdf.admin_key(MASTER, LOCKER_ID))


# ---- replay: nothing captured over the air deposits or opens again ------------------

def test_captured_deposit_frame_cannot_be_replayed(bench):
    cred = bench.courier()
    session = bench.locker.new_session()
    frame = deposit_frame(cred, hello(bench, session))
    assert status_of(bench.locker.handle(session, frame)) == P.OK
    occupied = slot_rows(bench.locker.slots)
    # same connection: the challenge was consumed; the answer carried a new one
    assert status_of(bench.locker.handle(session, frame)) == P.E_AUTH
    # a new connection: a fresh challenge, the old tag does not cover it
    other = bench.locker.new_session()
    hello(bench, other)
    assert status_of(bench.locker.handle(other, frame)) == P.E_AUTH
    assert slot_rows(bench.locker.slots) == occupied
    bench.run_hardware()
    assert len(bench.driver.pulses) == 1


def test_captured_pickup_frames_cannot_be_replayed(bench):
    """An eavesdropper has the genuine PICKUP_START and PICKUP_FINISH. Sent first, on its own
    connection, the START gets a fresh pB (new y) that the captured cA does not confirm."""
    dep = bench.client.deposit(bench.courier(), size=1)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.time.advance(600)
    sid, form, material = phone.parse(dep.code)
    pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, os.urandom)
    session = bench.locker.new_session()
    start = recipient.start_frame(pake)
    answer = bench.locker.handle(session, start)
    finish = P.request(P.PICKUP_FINISH, pake.finish(answer[19:84], answer[84:]))
    # the captured frames are used FIRST by the attacker, on another connection
    thief = bench.locker.new_session()
    assert status_of(bench.locker.handle(thief, start)) == P.OK
    assert status_of(bench.locker.handle(thief, finish)) == P.E_CODE
    assert bench.locker.slots.get(dep.slot).state == OCCUPIED
    assert status_of(bench.locker.handle(session, finish)) == P.OK
    # and after the genuine pickup, past the reopen window, a replay opens nothing
    bench.time.advance(3600)
    again = bench.locker.new_session()
    bench.run_hardware()
    pulses = list(bench.driver.pulses)
    assert pulses == [dep.slot, dep.slot]
    bench.locker.handle(again, start)
    assert status_of(bench.locker.handle(again, finish)) in (P.E_CODE, P.E_STATE)
    bench.run_hardware()
    assert bench.driver.pulses == pulses


def test_challenge_expires(bench):
    cred = bench.courier()
    session = bench.locker.new_session()
    frame = deposit_frame(cred, hello(bench, session))
    bench.time.advance(bench.cfg["challenge_ttl_s"] + 1)
    assert status_of(bench.locker.handle(session, frame)) == P.E_CHALLENGE
    assert bench.driver.pulses == []


# ---- the master secret never leaves the locker --------------------------------------

class Tap:
    """A transport that keeps every frame the locker sends."""

    def __init__(self, locker):
        self.inner = DirectTransport(locker)
        self.sent = []

    def exchange(self, frame):
        answer = self.inner.exchange(frame)
        self.sent.append(answer)
        return answer


def secrets_and_encodings():
    keys = [MASTER, kdf.audit_key(MASTER), kdf.admin_key(MASTER, LOCKER_ID)]
    out = []
    for key in keys:
        for i in range(0, len(key) - 7):          # any 8 consecutive bytes, raw or as hex
            piece = key[i:i + 8]
            out += [piece, piece.hex().encode(), piece.hex().upper().encode()]
    return out


def test_master_secret_never_appears_in_anything_the_locker_sends(bench):
    tap = Tap(bench.locker)
    client = LockerClient(tap)
    courier = bench.courier()
    auditor = bench.courier(holder="depot", serial=2,
                            flags=credentials.SCOPE_AUDIT | credentials.SCOPE_RECLAIM_ANY)
    tech = bench.technician(valid_s=30 * 86400)
    client.hello()
    deps = [client.deposit(courier, size=s) for s in (1, 2, 3)]
    client.pickup(deps[0].code)
    for bad in ("001-00000-00000", "002-12345-67890"):
        with pytest.raises(LockerRefused):
            client.pickup(bad)
    client.cancel(courier, deps[1].request_id)
    client.tech_open(tech, deps[2].slot)
    client.status(courier)
    client.admin(op.set_time_message(MASTER, LOCKER_ID, 1, bench.time.rtc + 60))
    client.admin(op.revoke_message(MASTER, LOCKER_ID, 2, 55, bench.time.rtc + 10 ** 6))
    bench.time.advance(4 * 86400)
    with pytest.raises(LockerRefused):
        client.pickup(deps[2].code)
    client.reclaim(auditor, deps[2].slot)
    for bad_frame in (b"", b"\x01", b"\x02\x01", b"\x01\x10" + b"\xff" * 60, b"\x01\x40" * 40):
        tap.exchange(bad_frame)
    client.hello()                       # those answers rotated the connection's challenge
    lines = []
    while True:
        page = client.audit_page(auditor if len(lines) % 2 else tech, from_seq=len(lines) + 1)
        if not page:
            break
        lines += page
    assert len(lines) > 10
    sent = tap.sent + lines
    assert len(sent) > 25
    for needle in secrets_and_encodings():
        for frame in sent:
            assert needle not in frame
    # nor is it on the locker's flash next to the journal (the key store is elsewhere)
    for blob in durable_view(bench)[2].values():
        for needle in secrets_and_encodings():
            assert needle not in blob


def test_the_scan_would_see_a_leak():
    """The scanner above is not blind: a frame carrying 8 bytes of the secret is caught."""
    frame = b"\x01\x90\x00" + os.urandom(16) + MASTER[11:19] + b"tail"
    assert any(n in frame for n in secrets_and_encodings())
    assert any(n in MASTER[3:11].hex().encode() for n in secrets_and_encodings())
