# The pickup-code algorithm: ONE module, imported by the locker (to verify) and by the
# host tools and reference apps (to generate). Patent CN112215318B: the client derives the
# code from the slot id and the deposit timestamp, with a secret it holds.
#
# code = HMAC-SHA256(credential_key, "LKR1/pickup" | form | locker_id | slot | generation | bucket)
#   credential_key  the courier credential's key (never the locker master secret)
#   generation   the slot's occupancy counter: binds the code to ONE occupancy
#   bucket       deposit_ts // bucket_s: the coarse timestamp window
# Human form: the slot number and 10 digits, "017-48219-93015".
# Machine form (QR / deep link): the slot and a 128-bit token, "017.<32 hex>".
import hashlib
import struct

from micropython import const

from core.hmac_sha256 import hmac_sha256

BUCKET_S = const(300)          # deposit time is bound at 5-minute granularity
SKEW_BUCKETS = const(1)        # verifier also accepts the buckets either side
SECRET_DIGITS = const(10)      # human code secret; slot digits come on top
SLOT_DIGITS = const(3)         # slots 1..999
TTL_S = const(259200)          # 72 h, configurable per locker
TOKEN_BYTES = const(16)
PROOF_BYTES = const(16)

FORM_HUMAN = const(0)
FORM_MACHINE = const(1)

_FORM_BYTE = (b"\x00", b"\x01")   # the form as one byte, without making it per call
_SECRET_MOD = 10 ** SECRET_DIGITS
_MAX_SLOT = 10 ** SLOT_DIGITS - 1
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


class CodeFormatError(ValueError):
    pass


def _mac(credential_key, form, locker_id, slot, generation, bucket):
    # the message goes in as parts: no concatenated copies in the verifier's loop
    return hmac_sha256(credential_key, b"LKR1/pickup", _FORM_BYTE[form], locker_id,
                       struct.pack(">HII", slot, generation, bucket))


def bucket_of(timestamp, bucket_s=BUCKET_S):
    return timestamp // bucket_s


def candidate_buckets(deposit_ts, bucket_s=BUCKET_S, skew_buckets=SKEW_BUCKETS):
    """Buckets the verifier tries, most likely first: the locker's own, then +-1, +-2..."""
    b0 = deposit_ts // bucket_s
    out = [b0]
    for d in range(1, skew_buckets + 1):
        out.append(b0 - d)
        out.append(b0 + d)
    return out


def secret_material(credential_key, form, locker_id, slot, generation, bucket):
    """The bytes a code stands for: 10 ASCII digits (human) or 16 bytes (machine)."""
    digest = _mac(credential_key, form, locker_id, slot, generation, bucket)
    if form == FORM_MACHINE:
        return digest[:TOKEN_BYTES]
    return b"%010d" % (int.from_bytes(digest[:8], "big") % _SECRET_MOD)


def human_code(credential_key, locker_id, slot, generation, deposit_ts, bucket_s=BUCKET_S):
    digits = secret_material(credential_key, FORM_HUMAN, locker_id, slot, generation,
                             deposit_ts // bucket_s).decode()
    return "%03d-%s-%s" % (slot, digits[:5], digits[5:])


def machine_code(credential_key, locker_id, slot, generation, deposit_ts, bucket_s=BUCKET_S):
    token = secret_material(credential_key, FORM_MACHINE, locker_id, slot, generation,
                            deposit_ts // bucket_s)
    return "%03d.%s" % (slot, token.hex())


def parse(text):
    """Return (slot, form, material) from a typed or scanned code; CodeFormatError if bad."""
    text = text.strip()
    if "." in text:
        slot_s, _, hex_s = text.partition(".")
        if len(hex_s) != 2 * TOKEN_BYTES or not _only(hex_s, _HEX):
            raise CodeFormatError("machine code needs %d hex digits" % (2 * TOKEN_BYTES))
        material = bytes.fromhex(hex_s)
        return _slot(slot_s), FORM_MACHINE, material
    digits = "".join(c for c in text if c not in " -")
    if len(digits) != SLOT_DIGITS + SECRET_DIGITS or not _only(digits, _DIGITS):
        raise CodeFormatError("pickup code needs %d digits" % (SLOT_DIGITS + SECRET_DIGITS))
    return _slot(digits[:SLOT_DIGITS]), FORM_HUMAN, digits[SLOT_DIGITS:].encode()


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


def proof_key(form, material):
    h = hashlib.sha256(b"LKR1/proof-key")
    h.update(_FORM_BYTE[form])
    h.update(material)
    return h.digest()


def proof(form, material, challenge, slot):
    """What goes over the air: the code never does, only a MAC of the locker's challenge."""
    return hmac_sha256(proof_key(form, material), b"LKR1/proof", challenge,
                       struct.pack(">H", slot))[:PROOF_BYTES]


def is_expired(deposit_ts, now, ttl_s=TTL_S):
    return now > deposit_ts + ttl_s
