"""What a user may type, checked against what the firmware and the protocol can hold.

Each function is an argparse `type=`: it returns the parsed value or raises
argparse.ArgumentTypeError with a message naming the limit, so a bad value is a usage error
(exit 2) before anything is written or sent. The limits come from the firmware: times are
u32 Unix seconds on the wire (docs/protocol.md), so no expiry can lie beyond TIME_MAX
(2106-02-07 06:28:15 UTC); credential holders are 1..credentials.MAX_HOLDER bytes; serials
and sequence numbers are u32; request ids are protocol.REQ_ID_LEN bytes; slots 1..999."""
import argparse
import time

from core import credentials
from core import protocol as P
from core.slot_manager import SIZE_NAMES

from .operator import parse_duration

U32_MAX = 0xFFFFFFFF
TIME_MAX = U32_MAX                  # the protocol's last representable second
MAX_SLOT = 999                      # config.parse_layout: a locker has 1..999 slots


def _fail(msg):
    raise argparse.ArgumentTypeError(msg)


def _when(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def duration(text):
    """'90s', '15m', '72h', '7d', '2w' or plain seconds -> seconds, at least 1."""
    try:
        s = parse_duration(text)
    except ValueError as e:
        _fail(str(e))
    if s < 1:
        _fail("a duration must be at least 1 s, got %r" % text)
    return s


def _ends_in_range(text, what, now=None):
    s = duration(text)
    now = int(time.time()) if now is None else now
    if now + s > TIME_MAX:
        _fail("%s %s ends after %s, the last time the locker can hold (u32 seconds); at most "
              "%dd from now" % (what, text, _when(TIME_MAX), (TIME_MAX - now) // 86400))
    return s


def ttl(text):
    """Pickup-code lifetime: 1 s .. what keeps a code made now expiring within TIME_MAX."""
    return _ends_in_range(text, "a pickup code lifetime of")


def validity(text):
    """Credential validity from now: 1 s .. until TIME_MAX (not_after is u32)."""
    return _ends_in_range(text, "a credential valid for")


def clock_step(text):
    """`sim clock +DURATION`: forward only, at least 1 s, at most the protocol's range."""
    if not text.startswith("+"):
        _fail("the simulated RTC only moves forward: +DURATION, e.g. +3d")
    s = duration(text)
    if s > TIME_MAX:
        _fail("+%s is beyond the locker's time range (u32 seconds, until %s)"
              % (text.lstrip("+"), _when(TIME_MAX)))
    return s


def holder(text):
    """Courier or technician id: 1..MAX_HOLDER bytes of UTF-8, printable."""
    n = len(text.encode())
    if not 1 <= n <= credentials.MAX_HOLDER:
        _fail("a holder id is 1..%d bytes (UTF-8), got %d" % (credentials.MAX_HOLDER, n))
    if not text.isprintable() or text != text.strip():
        _fail("a holder id has no control characters and no leading or trailing spaces")
    return text


def u32_number(what):
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            _fail("%s must be a number, got %r" % (what, text))
        if not 1 <= n <= U32_MAX:
            _fail("%s must be 1..%d, got %d" % (what, U32_MAX, n))
        return n
    parse.__name__ = what.replace(" ", "_")
    return parse


serial = u32_number("credential serial")
record_number = u32_number("record number")


def slot_number(text):
    try:
        n = int(text)
    except ValueError:
        _fail("a slot number is 1..%d, got %r" % (MAX_SLOT, text))
    if not 1 <= n <= MAX_SLOT:
        _fail("slot numbers are 1..%d" % MAX_SLOT)
    return n


def size(text):
    """Parcel size as the layout names it: S, M, L or XL (any case) -> 'S'.. ."""
    name = text.strip().upper()
    if name not in SIZE_NAMES:
        _fail("size is one of %s (as in --layout), got %r" % (", ".join(SIZE_NAMES), text))
    return name


def port(text, lowest=1, highest=65535):
    try:
        n = int(text)
    except ValueError:
        _fail("a TCP port is a number, got %r" % text)
    if not lowest <= n <= highest:
        _fail("a TCP port here is %d..%d, got %d" % (lowest, highest, n))
    return n


def sim_port(text):
    """`sim start --port`: 0 picks free ports; the control port is PORT+1."""
    return port(text, 0, 65534)


def sim_address(text):
    """--sim [HOST:]PORT -> (host, port)."""
    host, _, p = text.rpartition(":")
    try:
        return host or "127.0.0.1", port(p)
    except argparse.ArgumentTypeError:
        _fail("--sim wants [HOST:]PORT with PORT 1..65535, got %r" % text)


def locker_id(text):
    """16 hex digits (8 bytes), lower case (the key store's file name)."""
    t = text.strip().lower()
    try:
        ok = len(bytes.fromhex(t)) == 8 and len(t) == 16
    except ValueError:
        ok = False
    if not ok:
        _fail("a locker id is 16 hex digits, got %r" % text)
    return t


def request_id(text):
    try:
        rid = bytes.fromhex(text)
    except ValueError:
        rid = b""
    if len(rid) != P.REQ_ID_LEN:
        _fail("request id must be %d hex digits, got %r" % (2 * P.REQ_ID_LEN, text))
    return rid


def ble_locker(text):
    """--ble: the locker id, or its advertised name "LKR-<id>" -> the id."""
    t = text.strip()
    return locker_id(t[4:] if t.upper().startswith("LKR-") else t)
