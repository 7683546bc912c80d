"""The phone's side of the patent, as a library: send a request, receive the slot, generate
the pickup code; send a proof of the code, receive the slot that opened.

A transport only moves frames: `exchange(frame) -> frame`. The simulator socket and BLE
(bleak) both implement it; tests use the locker's handler directly."""
import os
import struct
import time
from dataclasses import dataclass

from core import credentials, phone, pickup_code, recipient
from core import protocol as P
from core.hmac_sha256 import equal

STATUS_NAMES = {
    P.OK: "ok", P.E_VERSION: "unsupported-version", P.E_TYPE: "unknown-type",
    P.E_LENGTH: "bad-length", P.E_AUTH: "bad-mac", P.E_CHALLENGE: "stale-challenge",
    P.E_CREDENTIAL: "credential-refused", P.E_NO_SLOT: "no-free-slot", P.E_STATE: "wrong-state",
    P.E_CODE: "wrong-code", P.E_LOCKED_OUT: "locked-out", P.E_EXPIRED: "code-expired",
    P.E_SCOPE: "not-permitted", P.E_DONE: "already-done", P.E_TOO_LARGE: "too-large",
    P.E_INTERNAL: "internal-error", P.E_REPLAY: "replayed", P.E_VALUE: "bad-value",
    P.E_OUT_OF_SERVICE: "out-of-service",
    P.E_BUSY: "busy",
}
BUSY_RETRIES = 20        # PICKUP_START refused as busy (PAKE pacing): wait and try again
# The longest busy wait followed (s): the locker's pacing asks for 2 x one PAKE run (ESP32
# estimate 1.5-3.5 s, docs/performance.md section 1). E_BUSY is not authenticated: a longer
# retry_after (a relay's or a fake locker's) ends the pickup with the refusal instead.
BUSY_MAX_WAIT_S = 30


class LockerRefused(Exception):
    """The locker answered with an error status.

    verified: the refusal carried an answer tag that checked out (it really comes from the
    locker, after it authenticated the request). An unverified refusal of a signed request
    may be forged by a relay: the request may or may not have been carried out, so retry it
    (same request id) rather than act on the refusal."""

    def __init__(self, status, message, retry_after=0, verified=False):
        super().__init__("%s: %s" % (STATUS_NAMES.get(status, status), message))
        self.status = status
        self.name = STATUS_NAMES.get(status, str(status))
        self.message = message
        self.retry_after = retry_after
        self.verified = verified


class AnswerNotAuthentic(LockerRefused):
    """The answer to a signed request is missing its tag or the tag does not verify: it was
    altered (or made up) between the locker and this phone. Nothing in it may be used."""

    def __init__(self, message):
        LockerRefused.__init__(self, P.E_AUTH, message)
        self.name = "answer-not-authentic"
        self.args = ("%s: %s" % (self.name, message),)


@dataclass
class CourierCredential:
    """What a courier's (or technician's) phone holds: the public block and its key."""
    locker_id: bytes
    block: bytes
    key: bytes

    @property
    def credential(self):
        return credentials.decode(self.block)[0]


@dataclass
class Deposit:
    slot: int
    generation: int
    deposit_ts: int
    size: int
    ttl_s: int
    code: str
    machine_code: str
    request_id: bytes

    @property
    def expires_at(self):
        return self.deposit_ts + self.ttl_s


@dataclass
class Hello:
    locker_id: bytes
    time: int
    slot_count: int
    max_request: int
    bucket_s: int
    skew_buckets: int
    ttl_s: int


class LockerClient:
    def __init__(self, transport):
        self.transport = transport
        self.challenge = None
        self.hello_info = None

    # ---- plumbing -------------------------------------------------------------------

    def _call(self, req_type, frame, auth=None):
        """Send a frame, return the answer body (tag removed).

        auth = (key, pre, post) for a request the locker authenticates: an OK answer must end
        in HMAC(key, pre | answer | post)[:16] (docs/protocol.md 4), a refusal may."""
        answer = self.transport.exchange(frame)
        rtype, status, challenge, body = phone.parse_response(answer)
        self.challenge = challenge
        verified = False
        if auth is not None:
            body, verified = _check_answer_tag(answer, status, body, auth)
        if status != P.OK:
            retry, msg = phone.parse_error(body)
            raise LockerRefused(status, msg, retry, verified)
        if rtype != req_type:
            raise LockerRefused(P.E_TYPE, "answer of type 0x%02x to 0x%02x" % (rtype, req_type))
        return body

    def _ensure_challenge(self):
        if self.challenge is None:
            self.hello()

    def _fresh(self, req_type, build, key=None):
        """Send build(challenge); on a stale challenge (nothing was evaluated) retry once with
        the fresh challenge that the refusal itself carries. key: the answer is tagged with
        it over that challenge and is checked before anything in it is used."""
        for attempt in (0, 1):
            self._ensure_challenge()
            challenge, self.challenge = self.challenge, None
            try:
                return self._call(req_type, build(challenge),
                                  None if key is None else (key, challenge, b""))
            except LockerRefused as e:
                if e.status != P.E_CHALLENGE or attempt or isinstance(e, AnswerNotAuthentic):
                    raise

    def _signed(self, req_type, cred, fields):
        return self._fresh(req_type, lambda ch: phone.sign(P.request(req_type, cred.block + fields),
                                                           cred.key, ch), cred.key)

    # ---- flows ----------------------------------------------------------------------

    def hello(self):
        body = self._call(P.HELLO, P.request(P.HELLO))
        lid = body[:8]
        t, n, maxreq, bucket, skew, ttl = struct.unpack(">IHHHBI", body[8:8 + 17])
        self.hello_info = Hello(lid, t, n, maxreq, bucket, skew, ttl)
        return self.hello_info

    def deposit(self, cred, size=1, request_id=None):
        """Deposit: the locker allocates and opens a slot; the phone generates the code."""
        request_id = request_id or os.urandom(P.REQ_ID_LEN)
        body = self._signed(P.DEPOSIT, cred, request_id + bytes((size,)))
        if len(body) != DEPOSIT_ANSWER_LEN:
            raise AnswerNotAuthentic("deposit answer of %d bytes" % len(body))
        # every input of the code comes from the authenticated answer, none from HELLO
        slot, gen, ts, got_size, ttl, bucket_s = struct.unpack(">HIIBIH", body)
        return Deposit(slot, gen, ts, got_size, ttl,
                       phone.human_code(cred.key, cred.locker_id, slot, gen, ts, bucket_s),
                       phone.machine_code(cred.key, cred.locker_id, slot, gen, ts,
                                          bucket_s),
                       request_id)

    def pickup(self, code, random_bytes=os.urandom, busy_retries=BUSY_RETRIES):
        """Pickup as a SPAKE2 run with the code as the password (docs/protocol.md 5.5, 8):
        PICKUP_START (pA) -> pB, cB; the phone checks cB (the real locker knows the code),
        PICKUP_FINISH (cA) -> the slot that opened, MACed with the PAKE key Ke.

        Raises LockerRefused: "wrong-code" also when the locker could not prove the code
        (wrong code, or a fake locker), "bad-mac" when the final answer is not authentic."""
        slot, form, material = phone.parse(code)
        if self.hello_info is None:
            self.hello()
        pake = recipient.RecipientPake(slot, form, material, self.hello_info.locker_id,
                                         random_bytes)
        start = P.request(P.PICKUP_START, struct.pack(">HB", slot, form) + pake.share)
        for attempt in range(busy_retries + 1):
            try:
                body = self._call(P.PICKUP_START, start)
                break
            except LockerRefused as e:
                if (e.status != P.E_BUSY or attempt == busy_retries
                        or e.retry_after > BUSY_MAX_WAIT_S):
                    raise
                time.sleep(e.retry_after or 0.05 * (attempt + 1))
        if len(body) != pickup_code.SHARE_LEN + pickup_code.CONFIRM_LEN:
            raise LockerRefused(P.E_LENGTH, "PICKUP_START answer of %d bytes" % len(body))
        try:
            confirm_a = pake.finish(body[:pickup_code.SHARE_LEN], body[pickup_code.SHARE_LEN:])
        except recipient.CodeMismatch as e:
            raise LockerRefused(P.E_CODE, str(e))
        answer = self.transport.exchange(P.request(P.PICKUP_FINISH, confirm_a))
        rtype, status, self.challenge, body = phone.parse_response(answer)
        # Every answer that tells the recipient what happened to the parcel is MACed with Ke
        # (docs/protocol.md 5.5); only "wrong code" and "no pickup started" cannot be.
        if status in (P.OK, P.E_EXPIRED, P.E_OUT_OF_SERVICE, P.E_DONE):
            body = pake.check_answer(answer) if rtype == P.PICKUP_FINISH else None
            if body is None:
                raise LockerRefused(P.E_AUTH, "pickup answer not authenticated by the PAKE key")
        if status != P.OK:
            retry, msg = phone.parse_error(body)
            raise LockerRefused(status, msg, retry)
        if len(body) != 7:
            raise LockerRefused(P.E_LENGTH, "PICKUP_FINISH answer of %d bytes" % len(body))
        sid, size, ts = struct.unpack(">HBI", body)
        if sid != slot:
            raise LockerRefused(P.E_AUTH, "the locker opened slot %d, not %d" % (sid, slot))
        return {"slot": sid, "size": size, "deposit_ts": ts}

    def cancel(self, cred, request_id):
        return struct.unpack(">H", self._signed(P.CANCEL, cred, request_id))[0]

    def reclaim(self, cred, slot=0):
        sid, gen = struct.unpack(">HI", self._signed(P.RECLAIM, cred, struct.pack(">H", slot)))
        return sid

    def tech_open(self, cred, slot, action=P.TECH_OPEN_ONLY):
        sid, bits = struct.unpack(">HB", self._signed(P.TECH_OPEN, cred,
                                                      struct.pack(">HB", slot, action)))
        return {"slot": sid, "bits": bits}

    def status(self, cred):
        body = self._signed(P.STATUS, cred, b"")
        now, n = struct.unpack(">IH", body[:6])
        slots = [{"slot": i + 1, "size": body[6 + 2 * i], "bits": body[7 + 2 * i]}
                 for i in range(n)]
        return {"time": now, "slots": slots}

    def audit_page(self, cred, from_seq=1, limit=255):
        body = self._signed(P.AUDIT_READ, cred, struct.pack(">IB", from_seq, limit))
        count, pos, lines = body[0], 1, []
        for _ in range(count):
            (n,) = struct.unpack(">H", body[pos:pos + 2])
            lines.append(body[pos + 2:pos + 2 + n])
            pos += 2 + n
        return lines

    def admin(self, signed_blob, admin_key=None):
        """Deliver an operator-signed message; (operation, sequence, locker time after it).

        admin_key (the operator has it, a courier's phone does not): check the answer's tag,
        so a relay cannot make the operator believe a revocation arrived."""
        auth = None if admin_key is None else (admin_key, b"", signed_blob[-P.TAG_LEN:])
        body = self._call(P.ADMIN, signed_blob, auth)
        if admin_key is None and len(body) == ADMIN_ANSWER_LEN + P.TAG_LEN:
            body = body[:-P.TAG_LEN]          # tag present but not checkable here
        return struct.unpack(">BII", body)


DEPOSIT_ANSWER_LEN = 17
ADMIN_ANSWER_LEN = 9


def _check_answer_tag(answer, status, body, auth):
    """(body without its tag, verified) or AnswerNotAuthentic (docs/protocol.md 4)."""
    key, pre, post = auth
    tagged = True
    if status != P.OK:
        n = body[4] if len(body) >= 5 else -1
        if len(body) == 5 + n:
            tagged = False                 # a refusal before the request was authenticated
        elif len(body) != 5 + n + P.TAG_LEN:
            raise AnswerNotAuthentic("malformed refusal")
    elif len(body) < P.TAG_LEN:
        raise AnswerNotAuthentic("answer without its tag")
    if not tagged:
        return body, False
    if not equal(P.answer_tag(key, pre, answer[:-P.TAG_LEN], post), answer[-P.TAG_LEN:]):
        raise AnswerNotAuthentic("answer tag does not verify: altered on the way")
    return body[:-P.TAG_LEN], True


class DirectTransport:
    """In-process transport to a Locker object (tests, benchmarks)."""

    def __init__(self, locker, session=None):
        self.locker = locker
        self.session = session or locker.new_session()

    def exchange(self, frame):
        return self.locker.handle(self.session, frame)
