"""An answer says what really happened (issues 11.6, 11.7, 12.4), through the real handler.

- The reopen window (ADR 0004) reopens a door only for the code whose PICKUP emptied that
  slot; after a cancel, reclaim or technician clear the code opens nothing, and the answer
  says the parcel has left (no strike: the code was right).
- A right code for a parcel in an out-of-service slot is told so and costs no strike.
- A courier whose credential was renewed retries a deposit with the same request id and
  gets an answer from which its phone computes a code that works."""
import pytest
from core import protocol as P
from core.hmac_sha256 import hmac_sha256
from core.slot_manager import OCCUPIED, REOPEN_S
from core.store import read_audit
from lockerctl.client import LockerRefused


def strikes(bench):
    return [r for r in read_audit(bench.fs, bench.locker.store.key) if r["e"] == "fail"]


def settle(bench, close=()):
    bench.run_hardware()
    for sid in close:
        bench.driver.close(sid)
    bench.run_hardware()


def refused(call):
    with pytest.raises(LockerRefused) as e:
        call()
    return e.value


@pytest.mark.parametrize("how", ["cancel", "tech-clear", "reclaim"])
def test_a_slot_emptied_without_a_pickup_does_not_reopen_for_the_code(bench, how):
    courier = bench.courier()
    dep = bench.client.deposit(courier, size=1, request_id=b"Q" * 8)
    settle(bench, [dep.slot])
    if how == "reclaim":                       # even the expired code: the parcel is gone
        bench.time.advance(dep.ttl_s + 10)
        courier = bench.courier()
        bench.client.challenge = None
        assert bench.client.reclaim(courier) == dep.slot
    elif how == "cancel":
        assert bench.client.cancel(courier, b"Q" * 8) == dep.slot
    else:
        bench.client.tech_open(bench.technician(), dep.slot, P.TECH_CLEAR)
    settle(bench, [dep.slot])
    pulses = list(bench.driver.pulses)
    for code in (dep.code, dep.machine_code):
        e = refused(lambda: bench.client.pickup(code))
        assert e.status == P.E_DONE and e.verified is False, (e.status, e.message)
        assert "gone" in e.message
    settle(bench)
    assert bench.driver.pulses == pulses                      # no door moved
    assert strikes(bench) == []                               # a right code is no strike
    assert bench.locker.slots.get(dep.slot).state != OCCUPIED


def test_a_technician_clear_ends_the_pickup_reopen_window(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    settle(bench, [dep.slot])
    bench.client.pickup(dep.code)
    settle(bench, [dep.slot])
    assert bench.client.pickup(dep.code)["slot"] == dep.slot     # ADR 0004: reopens
    settle(bench, [dep.slot])
    bench.client.tech_open(bench.technician(), dep.slot, P.TECH_CLEAR)   # checked empty
    settle(bench, [dep.slot])
    pulses = list(bench.driver.pulses)
    assert refused(lambda: bench.client.pickup(dep.code)).status == P.E_DONE
    settle(bench)
    assert bench.driver.pulses == pulses


def test_a_second_cancel_reopens_only_what_its_cancel_emptied(bench):
    courier = bench.courier()
    dep = bench.client.deposit(courier, size=1, request_id=b"C" * 8)
    settle(bench, [dep.slot])
    assert bench.client.cancel(courier, b"C" * 8) == dep.slot
    settle(bench, [dep.slot])
    # a retry (answer lost): the same answer, the same door again
    assert bench.client.cancel(courier, b"C" * 8) == dep.slot
    settle(bench, [dep.slot])
    bench.time.advance(REOPEN_S + 1)
    assert refused(lambda: bench.client.cancel(courier, b"C" * 8)).status == P.E_DONE
    # a parcel collected by its recipient: the courier's cancel does not reopen its door
    dep2 = bench.client.deposit(courier, size=1, request_id=b"D" * 8)
    settle(bench, [dep2.slot])
    bench.client.pickup(dep2.code)
    settle(bench, [dep2.slot])
    pulses = list(bench.driver.pulses)
    assert refused(lambda: bench.client.cancel(courier, b"D" * 8)).status == P.E_DONE
    settle(bench)
    assert bench.driver.pulses == pulses


def test_right_code_for_an_out_of_service_slot_is_told_so_and_costs_nothing(bench):
    dep = bench.client.deposit(bench.courier(), size=1)
    settle(bench, [dep.slot])
    bench.client.tech_open(bench.technician(), dep.slot, P.TECH_OUT_OF_SERVICE)
    for _ in range(8):                          # more than FREE_FAILURES: never a lockout
        e = refused(lambda: bench.client.pickup(dep.code))
        assert e.status == P.E_OUT_OF_SERVICE and e.retry_after == 0, e.message
    assert strikes(bench) == []
    bench.client.tech_open(bench.technician(), dep.slot, P.TECH_IN_SERVICE)
    assert bench.client.pickup(dep.code)["slot"] == dep.slot


def test_a_jammed_pickup_leaves_the_recipient_a_truthful_answer(bench):
    """The pickup's door jams: the pickup is undone and the slot goes out of service
    (ADR 0003). The recipient trying again is told that, not 'wrong code'."""
    dep = bench.client.deposit(bench.courier(), size=1)
    settle(bench, [dep.slot])
    bench.driver.jam(dep.slot)
    bench.client.pickup(dep.code)
    bench.run_hardware(bench.cfg["jam_ms"] / 1000 + 1)
    assert bench.locker.slots.get(dep.slot).state == OCCUPIED
    e = refused(lambda: bench.client.pickup(dep.code))
    assert e.status == P.E_OUT_OF_SERVICE
    assert strikes(bench) == []


def test_deposit_retry_with_a_renewed_credential_gives_a_working_code(bench):
    """Issue 11.7: same holder, new key (renewed after the first answer was lost)."""
    old = bench.courier(holder="courier-1", serial=1)
    first = bench.client.deposit(old, size=1, request_id=b"N" * 8)
    settle(bench, [first.slot])
    bench.time.advance(3600)
    renewed = bench.courier(holder="courier-1", serial=2)
    assert renewed.key != old.key
    bench.client.challenge = None
    again = bench.client.deposit(renewed, size=1, request_id=b"N" * 8)
    settle(bench, [again.slot])
    assert (again.slot, again.generation, again.deposit_ts) == (
        first.slot, first.generation, first.deposit_ts)
    assert again.code != first.code
    # survives a reboot (the re-keying is a journal record)
    bench.boot()
    assert refused(lambda: bench.client.pickup(first.code)).status == P.E_CODE
    assert bench.client.pickup(again.code)["slot"] == first.slot


# ---- the protocol document's promises (issue 12.6) -----------------------------------------

def test_a_size_without_slots_of_its_own_gets_the_next_size(tmp_path):
    """protocol.md 5.2: S on a locker without S slots is the next size, not E_VALUE; a size
    above the largest is E_VALUE."""
    from lockerctl.rig import Bench
    b = Bench(str(tmp_path / "store"), layout="M*2,L")
    assert b.client.deposit(b.courier(), size=1).slot == 1          # an M slot
    e = refused(lambda: b.client.deposit(b.courier(), size=4))
    assert e.status == P.E_VALUE and "XL" in e.message


def test_set_time_with_a_wrong_payload_length_is_a_length_error_and_uses_nothing(bench):
    import struct

    from core.kdf import admin_key
    from lockerctl import operator as op
    from lockerctl.rig import LOCKER_ID, MASTER
    key = admin_key(MASTER, LOCKER_ID)
    unsigned = P.request(P.ADMIN, struct.pack(">BIB", P.ADMIN_SET_TIME, 1, 8)
                         + struct.pack(">II", bench.time.rtc + 60, 0))
    signed = unsigned + hmac_sha256(key, unsigned)[:16]
    e = refused(lambda: bench.client.admin(signed, key))
    assert e.status == P.E_LENGTH and e.verified and "4-byte payload" in e.message
    e = refused(lambda: bench.client.admin(op.admin_message(MASTER, LOCKER_ID, 9, 1, b""),
                                           key))
    assert e.status == P.E_VALUE and e.verified
    # sequence number 1 was not used up by either refusal
    assert bench.client.admin(op.set_time_message(MASTER, LOCKER_ID, 1, bench.time.rtc + 60),
                              key)[:2] == (P.ADMIN_SET_TIME, 1)


def test_every_0xff_answer_is_one_the_document_lists(bench):
    """protocol.md 3: type byte 0xFF exactly when the request type is not known yet."""
    from core import fragment
    s = bench.locker.new_session()
    cases = [(b"\x01", P.E_LENGTH), (bytes([1, P.HELLO]) + bytes(300), P.E_TOO_LARGE),
             (bytes([2, P.HELLO]), P.E_VERSION), (bytes([1, 0x55]), P.E_TYPE)]
    for frame, status in cases:
        answer = bench.locker.handle(s, frame)
        assert (answer[1], answer[2]) == (0xFF, status), frame[:4]
    for bad in (b"", bytes([0x05]) + b"x"):                 # empty fragment, out of sequence
        reasm = fragment.Reassembler(P.MAX_REQUEST)
        with pytest.raises(fragment.FragmentError) as e:
            reasm.feed(bad)
        answer = bench.locker.error_answer(s, reasm.status, str(e.value))
        assert (answer[1], answer[2]) == (0xFF, P.E_LENGTH)
    # a known type with a bad body echoes its type
    assert bench.locker.handle(s, bytes([1, P.HELLO, 0]))[1] == P.HELLO | 0x80
    bench.locker.halted = "store corrupt: test"
    answer = bench.locker.handle(s, bytes([1, P.HELLO]))
    assert (answer[1], answer[2]) == (0xFF, P.E_INTERNAL)
