"""What every audience's commands share: the state folder, the operator's key store,
credential files, and reaching the locker (simulator socket or BLE). Errors are raised as
CliError with the exit code of lockerctl.output."""
import argparse
import contextlib
import importlib.util
import json
import os
import sys

from core import protocol as P

from .. import keystore as ks
from .. import sim
from ..client import CourierCredential, LockerClient
from ..output import EXIT_MISSING, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from ..transport import SimSocketTransport, TransportError

CRED_FORMAT = "lockerctl-credential/1"


def options(transport=False):
    """Parent parser of the flags every (sub)command takes: --json, --state; with
    transport=True also how to reach the locker (--sim or --ble)."""
    from .. import inputs
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON object instead of text")
    p.add_argument("--state", default=argparse.SUPPRESS, metavar="DIR",
                   help="simulator state folder (default: $LOCKER_STATE or ./state)")
    if transport:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--sim", metavar="[HOST:]PORT", type=inputs.sim_address,
                       help="the simulator's radio port (default: from the state folder)")
        g.add_argument("--ble", metavar="LOCKER-ID", type=inputs.ble_locker,
                       help="a real locker over Bluetooth LE (id or LKR-<id>)")
    return p


# ---- the state folder and the key store ------------------------------------------------

def state_dir(args):
    return getattr(args, "state", None) or sim.default_state()


def keystore():
    return ks.KeyStore()


def locker_id_of_state(state):
    cfg = sim.read_json(os.path.join(state, "locker.json"))
    return cfg.get("locker_id") if cfg else None


def require_provisioned(state):
    """Exit 4 when the state folder holds no locker (nothing to start, stop or ask)."""
    if not sim.is_provisioned(state):
        raise CliError(EXIT_MISSING, "no provisioned locker in %s: `lockerctl provision` or "
                       "`lockerctl sim start` makes one (or pass --state DIR)" % state)


def locker_id(args, connected=None):
    """Which locker an operator command is about: --locker, --ble, the state folder, the one
    the connection reached, or the only one in the key store."""
    lid = (getattr(args, "locker", None) or getattr(args, "ble", None)
           or locker_id_of_state(state_dir(args)))
    if connected is not None:
        if lid and lid != connected.hex():
            raise CliError(EXIT_USAGE, "connected to locker %s, but this is about locker %s"
                           % (connected.hex(), lid))
        return connected.hex()
    if lid:
        return lid
    known = keystore().lockers()
    if len(known) == 1:
        return known[0]
    raise CliError(EXIT_MISSING, "which locker? no provisioned state in %s; pass --locker ID "
                   "(key store %s holds %d lockers)" % (state_dir(args), keystore().home,
                                                        len(known)))


def master(lid):
    try:
        return keystore().master(lid)
    except ks.KeyStoreMissing as e:
        raise CliError(EXIT_MISSING, str(e))


# ---- credential files ------------------------------------------------------------------

def load_credential(path):
    """A credential file -> CourierCredential (exit 4 when absent, 2 when not valid)."""
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
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise CliError(EXIT_USAGE, "credential file %s is not valid: %s" % (path, e))
    return cred


def save_credential(path, cred, kind):
    c = cred.credential
    data = {"format": CRED_FORMAT, "locker_id": cred.locker_id.hex(), "kind": kind,
            "holder": c.holder.decode(), "serial": c.serial, "issued_at": c.issued_at,
            "not_after": c.not_after, "flags": c.flags, "block": cred.block.hex(),
            "key": cred.key.hex()}
    try:
        ks.write_private(path, json.dumps(data, indent=1))
    except OSError as e:
        raise CliError(EXIT_USAGE, "cannot write credential file %s: %s"
                       % (path, e.strerror or e))


# ---- reaching the locker -----------------------------------------------------------------

def _transport(args):
    if getattr(args, "ble", None):
        try:
            from .. import ble
        except ImportError as e:
            if getattr(e, "name", None) == "lockerctl.ble":
                raise CliError(EXIT_USAGE, "--ble is not available in this version of "
                               "lockerctl yet; use --sim with the simulator")
            raise CliError(EXIT_USAGE, "--ble needs the BLE extras (%s): pip install -e "
                           "'.[ble]'" % e)
        if "bleak" not in sys.modules and importlib.util.find_spec("bleak") is None:
            raise CliError(EXIT_USAGE, "--ble needs the BLE extras (bleak): pip install -e "
                           "'.[ble]'")
        return ble.BleTransport(args.ble)
    if getattr(args, "sim", None):
        return SimSocketTransport(*args.sim)
    state = state_dir(args)
    cfg = sim.sim_config(state)
    if not cfg:
        require_provisioned(state)
        raise CliError(EXIT_UNREACHABLE, "no simulator in %s: start one with `lockerctl sim "
                       "start`, or pass --sim [HOST:]PORT or --ble LOCKER-ID" % state)
    return SimSocketTransport("127.0.0.1", cfg["port"])


def _sim_log(args):
    """(path, size) of the state folder's simulator log when that simulator is the locker
    being reached (no --sim, no --ble), else None."""
    if getattr(args, "ble", None) or getattr(args, "sim", None):
        return None
    path = os.path.join(state_dir(args), "sim.log")
    try:
        return path, os.path.getsize(path)
    except OSError:
        return None


def _logged_since(log, lines=4):
    """What the simulator logged since `log` was taken (its last lines), for a message."""
    if log is None:
        return ""
    path, size = log
    try:
        with open(path, "rb") as f:
            f.seek(size)
            new = f.read().decode(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    if not new:
        return ""
    return "\nthe simulator logged meanwhile (%s):\n  %s" % (path, "\n  ".join(new))


@contextlib.contextmanager
def connected(args):
    """A LockerClient that has said HELLO (so the locker's id and time are known)."""
    transport = _transport(args)
    log = _sim_log(args)
    try:
        transport.connect()
        client = LockerClient(transport)
        client.hello()
        yield client
    except TransportError as e:     # its messages already say what could not be reached
        raise CliError(EXIT_UNREACHABLE, str(e) + _logged_since(log))
    except OSError as e:
        raise CliError(EXIT_UNREACHABLE, "lost the link to the locker: %s" % (e.strerror or e))
    except P.ProtocolError as e:
        raise CliError(EXIT_UNREACHABLE, "garbled answer from the locker: %s" % e.message)
    finally:
        with contextlib.suppress(Exception):
            transport.close()


def check_same_locker(client, cred):
    if client.hello_info.locker_id != cred.locker_id:
        raise CliError(EXIT_USAGE, "the credential is for locker %s, but this is locker %s"
                       % (cred.locker_id.hex(), client.hello_info.locker_id.hex()))


def layout_of(args, lid_bytes):
    """The slot layout (e.g. 'S*4,M*4,L*2') of this locker if the state folder or the key
    store knows it, else None: lets messages name the sizes a locker really has."""
    state = state_dir(args)
    cfg = sim.read_json(os.path.join(state, "locker.json")) or {}
    if cfg.get("locker_id") == lid_bytes.hex():
        return cfg.get("layout")
    try:
        return keystore().load(lid_bytes.hex()).get("layout")
    except (ks.KeyStoreMissing, OSError, ValueError):
        return None

