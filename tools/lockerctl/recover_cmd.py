"""`lockerctl recover`: the operator's answer to a locker halted because its journal is
shorter than its anchor says (docs/reliability.md "A halted locker", ADR 0005).

The halted locker reports the loss as (journal N, anchor M). The operator, after deciding
to accept it, signs a RECOVER admin message that states exactly those numbers; the locker
checks them against its own, records the recovery (and the technician opens it served while
halted) in the audit log, takes every slot with no parcel on record out of service until a
technician has looked inside, and serves again. Nothing lost is guessed.

Own module so the CLI split (per-audience modules) can re-home it: `add_parser(sub,
parents)` registers the command; `cmd_recover(args)` returns (data, text) like every
command."""
from core import protocol as P

from .client import LockerClient, LockerRefused
from .transport import TransportError


def add_parser(sub, parents):
    p = sub.add_parser("recover", parents=[parents],
                       help="operator: let a halted locker serve again, accepting the "
                            "loss it reported (journal N, anchor M)")
    p.add_argument("--journal", type=int, required=True, metavar="N",
                   help="the journal record the halted locker says it has")
    p.add_argument("--anchor", type=int, required=True, metavar="M",
                   help="the record its anchor says was written")
    p.add_argument("--locker", metavar="ID", help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_recover)
    return p


def _reissue(store, master, lid, old):
    """An admin message signed before the recovery would be a replay after it: sign its
    operation again with a fresh counter."""
    from . import operator as op
    op_code, n = old[2], old[7]
    _, blob = store.next_admin(lid, lambda seq: op.admin_message(
        master, bytes.fromhex(lid), op_code, seq, old[8:8 + n]))
    store.delivered(lid, old)
    return blob


def cmd_recover(args):
    from . import cli
    from . import operator as op
    if args.journal < 0 or args.anchor < 0 or args.journal >= 2 ** 32 or args.anchor >= 2 ** 32:
        raise cli.CliError(cli.EXIT_USAGE, "--journal and --anchor are record numbers "
                           "(0..4294967295) as the halted locker reported them")
    lid = cli._locker_id(args)
    master = cli._master(lid)
    store = cli._keystore()
    older = store.pending_admin(lid)
    seq, blob = store.next_admin(lid, lambda seq: op.recover_message(
        master, bytes.fromhex(lid), seq, args.journal, args.anchor))
    transport = cli._transport(args)
    resent = []
    try:
        transport.connect()
        client = LockerClient(transport)
        try:
            client.admin(blob)             # signed, counter-checked: no challenge needed
        except LockerRefused:
            store.delivered(lid, blob)     # a refused recovery is never worth resending
            raise
        store.delivered(lid, blob)
        for old in older:
            if old[2] == P.ADMIN_RECOVER:  # an older recovery attempt: obsolete
                store.delivered(lid, old)
                continue
            new = _reissue(store, master, lid, old)
            client.admin(new)
            store.delivered(lid, new)
            resent.append(new.hex())
    except (TransportError, OSError) as e:
        raise cli.CliError(cli.EXIT_UNREACHABLE, "cannot reach the locker: %s" % e)
    finally:
        try:
            transport.close()
        except Exception:                  # closing a dead link changes nothing
            pass
    out = {"locker_id": lid, "admin_seq": seq, "journal": args.journal,
           "anchor": args.anchor, "resent_admin": len(resent)}
    text = ("locker %s recovered: records %d..%d accepted as lost (audit log: 'recover');\n"
            "  every slot with no parcel on record is OUT OF SERVICE until a technician has "
            "looked inside\n  (`lockerctl open-slot --credential TECH N`, then "
            "`--in-service` or `--clear`)" % (lid, args.journal + 1, args.anchor))
    if resent:
        text += "\n  %d pending admin message(s) signed again and delivered" % len(resent)
    return out, text
