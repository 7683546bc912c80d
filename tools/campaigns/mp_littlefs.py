# Runs ON MicroPython (unix port): the locker's store on littlefs v2 itself (vfs.VfsLfs2, the
# same C code the ESP32 port mounts), on a block device with the ESP32's geometry whose power
# can be cut at any block program or erase, leaving a half-programmed or half-erased block.
#
# usage: micropython -X heapsize=16m mp_littlefs.py <firmware .mpy dir> powercut
#            [--sequences N] [--ops N] [--stride S] [--blocks N] [--seed N]
#        micropython -X heapsize=16m mp_littlefs.py <firmware .mpy dir> full
# Prints one JSON line of figures. "powercut": for each seeded sequence of deposits, pickups,
# wrong codes, technician actions, clock moves and clean reboots, run once counting the
# write points (block programs, block erases, NVS commits of the journal's anchor), then for
# every S-th point rerun from the same freshly formatted image, cut the power there, mount
# what is left, boot the locker (with its anchor) and hold it to every answer it gave.
# "full": a small littlefs that fills up: writes fail and change nothing, reads are served,
# a reboot while full works, and the locker carries on once space is freed.
import gc
import json
import os
import struct
import sys

sys.path.insert(0, sys.argv[1])
import vfs

from core import phone
from core import clock as C
from core import config, credentials, recipient
from core.anchored import AnchoredLocker
from core import protocol as P
from core import store as S
from drivers import flash_fs, gpio_lock
from drivers.nvs_anchor import NvsAnchor
from targets import sim_hw
from targets.sim_flash import BLOCK, MOUNT     # the ESP32 geometry the simulator mounts
from targets.sim_nvs import SimNvs

WRONG_CODE = "001-00000-00000"     # a human code for slot 1 that no deposit hands out

MASTER = b"\x33" * 32
LID = bytes.fromhex("4c4b520000000042")
LAYOUT = "S*3,M*3,L*2"
N_SLOTS = 8


class PowerCut(BaseException):
    """The power failed (BaseException: no `except Exception/OSError` swallows it)."""


class Rand:
    """xorshift32: the same numbers on every MicroPython build (no urandom seeding quirks)."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.next() % n


class Flash:
    """NOR flash as littlefs sees it through MicroPython's extended block device protocol:
    erase sets a block to 0xFF, program can only clear bits (new = old AND data).

    cut_at=k: the k-th program/erase (1-based) is interrupted: a program lands a random
    prefix of its bytes plus one byte with random bits of it cleared (half-programmed), an
    erase resets a random prefix of the block (half-erased); then PowerCut. Reads and
    writes after the cut raise PowerCut too (the board is off)."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.data = bytearray(blocks * BLOCK)
        self.points = 0
        self.cut_at = None
        self.dead = False
        self.rand = Rand(1)
        self.kinds = {"program": 0, "erase": 0}
        self.last = ""
        self.partial = 0          # cuts that left a half-programmed / half-erased block

    def readblocks(self, block, buf, offset=0):
        # no allocation here: littlefs may read while a file object is finalised by the
        # garbage collector (heap locked), e.g. a file left open by a power cut
        if self.dead:
            raise PowerCut()
        a = block * BLOCK + offset
        d = self.data
        for i in range(len(buf)):
            buf[i] = d[a + i]

    def _point(self, kind):
        if self.dead:
            raise PowerCut()
        self.points += 1
        self.kinds[kind] += 1
        self.last = kind
        return self.points == self.cut_at

    def writeblocks(self, block, buf, offset=None):
        if offset is None:        # the simple protocol: erase then program whole blocks
            self.ioctl(6, block)
            offset = 0
        a = block * BLOCK + offset
        n = len(buf)
        if self._point("program"):
            keep = self.rand.below(n)
            for i in range(keep):
                self.data[a + i] &= buf[i]
            self.data[a + keep] &= buf[keep] | (self.rand.next() & 0xFF)
            self.partial += 1
            self._die()
        d = self.data
        for i in range(n):
            d[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return BLOCK
        if op == 6:
            a = arg * BLOCK
            if self._point("erase"):
                keep = self.rand.below(BLOCK)
                self.data[a:a + keep] = b"\xff" * keep
                self.partial += 1
                self._die()
            self.data[a:a + BLOCK] = b"\xff" * BLOCK
            return 0
        return 0

    def _die(self):
        self.dead = True
        raise PowerCut()


class CutNvs(SimNvs):
    """The anchor's NVS, its commits counted as write points of the same flash (NVS is
    never torn: an entry has a CRC, a cut leaves the old value)."""

    def __init__(self, flash):
        SimNvs.__init__(self)
        self.flash = flash
        self.kind_count = 0

    def commit(self):
        f = self.flash
        if f.dead:
            raise PowerCut()
        f.points += 1
        self.kind_count += 1
        f.last = "nvs-commit"
        if f.points == f.cut_at:
            self.discard()
            f.dead = True
            raise PowerCut()
        SimNvs.commit(self)


def mount(flash):
    try:
        vfs.umount(MOUNT)
    except OSError:
        pass
    vfs.mount(vfs.VfsLfs2(flash), MOUNT)


class Board:
    """The locker core on littlefs, rebootable on the same flash and NVS."""

    def __init__(self, flash, nvs, t):
        self.flash, self.nvs, self.t = flash, nvs, t
        self.cfg = config.build({"locker_id": LID.hex(), "layout": LAYOUT,
                                 "segment_records": 5, "keep_segments": 2})
        self.cred = {}
        for i in (1, 2):
            self.cred[i] = credentials.Credential(credentials.COURIER,
                                                  ("courier-%d" % i).encode(), i,
                                                  t.rtc, t.rtc + 400 * 86400)
        self.tech = credentials.Credential(credentials.TECHNICIAN, b"tech", 90, t.rtc,
                                           t.rtc + 400 * 86400)
        self.lk = None

    def boot(self):
        self.lk = None
        gc.collect()
        t = self.t
        self.drv = sim_hw.SimLockDriver(N_SLOTS, ticks_ms=t.ticks_ms)
        self.bank = gpio_lock.LockBank(self.drv, 500, 1000, 1, t.ticks_ms, t.ticks_diff)
        clk = C.LockerClock(t.rtc_unix, t.uptime_s)
        lk = AnchoredLocker(self.cfg, MASTER, flash_fs.FolderFs(MOUNT + "/locker"), clk,
                            self.bank, t.ticks_ms, t.ticks_diff, os.urandom,
                            NvsAnchor(self.nvs))
        self.lk = lk
        self.session = lk.new_session()
        self.challenge = None
        lk.boot()
        return lk

    def call(self, frame):
        resp = self.lk.handle(self.session, frame)
        self.challenge = resp[3:19]
        return resp[2], resp[19:]

    def hello(self):
        if self.challenge is None:
            self.call(P.request(P.HELLO))

    def signed(self, rtype, cred, fields):
        self.hello()
        key = cred.key(MASTER, LID)
        return self.call(phone.sign(P.request(rtype, cred.encode() + fields), key, self.challenge))

    def deposit(self, who, size, req):
        st, body = self.signed(P.DEPOSIT, self.cred[who], req + bytes((size,)))
        if st != P.OK:
            return st, None
        slot, gen, ts, _, _ = struct.unpack(">HIIBI", body)
        key = self.cred[who].key(MASTER, LID)
        return st, (slot, phone.human_code(key, LID, slot, gen, ts))

    def pickup(self, code):
        """The recipient (the PAKE, core/recipient): waits out a lockout (wrong codes by
        others) and tries again. Returns (status, slot opened or None)."""
        sid, form, material = phone.parse(code)
        for _ in range(4):
            answer, pake = recipient.pickup(self.raw, sid, form, material, LID, os.urandom)
            st = answer[2]
            if st != P.E_LOCKED_OUT:
                break
            self.t.advance(struct.unpack(">I", answer[19:23])[0] + 1)
        if st != P.OK:
            return st, None
        body = pake.check_answer(answer)
        return st, (struct.unpack(">H", body[:2])[0] if body else None)

    def raw(self, frame):
        return self.lk.handle(self.session, frame)

    def tech_open(self, sid, action):
        return self.signed(P.TECH_OPEN, self.tech, struct.pack(">HB", sid, action))[0]

    def settle(self):
        for _ in range(12):
            self.bank.service()
            self.lk.poll_doors()
            self.t.advance(0.1)
        for sid in range(1, N_SLOTS + 1):
            self.drv.close(sid)
        self.bank.service()
        self.lk.poll_doors()


def make_ops(seed, n):
    r = Rand(seed + 17)
    kinds = ("dep", "dep", "dep", "dep", "pick", "pick", "pick", "wrong", "tech", "tech",
             "advance", "reboot")
    ops = []
    for i in range(n):
        k = kinds[r.below(len(kinds))]
        if k == "dep":
            ops.append((k, 1 + r.below(2), (1, 1, 2, 3)[r.below(4)],
                        struct.pack(">II", seed, i)))
        elif k == "tech":
            ops.append((k, 1 + r.below(N_SLOTS), (P.TECH_OUT_OF_SERVICE, P.TECH_IN_SERVICE,
                                                  P.TECH_CLEAR)[r.below(3)]))
        elif k == "advance":
            ops.append((k, (5, 90, 600, 4000)[r.below(4)]))
        else:
            ops.append((k, r.below(1000)))
    return ops


class Run:
    """Runs a sequence, remembering only what the outside world was told."""

    def __init__(self, flash, nvs):
        self.t = sim_hw.ManualTime()
        self.board = Board(flash, nvs, self.t)
        self.live = {}            # slot -> (code, request id, courier) answered OK
        self.inflight = None
        self.oos = set()

    def execute(self, ops):
        b = self.board
        b.boot()
        b.settle()
        for op in ops:
            self.step(op)
            self.inflight = None
            b.settle()

    def step(self, op):
        b = self.board
        k = op[0]
        if k == "dep":
            if len(self.live) >= 5:
                return
            self.inflight = ("dep", op)
            st, got = b.deposit(op[1], op[2], op[3])
            if st == P.OK:
                self.live[got[0]] = (got[1], op[3], op[1])
        elif k == "pick" and self.live:
            sid = sorted(self.live)[op[1] % len(self.live)]
            self.inflight = ("pick", sid)
            st, opened = b.pickup(self.live[sid][0])
            if st == P.OK:
                assert opened == sid, "code opened slot %s, not %d" % (opened, sid)
                del self.live[sid]
            elif sid not in self.oos:
                raise AssertionError("pickup of live slot %d refused: %d" % (sid, st))
        elif k == "wrong":
            self.inflight = ("wrong", None)
            sid, form, material = phone.parse(WRONG_CODE)   # a journalled "try"
            recipient.pickup(b.raw, sid, form, material, LID, os.urandom)
        elif k == "tech":
            sid, action = op[1], op[2]
            self.inflight = ("tech", (sid, action))
            if b.tech_open(sid, action) == P.OK:
                if action == P.TECH_CLEAR:
                    self.live.pop(sid, None)
                elif action == P.TECH_OUT_OF_SERVICE:
                    self.oos.add(sid)
                else:
                    self.oos.discard(sid)
        elif k == "advance":
            self.t.advance(op[1])
            b.lk.tick()
        elif k == "reboot":
            b.boot()


def check(run, flash, nvs):
    """Mount what the cut left, boot, and check every promise. Returns None or a reason."""
    flash.dead = False
    flash.cut_at = None
    gc.collect()
    try:
        mount(flash)
    except OSError as e:
        return "littlefs does not mount: %r" % e
    b = run.board
    b.nvs = nvs
    try:
        lk = b.boot()
    except S.StoreCorrupt as e:
        return "store refused at boot: %s (%s)" % (e, b.lk.halted if b.lk else "")
    audit = list(S.read_audit(lk.store.fs, lk.store.key))
    if audit and audit[-1]["n"] != lk.store.seq:
        return "audit ends at %d, store at %d" % (audit[-1]["n"], lk.store.seq)
    kind, what = run.inflight or (None, None)
    occupied = [sid for sid in lk.slots.sids() if lk.slots.at(sid).state == 1]
    for sid in run.live:
        if sid not in occupied and not (kind == "pick" and what == sid) and not (
                kind == "tech" and what[0] == sid):
            return "answered deposit in slot %d lost" % sid
    extra = [s for s in occupied if s not in run.live]
    if len(extra) > (1 if kind == "dep" else 0) + (1 if kind in ("pick", "tech") else 0):
        return "slots %s occupied without an answered deposit" % extra
    b.settle()
    if kind == "dep":             # the phone retries with the same request id: one slot
        _, who, size, req = what
        st, got = b.deposit(who, size, req)
        if st == P.OK:
            if got[0] in run.live and run.live[got[0]][1] != req:
                return "retried deposit got another parcel's slot %d" % got[0]
            run.live[got[0]] = (got[1], req, who)
            b.settle()
    for sid in sorted(run.live):  # every code opens its own slot
        st, opened = b.pickup(run.live[sid][0])
        if st == P.OK and opened != sid:
            return "code for slot %d opened %s" % (sid, opened)
        inflight_here = kind == "tech" and what[0] == sid   # its clear / out-of-service
        if st != P.OK and sid not in run.oos and st != P.E_CODE and not inflight_here:
            return "code for slot %d refused with status %d" % (sid, st)
        b.settle()
    return None


def _replace_in_place(self, name, chunks):
    """The mistake the campaign must catch: no temp file + rename."""
    self._write(name, chunks, "wb")


def powercut(args):
    sequences, n_ops, stride, blocks, seed0 = 3, 12, 1, 448, 0
    i = 0
    while i < len(args):
        if args[i] == "--sequences":
            sequences = int(args[i + 1])
        elif args[i] == "--ops":
            n_ops = int(args[i + 1])
        elif args[i] == "--stride":
            stride = int(args[i + 1])
        elif args[i] == "--blocks":
            blocks = int(args[i + 1])
        elif args[i] == "--seed":
            seed0 = int(args[i + 1])
        elif args[i] == "--mutant":         # harness self-check: a store that rewrites its
            flash_fs.FolderFs.replace = _replace_in_place       # snapshot in place
            i -= 1
        i += 2
    figs = {"blocks": blocks, "block_size": BLOCK, "partition_bytes": blocks * BLOCK,
            "sequences": 0, "write_points": 0, "cuts": 0, "cuts_at_program": 0,
            "cuts_at_erase": 0, "cuts_at_nvs_commit": 0, "half_written_blocks": 0,
            "points_by_kind": {"program": 0, "erase": 0, "nvs-commit": 0}, "failures": []}
    flash = Flash(blocks)
    vfs.VfsLfs2.mkfs(flash)
    base = bytes(flash.data)
    for seq in range(seed0, seed0 + sequences):
        ops = make_ops(seq, n_ops)
        flash.data[:] = base
        flash.points = 0
        flash.kinds = {"program": 0, "erase": 0}
        mount(flash)
        nvs = CutNvs(flash)
        run = Run(flash, nvs)
        run.execute(ops)
        total = flash.points
        figs["sequences"] += 1
        figs["write_points"] += total
        figs["points_by_kind"]["program"] += flash.kinds["program"]
        figs["points_by_kind"]["erase"] += flash.kinds["erase"]
        figs["points_by_kind"]["nvs-commit"] += nvs.kind_count
        k = 1 + seq % stride
        while k <= total:
            run = nvs = None
            gc.collect()
            flash.data[:] = base
            flash.points = 0
            flash.dead = False
            flash.cut_at = None
            flash.rand = Rand(seq * 7919 + k)
            mount(flash)
            flash.cut_at = k
            nvs = CutNvs(flash)
            run = Run(flash, nvs)
            try:
                run.execute(ops)
                figs["failures"].append("seed %d point %d: no cut happened" % (seq, k))
            except PowerCut:
                pass
            where = flash.last
            figs["cuts"] += 1
            figs["cuts_at_" + where.replace("-", "_")] += 1
            plain = SimNvs()
            plain._saved = nvs._saved
            try:
                why = check(run, flash, plain)
            except PowerCut:
                why = "power cut after recovery"
            except Exception as e:
                why = "%s: %s" % (type(e).__name__, e)
            if why:
                figs["failures"].append("seed %d cut %d/%d at %s (in flight %s): %s" % (
                    seq, k, total, where, run.inflight and run.inflight[0], why))
            k += stride
        figs["half_written_blocks"] = flash.partial
    try:
        vfs.umount(MOUNT)
    except OSError:
        pass
    return figs


def full(args):
    """A 24-block littlefs with a ballast file: fill it, check, free the ballast."""
    figs = {"blocks": 24, "deposits_before_full": 0, "storage_errors": 0,
            "changed_on_error": 0, "reads_refused_while_full": 0, "boot_while_full": "",
            "served_after_space_freed": False, "audit_ok": False, "failures": []}
    flash = Flash(24)
    vfs.VfsLfs2.mkfs(flash)
    mount(flash)
    nvs = SimNvs()
    run = Run(flash, nvs)
    b = run.board
    b.boot()
    ballast = []              # fill the partition with 1-block files, then free one
    try:
        while True:
            name = MOUNT + "/ballast.%d" % len(ballast)
            with open(name, "wb") as f:
                f.write(b"\0" * BLOCK)
            ballast.append(name)
    except OSError:
        try:
            os.remove(MOUNT + "/ballast.%d" % len(ballast))
        except OSError:
            pass
    os.remove(ballast.pop())
    figs["ballast_blocks"] = len(ballast)
    codes = []

    def fingerprint():
        return bytes(b.lk.slots.state), b.lk.store.seq

    for i in range(400):
        before = fingerprint()
        picking = len(codes) > 3
        if picking:
            st, _ = b.pickup(codes[0][1])
            if st == P.OK:
                codes.pop(0)
        else:
            st, got = b.deposit(1 + i % 2, 1, struct.pack(">II", 7, i))
            if st == P.OK:
                figs["deposits_before_full"] += 1
                codes.append(got)
        b.settle()
        if st == P.OK:
            continue
        if st != P.E_INTERNAL:
            figs["failures"].append("status %d" % st)
            break
        figs["storage_errors"] += 1
        after = fingerprint()
        if picking and after[0] == before[0] and after[1] == before[1] + 1:
            after = before       # the PAKE's journalled "try" landed; the FINISH did not
        if after != before:
            figs["changed_on_error"] += 1
            figs["failures"].append("a failed write changed the state")
        if figs["storage_errors"] >= 3:
            break
    if not figs["storage_errors"]:
        figs["failures"].append("the flash never filled up")
    # reads while full
    b.challenge = None
    b.hello()
    if b.signed(P.STATUS, b.tech, b"")[0] != P.OK:
        figs["reads_refused_while_full"] += 1
    if b.signed(P.AUDIT_READ, b.tech, struct.pack(">IB", 1, 3))[0] != P.OK:
        figs["reads_refused_while_full"] += 1
    try:
        b.boot()
        figs["boot_while_full"] = "ok"
    except (S.StoreCorrupt, OSError) as e:
        figs["boot_while_full"] = "%r" % e
    for name in ballast:
        os.remove(name)
    st, got = b.deposit(2, 1, b"after-fr")
    figs["served_after_space_freed"] = st == P.OK
    b.settle()
    b.boot()
    for sid, code in codes + ([got] if got else []):
        if b.lk.slots.at(sid).state != 1:
            figs["failures"].append("deposit in slot %d lost" % sid)
    try:
        list(S.read_audit(b.lk.store.fs, b.lk.store.key))
        figs["audit_ok"] = True
    except S.StoreCorrupt as e:
        figs["failures"].append("audit: %s" % e)
    vfs.umount(MOUNT)
    return figs


if __name__ == "__main__":
    mode = sys.argv[2] if len(sys.argv) > 2 else "powercut"
    out = powercut(sys.argv[3:]) if mode == "powercut" else full(sys.argv[3:])
    gc.collect()
    out["heap_total"] = gc.mem_alloc() + gc.mem_free()
    print(json.dumps(out))
