# Section 4: boot-to-serving time and records replayed as the history grows; with the
# configured compaction and, for contrast, with compaction effectively off.
from bench_util import Rig, emit, req_id, ticks_diff, ticks_us
from core import protocol as P


def _boot(rig):
    """Build and boot a locker on the folder, answer one HELLO; count replayed records."""
    t0 = ticks_us()
    lk = rig.make()
    replayed = [0]
    real_apply = lk._apply

    def counting_apply(record):
        replayed[0] += 1
        real_apply(record)

    lk._apply = counting_apply          # what Store.recover replays through
    lk.boot()
    lk._apply = real_apply
    resp = rig.handle(P.request(P.HELLO))
    us = ticks_diff(ticks_us(), t0)
    assert resp[2] == P.OK
    return us, replayed[0]


def main(folder, points, segment_records):
    cfg = {} if segment_records is None else {"segment_records": segment_records}
    rig = Rig(folder, **cfg)
    cred, key = rig.courier(3)
    rows = []
    done = 0
    t_ops = 0
    for point in sorted(points):
        t0 = ticks_us()
        while done < point:
            sid, code = rig.deposit(cred, key, req_id(done), 1)
            rig.settle(sid)
            done += 1
            if done < point:
                rig.pickup(code)
                rig.settle(sid)
                done += 1
            else:
                rig.pickup(code)      # keep the locker empty between checkpoints
                rig.settle(sid)
                done += 1
        t_ops += ticks_diff(ticks_us(), t0)
        store = rig.locker.store
        files, on_flash = rig.fs.usage()
        seg_bytes = rig.fs.size("j.%d" % store.segment)
        snap_bytes = rig.fs.size("s.%d" % store.segment)
        us, replayed = _boot(rig)
        rows.append({"ops": done, "records": rig.locker.store.seq, "replayed": replayed,
                     "boot_us": us, "segment_bytes": seg_bytes, "snapshot_bytes": snap_bytes,
                     "files": files, "bytes_on_flash": on_flash})
    emit({"rows": rows, "segment_records": rig.cfg["segment_records"],
          "keep_segments": rig.cfg["keep_segments"], "us_per_op": t_ops // max(1, done)})
