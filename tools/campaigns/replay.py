"""Replay campaign: record real sessions (every flow), then replay every captured request
frame in new sessions, again in its own session, reordered, and spliced across sessions.
A replayed frame is "accepted" if the locker answers OK to anything but HELLO and
PICKUP_START (the requests that need no proof: a PICKUP_START only gets a fresh SPAKE2 share
that the captured PICKUP_FINISH does not confirm). The accepted count must be 0.

    .venv/bin/python tools/campaigns/replay.py [--sessions 40] [--seed 1]
"""
import argparse
import random
import sys
import tempfile

from core import protocol as P
from core.store import read_audit  # (firmware)
from lockerctl import operator as op
from lockerctl.client import DirectTransport, LockerClient, LockerRefused
from lockerctl.rig import LOCKER_ID, MASTER, Bench


class Recorder(DirectTransport):
    """A transport that keeps every request frame it carried (the eavesdropper's capture)."""

    def __init__(self, locker, capture):
        DirectTransport.__init__(self, locker)
        self.capture = capture
        self.frames = []
        capture.append(self.frames)

    def exchange(self, frame):
        self.frames.append(frame)
        return DirectTransport.exchange(self, frame)


def record_sessions(bench, count, rng):
    """Run `count` sessions of mixed real traffic; return the captured frames per session."""
    capture = []
    couriers = [bench.courier("courier-%d" % i, serial=10 + i) for i in range(3)]
    tech = bench.technician()
    deposits = []
    admin_seq = 1
    for n in range(count):
        client = LockerClient(Recorder(bench.locker, capture))
        courier = rng.choice(couriers)
        kind = n % 6
        try:
            if kind in (0, 1) or not deposits:
                deposits.append((courier, client.deposit(courier, size=rng.randint(1, 3))))
                client.deposit(courier, size=1, request_id=deposits[-1][1].request_id)
            elif kind == 2:
                _, dep = deposits.pop(0)
                client.pickup(dep.code if rng.random() < 0.5 else dep.machine_code)
            elif kind == 3:
                owner, dep = deposits.pop()
                client.cancel(owner, dep.request_id)
            elif kind == 4:
                client.tech_open(tech, rng.randint(1, len(bench.locker.slots)))
                client.status(tech)
                client.audit_page(tech, 1, 3)
            else:
                client.admin(op.set_time_message(MASTER, LOCKER_ID, admin_seq,
                                                 bench.clock.now() + 5))
                admin_seq += 1
        except LockerRefused:
            pass            # no free slot etc.: the frames still count as captured traffic
        bench.run_hardware(1.0)
        for sid in bench.locker.slots.sids():
            bench.driver.close(sid)
        bench.run_hardware(0.2)
    return capture


def replay(bench, frames_by_session, rng):
    """Send captured frames in every hostile order; return (sent, accepted) counts."""
    sent = accepted = 0

    def send(session, frame):
        nonlocal sent, accepted
        answer = bench.locker.handle(session, frame)
        sent += 1
        if frame[1] not in (P.HELLO, P.PICKUP_START) and answer[2] == P.OK:
            accepted += 1

    flat = [f for frames in frames_by_session for f in frames]
    for frame in flat:                                      # fresh session after HELLO
        s = bench.locker.new_session()
        send(s, P.request(P.HELLO))
        send(s, frame)
    for frames in frames_by_session:                        # own session replayed in order
        s = bench.locker.new_session()
        for frame in frames:
            send(s, frame)
    for frames in frames_by_session:                        # reordered
        s = bench.locker.new_session()
        send(s, P.request(P.HELLO))
        for frame in rng.sample(frames, len(frames)):
            send(s, frame)
    for _ in range(len(flat)):                              # spliced across sessions
        s = bench.locker.new_session()
        send(s, P.request(P.HELLO))
        for frame in rng.sample(flat, min(4, len(flat))):
            send(s, frame)
    return sent, accepted


def run(sessions, seed):
    rng = random.Random(seed)
    bench = Bench(tempfile.mkdtemp(prefix="replay-"), layout="S*6,M*4,L*2")
    frames = record_sessions(bench, sessions, rng)
    seq_before = bench.locker.store.seq
    sent, accepted = replay(bench, frames, rng)
    written = [r["e"] for r in read_audit(bench.fs, bench.locker.store.key, seq_before + 1)]
    return {"sessions": sessions, "captured": sum(len(f) for f in frames), "replayed": sent,
            "accepted": accepted, "written": written}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    r = run(args.sessions, args.seed)
    print("| sessions recorded | frames captured | frames replayed | accepted |")
    print("|---|---|---|---|")
    print("| %(sessions)d | %(captured)d | %(replayed)d | %(accepted)d |" % r)
    kinds = sorted(set(r["written"]))
    print("journal records written while replaying: %d, kinds %s (only budgeted pickup tries "
          "may appear)" % (len(r["written"]), kinds))
    ok = r["accepted"] == 0 and set(kinds) <= {"try"}
    print("replay:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
