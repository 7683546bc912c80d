"""Power cut at EVERY write point (PRODUCT.md: "proven by injecting a power cut at every
write point, not by argument").

For seeded random sequences of deposits, retries, pickups, wrong codes, cancels, technician
actions, clock moves and clean reboots: run once counting write points, then for each point
k and each FaultFs mode rerun from an empty folder, cut the power at k, boot a fresh locker
on what is left and check what the outside world was promised:
  * the store recovers (no StoreCorrupt), its audit chain verifies, and it keeps working;
  * every deposit that was answered OK is still in its slot (no parcel lost), no slot holds
    anything the answers do not account for (no double allocation);
  * every code from before the cut opens exactly its own slot or is refused; the code of the
    request in flight opens its own slot (still there, or the ADR 0004 reopen window);
  * a deposit in flight retried with the same request id gets one slot, never two.
LOCKER_CUT_SEQUENCES (default 12) and LOCKER_CUT_OPS (default 14) scale the run."""
import os
import random

import pytest
from campaigns.faultfs import MODES, FaultFs, PowerCut
from core import protocol as P
from core import store as S
from core.slot_manager import FREE, OCCUPIED
from drivers import flash_fs
from lockerctl.client import LockerRefused
from lockerctl.rig import Bench

SEQUENCES = int(os.environ.get("LOCKER_CUT_SEQUENCES", 12))
OPS_PER_SEQUENCE = int(os.environ.get("LOCKER_CUT_OPS", 14))
LAYOUT = "S*3,M*3,L*2"
N_SLOTS = 8
MAX_LIVE = 5
CFG = {"layout": LAYOUT, "segment_records": 4, "keep_segments": 2}
COURIERS = ("courier-1", "courier-2")


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """The cut is simulated above the OS: durability against a host crash is not what is
    tested here, and thousands of fsyncs would only make the run slow."""
    monkeypatch.setattr(flash_fs, "_fsync", None)


def make_ops(seed):
    rng = random.Random(seed)
    kinds = (["dep"] * 6 + ["pick"] * 4 + ["wrong"] * 2 + ["retry"] * 2 + ["cancel"] * 2
             + ["tech"] * 2 + ["advance"] * 2 + ["reboot"])
    ops = []
    for _ in range(OPS_PER_SEQUENCE):
        k = rng.choice(kinds)
        if k == "dep":
            ops.append((k, rng.randrange(2), rng.choice((1, 1, 2, 3)),
                        rng.getrandbits(64).to_bytes(8, "big")))
        elif k == "wrong":
            ops.append((k, rng.randrange(1, N_SLOTS + 1), rng.randrange(10 ** 10)))
        elif k == "tech":
            ops.append((k, rng.randrange(1, N_SLOTS + 1),
                        rng.choice((P.TECH_OUT_OF_SERVICE, P.TECH_IN_SERVICE, P.TECH_CLEAR))))
        elif k == "advance":
            ops.append((k, rng.choice((5, 90, 600, 4000))))
        else:
            ops.append((k, rng.randrange(100)))
    return ops


class Deposit:
    def __init__(self, holder, req, size, answer=None):
        self.holder, self.req, self.size = holder, req, size
        self.slot = answer.slot if answer else None
        self.gen = answer.generation if answer else None
        self.code = answer.code if answer else None


class Run:
    """Executes a sequence and remembers only what the outside world was told."""

    def __init__(self, folder, fs):
        self.folder = folder
        self.fs = fs
        self.bench = None
        self.live = {}            # slot -> Deposit answered OK and not answered gone
        self.used = []            # Deposits whose pickup/cancel/clear was answered OK
        self.answered = []        # every Deposit answered OK
        self.oos = set()
        self.inflight = None      # (kind, Deposit or slot) of the request the cut hit
        self.creds = {}

    def cred(self, holder):
        """One credential per courier for the whole run: the phone keeps its key, and the
        code of a retried deposit is derived from it."""
        if holder not in self.creds:
            self.creds[holder] = self.bench.courier(holder=holder,
                                                    serial=COURIERS.index(holder) + 1)
        return self.creds[holder]

    def settle(self):
        b = self.bench
        b.run_hardware(1.0)
        for sid in range(1, N_SLOTS + 1):
            if b.driver.door_open(sid):
                b.driver.close(sid)
        b.run_hardware(1.0)

    def gone(self, dep):
        self.live.pop(dep.slot, None)
        self.used.append(dep)

    def execute(self, ops):
        self.bench = Bench(self.folder, fs=self.fs, **CFG)
        self.settle()
        for op in ops:
            self.step(op)
            self.inflight = None
            self.settle()

    def step(self, op):
        b = self.bench
        kind = op[0]
        live = [self.live[s] for s in sorted(self.live)]
        if kind == "dep":
            if len(self.live) >= MAX_LIVE:
                return
            _, who, size, req = op
            dep = Deposit(COURIERS[who], req, size)
            self.inflight = ("dep", dep)
            try:
                ans = b.client.deposit(self.cred(dep.holder), size=size, request_id=req)
            except LockerRefused as e:
                assert e.status == P.E_NO_SLOT, e.message
                return
            dep = Deposit(dep.holder, req, size, ans)
            assert dep.slot not in self.live, "slot %d handed out twice" % dep.slot
            self.live[dep.slot] = dep
            self.answered.append(dep)
        elif kind == "retry" and self.answered:
            dep = self.answered[op[1] % len(self.answered)]
            self.inflight = ("dep", dep)
            try:
                ans = b.client.deposit(self.cred(dep.holder), size=dep.size, request_id=dep.req)
            except LockerRefused as e:
                assert e.status == P.E_DONE and dep not in self.live.values(), e.message
                return
            assert (ans.slot, ans.generation) == (dep.slot, dep.gen)
        elif kind in ("pick", "cancel") and live:
            dep = live[op[1] % len(live)]
            self.inflight = (kind, dep)
            try:
                if kind == "pick":
                    assert b.client.pickup(dep.code)["slot"] == dep.slot
                else:
                    assert b.client.cancel(self.cred(dep.holder), dep.req) == dep.slot
            except LockerRefused as e:     # locked out, or its slot is out of service
                assert e.status in (P.E_LOCKED_OUT, P.E_CODE), e.message
                return
            self.gone(dep)
        elif kind == "wrong":
            _, sid, digits = op
            d = "%010d" % digits
            self.inflight = ("wrong", sid)
            with pytest.raises(LockerRefused):
                b.client.pickup("%03d-%s-%s" % (sid, d[:5], d[5:]))
        elif kind == "tech":
            _, sid, action = op
            self.inflight = ("tech", sid)
            b.client.tech_open(b.technician(), sid, action)
            if action == P.TECH_OUT_OF_SERVICE:
                self.oos.add(sid)
            elif action == P.TECH_IN_SERVICE:
                self.oos.discard(sid)
            elif sid in self.live:
                self.gone(self.live[sid])
        elif kind == "advance":
            b.time.advance(op[1])
            b.client.challenge = None
        elif kind == "reboot":
            self.inflight = ("reboot", None)
            b.boot()


def count_points(folder, ops):
    fs = FaultFs(flash_fs.FolderFs(folder))
    run = Run(folder, fs)
    run.execute(ops)
    return fs, run


def check_recovery(run, where):
    """Boot on what the cut left and hold the locker to every answer it gave."""
    plain = flash_fs.FolderFs(run.folder)
    b = run.bench
    if b is None:                                  # the cut hit the very first boot
        b = run.bench = Bench(run.folder, **CFG)
    else:
        b.boot(fs=plain)
    locker = b.locker
    audit = list(S.read_audit(plain, locker.store.key))
    ns = [r["n"] for r in audit]
    assert ns == list(range(ns[0], ns[0] + len(ns))) and ns[-1] == locker.store.seq, where

    kind, subject = run.inflight or (None, None)
    maybe_gone = subject if kind in ("pick", "cancel") else None
    if kind == "tech":                             # a technician clear may have landed
        maybe_gone = run.live.get(subject)
    in_flight_slot = (subject.slot if isinstance(subject, Deposit)
                      else subject if kind == "tech" else None)
    extra = []
    for sid in range(1, N_SLOTS + 1):
        s = locker.slots.get(sid)
        dep = run.live.get(sid)
        if dep is not None and dep is not maybe_gone:
            assert s.state == OCCUPIED and s.gen == dep.gen, "%s: parcel in %d lost" % (
                where, sid)
        elif dep is None and s.state == OCCUPIED:
            extra.append(sid)
        if sid != in_flight_slot:
            assert s.out_of_service == (sid in run.oos), "%s: slot %d service flag" % (
                where, sid)
    # the only unexplained parcel may be the deposit in flight (durable, never answered)
    assert len(extra) <= 1, "%s: slots %s occupied by nobody's answer" % (where, extra)
    if extra:
        assert kind == "dep", where
        s = locker.slots.get(extra[0])
        assert (s.req, s.holder) == (subject.req, subject.holder.encode()), where

    tech = b.technician()
    for sid in range(1, N_SLOTS + 1):                # after the checks: all back in service
        if locker.slots.get(sid).out_of_service:
            b.client.tech_open(tech, sid, P.TECH_IN_SERVICE)

    # the recipient whose pickup was in flight retries at once: their own door opens
    if maybe_gone is not None:
        try:
            assert b.client.pickup(maybe_gone.code)["slot"] == maybe_gone.slot, where
            run.gone(maybe_gone)
        except LockerRefused as e:
            gone = locker.slots.get(maybe_gone.slot).state != OCCUPIED
            # a landed cancel or technician clear: the code is right, the parcel is gone, and
            # the door stays shut (only a pickup's own code reopens, issue 11.6)
            assert e.status == P.E_LOCKED_OUT or (
                e.status == P.E_DONE and gone and kind != "pick"), (where, e.message)
            if gone:
                run.gone(maybe_gone)
    run.settle()

    # the courier whose deposit was in flight retries with the same request id: one slot
    if kind == "dep" and subject in run.used:      # a retry of a finished deposit
        with pytest.raises(LockerRefused) as e:
            b.client.deposit(run.cred(subject.holder), size=subject.size,
                             request_id=subject.req)
        assert e.value.status == P.E_DONE, where
    elif kind == "dep":
        again = b.client.deposit(run.cred(subject.holder), size=subject.size,
                                 request_id=subject.req)
        if extra:
            assert again.slot == extra[0], where
        elif subject.slot is not None and subject.slot in run.live:
            assert again.slot == subject.slot, where
        else:
            assert again.slot not in run.live, where
        dep = Deposit(subject.holder, subject.req, subject.size, again)
        run.live[dep.slot] = dep
        run.answered.append(dep)
        run.settle()
    occupied = {sid for sid in range(1, N_SLOTS + 1)
                if locker.slots.get(sid).state == OCCUPIED}
    assert occupied == set(run.live), "%s: %s vs %s" % (where, occupied, set(run.live))

    # lockout over, reopen windows over: live codes open their slot, spent codes nothing
    b.time.advance(5 * 3600)
    b.client.challenge = None
    for sid, dep in sorted(run.live.items()):
        assert b.client.pickup(dep.code)["slot"] == sid, where
        run.settle()
    for dep in run.used:
        with pytest.raises(LockerRefused):
            b.client.pickup(dep.code)
    for sid in range(1, N_SLOTS + 1):
        assert locker.slots.get(sid).state == FREE, where

    # and it keeps working, across another reboot
    b.time.advance(5 * 3600)
    b.client.challenge = None
    fresh = b.client.deposit(run.cred(COURIERS[0]), size=1)
    run.settle()
    b.boot(fs=plain)
    assert b.client.pickup(fresh.code)["slot"] == fresh.slot, where
    assert list(S.read_audit(plain, b.locker.store.key)), where


def test_power_cut_at_every_write_point(tmp_path, capsys):
    ran = {"sequences": 0, "points": 0, "cuts": 0, "inflight": 0}
    kinds = {}
    for seed in range(SEQUENCES):
        ops = make_ops(seed)
        counted, clean = count_points(str(tmp_path / ("count-%d" % seed)), ops)
        points = counted.points
        assert points > 10 and clean.answered
        for op, _ in counted.log:
            kinds[op] = kinds.get(op, 0) + 1
        ran["sequences"] += 1
        ran["points"] += points
        for k in range(1, points + 1):
            for mode in MODES:
                folder = str(tmp_path / ("s%d-k%d-%s" % (seed, k, mode)))
                fs = FaultFs(flash_fs.FolderFs(folder), cut_at=k, mode=mode,
                             tear=random.Random(seed * 7919 + k))
                run = Run(folder, fs)
                with pytest.raises(PowerCut):
                    run.execute(ops)
                where = "seed %d, cut at write point %d/%d (%s %s), mode %s, in flight %s" % (
                    seed, k, points, fs.log[-1][0], fs.log[-1][1], mode, run.inflight)
                check_recovery(run, where)
                ran["cuts"] += 1
                ran["inflight"] += run.inflight is not None
    with capsys.disabled():
        print("\npower cut: %(sequences)d sequences, %(points)d write points, %(cuts)d cuts "
              "exercised (%(inflight)d with a request in flight)" % ran)
        print("power cut: write points by kind: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(kinds.items())))
    assert ran["cuts"] == ran["points"] * len(MODES)
    assert set(kinds) == {"append", "replace-write", "replace-rename", "remove"}


def test_faultfs_counts_every_write_point(tmp_path):
    """The harness itself: each kind of write is a point, and the cut leaves what the
    mode promises."""
    inner = flash_fs.FolderFs(str(tmp_path / "f"))
    inner.ensure()
    fs = FaultFs(inner)
    fs.append("a", b"hello\n")
    fs.replace("b", (b"x", b"y"))
    fs.remove("a")
    assert fs.points == 4
    assert [op for op, _ in fs.log] == ["append", "replace-write", "replace-rename", "remove"]

    def cut(k, mode, tear=None):
        root = str(tmp_path / ("c%d%s" % (k, mode)))
        inner = flash_fs.FolderFs(root)
        inner.ensure()
        inner.append("a", b"old\n")
        inner.replace("b", (b"old",))
        fs = FaultFs(inner, cut_at=k, mode=mode, tear=tear)
        with pytest.raises(PowerCut):
            fs.append("a", b"new-line\n")
            fs.replace("b", (b"new",))
            fs.remove("a")
        with pytest.raises(PowerCut):
            fs.listdir()                             # the board is off
        files = {}
        for name in sorted(inner.listdir()):
            with inner.open_read(name) as f:
                files[name] = f.read()
        return files

    assert cut(1, "lost") == {"a": b"old\n", "b": b"old"}
    assert cut(1, "torn", tear=4) == {"a": b"old\nnew-", "b": b"old"}
    assert cut(1, "done") == {"a": b"old\nnew-line\n", "b": b"old"}
    assert cut(2, "lost") == {"a": b"old\nnew-line\n", "b": b"old"}
    assert cut(2, "torn", tear=2) == {"a": b"old\nnew-line\n", "b": b"old", "b.tmp": b"ne"}
    assert cut(3, "lost") == {"a": b"old\nnew-line\n", "b": b"old", "b.tmp": b"new"}
    assert cut(3, "done") == {"a": b"old\nnew-line\n", "b": b"new"}
    assert cut(4, "lost") == {"a": b"old\nnew-line\n", "b": b"new"}
    assert cut(4, "done") == {"b": b"new"}
