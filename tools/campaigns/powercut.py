"""Power-cut campaign: random operation sequences with the power cut at a write point of the
store, then reboot, retry and check what is physically true against what the locker says.

Part 1 (in-process, CPython, host_tests/faultfs.py): every sequence runs once without a cut
(learning its N write points), then with the power cut at a sampled point k in 1..N and a
sampled mode (lost / torn / done); the first --sweep sequences are cut at EVERY point in
EVERY mode. Part 2 (MicroPython): the simulator process is SIGKILLed at random moments of
deposit/pickup traffic, restarted on the same folder, and the same checks run.

Figures that must be zero: lost parcels (a parcel physically in a slot that its code or its
courier can no longer open), double allocations (a deposit answered with a slot that holds a
parcel), wrong-slot opens (a door other than the parcel's opened, or a wrong code opened one),
recovery failures (boot refuses, the audit chain breaks, or two boots disagree).

    .venv/bin/python tools/campaigns/powercut.py [--sequences 10000] [--sweep 200]
        [--kills 200] [--jobs 2] [--seconds 900] [--replay SEED:K:MODE]
"""
import argparse
import multiprocessing
import os
import random
import sys
import time

from core import phone
from core import store as store_mod
from drivers import flash_fs  # (firmware)
from lockerctl.rig import locker_state
from lockerctl.transport import TransportError

from campaigns.common import (
    Bench,
    Figures,
    LockerRefused,
    P,
    Sim,
    close_all_doors,
    courier,
    scratch_dir,
    service_doors,
    technician,
    wipe,
)
from campaigns.faultfs import MODES, FaultFs, PowerCut

MUST_BE_ZERO = ("lost parcels", "double allocations", "wrong-slot opens", "recovery failures",
                "unexpected errors", "sim boots out of memory")
LAYOUT = "S*2,M,L"
SLOTS = 4
MAX_WRONG = 3                 # wrong codes per sequence: stays under the free strikes


class Failure(Exception):
    """A must-be-zero event: (figure name, description)."""

    def __init__(self, figure, text):
        Exception.__init__(self, "%s: %s" % (figure, text))
        self.figure = figure


class Parcel:
    def __init__(self, who, req_id, dep):
        self.who = who                # index of the courier
        self.req_id = req_id
        self.slot = dep.slot
        self.gen = dep.generation
        self.deposit_ts = dep.deposit_ts
        self.ttl_s = dep.ttl_s
        self.code = dep.code
        self.machine_code = dep.machine_code


class Run:
    """One sequence on one scratch folder: the locker, and what is physically true."""

    def __init__(self, seed, folder, fs):
        self.rng = random.Random(seed)
        self.folder = folder
        self.plain = flash_fs.FolderFs(folder)
        self.fs = fs
        self.bench = None
        self.parcels = {}            # slot -> Parcel physically inside
        self.done = []               # (courier, req_id) of deposits finished for good
        self.picked = []             # codes already used (old codes for wrong attempts)
        self.wrong = 0
        self.ops = []
        self.in_flight = None        # (name, args) of the op the cut interrupted

    # ---- plumbing --------------------------------------------------------------------

    def boot(self, fs):
        if self.bench is None:
            self.bench = Bench.__new__(Bench)
            self.bench.folder = self.folder
            self.bench.time = self._time
            self.bench.cfg = self._cfg
            self.bench.sensors = True
            self.bench.fs = fs
        self.bench.boot(fs)
        close_all_doors(self.bench)

    def setup(self, segment_records):
        from core import config
        from lockerctl.rig import LOCKER_ID
        from targets import sim_hw
        self._time = sim_hw.ManualTime()
        self._cfg = config.build({"locker_id": LOCKER_ID.hex(), "layout": LAYOUT,
                                  "segment_records": segment_records, "keep_segments": 2})
        now = self._time.rtc
        self.couriers = [courier(now, "courier-%d" % i, serial=1 + i) for i in range(2)]
        self.tech = technician(now)

    @property
    def client(self):
        return self.bench.client

    def expect_doors(self, driven, slot, what):
        others = [s for s in driven if s != slot]
        if others:
            raise Failure("wrong-slot opens", "%s drove doors %s, expected %s"
                          % (what, driven, slot))
        return slot in driven

    # ---- operations (each may raise PowerCut) --------------------------------------

    def op_deposit(self, who, req_id, size):
        try:
            dep = self.client.deposit(self.couriers[who], size=size, request_id=req_id)
        except LockerRefused as e:
            if e.name in ("no-free-slot", "already-done"):
                return
            raise Failure("recovery failures", "deposit refused: %s" % e)
        self.place(who, req_id, dep)

    def place(self, who, req_id, dep):
        held = self.parcels.get(dep.slot)
        if held is not None and held.req_id != req_id:
            raise Failure("double allocations", "slot %d given to a deposit while it holds "
                          "the parcel of deposit %s" % (dep.slot, held.req_id.hex()))
        opened = self.expect_doors(service_doors(self.bench), dep.slot, "deposit")
        if held is not None:
            if dep.generation != held.gen:
                raise Failure("double allocations", "retry got generation %d, parcel has %d"
                              % (dep.generation, held.gen))
        elif opened:
            self.parcels[dep.slot] = Parcel(who, req_id, dep)
        close_all_doors(self.bench)

    def op_pickup(self, slot, form):
        p = self.parcels.get(slot)
        if p is None:
            return
        if self.clock_now() > p.deposit_ts + p.ttl_s:
            return self.op_reclaim(slot)
        code = p.machine_code if form else p.code
        try:
            got = self.client.pickup(code)
        except LockerRefused as e:
            raise Failure("lost parcels", "code of slot %d refused: %s" % (slot, e))
        if got["slot"] != slot:
            raise Failure("wrong-slot opens", "code of slot %d opened %d" % (slot, got["slot"]))
        self.take_out(slot, "pickup")
        self.picked.append(code)

    def take_out(self, slot, what):
        if self.expect_doors(service_doors(self.bench), slot, what):
            del self.parcels[slot]
        close_all_doors(self.bench)

    def op_wrong(self, slot, old_code):
        if self.wrong >= MAX_WRONG:
            return
        if old_code is not None:
            code = old_code
            self.bench.time.advance(130)          # past the reopen window of ADR 0004
        else:
            code = "%03d-%010d" % (slot, self.rng.randrange(10 ** 10))
        self.wrong += 1
        try:
            got = self.client.pickup(code)
        except (LockerRefused, phone.CodeFormatError):
            service_doors(self.bench)
            return
        raise Failure("wrong-slot opens", "wrong code %s opened slot %d" % (code, got["slot"]))

    def op_cancel(self, slot):
        p = self.parcels.get(slot)
        if p is None:
            return
        try:
            got = self.client.cancel(self.couriers[p.who], p.req_id)
        except LockerRefused as e:
            raise Failure("lost parcels", "cancel of slot %d refused: %s" % (slot, e))
        if got != slot:
            raise Failure("wrong-slot opens", "cancel of slot %d opened %d" % (slot, got))
        self.done.append((p.who, p.req_id))
        self.take_out(slot, "cancel")

    def op_reclaim(self, slot):
        p = self.parcels.get(slot)
        if p is None:
            return
        late = p.deposit_ts + p.ttl_s + 60 - self.clock_now()
        if late > 0:
            self.bench.time.advance(late)
        try:
            got = self.client.reclaim(self.couriers[p.who], slot)
        except LockerRefused as e:
            raise Failure("lost parcels", "reclaim of slot %d refused: %s" % (slot, e))
        if got != slot:
            raise Failure("wrong-slot opens", "reclaim of slot %d opened %d" % (slot, got))
        self.take_out(slot, "reclaim")

    def op_tech(self, slot, action):
        if action == "clear":
            self.client.tech_open(self.tech, slot, P.TECH_CLEAR)
            driven = service_doors(self.bench)
            self.expect_doors(driven, slot, "technician clear")
            if slot in driven:
                self.parcels.pop(slot, None)
        elif action == "open":
            self.client.tech_open(self.tech, slot, P.TECH_OPEN_ONLY)
            self.expect_doors(service_doors(self.bench), slot, "technician open")
        else:                        # out of service and back: only on an empty slot
            if slot in self.parcels:
                return
            self.client.tech_open(self.tech, slot, P.TECH_OUT_OF_SERVICE)
            self.client.tech_open(self.tech, slot, P.TECH_IN_SERVICE)
            self.expect_doors(service_doors(self.bench), None, "technician service")
        close_all_doors(self.bench)

    def op_reboot(self):
        self.boot(self.bench.fs)

    def clock_now(self):
        return self.bench.clock.now()

    # ---- the sequence --------------------------------------------------------------

    def next_op(self):
        """Pick the next operation from the rng and the physical state (deterministic)."""
        rng = self.rng
        kinds = ["deposit", "deposit", "retry", "cancel", "pickup", "pickup", "wrong",
                 "reclaim", "tech", "reboot"]
        kind = rng.choice(kinds)
        full = sorted(self.parcels)
        if kind in ("retry", "cancel", "pickup", "reclaim") and not full:
            kind = "deposit"
        if kind == "deposit":
            return "deposit", (rng.randrange(2), rng.randbytes(8), rng.choice((1, 1, 2, 3)))
        if kind == "retry":
            p = self.parcels[rng.choice(full)]
            return "deposit", (p.who, p.req_id, 1)
        if kind == "cancel":
            return "cancel", (rng.choice(full),)
        if kind == "pickup":
            return "pickup", (rng.choice(full), rng.randrange(2))
        if kind == "reclaim":
            return "reclaim", (rng.choice(full),)
        if kind == "wrong":
            old = rng.choice(self.picked) if self.picked and rng.random() < 0.5 else None
            return "wrong", (rng.randrange(1, SLOTS + 1), old)
        if kind == "tech":
            return "tech", (rng.randrange(1, SLOTS + 1), rng.choice(("clear", "open", "service")))
        return "reboot", ()

    def do(self, name, args):
        getattr(self, "op_" + name)(*args)

    def retry_in_flight(self):
        """After the reboot, the person whose request was cut asks again (same request id,
        same code): that is what a phone with no answer does."""
        if self.in_flight is None:
            return
        name, args = self.in_flight
        if name == "deposit":
            who, req_id, size = args
            try:
                dep = self.client.deposit(self.couriers[who], size=size, request_id=req_id)
            except LockerRefused as e:
                if e.name in ("no-free-slot",):
                    return
                raise Failure("recovery failures", "deposit retry refused: %s" % e)
            self.place(who, req_id, dep)
        elif name in ("pickup", "cancel", "reclaim", "tech"):
            self.do(name, args)


def recover_and_check(run):
    """Reboot on the plain fs after a cut; two boots must agree and the chain must verify."""
    try:
        run.boot(run.plain)
        first = locker_state(run.bench.locker)
        run.boot(run.plain)
        second = locker_state(run.bench.locker)
        list(store_mod.read_audit(run.plain, run.bench.locker.store.key))
    except Failure:
        raise
    except Exception as e:
        raise Failure("recovery failures", "boot after the cut: %r" % e)
    first.pop("floor")
    second.pop("floor")
    if first != second:
        raise Failure("recovery failures", "two boots from the same flash disagree")


def final_check(run):
    """Every parcel physically inside must come out through its own code (or its courier's
    reclaim once expired), at its own door."""
    for slot in sorted(run.parcels):
        p = run.parcels[slot]
        s = run.bench.locker.slots.get(slot)
        if s.state != 1 or s.gen != p.gen:
            raise Failure("lost parcels", "slot %d holds a parcel, locker says state %d gen %d"
                          " (parcel gen %d)" % (slot, s.state, s.gen, p.gen))
        run.op_pickup(slot, 0)
        if slot in run.parcels:
            raise Failure("lost parcels", "slot %d did not open for its code" % slot)
    ghosts = sum(1 for sid in run.bench.locker.slots.sids()
                 if run.bench.locker.slots.get(sid).state == 1)
    return ghosts


def run_sequence(seed, cut_at=None, mode="lost", folder=None):
    """Run one sequence; returns a dict: points, cut (op name), ghosts, failure."""
    rng = random.Random(seed)
    length = rng.randint(4, 8)
    segment_records = rng.choice((2, 3, 5, 200))
    plain = flash_fs.FolderFs(folder)
    fs = FaultFs(plain, cut_at=cut_at, mode=mode, tear=random.Random(seed ^ 0x5A5A))
    run = Run(seed + 1, folder, fs)
    run.setup(segment_records)
    out = {"points": 0, "cut": None, "ghosts": 0, "failure": None, "op": None,
           "write": None}
    try:
        try:
            run.in_flight = ("boot", ())
            run.boot(fs)
            for _ in range(length):
                run.in_flight = run.next_op()
                run.ops.append(run.in_flight)
                run.do(*run.in_flight)
            run.in_flight = None
        except PowerCut as cut:
            out["cut"] = run.in_flight[0]
            out["write"] = cut.op
            recover_and_check(run)
            run.retry_in_flight()
            run.in_flight = None
            for _ in range(length - len(run.ops)):
                run.do(*run.next_op())
        out["points"] = fs.points
        out["ghosts"] = final_check(run)
    except Failure as f:
        out["failure"] = (f.figure, "seed %d cut %s mode %s ops %s: %s"
                          % (seed, cut_at, mode, [o[0] for o in run.ops], f))
    except Exception as e:        # a crash anywhere is a finding too
        out["failure"] = ("unexpected errors", "seed %d cut %s mode %s ops %s: %r"
                          % (seed, cut_at, mode, [o[0] for o in run.ops], e))
    return out


def work(task):
    """One sequence: the dry run, then the cut runs (sampled or full sweep)."""
    seed, sweep = task
    folder = _folder()
    res = {"cut runs": 0, "failures": [], "ghost slots": 0, "by": {}, "sweep": sweep}
    wipe(folder)
    dry = run_sequence(seed, None, folder=folder)
    if dry["failure"]:
        res["failures"].append(dry["failure"])
        return res
    n = dry["points"]
    rng = random.Random(seed * 7 + 3)
    if sweep:
        cuts = [(k, m) for k in range(1, n + 1) for m in MODES]
    else:
        cuts = [(rng.randint(1, n), rng.choice(MODES))]
    for k, m in cuts:
        wipe(folder)
        r = run_sequence(seed, k, m, folder=folder)
        res["cut runs"] += 1
        res["ghost slots"] += r["ghosts"]
        key = "%s/%s/%s" % (r["cut"], r["write"], m)
        res["by"][key] = res["by"].get(key, 0) + 1
        if r["failure"]:
            res["failures"].append(r["failure"])
    res["points"] = n
    return res


_FOLDER = []


def _init_worker(parent):
    _FOLDER[:] = [parent]


def _folder():
    worker = os.path.join(_FOLDER[0], "w%d" % os.getpid())
    os.makedirs(worker, exist_ok=True)
    return os.path.join(worker, "store")


def campaign_cuts(sequences, sweep, jobs, seconds, figs, seed0=1):
    tasks = [(seed0 + i, i < sweep) for i in range(sequences)]
    started = time.time()
    by = {}
    writes = 0
    parent = scratch_dir("powercut-")
    _init_worker(parent)
    pool = multiprocessing.Pool(jobs, _init_worker, (parent,)) if jobs > 1 else None
    results = pool.imap_unordered(work, tasks, chunksize=8) if pool else map(work, tasks)
    stopped = False
    try:
        for res in results:
            figs.add("sequences")
            figs.add("power cuts injected", res["cut runs"])
            figs.add("sweep sequences (every point x every mode)", 1 if res["sweep"] else 0)
            writes += res.get("points", 0)
            figs.add("ghost slots (deposit cut, never retried: informational)",
                     res["ghost slots"])
            for k, v in res["by"].items():
                by[k] = by.get(k, 0) + v
            for figure, text in res["failures"]:
                figs.add(figure)
                figs.note(text)
            if time.time() - started > seconds:
                stopped = True
                break
    finally:
        if pool:
            pool.terminate()
            pool.join()
        wipe(parent)
    figs.set("write points in the sequences (dry runs)", writes)
    figs.set("distinct (operation, write kind, mode) cut", len(by))
    figs.set("cut seconds", round(time.time() - started, 1))
    if stopped:
        figs.set("stopped by --seconds", True)
    return by


# ---- part 2: SIGKILL of the MicroPython simulator ---------------------------------------

def kill_campaign(kills, seconds, figs, seed=7):
    """Deposit/pickup traffic against the simulator; SIGKILL at a random moment; restart;
    the interrupted phone retries; parcels are checked against what the locker says."""
    import threading
    rng = random.Random(seed)
    folder = scratch_dir("powercut-sim-")
    sim = Sim(folder, layout="S*3,M*2,L", cfg={"pulse_ms": 100})
    started = time.time()
    couriers = []
    parcels = {}                 # slot -> (code, gen)
    state = {"ops": 0}
    try:
        sim.start()
        now = sim.control({"cmd": "status"})["time"]
        couriers = [courier(now - 60, "sim-courier-%d" % i, serial=10 + i) for i in range(2)]
        for _ in range(kills):
            if time.time() - started > seconds:
                figs.set("sim stopped by --seconds", True)
                break
            cur = {"op": None}
            err = []
            stop = threading.Event()

            def traffic():
                try:
                    while not stop.is_set():
                        sim_step(sim, rng, couriers, parcels, cur, figs)
                        state["ops"] += 1
                except (TransportError, OSError, ValueError):
                    pass
                except Failure as f:
                    err.append(f)
            t = threading.Thread(target=traffic)
            t.start()
            time.sleep(rng.uniform(0.0, 0.8))
            sim.kill()
            if cur["op"] is not None:
                figs.add("sim kills with a request or door in flight")
            stop.set()
            t.join(30)
            figs.add("sim kills (SIGKILL)")
            for f in err:
                figs.add(f.figure)
                figs.note("sim: %s" % f)
            if not start_after_kill(sim, figs):
                break
            try:
                st = sim.control({"cmd": "status"})
                if st["halted"]:
                    figs.add("recovery failures")
                    figs.note("sim halted after kill: %s" % st["halted"])
                    break
                sim_retry(sim, couriers, parcels, cur, figs)
            except Failure as f:
                figs.add(f.figure)
                figs.note("sim retry: %s" % f)
            except (OSError, TransportError, ValueError) as e:
                unresponsive(sim, figs, e)
                sim.kill()
                if not start_after_kill(sim, figs):
                    break
                try:                 # the interrupted phone asks again, as after a kill
                    sim_retry(sim, couriers, parcels, cur, figs)
                except Failure as f:
                    figs.add(f.figure)
                    figs.note("sim retry after restart: %s" % f)
                except (OSError, TransportError, ValueError) as e:
                    unresponsive(sim, figs, e)
                    break
        if not sim.alive():
            return
        # every parcel still inside must come out at its own door
        for slot in sorted(parcels):
            try:
                sim_pickup(sim, parcels, slot)
            except Failure as f:
                figs.add(f.figure)
                figs.note("sim final: %s" % f)
            except (OSError, TransportError, ValueError) as e:
                unresponsive(sim, figs, e)
                return
        st = sim.control({"cmd": "status"})
        figs.set("sim operations completed", state["ops"])
        figs.set("sim journal records", st["journal_seq"])
        figs.set("sim heap peak / total (bytes)", "%d / %d" % (st["heap_peak"],
                                                               st["heap_total"]))
    finally:
        sim.stop()
        wipe(folder)


def unresponsive(sim, figs, err):
    """A restarted locker that stops answering: out of heap, or a recovery failure."""
    log = sim.tail()
    oom = "memory allocation failed" in log or "MemoryError" in log
    figs.add("sim boots out of memory" if oom else "recovery failures")
    figs.note("sim unresponsive after restart (%r): %s" % (err, log[-300:]))


def start_after_kill(sim, figs, tries=3):
    """Boot the killed locker again; a boot that fails is a recovery failure (out of
    memory is counted on its own: it is the heap budget, not the journal, that failed)."""
    for _ in range(tries):
        try:
            sim.start()
            return True
        except RuntimeError as e:
            oom = "MemoryError" in str(e) or "memory allocation failed" in str(e)
            figs.add("sim boots out of memory" if oom else "recovery failures")
            figs.note("sim restart: %s" % str(e)[-300:])
    return False


def _door_opened(sim, slot, timeout=2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = sim.control({"cmd": "status"})
        opened = [row[0] for row in st["slots"] if row[5]]
        if opened and opened != [slot]:
            raise Failure("wrong-slot opens", "doors %s open, expected %d" % (opened, slot))
        if opened and not st["slots"][slot - 1][7]:      # pulse over: the latch holds again
            sim.control({"cmd": "door", "slot": slot, "action": "close"})
            return True
        time.sleep(0.02)
    return False


def sim_step(sim, rng, couriers, parcels, cur, figs):
    """One deposit or pickup; cur['op'] names it until the door was seen open."""
    if parcels and (len(parcels) >= 5 or rng.random() < 0.5):
        slot = rng.choice(sorted(parcels))
        cur["op"] = ("pickup", slot)
        sim_pickup(sim, parcels, slot)
    else:
        who = rng.randrange(2)
        req_id = rng.randbytes(8)
        cur["op"] = ("deposit", who, req_id)
        sim_deposit(sim, couriers, parcels, who, req_id)
    cur["op"] = None


def sim_deposit(sim, couriers, parcels, who, req_id):
    client = sim.client()
    try:
        try:
            dep = client.deposit(couriers[who], size=1, request_id=req_id)
        except LockerRefused as e:
            if e.name == "no-free-slot":
                return
            raise Failure("recovery failures", "sim deposit refused: %s" % e)
    finally:
        client.transport.close()
    held = parcels.get(dep.slot)
    if held is not None and held[2] != req_id:
        raise Failure("double allocations", "sim slot %d given while holding a parcel"
                      % dep.slot)
    if _door_opened(sim, dep.slot):
        parcels[dep.slot] = (dep.code, dep.generation, req_id)
    else:
        raise OSError("door did not open (killed before the pulse)")


def sim_pickup(sim, parcels, slot):
    code = parcels[slot][0]
    client = sim.client()
    try:
        got = client.pickup(code)
    except LockerRefused as e:
        raise Failure("lost parcels", "sim code of slot %d refused: %s" % (slot, e))
    finally:
        client.transport.close()
    if got["slot"] != slot:
        raise Failure("wrong-slot opens", "sim code of slot %d opened %d" % (slot, got["slot"]))
    if _door_opened(sim, slot):
        del parcels[slot]
    else:
        raise OSError("door did not open (killed before the pulse)")


def sim_retry(sim, couriers, parcels, cur, figs):
    """The phone whose request got no answer (or whose door did not open) asks again."""
    st = sim.close_doors()
    del st
    opn = cur["op"]
    if opn is None:
        return
    figs.add("sim retries after a kill")
    if opn[0] == "deposit":
        sim_deposit(sim, couriers, parcels, opn[1], opn[2])
    elif opn[1] in parcels:
        sim_pickup(sim, parcels, opn[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=10000)
    ap.add_argument("--sweep", type=int, default=200,
                    help="first N sequences: cut at every write point in every mode")
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replay", help="SEED:K:MODE, one cut run with details")
    args = ap.parse_args(argv)
    if args.replay:
        seed, k, mode = args.replay.split(":")
        folder = scratch_dir("powercut-replay-") + "/store"
        print(run_sequence(int(seed), int(k) if k != "None" else None, mode, folder))
        return 0
    figs = Figures("powercut", MUST_BE_ZERO)
    started = time.time()
    by = campaign_cuts(args.sequences, args.sweep, args.jobs, args.seconds, figs, args.seed)
    if args.kills:
        kill_campaign(args.kills, max(60, args.seconds - (time.time() - started)), figs)
    figs.set("seconds", round(time.time() - started, 1))
    print("cuts by (operation in flight / write kind / mode):")
    for k in sorted(by):
        print("  %-40s %d" % (k, by[k]))
    return figs.report()


if __name__ == "__main__":
    sys.exit(main())
