# Section 3: heap taken by the firmware's code, retained by a booted 100-slot locker (empty
# and full), and allocated by one request. Import this module first: it measures imports.
import gc

FIRMWARE_ORDER = ("core", "core.hmac_sha256", "core.kdf", "core.credentials", "core.pickup_code",
                  "core.slot_manager", "core.code_verifier", "core.protocol", "core.fragment",
                  "core.throttle", "core.clock", "core.store", "drivers", "drivers.flash_fs",
                  "core.door_monitor", "drivers.gpio_lock", "core.locker", "core.config",
                  "targets", "targets.sim_hw")


def _alloc():
    gc.collect()
    return gc.mem_alloc()


def _transient(fn):
    """Heap allocated while fn runs, with the collector off (an upper bound on its peak)."""
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    try:
        out = fn()
        used = gc.mem_alloc() - before
    except MemoryError:
        out, used = None, -1
    gc.enable()
    gc.collect()
    return out, used


def main(folder, fill):
    imports = []
    for name in FIRMWARE_ORDER:
        a = _alloc()
        __import__(name)
        imports.append([name, _alloc() - a])
    a = _alloc()
    import bench_util as U
    from core import protocol as P
    harness = _alloc() - a
    res = {"imports": imports, "harness": harness, "heap_total": gc.mem_alloc() + gc.mem_free()}
    base = _alloc()
    rig = U.Rig(folder)
    res["retained_empty"] = _alloc() - base
    lk = rig.locker
    cred, key = rig.courier(1)
    trans = []

    def request(name, frame):
        resp, used = _transient(lambda: lk.handle(rig.session, frame))
        trans.append([name, used, resp[2] if resp else None])
        gc.collect()
        return resp

    request("HELLO", P.request(P.HELLO))
    ch = rig.hello()[1]
    request("deposit", rig.deposit_frame(cred, key, ch, U.req_id(1), 1))
    sid, code = rig.deposit(cred, key, U.req_id(1), 1)       # same request id: same slot
    rig.settle(sid)
    request("failed pickup", rig.pickup_frame(U.wrong_code(code), rig.hello()[1]))
    request("pickup", rig.pickup_frame(code, rig.hello()[1]))     # its PICKUP_START
    rig.pickup(code)                                              # the whole pickup
    rig.settle(sid)
    from core.hmac_sha256 import hmac_sha256
    _, used = _transient(lambda: hmac_sha256(b"k" * 32, b"m" * 40))
    trans.append(["one HMAC-SHA256 call (inside every request)", used, None])
    res["transient_empty"] = trans
    # Fill every slot, then what a full locker keeps and what its compaction and boot take.
    filled = 0
    try:
        n = len(lk.slots)
        for i in range(n):
            sid, code = rig.deposit(cred, key, U.req_id(100 + i), 1)
            rig.settle(sid)
            filled += 1
    except (MemoryError, RuntimeError) as e:
        res["fill_error"] = repr(e)
    res["filled"] = filled
    res["retained_full"] = _alloc() - base
    trans = []
    request("failed pickup, full locker", rig.pickup_frame(U.wrong_code(code), rig.hello()[1]))
    _, used = _transient(lambda: lk.store.snapshot(lk._state()))
    trans.append(["compaction (snapshot), full locker", used, None])
    rig.locker = lk = None
    gc.collect()
    rig.make()
    _, used = _transient(rig.locker.boot)
    trans.append(["boot from the full locker's snapshot", used, None])
    res["transient_full"] = trans
    res["retained_full_after_reboot"] = _alloc() - base
    rig = None                       # room for the report itself on a capped heap
    gc.collect()
    U.emit(res)
