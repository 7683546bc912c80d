"""The recipient's command: `pickup CODE` (the locker finds the slot from the code, checks
it against its own clock and opens the door)."""
from core import phone

from ..output import EXIT_USAGE, CliError, size_name, when
from . import common


def cmd_pickup(args):
    try:
        phone.parse(args.code)
    except phone.CodeFormatError as e:
        raise CliError(EXIT_USAGE, "not a pickup code: %s" % e)
    with common.connected(args) as client:
        got = client.pickup(args.code)
    out = {"slot": got["slot"], "size": size_name(got["size"]), "deposit_ts": got["deposit_ts"]}
    text = ("slot %d (%s) is open: take your parcel (deposited %s) and close the door"
            % (got["slot"], out["size"], when(got["deposit_ts"])))
    return out, text


def register(sub):
    p = sub.add_parser("pickup", parents=[common.options(transport=True)],
                       help="recipient: open the slot of a code")
    p.add_argument("code", help="017-48219-93015 or the machine form 017.<32 hex>")
    p.set_defaults(func=cmd_pickup)
