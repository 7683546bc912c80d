# Every request kind the locker serves, each measured on its own through Locker.handle: the
# bytes it allocates (bench_memory's allocated(): collector off on the unix port; the
# WebAssembly port never collects inside a call, so a delta is everything allocated). For
# the pickup PAKE the SPAKE2 group arithmetic (spake2.share and spake2.shared_element: the
# P-256 point multiplications, SEC1 encoding and decoding) is measured apart by wrapping
# those two entry points, and reported on its own row: megabytes of short-lived big
# integers that a board's collector recycles as it goes (docs/performance.md).
# Also the link layer's per-request work: reassembling a request's fragments (with its
# credit), splitting an answer into fragments.
import gc
import struct

import bench_util as U
from core import credentials, fragment, link, phone, pickup_code, recipient, spake2
from core import protocol as P
from core.hmac_sha256 import hmac_sha256
from core.kdf import admin_key

ARITH = [0]          # bytes allocated inside the wrapped group-arithmetic entry points
_real = {}


def _share(role, w, secret):
    a = gc.mem_alloc()
    out = _real["share"](role, w, secret)
    ARITH[0] += gc.mem_alloc() - a
    return out


def _shared_element(role, w, secret, peer_share):
    a = gc.mem_alloc()
    out = _real["shared_element"](role, w, secret, peer_share)
    ARITH[0] += gc.mem_alloc() - a
    return out


def install():
    """Route spake2.share and spake2.shared_element through the counting wrappers (the
    locker reaches them as module attributes: pickup_code.locker_reply, spake2.run)."""
    if not _real:
        _real["share"] = spake2.share
        _real["shared_element"] = spake2.shared_element
        spake2.share = _share
        spake2.shared_element = _shared_element


ARITH_SUFFIX = ": its SPAKE2 group arithmetic (P-256 big integers)"


class Phone:
    """The phone's and the operator's side of every request, built outside the measurement."""

    def __init__(self, rig):
        self.rig = rig
        self.lk = rig.locker
        self.session = rig.session
        t = rig.time.rtc
        self.courier = credentials.Credential(credentials.COURIER, b"courier-1", 1, t,
                                              t + 30 * 86400)
        self.courier_key = self.courier.key(U.MASTER, U.LOCKER_ID)
        self.tech = credentials.Credential(credentials.TECHNICIAN, b"tech-1", 900, t,
                                           t + 30 * 86400)
        self.tech_key = self.tech.key(U.MASTER, U.LOCKER_ID)
        self.admin_key = admin_key(U.MASTER, U.LOCKER_ID)
        self.admin_seq = self.lk.admin_seq
        self.challenge = None
        self.pake = None

    def hello(self):
        self.challenge = self.rig.hello()[1]

    def signed(self, req_type, body, tech=False):
        """A signed request over a fresh challenge (HELLO first, outside the measurement)."""
        self.hello()
        cred, key = (self.tech, self.tech_key) if tech else (self.courier, self.courier_key)
        return phone.sign(P.request(req_type, cred.encode() + body), key, self.challenge)

    def deposit_frame(self, req, size=1):
        return self.signed(P.DEPOSIT, U.req_id(req) + bytes((size,)))

    def deposit(self, req, size=1):
        """An unmeasured deposit, its door opened and closed: (sid, gen, deposit_ts)."""
        resp = self.rig.handle(self.deposit_frame(req, size))
        if resp[2] != P.OK:
            raise RuntimeError("deposit refused: %d" % resp[2])
        sid, gen, ts = struct.unpack(">HII", resp[19:29])
        self.rig.settle(sid)
        return sid, gen, ts

    def code(self, sid, gen, ts, form):
        make = phone.machine_code if form else phone.human_code
        return make(self.courier_key, U.LOCKER_ID, sid, gen, ts, self.rig.cfg["bucket_s"])

    def start_frame(self, code):
        """PICKUP_START of a pickup with code; the phone's PAKE is kept for finish_frame."""
        self.hello()
        sid, form, material = phone.parse(code)
        self.pake = recipient.RecipientPake(sid, form, material, U.LOCKER_ID, U.random_bytes)
        return recipient.start_frame(self.pake)

    def finish_frame(self, answer):
        """PICKUP_FINISH after the START answer (a random cA if the locker's cB did not
        verify: what a guesser can send)."""
        try:
            confirm = self.pake.finish(answer[19:19 + pickup_code.SHARE_LEN],
                                       answer[19 + pickup_code.SHARE_LEN:])
        except recipient.CodeMismatch:
            confirm = U.random_bytes(pickup_code.CONFIRM_LEN)
        return P.request(P.PICKUP_FINISH, confirm)

    def admin_frame(self, op, payload):
        self.admin_seq += 1
        body = P.request(P.ADMIN, struct.pack(">BIB", op, self.admin_seq, len(payload))
                         + payload)
        return body + hmac_sha256(self.admin_key, body)[:P.TAG_LEN]


def _measure(lk, session, frame, allocated):
    """(answer, bytes the request allocated without the group arithmetic, arithmetic)."""
    ARITH[0] = 0
    answer, used = allocated(lambda: lk.handle(session, frame))
    arith = ARITH[0]
    return answer, (used - arith if used >= 0 else used), arith


def _request(lk, session, name, frame, allocated, arith_row=False):
    """Measure one request: (answer, rows); arith_row adds the group arithmetic's row."""
    answer, used, arith = _measure(lk, session, frame, allocated)
    rows = [[name, used, answer[2] if answer else None, None]]
    if arith_row:
        rows.append([name + ARITH_SUFFIX, arith if used >= 0 else -1, None, None])
    return answer, rows


def requests(rig, allocated, pake=True):
    """Every request kind once, on rig's locker (empty or nearly: it deposits its own
    parcels). A generator: yields rows [name, bytes, status, None]; a PAKE request yields
    two, the request without its group arithmetic and then that arithmetic alone. Every
    yield is a point where the caller may collect (bench_memory steps)."""
    install()
    ph = Phone(rig)
    lk, session = ph.lk, ph.session

    def req(name, frame, arith_row=False):
        return _request(lk, session, name, frame, allocated, arith_row)

    answer, rows = req("HELLO", P.request(P.HELLO))
    yield rows
    answer, rows = req("DEPOSIT, new parcel", ph.deposit_frame(1))
    sid, gen, ts = struct.unpack(">HII", answer[19:29])
    rig.settle(sid)
    yield rows
    answer, rows = req("DEPOSIT, retry with the same request id", ph.deposit_frame(1))
    rig.settle(sid)
    yield rows
    bad = bytearray(ph.deposit_frame(9))
    bad[-1] ^= 1
    answer, rows = req("DEPOSIT with a wrong MAC (E_AUTH)", bytes(bad))
    yield rows
    if pake:
        human = ph.code(sid, gen, ts, pickup_code.FORM_HUMAN)
        for label, code in (("wrong human code", U.wrong_code(human)),
                            ("human code", human)):
            answer, rows = req("PICKUP_START, " + label, ph.start_frame(code), True)
            yield rows
            answer, rows = req("PICKUP_FINISH, " + label, ph.finish_frame(answer))
            yield rows
        rig.settle(sid)
        sid, gen, ts = ph.deposit(2)
        code = ph.code(sid, gen, ts, pickup_code.FORM_MACHINE)
        answer, rows = req("PICKUP_START, machine-form code", ph.start_frame(code), True)
        yield rows
        answer, rows = req("PICKUP_FINISH, machine-form code", ph.finish_frame(answer))
        rig.settle(sid)
        yield rows
    else:                   # the parcel leaves all the same: the caller fills the locker
        rig.handle(ph.signed(P.CANCEL, U.req_id(1)))
        rig.settle(sid)
    sid, _, _ = ph.deposit(3)
    answer, rows = req("CANCEL", ph.signed(P.CANCEL, U.req_id(3)))
    rig.settle(sid)
    yield rows
    sid, _, _ = ph.deposit(4)
    rig.time.advance(rig.cfg["ttl_s"] + 1)
    answer, rows = req("RECLAIM (an expired parcel)", ph.signed(P.RECLAIM,
                                                                struct.pack(">H", 0)))
    rig.settle(sid)
    yield rows
    answer, rows = req("TECH_OPEN (technician opens a door)", ph.signed(
        P.TECH_OPEN, struct.pack(">HB", sid, P.TECH_OPEN_ONLY), tech=True))
    rig.settle(sid)
    yield rows
    answer, rows = req("STATUS", ph.signed(P.STATUS, b""))
    status_answer = answer
    yield rows
    answer, rows = req("AUDIT_READ, first page", ph.signed(
        P.AUDIT_READ, struct.pack(">IB", 1, 255), tech=True))
    yield rows
    answer, rows = req("AUDIT_READ, the last record (the whole journal checked)", ph.signed(
        P.AUDIT_READ, struct.pack(">IB", lk.store.seq, 255), tech=True))
    yield rows
    answer, rows = req("ADMIN revoke", ph.admin_frame(
        P.ADMIN_REVOKE, struct.pack(">II", 4242, rig.time.rtc + 86400)))
    yield rows
    answer, rows = req("ADMIN set time", ph.admin_frame(
        P.ADMIN_SET_TIME, struct.pack(">I", rig.time.rtc + 60)))
    yield rows
    yield link_rows(ph, allocated, status_answer)


def link_rows(ph, allocated, answer):
    """The link layer around one request (core/link.py, core/fragment.py): a DEPOSIT fed
    to the connection's Receiver in 20-byte fragments (BLE's smallest ATT payload), the
    largest request (256 bytes: 14 fragments, one credit due), and an answer (STATUS)
    split into 20-byte notifications."""
    rows = []
    rx = link.Receiver(P.MAX_REQUEST, 0, lambda a, b: a - b)
    for name, msg in (("link: a DEPOSIT reassembled from 20-byte fragments",
                       ph.deposit_frame(5)),
                      ("link: a 256-byte request reassembled (14 fragments, 1 credit)",
                       bytes(P.MAX_REQUEST))):
        pieces = list(fragment.split(msg))

        def feed():
            todo = None
            for p in pieces:
                todo = rx.feed(p, 0)
            return todo
        gc.collect()
        todo, used = allocated(feed)
        rows.append([name, used, todo, None])

    def split():
        n = 0
        for _ in fragment.split(answer):
            n += 1
        return n
    gc.collect()
    n, used = allocated(split)
    rows.append(["link: the STATUS answer (6 B + 2 B a slot) split into 20-byte "
                 "notifications", used, None, None])
    return rows


def full_locker(rig, allocated, code, pake=True):
    """The requests whose work could grow with occupancy, on a full locker: the last free
    slot's deposit is bench_memory's; here a wrong and a right pickup (code: a parcel's
    human code) and STATUS. Yields rows as requests() does."""
    install()
    ph = Phone(rig)
    lk, session = ph.lk, ph.session
    if pake:
        for label, c in (("wrong human code", U.wrong_code(code)), ("human code", code)):
            _, rows = _request(lk, session, "PICKUP_START, %s, full locker" % label,
                               ph.start_frame(c), allocated, True)
            yield rows
    _, rows = _request(lk, session, "STATUS, full locker", ph.signed(P.STATUS, b""),
                       allocated)
    yield rows
