"""The bench suite: what a bench tester checks on a locker, through its radio only.
Runs against the simulator (make hil-sim, part of make test) and a real board (make hil)."""
import os
import struct

import pytest
from core import fragment, phone
from core import protocol as P
from lockerctl.client import LockerRefused


def test_hello_identifies_the_locker(target):
    t = target.transport()
    try:
        from lockerctl.client import LockerClient
        hello = LockerClient(t).hello()
    finally:
        t.close()
    assert hello.locker_id == target.locker_id
    assert hello.slot_count >= 1
    assert hello.max_request == P.MAX_REQUEST


@pytest.mark.parametrize("link", [20, 244])
def test_deposit_then_pickup_on_separate_connections(target, link):
    courier = target.client(link)
    dep = courier.deposit(target.courier(), size=1)
    courier.transport.close()
    recipient = target.client(link)
    try:
        got = recipient.pickup(dep.code)
    finally:
        recipient.transport.close()
    assert got["slot"] == dep.slot
    assert got["deposit_ts"] == dep.deposit_ts


def test_deposit_retried_after_a_dropped_link_gets_the_same_slot(target):
    cred = target.courier()
    req = os.urandom(P.REQ_ID_LEN)
    first = target.client()
    slot = first.deposit(cred, size=1, request_id=req).slot
    first.transport.close()                     # the phone lost the link
    again = target.client()
    try:
        assert again.deposit(cred, size=1, request_id=req).slot == slot
        assert again.cancel(cred, req) == slot
    finally:
        again.transport.close()


def test_captured_request_cannot_be_replayed(target):
    cred = target.courier()
    c = target.client()
    c.hello()
    frame = phone.sign(P.request(P.DEPOSIT, cred.block + os.urandom(8) + b"\x01"), cred.key,
                       c.challenge)
    ok = phone.parse_response(c.transport.exchange(frame))
    c.transport.close()
    assert ok[1] == P.OK
    sid = struct.unpack(">H", ok[3][:2])[0]
    eve = target.transport()
    try:
        eve.exchange(P.request(P.HELLO))
        status = phone.parse_response(eve.exchange(frame))[1]   # same bytes, new connection
    finally:
        eve.close()
    assert status in (P.E_AUTH, P.E_CHALLENGE)
    tech = target.client()
    try:
        tech.tech_open(target.technician(), sid, P.TECH_CLEAR)   # tidy the bench
    finally:
        tech.transport.close()


def test_half_sent_request_leaves_no_trace(target):
    tech = target.technician()
    c = target.client()
    # occupancy and service bits: door bits may still move from an earlier test's pulse
    held = [(s["slot"], s["bits"] & 5) for s in c.status(tech)["slots"]]
    cred = target.courier()
    c.hello()
    frame = phone.sign(P.request(P.DEPOSIT, cred.block + os.urandom(8) + b"\x01"), cred.key,
                       c.challenge)
    pieces = list(fragment.split(frame, 20))
    for piece in pieces[:-1]:
        c.transport.send_fragment(piece)
    c.transport.close()                           # gone before the LAST fragment
    again = target.client()
    try:
        after = again.status(target.technician())["slots"]
        assert [(s["slot"], s["bits"] & 5) for s in after] == held
    finally:
        again.transport.close()


def test_malformed_frames_get_clear_errors_and_the_link_stays_usable(target):
    t = target.transport()
    try:
        assert phone.parse_response(t.exchange(b"\x09\x01"))[1] == P.E_VERSION
        assert phone.parse_response(t.exchange(bytes((P.VERSION, 0x66))))[1] == P.E_TYPE
        assert phone.parse_response(t.exchange(P.request(P.HELLO) + b"x"))[1] == P.E_LENGTH
        assert phone.parse_response(t.exchange(P.request(P.HELLO)))[1] == P.OK
    finally:
        t.close()


@pytest.mark.parametrize("link", [20, 244])
def test_the_longest_request_arrives_whole_in_one_answer(target, link):
    # docs/protocol.md 2.1: 14 fragments of 20 bytes wait once for the locker's credit (the
    # stack's write queue holds 10); 2 fragments of 244 never wait. One answer, then the
    # link is usable.
    t = target.transport(link)
    try:
        frame = P.request(P.HELLO) + bytes(P.MAX_REQUEST - 2)
        assert phone.parse_response(t.exchange(frame))[:2] == (P.HELLO, P.E_LENGTH)
        assert t.credits == (1 if link == 20 else 0)
        assert phone.parse_response(t.exchange(P.request(P.HELLO)))[1] == P.OK
    finally:
        t.close()


def test_deposit_opens_the_door_the_sensor_sees(target, doors):
    c = target.client()
    try:
        dep = c.deposit(target.courier(), size=2)
    finally:
        c.transport.close()
    import time
    deadline = time.monotonic() + 10
    while not doors.is_open(dep.slot) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert doors.is_open(dep.slot)
    doors.close(dep.slot)
    assert not doors.is_open(dep.slot)


def test_wrong_code_is_refused(target):
    c = target.client()
    try:
        dep = c.deposit(target.courier(), size=1)
        digits = dep.code.replace("-", "")
        wrong = digits[:3] + ("0" if digits[3] != "0" else "1") + digits[4:]
        with pytest.raises(LockerRefused) as e:
            c.pickup(wrong)
        assert e.value.name in ("wrong-code", "locked-out")
    finally:
        c.transport.close()


def test_long_answer_is_identical_over_small_and_large_fragments(target):
    # Last in the file: on the 100 KB simulator heap an audit page can run the locker out
    # of memory (reported), which would take the following tests down with it.
    tech = target.technician()
    c = target.client()
    try:
        c.deposit(target.courier(), size=1)  # a record with a long line in the log
    except LockerRefused as e:
        assert e.name == "no-free-slot"      # earlier tests filled the locker: their
    finally:                                 # deposits are the long lines then
        c.transport.close()
    pages = []
    for link in (20, 244):                  # one connection at a time, like BLE
        c = target.client(link)
        try:
            pages.append(c.audit_page(tech, 1, 2))
        finally:
            c.transport.close()
    assert pages[0] == pages[1] and len(b"".join(pages[1])) > 244
