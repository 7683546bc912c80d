"""The technician's command: `open-slot SLOT` (open any slot; optionally mark it empty, or
take it out of / back into service)."""
from core import protocol as P

from .. import inputs
from . import common

TECH_ACTIONS = {None: P.TECH_OPEN_ONLY, "clear": P.TECH_CLEAR,
                "out_of_service": P.TECH_OUT_OF_SERVICE, "in_service": P.TECH_IN_SERVICE}
DONE = {P.TECH_OPEN_ONLY: "opened", P.TECH_CLEAR: "opened and marked empty",
        P.TECH_OUT_OF_SERVICE: "taken out of service", P.TECH_IN_SERVICE: "back in service"}


def bits_text(bits):
    """The TECH_OPEN answer's slot bits (docs/protocol.md) -> words."""
    words = ["occupied" if bits & 1 else "free"]
    if bits & 2:
        words.append("expired")
    if bits & 4:
        words.append("OUT OF SERVICE")
    if bits & 16:
        words.append("door open" if bits & 8 else "door closed")
    return ", ".join(words)


def cmd_open_slot(args):
    cred = common.load_credential(args.credential)
    action = TECH_ACTIONS[args.action]
    with common.connected(args) as client:
        common.check_same_locker(client, cred)
        got = client.tech_open(cred, args.slot, action)
    out = {"slot": got["slot"], "action": args.action or "open", "bits": got["bits"],
           "state": bits_text(got["bits"])}
    return out, "slot %d %s (now: %s)" % (got["slot"], DONE[action], bits_text(got["bits"]))


def register(sub):
    p = sub.add_parser("open-slot", parents=[common.options(transport=True)],
                       help="technician: open any slot")
    p.add_argument("--credential", required=True, metavar="TECHFILE")
    p.add_argument("slot", type=inputs.slot_number)
    act = p.add_mutually_exclusive_group()
    for flag, dest in (("--clear", "clear"), ("--out-of-service", "out_of_service"),
                       ("--in-service", "in_service")):
        act.add_argument(flag, dest="action", action="store_const", const=dest)
    p.set_defaults(func=cmd_open_slot, action=None)
