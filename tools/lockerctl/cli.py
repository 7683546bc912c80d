"""`lockerctl`: the locker from a terminal, for each of its audiences.

The commands live in lockerctl.commands, one module per audience (sim, operator, courier,
recipient, technician); lockerctl.output prints every answer (text, or one JSON object with
--json) and turns every error into a message and an exit code (see its docstring and
`lockerctl --help`). This module only assembles the parser: the entry point is main()."""
import argparse
import sys

from . import output
from .commands import AUDIENCES
from .commands.common import load_credential  # noqa: F401  (library use: tests, apps)
from .operator import verify_chain  # noqa: F401  (library use: tests)


def build_parser():
    parser = output.Parser(
        prog="lockerctl", description="Offline parcel locker: simulator, provisioning, "
        "credentials, deposit and pickup.", epilog=output.EXIT_CODES_HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--state", metavar="DIR", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for audience in AUDIENCES:
        audience.register(sub)
    return parser


def main(argv=None):
    """Run one lockerctl command; return its exit code (lockerctl.output)."""
    return output.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
