"""Fuzz campaign: malformed and mutated frames into Locker.handle, and fragment streams into
the reassembler.

Frames: mutations of valid recorded requests (bit flips, byte sets, truncation, extension,
splicing, length fields, version/type bytes, oversize), random bytes, mutated requests
re-signed with a valid key (so the parser behind the MAC is reached too), and a smaller
share of hypothesis-generated requests built from the protocol's fields.
Checks on every answer: handle() never raises; the answer is well formed (version, the
type the spec says, a known status, a 16-byte challenge, an error body that parses); no
journal record, state change or door command unless the status allows exactly that kind
(OK: the flow's own record; wrong-code: one strike; expired: one 'late'; an authentic
credential may move the clock forward).

    .venv/bin/python tools/campaigns/fuzz.py [--frames 1000000] [--hypothesis 20000]
        [--fragments 200000] [--jobs 2] [--seconds 900]
"""
import argparse
import multiprocessing
import os
import random
import struct
import sys
import time

from core import phone
from core import (
    fragment,  # (firmware)
    kdf,
    p256,
)
from core import link as link_rx  # (firmware; `link` is a payload size below)
from core.hmac_sha256 import hmac_sha256
from lockerctl import operator as op

from campaigns.common import (
    LOCKER_ID,
    MASTER,
    Bench,
    Figures,
    P,
    close_all_doors,
    courier,
    credentials,
    scratch_dir,
    service_doors,
    technician,
    wipe,
)

MUST_BE_ZERO = ("crashes", "malformed answers", "state changed on refusal",
                "unexpected change on OK", "reassembler mismatches", "link: extra answers")
KNOWN_TYPES = (P.HELLO, P.DEPOSIT, P.CANCEL, P.RECLAIM, P.PICKUP_START, P.PICKUP_FINISH,
               P.TECH_OPEN, P.AUDIT_READ, P.STATUS, P.ADMIN)
SIGNED = (P.DEPOSIT, P.CANCEL, P.RECLAIM, P.TECH_OPEN, P.AUDIT_READ, P.STATUS)
OK_RECORDS = {                  # what an OK answer may have written (besides 'clock')
    P.HELLO: (), P.STATUS: (), P.AUDIT_READ: (),
    P.DEPOSIT: ("dep", "reopen"), P.CANCEL: ("cancel", "reopen"),
    P.RECLAIM: ("recl", "reopen"), P.PICKUP_FINISH: ("pick", "reopen"), P.TECH_OPEN: ("tech",),
    P.PICKUP_START: ("try",),   # a human-form guess; machine form writes nothing
    P.ADMIN: ("revoke", "time"),
}
OK_BODY = {P.HELLO: 23, P.DEPOSIT: 17, P.CANCEL: 2, P.RECLAIM: 6, P.PICKUP_START: 97,
           P.PICKUP_FINISH: 23, P.TECH_OPEN: 3, P.ADMIN: 9}
TAGGED = P.AUTHENTICATED + (P.ADMIN,)      # answers end in a 16-byte answer tag (spec 4)
RESET_EVERY = 2000


class Harness:
    """A locker on a scratch folder with spies on its journal and its doors."""

    def __init__(self, folder, rng):
        self.folder = folder
        self.rng = rng
        self.figs = {}
        self.examples = []
        self.corpus = []
        self.reset()

    def reset(self):
        wipe(self.folder)
        self.bench = Bench(self.folder, layout="S*2,M,L", segment_records=50)
        now = self.bench.time.rtc
        self.creds = [courier(now, "fuzz-courier", 5),
                      courier(now, "depot", 6, flags=credentials.SCOPE_RECLAIM_ANY
                              | credentials.SCOPE_AUDIT),
                      technician(now)]
        self.admin_seq = 0
        lk = self.bench.locker
        self.records = []
        self.opens = [0]
        real_append = lk.store.append

        def append(record):
            out = real_append(record)
            self.records.append(record["e"])
            return out
        lk.store.append = append
        real_open = lk.locks.request_open

        def request_open(sid):
            self.opens[0] += 1
            return real_open(sid)
        lk.locks.request_open = request_open
        self.session = lk.new_session()
        self.challenge = self.call(P.request(P.HELLO))[3:19]
        if not self.corpus:
            self.record_corpus()

    def call(self, frame):
        return self.bench.locker.handle(self.session, frame)

    # ---- a corpus of valid requests, captured from real flows -------------------------

    def record_corpus(self):
        b = self.bench
        sent = []
        transport = b.client.transport
        real = transport.exchange

        def exchange(frame):
            sent.append(bytes(frame))
            return real(frame)
        transport.exchange = exchange
        c, depot, tech = self.creds

        def settle(x=None):
            service_doors(b)
            close_all_doors(b)
            return x
        b.client.hello()
        d1 = settle(b.client.deposit(c, size=1))
        d2 = settle(b.client.deposit(c, size=2))
        settle(b.client.deposit(c, size=1, request_id=d1.request_id))
        settle(b.client.pickup(d1.code))
        settle(b.client.pickup(d2.machine_code))
        d3 = settle(b.client.deposit(c, size=3))
        settle(b.client.cancel(c, d3.request_id))
        settle(b.client.tech_open(tech, 1, P.TECH_OPEN_ONLY))
        b.client.tech_open(tech, 2, P.TECH_OUT_OF_SERVICE)
        b.client.status(c)
        b.client.audit_page(depot, 1, 5)
        d4 = settle(b.client.deposit(c, size=1))
        b.time.advance(b.cfg["ttl_s"] + 10)
        b.client.challenge = None
        b.client.reclaim(depot, d4.slot)
        b.client.admin(op.revoke_message(MASTER, LOCKER_ID, 1, 77, b.time.rtc + 10))
        b.client.admin(op.set_time_message(MASTER, LOCKER_ID, 2, b.time.rtc))
        transport.exchange = real
        self.corpus = sent
        self.reset()

    # ---- one frame, all the checks ----------------------------------------------------

    def fingerprint(self):
        lk = self.bench.locker
        s = lk.slots
        return (bytes(s.state), bytes(s.flags), bytes(s.gen), bytes(s.deposit_ts),
                bytes(s.released_ts), len(s.recent), tuple(lk.throttle.to_list()),
                tuple(sorted(lk.revoked.items())), lk.admin_seq)

    def bad(self, figure, frame, text):
        self.figs[figure] = self.figs.get(figure, 0) + 1
        if len(self.examples) < 5:
            self.examples.append("%s: %s (frame %s)" % (figure, text, bytes(frame).hex()))

    def send(self, frame, kind):
        self.figs["frames: " + kind] = self.figs.get("frames: " + kind, 0) + 1
        before = self.fingerprint()
        self.records.clear()
        opens0 = self.opens[0]
        try:
            resp = self.call(frame)
        except Exception as e:                      # the one thing handle() must never do
            self.bad("crashes", frame, repr(e))
            self.reset()
            return None
        self.check_answer(frame, resp)
        if len(resp) >= 19:
            self.challenge = bytes(resp[3:19])
        status = resp[2] if len(resp) > 2 else -1
        records = [r for r in self.records if r != "clock"]
        opened = self.opens[0] - opens0
        if status == P.OK:
            req_type = frame[1]
            allowed = OK_RECORDS.get(req_type, ())
            doors = 1 if req_type in (P.DEPOSIT, P.CANCEL, P.RECLAIM, P.PICKUP_FINISH) else 0
            if req_type == P.TECH_OPEN:
                doors = opened if opened <= 1 else -1
            count = 1 if allowed else 0
            if req_type == P.PICKUP_START:
                count = 1 if len(frame) > 4 and frame[4] == 0 else 0
            if (len(records) != count or (records and records[0] not in allowed)
                    or opened != doors):
                self.bad("unexpected change on OK", frame, "records %s doors %d" % (records,
                                                                                   opened))
            self.figs["answers: ok"] = self.figs.get("answers: ok", 0) + 1
        else:
            expect = {P.E_EXPIRED: ["late"]}.get(status, [])
            same = self.fingerprint() == before or status == P.E_EXPIRED
            if records != expect or opened or not same:
                self.bad("state changed on refusal", frame, "status %d records %s doors %d"
                         % (status, records, opened))
            name = "answers: refused"
            self.figs[name] = self.figs.get(name, 0) + 1
        lk, now = self.bench.locker, self.bench.clock.now()
        if status in (P.OK, P.E_LOCKED_OUT) and any(lk.throttle.retry_after(sid, now)
                                                   for sid in lk.slots.sids()):
            self.reset_throttle()
        return resp

    def reset_throttle(self):
        """Strikes pile up under fuzzing; a fresh locker keeps the verifier reachable."""
        self.figs["resets (throttle)"] = self.figs.get("resets (throttle)", 0) + 1
        self.reset()

    def check_answer(self, frame, resp):
        """The spec, written out independently of the handler's code path."""
        if len(resp) < 3 + P.CHALLENGE_LEN or resp[0] != P.VERSION:
            return self.bad("malformed answers", frame, "short or wrong version")
        if len(frame) > P.MAX_REQUEST:
            want_type, want_status = P.ERROR_TYPE, P.E_TOO_LARGE
        elif len(frame) < 2:
            want_type, want_status = P.ERROR_TYPE, P.E_LENGTH
        elif frame[0] != P.VERSION:
            want_type, want_status = P.ERROR_TYPE, P.E_VERSION
        elif frame[1] not in KNOWN_TYPES:
            want_type, want_status = P.ERROR_TYPE, P.E_TYPE
        else:
            want_type, want_status = frame[1], None
        status = resp[2]
        if resp[1] != want_type | P.RESPONSE_BIT:
            return self.bad("malformed answers", frame, "type 0x%02x" % resp[1])
        if want_status is not None and status != want_status:
            return self.bad("malformed answers", frame, "status %d, spec says %d"
                            % (status, want_status))
        if not 0 <= status <= P.E_BUSY:
            return self.bad("malformed answers", frame, "unknown status %d" % status)
        body = bytes(resp[3 + P.CHALLENGE_LEN:])
        tag = P.TAG_LEN if want_type in TAGGED else 0
        if status != P.OK:
            if len(body) < 5 or len(body) not in (5 + body[4], 5 + body[4] + tag):
                return self.bad("malformed answers", frame, "error body %s" % body.hex())
            try:
                body[5:5 + body[4]].decode()
            except UnicodeError:
                return self.bad("malformed answers", frame, "error text not UTF-8")
        else:
            n = OK_BODY.get(want_type)
            if want_type == P.STATUS:
                n = 6 + 2 * len(self.bench.locker.slots)
            if want_type == P.AUDIT_READ:
                n = len(body) - tag if tag < len(body) <= P.MAX_RESPONSE else -1
            n = -1 if n is None else n + tag
            if len(body) != n:
                return self.bad("malformed answers", frame, "OK body of %d bytes" % len(body))

    # ---- frame makers -----------------------------------------------------------------

    def mutate(self, frame):
        rng = self.rng
        f = bytearray(frame)
        how = rng.randrange(10)
        if how == 0 and f:                                  # bit flips
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(f))
                f[i] ^= 1 << rng.randrange(8)
        elif how == 1 and f:                                # byte set
            for _ in range(rng.randint(1, 3)):
                f[rng.randrange(len(f))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF,
                                                      rng.randrange(256)))
        elif how == 2:                                      # truncation
            f = f[:rng.randrange(len(f) + 1)]
        elif how == 3:                                      # extension
            f += rng.randbytes(rng.choice((1, 2, 16, rng.randint(1, 300))))
        elif how == 4:                                      # splice two requests
            g = rng.choice(self.corpus)
            f = f[:rng.randrange(len(f) + 1)] + g[rng.randrange(len(g) + 1):]
        elif how == 5 and len(f) > 16:                      # length fields
            pos = rng.choice((16, 7, 2 + 5, len(f) - 17))   # holder_len, admin len, ...
            if 0 <= pos < len(f):
                f[pos] = rng.choice((0, 1, 16, 17, 255, rng.randrange(256)))
        elif how == 6 and len(f) >= 2:                      # version / type
            f[rng.randrange(2)] = rng.randrange(256)
        elif how == 7:                                      # oversize
            f += bytes(rng.randint(max(1, P.MAX_REQUEST - len(f) + 1), 2000))
        elif how == 8 and f:                                # duplicate a chunk
            i = rng.randrange(len(f))
            f[i:i] = f[i:i + rng.randint(1, 20)]
        else:                                               # several at once
            for _ in range(2):
                f = bytearray(self.mutate(bytes(f)))
        return bytes(f)

    def resign(self, frame):
        """Re-sign a mutated request so that its MAC verifies: reaches the code behind it."""
        if len(frame) < 2 + P.TAG_LEN or frame[0] != P.VERSION:
            return frame
        body = bytes(frame[:-P.TAG_LEN])
        if frame[1] == P.ADMIN:
            if self.rng.random() < 0.5 and len(body) >= 7:   # a fresh counter, often
                self.admin_seq = max(self.admin_seq, self.bench.locker.admin_seq) + 1
                body = body[:3] + struct.pack(">I", self.admin_seq) + body[7:]
            key = kdf.admin_key(MASTER, LOCKER_ID)
            return body + hmac_sha256(key, body)[:P.TAG_LEN]
        if frame[1] not in SIGNED:
            return frame
        try:
            cred, _ = credentials.decode(body, 2)
        except credentials.CredentialError:
            return frame
        return phone.sign(body, cred.key(MASTER, LOCKER_ID), self.challenge)

    def next_frame(self):
        rng = self.rng
        r = rng.random()
        if r < 0.10:
            n = rng.choice((0, 1, 2, 3, 19, 40, rng.randint(0, 300)))
            return rng.randbytes(n), "random bytes"
        base = rng.choice(self.corpus)
        if r < 0.35:
            return self.resign(self.mutate(base)), "mutated + re-signed"
        if r < 0.40:
            return self.resign(base), "valid re-signed"
        return self.mutate(base), "mutated"


def frame_work(task):
    seed, count = task
    folder = os.path.join(_PARENT[0], "w%d" % os.getpid())
    h = Harness(folder, random.Random(seed))
    for i in range(count):
        if i and i % RESET_EVERY == 0:
            h.reset()
        frame, kind = h.next_frame()
        h.send(frame, kind)
    return h.figs, h.examples


_PARENT = []


def _init(parent):
    _PARENT[:] = [parent]


def run_frames(total, jobs, seconds, figs, seed=1):
    parent = scratch_dir("fuzz-")
    _init(parent)
    chunk = 20000
    tasks = [(seed + i, min(chunk, total - i * chunk)) for i in range((total + chunk - 1)
                                                                     // chunk)]
    pool = multiprocessing.Pool(jobs, _init, (parent,)) if jobs > 1 else None
    started = time.time()
    try:
        results = pool.imap_unordered(frame_work, tasks) if pool else map(frame_work, tasks)
        for got, examples in results:
            figs.merge(got)
            for e in examples:
                figs.note(e)
            if time.time() - started > seconds:
                figs.set("frames stopped by --seconds", True)
                break
    finally:
        if pool:
            pool.terminate()
            pool.join()
        wipe(parent)


# ---- hypothesis: requests built from the protocol's fields ------------------------------

def run_hypothesis(examples, figs, seed=3):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    parent = scratch_dir("fuzz-hyp-")
    h = Harness(os.path.join(parent, "store"), random.Random(seed))
    u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
    cred = st.builds(lambda kind, flags, serial, iss, dur, holder: struct.pack(
        ">BBIIIB", kind, flags, serial, iss, iss + dur, len(holder)) + holder,
        st.sampled_from((0, 1, 2, 3)), u8, u32, st.integers(1767225600 - 10 ** 6,
                                                            1767225600 + 10 ** 6),
        st.integers(0, 10 ** 7), st.binary(min_size=0, max_size=18))
    fields = {
        P.DEPOSIT: st.tuples(st.binary(min_size=8, max_size=8), u8).map(
            lambda t: t[0] + bytes((t[1],))),
        P.CANCEL: st.binary(min_size=8, max_size=8),
        P.RECLAIM: u16.map(lambda v: struct.pack(">H", v)),
        P.TECH_OPEN: st.tuples(u16, u8).map(lambda t: struct.pack(">HB", *t)),
        P.AUDIT_READ: st.tuples(u32, u8).map(lambda t: struct.pack(">IB", *t)),
        P.STATUS: st.just(b""),
    }
    signed = st.tuples(st.sampled_from(sorted(fields)), cred, st.data(), st.booleans(),
                       st.binary(max_size=3))
    points = [p256.encode(p256.mul(k, p256.G)) for k in (1, 2, 3, 0xC0FFEE, p256.N - 1)]
    pickup = st.tuples(u16, u8, st.one_of(st.sampled_from(points),
                                          st.binary(min_size=65, max_size=65)),
                       st.binary(max_size=3))
    finish = st.tuples(st.binary(min_size=32, max_size=32), st.binary(max_size=3))
    admin = st.tuples(u8, u32, st.binary(max_size=12), st.booleans())

    def build_signed(t):
        req_type, block, data, sign, junk = t
        frame = P.request(req_type, block + data.draw(fields[req_type]))
        if sign:
            try:
                c, _ = credentials.decode(block)
                key = c.key(MASTER, LOCKER_ID)
            except credentials.CredentialError:
                key = b"k"
            return phone.sign(frame, key, h.challenge) + junk
        return frame + bytes(16) + junk

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(
        signed.map(build_signed),
        pickup.map(lambda t: P.request(P.PICKUP_START, struct.pack(">HB", t[0], t[1]) + t[2]
                                       + t[3])),
        finish.map(lambda t: P.request(P.PICKUP_FINISH, t[0] + t[1])),
        admin.map(lambda t: op.admin_message(MASTER, LOCKER_ID, t[0], t[1], t[2]) if t[3]
                  else P.request(P.ADMIN, struct.pack(">BIB", t[0], t[1], len(t[2])) + t[2]
                                 + bytes(16))),
        st.binary(max_size=300)))
    def prop(frame):
        h.send(frame, "hypothesis")
    prop()
    figs.merge(h.figs)
    for e in h.examples:
        figs.note(e)
    wipe(parent)


# ---- the fragment reassembler against a model -------------------------------------------

class ModelReassembler:
    """The fragment rules of docs/protocol.md, written out again: header bit7 FIRST, bit6
    LAST, bits0-5 sequence; FIRST restarts; out-of-sequence, empty or oversize drops the
    partial message with an error."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = None
        self.expect = 0

    def feed(self, frag):
        if not frag:
            self.parts = None
            return "error"
        head = frag[0]
        if head & 0x80:
            self.parts, self.expect = [], 0
        if self.parts is None or head & 0x3F != self.expect:
            self.parts = None
            return "error"
        if sum(len(p) for p in self.parts) + len(frag) - 1 > self.limit:
            self.parts = None
            return "error"
        self.parts.append(bytes(frag[1:]))
        self.expect = (self.expect + 1) % 64
        if head & 0x40:
            out, self.parts = b"".join(self.parts), None
            return out
        return None


def run_fragments(count, figs, seed=5):
    rng = random.Random(seed)
    limit = P.MAX_REQUEST
    mism = 0
    fed = 0
    whole = 0
    for _ in range(count):
        real, model = fragment.Reassembler(limit), ModelReassembler(limit)
        msg = rng.randbytes(rng.choice((0, 1, 18, 19, 20, 100, 256, 257, rng.randint(0, 400))))
        link = rng.choice((20, 21, 64, 244, rng.randint(2, 250)))
        frags = [bytearray(f) for f in fragment.split(msg, link)]
        for _ in range(rng.choice((0, 0, 1, 2, 5))):                # damage the stream
            how = rng.randrange(6)
            i = rng.randrange(len(frags))
            if how == 0 and frags[i]:
                frags[i][0] ^= 1 << rng.randrange(8)
            elif how == 1:
                del frags[i]
            elif how == 2:
                frags.insert(i, bytearray(frags[i]))
            elif how == 3:
                frags.insert(i, bytearray(rng.randbytes(rng.randint(0, 30))))
            elif how == 4:
                frags[i] = frags[i][:rng.randrange(len(frags[i]) + 1)]
            else:
                j = rng.randrange(len(frags))
                frags[i], frags[j] = frags[j], frags[i]
            if not frags:
                frags.append(bytearray())
        outs = []
        rx = link_rx.Receiver(limit, 0, lambda a, b: a - b)
        since_first = []                      # the link's answers since the last FIRST
        for f in frags + [bytearray(x) for x in fragment.split(b"tail" + msg[:50], 20)]:
            fed += 1
            # the link (core/link.py): one request answered and one error at most between
            # two FIRST fragments, nothing answered after an error until a FIRST
            if f and f[0] & fragment.FIRST:
                since_first = []
            todo = rx.feed(bytes(f), 0)
            if todo in (link_rx.MESSAGE, link_rx.ERROR):
                if link_rx.ERROR in since_first or todo in since_first:
                    figs.add("link: extra answers")
                    figs.note("link: answer %d after %r for %s" % (todo, since_first,
                                                                    bytes(f).hex()))
                since_first.append(todo)
            try:
                got = real.feed(bytes(f))
            except fragment.FragmentError:
                got = "error"
            except Exception as e:
                got = "crash %r" % e
            want = model.feed(bytes(f))
            if got != want:
                mism += 1
                figs.note("reassembler: fragment %s gave %r, model %r" % (bytes(f).hex(),
                                                                          got, want))
            if isinstance(got, bytes):
                if len(got) > limit:
                    mism += 1
                outs.append(got)
        if not outs or outs[-1] != b"tail" + msg[:50]:          # always recovers
            mism += 1
        whole += 1
    figs.add("fragment streams", whole)
    figs.add("fragments fed", fed)
    figs.add("reassembler mismatches", mism)
    figs.add("link: extra answers", 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000000)
    ap.add_argument("--hypothesis", type=int, default=20000)
    ap.add_argument("--fragments", type=int, default=200000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    figs = Figures("fuzz", MUST_BE_ZERO)
    started = time.time()
    run_frames(args.frames, args.jobs, args.seconds, figs, args.seed)
    if args.hypothesis:
        run_hypothesis(args.hypothesis, figs, args.seed + 2)
    run_fragments(args.fragments, figs, args.seed + 4)
    total = sum(v for k, v in figs.values.items() if k.startswith("frames: "))
    figs.set("frames into Locker.handle (total)", total)
    figs.set("seconds", round(time.time() - started, 1))
    return figs.report()


if __name__ == "__main__":
    sys.exit(main())
