# The locker's receiving end of one phone connection, whatever carries it (BLE or the
# simulator's socket): request fragments in, at most ONE answer per request, credits so a
# phone never overruns the radio stack's write queue, and the time limits that stop one phone
# holding the locker (docs/protocol.md section 2). Pure logic: the caller passes the time, so
# both links and the host tests share it.
#
# Why credits: NimBLE acknowledges a write inside the stack before Python reads it and
# aioble's capture queue keeps 10 writes, dropping the oldest (aioble/server.py,
# _WRITE_CAPTURE_QUEUE_LIMIT). A write-with-response is therefore no flow control; the
# locker grants the next WINDOW fragments itself, after it has READ the previous ones.
from micropython import const

from core import fragment

WINDOW = const(8)            # request fragments a phone may send before it waits for a credit
_CREDIT = const(0xFF)         # the credit: a 1-byte fragment FIRST|LAST|63 (never a data fragment)
IDLE_MS = const(30000)       # no complete request for this long: the connection is dropped
REQUEST_MS = const(10000)    # FIRST to LAST of one request at most this long
CONNECTION_MS = const(300000)   # a connection lasts at most this long, however busy

# what feed() asks the link to do next
NOTHING = const(0)           # keep reading
MESSAGE = const(1)           # evaluate .message and send its answer
ERROR = const(2)             # send ONE answer with .status saying .error; then silence until FIRST
CREDIT_DUE = const(3)        # send the 1-byte credit fragment

CREDIT_FRAGMENT = bytes((_CREDIT,))    # the phone's side of credits: core/phone.py


class Receiver:
    """One connection's request side. Times are ms from a ticks_ms-like clock.

    feed(piece, now_ms) -> NOTHING | MESSAGE | ERROR | CREDIT_DUE (see above).
    expired(now_ms) -> None or why the connection must end ("idle", "request too slow",
    "connection too long"); wait_ms(now_ms) -> ms until that can next happen (>= 1)."""

    def __init__(self, max_message, now_ms, ticks_diff, idle_ms=IDLE_MS,
                 request_ms=REQUEST_MS, connection_ms=CONNECTION_MS, window=WINDOW):
        self._reasm = fragment.Reassembler(max_message)
        self._diff = ticks_diff
        self.idle_ms = idle_ms
        self.request_ms = request_ms
        self.connection_ms = connection_ms
        self.window = window
        self._opened = now_ms
        self._active = now_ms          # connect or last complete request
        self._first = None             # when the open request's FIRST came
        self._count = 0                # fragments of the open request read so far
        self._silent = False           # an error was answered: drop until a new FIRST
        self.message = None
        self.error = None
        self.status = 0                # the error's status: E_LENGTH, or E_TOO_LARGE
        self.dropped = 0               # fragments dropped while silent

    def feed(self, piece, now_ms):
        self.message = self.error = None
        first = len(piece) > 0 and piece[0] & fragment.FIRST
        if self._silent and not first:
            self.dropped += 1
            return NOTHING
        self._silent = False
        if first:
            self._first = now_ms
            self._count = 0
        try:
            message = self._reasm.feed(piece, now_ms)
        except fragment.FragmentError as e:
            self._silent = True
            self._first = None
            self.error = str(e)
            self.status = self._reasm.status
            return ERROR
        self._count += 1
        if message is None:
            if self._count % self.window == 0:
                return CREDIT_DUE
            return NOTHING
        self._first = None
        self._active = now_ms
        self.message = message
        return MESSAGE

    def _left(self, now_ms):
        d = self._diff
        left = self.idle_ms - d(now_ms, self._active)
        life = self.connection_ms - d(now_ms, self._opened)
        if life < left:
            left = life
        if self._first is not None:
            req = self.request_ms - d(now_ms, self._first)
            if req < left:
                left = req
        return left

    def expired(self, now_ms):
        if self._left(now_ms) > 0:
            return None
        d = self._diff
        if d(now_ms, self._opened) >= self.connection_ms:
            return "connection too long"
        if self._first is not None and d(now_ms, self._first) >= self.request_ms:
            return "request too slow"
        return "idle"

    def wait_ms(self, now_ms):
        left = self._left(now_ms)
        return left if left > 1 else 1
