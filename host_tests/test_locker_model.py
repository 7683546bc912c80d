"""The whole locker against a plain Python model of what it promises (hypothesis stateful).

Every rule drives the real locker through LockerClient frames and the fake hardware, then
predicts the exact answer from the model: which slot a deposit gets (smallest that fits,
lowest id, door closed, in service), whether a code opens (right code, wrong code, used code,
another slot's code, expired, out of service, reopen window), when the human-code budgets
(per slot and locker-wide) lock out, what reclaim and the technician do. After every step
the locker's slots must equal the model's. A spent code never opens anything again, with one
designed exception (ADR 0004): its own door, emptied by ITS pickup (not by a cancel, reclaim
or technician clear), for REOPEN_S after release while nothing new was deposited. A right
code is never a wrong code: out of service and "parcel has left" are said as such and cost
no try (issue 12.4).
A courier retrying a deposit with a renewed credential gets the code of the new key (11.7).
LOCKER_EXAMPLES / LOCKER_STEPS scale the run (defaults 60 x 30)."""
import os
import shutil
import tempfile

from core import credentials
from core import protocol as P
from core import store as S
from core import throttle as T
from core.slot_manager import OCCUPIED, RECENT_DEPOSITS, REOPEN_S
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from lockerctl.client import LockerRefused
from lockerctl.rig import Bench

EXAMPLES = int(os.environ.get("LOCKER_EXAMPLES", 60))
STEPS = int(os.environ.get("LOCKER_STEPS", 30))
LAYOUT = "S*2,M*2,L"
SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3}
COURIERS = {"courier-1": (1, 0), "courier-2": (2, 0),
            "depot": (3, credentials.SCOPE_RECLAIM_ANY)}       # holder -> (serial, flags)
STATS = {"examples": 0, "steps": 0, "opened": 0, "refused": 0}
OUTCOMES = {}                 # refusal name -> count, reported with the totals


class Parcel:
    def __init__(self, holder, req, dep, sid):
        self.holder = holder
        self.req = req
        self.code = dep.code
        self.machine = dep.machine_code
        self.gen = dep.generation
        self.ts = dep.deposit_ts
        self.sid = sid


def budget_wait(tat, now, burst, period):
    """docs/security.md, "Lockout", written out independently: a bucket of burst b and
    period T allows an attempt while its debt tat - now is at most (b - 1) * T."""
    return max(0, tat - now - (burst - 1) * period)


def with_slot(code, sid):
    """The same secret part presented for another slot (human or machine form)."""
    sep = "." if "." in code else "-"
    return "%03d%s%s" % (sid, sep, code.split(sep, 1)[1])


class LockerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        STATS["examples"] += 1
        self.dir = tempfile.mkdtemp(prefix="locker-model-")
        self.b = Bench(os.path.join(self.dir, "store"), layout=LAYOUT, segment_records=7,
                       keep_segments=2)
        self.ttl = self.b.cfg["ttl_s"]
        self.t0 = self.now
        self.parcels = {}            # sid -> Parcel
        self.gen = {sid: 0 for sid in SIZES}
        self.released = {}           # sid -> (Parcel, released at, how): the reopen window
        self.used = []               # parcels whose code was spent (picked/cancelled/...)
        self.oos = set()
        self.door_open = set()
        self.recent = []             # finished (holder, req): deposit retries say "done"
        self.g_tat = 0               # locker-wide human-code budget
        self.s_tat = {}              # per-slot budgets
        self.failures = 0            # human-form guesses the locker answered
        self.renewals = 0
        self.last_seq = self.b.locker.store.seq

    @property
    def now(self):
        return self.b.time.rtc

    def teardown(self):
        audit = list(S.read_audit(self.b.fs, self.b.locker.store.key))
        ns = [r["n"] for r in audit]
        assert ns == list(range(ns[0], ns[0] + len(ns)))        # seq strictly +1
        assert ns[-1] == self.b.locker.store.seq
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------------

    def settle(self):
        """Pulses run, the door monitor sees the doors (1 s of hardware time)."""
        self.b.run_hardware(1.0)

    def cred(self, holder, renewed=False):
        """The holder's credential; renewed: a new one (new serial, hence a new key)."""
        serial, flags = COURIERS[holder]
        if renewed:
            self.renewals += 1
            serial += 100 * self.renewals
        return self.b.courier(holder=holder, serial=serial, flags=flags)

    def call(self, fn, *args, **kw):
        """Run one request; return (answer, None) or (None, LockerRefused)."""
        STATS["steps"] += 1
        try:
            return fn(*args, **kw), None
        except LockerRefused as e:
            return None, e

    def expect_refused(self, err, status):
        assert err is not None, "expected %s, locker said OK" % status
        assert err.status == status, (err.status, err.message, status)
        STATS["refused"] += 1
        OUTCOMES[err.name] = OUTCOMES.get(err.name, 0) + 1

    def free_slot_for(self, size):
        fits = [sid for sid, sz in SIZES.items()
                if sz >= size and sid not in self.parcels and sid not in self.oos
                and sid not in self.door_open]
        return min(fits, key=lambda sid: (SIZES[sid], sid)) if fits else None

    def release(self, sid, how):
        """The parcel in sid left: how = "pick", "cancel", "recl" or "tech"."""
        p = self.parcels.pop(sid)
        self.released[sid] = (p, self.now, how)
        self.used.append(p)
        self.recent.append((p.holder, p.req))
        if len(self.recent) > RECENT_DEPOSITS:
            self.recent.pop(0)
        self.door_open.add(sid)

    def wait(self, sid):
        return max(budget_wait(self.g_tat, self.now, T.GLOBAL_BURST, T.GLOBAL_PERIOD_S),
                   budget_wait(self.s_tat.get(sid, 0), self.now, T.SLOT_BURST,
                               T.SLOT_PERIOD_S))

    def charge(self, sid):
        self.g_tat = max(self.g_tat, self.now) + T.GLOBAL_PERIOD_S
        self.s_tat[sid] = max(self.s_tat.get(sid, 0), self.now) + T.SLOT_PERIOD_S
        self.failures += 1

    def refund(self, sid):
        self.g_tat = self.g_tat - T.GLOBAL_PERIOD_S if self.g_tat > self.now else self.g_tat
        if self.s_tat.get(sid, 0) > self.now:
            self.s_tat[sid] -= T.SLOT_PERIOD_S
        self.failures -= 1

    def expect_pickup(self, sid, parcel, code):
        """What presenting parcel's code for slot sid does (parcel None: a random code).
        Only a code that is not the code of the slot's current or last parcel is wrong."""
        if sid not in SIZES:
            return "bad-slot"
        if "." not in code and self.wait(sid):
            return "locked"
        if parcel is None or parcel.sid != sid or code not in (parcel.code, parcel.machine):
            return "wrong"
        held = self.parcels.get(sid)
        if held is parcel:
            if sid in self.oos:
                return "oos"
            return "expired" if self.now > parcel.ts + self.ttl else "open"
        rel = self.released.get(sid)
        if held is not None or not rel or rel[0] is not parcel:
            return "wrong"                           # another parcel's turn: a dead code
        if rel[2] == "pick" and 0 <= self.now - rel[1] <= REOPEN_S:
            return "oos" if sid in self.oos else "reopen"
        return "gone"

    def pickup(self, code, sid, parcel):
        want = self.expect_pickup(sid, parcel, code)
        got, err = self.call(self.b.client.pickup, code)
        human = "." not in code
        if human and want not in ("locked", "bad-slot"):
            self.charge(sid)               # the START the locker answered: one guess
            if want in ("open", "expired", "oos", "gone"):
                self.refund(sid)           # the right code was no guess (reopen keeps it)
        if want in ("open", "reopen"):
            assert err is None, (want, err and err.message)
            assert got["slot"] == sid
            STATS["opened"] += 1
            if want == "open":
                self.release(sid, "pick")
            self.door_open.add(sid)
        elif want == "locked":
            self.expect_refused(err, P.E_LOCKED_OUT)
            assert err.retry_after == self.wait(sid)
        elif want == "bad-slot":
            self.expect_refused(err, P.E_VALUE)
        elif want == "expired":
            self.expect_refused(err, P.E_EXPIRED)
        elif want == "oos":                         # the truth, no strike
            self.expect_refused(err, P.E_OUT_OF_SERVICE)
        elif want == "gone":                        # the truth, no strike
            self.expect_refused(err, P.E_DONE)
        else:
            # the phone sees the locker's cB fail: "wrong-code", no FINISH sent
            self.expect_refused(err, P.E_CODE)
        self.settle()

    # ---- courier rules ----------------------------------------------------------------

    @rule(holder=st.sampled_from(sorted(COURIERS)), size=st.sampled_from([1, 1, 2, 2, 3, 4]))
    def deposit(self, holder, size):
        want = self.free_slot_for(size) if size <= 3 else "bad"
        now = self.now
        dep, err = self.call(self.b.client.deposit, self.cred(holder), size=size)
        if want == "bad":
            self.expect_refused(err, P.E_VALUE)
        elif want is None:
            self.expect_refused(err, P.E_NO_SLOT)
        else:
            assert err is None, err.message
            assert dep.slot == want, (dep.slot, want)
            assert want not in self.parcels                 # never two parcels in a slot
            self.gen[want] += 1
            assert (dep.generation, dep.deposit_ts, dep.size) == (self.gen[want], now,
                                                                  SIZES[want])
            self.parcels[want] = Parcel(holder, dep.request_id, dep, want)
            self.s_tat.pop(want, None)     # a new parcel: a fresh per-slot budget
            self.door_open.add(want)
        self.settle()

    @precondition(lambda self: self.parcels or self.recent)
    @rule(i=st.integers(0, 99), finished=st.booleans(), renewed=st.booleans())
    def deposit_retry(self, i, finished, renewed):
        """The courier's link dropped: the same request id again (any time later)."""
        if finished and self.recent:
            holder, req = self.recent[i % len(self.recent)]
            live = None
        else:
            if not self.parcels:
                return
            live = sorted(self.parcels.values(), key=lambda p: p.sid)[i % len(self.parcels)]
            holder, req = live.holder, live.req
        cred = self.cred(holder, renewed)
        dep, err = self.call(self.b.client.deposit, cred, size=1, request_id=req)
        if live is not None:
            assert err is None, err.message
            assert (dep.slot, dep.generation, dep.deposit_ts) == (live.sid, live.gen, live.ts)
            self.door_open.add(live.sid)                     # same slot, door again
            # the code the phone computes now is THE code (issue 11.7), with its new key
            live.code, live.machine = dep.code, dep.machine_code
        else:
            self.expect_refused(err, P.E_DONE)
        self.settle()

    @precondition(lambda self: self.parcels or self.recent)
    @rule(i=st.integers(0, 99), finished=st.booleans())
    def cancel(self, i, finished):
        if finished and self.recent:
            holder, req = self.recent[i % len(self.recent)]
            live = None
        else:
            if not self.parcels:
                return
            live = sorted(self.parcels.values(), key=lambda p: p.sid)[i % len(self.parcels)]
            holder, req = live.holder, live.req
        got, err = self.call(self.b.client.cancel, self.cred(holder), req)
        if live is not None:
            assert err is None, err.message
            assert got == live.sid
            self.release(live.sid, "cancel")
        elif self.just_emptied("cancel", lambda sid, p, at: (p.holder, p.req) == (holder, req)):
            sid = self.just_emptied("cancel",
                                    lambda sid, p, at: (p.holder, p.req) == (holder, req))
            assert err is None and got == sid, err and err.message    # ADR 0004: reopens
            self.door_open.add(sid)
        else:
            self.expect_refused(err, P.E_DONE)
        self.settle()

    def just_emptied(self, how, ok):
        """The slot a courier's retry reopens (ADR 0004: cut between record and door): one
        that the same flow emptied (a cancel retry never reopens a collected parcel's door)."""
        for sid in sorted(self.released):
            p, at, by = self.released[sid]
            if (sid not in self.parcels and by == how and 0 <= self.now - at <= REOPEN_S
                    and ok(sid, p, at)):
                return sid
        return None

    @precondition(lambda self: self.parcels)
    @rule(holder=st.sampled_from(sorted(COURIERS)), want=st.integers(0, 5))
    def reclaim(self, holder, want):
        any_ok = COURIERS[holder][1] & credentials.SCOPE_RECLAIM_ANY
        expired = sorted(sid for sid, p in self.parcels.items() if self.now > p.ts + self.ttl)
        mine = [sid for sid in expired if want in (0, sid)
                and (any_ok or self.parcels[sid].holder == holder)]
        got, err = self.call(self.b.client.reclaim, self.cred(holder), want)
        if mine:
            assert err is None, err.message
            assert got == mine[0]
            self.release(got, "recl")
        elif self.just_emptied("recl", lambda sid, p, at: want in (0, sid)
                               and at > p.ts + self.ttl and (any_ok or p.holder == holder)):
            assert err is None, err.message                         # ADR 0004: reopens
            self.door_open.add(got)
        else:
            self.expect_refused(err, P.E_STATE)
        self.settle()

    # ---- recipient rules --------------------------------------------------------------

    @precondition(lambda self: self.parcels)
    @rule(i=st.integers(0, 99), machine=st.booleans())
    def pickup_right_code(self, i, machine):
        p = sorted(self.parcels.values(), key=lambda p: p.sid)[i % len(self.parcels)]
        self.pickup(p.machine if machine else p.code, p.sid, p)

    @rule(kind=st.sampled_from(["random", "used", "other-slot"]), i=st.integers(0, 99),
          sid=st.integers(1, 6), digits=st.integers(0, 10 ** 10 - 1), machine=st.booleans())
    def pickup_bad_code(self, kind, i, sid, digits, machine):
        """A guess, a code already spent, or a real code presented for another slot."""
        pool = sorted(self.parcels.values(), key=lambda p: p.sid) + self.used
        if kind == "used" and self.used:
            p = self.used[i % len(self.used)]
            self.pickup(p.machine if machine else p.code, p.sid, p)
        elif kind == "other-slot" and pool:
            p = pool[i % len(pool)]
            other = (p.sid + sid % 4) % 5 + 1          # any slot but its own
            self.pickup(with_slot(p.machine if machine else p.code, other), other, p)
        else:
            d = "%010d" % digits
            self.pickup("%03d-%s-%s" % (sid, d[:5], d[5:]), sid, None)

    # ---- doors, technician, time, power -----------------------------------------------

    @precondition(lambda self: self.door_open)
    @rule(i=st.integers(0, 99))
    def close_door(self, i):
        sid = sorted(self.door_open)[i % len(self.door_open)]
        self.b.driver.close(sid)
        self.door_open.discard(sid)
        self.settle()

    @rule(sid=st.integers(1, 5), action=st.sampled_from([P.TECH_OPEN_ONLY, P.TECH_CLEAR,
                                                         P.TECH_OUT_OF_SERVICE,
                                                         P.TECH_IN_SERVICE]))
    def technician(self, sid, action):
        got, err = self.call(self.b.client.tech_open, self.b.technician(), sid, action)
        assert err is None, err.message
        if action == P.TECH_CLEAR:
            if sid in self.parcels:
                self.release(sid, "tech")
            elif sid in self.released:            # checked empty by hand: no reopen window
                p, at, _ = self.released[sid]
                self.released[sid] = (p, at, "tech")
            self.door_open.add(sid)
        elif action == P.TECH_OPEN_ONLY:
            self.door_open.add(sid)
        elif action == P.TECH_OUT_OF_SERVICE:
            self.oos.add(sid)
        else:
            self.oos.discard(sid)
        assert got["slot"] == sid
        assert bool(got["bits"] & 1) == (sid in self.parcels)           # ST_OCCUPIED
        assert bool(got["bits"] & 4) == (sid in self.oos)               # ST_OUT_OF_SERVICE
        self.settle()

    @rule(seconds=st.one_of(st.integers(1, 600), st.integers(601, 7200),
                            st.integers(3600 * 72 + 1, 3600 * 80)))
    def advance_clock(self, seconds):
        self.b.time.advance(seconds)
        self.b.client.challenge = None            # the phone's old challenge went stale
        # the board's main loop ran all that time: its tick() persisted the clock floor
        # (hourly), so a reboot resumes from it (not from a floor days behind the RTC,
        # whose jump of more than 8 days the clock would refuse: core/clock.py)
        self.b.locker.tick()
        self.settle()

    @rule()
    def reboot(self):
        self.b.boot()
        for sid in self.door_open:                # the doors did not move in the outage
            self.b.driver.force_open(sid)
        self.settle()

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def slots_match_the_model(self):
        slots = self.b.locker.slots
        for sid in SIZES:
            s = slots.get(sid)
            p = self.parcels.get(sid)
            assert (s.state == OCCUPIED) == (p is not None), sid
            if p is not None:
                assert s.gen == p.gen and s.deposit_ts == p.ts, sid
            assert s.out_of_service == (sid in self.oos), sid
            assert bool(self.b.driver.doors[sid]) == (sid in self.door_open), sid
        assert self.b.locker.clock.now() == self.now

    @invariant()
    def journal_only_grows(self):
        seq = self.b.locker.store.seq
        assert seq >= self.last_seq
        self.last_seq = seq

    @invariant()
    def throttle_bound_holds(self):
        assert self.failures <= T.max_attempts(self.now - self.t0)
        for sid in SIZES:
            assert self.b.locker.throttle.retry_after(sid, self.now) == self.wait(sid), sid


def test_locker_against_model(capsys):
    before = dict(STATS)
    run_state_machine_as_test(LockerMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    ran = {k: STATS[k] - before[k] for k in STATS}
    with capsys.disabled():
        print("\nlocker model: %(examples)d examples, %(steps)d requests, "
              "%(opened)d doors opened by codes, %(refused)d refusals checked" % ran)
        print("locker model refusals: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(OUTCOMES.items())))
    assert ran["examples"] >= 1 and ran["steps"] > 0
