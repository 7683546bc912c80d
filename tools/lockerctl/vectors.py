"""Writes docs/protocol_vectors.json: the protocol test vectors an app team checks against.

Everything is fixed (master secret, locker id, credentials, challenges, clock), so the output
is byte-identical on every run: `python -m lockerctl.vectors` then `git diff` shows exactly
what a protocol change changed. The vectors are produced by the firmware's own modules;
host_tests/test_protocol_vectors.py recomputes each one with an independent implementation
of docs/protocol.md and replays the transcript against a real Locker.

    python -m lockerctl.vectors [--check] [--out PATH]
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile

from core import phone
from core import (
    config,
    credentials,
    fragment,
    kdf,
    p256,
    recipient,
    spake2,
)
from core import pickup_code as PC
from core import protocol as P
from core.hmac_sha256 import hmac_sha256
from drivers import gpio_lock

from lockerctl.firmware import REPO

OUT = os.path.join(REPO, "docs", "protocol_vectors.json")

MASTER = bytes(range(32))                              # never a real locker's secret
LOCKER_ID = bytes.fromhex("4c4b520000000001")          # "LKR" 00 00 00 00 01
T0 = 1767225600                                        # 2026-01-01 00:00:00 UTC
CHALLENGE = bytes.fromhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")

COURIER = credentials.Credential(credentials.COURIER, b"courier-1", 1, T0, T0 + 7 * 86400)
DEPOT = credentials.Credential(credentials.COURIER, b"depot-7", 2, T0, T0 + 30 * 86400,
                               credentials.SCOPE_RECLAIM_ANY | credentials.SCOPE_AUDIT)
TECH = credentials.Credential(credentials.TECHNICIAN, b"tech-1", 900, T0, T0 + 30 * 86400)

TRANSCRIPT_LAYOUT = "S*2,M*2,L"
TRANSCRIPT_RTC = T0 + 3600
CHALLENGE_SOURCE = b"LKR1/vector-challenge"
PHONE_SOURCE = b"LKR1/vector-phone"
# Fixed SPAKE2 secrets of the worked pickup example (any scalar in [1, n) works)
PAKE_X = int.from_bytes(hashlib.sha256(b"LKR1/vector-x").digest(), "big") % p256.N
PAKE_Y = int.from_bytes(hashlib.sha256(b"LKR1/vector-y").digest(), "big") % p256.N



def h(b):
    return bytes(b).hex()


# ---- primitives ---------------------------------------------------------------------------

def hmac_cases():
    cases = [
        ("RFC 4231 case 1 inputs", b"\x0b" * 20, b"Hi There"),
        ("RFC 4231 case 2 inputs", b"Jefe", b"what do ya want for nothing?"),
        ("key longer than the 64-byte block: hashed first", b"\xaa" * 131,
         b"Test Using Larger Than Block-Size Key - Hash Key First"),
        ("key exactly one block", bytes(range(64)), b"LKR1"),
        ("empty key, empty message", b"", b""),
        ("32-byte key like the master secret", MASTER, b"LKR1/credential\x00"),
    ]
    return [{"name": n, "key": h(k), "msg": h(m), "mac": h(hmac_sha256(k, m))}
            for n, k, m in cases]


def key_vectors():
    return {
        "master_secret": h(MASTER),
        "locker_id": h(LOCKER_ID),
        "audit_key": {"label": "LKR1/audit-chain", "context": "",
                      "input": h(kdf.LABEL_AUDIT + b"\x00"), "key": h(kdf.audit_key(MASTER))},
        "admin_key": {"label": "LKR1/admin", "context": h(LOCKER_ID),
                      "input": h(kdf.LABEL_ADMIN + b"\x00" + LOCKER_ID),
                      "key": h(kdf.admin_key(MASTER, LOCKER_ID))},
    }


def cred_vector(name, cred):
    block = cred.encode()
    return {"name": name, "kind": cred.kind, "flags": cred.flags, "serial": cred.serial,
            "issued_at": cred.issued_at, "not_after": cred.not_after,
            "holder": cred.holder.decode(), "block": h(block),
            "kdf_input": h(kdf.LABEL_CREDENTIAL + b"\x00" + LOCKER_ID + block),
            "key": h(cred.key(MASTER, LOCKER_ID))}


def code_vector(cred, slot, gen, deposit_ts, bucket_s=PC.BUCKET_S):
    key = cred.key(MASTER, LOCKER_ID)
    bucket = deposit_ts // bucket_s
    out = {"credential_key": h(key), "locker_id": h(LOCKER_ID), "slot": slot, "generation": gen,
           "deposit_ts": deposit_ts, "bucket_s": bucket_s, "bucket": bucket}
    for form, name in ((PC.FORM_HUMAN, "human"), (PC.FORM_MACHINE, "machine")):
        mac_input = b"LKR1/pickup" + bytes((form,)) + LOCKER_ID + struct.pack(">HII", slot,
                                                                               gen, bucket)
        material = PC.secret_material(key, form, LOCKER_ID, slot, gen, bucket)
        out[name] = {
            "mac_input": h(mac_input),
            "mac": h(hmac_sha256(key, mac_input)),
            "material": h(material),
            "code": (phone.human_code if form == PC.FORM_HUMAN else phone.machine_code)(
                key, LOCKER_ID, slot, gen, deposit_ts, bucket_s),
            "pw": h(bytes((form,)) + struct.pack(">H", slot) + material),
            "w": "%064x" % PC.password_scalar(form, slot, material),
        }
    return out


def code_vectors():
    return [
        code_vector(COURIER, 3, 1, TRANSCRIPT_RTC),
        code_vector(COURIER, 17, 42, T0 + 299),            # last second of a bucket
        code_vector(DEPOT, 999, 4294967295, T0 + 300),      # bucket boundary, max
        code_vector(COURIER, 1, 7, T0 + 12345, bucket_s=3600),
    ]


def pake_vector(code):
    """Every intermediate value of one pickup PAKE (docs/protocol.md section 8)."""
    slot, form, material = phone.parse(code)
    w = PC.password_scalar(form, slot, material)
    id_a, id_b, aad = PC.ID_RECIPIENT, LOCKER_ID, PC.aad(slot, form)
    pa = spake2.share(spake2.ROLE_A, w, PAKE_X)
    pb = spake2.share(spake2.ROLE_B, w, PAKE_Y)
    k = spake2.shared_element(spake2.ROLE_A, w, PAKE_X, pb)
    tt = spake2.transcript(id_a, id_b, pa, pb, k, w)
    ke, kca, kcb = spake2.key_schedule(tt, aad)
    ca, cb = spake2.confirmation(kca, tt), spake2.confirmation(kcb, tt)
    start = P.request(P.PICKUP_START, struct.pack(">HB", slot, form) + pa)
    finish = P.request(P.PICKUP_FINISH, ca)
    answer_body = struct.pack(">HBI", slot, 2, TRANSCRIPT_RTC)
    header = bytes((P.VERSION, P.PICKUP_FINISH | P.RESPONSE_BIT, P.OK))
    mac_input = b"LKR1/pickup-answer" + header + answer_body
    return {"code": code, "slot": slot, "form": form, "material": h(material),
            "pw_hash_inputs": [h(b"LKR1/pickup-pw\x01" + bytes((form,)) + struct.pack(
                ">H", slot) + material), h(b"LKR1/pickup-pw\x02" + bytes((form,)) + struct.pack(
                    ">H", slot) + material)],
            "w": "%064x" % w, "id_a": h(id_a), "id_b": h(id_b), "aad": h(aad),
            "M": h(p256.encode(spake2.M)), "N": h(p256.encode(spake2.N)),
            "x": "%064x" % PAKE_X, "y": "%064x" % PAKE_Y,
            "pA": h(pa), "pB": h(pb), "K": h(k), "TT": h(tt), "hash_TT": h(
                hashlib.sha256(tt).digest()), "Ke": h(ke), "KcA": h(kca), "KcB": h(kcb),
            "cA": h(ca), "cB": h(cb),
            "start_frame": h(start), "start_answer_body": h(pb + cb),
            "finish_frame": h(finish),
            "finish_answer_body": h(answer_body), "answer_mac_input": h(mac_input),
            "answer_mac": h(PC.answer_mac(ke, header, answer_body))}


# ---- requests ---------------------------------------------------------------------------

def signed_vector(name, req_type, cred, fields, challenge=CHALLENGE):
    key = cred.key(MASTER, LOCKER_ID)
    unsigned = P.request(req_type, cred.encode() + fields)
    frame = phone.sign(unsigned, key, challenge)
    return {"name": name, "type": req_type, "credential_block": h(cred.encode()),
            "credential_key": h(key), "fields": h(fields), "challenge": h(challenge),
            "unsigned": h(unsigned), "mac_input": h(challenge + unsigned),
            "tag": h(frame[-P.TAG_LEN:]), "frame": h(frame)}


def request_vectors(pakes):
    return [
        {"name": "HELLO", "type": P.HELLO, "frame": h(P.request(P.HELLO))},
        signed_vector("DEPOSIT size M", P.DEPOSIT, COURIER,
                      bytes.fromhex("0102030405060708") + bytes((2,))),
        signed_vector("CANCEL", P.CANCEL, COURIER, bytes.fromhex("0102030405060708")),
        signed_vector("RECLAIM any expired", P.RECLAIM, COURIER, struct.pack(">H", 0)),
        signed_vector("RECLAIM slot 3 (depot scope)", P.RECLAIM, DEPOT, struct.pack(">H", 3)),
        {"name": "PICKUP_START human form", "type": P.PICKUP_START, "code": pakes[0]["code"],
         "x": pakes[0]["x"], "frame": pakes[0]["start_frame"]},
        {"name": "PICKUP_START machine form", "type": P.PICKUP_START,
         "code": pakes[1]["code"], "x": pakes[1]["x"], "frame": pakes[1]["start_frame"]},
        {"name": "PICKUP_FINISH human form", "type": P.PICKUP_FINISH, "code": pakes[0]["code"],
         "frame": pakes[0]["finish_frame"]},
        signed_vector("TECH_OPEN slot 5 clear", P.TECH_OPEN, TECH,
                      struct.pack(">HB", 5, P.TECH_CLEAR)),
        signed_vector("AUDIT_READ from 1, 10 lines", P.AUDIT_READ, DEPOT,
                      struct.pack(">IB", 1, 10)),
        signed_vector("STATUS", P.STATUS, TECH, b""),
    ]


def admin_frame(op, seq, payload):
    unsigned = P.request(P.ADMIN, struct.pack(">BIB", op, seq, len(payload)) + payload)
    return unsigned, unsigned + hmac_sha256(kdf.admin_key(MASTER, LOCKER_ID),
                                            unsigned)[:P.TAG_LEN]


def admin_vectors():
    out = []
    for name, op, seq, payload in (
            ("revoke serial 1 until T0+7d", P.ADMIN_REVOKE, 1,
             struct.pack(">II", 1, T0 + 7 * 86400)),
            ("set time to T0+86400", P.ADMIN_SET_TIME, 2, struct.pack(">I", T0 + 86400))):
        unsigned, frame = admin_frame(op, seq, payload)
        out.append({"name": name, "op": op, "seq": seq, "payload": h(payload),
                    "admin_key": h(kdf.admin_key(MASTER, LOCKER_ID)), "unsigned": h(unsigned),
                    "tag": h(frame[-P.TAG_LEN:]), "frame": h(frame)})
    return out


def fragment_vectors(requests):
    deposit = bytes.fromhex(requests[1]["frame"])
    long_msg = bytes(i & 0xFF for i in range(200))
    out = []
    for name, msg in (("empty message", b""), ("signed DEPOSIT frame", deposit),
                      ("200 bytes 00 01 02 ..", long_msg)):
        for link in (20, 64):
            out.append({"name": name, "link_payload": link, "message": h(msg),
                        "fragments": [h(f) for f in fragment.split(msg, link)]})
    return out


def error_body_vectors():
    return [{"retry_after": r, "message": m, "body": h(P.error_body(m, r))}
            for r, m in ((0, "request MAC does not verify"), (60, "wrong pickup code"))]


# ---- transcript: a real Locker with a deterministic clock and challenge source -----------

def transcript_challenges():
    """The deterministic stand-in for the locker's RNG used by the transcript."""
    return deterministic_source(CHALLENGE_SOURCE)


def deterministic_source(label):
    """random_bytes(k) whose draw number n gives SHA-256(label | u32be n) followed, when k
    is over 32, by SHA-256(label | u32be n | j) for j = 1, 2, ..., cut to k bytes."""
    state = {"n": 0}

    def random_bytes(k):
        head = label + struct.pack(">I", state["n"])
        out = hashlib.sha256(head).digest()
        j = 1
        while len(out) < k:
            out += hashlib.sha256(head + bytes((j,))).digest()
            j += 1
        state["n"] += 1
        return out[:k]
    return random_bytes


def transcript_locker(folder):
    """The locker the transcript runs on; the replay test builds the same one."""
    from core import clock, locker
    from drivers import flash_fs
    from targets import sim_hw
    t = sim_hw.ManualTime(TRANSCRIPT_RTC)
    cfg = config.build({"locker_id": h(LOCKER_ID), "layout": TRANSCRIPT_LAYOUT})
    driver = sim_hw.SimLockDriver(len(cfg["sizes"]), sensors=True, ticks_ms=t.ticks_ms)
    bank = gpio_lock.LockBank(driver, cfg["pulse_ms"], cfg["rated_pulse_ms"],
                              cfg["max_concurrent"], t.ticks_ms, t.ticks_diff)
    lk = locker.Locker(cfg, MASTER, flash_fs.FolderFs(folder), clock.LockerClock(
        t.rtc_unix, t.uptime_s), bank, t.ticks_ms, t.ticks_diff, transcript_challenges())
    lk.boot()
    return lk, t


def transcript():
    steps = []
    with tempfile.TemporaryDirectory() as tmp:
        lk, t = transcript_locker(os.path.join(tmp, "store"))
        session = lk.new_session()
        last = {"challenge": None}

        def send(note, frame):
            answer = lk.handle(session, frame)
            last["challenge"] = answer[3:3 + P.CHALLENGE_LEN]
            steps.append({"note": note, "request": h(frame), "response": h(answer)})
            return answer

        def signed(note, req_type, cred, fields):
            return send(note, phone.sign(P.request(req_type, cred.encode() + fields),
                                         cred.key(MASTER, LOCKER_ID), last["challenge"]))

        phone_random = deterministic_source(PHONE_SOURCE)

        def pickup(note, code, finish=True):
            sid, form, material = phone.parse(code)
            pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, phone_random)
            answer = send(note + ": PICKUP_START", recipient.start_frame(pake))
            steps[-1]["code"] = code
            if answer[2] != P.OK or not finish:
                return answer
            try:
                confirm_a = pake.finish(answer[19:84], answer[84:])
            except recipient.CodeMismatch:     # the phone stops: the locker did not prove it
                steps[-1]["phone"] = "cB does not verify: wrong code, nothing more sent"
                return answer
            return send(note + ": PICKUP_FINISH", P.request(P.PICKUP_FINISH, confirm_a))

        def advance(seconds):
            t.advance(seconds)
            steps.append({"advance_s": seconds})

        key = COURIER.key(MASTER, LOCKER_ID)

        def codes_of(step):
            """Attach the codes the phone computes from a DEPOSIT answer to its step."""
            sid, gen, ts = struct.unpack(">HII", bytes.fromhex(step["response"])[19:29])
            step["human_code"] = phone.human_code(key, LOCKER_ID, sid, gen, ts)
            step["machine_code"] = phone.machine_code(key, LOCKER_ID, sid, gen, ts)
            return step

        send("HELLO: locker id, time, slot count, limits", P.request(P.HELLO))
        req1 = bytes.fromhex("0102030405060708")
        signed("DEPOSIT size M: slot 3 opens", P.DEPOSIT, COURIER, req1 + b"\x02")
        first = codes_of(steps[-1])
        signed("DEPOSIT retried with the same request id: same slot", P.DEPOSIT, COURIER,
               req1 + b"\x02")
        wrong = first["human_code"][:-1] + "%d" % ((int(first["human_code"][-1]) + 1) % 10)
        pickup("pickup with a wrong human code (one budgeted guess)", wrong)
        pickup("pickup with the human code: slot 3 opens", first["human_code"])
        send("PICKUP_FINISH again: no pickup pending on this connection: E_STATE",
             P.request(P.PICKUP_FINISH, bytes(32)))
        advance(600)
        send("HELLO again: the last challenge is older than challenge_ttl_s",
             P.request(P.HELLO))
        pickup("pickup with the used machine code: E_DONE (collected), authenticated, no try",
               first["machine_code"])
        pickup("pickup with a wrong code: cB does not verify, one budgeted guess",
               "003-00000-00000")
        send("PICKUP_FINISH with a made-up cA all the same: E_CODE, nothing changes",
             P.request(P.PICKUP_FINISH, bytes(32)))
        signed("CANCEL of the collected deposit: E_DONE", P.CANCEL, COURIER, req1)
        signed("CANCEL of a request id never deposited: E_STATE", P.CANCEL, COURIER,
               bytes.fromhex("0909090909090909"))
        signed("DEPOSIT size S: slot 1", P.DEPOSIT, COURIER,
               bytes.fromhex("1112131415161718") + b"\x01")
        second = codes_of(steps[-1])
        signed("DEPOSIT size class 9: E_VALUE", P.DEPOSIT, COURIER,
               bytes.fromhex("1212121212121212") + b"\x09")
        signed("TECH_OPEN with a courier credential: E_SCOPE", P.TECH_OPEN, COURIER,
               struct.pack(">HB", 1, P.TECH_OPEN_ONLY))
        send("DEPOSIT with a wrong tag: E_AUTH (not tagged: nobody was authenticated)",
             P.request(P.DEPOSIT, COURIER.encode() + bytes(8) + b"\x01" + bytes(16)))
        advance(PC.TTL_S + 3600)
        signed("STATUS answering a challenge older than 120 s: E_CHALLENGE", P.STATUS, TECH,
               b"")
        pickup("pickup with the expired code of slot 1: E_EXPIRED (authenticated)",
               second["human_code"])
        signed("RECLAIM any of my expired parcels: slot 1", P.RECLAIM, COURIER,
               struct.pack(">H", 0))
        signed("STATUS (technician)", P.STATUS, TECH, b"")
        signed("TECH_OPEN slot 5 out of service", P.TECH_OPEN, TECH,
               struct.pack(">HB", 5, P.TECH_OUT_OF_SERVICE))
        signed("DEPOSIT size L (the only L slot is out of service): E_NO_SLOT", P.DEPOSIT,
               COURIER, bytes.fromhex("1313131313131313") + b"\x03")
        signed("DEPOSIT size M: slot 4", P.DEPOSIT, COURIER,
               bytes.fromhex("1414141414141414") + b"\x02")
        third = codes_of(steps[-1])
        signed("TECH_OPEN slot 4 out of service", P.TECH_OPEN, TECH,
               struct.pack(">HB", 4, P.TECH_OUT_OF_SERVICE))
        pickup("pickup with the right code of slot 4: E_OUT_OF_SERVICE, no try",
               third["machine_code"])
        for i in range(5):
            pickup("pickup with a wrong code on slot 2: try %d of its budget" % (i + 1),
                   "002-0000%d-00000" % i)
        pickup("pickup on slot 2, its budget spent: E_LOCKED_OUT (not evaluated)",
               "002-00009-00000")
        # limit 0: the lines themselves differ between VMs (JSON key order is not fixed, the
        # MAC is over the stored bytes); their format is the audit_chain section
        signed("AUDIT_READ with limit 0: count only", P.AUDIT_READ, DEPOT,
               struct.pack(">IB", 1, 0))
        now = struct.unpack(">I", send("HELLO", P.request(P.HELLO))[27:31])[0]
        _, revoke = admin_frame(P.ADMIN_REVOKE, 1, struct.pack(">II", 1, T0 + 7 * 86400))
        send("ADMIN revoke serial 1 (no challenge: operator-signed, counter 1)", revoke)
        send("the same ADMIN message again: E_REPLAY", revoke)
        send("ADMIN set time +60 s (counter 2)",
             admin_frame(P.ADMIN_SET_TIME, 2, struct.pack(">I", now + 60))[1])
        send("ADMIN set time to an earlier time (counter 3): OK, clock not moved",
             admin_frame(P.ADMIN_SET_TIME, 3, struct.pack(">I", now - 3600))[1])
        send("ADMIN set time with an 8-byte payload (counter 4): E_LENGTH",
             admin_frame(P.ADMIN_SET_TIME, 4, struct.pack(">II", now, 0))[1])
        send("ADMIN operation 9 (counter 4): E_VALUE", admin_frame(9, 4, b"")[1])
        signed("DEPOSIT with the revoked credential: E_CREDENTIAL", P.DEPOSIT, COURIER,
               bytes.fromhex("2122232425262728") + b"\x01")
        send("unknown request type 0x55: E_TYPE", bytes((P.VERSION, 0x55)))
        send("unknown protocol version 2: E_VERSION", bytes((2, P.HELLO)))
        send("DEPOSIT truncated after the credential block: E_LENGTH",
             P.request(P.DEPOSIT, COURIER.encode()))
        send("a 257-byte request: E_TOO_LARGE", P.request(P.STATUS, bytes(255)))
        chain = audit_chain(lk)
    return {
        "locker": {"layout": TRANSCRIPT_LAYOUT, "sizes": config.parse_layout(TRANSCRIPT_LAYOUT),
                   "rtc_start": TRANSCRIPT_RTC, "ttl_s": PC.TTL_S, "bucket_s": PC.BUCKET_S,
                   "skew_buckets": PC.SKEW_BUCKETS, "challenge_ttl_s":
                   config.DEFAULTS["challenge_ttl_s"]},
        "challenge_source": "the locker's random draw number n (from 0; challenges take 16 "
                            "bytes, its SPAKE2 y 40) = SHA-256('LKR1/vector-challenge' | "
                            "u32be n) | SHA-256(.. | 01) | ..., cut to length; a real locker "
                            "uses its hardware RNG",
        "phone_source": "the phone's SPAKE2 x for PICKUP_START number n (from 0) = "
                        "OS2IP(first 40 bytes of SHA-256('LKR1/vector-phone' | u32be n) | "
                        "SHA-256(.. | 01)) mod n_P256",

        "steps": steps,
    }, chain


AUDIT_CHAIN_LINES = 6


def audit_chain(lk):
    """The first journal lines of the transcript's locker, with each MAC's exact input."""
    from core.store import GENESIS, read_audit
    out = []
    prev = GENESIS
    for line in read_audit(lk.store.fs, lk.store.key, 1, True):
        body, _, mac_hex = bytes(line).rpartition(b"\t")
        out.append({"line": line.decode(), "json": body.decode(), "prev_mac": h(prev),
                    "mac_input": h(prev + body), "mac": mac_hex.decode()})
        prev = bytes.fromhex(mac_hex.decode())
        if len(out) == AUDIT_CHAIN_LINES:
            break
    return {"audit_key": h(kdf.audit_key(MASTER)), "first_prev_mac": h(GENESIS),
            "lines": out}


def credential_handoff():
    """The hand-over of a credential to a phone (protocol.md 6.1): the JSON text, compact
    (as in a QR code), and what a reader must get out of it."""
    key = COURIER.key(MASTER, LOCKER_ID)
    data = {"format": "lockerctl-credential/1", "locker_id": h(LOCKER_ID), "kind": "courier",
            "holder": COURIER.holder.decode(), "serial": COURIER.serial,
            "issued_at": COURIER.issued_at, "not_after": COURIER.not_after,
            "flags": COURIER.flags, "block": h(COURIER.encode()), "key": h(key)}
    return {"text": json.dumps(data, separators=(",", ":")), "locker_id": h(LOCKER_ID),
            "block": h(COURIER.encode()), "key": h(key)}


def build():
    codes = code_vectors()
    pakes = [pake_vector(codes[0]["human"]["code"]), pake_vector(codes[0]["machine"]["code"])]
    requests = request_vectors(pakes)
    steps, chain = transcript()
    return {
        "about": "Test vectors for docs/protocol.md (protocol version 1). Byte strings are "
                 "lowercase hex; integers are decimal. Generated by python -m lockerctl.vectors; "
                 "checked by host_tests/test_protocol_vectors.py.",
        "protocol_version": P.VERSION,
        "hmac_sha256": hmac_cases(),
        "keys": key_vectors(),
        "credentials": [cred_vector("courier", COURIER), cred_vector("depot courier", DEPOT),
                        cred_vector("technician", TECH)],
        "pickup_codes": codes,
        "pickup_pake": pakes,
        "requests": requests,
        "admin": admin_vectors(),
        "error_bodies": error_body_vectors(),
        "fragments": fragment_vectors(requests),
        "credential_handoff": credential_handoff(),
        "audit_chain": chain,
        "transcript": steps,
    }


def render():
    return json.dumps(build(), indent=1) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the file on disk differs from what would be written")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        try:
            with open(args.out) as f:
                same = f.read() == text
        except OSError:
            same = False
        print("%s is %s" % (args.out, "up to date" if same else "STALE: regenerate it"))
        return 0 if same else 1
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (args.out, len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
