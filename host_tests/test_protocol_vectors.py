"""docs/protocol_vectors.json, checked three ways:
1. an independent implementation of docs/protocol.md written here (CPython hmac, hashlib,
   struct; the `ecdsa` package for P-256 and `cryptography`'s HKDF for the pickup SPAKE2;
   no firmware import) recomputes every vector: the spec and the vectors agree;
2. the firmware modules produce the same bytes, and a Locker replays the transcript
   byte for byte: the firmware and the vectors agree;
3. the firmware compiled to .mpy on the real MicroPython unix port does the same.
If a deliberate protocol change breaks these, regenerate: `python -m lockerctl.vectors`."""
import hashlib
import hmac
import json
import os
import struct

import mp_runner
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from ecdsa import NIST256p
from ecdsa.ellipticcurve import PointJacobi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS_PATH = os.path.join(ROOT, "docs", "protocol_vectors.json")
with open(VECTORS_PATH) as _f:
    V = json.load(_f)


def u(text):
    return bytes.fromhex(text)


# ---- the spec, implemented from docs/protocol.md only --------------------------------------

class Spec:
    VERSION = 1
    HELLO, DEPOSIT, CANCEL, RECLAIM = 0x01, 0x10, 0x11, 0x12
    PICKUP_START, PICKUP_FINISH = 0x21, 0x22
    TECH_OPEN, AUDIT_READ, STATUS, ADMIN = 0x30, 0x31, 0x32, 0x40
    SIGNED = (DEPOSIT, CANCEL, RECLAIM, TECH_OPEN, AUDIT_READ, STATUS)
    OK = 0

    @staticmethod
    def mac(key, msg):
        return hmac.new(key, msg, hashlib.sha256).digest()

    @classmethod
    def derive(cls, master, label, context=b""):
        return cls.mac(master, label + b"\x00" + context)

    @staticmethod
    def credential_block(kind, flags, serial, issued_at, not_after, holder):
        return struct.pack(">BBIIIB", kind, flags, serial, issued_at, not_after,
                           len(holder)) + holder

    @staticmethod
    def block_length(frame, offset=2):
        return 15 + frame[offset + 14]

    @classmethod
    def credential_key(cls, master, locker_id, block):
        return cls.derive(master, b"LKR1/credential", locker_id + block)

    @classmethod
    def code_mac(cls, key, form, locker_id, slot, gen, bucket):
        return cls.mac(key, b"LKR1/pickup" + bytes([form]) + locker_id
                       + struct.pack(">HII", slot, gen, bucket))

    @classmethod
    def material(cls, key, form, locker_id, slot, gen, bucket):
        digest = cls.code_mac(key, form, locker_id, slot, gen, bucket)
        if form == 1:
            return digest[:16]
        return b"%010d" % (int.from_bytes(digest[:8], "big") % 10 ** 10)

    @classmethod
    def human_code(cls, key, locker_id, slot, gen, deposit_ts, bucket_s=300):
        d = cls.material(key, 0, locker_id, slot, gen, deposit_ts // bucket_s).decode()
        return "%03d-%s-%s" % (slot, d[:5], d[5:])

    @classmethod
    def machine_code(cls, key, locker_id, slot, gen, deposit_ts, bucket_s=300):
        return "%03d.%s" % (slot, cls.material(key, 1, locker_id, slot, gen,
                                               deposit_ts // bucket_s).hex())

    @staticmethod
    def parse_code(text):
        """(slot, form, material) from '017-48219-93015' or '017.<32 hex>'."""
        if "." in text:
            slot, token = text.split(".")
            return int(slot), 1, bytes.fromhex(token)
        digits = text.replace("-", "").replace(" ", "")
        return int(digits[:3]), 0, digits[3:].encode()

    # ---- the pickup PAKE: SPAKE2 of RFC 9382, P-256, SHA-256, HKDF, HMAC (section 8)
    ORDER = NIST256p.order
    M = PointJacobi.from_bytes(NIST256p.curve, bytes.fromhex(
        "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f"))
    N = PointJacobi.from_bytes(NIST256p.curve, bytes.fromhex(
        "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49"))

    @classmethod
    def password_scalar(cls, form, slot, material):
        pw = bytes([form]) + struct.pack(">H", slot) + material
        wide = (hashlib.sha256(b"LKR1/pickup-pw\x01" + pw).digest()
                + hashlib.sha256(b"LKR1/pickup-pw\x02" + pw).digest())
        return int.from_bytes(wide, "big") % cls.ORDER

    @staticmethod
    def point(data):
        return PointJacobi.from_bytes(NIST256p.curve, data)

    @staticmethod
    def enc(pt):
        return pt.to_bytes("uncompressed")

    @classmethod
    def share_a(cls, w, x):
        return cls.enc(x * NIST256p.generator + w * cls.M)

    @classmethod
    def share_b(cls, w, y):
        return cls.enc(y * NIST256p.generator + w * cls.N)

    @classmethod
    def pake_keys(cls, w, x, pa, pb, locker_id, slot, form):
        """Party A's view: (K, TT, Ke, KcA, KcB, cA, cB)."""
        k = cls.enc(x * (cls.point(pb) + (-w % cls.ORDER) * cls.N))
        tt = b""
        for part in (b"LKR1/recipient", locker_id, pa, pb, k, w.to_bytes(32, "big")):
            tt += struct.pack("<Q", len(part)) + part
        digest = hashlib.sha256(tt).digest()
        ke, ka = digest[:16], digest[16:]
        aad = b"LKR1/pickup" + struct.pack(">HB", slot, form)
        kc = HKDF(hashes.SHA256(), 32, None, b"ConfirmationKeys" + aad).derive(ka)
        return (k, tt, ke, kc[:16], kc[16:], cls.mac(kc[:16], tt), cls.mac(kc[16:], tt))

    @classmethod
    def answer_mac(cls, ke, header, body):
        return cls.mac(ke, b"LKR1/pickup-answer" + header + body)[:16]

    @staticmethod
    def phone_random(n, k=40):
        """Draw n of the transcript's phone: SHA-256(label | u32 n) | SHA-256(.. | 1) ..."""
        head = b"LKR1/vector-phone" + struct.pack(">I", n)
        out = hashlib.sha256(head).digest() + hashlib.sha256(head + b"\x01").digest()
        return out[:k]

    @classmethod
    def signed(cls, req_type, block, fields, key, challenge):
        unsigned = bytes([cls.VERSION, req_type]) + block + fields
        return unsigned + cls.mac(key, challenge + unsigned)[:16]

    @classmethod
    def admin(cls, admin_key, op, seq, payload):
        unsigned = bytes([cls.VERSION, cls.ADMIN]) + struct.pack(">BIB", op, seq,
                                                                 len(payload)) + payload
        return unsigned + cls.mac(admin_key, unsigned)[:16]

    @staticmethod
    def error_body(message, retry_after):
        m = message.encode()
        return struct.pack(">IB", retry_after, len(m)) + m

    @staticmethod
    def split(message, link_payload):
        step = link_payload - 1
        chunks = [message[i:i + step] for i in range(0, len(message), step)] or [b""]
        out = []
        for i, chunk in enumerate(chunks):
            head = i % 64
            if i == 0:
                head |= 0x80
            if i == len(chunks) - 1:
                head |= 0x40
            out.append(bytes([head]) + chunk)
        return out

    @classmethod
    def answer_tag(cls, key, pre, answer, post):
        return cls.mac(key, pre + answer + post)[:16]

    @staticmethod
    def parse_response(frame):
        assert len(frame) >= 19 and frame[0] == 1, frame.hex()
        return frame[1], frame[2], frame[3:19], frame[19:]


S = Spec
MASTER = u(V["keys"]["master_secret"])
LOCKER_ID = u(V["keys"]["locker_id"])


# ---- 1. the spec reproduces every vector ------------------------------------------------

def test_hmac_cases_match_the_spec():
    for c in V["hmac_sha256"]:
        assert S.mac(u(c["key"]), u(c["msg"])).hex() == c["mac"], c["name"]
    assert len(V["hmac_sha256"]) >= 6


def test_key_derivation_matches_the_spec():
    k = V["keys"]
    assert S.derive(MASTER, b"LKR1/audit-chain").hex() == k["audit_key"]["key"]
    assert S.derive(MASTER, b"LKR1/admin", LOCKER_ID).hex() == k["admin_key"]["key"]
    assert S.mac(MASTER, u(k["admin_key"]["input"])).hex() == k["admin_key"]["key"]


def test_credentials_match_the_spec():
    for c in V["credentials"]:
        block = S.credential_block(c["kind"], c["flags"], c["serial"], c["issued_at"],
                                   c["not_after"], c["holder"].encode())
        assert block.hex() == c["block"], c["name"]
        assert (b"LKR1/credential\x00" + LOCKER_ID + block).hex() == c["kdf_input"]
        assert S.credential_key(MASTER, LOCKER_ID, block).hex() == c["key"], c["name"]


@pytest.mark.parametrize("c", V["pickup_codes"], ids=lambda c: "slot%d" % c["slot"])
def test_pickup_codes_match_the_spec(c):
    key, slot = u(c["credential_key"]), c["slot"]
    assert c["bucket"] == c["deposit_ts"] // c["bucket_s"]
    for form, name in ((0, "human"), (1, "machine")):
        want = c[name]
        digest = S.code_mac(key, form, LOCKER_ID, slot, c["generation"], c["bucket"])
        assert digest.hex() == want["mac"]
        material = S.material(key, form, LOCKER_ID, slot, c["generation"], c["bucket"])
        assert material.hex() == want["material"]
        make = S.human_code if form == 0 else S.machine_code
        assert make(key, LOCKER_ID, slot, c["generation"], c["deposit_ts"],
                    c["bucket_s"]) == want["code"]
        assert S.parse_code(want["code"]) == (slot, form, material)
        assert want["pw"] == (bytes([form]) + struct.pack(">H", slot) + material).hex()
        assert "%064x" % S.password_scalar(form, slot, material) == want["w"]
    assert len(c["human"]["code"]) == 15 and len(c["machine"]["code"]) == 36


@pytest.mark.parametrize("v", V["pickup_pake"], ids=lambda v: "form%d" % v["form"])
def test_pickup_pake_matches_the_spec(v):
    slot, form, material = S.parse_code(v["code"])
    assert (slot, form, material.hex()) == (v["slot"], v["form"], v["material"])
    w, x, y = S.password_scalar(form, slot, material), int(v["x"], 16), int(v["y"], 16)
    assert "%064x" % w == v["w"]
    assert (S.enc(S.M).hex(), S.enc(S.N).hex()) == (v["M"], v["N"])
    pa, pb = S.share_a(w, x), S.share_b(w, y)
    assert (pa.hex(), pb.hex()) == (v["pA"], v["pB"])
    k, tt, ke, kca, kcb, ca, cb = S.pake_keys(w, x, pa, pb, LOCKER_ID, slot, form)
    # party B's K = y*(pA - w*M) is the same element
    assert S.enc(y * (S.point(pa) + (-w % S.ORDER) * S.M)) == k
    assert [k.hex(), tt.hex(), ke.hex(), kca.hex(), kcb.hex(), ca.hex(), cb.hex()] == [
        v["K"], v["TT"], v["Ke"], v["KcA"], v["KcB"], v["cA"], v["cB"]]
    assert v["start_frame"] == (bytes([1, S.PICKUP_START]) + struct.pack(">HB", slot, form)
                                + pa).hex()
    assert v["start_answer_body"] == (pb + cb).hex()
    assert v["finish_frame"] == (bytes([1, S.PICKUP_FINISH]) + ca).hex()
    header = bytes([1, S.PICKUP_FINISH | 0x80, S.OK])
    assert S.answer_mac(ke, header, u(v["finish_answer_body"])).hex() == v["answer_mac"]


def _cred_key_for(block):
    return S.credential_key(MASTER, LOCKER_ID, block)


@pytest.mark.parametrize("r", V["requests"], ids=lambda r: r["name"])
def test_request_frames_match_the_spec(r):
    if r["type"] in S.SIGNED:
        block, fields, ch = u(r["credential_block"]), u(r["fields"]), u(r["challenge"])
        assert _cred_key_for(block).hex() == r["credential_key"]
        frame = S.signed(r["type"], block, fields, _cred_key_for(block), ch)
        assert frame.hex() == r["frame"]
        assert frame[:-16].hex() == r["unsigned"] and frame[-16:].hex() == r["tag"]
        assert (ch + frame[:-16]).hex() == r["mac_input"]
    elif r["type"] == S.PICKUP_START:
        slot, form, material = S.parse_code(r["code"])
        frame = bytes([1, S.PICKUP_START]) + struct.pack(">HB", slot, form) + S.share_a(
            S.password_scalar(form, slot, material), int(r["x"], 16))
        assert frame.hex() == r["frame"] and len(frame) == 70
    elif r["type"] == S.PICKUP_FINISH:
        assert len(u(r["frame"])) == 34 and r["frame"][:4] == "0122"
    else:
        assert r["frame"] == "0101"
    assert {r["type"] for r in V["requests"]} == {
        S.HELLO, S.DEPOSIT, S.CANCEL, S.RECLAIM, S.PICKUP_START, S.PICKUP_FINISH, S.TECH_OPEN,
        S.AUDIT_READ, S.STATUS}


@pytest.mark.parametrize("a", V["admin"], ids=lambda a: a["name"])
def test_admin_messages_match_the_spec(a):
    admin_key = S.derive(MASTER, b"LKR1/admin", LOCKER_ID)
    assert admin_key.hex() == a["admin_key"]
    frame = S.admin(admin_key, a["op"], a["seq"], u(a["payload"]))
    assert frame.hex() == a["frame"]
    assert frame[-16:].hex() == a["tag"]


def test_error_bodies_match_the_spec():
    for e in V["error_bodies"]:
        assert S.error_body(e["message"], e["retry_after"]).hex() == e["body"]


@pytest.mark.parametrize("fr", V["fragments"], ids=lambda f: "%s@%d" % (f["name"],
                                                                          f["link_payload"]))
def test_fragment_splits_match_the_spec(fr):
    frags = S.split(u(fr["message"]), fr["link_payload"])
    assert [f.hex() for f in frags] == fr["fragments"]
    assert all(len(f) <= fr["link_payload"] for f in frags)
    assert b"".join(f[1:] for f in frags) == u(fr["message"])


# ---- the transcript, read with the spec only -----------------------------------------------

def _transcript_exchanges():
    return [s for s in V["transcript"]["steps"] if "request" in s]


def _pickup_step(step, req, resp, status, body, phone_draws, pake):
    """A PICKUP_START or PICKUP_FINISH of the transcript, checked with the spec's SPAKE2:
    the phone's x is its next deterministic draw, its code the step's "code"."""
    if req[1] == S.PICKUP_START:
        slot, form, material = S.parse_code(step["code"])
        x = int.from_bytes(S.phone_random(phone_draws), "big") % S.ORDER
        w = S.password_scalar(form, slot, material)
        assert req[2:5] == struct.pack(">HB", slot, form)
        assert req[5:] == S.share_a(w, x), step["note"]
        pake = None
        if status == S.OK:
            pb, cb = body[:65], body[65:]
            keys = S.pake_keys(w, x, req[5:], pb, LOCKER_ID, slot, form)
            # the phone goes on only if the locker proved the code
            assert (keys[6] == cb) == ("phone" not in step), step["note"]
            pake = (slot, keys) if keys[6] == cb else None
        return phone_draws + 1, pake
    if pake is not None:
        slot, (_, _, ke, _, _, ca, _) = pake
        assert req[2:] == ca
        assert body[-16:] == S.answer_mac(ke, resp[:3], body[:-16]), step["note"]
        if status == S.OK:
            assert struct.unpack(">HBI", body[:7])[0] == slot
    return phone_draws, None


def test_transcript_follows_the_spec():
    """Every answer is well formed and carries the challenge the next request answers;
    every signed request's tag verifies, and so does every answer tag (an OK answer to a
    signed request must have one); codes and proofs are what the spec gives, from the
    DEPOSIT answer alone (its bucket_s, not HELLO's)."""
    spec = V["transcript"]["locker"]
    challenge, codes, statuses = None, {}, []
    phone_draws, pake = 0, None
    admin_key = S.derive(MASTER, b"LKR1/admin", LOCKER_ID)
    for step in _transcript_exchanges():
        req, resp = u(step["request"]), u(step["response"])
        rtype, status, next_challenge, body = S.parse_response(resp)
        statuses.append(status)
        known = (len(req) <= 256 and req[:1] == b"\x01"
                 and req[1] in S.SIGNED + (S.HELLO, S.PICKUP_START, S.PICKUP_FINISH, S.ADMIN))
        assert rtype == ((req[1] | 0x80) if known else 0xFF), step["note"]
        tag_key = tag_pre = None
        if known and req[1] in (S.PICKUP_START, S.PICKUP_FINISH):
            phone_draws, pake = _pickup_step(step, req, resp, status, body, phone_draws, pake)
            challenge = next_challenge
            continue
        if known and req[1] in S.SIGNED and len(req) > 2 + 15 + 16:
            block = req[2:2 + S.block_length(req)]
            tag_key, tag_pre, tag_post = _cred_key_for(block), challenge, b""
        elif known and req[1] == S.ADMIN:
            tag_key, tag_pre, tag_post = admin_key, b"", req[-16:]
        tagged = False
        if status != S.OK:
            retry, n = struct.unpack(">IB", body[:5])
            assert len(body) in (5 + n, 5 + n + 16), step["note"]
            tagged = len(body) == 5 + n + 16
        elif tag_key is not None:
            tagged = True                              # an OK answer MUST be tagged
        if tagged:
            assert tag_key is not None, step["note"]
            assert resp[-16:] == S.answer_tag(tag_key, tag_pre, resp[:-16], tag_post), \
                step["note"]
            body = body[:-16]
        if status != S.OK:
            pass
        elif req[1] == S.HELLO:
            lid, now, n_slots, max_req, bucket_s, skew, ttl = struct.unpack(">8sIHHHBI", body)
            assert (lid, n_slots, max_req) == (LOCKER_ID, len(spec["sizes"]), 256)
            assert (bucket_s, skew, ttl) == (spec["bucket_s"], spec["skew_buckets"],
                                             spec["ttl_s"])
            assert now >= spec["rtc_start"]
        elif req[1] in S.SIGNED:
            key = tag_key
            assert req[-16:] == S.mac(key, challenge + req[:-16])[:16], step["note"]
            if req[1] == S.DEPOSIT:
                slot, gen, ts, size, ttl, bucket_s = struct.unpack(">HIIBIH", body)
                assert size >= req[-17] and ttl == spec["ttl_s"]
                assert bucket_s == spec["bucket_s"]
                codes[slot] = (S.human_code(key, LOCKER_ID, slot, gen, ts, bucket_s),
                               S.machine_code(key, LOCKER_ID, slot, gen, ts, bucket_s))
                if "human_code" in step:
                    assert (step["human_code"], step["machine_code"]) == codes[slot]
        elif req[1] == S.ADMIN:
            op, seq, now = struct.unpack(">BII", body)
            assert (op, seq) == (req[2], struct.unpack(">I", req[3:7])[0])
        challenge = next_challenge
    # every status an app must handle is shown at least once (E_INTERNAL needs a broken
    # store: test_store.py); so are refusals with and without an answer tag
    # (E_BUSY needs a locker whose PAKE took measurable time: test_throttle.py)
    want = set(range(0, 20)) - {15, 19}
    assert set(statuses) >= want, sorted(want - set(statuses))


def test_audit_chain_matches_the_spec():
    """protocol.md 5.7: mac = HMAC(audit_key, previous MAC as 16 raw bytes | JSON bytes)[:16];
    the first record's previous MAC is 16 zero bytes; the line is JSON TAB 32 hex digits."""
    a = V["audit_chain"]
    key = S.derive(MASTER, b"LKR1/audit-chain")
    assert key.hex() == a["audit_key"] and a["first_prev_mac"] == "00" * 16
    prev = bytes(16)
    for i, entry in enumerate(a["lines"]):
        body = entry["json"].encode()
        assert u(entry["prev_mac"]) == prev
        assert entry["mac_input"] == (prev + body).hex()
        mac = S.mac(key, prev + body)[:16]
        assert mac.hex() == entry["mac"]
        assert entry["line"] == entry["json"] + "\t" + mac.hex()
        record = json.loads(entry["json"])
        assert record["n"] == i + 1 and isinstance(record["t"], int) and record["e"]
        prev = mac
    assert len(a["lines"]) >= 5


def test_credential_handoff_matches_the_spec(tmp_path):
    """protocol.md 6.1: the JSON a phone imports (file, pasted text or QR code)."""
    c = V["credential_handoff"]
    data = json.loads(c["text"])
    assert data["format"] == "lockerctl-credential/1"
    block, key = u(data["block"]), u(data["key"])
    assert (data["locker_id"], data["block"], data["key"]) == (c["locker_id"], c["block"],
                                                              c["key"])
    assert S.credential_key(MASTER, u(data["locker_id"]), block) == key
    kind, flags, serial, issued, until, hlen = struct.unpack(">BBIIIB", block[:15])
    assert (kind, flags, serial, issued, until) == (1, data["flags"], data["serial"],
                                                    data["issued_at"], data["not_after"])
    assert block[15:15 + hlen].decode() == data["holder"] and data["kind"] == "courier"
    # lockerctl reads the same text as a credential file
    from lockerctl.cli import load_credential
    path = tmp_path / "c.cred.json"
    path.write_text(c["text"])
    cred = load_credential(str(path))
    assert (cred.locker_id.hex(), cred.block.hex(), cred.key.hex()) == (
        c["locker_id"], c["block"], c["key"])


# ---- 2. the firmware produces the same bytes ----------------------------------------------

def test_firmware_reproduces_the_codec_vectors():
    from core import credentials, fragment, kdf, phone
    from core import pickup_code as PC
    from core import protocol as P
    from core.hmac_sha256 import hmac_sha256
    for c in V["hmac_sha256"]:
        assert hmac_sha256(u(c["key"]), u(c["msg"])).hex() == c["mac"]
    assert kdf.admin_key(MASTER, LOCKER_ID).hex() == V["keys"]["admin_key"]["key"]
    assert kdf.audit_key(MASTER).hex() == V["keys"]["audit_key"]["key"]
    for c in V["credentials"]:
        cred, end = credentials.decode(u(c["block"]))
        assert end == len(c["block"]) // 2
        assert cred.encode().hex() == c["block"]
        assert cred.key(MASTER, LOCKER_ID).hex() == c["key"]
    for c in V["pickup_codes"]:
        key = u(c["credential_key"])
        args = (key, LOCKER_ID, c["slot"], c["generation"], c["deposit_ts"], c["bucket_s"])
        assert phone.human_code(*args) == c["human"]["code"]
        assert phone.machine_code(*args) == c["machine"]["code"]
        for name in ("human", "machine"):
            slot, form, material = phone.parse(c[name]["code"])
            assert "%064x" % PC.password_scalar(form, slot, material) == c[name]["w"]
    for v in V["pickup_pake"]:
        w, y = int(v["w"], 16), int(v["y"], 16)
        pb, cb, ca, ke = PC.locker_reply(w, y, v["slot"], v["form"], LOCKER_ID, u(v["pA"]))
        assert [pb.hex(), cb.hex(), ca.hex(), ke.hex()] == [v["pB"], v["cB"], v["cA"], v["Ke"]]
    for r in V["requests"]:
        if r["type"] in P.AUTHENTICATED:
            frame = phone.sign(P.request(r["type"], u(r["credential_block"]) + u(r["fields"])),
                               u(r["credential_key"]), u(r["challenge"]))
            assert frame.hex() == r["frame"], r["name"]
    for e in V["error_bodies"]:
        assert P.error_body(e["message"], e["retry_after"]).hex() == e["body"]
    for fr in V["fragments"]:
        assert [f.hex() for f in fragment.split(u(fr["message"]), fr["link_payload"])] \
            == fr["fragments"]


def test_operator_tool_signs_the_admin_vectors():
    from lockerctl import operator as op
    for a in V["admin"]:
        assert op.admin_message(MASTER, LOCKER_ID, a["op"], a["seq"],
                                u(a["payload"])).hex() == a["frame"]


def _replay_locker(folder):
    """A Locker configured as the transcript says, with its deterministic challenges."""
    from core import clock, config, locker
    from drivers import flash_fs, gpio_lock
    from targets import sim_hw
    spec = V["transcript"]["locker"]
    counter = [0]

    def random_bytes(k):
        head = b"LKR1/vector-challenge" + struct.pack(">I", counter[0])
        out = hashlib.sha256(head).digest()
        j = 1
        while len(out) < k:
            out += hashlib.sha256(head + bytes([j])).digest()
            j += 1
        counter[0] += 1
        return out[:k]
    t = sim_hw.ManualTime(spec["rtc_start"])
    cfg = config.build({"locker_id": LOCKER_ID.hex(), "layout": spec["layout"]})
    drv = sim_hw.SimLockDriver(len(cfg["sizes"]), sensors=True, ticks_ms=t.ticks_ms)
    bank = gpio_lock.LockBank(drv, cfg["pulse_ms"], cfg["rated_pulse_ms"],
                              cfg["max_concurrent"], t.ticks_ms, t.ticks_diff)
    lk = locker.Locker(cfg, MASTER, flash_fs.FolderFs(folder),
                       clock.LockerClock(t.rtc_unix, t.uptime_s), bank, t.ticks_ms,
                       t.ticks_diff, random_bytes)
    lk.boot()
    return lk, t


def test_locker_replays_the_transcript_byte_for_byte(tmp_path):
    lk, t = _replay_locker(str(tmp_path / "store"))
    session = lk.new_session()
    for step in V["transcript"]["steps"]:
        if "advance_s" in step:
            t.advance(step["advance_s"])
            continue
        assert lk.handle(session, u(step["request"])).hex() == step["response"], step["note"]


def test_vectors_file_is_what_the_generator_writes():
    from lockerctl import vectors as gen_vectors
    with open(VECTORS_PATH) as f:
        assert f.read() == gen_vectors.render(), "stale: run python -m lockerctl.vectors"


# ---- 3. MicroPython reproduces them -------------------------------------------------------

def test_micropython_reproduces_the_vectors(tmp_path):
    sections = tmp_path / "sections"
    sections.mkdir()
    for name, value in V.items():
        if name == "transcript":        # one step per line: the checker streams them
            value = dict(value, steps=len(value["steps"]))
            (sections / "transcript_steps.jsonl").write_text("".join(
                json.dumps(step) + "\n" for step in V["transcript"]["steps"]))
        (sections / (name + ".json")).write_text(json.dumps(value))
    work = tmp_path / "work"
    work.mkdir()
    heap = mp_runner.WHOLE_LOCKER_HEAP          # the PAKE's bytecode: mp_runner.py
    out = mp_runner.run_json("vectors_check.py", sections, work, "codec", heap_size=heap)
    assert out["failures"] == []
    replay = mp_runner.run_json("vectors_check.py", sections, work, "transcript",
                                heap_size=heap)
    assert replay["failures"] == []
    out["checked"] += replay["checked"]
    expected = (len(V["hmac_sha256"]) + 2 + 3 * len(V["credentials"])
                + 8 * len(V["pickup_codes"]) + 6 * len(V["pickup_pake"])
                + len(V["requests"]) + len(V["admin"])
                + 2 * len(V["error_bodies"]) + 2 * len(V["fragments"])
                + len(_transcript_exchanges()))
    assert out["checked"] == expected


# ---- the spec page itself ------------------------------------------------------------------

def test_spec_page_names_every_status_code_and_quotes_real_vectors():
    from core import protocol as P
    with open(os.path.join(ROOT, "docs", "protocol.md")) as f:
        doc = f.read()
    names = [n for n in dir(P) if n == "OK" or n.startswith("E_")]
    assert len(names) >= 18
    for name in names:
        assert "| %d | %s |" % (getattr(P, name), name) in doc, name
    first = V["pickup_codes"][0]
    assert first["human"]["code"] in doc and first["machine"]["code"] in doc
