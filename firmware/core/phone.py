# The phone's side of the locker protocol that the locker itself never runs: signing a
# request, reading an answer, the link's credits, and making and reading pickup codes. Host
# tools (lockerctl, campaigns, the vectors generator), tests and MicroPython scripts that play
# a phone import it; the locker does not, so its bytecode and names stay out of the board's
# heap (docs/performance.md, "The ESP32 heap budget"). Its encodings are the ones of
# core/protocol.py, core/link.py and core/pickup_code.py (docs/protocol.md), used from there:
# the code's secret digits come from pickup_code.secret_material, the one implementation of
# the patent's algorithm, which the locker verifies with.
import struct

from core import pickup_code as PC
from core import protocol as P
from core.hmac_sha256 import hmac_sha256

_SECRET_DIGITS = PC.SECRET_DIGITS
_SLOT_DIGITS = PC.SLOT_DIGITS
_TOKEN_BYTES = PC.TOKEN_BYTES
_MAX_SLOT = 10 ** _SLOT_DIGITS - 1
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


# ---- requests and answers (docs/protocol.md sections 2-4) --------------------------------

def sign(frame_without_tag, key, challenge):
    """An authenticated request: frame | HMAC(key, challenge | frame)[:16]."""
    return frame_without_tag + hmac_sha256(key, bytes(challenge) + frame_without_tag)[:P.TAG_LEN]


def parse_response(frame):
    """(type, status, challenge, body) of an answer frame; P.ProtocolError if malformed."""
    if len(frame) < 3 + P.CHALLENGE_LEN:
        raise P.ProtocolError(P.E_LENGTH, "response too short")
    if frame[0] != P.VERSION:
        raise P.ProtocolError(P.E_VERSION, "response version %d" % frame[0])
    return (frame[1] & ~P.RESPONSE_BIT & 0xFF, frame[2], bytes(frame[3:3 + P.CHALLENGE_LEN]),
            bytes(frame[3 + P.CHALLENGE_LEN:]))


def parse_error(body):
    """(retry_after, message) of an error answer's body (protocol.error_body's layout)."""
    if len(body) < 5:
        return 0, ""
    retry, n = struct.unpack(">IB", body[:5])
    return retry, bytes(body[5:5 + n]).decode()


# ---- the link's credits (core/link.py, docs/protocol.md section 2) ---------------------

# core.link is imported where it is needed: a MicroPython script that plays the phone and
# the locker in one heap (host_tests/mp, the bench's flows) does not load it for nothing.

def is_credit(piece):
    """True for the locker's credit fragment (it is not part of an answer)."""
    from core.link import CREDIT_FRAGMENT
    return bytes(piece) == CREDIT_FRAGMENT


def credit_points(fragment_count, window=None):
    """How many times a phone waits for a credit while sending a request of that many
    fragments: after every link.WINDOW-th fragment (or `window`-th) that is not the last."""
    if window is None:
        from core.link import WINDOW as window
    return (fragment_count - 1) // window if fragment_count > 0 else 0


# ---- pickup codes (core/pickup_code.py) -------------------------------------------------

class CodeFormatError(ValueError):
    pass


def human_code(credential_key, locker_id, slot, generation, deposit_ts,
               bucket_s=PC.BUCKET_S):
    """The code a person types: slot and 10 digits, "017-48219-93015"."""
    digits = PC.secret_material(credential_key, PC.FORM_HUMAN, locker_id, slot, generation,
                                deposit_ts // bucket_s).decode()
    return "%03d-%s-%s" % (slot, digits[:5], digits[5:])


def machine_code(credential_key, locker_id, slot, generation, deposit_ts,
                 bucket_s=PC.BUCKET_S):
    """The QR / deep-link code: slot and a 128-bit token, "017.<32 hex>"."""
    token = PC.secret_material(credential_key, PC.FORM_MACHINE, locker_id, slot, generation,
                               deposit_ts // bucket_s)
    return "%03d.%s" % (slot, token.hex())


def parse(text):
    """Return (slot, form, material) from a typed or scanned code; CodeFormatError if bad."""
    text = text.strip()
    if "." in text:
        slot_s, _, hex_s = text.partition(".")
        if len(hex_s) != 2 * _TOKEN_BYTES or not _only(hex_s, _HEX):
            raise CodeFormatError("machine code needs %d hex digits" % (2 * _TOKEN_BYTES))
        material = bytes.fromhex(hex_s)
        return _slot(slot_s), PC.FORM_MACHINE, material
    digits = "".join(c for c in text if c not in " -")
    if len(digits) != _SLOT_DIGITS + _SECRET_DIGITS or not _only(digits, _DIGITS):
        raise CodeFormatError("pickup code needs %d digits" % (_SLOT_DIGITS + _SECRET_DIGITS))
    return _slot(digits[:_SLOT_DIGITS]), PC.FORM_HUMAN, digits[_SLOT_DIGITS:].encode()


def _only(text, allowed):
    """ASCII only: str.isdigit() also takes '²' and Arabic-Indic digits on CPython."""
    return len(text) > 0 and all(c in allowed for c in text)


def _slot(text):
    if not _only(text, _DIGITS):
        raise CodeFormatError("slot part must be digits")
    slot = int(text)
    if not 1 <= slot <= _MAX_SLOT:
        raise CodeFormatError("slot out of range")
    return slot
