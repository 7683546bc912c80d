"""Every answer a phone acts on is authenticated (issue 11.3, docs/protocol.md section 4).

A relay (any phone or radio in the path, or a fake locker) alters the locker's answers; the
client library must notice before it uses anything in them: before a courier hands out a
code, before a technician believes a door opened, before an operator believes a revocation
arrived. The relay here sits between the real client and the real locker and changes bytes
of the answer only."""
import struct

import pytest
from core import credentials
from core import protocol as P
from core.kdf import admin_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockerctl import operator as op
from lockerctl.client import AnswerNotAuthentic, LockerClient, LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench

ADMIN_KEY = admin_key(MASTER, LOCKER_ID)


class Relay:
    """Forwards frames both ways; alter(request, answer) -> the answer the phone gets."""

    def __init__(self, inner, alter=None):
        self.inner = inner
        self.alter = alter

    def exchange(self, frame):
        answer = self.inner.exchange(frame)
        if self.alter is not None and frame[1] != P.HELLO:
            answer = self.alter(frame, answer)
        return answer


@pytest.fixture
def bench(tmp_path):
    return Bench(str(tmp_path / "store"))


def relayed(bench, alter):
    return LockerClient(Relay(bench.client.transport, alter))


def flip(offset, bit):
    def alter(_request, answer):
        b = bytearray(answer)
        b[offset % len(b)] ^= 1 << bit
        return bytes(b)
    return alter


# ---- the DEPOSIT answer: the courier never hands out a code from an altered answer ---------

@pytest.mark.parametrize("field, offset", [("slot", 0), ("generation", 2), ("deposit_ts", 6),
                                           ("size", 10), ("ttl_s", 11), ("bucket_s", 15)])
def test_relay_that_alters_the_deposit_answer_is_detected(bench, field, offset):
    courier = bench.courier()

    def alter(_request, answer):
        b = bytearray(answer)
        b[19 + offset + (1 if field in ("slot", "bucket_s") else 3)] ^= 0x01
        return bytes(b)
    phone = relayed(bench, alter)
    with pytest.raises(AnswerNotAuthentic):
        phone.deposit(courier, size=1, request_id=b"R" * 8)
    # the parcel is in; the courier's retry through an honest path gets the real answer,
    # and its code opens the slot
    dep = bench.client.deposit(courier, size=1, request_id=b"R" * 8)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def test_the_code_does_not_depend_on_the_unauthenticated_hello(bench):
    """A relay that changes HELLO's bucket_s cannot change the code the phone computes."""
    courier = bench.courier()

    def alter_hello(frame):
        answer = bench.client.transport.exchange(frame)
        if frame[1] == P.HELLO:
            b = bytearray(answer)
            b[19 + 16:19 + 18] = struct.pack(">H", 3600)
            answer = bytes(b)
        return answer
    relay = Relay(bench.client.transport)
    relay.exchange = alter_hello
    phone = LockerClient(relay)
    assert phone.hello().bucket_s == 3600
    dep = phone.deposit(courier, size=1)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def test_a_replayed_genuine_answer_is_refused(bench):
    """A relay (or a fake locker) that recorded a genuine DEPOSIT answer and plays it back to
    the next deposit: the tag is over the challenge of the request it answered, so it fails."""
    courier = bench.courier()
    captured = []

    def replay_first(_request, answer):
        captured.append(answer)
        return captured[0]
    phone = relayed(bench, replay_first)
    first = phone.deposit(courier, size=1)             # the first answer is genuine
    with pytest.raises(AnswerNotAuthentic):
        phone.deposit(courier, size=1)                 # the same answer again: refused
    assert captured[1][19:21] != captured[0][19:21]    # the real answer named another slot
    assert first.slot == struct.unpack(">H", captured[0][19:21])[0]


# ---- every authenticated answer: any bit flip is refused -----------------------------------

def _prepare(bench):
    """A locker where every authenticated request has an OK answer to give."""
    courier = bench.courier()
    depot = bench.courier("depot-7", serial=2,
                          flags=credentials.SCOPE_AUDIT | credentials.SCOPE_RECLAIM_ANY)
    tech = bench.technician()
    old = bench.client.deposit(courier, size=1, request_id=b"O" * 8)
    bench.time.advance(bench.cfg["ttl_s"] + 60)
    courier = bench.courier()        # re-issued after the clock moved: still valid
    depot = bench.courier("depot-7", serial=2,
                          flags=credentials.SCOPE_AUDIT | credentials.SCOPE_RECLAIM_ANY)
    tech = bench.technician()
    bench.client.challenge = None
    bench.client.deposit(courier, size=1, request_id=b"L" * 8)
    bench.run_hardware()
    return {
        "DEPOSIT": lambda c: c.deposit(courier, size=2),
        "DEPOSIT retry": lambda c: c.deposit(courier, size=1, request_id=b"L" * 8),
        "CANCEL": lambda c: c.cancel(courier, b"L" * 8),
        "RECLAIM": lambda c: c.reclaim(depot, old.slot),
        "TECH_OPEN": lambda c: c.tech_open(tech, 5, P.TECH_OPEN_ONLY),
        "STATUS": lambda c: c.status(tech),
        "AUDIT_READ": lambda c: c.audit_page(depot, 1, 3),
        "ADMIN": lambda c: c.admin(op.revoke_message(MASTER, LOCKER_ID,
                                                     bench.locker.admin_seq + 1, 77,
                                                     bench.time.rtc + 10), ADMIN_KEY),
        "refusal (E_STATE)": lambda c: c.cancel(courier, b"X" * 8),
    }


FLOWS = ("DEPOSIT", "DEPOSIT retry", "CANCEL", "RECLAIM", "TECH_OPEN", "STATUS", "AUDIT_READ",
         "ADMIN", "refusal (E_STATE)")


@pytest.mark.parametrize("flow", FLOWS)
def test_untouched_answers_verify(bench, flow):
    calls = _prepare(bench)
    if flow.startswith("refusal"):
        with pytest.raises(LockerRefused) as e:
            calls[flow](bench.client)
        assert e.value.verified and e.value.status == P.E_STATE
    else:
        calls[flow](bench.client)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flow=st.sampled_from(FLOWS), offset=st.integers(0, 2000), bit=st.integers(0, 7))
def test_any_bit_flip_of_an_authenticated_answer_is_refused(tmp_path_factory, flow, offset,
                                                           bit):
    """The client never returns a result from, nor trusts a refusal in, a flipped answer."""
    bench = Bench(str(tmp_path_factory.mktemp("flip") / "store"))
    calls = _prepare(bench)
    phone = relayed(bench, flip(offset, bit))
    try:
        got = calls[flow](phone)
    except AnswerNotAuthentic:
        return
    except LockerRefused as e:
        assert not e.verified, "a flipped refusal passed as authentic: %r" % e
        return
    except P.ProtocolError:            # the version byte flipped: not even a response
        return
    raise AssertionError("flipped answer accepted: %r" % (got,))


def test_refusals_before_authentication_are_marked_unverified(bench):
    """E_AUTH cannot carry a tag (the locker could not check who asked); the client says
    so, and a relay that strips the tag of a real refusal gets the same 'unverified'."""
    courier = bench.courier()
    courier.key = bytes(32)
    with pytest.raises(LockerRefused) as e:
        bench.client.deposit(courier, size=1)
    assert e.value.status == P.E_AUTH and not e.value.verified


# ---- the PICKUP_FINISH answer: a relay cannot send the recipient away from an open door ----

@pytest.mark.parametrize("status", [P.E_DONE, P.E_OUT_OF_SERVICE, P.E_EXPIRED])
def test_relay_that_swaps_the_opened_answer_for_an_unsigned_refusal_is_detected(bench, status):
    """The relay passes cA through (the door opens) and swaps the MACed OK for a refusal
    without a MAC ("parcel already gone", "out of service", "expired"): the recipient would
    walk away from an open door. The client refuses any such answer without Ke's MAC
    (review finding: only OK and E_EXPIRED were checked)."""
    dep = bench.client.deposit(bench.courier(), size=1, request_id=b"S" * 8)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()

    def alter(request, answer):
        if request[1] != P.PICKUP_FINISH:
            return answer
        body = P.error_body("parcel already gone")
        return answer[:2] + bytes((status,)) + answer[3:19] + body
    with pytest.raises(LockerRefused) as refused:
        relayed(bench, alter).pickup(dep.code)
    assert refused.value.status == P.E_AUTH
    bench.run_hardware()
    assert dep.slot in bench.driver.pulses          # the door really opened meanwhile


def test_a_reopen_by_the_right_human_code_costs_no_guess(bench):
    """Within the reopen window the right code opens its door again: no guess is spent
    (review finding: the reopen record kept the attempt's charge)."""
    dep = bench.client.deposit(bench.courier(), size=1, request_id=b"T" * 8)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    bench.client.pickup(dep.code)
    bench.run_hardware()
    bench.driver.close(dep.slot)
    bench.run_hardware()
    before = (bench.locker.throttle.tat, dict(bench.locker.throttle.slot_tat))
    assert bench.client.pickup(dep.code)["slot"] == dep.slot      # the reopen
    assert (bench.locker.throttle.tat, dict(bench.locker.throttle.slot_tat)) == before


def test_answers_outlive_the_requests_after_them(bench):
    """Each answer is the phone's own bytes: a transport may still be notifying one answer
    while the locker serves the next request, so no answer may share a buffer the locker
    reuses (docs/performance.md, "What one request allocates"). Every flow's answer is kept
    and checked, unchanged, after all the others were served."""
    kept = []

    class Keeping:
        def __init__(self, inner):
            self.inner = inner

        def exchange(self, frame):
            answer = self.inner.exchange(frame)
            kept.append((frame[1], answer, bytes(answer)))
            return answer

    calls = _prepare(bench)
    bench.client.transport = Keeping(bench.client.transport)
    for flow in FLOWS:
        try:
            calls[flow](bench.client)
        except LockerRefused:
            pass
    assert {P.DEPOSIT, P.CANCEL, P.RECLAIM, P.TECH_OPEN, P.STATUS, P.AUDIT_READ,
            P.ADMIN} <= {t for t, _, _ in kept}           # every kind was served
    for req_type, answer, copy in kept:
        assert isinstance(answer, bytes), req_type
        assert answer == copy, "answer to 0x%02x changed after later requests" % req_type
