# Fragmentation of protocol messages into link-sized pieces (BLE's default 20-byte ATT
# payload, or more after an MTU exchange). Each fragment = header(1) + payload.
# header: bit7 FIRST, bit6 LAST, bits0-5 sequence number (mod 64) within the message.
from micropython import const

from core.protocol import E_LENGTH, E_TOO_LARGE

FIRST = const(0x80)
LAST = const(0x40)
SEQ_MASK = const(0x3F)
DEFAULT_LINK_PAYLOAD = const(20)


class FragmentError(ValueError):
    """A fragment that cannot belong to a message. Reassembler.status says the locker's
    answer to it: E_TOO_LARGE for a message grown past the maximum, else E_LENGTH."""


def split(message, link_payload=DEFAULT_LINK_PAYLOAD):
    """Yield fragments of message, each at most link_payload bytes: a new bytearray each
    (a transport may still hold the previous one), made in one piece."""
    step = link_payload - 1
    if step < 1:
        raise ValueError("link payload too small")
    size = len(message)
    n = max(1, (size + step - 1) // step)
    view = memoryview(message)
    for i in range(n):
        head = i & SEQ_MASK
        if i == 0:
            head |= FIRST
        if i == n - 1:
            head |= LAST
        at = i * step
        end = min(at + step, size)
        piece = bytearray(end - at + 1)
        piece[0] = head
        piece[1:] = view[at:end]
        yield piece


class Reassembler:
    """Collects fragments into messages; a bad sequence or oversize drops the partial one."""

    def __init__(self, max_message):
        self.max_message = max_message
        self._buf = bytearray(max_message)   # the message so far: _buf[:_len], reused
        self._len = 0
        self._next = -1          # -1: waiting for a FIRST fragment
        self.started_ms = 0
        self.status = E_LENGTH   # answer to the last FragmentError (protocol.md 2)

    def pending(self):
        return self._next >= 0

    def reset(self):
        self._len = 0
        self._next = -1

    def feed(self, fragment, now_ms=0):
        """Return a complete message, None if more is needed; FragmentError if invalid."""
        self.status = E_LENGTH
        if len(fragment) < 1:
            self.reset()
            raise FragmentError("empty fragment")
        head = fragment[0]
        if head & FIRST:
            self.reset()
            self._next = 0
            self.started_ms = now_ms
        if self._next < 0 or (head & SEQ_MASK) != self._next:
            self.reset()
            raise FragmentError("fragment out of sequence")
        at = self._len
        end = at + len(fragment) - 1
        if end > self.max_message:
            self.reset()
            self.status = E_TOO_LARGE
            raise FragmentError("message over %d bytes" % self.max_message)
        buf = self._buf
        for k in range(1, len(fragment)):     # copied in place: no slice per fragment
            buf[at + k - 1] = fragment[k]
        self._len = end
        self._next = (self._next + 1) & SEQ_MASK
        if head & LAST:
            out = bytes(memoryview(buf)[:end])   # the caller's own copy: _buf is reused
            self.reset()
            return out
        return None
