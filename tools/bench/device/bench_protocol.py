# Section 6: the real request/answer sizes of each flow, from a run through Locker.handle;
# the host turns them into fragments and bytes per link payload size.
from bench_util import LOCKER_ID, Rig, emit, req_id, wrong_code
from core import fragment, phone, recipient
from core import protocol as P


def main(folder, payloads):
    rig = Rig(folder)
    sizes = {}

    def record(name, frame):
        resp = rig.handle(frame)
        sizes[name] = [len(frame), len(resp)]
        return resp

    cred, key = rig.courier(1)
    resp = record("hello", P.request(P.HELLO))
    ch = resp[3:19]
    resp = record("deposit", rig.deposit_frame(cred, key, ch, req_id(7), 2))
    assert resp[2] == P.OK
    sid = int.from_bytes(resp[19:21], "big")
    _, code = rig.deposit(cred, key, req_id(7), 2)      # the retry gives the same code
    rig.settle(sid)
    import os
    for name, typed in (("pickup_wrong", wrong_code(code)), ("pickup", code)):
        sid, form, material = phone.parse(typed)
        pake = recipient.RecipientPake(sid, form, material, LOCKER_ID, os.urandom)
        resp = record(name + "_start", recipient.start_frame(pake))
        assert resp[2] == P.OK
        try:
            confirm = pake.finish(resp[19:84], resp[84:116])
        except recipient.CodeMismatch:
            continue                   # the phone stops: nothing more is sent
        resp = record(name + "_finish", P.request(P.PICKUP_FINISH, confirm))
        assert resp[2] == P.OK
    # The firmware's own fragmenter and reassembler, at each payload size.
    frags = {}
    for p in payloads:
        per = {}
        for name, (req, ans) in sizes.items():
            counts = []
            for n in (req, ans):
                pieces = list(fragment.split(bytes(n), p))
                r = fragment.Reassembler(P.MAX_RESPONSE)
                out = None
                for piece in pieces:
                    assert len(piece) <= p
                    out = r.feed(piece)
                assert out is not None and len(out) == n
                counts.append([len(pieces), sum(len(x) for x in pieces)])
            per[name] = counts
        frags[str(p)] = per
    emit({"sizes": sizes, "fragments": frags})
