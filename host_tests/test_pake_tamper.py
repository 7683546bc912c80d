"""Any tampered pickup PAKE message or answer is refused, and changes no state.

A man-in-the-middle flips bytes of one of the four pickup messages: PICKUP_START, its answer
(pB | cB), PICKUP_FINISH (cA), or the FINISH answer (MACed with Ke). Whatever it touches:
- no door opens unless the untouched protocol would have opened it, and the phone never
  reports success for an answer it cannot authenticate;
- the locker's state changes by nothing more than the one journalled `try` of the
  (human-form) PICKUP_START it answered, which a tampered START also is: the locker cannot tell
  a modified share from another guess, and counting it is what bounds guessing.
"""
import os
import tempfile

from core import pickup_code as PC
from core import protocol as P
from core import recipient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockerctl.client import DirectTransport, LockerClient, LockerRefused
from lockerctl.rig import Bench, locker_state

STAGES = ("start", "start_answer", "finish", "finish_answer")


class Tamper:
    """A transport that flips bits of one message of the pickup, in one direction."""

    def __init__(self, inner, stage, flips):
        self.inner, self.stage, self.flips = inner, stage, flips

    def _flip(self, data, header):
        b = bytearray(data)
        span = max(1, len(b) - header)
        for i, bit in {(header + pos % span, bit) for pos, bit in self.flips}:
            b[i] ^= 1 << bit                   # each distinct bit once: never a no-op
        return bytes(b)

    def exchange(self, frame):
        kind = {P.PICKUP_START: "start", P.PICKUP_FINISH: "finish"}.get(frame[1])
        if kind == self.stage:
            frame = self._flip(frame, 2)
        answer = self.inner.exchange(frame)
        if kind and kind + "_answer" == self.stage:
            answer = self._flip(answer, 19)          # the body after the header+challenge
        return answer


def snapshot(bench):
    st_ = locker_state(bench.locker)
    st_.pop("floor")
    st_.pop("thr")
    return st_, bench.locker.store.seq, list(bench.driver.pulses)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(stage=st.sampled_from(STAGES), machine=st.booleans(),
       flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7)), min_size=1,
                      max_size=3))
def test_tampered_pake_message_is_refused_and_changes_nothing(stage, machine, flips):
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(os.path.join(d, "s"))
        dep = bench.client.deposit(bench.courier(), size=1)
        bench.run_hardware()
        bench.driver.close(dep.slot)
        bench.run_hardware()
        code = dep.machine_code if machine else dep.code
        before, seq, pulses = snapshot(bench)
        client = LockerClient(Tamper(DirectTransport(bench.locker), stage, flips))
        client.hello()
        try:
            got = client.pickup(code, busy_retries=0)
        except LockerRefused as e:
            got = e
        bench.run_hardware()
        after, seq2, pulses2 = snapshot(bench)
        if stage == "finish_answer":
            # the locker did its job (door open, slot freed); the phone must not believe a
            # forged answer: a flipped body or MAC is caught by the Ke MAC
            assert isinstance(got, LockerRefused) and got.name in ("bad-mac", "bad-length")
            assert pulses2 == pulses + [dep.slot]
            return
        assert isinstance(got, LockerRefused), "tampered %s accepted" % stage
        assert pulses2 == pulses                       # no door
        assert after["slots"] == before["slots"] and after["recent"] == before["recent"]
        counted = 0 if machine else 1                 # the START the locker answered
        if got.name == "bad-value":                   # pA no longer a point: not evaluated
            counted = 0
        assert seq2 - seq <= counted
        assert bench.locker.slots.get(dep.slot).state == 1


def test_the_untampered_pickup_goes_through():
    """Guard: the same harness with nothing flipped opens the door (so the test can fail)."""
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(os.path.join(d, "s"))
        dep = bench.client.deposit(bench.courier(), size=1)
        client = LockerClient(Tamper(DirectTransport(bench.locker), "none", []))
        assert client.pickup(dep.code)["slot"] == dep.slot


def test_a_fake_answer_cannot_claim_an_opened_door():
    """A relay that answers PICKUP_FINISH itself with a plausible OK body and a guessed MAC."""
    with tempfile.TemporaryDirectory() as d:
        bench = Bench(os.path.join(d, "s"))
        dep = bench.client.deposit(bench.courier(), size=1)
        real = DirectTransport(bench.locker)

        class Liar:
            def exchange(self, frame):
                if frame[1] == P.PICKUP_FINISH:
                    body = dep.slot.to_bytes(2, "big") + bytes(5) + bytes(PC.ANSWER_MAC_LEN)
                    return P.response(P.PICKUP_FINISH, P.OK, bytes(16), body)
                return real.exchange(frame)
        client = LockerClient(Liar())
        try:
            client.pickup(dep.code)
            raise AssertionError("the phone believed a forged answer")
        except LockerRefused as e:
            assert e.name == "bad-mac"
        assert recipient.CodeMismatch          # (module used by the client)
