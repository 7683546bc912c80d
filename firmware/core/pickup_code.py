# The pickup-code algorithm: ONE implementation, imported by the locker (to verify) and by the
# host tools and reference apps (to generate; the code's text forms, human_code, machine_code
# and parse, are in core/phone.py, which the locker never imports). Patent CN112215318B: the
# client derives the code from the slot id and the deposit timestamp, with a secret it holds.
#
# code = HMAC-SHA256(credential_key, "LKR1/pickup" | form | locker_id | slot | generation | bucket)
#   credential_key  the courier credential's key (never the locker master secret)
#   generation   the slot's occupancy counter: binds the code to ONE occupancy
#   bucket       deposit_ts // bucket_s: the coarse timestamp window
# Human form: the slot number and 10 digits, "017-48219-93015".
# Machine form (QR / deep link): the slot and a 128-bit token, "017.<32 hex>".
#
# The code never travels, nor anything an offline search could test it against: a pickup is
# a SPAKE2 run (RFC 9382, core/spake2.py; docs/adr/0009-pickup-pake.md) with the code as the
# password. The phone is party A, the locker party B:
#   w   = OS2IP(SHA256("LKR1/pickup-pw" | 0x01 | pw) | SHA256("LKR1/pickup-pw" | 0x02 | pw)) mod n
#         pw = form (1) | slot (u16) | material (10 ASCII digits or the 16-byte token)
#   A   = "LKR1/recipient", B = locker id (8 bytes), AAD = "LKR1/pickup" | slot u16 | form u8
#   answer MAC = HMAC(Ke, "LKR1/pickup-answer" | version | type | status | body)[:16]
import hashlib
import struct

from micropython import const

from core import p256, spake2
from core.hmac_sha256 import hmac_sha256

# p256 and spake2 are imported at boot, with the rest: imported at the first pickup, their
# ~8 KB of bytecode (a non-frozen image loads .mpy into the heap) would have to find room in
# a heap the store's recovery has fragmented, and a pickup could fail with MemoryError.

BUCKET_S = const(300)          # deposit time is bound at 5-minute granularity
SKEW_BUCKETS = const(0)        # the code binds the locker's own deposit bucket (one password)
SECRET_DIGITS = const(10)      # human code secret; slot digits come on top
SLOT_DIGITS = const(3)         # slots 1..999
TTL_S = const(259200)          # 72 h, configurable per locker
TOKEN_BYTES = const(16)

FORM_HUMAN = const(0)
FORM_MACHINE = const(1)

_FORM_BYTE = (b"\x00", b"\x01")   # the form as one byte, without making it per call
_SECRET_MOD = 10 ** SECRET_DIGITS


def _mac(credential_key, form, locker_id, slot, generation, bucket):
    # the message goes in as parts: no concatenated copies in the verifier's loop
    return hmac_sha256(credential_key, b"LKR1/pickup", _FORM_BYTE[form], locker_id,
                       struct.pack(">HII", slot, generation, bucket))


def secret_material(credential_key, form, locker_id, slot, generation, bucket):
    """The bytes a code stands for: 10 ASCII digits (human) or 16 bytes (machine)."""
    digest = _mac(credential_key, form, locker_id, slot, generation, bucket)
    if form == FORM_MACHINE:
        return digest[:TOKEN_BYTES]
    return b"%010d" % (int.from_bytes(digest[:8], "big") % _SECRET_MOD)


# ---- the pickup PAKE (docs/protocol.md section 8) ------------------------------------

ID_RECIPIENT = b"LKR1/recipient"
SHARE_LEN = const(65)
CONFIRM_LEN = const(32)
ANSWER_MAC_LEN = const(16)
_SCALAR_RANDOM = const(40)     # 64 bits more than n: the reduction's bias is below 2^-64


def password_scalar(form, slot, material):
    """w for SPAKE2 from a pickup code (its form, slot and secret material)."""
    head = struct.pack(">BH", form, slot)          # pw = form | slot | material, in parts
    wide = b""
    for label in (b"LKR1/pickup-pw\x01", b"LKR1/pickup-pw\x02"):
        h = hashlib.sha256(label)
        h.update(head)
        h.update(material)
        wide = wide + h.digest() if wide else h.digest()
    return p256.scalar_from(wide)


def random_scalar(random_bytes):
    """A uniform secret scalar in [1, n) from random_bytes(40)."""
    return p256.scalar_from(random_bytes(_SCALAR_RANDOM)) or 1


def aad(slot, form):
    return b"LKR1/pickup" + struct.pack(">HB", slot, form)


def locker_reply(w, y, slot, form, locker_id, share_a):
    """The locker's side (party B) after PICKUP_START: (pB, cB, expected cA, Ke).
    Raises spake2.Spake2Error if share_a is not a valid point."""
    share_b = spake2.share(spake2.ROLE_B, w, y)
    ke, cb, ca = spake2.run(spake2.ROLE_B, w, y, share_b, share_a, ID_RECIPIENT,
                            bytes(locker_id), aad(slot, form))
    return share_b, cb, ca, ke


def answer_mac(ke, header, body):
    """MAC of a PICKUP_FINISH answer: header = version, type, status (3 bytes)."""
    return hmac_sha256(ke, b"LKR1/pickup-answer", header, body)[:ANSWER_MAC_LEN]


def is_expired(deposit_ts, now, ttl_s=TTL_S):
    return now > deposit_ts + ttl_s
