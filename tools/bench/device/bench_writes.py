# Section 2: durable writes per request (one record = one append is the design minimum),
# and what compaction (snapshot + new segment) adds when amortised over every record.
from bench_util import Rig, delta, emit, req_id, wrong_code
from core import protocol as P


def _measure(rig, fn):
    before = rig.fs.counters()
    out = fn()
    return out, delta(rig.fs.counters(), before)


def main(folder, prefill, cycles, segment_records=None):
    rig = Rig(folder)
    first_boot = rig.fs.counters()
    cfg = {} if segment_records is None else {"segment_records": segment_records}
    rows = [["first boot (empty store)", None, first_boot]]
    cred, key = rig.courier(1)
    _, d = _measure(rig, rig.hello)
    rows.append(["HELLO", 0, d])
    (sid, code), d = _measure(rig, lambda: rig.deposit(cred, key, req_id(1), 2))
    rows.append(["deposit (HELLO + DEPOSIT)", 1, d])
    rig.settle(sid)
    _, d = _measure(rig, lambda: rig.deposit(cred, key, req_id(1), 2))
    rows.append(["deposit retry, same request id", 1, d])
    rig.settle(sid)
    st, d = _measure(rig, lambda: rig.pickup(wrong_code(code)))
    assert st == P.E_CODE, st
    rows.append(["failed pickup (wrong code)", 1, d])
    st, d = _measure(rig, lambda: rig.pickup(code))
    assert st == P.OK, st
    # a human-code pickup is two state changes: the budgeted try (PICKUP_START), the pickup
    rows.append(["pickup, human code (HELLO + PICKUP_START + PICKUP_FINISH)", 2, d])
    rig.settle(sid)
    st, d = _measure(rig, lambda: rig.pickup(code))
    rows.append(["pickup again within the reopen window" if st == P.OK
                 else "pickup again (spent code)", 2 if st == P.OK else 1, d])
    sid2, code2 = rig.deposit(cred, key, req_id(2), 1)
    rig.settle(sid2)
    st = P.E_CODE
    tries = 0
    while st == P.E_CODE and tries < 50:
        st, d = _measure(rig, lambda: rig.pickup(wrong_code(code2)))
        tries += 1
    rows.append(["attempt refused while locked out (after %d failures)" % (tries - 1), 0, d])
    _, d = _measure(rig, rig.boot)
    rows.append(["reboot (recovery + boot record)", 1, d])

    # Amortised: a locker holding `prefill` parcels, then deposit/pickup cycles across
    # several segment boundaries, every byte counted (journal, snapshots, segment headers).
    rig = Rig(folder, fresh=True, **cfg)
    seg = rig.cfg["segment_records"]
    cred, key = rig.courier(2)
    for i in range(prefill):
        sid, _ = rig.deposit(cred, key, req_id(1000 + i), 1)
        rig.settle(sid)
    start = rig.fs.counters()
    seq0 = rig.locker.store.seq
    seg0 = rig.locker.store.segment
    for i in range(cycles):
        sid, code = rig.deposit(cred, key, req_id(i), 1)
        rig.settle(sid)
        rig.pickup(code)
        rig.settle(sid)
    used = delta(rig.fs.counters(), start)
    records = rig.locker.store.seq - seq0
    files, on_flash = rig.fs.usage()
    emit({"rows": rows, "amortised": {
        "prefill": prefill, "records": records, "segment_records": seg,
        "compactions": rig.locker.store.segment - seg0, "writes": used[0], "bytes": used[1],
        "renames": used[2], "replaced_bytes": used[3], "files": files,
        "bytes_on_flash": on_flash}})
