"""Resource-exhaustion campaign against the simulator (real MicroPython, -X heapsize=100k):
connection floods, half-sent fragmented messages left hanging, a journal of thousands of
records (compaction must keep the flash bounded), and a full store (writes fail with ENOSPC).
After each phase the locker must still serve a normal deposit and pickup, and its heap
(the control port's heap_peak / heap_total) must stay within the cap.

    .venv/bin/python tools/campaigns/resources.py [--concurrent 32] [--sequential 300]
        [--hanging 16] [--records 3000] [--fullstore-rounds 60] [--idle-wait]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

from core import phone
from core import fragment, link  # (firmware)
from lockerctl import firmware
from lockerctl import operator as op
from lockerctl.transport import TransportError

from campaigns.common import (
    LOCKER_ID,
    MASTER,
    Figures,
    LockerRefused,
    P,
    Sim,
    courier,
    heap_arg,
    scratch_dir,
    technician,
    wipe,
)

HERE = os.path.dirname(os.path.abspath(__file__))
MUST_BE_ZERO = ("served flows failed", "locker down", "heap over the cap",
                "store unbounded", "full store: changed on internal error",
                "full store: reads refused", "full store: boot failures",
                "full store: recovery failures", "full store: out of memory")
IDLE_S = link.IDLE_MS // 1000    # a connection with no complete request is dropped after this
MAX_LINKS = 2          # firmware/targets/sim_board.py MAX_LINKS


def raw_connect(sim, link=20):
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=3)
    s.sendall(bytes((link,)))
    if not s.recv(1):                        # closed at once: the locker's links are taken
        s.close()
        raise ConnectionRefusedError("locker closed the link (all links in use)")
    return s


def serve_check(sim, figs, phase):
    """A normal deposit and pickup must work; the process must be up and within its heap."""
    try:
        st = sim.control({"cmd": "status"})
        c = courier(st["time"] - 60, "res-courier", 31)
        client = sim.client()
        try:
            dep = client.deposit(c, size=1)
            wait_pulse(sim)
            sim.close_doors()
            got = client.pickup(dep.code)
            wait_pulse(sim)
            st = sim.close_doors()
        finally:
            client.transport.close()
        if got["slot"] != dep.slot:
            raise ValueError("pickup opened %d, deposit was %d" % (got["slot"], dep.slot))
        figs.set("heap peak / total after %s" % phase, "%d / %d" % (st["heap_peak"],
                                                                     st["heap_total"]))
        if st["heap_peak"] > st["heap_total"]:
            figs.add("heap over the cap")
        return st
    except (OSError, TransportError, LockerRefused, ValueError) as e:
        figs.add("served flows failed" if sim.alive() else "locker down")
        figs.note("after %s: %r; log: %s" % (phase, e, sim.tail(400)))
        if not sim.alive():
            sim.start()
        return None


def wait_pulse(sim, timeout=2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = sim.control({"cmd": "status"})
        if not any(row[7] for row in st["slots"]):
            return st
        time.sleep(0.02)
    return st


def flood(sim, figs, concurrent, sequential, idle_wait):
    """Like BLE (one phone at a time), the simulator serves at most MAX_LINKS connections and
    closes the rest at once: a flood costs no heap. Whoever holds a link blocks others until
    they leave or the 30 s idle timeout drops them (docs/security.md: BLE denial of service)."""
    socks = []
    for _ in range(concurrent):
        try:
            s = raw_connect(sim)
            s.settimeout(2)
            socks.append(s)
        except OSError:
            pass                                 # closed by the locker: refused
    answered = 0
    for s in socks:                              # each asks HELLO while all are open
        try:
            for piece in fragment.split(P.request(P.HELLO), 20):
                s.sendall(bytes((len(piece),)) + piece)
            if s.recv(1):
                answered += 1
        except OSError:
            pass
    figs.set("flood: concurrent connections tried / served (cap %d)" % MAX_LINKS,
             "%d / %d" % (concurrent, answered))
    if answered > MAX_LINKS:
        figs.add("links served beyond the cap")
    if answered == 0:
        figs.add("served flows failed")
        figs.note("no connection of the flood was served; log: %s" % sim.tail(300))
    if idle_wait:                                # the attacker never closes: idle timeout
        time.sleep(IDLE_S + 2)
        serve_check(sim, figs, "held links dropped by the idle timeout")
    for s in socks:
        s.close()
    time.sleep(0.2)
    ok = misses = 0
    for _ in range(sequential):
        try:
            client = sim.client()
            client.hello()
            client.transport.close()
            ok += 1
            misses = 0
        except (OSError, TransportError):
            misses += 1
            if misses >= 3:                   # not answering any more: stop knocking
                figs.add("served flows failed")
                figs.note("sequential flood: locker stopped answering after %d" % ok)
                break
    figs.set("flood: sequential connections answered", "%d / %d" % (ok, sequential))
    serve_check(sim, figs, "connection flood")


def hanging(sim, figs, count, idle_wait):
    """Half-sent messages hold links (at most MAX_LINKS); the idle timeout must free them."""
    socks = []
    refused = 0
    c = courier(int(time.time()) - 60, "hang", 41)
    for i in range(count):
        try:
            s = raw_connect(sim)
        except OSError:
            refused += 1
            continue
        frame = phone.sign(P.request(P.DEPOSIT, c.block + os.urandom(8) + b"\x01"), c.key,
                           bytes(16))
        pieces = list(fragment.split(frame, 20))
        for piece in pieces[:-1]:              # everything but the LAST fragment
            s.sendall(bytes((len(piece),)) + piece)
        socks.append(s)
    figs.set("hanging: links refused while the others were held", refused)
    if len(socks) >= MAX_LINKS:                # free one link for the oversize probe
        socks.pop().close()
        time.sleep(0.2)
    # one connection tries to grow a message past the locker's limit
    s = raw_connect(sim)
    big = list(fragment.split(bytes(P.MAX_REQUEST + 100), 20))
    status = None
    try:
        for piece in big:
            s.sendall(bytes((len(piece),)) + piece)
        while True:                            # skip the locker's credits (core/link.py)
            n = s.recv(1)[0]
            first = s.recv(n)
            if not phone.is_credit(first):
                break
        status = first[3]
    except (OSError, IndexError):
        pass
    s.close()
    figs.set("hanging: half-sent messages left open", len(socks))
    figs.set("hanging: oversize message answered with status", status)
    if status != P.E_LENGTH:
        figs.add("served flows failed")
        figs.note("oversize fragmented message got status %r" % status)
    serve_check(sim, figs, "half-sent messages")
    if idle_wait:
        time.sleep(IDLE_S + 3)
        dropped = 0
        for s in socks:
            s.settimeout(2)
            try:
                if s.recv(1) == b"":
                    dropped += 1
            except OSError:
                dropped += 1
        figs.set("hanging: dropped by the locker after %d s idle" % IDLE_S,
                 "%d / %d" % (dropped, len(socks)))
        if dropped != len(socks):
            figs.add("served flows failed")
            figs.note("%d half-sent connections were not dropped" % (len(socks) - dropped))
    for s in socks:
        s.close()


def store_bytes(sim):
    folder = os.path.join(sim.state, "store")
    names = os.listdir(folder)
    return len(names), sum(os.path.getsize(os.path.join(folder, n)) for n in names)


def audit_flood(sim, figs, records, seg_records, keep):
    """Thousands of journal records (operator time messages: each is one record)."""
    client = sim.client()
    sizes = []
    written = 0
    try:
        st = sim.control({"cmd": "status"})
        seq = 1000
        for i in range(records):
            seq += 1
            client.admin(op.set_time_message(MASTER, LOCKER_ID, seq, st["time"] - 3600))
            written += 1
            if i % 250 == 0:
                sizes.append(store_bytes(sim))
    except (OSError, TransportError, LockerRefused) as e:
        figs.add("served flows failed" if sim.alive() else "locker down")
        figs.note("audit flood after %d records: %r; log %s" % (written, e, sim.tail(300)))
        if not sim.alive():
            sim.start()
    finally:
        client.transport.close()
    files, size = store_bytes(sim)
    sizes.append((files, size))
    st = sim.control({"cmd": "status"})
    figs.set("audit: records written", written)
    figs.set("audit: journal seq", st["journal_seq"])
    figs.set("audit: store files / bytes at the end", "%d / %d" % (files, size))
    figs.set("audit: max store files / bytes seen", "%d / %d" % (max(f for f, _ in sizes),
                                                                 max(b for _, b in sizes)))
    # bounded: at most keep segments (+ the live one) and two snapshots, whatever the count
    if max(f for f, _ in sizes) > keep + 4:
        figs.add("store unbounded")
    # the retained audit log is still readable from its oldest record
    try:
        client = sim.client(link_payload=244)
        lines = client.audit_page(technician(st["time"] - 60), 1, 10)
        client.transport.close()
        figs.set("audit: first page readable (lines)", len(lines))
    except (OSError, TransportError, LockerRefused) as e:
        figs.add("served flows failed")
        figs.note("audit read after the flood: %r" % e)
    started = time.time()
    sim.stop()
    sim.start()
    figs.set("audit: reboot after the flood (s)", round(time.time() - started, 2))
    serve_check(sim, figs, "audit flood + reboot")


def full_store(figs, rounds, fw):
    """The core on MicroPython with a flash that fills up (tools/campaigns/mp_fullstore.py)."""
    folder = scratch_dir("resources-full-")
    try:
        firmware.compile_tree(fw, "sim", extra=[(os.path.join(HERE, "mp_fullstore.py"),
                                                 "mp_fullstore.py")])
        proc = subprocess.run(
            [firmware.micropython_binary(), "-X", "heapsize=" + heap_arg(), "-c",
             "import sys; sys.argv.extend(%r); sys.path.insert(0, %r); import mp_fullstore"
             % ([fw, folder + "/store", str(rounds)], fw)],
            capture_output=True, text=True, timeout=600)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            oom = "MemoryError" in proc.stderr + proc.stdout
            figs.add("full store: out of memory" if oom else "full store: recovery failures")
            figs.note("full store script: %s" % (proc.stderr + proc.stdout)[-500:])
            return
        got = json.loads(lines[-1])
        for k in ("rounds", "requests", "writes refused (ENOSPC)", "internal errors",
                  "served after space returned", "heap peak", "heap total"):
            figs.set("full store: " + k, got.get(k))
        figs.add("full store: changed on internal error", got["changed on internal error"])
        figs.add("full store: reads refused", got["reads refused while full"])
        figs.add("full store: boot failures", got["boot failures while full"])
        figs.add("full store: recovery failures", got["recovery failures"])
        if got["served after space returned"] != got["rounds"]:
            figs.add("full store: recovery failures")
        if got["heap peak"] > got["heap total"]:
            figs.add("heap over the cap")
    finally:
        wipe(folder)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, default=32)
    ap.add_argument("--sequential", type=int, default=300)
    ap.add_argument("--hanging", type=int, default=16)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--fullstore-rounds", type=int, default=60)
    ap.add_argument("--idle-wait", action="store_true",
                    help="also wait %d s for the locker to drop the hanging connections"
                    % IDLE_S)
    args = ap.parse_args(argv)
    figs = Figures("resources", MUST_BE_ZERO)
    figs.set("heap cap (-X heapsize)", heap_arg())
    started = time.time()
    folder = scratch_dir("resources-")
    seg, keep = 50, 3
    sim = Sim(folder, layout="S*4,M*3,L*3",
              cfg={"pulse_ms": 100, "segment_records": seg, "keep_segments": keep})
    try:
        sim.start()
        serve_check(sim, figs, "boot")
        for name, phase in (
                ("connection flood", lambda: flood(sim, figs, args.concurrent,
                                                   args.sequential, args.idle_wait)),
                ("half-sent messages", lambda: hanging(sim, figs, args.hanging,
                                                       args.idle_wait)),
                ("audit flood", lambda: audit_flood(sim, figs, args.records, seg, keep))):
            try:
                phase()
            except (OSError, TransportError, ValueError) as e:
                figs.add("locker down" if not sim.alive() else "served flows failed")
                figs.note("%s: %r; log: %s" % (name, e, sim.tail(500)))
                sim.kill()
                sim.start()
        full_store(figs, args.fullstore_rounds, sim.fw)
        if not sim.alive():
            figs.add("locker down")
    finally:
        sim.stop()
        if figs.failed():
            figs.note("simulator log tail: %s" % sim.tail(600))
        wipe(folder)
    figs.set("seconds", round(time.time() - started, 1))
    return figs.report()


if __name__ == "__main__":
    sys.exit(main())
