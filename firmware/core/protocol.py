# Locker protocol v1: message codec shared by the locker and the host client (the
# phone-only parts, signing requests and reading answers, are in core/phone.py).
# Byte layouts and test vectors: docs/protocol.md and docs/protocol_vectors.json.
# Request  = version(1) type(1) body [tag(16)]
# Response = version(1) type|0x80 (1) status(1) challenge(16) body
# Authenticated requests end in tag = HMAC(credential_key, challenge | request-without-tag)[:16],
# where challenge is the one the locker sent in its previous response (or HELLO).
import struct

from micropython import const

VERSION = const(1)
CHALLENGE_LEN = const(16)
TAG_LEN = const(16)
REQ_ID_LEN = const(8)
LOCKER_ID_LEN = const(8)
MAX_REQUEST = const(256)
MAX_RESPONSE = const(1024)

# Request types
HELLO = const(0x01)
DEPOSIT = const(0x10)
CANCEL = const(0x11)
RECLAIM = const(0x12)
# 0x20 was the version-1 PICKUP (a MAC keyed by the code: searchable offline); retired.
PICKUP_START = const(0x21)       # slot, form, SPAKE2 share pA
PICKUP_FINISH = const(0x22)      # SPAKE2 confirmation cA
TECH_OPEN = const(0x30)
AUDIT_READ = const(0x31)
STATUS = const(0x32)
ADMIN = const(0x40)
RESPONSE_BIT = const(0x80)
ERROR_TYPE = const(0x7F)      # response type when the request type itself was unusable

# Status codes (0 = OK)
OK = const(0)
E_VERSION = const(1)
E_TYPE = const(2)
E_LENGTH = const(3)
E_AUTH = const(4)
E_CHALLENGE = const(5)
E_CREDENTIAL = const(6)
E_NO_SLOT = const(7)
E_STATE = const(8)
E_CODE = const(9)
E_LOCKED_OUT = const(10)
E_EXPIRED = const(11)
E_SCOPE = const(12)
E_DONE = const(13)
E_TOO_LARGE = const(14)
E_INTERNAL = const(15)
E_REPLAY = const(16)
E_VALUE = const(17)
E_OUT_OF_SERVICE = const(18)
E_BUSY = const(19)               # PAKE pacing: retry after retry_after s (0: < 1 s)


# Technician actions
TECH_OPEN_ONLY = const(0)
TECH_CLEAR = const(1)            # open and mark the slot empty (parcel removed)
TECH_OUT_OF_SERVICE = const(2)
TECH_IN_SERVICE = const(3)

# Admin operations (operator-signed, relayed by any phone, counter-protected)
ADMIN_REVOKE = const(1)          # payload: serial u32
ADMIN_SET_TIME = const(2)        # payload: unix time u32

AUTHENTICATED = (DEPOSIT, CANCEL, RECLAIM, TECH_OPEN, AUDIT_READ, STATUS)


class ProtocolError(Exception):
    def __init__(self, status, message, retry_after=0, body=None):
        super().__init__(message)    # MicroPython has no Exception.__init__ attribute
        self.status = status
        self.message = message
        self.retry_after = retry_after   # seconds, for E_LOCKED_OUT / E_CODE / E_BUSY
        self.body = body                 # a complete error body (None: error_body(message))


# ---- responses ----------------------------------------------------------------------

# The 3 header bytes of the answer being built: response() copies them into the answer at
# once (nothing awaits in between), so one buffer serves every answer.
_HEAD = bytearray(3)


def response(req_type, status, challenge, body=b"", auth=None):
    """version | type|0x80 | status | challenge (16) | body [| tag], built in one piece.

    auth: (key, pre, post) of an authenticated answer: the tag answer_tag(key, pre,
    answer, post) is appended, computed over the parts (no untagged copy is made)."""
    head = _HEAD
    head[0] = VERSION
    head[1] = req_type | RESPONSE_BIT
    head[2] = status
    if auth is None:
        return b"".join((head, challenge, body))
    key, pre, post = auth
    from core.hmac_sha256 import hmac_sha256
    tag = hmac_sha256(key, pre, head, challenge, body, post)[:TAG_LEN]
    return b"".join((head, challenge, body, tag))


def answer_tag(key, pre, answer, post=b""):
    """Tag that ends an authenticated answer: HMAC(key, pre | answer | post)[:16].

    Signed requests: key = credential key, pre = the challenge the request answered, post
    empty (the input starts like the request's own MAC input; byte 17, the type, has bit 7
    set only in answers). ADMIN: key = admin key, pre empty, post = the request's tag.
    docs/protocol.md section 4."""
    from core.hmac_sha256 import hmac_sha256
    return hmac_sha256(key, pre, answer, post)[:TAG_LEN]     # parts: no joined copy


def error_body(message, retry_after=0):
    msg = message.encode()[:120]
    return struct.pack(">IB", retry_after, len(msg)) + msg


# ---- requests -----------------------------------------------------------------------

def request(req_type, body=b""):
    return bytes((VERSION, req_type)) + body


def check_header(frame):
    """Return the request type, or raise ProtocolError for framing faults."""
    if len(frame) > MAX_REQUEST:
        raise ProtocolError(E_TOO_LARGE, "request over %d bytes" % MAX_REQUEST)
    if len(frame) < 2:
        raise ProtocolError(E_LENGTH, "request shorter than its header")
    if frame[0] != VERSION:
        raise ProtocolError(E_VERSION, "protocol version %d not supported" % frame[0])
    return frame[1]


class Reader:
    """Bounds-checked reads from a request body; every short read is a clean E_LENGTH."""

    def __init__(self, buf, pos=2):
        self.buf = buf
        self.pos = pos

    def take(self, n):
        end = self.pos + n
        if end > len(self.buf):
            raise ProtocolError(E_LENGTH, "message truncated")
        out = bytes(self.buf[self.pos:end])
        self.pos = end
        return out

    def _at(self, n):
        """The position of the next n bytes (then skipped); E_LENGTH past the end."""
        at = self.pos
        if at + n > len(self.buf):
            raise ProtocolError(E_LENGTH, "message truncated")
        self.pos = at + n
        return at

    def u8(self):
        return self.buf[self._at(1)]

    def u16(self):
        return struct.unpack_from(">H", self.buf, self._at(2))[0]

    def u32(self):
        return struct.unpack_from(">I", self.buf, self._at(4))[0]

    def tag_and_end(self):
        """The trailing tag; anything after it is a length error."""
        tag = self.take(TAG_LEN)
        if self.pos != len(self.buf):
            raise ProtocolError(E_LENGTH, "trailing bytes after the tag")
        return tag

    def end(self):
        if self.pos != len(self.buf):
            raise ProtocolError(E_LENGTH, "trailing bytes")
