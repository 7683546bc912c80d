"""The operator's commands: `provision` (a simulator state folder or a real board) and
`credential issue` / `credential revoke`. The operator's `audit` is in commands.audit."""
import contextlib
import json
import os
import shutil
import struct

from core import config, credentials, kdf
from core import protocol as P

from .. import firmware, inputs, sim
from .. import keystore as ks
from .. import operator as op
from ..client import LockerRefused
from ..output import EXIT_UNREACHABLE, EXIT_USAGE, CliError, when
from . import common



def _layout(text):
    try:
        return len(config.parse_layout(text))
    except config.ConfigError as e:
        raise CliError(EXIT_USAGE, str(e))


# ---- provisioning ------------------------------------------------------------------------

def provision_state(state, layout, ttl_s=None):
    """New locker identity: keys into the key store, config + secret into the state folder."""
    count = _layout(layout)
    cfg = {"locker_id": "00" * 8, "layout": layout}
    if ttl_s is not None:
        cfg["ttl_s"] = ttl_s
    config.build(cfg)                      # the locker's own check, before anything is kept
    os.makedirs(state, exist_ok=True)
    lid, master = op.new_identity()
    cfg["locker_id"] = lid.hex()
    common.keystore().create(lid, master, layout)
    with open(os.path.join(state, "locker.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    fd = os.open(os.path.join(state, "secret.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 ks.FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(master)
    return {"locker_id": lid.hex(), "layout": layout, "slots": count,
            "state": os.path.abspath(state), "keystore": common.keystore().path(lid.hex())}


def provision_board(args):
    """A real board: identity into the key store, config (lock ratings from the board
    profile, so the board accepts it) + secret onto the board's flash over mpremote."""
    from targets import board_profile  # the same validation the board runs at boot

    from .. import board_io
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
    if args.ttl is not None:
        cfg["ttl_s"] = args.ttl
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
        common.keystore().create(lid, master, layout)
    out = {"locker_id": lid.hex(), "layout": layout, "board": args.board, "port": args.port,
           "slots": profile["doors"], "keystore": common.keystore().path(lid.hex()),
           "dry_run": args.dry_run, "commands": [" ".join(c) for c in board.commands]}
    text = ("provisioned locker %(locker_id)s on %(port)s (%(board)s, %(slots)d slots)\n"
            "  master secret kept in %(keystore)s (mode 0600) and on the board" % out)
    if args.dry_run:
        text = ("dry run for locker %(locker_id)s on %(port)s (%(board)s, %(slots)d slots): "
                "nothing was sent or kept" % out)
        text += "\n  the commands would be:\n    " + "\n    ".join(out["commands"])
    return out, text


def cmd_provision(args):
    if args.port:
        return provision_board(args)
    state = common.state_dir(args)
    layout = args.layout or config.DEFAULTS["layout"]
    _layout(layout)                         # refuse bad input before anything is removed
    if sim.is_provisioned(state):
        if not args.force:
            raise CliError(EXIT_USAGE, "%s already holds locker %s: use --force to replace it "
                           "(its parcels and log are lost)"
                           % (state, common.locker_id_of_state(state)))
        if sim.running_pid(state):
            raise CliError(EXIT_USAGE, "stop the simulator first: `lockerctl sim stop`")
        shutil.rmtree(os.path.join(state, "store"), ignore_errors=True)
        for name in ("sim_rtc.json", "sim_doors.json"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(state, name))
    out = provision_state(state, layout, args.ttl)
    text = ("provisioned locker %(locker_id)s: %(slots)d slots (%(layout)s)\n"
            "  master secret kept in %(keystore)s (mode 0600)\n"
            "  config + secret written to %(state)s" % out)
    if args.ttl is not None:
        text += "\n  pickup codes expire %d s after the deposit" % args.ttl
    return out, text


# ---- credentials -------------------------------------------------------------------------

def cmd_credential_issue(args):
    kind = credentials.COURIER if args.courier is not None else credentials.TECHNICIAN
    holder = args.courier if args.courier is not None else args.technician
    if args.reclaim_any and kind != credentials.COURIER:
        raise CliError(EXIT_USAGE, "--reclaim-any is a courier scope")
    flags = ((credentials.SCOPE_RECLAIM_ANY if args.reclaim_any else 0)
             | (credentials.SCOPE_AUDIT if args.audit else 0))
    lid = common.locker_id(args)
    master = common.master(lid)
    cred = common.keystore().record_credential(
        lid, kind, holder, args.valid, flags,
        lambda serial: op.issue(master, bytes.fromhex(lid), kind, holder, serial, args.valid,
                                flags=flags))
    c = cred.credential
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in holder)
    path = args.out or "%s-%d.cred.json" % (safe, c.serial)
    common.save_credential(path, cred, ks.KINDS[kind])
    out = {"locker_id": lid, "kind": ks.KINDS[kind], "holder": holder, "serial": c.serial,
           "issued_at": c.issued_at, "not_after": c.not_after, "flags": flags, "file": path}
    scopes = [n for f, n in ((credentials.SCOPE_RECLAIM_ANY, "reclaim-any"),
                             (credentials.SCOPE_AUDIT, "audit")) if flags & f]
    text = ("%s credential #%d for %s on locker %s%s\n  valid until %s\n  written to %s "
            "(mode 0600; it holds a key: give it only to %s)"
            % (ks.KINDS[kind], c.serial, holder, lid,
               (" [%s]" % ", ".join(scopes)) if scopes else "", when(c.not_after), path, holder))
    return out, text


def _deliver_admin(args, lid):
    """Send every pending admin message, oldest first (a newer one makes older replays)."""
    store_ = common.keystore()
    sent = []
    admin_key = kdf.admin_key(common.master(lid), bytes.fromhex(lid))  # answers are checked
    with common.connected(args) as client:
        common.locker_id(args, client.hello_info.locker_id)
        for blob in store_.pending_admin(lid):
            try:
                client.admin(blob, admin_key)
            except LockerRefused as e:
                if e.status != P.E_REPLAY:       # replayed: a phone already delivered it
                    raise
            store_.delivered(lid, blob)
            sent.append(struct.unpack(">I", blob[3:7])[0])
    return sent


def cmd_credential_revoke(args):
    lid = common.locker_id(args)
    master = common.master(lid)
    info = common.keystore().credential_info(lid, args.serial)
    if info is None:
        raise CliError(EXIT_USAGE, "credential #%d was not issued from this key store for "
                       "locker %s" % (args.serial, lid))
    seq, blob = common.keystore().next_admin(
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


def register(sub):
    common_opts, locker_opts = common.options(), common.options(transport=True)
    p = sub.add_parser("provision", parents=[common_opts],
                       help="new locker id and master secret")
    p.add_argument("--layout", help="slot sizes S, M, L, XL in slot order (default S*4,M*4,L*2)")
    p.add_argument("--ttl", metavar="DURATION", type=inputs.ttl,
                   help="pickup code lifetime, e.g. 72h (default 72h)")
    p.add_argument("--force", action="store_true", help="replace a provisioned state folder")
    p.add_argument("--port", metavar="PORT", help="provision a real board on this serial port")
    p.add_argument("--board", metavar="PROFILE", help="with --port: board profile in boards/")
    p.add_argument("--dry-run", action="store_true", help="with --port: only print commands")
    p.set_defaults(func=cmd_provision)

    c = sub.add_parser("credential", help="issue or revoke courier/technician credentials")
    csub = c.add_subparsers(dest="cred_command", metavar="ACTION", required=True)
    p = csub.add_parser("issue", parents=[locker_opts], help="write a credential file")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--courier", metavar="ID", type=inputs.holder)
    who.add_argument("--technician", metavar="ID", type=inputs.holder)
    p.add_argument("--valid", default="7d", metavar="DURATION", type=inputs.validity,
                   help="how long from now, e.g. 12h, 7d (default 7d)")
    p.add_argument("--reclaim-any", action="store_true",
                   help="may reclaim any courier's expired parcels")
    p.add_argument("--audit", action="store_true", help="may read the audit log")
    p.add_argument("--out", metavar="FILE", help="default HOLDER-SERIAL.cred.json")
    p.add_argument("--locker", metavar="ID", type=inputs.locker_id,
                   help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_credential_issue)
    p = csub.add_parser("revoke", parents=[locker_opts], help="sign (and deliver) a revocation")
    p.add_argument("serial", type=inputs.serial)
    p.add_argument("--locker", metavar="ID", type=inputs.locker_id,
                   help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_credential_revoke)
