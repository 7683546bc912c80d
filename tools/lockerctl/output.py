"""The one output and exit-code layer of `lockerctl`: every command returns (data, text) or
raises; this module prints the human text or one JSON object (--json) and turns every error,
usage errors included, into a message and an exit code. No traceback reaches the user.

Exit codes (README.md, `lockerctl --help`):
  0 ok
  1 the locker refused (status name, message, retry_after when locked out), the audit log
    failed verification, or lockerctl met an error it does not know (a bug: reported as such)
  2 usage or input error (a bad argument, duration, size, file or environment setting)
  3 cannot reach the locker, or the simulator is not running
  4 local state missing (no provisioned state folder, no key, no credential file)
  5 the locker is halted: it serves nothing until an operator recovers it; the reason is
    printed (`sim start`, `sim status`, `sim power-cut`)"""
import argparse
import json
import os
import sys
import time

from core.slot_manager import SIZE_NAMES

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_MISSING, EXIT_HALTED = range(6)
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = ("exit codes: 0 ok, 1 locker refused or audit chain broken, 2 usage error, "
                   "3 locker unreachable, 4 local state missing, 5 locker halted")


class CliError(Exception):
    """Ends a command: exit code, one-line message for the user, and JSON fields."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}


class UsageError(CliError):
    """An argument argparse refused; carries the usage line of the (sub)command."""

    def __init__(self, message, usage=""):
        super().__init__(EXIT_USAGE, message, {"usage": usage.strip()} if usage else None)
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting, so usage errors go
    through the same layer (and honour --json). Subparsers inherit the class."""

    def error(self, message):
        raise UsageError(message, self.format_usage())

    def _parse_optional(self, arg_string):
        # "-1d" is a value (a backwards clock step, a negative duration), never an option: no
        # option starts with a digit. Plain argparse takes only "-1" and "-1.5" as values and
        # answered "-1d" with "unrecognized arguments"; the value's own check now says why.
        if arg_string[:1] == "-" and arg_string[1:2].isdigit():
            return None
        return super()._parse_optional(arg_string)


def when(t):
    """Unix seconds -> '2026-11-29 21:30:48 UTC'."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def duration(seconds):
    """Seconds as a person reads them: "45 s", "59 min 59 s", "3 d 1 h" (two units at most)."""
    seconds = int(seconds)
    parts = []
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= n or (n == 1 and not parts):
            parts.append("%d %s" % (seconds // n, unit))
            seconds %= n
    return " ".join(parts[:2])


def size_name(size):
    """Size class 1.. -> its layout name (S, M, L, XL), as in `--layout` and `--size`."""
    return SIZE_NAMES[size - 1] if 1 <= size <= len(SIZE_NAMES) else "size class %d" % size


def _quiet_stdout():
    """The reader went away (`lockerctl ... | head`): nothing more to say, and Python's own
    flush at exit must not raise either."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass                                # not a real file (tests): nothing to close


def emit(as_json, code, data, text, stream):
    try:
        if as_json:
            print(json.dumps(dict(data, ok=code == EXIT_OK, exit=code), sort_keys=True))
        elif text:
            print(text, file=stream)
        stream.flush()
    except BrokenPipeError:                 # `lockerctl ... | head`: the reader went away
        _quiet_stdout()


def _as_cli_error(e):
    """Any exception a command lets through -> CliError (the one place errors are worded)."""
    # Imported here: the layer must not make `--help` pay for the transport modules.
    from . import keystore as ks
    from . import sim
    from .client import LockerRefused
    from .firmware import BuildError
    from core import config, credentials
    if isinstance(e, CliError):
        return e
    if isinstance(e, LockerRefused):
        msg = "locker refused: %s: %s" % (e.name, e.message)
        if e.retry_after:
            msg += " (retry after %s)" % duration(e.retry_after)
        return CliError(EXIT_REFUSED, msg, {"status": e.name, "message": e.message,
                                            "retry_after": e.retry_after})
    if isinstance(e, ks.KeyStoreMissing):
        return CliError(EXIT_MISSING, str(e))
    if isinstance(e, sim.SimRefused):
        return CliError(EXIT_USAGE, "the simulator refused: %s" % e)
    if isinstance(e, sim.SimNotRunning):
        return CliError(EXIT_UNREACHABLE, str(e))
    if isinstance(e, (sim.SimError, BuildError)):
        text = str(e)
        return CliError(EXIT_UNREACHABLE, text if "simulator" in text else "simulator: " + text)
    if isinstance(e, (config.ConfigError, credentials.CredentialError, ValueError)):
        return CliError(EXIT_USAGE, str(e))         # durations, hex, sizes typed by the user
    if isinstance(e, OSError):
        where = " (%s)" % e.filename if getattr(e, "filename", None) else ""
        return CliError(EXIT_USAGE, "%s%s" % (e.strerror or e, where))
    return CliError(EXIT_REFUSED, "internal error, please report it: %s: %s"
                    % (type(e).__name__, e))


def wants_json(argv):
    """--json anywhere on the command line (argparse may not have got far enough to say)."""
    return "--json" in argv


def run(parser, argv=None):
    """Parse argv, run the command, print its answer or its error; return the exit code.

    A command returns (data, text) for success, or (data, text, code) for a complete answer
    that still is not a success (a halted locker's status); errors are raised."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(argv)
    try:
        try:
            args = parser.parse_args(argv)
        except BrokenPipeError:          # `lockerctl --help | head`: the reader went away
            _quiet_stdout()
            return EXIT_OK
        answer = args.func(args)
        data, text = answer[:2]
        code = answer[2] if len(answer) > 2 else EXIT_OK     # e.g. EXIT_HALTED with a status
    except KeyboardInterrupt:
        emit(as_json, EXIT_INTERRUPTED, {"error": "interrupted"}, "lockerctl: interrupted",
             sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:             # the one place every error becomes a message
        e = _as_cli_error(exc)
        if isinstance(e, UsageError) and not as_json:
            sys.stderr.write(e.usage)
            print("lockerctl: error: " + e.message, file=sys.stderr)
        else:
            emit(as_json, e.code, dict(e.data, error=e.message), "lockerctl: " + e.message,
                 sys.stderr)
        return e.code
    emit(as_json, code, data, text, sys.stdout)     # a complete answer, halted or not
    return code
