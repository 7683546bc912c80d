"""Bad input gets a clear error answer and changes no state (PRODUCT: security properties).

Every request type is sent malformed: truncated at every length, with trailing bytes,
oversized, with an unknown version or type, a bad MAC, a stale or missing challenge, and
replayed. Each must get a well-formed error answer with the right status, and the locker's
state (slots, throttle, revocations, admin counter), its journal files byte for byte and its
lock outputs must be exactly as before. The one documented exception: a human-form
PICKUP_START that the locker answers is a password guess, journalled as one "try" record of
the throttle BEFORE the answer (that is what bounds brute force); nothing after it (a wrong
or replayed PICKUP_FINISH) changes anything."""
import os
import struct
import tempfile

import pytest
from core import credentials, phone
from core import protocol as P
from core import recipient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockerctl import operator as op
from lockerctl.rig import LOCKER_ID, MASTER, Bench, locker_state

STATUSES = set(range(P.E_BUSY + 1))
SIGNED = ("DEPOSIT", "CANCEL", "RECLAIM", "TECH_OPEN", "AUDIT_READ", "STATUS")
ALL = ("HELLO",) + SIGNED + ("PICKUP_START", "PICKUP_FINISH", "ADMIN")
TYPES = {"HELLO": P.HELLO, "DEPOSIT": P.DEPOSIT, "CANCEL": P.CANCEL, "RECLAIM": P.RECLAIM,
         "PICKUP_START": P.PICKUP_START, "PICKUP_FINISH": P.PICKUP_FINISH,
         "TECH_OPEN": P.TECH_OPEN, "AUDIT_READ": P.AUDIT_READ, "STATUS": P.STATUS,
         "ADMIN": P.ADMIN}
X = 0x5eed                                        # the phone's fixed SPAKE2 secret here
REQ_ID = bytes.fromhex("a1a2a3a4a5a6a7a8")


# ---- a populated locker and valid frames for it -------------------------------------------

class Rig:
    """A bench with one parcel in, and the credentials the frames below are signed with."""

    def __init__(self, folder):
        self.bench = Bench(folder)
        self.courier = self.bench.courier()
        self.depot = self.bench.courier("depot-7", serial=2,
                                        flags=credentials.SCOPE_AUDIT
                                        | credentials.SCOPE_RECLAIM_ANY)
        self.tech = self.bench.technician()
        self.deposit = self.bench.client.deposit(self.courier, size=1, request_id=REQ_ID)
        self.bench.run_hardware()
        self.bench.driver.close(self.deposit.slot)
        self.bench.run_hardware()

    @property
    def locker(self):
        return self.bench.locker

    def session(self):
        """A new connection that has said HELLO: (session, its fresh challenge)."""
        s = self.locker.new_session()
        answer = self.locker.handle(s, P.request(P.HELLO))
        assert answer[2] == P.OK
        return s, answer[3:19]

    def frames(self, challenge):
        """One valid request of every type, answering challenge."""
        def signed(t, cred, fields):
            return phone.sign(P.request(t, cred.block + fields), cred.key, challenge)
        return {
            "HELLO": P.request(P.HELLO),
            "DEPOSIT": signed(P.DEPOSIT, self.courier, bytes(8) + b"\x01"),
            "CANCEL": signed(P.CANCEL, self.courier, REQ_ID),
            "RECLAIM": signed(P.RECLAIM, self.courier, struct.pack(">H", 0)),
            "TECH_OPEN": signed(P.TECH_OPEN, self.tech, struct.pack(">HB", 2, P.TECH_CLEAR)),
            "AUDIT_READ": signed(P.AUDIT_READ, self.depot, struct.pack(">IB", 1, 3)),
            "STATUS": signed(P.STATUS, self.tech, b""),
            "PICKUP_START": recipient.start_frame(self.pake(self.deposit.code)),
            "PICKUP_FINISH": P.request(P.PICKUP_FINISH, bytes(32)),
            "ADMIN": op.set_time_message(MASTER, LOCKER_ID, self.locker.admin_seq + 1,
                                         self.bench.time.rtc + 10),
        }

    def pake(self, code, x=X):
        slot, form, material = phone.parse(code)
        return recipient.RecipientPake(slot, form, material, LOCKER_ID,
                                       lambda n: x.to_bytes(n, "big"))

    def state(self):
        """Everything a request may change, minus the clock: compared before and after."""
        self.bench.bank.service()
        st_ = locker_state(self.locker)
        st_.pop("floor")
        files = {}
        for name in sorted(os.listdir(self.bench.folder)):
            with open(os.path.join(self.bench.folder, name), "rb") as f:
                files[name] = f.read()
        return {"state": st_, "seq": self.locker.store.seq, "files": files,
                "pulses": list(self.bench.driver.pulses), "busy": self.bench.bank.busy()}


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path / "store"))


def check_answer(answer, req_type, status):
    """A well-formed response: header, the expected type and status, a parseable body."""
    assert isinstance(answer, bytes) and len(answer) >= 3 + P.CHALLENGE_LEN
    assert answer[0] == P.VERSION
    assert answer[1] == req_type | P.RESPONSE_BIT, hex(answer[1])
    assert answer[2] == status, (answer[2], phone.parse_error(answer[19:]))
    if status != P.OK:
        body = answer[19:]
        retry, n = struct.unpack(">IB", body[:5])
        # refusals after the request authenticated end in the answer tag (protocol.md 4)
        assert len(body) in (5 + n, 5 + n + P.TAG_LEN) and n > 0
        body[5:5 + n].decode()


def send_expect(rig, session, frame, req_type, status):
    before = rig.state()
    answer = rig.locker.handle(session, frame)
    check_answer(answer, req_type, status)
    assert rig.state() == before, "state changed on a refused request"
    return answer


# ---- framing faults -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_truncated_at_every_length(rig, name):
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    for n in range(len(frame)):
        s, ch = rig.session()
        cut = rig.frames(ch)[name][:n]
        send_expect(rig, s, cut, TYPES[name] if n >= 2 else P.ERROR_TYPE, P.E_LENGTH)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("extra", [b"\x00", b"\xff" * 16, bytes(40)], ids=["1", "16", "40"])
def test_trailing_bytes(rig, name, extra):
    s, ch = rig.session()
    send_expect(rig, s, rig.frames(ch)[name] + extra, TYPES[name], P.E_LENGTH)


@pytest.mark.parametrize("name", SIGNED)
def test_trailing_bytes_under_a_valid_mac(rig, name):
    """Authentic but wrongly framed (extra field bytes, MAC recomputed): still a length error."""
    s, ch = rig.session()
    unsigned = rig.frames(ch)[name][:-P.TAG_LEN] + b"\x00"
    cred = rig.tech if name in ("TECH_OPEN", "STATUS") else (
        rig.depot if name == "AUDIT_READ" else rig.courier)
    send_expect(rig, s, phone.sign(unsigned, cred.key, ch), TYPES[name], P.E_LENGTH)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [P.MAX_REQUEST + 1, 1000, 64 * 1024])
def test_oversized(rig, name, size):
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    send_expect(rig, s, frame + bytes(size - len(frame)), P.ERROR_TYPE, P.E_TOO_LARGE)


def test_largest_allowed_request_is_a_length_error_not_too_large(rig):
    s, ch = rig.session()
    frame = rig.frames(ch)["DEPOSIT"]
    send_expect(rig, s, frame + bytes(P.MAX_REQUEST - len(frame)), P.DEPOSIT, P.E_LENGTH)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("version", [0, 2, 0x81, 0xFF])
def test_unknown_version(rig, name, version):
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    send_expect(rig, s, bytes((version,)) + frame[1:], P.ERROR_TYPE, P.E_VERSION)


def test_every_unknown_type(rig):
    known = set(TYPES.values())
    for t in range(256):
        if t in known:
            continue
        s, ch = rig.session()
        frame = bytes((P.VERSION, t)) + rig.frames(ch)["DEPOSIT"][2:]
        send_expect(rig, s, frame, P.ERROR_TYPE, P.E_TYPE)


# ---- authentication faults ----------------------------------------------------------------

@pytest.mark.parametrize("name", SIGNED + ("ADMIN",))
def test_bad_mac(rig, name):
    s, ch = rig.session()
    frame = bytearray(rig.frames(ch)[name])
    frame[-1] ^= 0x01
    send_expect(rig, s, bytes(frame), TYPES[name], P.E_AUTH)


@pytest.mark.parametrize("name", SIGNED)
def test_mac_with_another_credentials_key(rig, name):
    """A courier signs with a key that is not the one derived from the block it sends."""
    s, ch = rig.session()
    unsigned = rig.frames(ch)[name][:-P.TAG_LEN]
    other = rig.bench.courier("courier-2", serial=5)
    send_expect(rig, s, phone.sign(unsigned, other.key, ch), TYPES[name], P.E_AUTH)


@pytest.mark.parametrize("name", SIGNED)
def test_stale_challenge(rig, name):
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    rig.bench.time.advance(rig.bench.cfg["challenge_ttl_s"] + 1)
    send_expect(rig, s, frame, TYPES[name], P.E_CHALLENGE)


@pytest.mark.parametrize("name", SIGNED)
def test_missing_challenge(rig, name):
    _, ch = rig.session()
    fresh = rig.locker.new_session()          # never said HELLO
    send_expect(rig, fresh, rig.frames(ch)[name], TYPES[name], P.E_CHALLENGE)


@pytest.mark.parametrize("name", SIGNED)
def test_challenge_is_consumed_by_an_error(rig, name):
    """A refused request burns the challenge: the valid frame answering it is now stale."""
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    check_answer(rig.locker.handle(s, b"\x01"), P.ERROR_TYPE, P.E_LENGTH)  # in between
    answer = rig.locker.handle(s, frame)
    check_answer(answer, TYPES[name], P.E_AUTH)


def test_finish_without_a_started_pickup(rig):
    s, _ = rig.session()
    send_expect(rig, s, rig.frames(bytes(16))["PICKUP_FINISH"], P.PICKUP_FINISH, P.E_STATE)


def test_finish_after_the_pickup_went_stale(rig):
    s, _ = rig.session()
    pake = rig.pake(rig.deposit.code)
    answer = rig.locker.handle(s, recipient.start_frame(pake))
    check_answer(answer, P.PICKUP_START, P.OK)
    confirm = pake.finish(answer[19:84], answer[84:])
    rig.bench.time.advance(rig.bench.cfg["challenge_ttl_s"] + 1)
    send_expect(rig, s, P.request(P.PICKUP_FINISH, confirm), P.PICKUP_FINISH, P.E_STATE)


def test_finish_is_consumed_by_an_error(rig):
    """Anything but the right cA ends the attempt: the right one afterwards is refused."""
    s, _ = rig.session()
    pake = rig.pake(rig.deposit.code)
    answer = rig.locker.handle(s, recipient.start_frame(pake))
    confirm = pake.finish(answer[19:84], answer[84:])
    send_expect(rig, s, P.request(P.PICKUP_FINISH, bytes(32)), P.PICKUP_FINISH, P.E_CODE)
    send_expect(rig, s, P.request(P.PICKUP_FINISH, confirm), P.PICKUP_FINISH, P.E_STATE)


def test_start_with_a_share_that_is_not_a_point(rig):
    s, _ = rig.session()
    frame = bytearray(rig.frames(bytes(16))["PICKUP_START"])
    frame[-1] ^= 1                        # y no longer on the curve
    send_expect(rig, s, bytes(frame), P.PICKUP_START, P.E_VALUE)
    frame[5] = 0x03                       # compressed form is not accepted on the wire
    send_expect(rig, s, bytes(frame), P.PICKUP_START, P.E_VALUE)


# ---- replay -------------------------------------------------------------------------------

OK_REPLAYS = ("DEPOSIT", "CANCEL", "TECH_OPEN", "STATUS", "AUDIT_READ")


@pytest.mark.parametrize("name", OK_REPLAYS)
def test_replay_of_a_captured_signed_frame(rig, name):
    s, ch = rig.session()
    frame = rig.frames(ch)[name]
    answer = rig.locker.handle(s, frame)
    check_answer(answer, TYPES[name], P.OK)           # the original goes through
    send_expect(rig, s, frame, TYPES[name], P.E_AUTH)  # same session: challenge moved on
    s2, _ = rig.session()
    send_expect(rig, s2, frame, TYPES[name], P.E_AUTH)  # new session, new challenge
    send_expect(rig, rig.locker.new_session(), frame, TYPES[name], P.E_CHALLENGE)


def test_replay_of_an_admin_message(rig):
    s, ch = rig.session()
    frame = rig.frames(ch)["ADMIN"]
    check_answer(rig.locker.handle(s, frame), P.ADMIN, P.OK)
    send_expect(rig, s, frame, P.ADMIN, P.E_REPLAY)
    s2, _ = rig.session()
    send_expect(rig, s2, frame, P.ADMIN, P.E_REPLAY)
    send_expect(rig, rig.locker.new_session(), frame, P.ADMIN, P.E_REPLAY)


def test_replayed_pickup_opens_nothing(rig):
    """A whole pickup captured and replayed: the START gets a NEW pB (fresh y), so the old
    cA does not confirm it; a FINISH on its own has nothing to finish."""
    s, _ = rig.session()
    pake = rig.pake(rig.deposit.code)
    start = recipient.start_frame(pake)
    answer = rig.locker.handle(s, start)
    finish = P.request(P.PICKUP_FINISH, pake.finish(answer[19:84], answer[84:]))
    check_answer(rig.locker.handle(s, finish), P.PICKUP_FINISH, P.OK)
    rig.bench.run_hardware()
    rig.bench.driver.close(rig.deposit.slot)
    rig.bench.run_hardware()
    rig.bench.time.advance(200)                        # past the reopen window
    for session in (s, rig.session()[0]):
        send_expect(rig, session, finish, P.PICKUP_FINISH, P.E_STATE)
        before = rig.state()
        again = rig.locker.handle(session, start)
        check_answer(again, P.PICKUP_START, P.OK)
        assert again[19:] != answer[19:]                # a fresh pB and cB
        after = rig.state()
        assert after["seq"] == before["seq"] + 1         # one record: the budgeted try
        assert after["state"]["slots"] == before["state"]["slots"]
        send_expect(rig, session, finish, P.PICKUP_FINISH, P.E_CODE)
        assert rig.state()["pulses"] == before["pulses"]


def test_wrong_code_is_one_try_and_nothing_else(rig):
    s, _ = rig.session()
    wrong = rig.deposit.code[:-1] + str((int(rig.deposit.code[-1]) + 1) % 10)
    pake = rig.pake(wrong)
    before = rig.state()
    answer = rig.locker.handle(s, recipient.start_frame(pake))
    check_answer(answer, P.PICKUP_START, P.OK)
    with pytest.raises(recipient.CodeMismatch):        # the phone sees it at once
        pake.finish(answer[19:84], answer[84:])
    after = rig.state()
    assert after["state"]["slots"] == before["state"]["slots"]
    assert after["pulses"] == before["pulses"]
    assert after["seq"] == before["seq"] + 1
    # a phone that goes on anyway with a made-up cA changes nothing more
    send_expect(rig, s, P.request(P.PICKUP_FINISH, bytes(32)), P.PICKUP_FINISH, P.E_CODE)


# ---- fuzzing ------------------------------------------------------------------------------

_FAILURE_RECORDED = (P.E_EXPIRED,)     # a confirmed but expired pickup is journalled ("late")


class _FuzzRig:
    """One rig shared by the examples of a test (each example compares before/after)."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.rig = Rig(os.path.join(self.dir.name, "store"))


def _check_fuzz_answer(rig, frame, answer, before):
    assert isinstance(answer, bytes) and len(answer) >= 19 and answer[0] == P.VERSION
    known = len(frame) <= P.MAX_REQUEST and len(frame) >= 2 and frame[0] == P.VERSION \
        and frame[1] in TYPES.values()
    assert answer[1] == ((frame[1] if known else P.ERROR_TYPE) | P.RESPONSE_BIT)
    assert answer[2] in STATUSES
    if answer[2] != P.OK:
        retry, n = struct.unpack(">IB", answer[19:24])
        assert len(answer) in (24 + n, 24 + n + P.TAG_LEN)
    after = rig.state()
    if answer[2] == P.OK:
        return
    if answer[2] in _FAILURE_RECORDED and frame[1] == P.PICKUP_FINISH:
        assert after["state"]["slots"] == before["state"]["slots"]
        assert after["pulses"] == before["pulses"]
        assert after["seq"] == before["seq"] + 1
        return
    assert after == before, "status %d changed state" % answer[2]


@pytest.fixture(scope="module")
def fuzz_rig():
    f = _FuzzRig()
    yield f.rig
    f.dir.cleanup()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=st.one_of(st.binary(max_size=300),
                       st.binary(min_size=2, max_size=80).map(lambda b: b"\x01" + b[1:])))
def test_fuzz_random_bytes(fuzz_rig, frame):
    s, _ = fuzz_rig.session()
    before = fuzz_rig.state()
    answer = fuzz_rig.locker.handle(s, frame)
    _check_fuzz_answer(fuzz_rig, frame, answer, before)


def _mutate(frame, data):
    kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate",
                                      "extend", "splice"]))
    b = bytearray(frame)
    i = data.draw(st.integers(0, len(b) - 1))
    if kind == "flip":
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "set":
        b[i] = data.draw(st.integers(0, 255))
    elif kind == "insert":
        b[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        del b[i:i + data.draw(st.integers(1, 8))]
    elif kind == "truncate":
        del b[i:]
    elif kind == "extend":
        b += data.draw(st.binary(min_size=1, max_size=300))
    else:
        j = data.draw(st.integers(i, len(b)))
        b[i:j] = data.draw(st.binary(max_size=20))
    return bytes(b)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ALL), data=st.data())
def test_fuzz_mutated_valid_frames(fuzz_rig, name, data):
    s, ch = fuzz_rig.session()
    valid = fuzz_rig.frames(ch)[name]
    frame = _mutate(valid, data)
    before = fuzz_rig.state()
    answer = fuzz_rig.locker.handle(s, frame)
    _check_fuzz_answer(fuzz_rig, frame, answer, before)
    if answer[2] == P.OK and name == "PICKUP_START":
        # any slot/form with a share that is still a point is a legitimate guess: the locker
        # cannot tell it from a real phone's. At most the one "try" record, no door.
        after = fuzz_rig.state()
        assert after["pulses"] == before["pulses"]
        assert after["seq"] - before["seq"] <= 1
        assert after["state"]["slots"] == before["state"]["slots"]
    elif answer[2] == P.OK:     # only an unchanged frame, or one cut down to a HELLO
        assert frame in (valid, P.request(P.HELLO))


def test_the_state_comparison_sees_a_real_change(rig):
    """Guard for every test above: an accepted request does show up in the comparison."""
    s, ch = rig.session()
    before = rig.state()
    check_answer(rig.locker.handle(s, rig.frames(ch)["DEPOSIT"]), P.DEPOSIT, P.OK)
    after = rig.state()
    assert after["state"] != before["state"] and after["seq"] == before["seq"] + 1
    assert after["files"] != before["files"] and after["busy"]
