"""The courier's commands: `deposit` (get a slot and a pickup code), `cancel` (take a
deposit back) and `reclaim` (take an expired parcel back). Sizes are the layout's names
(S, M, L, XL) in arguments, answers and refusals alike."""
import os

from core import protocol as P
from core.slot_manager import SIZE_NAMES

from .. import inputs
from ..client import LockerRefused
from ..output import size_name, when
from . import common


def _size_refusal(e, size, layout):
    """A DEPOSIT refused for its size, worded with size names (never size classes)."""
    name = size_name(size)
    has = " (its slots: %s)" % layout if layout else ""
    if e.status == P.E_VALUE:
        msg = "this locker has no %s slots%s: ask for a size it has" % (name, has)
    else:
        fits = ("size %s or larger (%s)" % (name, "/".join(SIZE_NAMES[size - 1:]))
                if size < len(SIZE_NAMES) else "size %s" % name)
        msg = ("no free slot of %s: all are occupied, out of service or have their door "
               "open%s" % (fits, has))
    return LockerRefused(e.status, msg, e.retry_after)


def cmd_deposit(args):
    cred = common.load_credential(args.credential)
    size = SIZE_NAMES.index(args.size) + 1
    rid = args.request_id or os.urandom(P.REQ_ID_LEN)
    with common.connected(args) as client:
        common.check_same_locker(client, cred)
        try:
            dep = client.deposit(cred, size, rid)
        except LockerRefused as e:
            if e.status in (P.E_VALUE, P.E_NO_SLOT):
                raise _size_refusal(e, size, common.layout_of(args, cred.locker_id))
            raise
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


def cmd_cancel(args):
    cred = common.load_credential(args.credential)
    rid = args.request_id
    with common.connected(args) as client:
        common.check_same_locker(client, cred)
        sid = client.cancel(cred, rid)
    return ({"slot": sid, "request_id": rid.hex()},
            "slot %d is open: deposit %s cancelled, take the parcel back" % (sid, rid.hex()))


def cmd_reclaim(args):
    cred = common.load_credential(args.credential)
    with common.connected(args) as client:
        common.check_same_locker(client, cred)
        sid = client.reclaim(cred, args.slot or 0)
    return {"slot": sid}, "slot %d is open: take the expired parcel back" % sid


def register(sub):
    opts = common.options(transport=True)
    p = sub.add_parser("deposit", parents=[opts], help="courier: get a slot and a code")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--size", default="S", type=inputs.size, metavar="|".join(SIZE_NAMES),
                   help="parcel size as the layout names it (default S); the locker opens "
                   "the smallest free slot of that size or larger")
    p.add_argument("--request-id", metavar="HEX", type=inputs.request_id,
                   help="retry a deposit: same id, same slot")
    p.set_defaults(func=cmd_deposit)
    p = sub.add_parser("cancel", parents=[opts], help="courier: take a deposit back")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--request-id", required=True, metavar="HEX", type=inputs.request_id)
    p.set_defaults(func=cmd_cancel)
    p = sub.add_parser("reclaim", parents=[opts], help="courier: take an expired parcel")
    p.add_argument("--credential", required=True, metavar="FILE")
    p.add_argument("--slot", type=inputs.slot_number)
    p.set_defaults(func=cmd_reclaim)
