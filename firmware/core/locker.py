# The locker: takes a request frame, returns a response frame. Radio, pins and flash are
# not its business (they come in through the transport, LockBank and the store's fs).
#
# Every state change follows one order: decide in RAM -> append ONE journal record ->
# apply the record -> drive the door -> answer. Recovery replays the same records through
# the same _apply(), so what survives a power cut is exactly what was acted on.
import struct

from micropython import const

from core import credentials, pickup_code
from core import protocol as P
from core.code_verifier import (
    EXPIRED,
    GONE,
    OUT_OF_SERVICE,
    REOPEN,
    VALID,
    WRONG,
    CodeVerifier,
    outcome,
)
from core.door_monitor import DoorMonitor
from core.hmac_sha256 import equal, hmac_sha256
from core.kdf import admin_key, audit_key
from core.slot_manager import (
    FREE,
    LEFT_CANCEL,
    LEFT_RECLAIM,
    LEFT_TECH,
    OCCUPIED,
    SIZE_NAMES,
    SlotManager,
    expiry_limit,
    reopens_for,
)
from core.spake2 import Spake2Error
from core.store import Store, StoreCorrupt
from core.throttle import Pacer, Throttle

_FLOOR_PERIOD_S = const(3600)     # persist the clock floor at least this often
_MAX_REVOKED = const(256)

# Slot status bits in STATUS and TECH_OPEN answers
ST_OCCUPIED = const(1)
_ST_EXPIRED = const(2)
ST_OUT_OF_SERVICE = const(4)
_ST_DOOR_OPEN = const(8)
_ST_HAS_SENSOR = const(16)
_RELEASES = ("pick", "cancel", "recl")     # records that empty a slot: index + 1 = LEFT_*



class _Signed(P.Reader):
    """A signed request's Reader, positioned after its credential block, with that
    credential decoded once (_authenticate uses it). CredentialError if it does not decode."""

    def __init__(self, frame):
        cred, end = credentials.decode(frame, 2)
        P.Reader.__init__(self, frame, end)
        self.cred = cred


class Session:
    """One connection's state: the single challenge it may answer next, and how the answer
    to the request being handled is authenticated (set once the request's MAC verified)."""

    def __init__(self):
        self.challenge = None
        self.issued_at = 0
        self.answer = None          # (key, MAC input before, after) of the answer tag, or None
        self.door = 0               # slot whose pulse this answer waits for (0: none)
        self.pake = None            # pending pickup: (started s, sid, gen, form, verdict, cA, Ke)
        self.pake_free_at = None    # ticks_ms before which this connection may not start one

    def begin(self):
        """A new request: nothing authenticated yet, no door to wait for."""
        self.answer = None
        self.door = 0


class Locker:
    def __init__(self, cfg, master, fs, clock, locks, ticks_ms, ticks_diff, random_bytes):
        self.cfg = cfg
        self.locker_id = cfg["locker_id_bytes"]
        self._master = master
        self.admin_key = admin_key(master, self.locker_id)
        self.clock = clock
        self.locks = locks
        self._ticks_ms = ticks_ms
        self._random = random_bytes
        self.slots = SlotManager(cfg["sizes"])
        self.throttle = Throttle()
        self.revoked = {}           # serial -> credential not_after (pruned after it)
        self.admin_seq = 0
        self.store = Store(fs, audit_key(master), cfg["segment_records"], cfg["keep_segments"])
        self.verifier = CodeVerifier(master, self.locker_id, cfg["bucket_s"], cfg["ttl_s"])
        self.pacer = Pacer(ticks_ms, ticks_diff)
        self.doors = DoorMonitor(len(self.slots), ticks_diff, cfg["jam_ms"], cfg["left_open_ms"])
        locks.on_start = self._pulse_started
        self._pending_doors = {}    # sid -> record event that opened it (for jam undo)
        self._last_floor_write = 0
        self.halted = ""            # why the locker refuses to serve ("" = serving)
        # handler(locker, session, frame) -> answer body (plain functions: no bound methods)
        self._handlers = {
            P.HELLO: Locker._hello, P.DEPOSIT: Locker._deposit, P.CANCEL: Locker._cancel,
            P.RECLAIM: Locker._reclaim, P.PICKUP_START: Locker._pickup_start,
            P.PICKUP_FINISH: Locker._pickup_finish, P.TECH_OPEN: Locker._tech_open,
            P.AUDIT_READ: Locker._audit_read, P.STATUS: Locker._status, P.ADMIN: Locker._admin,
        }

    # ---- boot and persistence ---------------------------------------------------------

    def boot(self):
        """Recover state from the store. Raises StoreCorrupt: the caller must not serve."""
        fresh = not self.store.recover(self._load_state, self._apply, self.slots)
        # the RTC behind the floor (lost at power-on): carry on past the floor by the longest
        # that can have passed unrecorded, the floor period + tick's lateness (ADR 0008;
        # core/anchored.AnchoredLocker.boot does the same with its anchor's shorter margin)
        self._serve_from(fresh, _FLOOR_PERIOD_S + 60)

    def _serve_from(self, fresh, margin_s):
        """The end of every boot: the clock resumed past its floor by at most margin_s, a
        first snapshot on a fresh store, the "boot" record (with the seconds skipped)."""
        resumed = self.clock.resume(margin_s)
        if fresh:
            self.store.create(self._state())
        try:
            self._commit({"e": "boot", "resumed": resumed} if resumed else {"e": "boot"})
        except OSError:           # flash full: serve reads, writes answer internal-error
            pass

    def _state(self):
        """Live state for a snapshot; the slot table goes in as it is (the store writes its
        columns without copying them)."""
        d = {"slots": self.slots, "recent": self.slots.recent}
        d["thr"] = self.throttle.to_list()
        d["rev"] = [[s, u] for s, u in self.revoked.items()]
        d["adm"] = self.admin_seq
        d["floor"] = self.clock.now()
        return d

    def _load_state(self, d):
        self.slots.recent = d["recent"]     # the table itself was read in place
        self.throttle.load(d["thr"])
        self.revoked = {s: u for s, u in d["rev"]}
        self.admin_seq = d["adm"]
        self.clock.raise_floor(d["floor"])

    def _commit(self, record):
        """Persist one record, then apply it. Nothing is acted on before this returns."""
        if "t" not in record:
            record["t"] = self.clock.now()
        if self.store.torn_tail:  # never append after a torn line: compact first
            self.store.snapshot(self._state())
        self.store.append(record)
        self._apply(record)
        self._last_floor_write = record["t"]
        self._compact_if_due()
        return record

    def _compact_if_due(self):
        """Compaction stalls the loop for a snapshot write: never while a solenoid is
        energised or queued (its pulse would run long); tick() catches up when idle."""
        if self.store.needs_compaction() and not self.locks.busy():
            try:
                self.store.snapshot(self._state())
            except OSError:       # flash full: the record is durable, compact at the next one
                pass

    def _apply(self, r):
        e = r["e"]
        t = r["t"]
        self.clock.raise_floor(t)
        if e == "dep":
            self.slots.deposit(r["s"], r["g"], t, bytes.fromhex(r["c"]), bytes.fromhex(r["r"]))
            self.throttle.reset_slot(r["s"])
        elif e in _RELEASES:            # LEFT_PICKUP, LEFT_CANCEL, LEFT_RECLAIM
            self.slots.release(r["s"], t, _RELEASES.index(e) + 1)
            if e == "pick" and r.get("f") == pickup_code.FORM_HUMAN:
                self.throttle.refund(r["s"], t)
        elif e in ("late", "right") and r.get("f") == pickup_code.FORM_HUMAN:
            self.throttle.refund(r["s"], t)      # the right code: no guess
        elif e == "reopen":
            if "c" in r:                 # a deposit retry with a renewed credential
                self.slots.rekey(r["s"], bytes.fromhex(r["c"]))
            elif r.get("f") == pickup_code.FORM_HUMAN:
                self.throttle.refund(r["s"], t)  # the right code reopening its door: no guess
        elif e == "tech":
            act = r["a"]
            if act == P.TECH_CLEAR:
                self.slots.release(r["s"], t, LEFT_TECH)
            elif act == P.TECH_OUT_OF_SERVICE:
                self.slots.set_service(r["s"], False)
            elif act == P.TECH_IN_SERVICE:
                self.slots.set_service(r["s"], True)
        elif e in ("try", "fail"):      # "fail": a journal from before the PAKE
            self.throttle.charge(r["s"], t)
        elif e == "jam":
            self.slots.set_service(r["s"], False)
            if r.get("undo") in ("pick", "recl", "cancel"):
                self.slots.undo_release(r["s"])
            elif r.get("undo") == "dep":
                self.slots.void_deposit(r["s"])
        elif e == "revoke":
            self.revoked[r["serial"]] = r["until"]
            self.admin_seq = r["a"]
        elif e == "time":
            self.admin_seq = r["a"]
        elif e == "recover" or "resumed" in r:    # rare: core/recovery.py (ADR 0008)
            from core import recovery
            recovery.apply(self, r)

    # ---- sessions and dispatch --------------------------------------------------------

    def new_session(self):
        return Session()

    def _new_challenge(self, session):
        session.challenge = self._random(P.CHALLENGE_LEN)
        session.issued_at = self.clock.now()
        return session.challenge

    def _take_challenge(self, session):
        """The challenge the request must answer; consumed whatever the outcome."""
        ch = session.challenge
        session.challenge = None
        if ch is None or self.clock.now() - session.issued_at > self.cfg["challenge_ttl_s"]:
            raise P.ProtocolError(P.E_CHALLENGE, "no fresh challenge: send HELLO first")
        return ch

    def handle(self, session, frame):
        """One request frame in, one response frame out. Never raises."""
        req_type = P.ERROR_TYPE
        session.begin()
        try:
            if self.halted:
                raise P.ProtocolError(P.E_INTERNAL, "locker halted: " + self.halted)
            req_type = P.check_header(frame)
            handler = self._handlers.get(req_type)
            if handler is None:
                req_type = P.ERROR_TYPE
                raise P.ProtocolError(P.E_TYPE, "unknown request type 0x%02x" % frame[1])
            status, body = P.OK, handler(self, session, frame)
        except P.ProtocolError as e:
            status = e.status
            body = e.body if e.body is not None else P.error_body(e.message, e.retry_after)
        except credentials.CredentialError as e:
            status, body = P.E_CREDENTIAL, P.error_body(str(e))
        except OSError as e:            # flash full or failing: nothing was applied
            status, body = P.E_INTERNAL, P.error_body("storage error %s" % e)
        auth, session.answer = session.answer, None     # authenticated: tagged (protocol.md 4)
        return P.response(req_type, status, self._new_challenge(session), body, auth)

    def error_answer(self, session, status, message):
        """An error frame for faults found below the handler (fragmentation, size)."""
        session.challenge = None
        return P.response(P.ERROR_TYPE, status, self._new_challenge(session),
                          P.error_body(message))

    def _authenticate(self, session, frame, reader, kind=None):
        """Check the trailing tag against the session challenge; return the credential.

        The reader must be positioned after the request's own fields."""
        challenge = self._take_challenge(session)
        tag = reader.tag_and_end()
        cred = reader.cred
        key = cred.key(self._master, self.locker_id)
        if not equal(hmac_sha256(key, challenge, memoryview(frame)[:-P.TAG_LEN]), tag,
                     P.TAG_LEN):
            raise P.ProtocolError(P.E_AUTH, "request MAC does not verify")
        # From here on every answer, refusals included, is tagged for the phone to check.
        session.answer = (key, challenge, b"")
        # Authentic from here on: its issue time is time the operator vouches for.
        moved = self.clock.advance_to(cred.issued_at)
        if moved >= _FLOOR_PERIOD_S:
            self._commit({"e": "clock", "by": moved, "serial": cred.serial})
        credentials.check_usable(cred, self.clock.now(), self.revoked)
        if kind is not None and cred.kind != kind:
            raise P.ProtocolError(P.E_SCOPE, "credential kind not allowed here")
        return cred

    def _read_cred(self, frame):
        """A Reader positioned after the request's credential block (E_LENGTH if bad), with
        the credential decoded once (_Signed)."""
        try:
            return _Signed(frame)
        except credentials.CredentialError as e:
            raise P.ProtocolError(P.E_LENGTH, str(e))

    def _open(self, session, sid, purpose):
        """Ask for sid's door; the answer to session waits until its pulse has started
        (door_pending), so "opened" is never said of a door that is only queued."""
        if purpose not in ("tech", "reopen") or sid not in self._pending_doors:
            self._pending_doors[sid] = purpose    # a jam undoes the pending parcel move
        self.locks.request_open(sid)
        session.door = sid

    def door_pending(self, session):
        """True while the door that session's last answer speaks of is only queued: the
        transport holds that answer back until the pulse starts (docs/protocol.md 4)."""
        return session.door != 0 and self.locks.queued(session.door)

    def _pulse_started(self, sid, now_ms):
        """The jam timer starts when the lock is really driven, not when the open was
        queued behind other doors (power budget)."""
        self.doors.commanded(sid, self._pending_doors.get(sid, ""), now_ms)

    # ---- flows ------------------------------------------------------------------------

    def _hello(self, session, frame):
        P.Reader(frame).end()
        c = self.cfg
        return self.locker_id + struct.pack(">IHHHBI", self.clock.now(), len(self.slots),
                                            P.MAX_REQUEST, c["bucket_s"], c["skew_buckets"],
                                            c["ttl_s"])

    def _deposit_answer(self, sid):
        """Everything the phone's code depends on, under the answer tag (bucket_s too: the
        unauthenticated HELLO must not be able to change the code the courier hands out)."""
        sl = self.slots
        return struct.pack(">HIIBIH", sid, sl.generation(sid), sl.deposit_time(sid),
                           sl.size[sid - 1], self.cfg["ttl_s"], self.cfg["bucket_s"])

    def _deposit(self, session, frame):
        r = self._read_cred(frame)
        req_id = r.take(P.REQ_ID_LEN)
        size = r.u8()
        if not 1 <= size <= self.slots.max_size():
            session.challenge = None
            raise P.ProtocolError(P.E_VALUE, "no %s slots on this locker"
                                  % (SIZE_NAMES[size - 1] if 0 < size < 5 else size))
        cred = self._authenticate(session, frame, r, credentials.COURIER)
        sid = self.slots.find_deposit(cred.holder, req_id)
        if sid is not None:            # a retry after a dropped link: same slot, door again
            record = {"e": "reopen", "s": sid, "serial": cred.serial}
            block = cred.encode()
            if self.slots.at(sid).cred != block:
                # same holder, renewed credential (new key): the code must be made with the
                # key this phone holds now, or the answer gives it a code that never works
                record["c"] = block.hex()
            self._commit(record)
            self._open(session, sid, "reopen")
            return self._deposit_answer(sid)
        if self.slots.finished_deposit(cred.holder, req_id):
            raise P.ProtocolError(P.E_DONE, "this deposit was already completed")
        sid = self.slots.allocate(size, self._door_usable)
        if sid is None:
            raise P.ProtocolError(P.E_NO_SLOT, "no free slot of size %s or larger"
                                  % SIZE_NAMES[size - 1])
        self._commit({"e": "dep", "s": sid, "g": self.slots.generation(sid) + 1,
                      "c": cred.encode().hex(), "r": req_id.hex(), "serial": cred.serial})
        self._open(session, sid, "dep")
        return self._deposit_answer(sid)

    def _door_usable(self, sid):
        return (self.locks.driver.door_open(sid) is not True and not self.doors.awaiting(sid)
                and not self.locks.pending(sid))

    def _cancel(self, session, frame):
        r = self._read_cred(frame)
        req_id = r.take(P.REQ_ID_LEN)
        cred = self._authenticate(session, frame, r, credentials.COURIER)
        sid = self.slots.find_deposit(cred.holder, req_id)
        if sid is None:
            sid = self._just_emptied(LEFT_CANCEL, cred.holder, lambda s: s.req == req_id)
            if sid is not None:        # retry after a cut between record and door: ADR 0004
                self._commit({"e": "reopen", "s": sid, "serial": cred.serial})
                self._open(session, sid, "reopen")
                return struct.pack(">H", sid)
            if self.slots.finished_deposit(cred.holder, req_id):
                raise P.ProtocolError(P.E_DONE, "parcel already collected or cancelled")
            raise P.ProtocolError(P.E_STATE, "no deposit of yours with this request id")
        self._commit({"e": "cancel", "s": sid, "serial": cred.serial})
        self._open(session, sid, "cancel")
        return struct.pack(">H", sid)

    def _reclaim(self, session, frame):
        r = self._read_cred(frame)
        want = r.u16()
        cred = self._authenticate(session, frame, r, credentials.COURIER)
        any_ok = cred.has_scope(credentials.SCOPE_RECLAIM_ANY)
        for sid in self.slots.expired(self.clock.now(), self.cfg["ttl_s"]):
            if (want in (0, sid)) and (any_ok or self.slots.holder_is(sid, cred.holder)):
                self._commit({"e": "recl", "s": sid, "serial": cred.serial})
                self._open(session, sid, "recl")
                return struct.pack(">HI", sid, self.slots.generation(sid))
        ttl = self.cfg["ttl_s"]
        sid = self._just_emptied(LEFT_RECLAIM, None if any_ok else cred.holder, lambda s: (
            want in (0, s.sid) and s.released_ts > s.deposit_ts + ttl))
        if sid is not None:            # retry after a cut between record and door: ADR 0004
            self._commit({"e": "reopen", "s": sid, "serial": cred.serial})
            self._open(session, sid, "reopen")
            return struct.pack(">HI", sid, self.slots.generation(sid))
        raise P.ProtocolError(P.E_STATE, "no expired parcel you may reclaim")

    def _just_emptied(self, how, holder, match):
        """A FREE slot that the flow `how` (LEFT_CANCEL / LEFT_RECLAIM) emptied less than
        REOPEN_S ago (nothing deposited since), whose last parcel was holder's (None:
        anyone's) and that match(slot) accepts: a retry of that very flow reopens it."""
        now = self.clock.now()
        sl = self.slots
        for sid in sl.sids():
            if sl.state[sid - 1] != FREE or sl.released_by(sid) != how:
                continue              # no view made for a slot that cannot match
            s = sl.at(sid)
            if (reopens_for(s, how, now) and s.cred and (holder is None or s.holder == holder)
                    and match(s)):
                return sid
        return None

    def _pickup_start(self, session, frame):
        """PICKUP_START: slot, form, pA -> pB, cB. A human-form attempt is one password guess:
        it is budgeted (throttle) and journalled BEFORE the answer that lets the phone test
        it. Machine-form attempts are never budgeted, only paced."""
        session.pake = None            # a new attempt abandons any earlier one
        r = P.Reader(frame)
        sid = r.u16()
        form = r.u8()
        share_a = r.take(pickup_code.SHARE_LEN)
        r.end()
        if form not in (pickup_code.FORM_HUMAN, pickup_code.FORM_MACHINE):
            raise P.ProtocolError(P.E_VALUE, "unknown code form %d" % form)
        slot = self.slots.get(sid)
        if slot is None:
            raise P.ProtocolError(P.E_VALUE, "no slot %d on this locker" % sid)
        now = self.clock.now()
        if form == pickup_code.FORM_HUMAN:
            wait = self.throttle.retry_after(sid, now)
            if wait:
                raise P.ProtocolError(P.E_LOCKED_OUT, "too many wrong codes: locked out", wait)
        wait_ms = self.pacer.wait_ms(session)
        if wait_ms > 0:
            raise P.ProtocolError(P.E_BUSY, "busy: retry in %d ms" % wait_ms, wait_ms // 1000)
        started = self._ticks_ms()
        verdict, w = self.verifier.password(slot, form, now, self._random)
        try:
            share_b, confirm_b, expect_a, ke = pickup_code.locker_reply(
                w, pickup_code.random_scalar(self._random), sid, form, self.locker_id, share_a)
        except Spake2Error:
            raise P.ProtocolError(P.E_VALUE, "pA is not a P-256 point")
        finally:
            self.pacer.done(session, started)
        if form == pickup_code.FORM_HUMAN:
            self._commit({"e": "try", "s": sid, "g": slot.gen})
        session.pake = (now, sid, slot.gen, form, verdict, expect_a, ke)
        return share_b + confirm_b

    def _pickup_finish(self, session, frame):
        """PICKUP_FINISH: cA -> the door opens (answer MACed with Ke). Only the phone that
        proved the code gets here; a wrong cA changes nothing (the guess was counted)."""
        pending, session.pake = session.pake, None
        r = P.Reader(frame)
        confirm_a = r.take(pickup_code.CONFIRM_LEN)
        r.end()
        if pending is None or self.clock.now() - pending[0] > self.cfg["challenge_ttl_s"]:
            raise P.ProtocolError(P.E_STATE, "no pickup started on this connection: send "
                                  "PICKUP_START")
        started, sid, gen, form, verdict, expect_a, ke = pending
        if not equal(confirm_a, expect_a):
            now = self.clock.now()
            wait = self.throttle.retry_after(sid, now) if form == pickup_code.FORM_HUMAN else 0
            raise P.ProtocolError(P.E_CODE, "wrong pickup code", wait)
        slot = self.slots.at(sid)
        if slot.gen != gen:            # a deposit in between: that code's parcel is gone
            verdict = GONE
        elif verdict != WRONG:         # the right code: the truth as of now (issue 12.4)
            verdict = outcome(slot, self.clock.now(), self.cfg["ttl_s"])
        if verdict in (EXPIRED, OUT_OF_SERVICE, GONE):
            status, msg = {EXPIRED: (P.E_EXPIRED, "code expired: ask the courier to reclaim"),
                           OUT_OF_SERVICE: (P.E_OUT_OF_SERVICE, "slot out of service"),
                           GONE: (P.E_DONE, "parcel already gone")}[verdict]
            # the right code: its try is given back ("late" also records the attempt)
            self._commit({"e": "late" if verdict == EXPIRED else "right", "s": sid, "g": gen,
                          "f": form})
            body = P.error_body(msg)
            raise P.ProtocolError(status, msg, 0, body + pickup_code.answer_mac(
                ke, bytes((P.VERSION, P.PICKUP_FINISH | P.RESPONSE_BIT, status)), body))
        if verdict == VALID:
            self._commit({"e": "pick", "s": sid, "g": gen, "f": form})
            self._open(session, sid, "pick")
        elif verdict == REOPEN:
            self._commit({"e": "reopen", "s": sid, "g": gen, "f": form})
            self._open(session, sid, "reopen")
        else:
            raise P.ProtocolError(P.E_CODE, "wrong pickup code")
        body = struct.pack(">HBI", sid, slot.size, slot.deposit_ts)
        return body + pickup_code.answer_mac(
            ke, bytes((P.VERSION, P.PICKUP_FINISH | P.RESPONSE_BIT, P.OK)), body)

    # ---- technicians and operators: TECH_OPEN, STATUS, AUDIT_READ, ADMIN ---------------

    def _tech_open(self, session, frame):
        """TECH_OPEN: slot u16, action u8 -> slot u16, slot bits u8 after the action."""
        r = self._read_cred(frame)
        sid = r.u16()
        action = r.u8()
        cred = self._authenticate(session, frame, r, credentials.TECHNICIAN)
        if self.slots.get(sid) is None:
            raise P.ProtocolError(P.E_VALUE, "no slot %d on this locker" % sid)
        if action > P.TECH_IN_SERVICE:
            raise P.ProtocolError(P.E_VALUE, "unknown technician action %d" % action)
        self._commit({"e": "tech", "s": sid, "a": action, "serial": cred.serial})
        if action in (P.TECH_OPEN_ONLY, P.TECH_CLEAR):
            self._open(session, sid, "tech")
        return struct.pack(">HB", sid, self._slot_bits(sid, self._expiry(self.clock.now())))

    def _status(self, session, frame):
        """STATUS: time u32, slot count u16, then per slot size u8, bits u8."""
        self._authenticate(session, frame, self._read_cred(frame))
        now = self.clock.now()
        sl = self.slots
        n = len(sl)
        out = bytearray(6 + 2 * n)          # written in place: nothing made per slot
        struct.pack_into(">IH", out, 0, now, n)
        expiry = self._expiry(now)
        for i in range(n):
            out[6 + 2 * i] = sl.size[i]
            out[7 + 2 * i] = self._slot_bits(i + 1, expiry)
        return out

    def _expiry(self, now):
        """What _slot_bits compares deposit times with (slot_manager.expiry_limit)."""
        return expiry_limit(now, self.cfg["ttl_s"])

    def _slot_bits(self, sid, expiry):
        """Slot sid's status bits; expiry from _expiry(now). Reads the columns in place."""
        sl = self.slots
        i = sid - 1
        bits = 0
        if sl.state[i] == OCCUPIED:
            bits |= ST_OCCUPIED
            if sl.deposited_before(i, expiry):
                bits |= _ST_EXPIRED
        if sl.out_of_service(sid):
            bits |= ST_OUT_OF_SERVICE
        door = self.locks.driver.door_open(sid)
        if door is not None:
            bits |= _ST_HAS_SENSOR
            if door:
                bits |= _ST_DOOR_OPEN
        return bits

    def _audit_read(self, session, frame):
        """AUDIT_READ: count u8, then count x (len u16 | line), lines as stored (the operator
        re-checks the chain over those very bytes)."""
        r = self._read_cred(frame)
        from_seq = r.u32()
        limit = r.u8()
        cred = self._authenticate(session, frame, r)
        if cred.kind != credentials.TECHNICIAN and not cred.has_scope(credentials.SCOPE_AUDIT):
            raise P.ProtocolError(P.E_SCOPE, "credential may not read the audit log")
        # the count, then the lines written in place (docs/protocol.md 5.7: unchecked here)
        out = bytearray(P.MAX_RESPONSE - 3 - P.CHALLENGE_LEN - P.TAG_LEN)
        try:
            count, end = self.store.page(from_seq, limit, out, 1)
        except StoreCorrupt as e:
            raise P.ProtocolError(P.E_INTERNAL, "audit log corrupt: %s" % e)
        out[end:] = b""
        out[0] = count
        return out

    def _admin_message(self, session, frame):
        """An ADMIN frame's operation u8, sequence u32 and payload, once its MAC under the
        admin key verifies (E_AUTH otherwise); from then on the answer is tagged."""
        r = P.Reader(frame)
        op = r.u8()
        seq = r.u32()
        payload = r.take(r.u8())
        tag = r.tag_and_end()
        if not equal(hmac_sha256(self.admin_key, memoryview(frame)[:-P.TAG_LEN]), tag,
                     P.TAG_LEN):
            raise P.ProtocolError(P.E_AUTH, "admin message MAC does not verify")
        session.answer = (self.admin_key, b"", tag)        # authentic: the answer is tagged
        return op, seq, payload

    def _admin(self, session, frame):
        """ADMIN: operation u8, sequence u32, payload; answer: operation, sequence, locker time."""
        op, seq, payload = self._admin_message(session, frame)
        if op not in (P.ADMIN_REVOKE, P.ADMIN_SET_TIME):
            raise P.ProtocolError(P.E_VALUE, "unknown admin operation %d" % op)
        want = 8 if op == P.ADMIN_REVOKE else 4
        if len(payload) != want:
            raise P.ProtocolError(P.E_LENGTH, "admin operation %d takes a %d-byte payload"
                                  % (op, want))
        if seq <= self.admin_seq:
            raise P.ProtocolError(P.E_REPLAY, "admin message %d already applied" % seq)
        if op == P.ADMIN_REVOKE:
            serial, until = struct.unpack(">II", payload)
            now = self.clock.now()
            for s in [s for s, u in self.revoked.items() if u < now]:
                del self.revoked[s]                          # expired anyway: make room
            if len(self.revoked) >= _MAX_REVOKED:
                raise P.ProtocolError(P.E_INTERNAL, "revocation list full")
            self._commit({"e": "revoke", "serial": serial, "until": until, "a": seq})
        else:
            # Never backwards: a time at or behind the clock is delivered (its sequence number is
            # used, so it cannot void a later message) and moves nothing ("by": 0); the answer's
            # time field shows the clock as it is.
            (t,) = struct.unpack(">I", payload)
            moved = self.clock.advance_to(t)
            self._commit({"e": "time", "to": t, "by": moved, "a": seq})
        return struct.pack(">BII", op, seq, self.clock.now())

    # ---- background work (main loop) --------------------------------------------------

    def poll_doors(self):
        """Classify door sensor changes; log anomalies, undo actions whose door jammed."""
        for sid, event, purpose in self.doors.poll(self.locks.driver.door_open,
                                                   self._ticks_ms()):
            if event == "closed":
                self._pending_doors.pop(sid, None)
                continue
            record = {"e": "door", "s": sid, "k": event}
            if event == "jam":
                record = {"e": "jam", "s": sid, "undo": purpose}
                self._pending_doors.pop(sid, None)
            self._commit(record)

    def tick(self):
        """Periodic: keep the persisted clock floor fresh; catch up on deferred compaction."""
        if self.clock.now() - self._last_floor_write >= _FLOOR_PERIOD_S:
            self._commit({"e": "clock"})
        self._compact_if_due()
