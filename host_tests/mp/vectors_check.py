# Runs ON MicroPython (unix port, ESP32-sized heap): the firmware's own modules, compiled to
# .mpy, recompute every vector of docs/protocol_vectors.json and replay its transcript
# against a Locker. Proves the locker, not just CPython, speaks the documented bytes.
# usage: micropython -X heapsize=100k vectors_check.py <mpy dir> <sections dir> <tmp dir> [part]
# part: "codec" (primitives, frames, fragments) or "transcript" (the Locker replay); each
# runs in its own ESP32-sized heap, as the locker itself never holds the codec vectors.
# <sections dir> holds one file per top-level key of the vectors (hmac_sha256.json, keys.json..,
# written by host_tests/test_protocol_vectors.py): the whole file parsed at once would take
# half the heap. Prints one JSON line: {"checked": n, "failures": [...], "heap_total": ..}.
import gc
import json
import struct
import sys

sys.path.insert(0, sys.argv[1])
SECTIONS = sys.argv[2]
TMP = sys.argv[3]
PART = sys.argv[4] if len(sys.argv) > 4 else "all"

from core import credentials, fragment, kdf, phone, recipient
from core import pickup_code as PC
from core import protocol as P
from core.hmac_sha256 import hmac_sha256

checked = 0
failures = []


def check(name, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append("%s: got %s want %s" % (name, got, want))


def u(hexstr):
    return bytes.fromhex(hexstr)




def section(name):
    gc.collect()
    with open(SECTIONS + "/" + name + ".json") as f:
        return json.load(f)


K = section("keys")
master, lid = u(K["master_secret"]), u(K["locker_id"])


def check_codecs():
    for c in section("hmac_sha256"):
        check("hmac " + c["name"], hmac_sha256(u(c["key"]), u(c["msg"])).hex(), c["mac"])

    check("audit key", kdf.audit_key(master).hex(), K["audit_key"]["key"])
    check("admin key", kdf.admin_key(master, lid).hex(), K["admin_key"]["key"])

    for c in section("credentials"):
        cred = credentials.Credential(c["kind"], c["holder"].encode(), c["serial"],
                                      c["issued_at"],
                                      c["not_after"], c["flags"])
        check("credential block " + c["name"], cred.encode().hex(), c["block"])
        check("credential key " + c["name"], cred.key(master, lid).hex(), c["key"])
        back, end = credentials.decode(u(c["block"]))
        check("credential decode " + c["name"], (back.serial, back.holder, end),
              (c["serial"], c["holder"].encode(), len(c["block"]) // 2))

    for c in section("pickup_codes"):
        key, slot = u(c["credential_key"]), c["slot"]
        name = "code slot %d" % slot
        for form, form_name in ((PC.FORM_HUMAN, "human"), (PC.FORM_MACHINE, "machine")):
            want = c[form_name]
            material = PC.secret_material(key, form, lid, slot, c["generation"], c["bucket"])
            check(name + " material " + form_name, material.hex(), want["material"])
            make = phone.human_code if form == PC.FORM_HUMAN else phone.machine_code
            check(name + " code " + form_name,
                  make(key, lid, slot, c["generation"], c["deposit_ts"], c["bucket_s"]),
                  want["code"])
            check(name + " parse " + form_name, phone.parse(want["code"]), (slot, form, material))
            check(name + " w " + form_name, "%064x" % PC.password_scalar(form, slot, material),
                  want["w"])
    gc.collect()

    for v in section("pickup_pake"):
        name = "pake " + v["code"][:5]
        w, x, y = int(v["w"], 16), int(v["x"], 16), int(v["y"], 16)
        slot, form = v["slot"], v["form"]
        pake = recipient.RecipientPake(slot, form, u(v["material"]), lid,
                                       lambda n: x.to_bytes(n, "big"))
        check(name + " pA", pake.share.hex(), v["pA"])
        check(name + " start frame", recipient.start_frame(pake).hex(), v["start_frame"])
        pb, cb, ca, ke = PC.locker_reply(w, y, slot, form, lid, pake.share)
        check(name + " locker answer", (pb + cb).hex(), v["start_answer_body"])
        check(name + " cA", pake.finish(pb, cb).hex(), v["cA"])
        check(name + " Ke", (pake.key.hex(), ke.hex()), (v["Ke"], v["Ke"]))
        header = bytes((P.VERSION, P.PICKUP_FINISH | P.RESPONSE_BIT, P.OK))
        check(name + " answer MAC", PC.answer_mac(ke, header, u(v["finish_answer_body"])).hex(),
              v["answer_mac"])
        gc.collect()

    for r in section("requests"):
        if "credential_key" in r:
            frame = phone.sign(P.request(r["type"], u(r["credential_block"]) + u(r["fields"])),
                               u(r["credential_key"]), u(r["challenge"]))
            check("request " + r["name"], frame.hex(), r["frame"])
        elif r["type"] == P.PICKUP_START:
            slot, form, material = phone.parse(r["code"])
            x = int(r["x"], 16)
            pake = recipient.RecipientPake(slot, form, material, lid,
                                           lambda n: x.to_bytes(n, "big"))
            check("request " + r["name"], recipient.start_frame(pake).hex(), r["frame"])
        elif r["type"] == P.PICKUP_FINISH:
            check("request " + r["name"], r["frame"][:4], "0122")
        else:
            check("request " + r["name"], P.request(r["type"]).hex(), r["frame"])

    for a in section("admin"):
        body = P.request(P.ADMIN, struct.pack(">BIB", a["op"], a["seq"], len(a["payload"]) // 2)
                         + u(a["payload"]))
        frame = body + hmac_sha256(kdf.admin_key(master, lid), body)[:P.TAG_LEN]
        check("admin " + a["name"], frame.hex(), a["frame"])

    for e in section("error_bodies"):
        check("error body", P.error_body(e["message"], e["retry_after"]).hex(), e["body"])
        check("parse error", phone.parse_error(u(e["body"])), (e["retry_after"], e["message"]))

    for fr in section("fragments"):
        msg = u(fr["message"])
        pieces = list(fragment.split(msg, fr["link_payload"]))
        check("split %s @%d" % (fr["name"], fr["link_payload"]), [p.hex() for p in pieces],
              fr["fragments"])
        ra = fragment.Reassembler(len(msg) + 1)
        out = None
        for p in pieces:
            out = ra.feed(p)
        check("reassemble %s @%d" % (fr["name"], fr["link_payload"]), out, msg)
    gc.collect()


if PART in ("codec", "all"):
    check_codecs()
gc.collect()

# ---- the transcript, replayed against a Locker running here --------------------------

def check_transcript():
    import hashlib

    from core import clock as C
    from core import config
    from core import locker as L
    from drivers import flash_fs, gpio_lock
    from targets import sim_hw

    T = section("transcript")
    spec = T["locker"]
    n_challenge = [0]

    def random_bytes(k):
        head = b"LKR1/vector-challenge" + struct.pack(">I", n_challenge[0])
        out = hashlib.sha256(head).digest()
        j = 1
        while len(out) < k:
            out += hashlib.sha256(head + bytes((j,))).digest()
            j += 1
        n_challenge[0] += 1
        return out[:k]

    t = sim_hw.ManualTime(spec["rtc_start"])
    cfg = config.build({"locker_id": K["locker_id"], "layout": spec["layout"]})
    drv = sim_hw.SimLockDriver(len(cfg["sizes"]), True, t.ticks_ms)
    bank = gpio_lock.LockBank(drv, cfg["pulse_ms"], cfg["rated_pulse_ms"], cfg["max_concurrent"],
                              t.ticks_ms, t.ticks_diff)
    lk = L.Locker(cfg, master, flash_fs.FolderFs(TMP + "/store"),
                  C.LockerClock(t.rtc_unix, t.uptime_s), bank, t.ticks_ms, t.ticks_diff,
                  random_bytes)
    lk.boot()
    session = lk.new_session()
    T = None
    gc.collect()
    with open(SECTIONS + "/transcript_steps.jsonl") as f:    # streamed: a step at a time
        for i, text in enumerate(f):
            step = json.loads(text)
            if "advance_s" in step:
                t.advance(step["advance_s"])
                continue
            check("transcript %d %s" % (i, step["note"]),
                  lk.handle(session, u(step["request"])).hex(), step["response"])
            step = None
            gc.collect()


if PART in ("transcript", "all"):
    check_transcript()
gc.collect()
print(json.dumps({"checked": checked, "failures": failures, "heap_used": gc.mem_alloc(),
                  "heap_total": gc.mem_alloc() + gc.mem_free()}))
