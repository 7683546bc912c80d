# Section 3: heap taken by the firmware's code, retained by a booted locker (empty and full),
# allocated by one request, by compaction of a full locker and by boot from its snapshot.
# Runs unchanged on the 64-bit unix port and on the 32-bit WebAssembly port (tools/mp32).
#
# steps(folder, slot_counts) is a generator: every `yield` hands control back to the top
# level so the collector can run. The WebAssembly port collects ONLY there (it cannot scan
# its own stack: inside a call nothing is ever freed and the heap grows instead), so
# "retained" is always read at the start of a step, after that collection. Transients are
# the bytes allocated while one operation runs, minus what it leaves retained: on the
# unix port with the collector off, on the WebAssembly port as it always is inside a call.
# Requests: every kind the locker serves, once each (bench_requests.py; pake=False leaves
# out the pickups, whose SPAKE2 arithmetic allocates megabytes with the collector off).
# Import this module first: it measures imports.
import gc
import sys

FIRMWARE_ORDER = ("core", "core.hmac_sha256", "core.kdf", "core.credentials", "core.protocol",
                  "core.pickup_code", "core.slot_manager", "core.code_verifier",
                  "core.fragment", "core.throttle", "core.clock", "core.store", "core.unload",
                  "core.store_recover", "drivers",
                  "drivers.flash_fs", "core.door_monitor", "drivers.gpio_lock", "core.locker",
                  "core.config", "targets", "targets.sim_hw")

R = {}


def _alloc():
    gc.collect()          # effective on the unix port; the WebAssembly port collected already
    return gc.mem_alloc()


def _allocated(fn):
    """(result, bytes allocated while fn runs) with the collector off; -1 on MemoryError."""
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    try:
        out = fn()
        used = gc.mem_alloc() - before
    except MemoryError:
        out, used = None, -1
    gc.enable()
    return out, used


def layout(n):
    """The bench's cabinet of n slots: 40% S, 40% M, 20% L (n = 100: the shipped example)."""
    s, m = n * 2 // 5, n * 2 // 5
    return "S*%d,M*%d,L*%d" % (s, m, n - s - m)


def compacting(rig, code, cred, key):
    """(name, frame) of the requests whose commit compacts a full locker: the pickup's
    PICKUP_FINISH (its PICKUP_START is sent here, unmeasured), then a deposit into the slot
    it freed. A generator: each frame is made after the request before it was answered."""
    import bench_util as U
    from core import phone, recipient
    rig.hello()
    slot, form, material = phone.parse(code)
    pake = recipient.RecipientPake(slot, form, material, U.LOCKER_ID, U.random_bytes)
    answer = rig.handle(recipient.start_frame(pake))
    confirm = pake.finish(answer[19:84], answer[84:116])
    yield ("pickup (PICKUP_FINISH) whose record compacts the full locker",
           bytes((1, 0x22)) + confirm)
    rig.settle(slot)
    ch = rig.hello()[1]
    yield ("deposit into the last free slot whose record compacts the locker",
           rig.deposit_frame(cred, key, ch, U.req_id(98), 1))


def steps(folder, slot_counts, fill=True, pake=False):
    import os
    try:
        os.mkdir(folder)
    except OSError:
        pass
    yield
    imports = []
    for name in FIRMWARE_ORDER:
        a = gc.mem_alloc()
        __import__(name)
        yield
        imports.append([name, gc.mem_alloc() - a])
    # Boot-only code leaves after boot (main.BOOT_ONLY): its bytecode is freed, its names
    # stay interned (MicroPython never frees a qstr), so they are in the figure, as on a board.
    a = gc.mem_alloc()
    sys.modules["core.unload"].drop("core.store_recover")
    yield
    imports.append(["(dropped after boot: core.store_recover)", gc.mem_alloc() - a])
    R["imports"] = imports
    a = gc.mem_alloc()
    import bench_util as U
    import bench_requests    # harness too: imported before any baseline is taken
    yield
    R["harness"] = gc.mem_alloc() - a
    R["per_slots"] = {}
    for n in slot_counts:
        d = R["per_slots"][str(n)] = {}
        base = _alloc()
        rig = U.Rig("%s/%d" % (folder, n), layout=layout(n))
        yield
        d["retained_empty"] = gc.mem_alloc() - base
        lk = rig.locker
        cred, key = rig.courier(1)
        trans = d["transient"] = []

        def request(name, frame):
            retained = gc.mem_alloc()
            resp, used = _allocated(lambda: lk.handle(rig.session, frame))
            trans.append([name, used, resp[2] if resp else None, retained])
            return resp

        # Every request kind once (bench_requests), the PAKE's group arithmetic on rows
        # of its own, then the link layer's share of a request.
        for rows in bench_requests.requests(rig, _allocated, pake):
            trans.extend(rows)
            yield
        from core.hmac_sha256 import hmac_sha256
        k, m = b"k" * 32, b"m" * 40
        _, used = _allocated(lambda: hmac_sha256(k, m))
        trans.append(["one HMAC-SHA256 call (inside every request)", used, None, None])
        yield
        if not fill:
            rig = lk = None
            continue
        # Fill every slot but one, then the last deposit, requests on the full locker, its
        # compaction and a boot from its snapshot.
        filled = 0
        try:
            for i in range(n - 1):
                sid, code = rig.deposit(cred, key, U.req_id(100 + i), 1)
                rig.settle(sid)
                filled += 1
                if i % 10 == 9:
                    yield
            yield
            ch = rig.hello()[1]
            yield
            request("deposit into the last free slot", rig.deposit_frame(
                cred, key, ch, U.req_id(99), 1))
            yield
            sid = lk.slots.find_deposit(cred.holder, U.req_id(99))
            if sid is None:        # the request ran out of memory with the collector off
                raise RuntimeError("deposit into the last free slot failed")
            filled += 1
            rig.settle(sid)
        except (MemoryError, RuntimeError) as e:
            d["fill_error"] = repr(e)
        d["filled"] = filled
        yield
        if "fill_error" in d:      # a capped heap did not hold the full locker: report that
            rig = lk = None
            continue
        d["retained_full"] = gc.mem_alloc() - base
        for rows in bench_requests.full_locker(rig, _allocated, code, pake):
            trans.extend(rows)
            yield
        rig.settle(sid)
        yield
        # The worst moment of PRODUCT.md: a full locker compacting. Compaction runs inside
        # the commit of the request whose record fills the segment (Locker._commit), so the
        # request and the snapshot write are in the heap together: a PICKUP_FINISH (its
        # PICKUP_START's SPAKE2 garbage is gone by then), and a deposit into the slot it
        # freed, each with the segment made full just before it.
        for name, frame in compacting(rig, code, cred, key):
            lk.store.in_segment = lk.store.segment_records    # this commit compacts
            request(name, frame)
            yield
        if trans[-1][2] or trans[-2][2]:      # both must have been served (status 0)
            raise RuntimeError("a compacting request was refused: %r" % trans[-2:])
        rig.settle(sid)
        yield
        before = gc.mem_alloc()
        _, used = _allocated(lambda: lk.store.snapshot(lk._state()))
        yield
        trans.append(["compaction (snapshot), full locker", used - (gc.mem_alloc() - before),
                      None, before])
        rig.locker = lk = None
        yield
        before = gc.mem_alloc()
        rig.make()
        yield
        d["retained_table_before_boot"] = gc.mem_alloc() - base
        before = gc.mem_alloc()
        _, used = _allocated(rig.locker.boot)
        yield
        trans.append(["boot from the full locker's snapshot", used - (gc.mem_alloc() - before),
                      None, before])
        U.drop_boot_only()      # as main.Runtime.boot does: the recovery code leaves
        yield
        d["retained_full_after_reboot"] = gc.mem_alloc() - base
        rig = None
        yield
    R["heap_total"] = gc.mem_alloc() + gc.mem_free()


def main(folder, slot_counts=(100,), fill=True, pake=False):
    """The unix port's driver (the WebAssembly port's is tools/mp32/run.mjs)."""
    for _ in steps(folder, slot_counts, fill, pake):
        gc.collect()
    import bench_util as U
    U.emit(R)
