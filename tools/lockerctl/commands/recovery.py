"""The operator's answer to a halted locker: `lockerctl recover --journal N --anchor M`
(docs/reliability.md "A halted locker", docs/adr/0008-journal-anchor.md).

A locker halts when its journal is shorter than its anchor says ("journal rolled back: ...
RECOVER (journal N, anchor M)"). The operator, having decided to accept that loss, signs an
ADMIN RECOVER stating exactly those numbers; the locker checks them against its own, writes a
`recover` record (with the technician opens it served while halted), takes every slot with
no parcel on record out of service until a technician has looked inside, and serves again.
Nothing lost is guessed."""
import argparse

from core.anchored import ADMIN_RECOVER

from .. import operator as op
from ..client import LockerClient, LockerRefused
from ..output import EXIT_UNREACHABLE, CliError
from ..transport import TransportError
from . import common

U32_MAX = 0xFFFFFFFF


def _record(text):
    """A journal record number as the halt reported it: 0..u32 (0: the store is gone)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a record number, got %r" % text)
    if not 0 <= n <= U32_MAX:
        raise argparse.ArgumentTypeError("a record number is 0..%d, got %d" % (U32_MAX, n))
    return n


def _reissue(store, master, lid, old):
    """An admin message signed before the recovery would be a replay after it (its counter
    is lower): sign its operation again with a fresh counter."""
    op_code, n = old[2], old[7]
    _, blob = store.next_admin(lid, lambda seq: op.admin_message(
        master, bytes.fromhex(lid), op_code, seq, old[8:8 + n]))
    store.delivered(lid, old)
    return blob


def cmd_recover(args):
    lid = common.locker_id(args)
    master = common.master(lid)
    store = common.keystore()
    older = store.pending_admin(lid)
    seq, blob = store.next_admin(lid, lambda seq: op.recover_message(
        master, bytes.fromhex(lid), seq, args.journal, args.anchor))
    transport = common._transport(args)
    resent = 0
    try:
        transport.connect()
        client = LockerClient(transport)
        try:
            client.admin(blob)             # signed and counter-checked: no challenge needed
        except LockerRefused:
            store.delivered(lid, blob)     # a refused recovery is never worth resending
            raise
        store.delivered(lid, blob)
        for old in older:
            if old[2] == ADMIN_RECOVER:  # an older recovery attempt: obsolete
                store.delivered(lid, old)
                continue
            new = _reissue(store, master, lid, old)
            client.admin(new)
            store.delivered(lid, new)
            resent += 1
    except (TransportError, OSError) as e:
        raise CliError(EXIT_UNREACHABLE, "cannot reach the locker: %s" % e)
    finally:
        try:
            transport.close()
        except (TransportError, OSError):  # closing a dead link changes nothing
            pass
    out = {"locker_id": lid, "admin_seq": seq, "journal": args.journal,
           "anchor": args.anchor, "resent_admin": resent}
    text = ("locker %s recovered: records %d..%d accepted as lost (audit log: 'recover');\n"
            "  every slot with no parcel on record is OUT OF SERVICE until a technician has "
            "looked inside\n  (`lockerctl open-slot --credential TECH N`, then "
            "`--in-service` or `--clear`)" % (lid, args.journal + 1, args.anchor))
    if resent:
        text += "\n  %d pending admin message(s) signed again and delivered" % resent
    return out, text


def register(sub):
    p = sub.add_parser("recover", parents=[common.options(transport=True)],
                       help="operator: let a halted locker serve again, accepting the loss "
                            "it reported (journal N, anchor M)")
    p.add_argument("--journal", type=_record, required=True, metavar="N",
                   help="the journal record the halted locker says it has")
    p.add_argument("--anchor", type=_record, required=True, metavar="M",
                   help="the record its anchor says was written")
    p.add_argument("--locker", metavar="ID", help="locker id (default: the state folder's)")
    p.set_defaults(func=cmd_recover)
