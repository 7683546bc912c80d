"""`lockerctl`: the operator's, courier's and recipient's side of the locker from a terminal.

Every command prints a human answer, or one JSON object with --json, and exits with:
  0 ok
  1 the locker refused (status name, message, retry_after when locked out), or its audit
    log failed verification
  2 usage or input error
  3 cannot reach the locker / the simulator is not running
  4 local state missing (not provisioned, no key, no credential file)"""
import argparse
import contextlib
import json
import os
import shutil
import struct
import sys
import time

from core import (
    config,  # firmware modules, on the path via .fw
    credentials,
    kdf,
    pickup_code,
    store,
    throttle,
)
from core import protocol as P
from core.slot_manager import SIZE_NAMES

from . import firmware, sim
from . import keystore as ks
from . import operator as op
from .client import CourierCredential, LockerClient, LockerRefused
from .transport import SimSocketTransport, TransportError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_MISSING = 0, 1, 2, 3, 4
AUDIT_CRED_S = 3600          # the operator's throw-away technician credential for `audit`
AUDIT_PAGE = 4              # records per AUDIT_READ: small answers fit a fragmented 100 KB heap
CRED_FORMAT = "lockerctl-credential/1"


class CliError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}


def when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def size_name(size):
    return SIZE_NAMES[size - 1] if 1 <= size <= len(SIZE_NAMES) else str(size)


def _state(args):
    return getattr(args, "state", None) or sim.default_state()


# ---- local files: key store, credentials, provisioned state ------------------------------

def _keystore():
    return ks.KeyStore()


def _locker_id_of_state(state):
    cfg = sim.read_json(os.path.join(state, "locker.json"))
    return cfg.get("locker_id") if cfg else None


def _locker_id(args, connected=None):
    """Which locker an operator command is about: --locker, the state folder, the one the
    connection reached, or the only one in the key store."""
    lid = (getattr(args, "locker", None) or getattr(args, "ble", None)
           or _locker_id_of_state(_state(args)))
    if connected is not None:
        if lid and lid != connected.hex():
            raise CliError(EXIT_USAGE, "connected to locker %s, but this is about locker %s"
                           % (connected.hex(), lid))
        return connected.hex()
    if lid:
        return lid
    known = _keystore().lockers()
    if len(known) == 1:
        return known[0]
    raise CliError(EXIT_MISSING, "which locker? no provisioned state in %s; pass --locker ID "
                   "(key store %s holds %d lockers)" % (_state(args), _keystore().home,
                                                         len(known)))


def _master(lid):
    try:
        return _keystore().master(lid)
    except ks.KeyStoreMissing as e:
        raise CliError(EXIT_MISSING, str(e))


def load_credential(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CliError(EXIT_MISSING, "no credential file %s: `lockerctl credential issue`"
                       % path)
    except (OSError, ValueError) as e:
        raise CliError(EXIT_USAGE, "cannot read credential file %s: %s" % (path, e))
    try:
        if data.get("format") != CRED_FORMAT:
            raise ValueError("not a %s file" % CRED_FORMAT)
        cred = CourierCredential(bytes.fromhex(data["locker_id"]), bytes.fromhex(data["block"]),
                                 bytes.fromhex(data["key"]))
        cred.credential            # decodes the block
    except (ValueError, KeyError, AttributeError, credentials.CredentialError) as e:
        raise CliError(EXIT_USAGE, "credential file %s is not valid: %s" % (path, e))
    return cred


def save_credential(path, cred, kind):
    c = cred.credential
    data = {"format": CRED_FORMAT, "locker_id": cred.locker_id.hex(), "kind": kind,
            "holder": c.holder.decode(), "serial": c.serial, "issued_at": c.issued_at,
            "not_after": c.not_after, "flags": c.flags, "block": cred.block.hex(),
            "key": cred.key.hex()}
    ks.write_private(path, json.dumps(data, indent=1))


# ---- reaching the locker -------------------------------------------------------------------

def _transport(args):
    if getattr(args, "ble", None):
        try:
            from . import ble
        except ImportError as e:
            if getattr(e, "name", None) == "lockerctl.ble":
                raise CliError(EXIT_USAGE, "--ble is not available in this version of "
                               "lockerctl yet; use --sim with the simulator")
            raise CliError(EXIT_USAGE, "--ble needs the BLE extras (%s): pip install -e "
                           "'.[ble]'" % e)
        return ble.BleTransport(args.ble)
    if getattr(args, "sim", None):
        host, _, port = args.sim.rpartition(":")
        try:
            port = int(port)
        except ValueError:
            raise CliError(EXIT_USAGE, "--sim wants [HOST:]PORT, got %r" % args.sim)
        return SimSocketTransport(host or "127.0.0.1", port)
    cfg = sim.sim_config(_state(args))
    if not cfg:
        raise CliError(EXIT_UNREACHABLE, "no simulator in %s: start one with `lockerctl sim "
                       "start`, or pass --sim [HOST:]PORT or --ble LOCKER-ID" % _state(args))
    return SimSocketTransport("127.0.0.1", cfg["port"])


@contextlib.contextmanager
def connected(args):
    """A LockerClient that has said HELLO (so the locker's id and time are known)."""
    transport = _transport(args)
    try:
        transport.connect()
        client = LockerClient(transport)
        client.hello()
        yield client
    except (TransportError, OSError) as e:
        raise CliError(EXIT_UNREACHABLE, "cannot reach the locker: %s" % e)
    except P.ProtocolError as e:
        raise CliError(EXIT_UNREACHABLE, "garbled answer from the locker: %s" % e.message)
    finally:
        with contextlib.suppress(Exception):
            transport.close()


def _check_same_locker(client, cred):
    if client.hello_info.locker_id != cred.locker_id:
        raise CliError(EXIT_USAGE, "the credential is for locker %s, but this is locker %s"
                       % (cred.locker_id.hex(), client.hello_info.locker_id.hex()))


def _request_id(text):
    try:
        rid = bytes.fromhex(text)
    except ValueError:
        rid = b""
    if len(rid) != P.REQ_ID_LEN:
        raise CliError(EXIT_USAGE, "request id must be %d hex digits" % (2 * P.REQ_ID_LEN))
    return rid


# ---- provisioning ------------------------------------------------------------------------

def provision_state(state, layout, ttl_s=None):
    """New locker identity: keys into the key store, config + secret into the state folder."""
    try:
        count = len(config.parse_layout(layout))
    except config.ConfigError as e:
        raise CliError(EXIT_USAGE, str(e))
    lid, master = op.new_identity()
    _keystore().create(lid, master, layout)
    os.makedirs(state, exist_ok=True)
    cfg = {"locker_id": lid.hex(), "layout": layout}
    if ttl_s:
        cfg["ttl_s"] = ttl_s
    config.build(cfg)
    with open(os.path.join(state, "locker.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    fd = os.open(os.path.join(state, "secret.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 ks.FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(master)
    return {"locker_id": lid.hex(), "layout": layout, "slots": count,
            "state": os.path.abspath(state), "keystore": _keystore().path(lid.hex())}


def provision_board(args):
    """A real board: identity into the key store, config (lock ratings from the board
    profile, so the board accepts it) + secret onto the board's flash over mpremote."""
    from targets import board_profile  # firmware module: the same validation the board runs at boot

    from . import board_io
    if not args.board:
        raise CliError(EXIT_USAGE, "provision --port needs --board PROFILE (see boards/)")
    path = os.path.join(firmware.REPO, "boards", args.board + ".json")
    try:
        profile, _warnings = board_profile.load(path)
    except board_profile.ProfileError as e:
        raise CliError(EXIT_USAGE, str(e))
    layout = args.layout or "S*%d" % profile["doors"]
    lock = profile["lock"]
    cfg = {"layout": layout, "pulse_ms": lock["pulse_ms"],
           "rated_pulse_ms": lock["rated_pulse_ms"], "max_concurrent": lock["max_concurrent"]}
    if args.ttl:
        cfg["ttl_s"] = op.parse_duration(args.ttl)
    try:
        board_profile.check_config(profile, config.build(dict(cfg, locker_id="00" * 8)))
    except (config.ConfigError, board_profile.ProfileError) as e:
        raise CliError(EXIT_USAGE, str(e))
    lid, master = op.new_identity()
    cfg["locker_id"] = lid.hex()
    board = board_io.Board(args.port, dry_run=args.dry_run)
    try:
        board_io.write_provisioning(board, cfg, master, wipe_store=args.force)
    except board_io.BoardIOError as e:
        raise CliError(EXIT_UNREACHABLE, str(e))
    finally:
        board.close()
    if not args.dry_run:
        _keystore().create(lid, master, layout)
    out = {"locker_id": lid.hex(), "layout": layout, "board": args.board, "port": args.port,
           "slots": profile["doors"], "keystore": _keystore().path(lid.hex()),
           "dry_run": args.dry_run, "commands": [" ".join(c) for c in board.commands]}
    text = ("provisioned locker %(locker_id)s on %(port)s (%(board)s, %(slots)d slots)\n"
            "  master secret kept in %(keystore)s (mode 0600) and on the board" % out)
    if args.dry_run:
        text = ("dry run for locker %(locker_id)s on %(port)s (%(board)s, %(slots)d slots): "
                "nothing was sent or kept" % out)
        text += "\n  the commands would be:\n    " + \
            "\n    ".join(out["commands"])
    return out, text


def cmd_provision(args):
    if args.port:
        return provision_board(args)
    state = _state(args)
    if sim.is_provisioned(state):
        if not args.force:
            raise CliError(EXIT_USAGE, "%s already holds locker %s: use --force to replace it "
                           "(its parcels and log are lost)" % (state, _locker_id_of_state(state)))
        if sim.running_pid(state):
            raise CliError(EXIT_USAGE, "stop the simulator first: `lockerctl sim stop`")
        shutil.rmtree(os.path.join(state, "store"), ignore_errors=True)
        for name in ("sim_rtc.json", "sim_doors.json"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(state, name))
    ttl = op.parse_duration(args.ttl) if args.ttl else None
    out = provision_state(state, args.layout or config.DEFAULTS["layout"], ttl)
    text = ("provisioned locker %(locker_id)s: %(slots)d slots (%(layout)s)\n"
            "  master secret kept in %(keystore)s (mode 0600)\n"
            "  config + secret written to %(state)s" % out)
    return out, text


# ---- credentials -------------------------------------------------------------------------

def cmd_credential_issue(args):
    kind = credentials.COURIER if args.courier else credentials.TECHNICIAN
    holder = args.courier or args.technician
    if not 1 <= len(holder.encode()) <= credentials.MAX_HOLDER:
        raise CliError(EXIT_USAGE, "holder id must be 1..%d bytes" % credentials.MAX_HOLDER)
    if args.reclaim_any and kind != credentials.COURIER:
        raise CliError(EXIT_USAGE, "--reclaim-any is a courier scope")
    flags = ((credentials.SCOPE_RECLAIM_ANY if args.reclaim_any else 0)
             | (credentials.SCOPE_AUDIT if args.audit else 0))
    valid = op.parse_duration(args.valid)
    if valid <= 0:
        raise CliError(EXIT_USAGE, "--valid must be positive")
    lid = _locker_id(args)
    master = _master(lid)
    kind_name = ks.KINDS[kind]
    cred = _keystore().record_credential(
        lid, kind, holder, valid, flags,
        lambda serial: op.issue(master, bytes.fromhex(lid), kind, holder, serial, valid,
                                flags=flags))
    c = cred.credential
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in holder)
    path = args.out or "%s-%d.cred.json" % (safe, c.serial)
    save_credential(path, cred, kind_name)
    out = {"locker_id": lid, "kind": kind_name, "holder": holder, "serial": c.serial,
           "issued_at": c.issued_at, "not_after": c.not_after, "flags": flags, "file": path}
    scopes = [n for f, n in ((credentials.SCOPE_RECLAIM_ANY, "reclaim-any"),
                             (credentials.SCOPE_AUDIT, "audit")) if flags & f]
    text = ("%s credential #%d for %s on locker %s%s\n  valid until %s\n  written to %s "
            "(mode 0600; it holds a key: give it only to %s)"
            % (kind_name, c.serial, holder, lid, (" [%s]" % ", ".join(scopes)) if scopes else "",
               when(c.not_after), path, holder))
    return out, text


def _deliver_admin(args, lid):
    """Send every pending admin message, oldest first (a newer one makes older replays)."""
    store_ = _keystore()
    sent = []
    with connected(args) as client:
        _locker_id(args, client.hello_info.locker_id)
        for blob in store_.pending_admin(lid):
            try:
                client.admin(blob)
            except LockerRefused as e:
                if e.status != P.E_REPLAY:       # replayed: a phone already delivered it
                    raise
            store_.delivered(lid, blob)
            sent.append(struct.unpack(">I", blob[3:7])[0])
    return sent


def cmd_credential_revoke(args):
    lid = _locker_id(args)
    master = _master(lid)
    info = _keystore().credential_info(lid, args.serial)
    if info is None:
        raise CliError(EXIT_USAGE, "credential #%d was not issued from this key store for "
                       "locker %s" % (args.serial, lid))
    seq, blob = _keystore().next_admin(
        lid, lambda seq: op.revoke_message(master, bytes.fromhex(lid), seq, args.serial,
                                           info["not_after"]))
    out = {"locker_id": lid, "serial": args.serial, "admin_seq": seq, "message": blob.hex(),
           "delivered": False}
    try:
        out["delivered_seqs"] = _deliver_admin(args, lid)
        out["delivered"] = seq in out["delivered_seqs"]
    except CliError as e:
        if e.code != EXIT_UNREACHABLE:
            raise
        out["not_delivered_because"] = e.message
    text = "revocation of credential #%d (%s %s): signed admin message #%d\n  %s\n" % (
        args.serial, info["kind"], info["holder"], seq, blob.hex())
    if out["delivered"]:
        text += "  delivered: the locker now refuses credential #%d" % args.serial
    else:
        text += ("  NOT delivered yet (%s); it stays pending in the key store and goes out "
                 "with the next `credential revoke` that reaches the locker"
                 % out["not_delivered_because"])
    return out, text


# ---- courier and recipient flows ---------------------------------------------------------

def cmd_deposit(args):
    cred = load_credential(args.credential)
    size = SIZE_NAMES.index(args.size.upper()) + 1
    rid = _request_id(args.request_id) if args.request_id else os.urandom(P.REQ_ID_LEN)
    with connected(args) as client:
        _check_same_locker(client, cred)
        dep = client.deposit(cred, size, rid)
    out = {"slot": dep.slot, "size": size_name(dep.size), "generation": dep.generation,
           "deposit_ts": dep.deposit_ts, "expires_at": dep.expires_at, "code": dep.code,
           "machine_code": dep.machine_code, "request_id": rid.hex()}
    text = ("slot %d (%s) is open: put the parcel in and close the door\n"
            "  deposited     %s\n  code expires  %s\n"
            "  pickup code   %s   (give this to the recipient)\n"
            "  machine code  %s   (QR / app link form)\n"
            "  request id    %s   (retry or cancel with --request-id)"
            % (dep.slot, out["size"], when(dep.deposit_ts), when(dep.expires_at), dep.code,
               dep.machine_code, rid.hex()))
    return out, text


def cmd_pickup(args):
    try:
        pickup_code.parse(args.code)
    except pickup_code.CodeFormatError as e:
        raise CliError(EXIT_USAGE, "not a pickup code: %s" % e)
    with connected(args) as client:
        got = client.pickup(args.code)
    out = {"slot": got["slot"], "size": size_name(got["size"]), "deposit_ts": got["deposit_ts"]}
    text = ("slot %d (%s) is open: take your parcel (deposited %s) and close the door"
            % (got["slot"], out["size"], when(got["deposit_ts"])))
    return out, text


def cmd_cancel(args):
    cred = load_credential(args.credential)
    rid = _request_id(args.request_id)
    with connected(args) as client:
        _check_same_locker(client, cred)
        sid = client.cancel(cred, rid)
    return ({"slot": sid, "request_id": rid.hex()},
            "slot %d is open: deposit %s cancelled, take the parcel back" % (sid, rid.hex()))


def cmd_reclaim(args):
    cred = load_credential(args.credential)
    with connected(args) as client:
        _check_same_locker(client, cred)
        sid = client.reclaim(cred, args.slot or 0)
    return {"slot": sid}, "slot %d is open: take the expired parcel back" % sid


TECH_ACTIONS = {None: P.TECH_OPEN_ONLY, "clear": P.TECH_CLEAR,
                "out_of_service": P.TECH_OUT_OF_SERVICE, "in_service": P.TECH_IN_SERVICE}


def _bits_text(bits):
    words = ["occupied" if bits & 1 else "free"]
    if bits & 2:
        words.append("expired")
    if bits & 4:
        words.append("OUT OF SERVICE")
    if bits & 16:
        words.append("door open" if bits & 8 else "door closed")
    return ", ".join(words)


def cmd_open_slot(args):
    cred = load_credential(args.credential)
    action = TECH_ACTIONS[args.action]
    with connected(args) as client:
        _check_same_locker(client, cred)
        got = client.tech_open(cred, args.slot, action)
    did = {P.TECH_OPEN_ONLY: "opened", P.TECH_CLEAR: "opened and marked empty",
           P.TECH_OUT_OF_SERVICE: "taken out of service",
           P.TECH_IN_SERVICE: "back in service"}[action]
    out = {"slot": got["slot"], "action": args.action or "open", "bits": got["bits"],
           "state": _bits_text(got["bits"])}
    return out, "slot %d %s (now: %s)" % (got["slot"], did, _bits_text(got["bits"]))


# ---- audit log -----------------------------------------------------------------------------

def verify_chain(lines, audit_key):
    """Check raw journal lines ("<json>\\t<mac hex>") against the keyed hash chain.

    Returns (records, problem): problem is None when every MAC and the numbering hold. The
    first record's predecessor is only known for record 1 (older segments get pruned)."""
    records, prev, problem = [], None, None
    for raw in lines:
        body, sep, mac_hex = raw.rpartition(b"\t")
        try:
            rec = json.loads(body)
            mac = bytes.fromhex(mac_hex.decode())
        except (ValueError, UnicodeDecodeError):
            return records, "line %d is not a journal line" % (len(records) + 1)
        if not sep or len(mac) != store.MAC_LEN:
            return records, "line %d has no chain MAC" % (len(records) + 1)
        if prev is None and rec.get("n") == 1:
            prev = store.GENESIS
        if records and rec.get("n") != records[-1]["n"] + 1:
            return records, "record %s follows record %s" % (rec.get("n"), records[-1]["n"])
        if prev is not None and store.chain_mac(audit_key, prev, body) != mac:
            return records, "record %s does not match its chain MAC" % rec.get("n")
        prev = mac
        records.append(rec)
    return records, problem


def _record_text(r):
    rest = " ".join("%s=%s" % (k, r[k]) for k in sorted(r) if k not in ("n", "t", "e", "c"))
    return "%6d  %s  %-7s %s" % (r.get("n", 0), when(r.get("t", 0)), r.get("e"), rest)


def cmd_audit(args):
    with connected(args) as client:
        lid = _locker_id(args, client.hello_info.locker_id)
        master = _master(lid)
        now = int(time.time())
        # Valid from host time, but long enough for a locker whose clock runs ahead.
        cred = _keystore().record_credential(
            lid, credentials.TECHNICIAN, "operator-audit", AUDIT_CRED_S, 0,
            lambda serial: op.issue(master, bytes.fromhex(lid), credentials.TECHNICIAN,
                                    "operator-audit", serial,
                                    max(now, client.hello_info.time) - now + AUDIT_CRED_S,
                                    now=now))
        lines, seq = [], args.from_seq
        while True:
            page = client.audit_page(cred, seq, AUDIT_PAGE)
            if not page:
                break
            lines.extend(page)
            seq = json.loads(page[-1].rpartition(b"\t")[0])["n"] + 1
    records, problem = verify_chain(lines, kdf.audit_key(master))
    if problem is None and len(records) != len(lines):
        problem = "unparsed lines"
    out = {"locker_id": lid, "records": records, "verified": None}
    text = "\n".join(_record_text(r) for r in records)
    if args.verify:
        out["verified"] = problem is None
        first = records[0]["n"] if records else 0
        if problem:
            out["problem"] = problem
            text += "\nAUDIT CHAIN BROKEN: %s" % problem
        else:
            text += ("\naudit chain verified with the master secret: records %d..%d%s"
                     % (first, records[-1]["n"] if records else 0,
                        "" if first <= 1 else " (older records were pruned; the chain is "
                        "checked from record %d on)" % first))
    if args.verify and problem:
        raise CliError(EXIT_REFUSED, "audit chain broken: %s" % problem, out)
    return out, text


# ---- the simulator -------------------------------------------------------------------------

def cmd_sim_start(args):
    state = _state(args)
    provisioned = None
    if not sim.is_provisioned(state):
        provisioned = provision_state(state, args.layout or config.DEFAULTS["layout"])
    elif args.layout:
        have = sim.read_json(os.path.join(state, "locker.json"), {}).get("layout")
        if have != args.layout:
            raise CliError(EXIT_USAGE, "%s is provisioned with layout %s: use another --state "
                           "or `lockerctl provision --force --layout ...`" % (state, have))
    already = sim.running_pid(state)
    pid, status, boot_s = sim.start(state, args.port, not args.no_sensors)
    cfg = sim.sim_config(state)
    out = {"pid": pid, "port": cfg["port"], "control_port": cfg["control_port"],
           "locker_id": status["locker_id"], "slots": len(status["slots"]),
           "already_running": bool(already), "boot_s": round(boot_s, 3),
           "state": os.path.abspath(state), "halted": status["halted"]}
    text = ""
    if provisioned:
        out["provisioned"] = provisioned
        text = "provisioned new locker %s (key in %s)\n" % (provisioned["locker_id"],
                                                            provisioned["keystore"])
    text += ("simulator %s: locker %s, %d slots, radio 127.0.0.1:%d, control %d, pid %d%s"
             % ("already running" if already else "started", out["locker_id"], out["slots"],
                out["port"], out["control_port"], pid,
                "" if already else ", booted in %.2f s" % boot_s))
    if status["halted"]:
        text += "\nLOCKER HALTED: %s" % status["halted"]
    return out, text


def cmd_sim_stop(args):
    pid = sim.stop(_state(args))
    return {"pid": pid}, "simulator (pid %d) stopped" % pid


def throttle_waits(data, now):
    """{"all slots" | "slot N": seconds} a human-code attempt must wait (core/throttle.py)."""
    tat, slots = data
    out = {}
    if throttle.GLOBAL.wait(tat, now):
        out["all slots"] = throttle.GLOBAL.wait(tat, now)
    for sid, slot_tat in slots:
        if throttle.SLOT.wait(slot_tat, now):
            out["slot %d" % sid] = throttle.SLOT.wait(slot_tat, now)
    return out


def status_view(st):
    ttl_now = st["time"]
    slots = []
    for sid, size, state, oos, expired, door, jammed, output in st["slots"]:
        slots.append({"slot": sid, "size": size_name(size),
                      "state": "expired" if expired else ("occupied" if state else "free"),
                      "out_of_service": bool(oos), "door": "open" if door else "closed",
                      "jammed": bool(jammed), "lock_energised": bool(output)})
    slot_waits = throttle_waits(st["throttle"], ttl_now)
    return {"locker_id": st["locker_id"], "time": ttl_now, "rtc": st["rtc"],
            "halted": st["halted"], "journal_seq": st["journal_seq"],
            "requests": st["requests"], "heap_peak": st["heap_peak"],
            "heap_now": st["heap_now"], "heap_total": st["heap_total"],
            "throttle": {"human_code_waits": slot_waits,
                         "retry_after": max([0] + list(slot_waits.values()))},
            "slots": slots}


def status_text(v):
    lines = ["locker %s   time %s   journal #%d   requests %d"
             % (v["locker_id"], when(v["time"]), v["journal_seq"], v["requests"])]
    if v["halted"]:
        lines.append("LOCKER HALTED: %s" % v["halted"])
    lines.append("slot  size  parcel    service         door")
    for s in v["slots"]:
        door = ("jammed (%s)" % s["door"]) if s["jammed"] else s["door"]
        if s["lock_energised"]:
            door += ", lock energised"
        lines.append("%4d  %-4s  %-8s  %-14s  %s" % (
            s["slot"], s["size"], s["state"],
            "OUT OF SERVICE" if s["out_of_service"] else "in service", door))
    t = v["throttle"]
    lines.append("human-code pickups: %s" % (", ".join(
        "%s wait %d s" % (k, w) for k, w in sorted(t["human_code_waits"].items()))
        or "no wait"))
    lines.append("heap high-water mark %d of %d bytes (now %d)"
                 % (v["heap_peak"], v["heap_total"], v["heap_now"]))
    return "\n".join(lines)


def cmd_sim_status(args):
    v = status_view(sim.control(_state(args), {"cmd": "status"}))
    v["pid"] = sim.running_pid(_state(args))
    return v, status_text(v)


def cmd_sim_clock(args):
    state = _state(args)
    if args.advance:
        if not args.advance.startswith("+"):
            raise CliError(EXIT_USAGE, "the simulated RTC only moves forward: +DURATION, "
                           "e.g. +3d")
        by = op.parse_duration(args.advance)
        st = sim.control(state, {"cmd": "clock", "advance": by})
    else:
        by = 0
        st = sim.control(state, {"cmd": "status"})
    ahead = st["rtc"] - int(time.time())
    out = {"time": st["time"], "rtc": st["rtc"], "advanced_by": by, "rtc_ahead_s": ahead}
    text = "locker time %s (RTC %s of this host by %dd %02dh %02dm)" % (
        when(st["time"]), "ahead" if ahead >= 0 else "behind", abs(ahead) // 86400,
        abs(ahead) % 86400 // 3600, abs(ahead) % 3600 // 60)
    if by:
        text = "advanced the RTC by %d s\n" % by + text
    return out, text


def cmd_sim_power_cut(args):
    state = _state(args)
    old = sim.running_pid(state)
    pid, st, boot_s = sim.power_cut(state)
    out = {"killed_pid": old, "pid": pid, "boot_s": round(boot_s, 3), "time": st["time"],
           "journal_seq": st["journal_seq"], "halted": st["halted"]}
    text = ("power cut: pid %d killed mid-flight; booted again as pid %d in %.2f s "
            "(journal #%d, locker time %s)" % (old, pid, boot_s, st["journal_seq"],
                                               when(st["time"])))
    if st["halted"]:
        text += "\nLOCKER HALTED: %s" % st["halted"]
    return out, text


def cmd_sim_door(args):
    st = sim.control(_state(args), {"cmd": "door", "slot": args.slot, "action": args.action})
    v = status_view(st)
    s = v["slots"][args.slot - 1]
    return ({"slot": args.slot, "action": args.action, "door": s["door"], "jammed": s["jammed"]},
            "slot %d: door %s%s" % (args.slot, s["door"], ", jammed" if s["jammed"] else ""))


# ---- argument parsing --------------------------------------------------------------------

def _common(transport=False):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON object instead of text")
    p.add_argument("--state", default=argparse.SUPPRESS, metavar="DIR",
                   help="simulator state folder (default: $LOCKER_STATE or ./state)")
    if transport:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--sim", metavar="[HOST:]PORT",
                       help="the simulator's radio port (default: from the state folder)")
        g.add_argument("--ble", metavar="LOCKER-ID", help="a real locker over Bluetooth LE")
    return p


def _slot_number(text):
    n = int(text)
    if not 1 <= n <= 999:
        raise argparse.ArgumentTypeError("slot numbers are 1..999")
    return n


def build_parser():
    common, locker = _common(), _common(transport=True)
    parser = argparse.ArgumentParser(
        prog="lockerctl", description="Offline parcel locker: simulator, provisioning, "
        "credentials, deposit and pickup.", epilog="exit codes: 0 ok, 1 locker refused, "
        "2 usage error, 3 locker unreachable, 4 local state missing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--state", metavar="DIR", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("sim", help="run and drive the simulated locker")
    simsub = s.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True)
    p = simsub.add_parser("start", parents=[common], help="start the simulator (provisions a "
                          "fresh state folder)")
    p.add_argument("--layout", help="slot sizes, e.g. S*4,M*4,L*2 (fresh state only)")
    p.add_argument("--no-sensors", action="store_true", help="a board without door sensors")
    p.add_argument("--port", type=int, default=sim.DEFAULT_PORT,
                   help="radio port; control is PORT+1; 0 picks free ports (default 7420)")
    p.set_defaults(func=cmd_sim_start)
    simsub.add_parser("stop", parents=[common], help="stop it").set_defaults(func=cmd_sim_stop)
    simsub.add_parser("status", parents=[common], help="slot grid, time, heap").set_defaults(
        func=cmd_sim_status)
    p = simsub.add_parser("clock", parents=[common], help="show or advance the simulated RTC")
    p.add_argument("advance", nargs="?", metavar="+DURATION", help="e.g. +3d, +73h, +90s")
    p.set_defaults(func=cmd_sim_clock)
    simsub.add_parser("power-cut", parents=[common], help="kill the firmware and boot it "
                      "again").set_defaults(func=cmd_sim_power_cut)
    p = simsub.add_parser("door", parents=[common], help="what a person at the cabinet does")
    p.add_argument("slot", type=_slot_number)
    p.add_argument("action", choices=["close", "open", "jam", "unjam"])
    p.set_defaults(func=cmd_sim_door)

    p = sub.add_parser("provision", parents=[common], help="new locker id and master secret")
    p.add_argument("--layout", help="slot sizes in slot order (default S*4,M*4,L*2)")
    p.add_argument("--ttl", metavar="DURATION", help="pickup code lifetime (default 72h)")
    p.add_argument("--force", action="store_true", help="replace a provisioned state folder")
    p.add_argument("--port", metavar="PORT", help="provision a real board on this serial port")
    p.add_argument("--board", metavar="PROFILE", help="with --port: board profile in boards/")
    p.add_argument("--dry-run", action="store_true", help="with --port: only print commands")
    p.set_defaults(func=cmd_provision)

    c = sub.add_parser("credential", help="issue or revoke courier/technician credentials")
    csub = c.add_subparsers(dest="cred_command", metavar="ACTION", required=True)
    p = csub.add_parser("issue", parents=[locker], help="write a credential file")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--courier", metavar="ID")
    who.add_argument("--technician", metavar="ID")
    p.add_argument("--valid", default="7d", metavar="DURATION", help="default 7d")
    p.add_argument("--reclaim-any", action="store_true",
                   help="may reclaim any courier's expired parcels")
    p.add_argument("--audit", action="store_true", help="may read the audit log")
    p.add_argument("--out", metavar="FILE", help="default HOLDER-SERIAL.cred.json")
    p.add_argument("--locker", metavar="ID", help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_credential_issue)
    p = csub.add_parser("revoke", parents=[locker], help="sign (and deliver) a revocation")
    p.add_argument("serial", type=int)
    p.add_argument("--locker", metavar="ID", help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_credential_revoke)

    p = sub.add_parser("deposit", parents=[locker], help="courier: get a slot and a code")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--size", default="S", type=str.upper, choices=list(SIZE_NAMES))
    p.add_argument("--request-id", metavar="HEX", help="retry a deposit: same id, same slot")
    p.set_defaults(func=cmd_deposit)
    p = sub.add_parser("pickup", parents=[locker], help="recipient: open the slot of a code")
    p.add_argument("code", help="017-48219-93015 or the machine form 017.<32 hex>")
    p.set_defaults(func=cmd_pickup)
    p = sub.add_parser("cancel", parents=[locker], help="courier: take a deposit back")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--request-id", required=True, metavar="HEX")
    p.set_defaults(func=cmd_cancel)
    p = sub.add_parser("reclaim", parents=[locker], help="courier: take an expired parcel")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--slot", type=_slot_number)
    p.set_defaults(func=cmd_reclaim)
    p = sub.add_parser("open-slot", parents=[locker], help="technician: open any slot")
    p.add_argument("--credential", required=True, metavar="TECHFILE")
    p.add_argument("slot", type=_slot_number)
    act = p.add_mutually_exclusive_group()
    for flag, dest in (("--clear", "clear"), ("--out-of-service", "out_of_service"),
                       ("--in-service", "in_service")):
        act.add_argument(flag, dest="action", action="store_const", const=dest)
    p.set_defaults(func=cmd_open_slot, action=None)
    p = sub.add_parser("audit", parents=[locker], help="read (and verify) the audit log")
    p.add_argument("--verify", action="store_true",
                   help="check the hash chain with the master secret")
    p.add_argument("--from", dest="from_seq", type=int, default=1, metavar="N")
    p.set_defaults(func=cmd_audit)
    return parser


# ---- main ----------------------------------------------------------------------------------

def _emit(as_json, code, data, text, stream):
    if as_json:
        print(json.dumps(dict(data, ok=code == EXIT_OK, exit=code), sort_keys=True))
    elif text:
        print(text, file=stream)


def main(argv=None):
    args = build_parser().parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    try:
        try:
            data, text = args.func(args)
        except LockerRefused as e:
            data = {"status": e.name, "message": e.message, "retry_after": e.retry_after}
            msg = "locker refused: %s: %s" % (e.name, e.message)
            if e.retry_after:
                msg += " (retry after %d s)" % e.retry_after
            raise CliError(EXIT_REFUSED, msg, data)
        except ks.KeyStoreMissing as e:
            raise CliError(EXIT_MISSING, str(e))
        except sim.SimNotRunning as e:
            raise CliError(EXIT_UNREACHABLE, str(e))
        except sim.SimError as e:
            raise CliError(EXIT_UNREACHABLE, "simulator: %s" % e)
        except config.ConfigError as e:
            raise CliError(EXIT_USAGE, str(e))
        except ValueError as e:              # durations, hex, sizes typed by the user
            raise CliError(EXIT_USAGE, str(e))
    except CliError as e:
        _emit(as_json, e.code, dict(e.data, error=e.message), "lockerctl: " + e.message,
              sys.stderr)
        return e.code
    _emit(as_json, EXIT_OK, data, text, sys.stdout)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
