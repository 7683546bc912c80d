# SPAKE2 of RFC 9382, ciphersuite SPAKE2-P256-SHA256-HKDF-HMAC, both roles.
# Group: core/p256.py; Hash SHA-256; KDF HKDF-SHA256 (RFC 5869); MAC HMAC-SHA256 (RFC 2104).
# Points travel as 65-byte uncompressed SEC1 (RFC 9382 section 6). The product's use of it
# (which party is A, the identities, AAD, how w comes from a pickup code) is in
# core/pickup_code.py and docs/protocol.md section 8.
#
#   A: pA = x*P + w*M                         B: pB = y*P + w*N
#   A: K = x*(pB - w*N)                       B: K = y*(pA - w*M)        (cofactor h = 1)
#   TT = len(A)|A | len(B)|B | len(pA)|pA | len(pB)|pB | len(K)|K | len(w)|w
#        (len = 8-byte little-endian, w = 32 bytes big-endian)           RFC 9382 section 3.3
#   Ke | Ka = SHA256(TT); KcA | KcB = HKDF(Ka, salt=nil, "ConfirmationKeys" | AAD, 32)
#   cA = HMAC(KcA, TT), cB = HMAC(KcB, TT)                                RFC 9382 section 4
# K = x*(pB - w*N) is computed as x*pB + (-x*w)*N: one Straus-Shamir pass (core/p256.mul2),
# so each side spends two 256-step passes per run.
import hashlib
from struct import pack_into

from micropython import const

from core import p256
from core.hmac_sha256 import hmac_sha256

# RFC 9382 section 6, P-256: compressed SEC1, "1.2.840.10045.3.1.7 point generation seed (M|N)"
M = p256.decode(bytes.fromhex(
    "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f"))
N = p256.decode(bytes.fromhex(
    "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49"))

ROLE_A = const(0)
ROLE_B = const(1)
SHARE_LEN = const(65)
CONFIRM_LEN = const(32)
KEY_LEN = const(16)


class Spake2Error(ValueError):
    """The peer's share is not a valid point, or the shared element is the neutral one."""


def _blind(role):
    return M if role == ROLE_A else N


def share(role, w, secret):
    """This side's message: pA = x*P + w*M (role A) or pB = y*P + w*N (role B), 65 bytes."""
    return p256.encode(p256.mul2(secret, p256.G, w, _blind(role)))


def shared_element(role, w, secret, peer_share):
    """K as 65 bytes: x*(pB - w*N) for A, y*(pA - w*M) for B. Spake2Error if peer_share
    is not an encoded point of P-256 or K is the neutral element."""
    try:
        peer = p256.decode(peer_share)
    except p256.PointError as e:
        raise Spake2Error(str(e))
    k = p256.mul2(secret, peer, -secret * w, _blind(1 - role))
    if p256.is_infinity(k):
        raise Spake2Error("shared element is the neutral element")
    return p256.encode(k)


def transcript(id_a, id_b, share_a, share_b, k, w):
    """TT of RFC 9382 section 3.3 (w as 32 big-endian bytes), a bytearray written in place
    (each part after its 8-byte little-endian length)."""
    parts = (id_a, id_b, share_a, share_b, k, p256.scalar_bytes(w))
    size = 0
    for part in parts:
        size += 8 + len(part)
    out = bytearray(size)
    at = 0
    for part in parts:
        n = len(part)
        pack_into("<Q", out, at, n)
        out[at + 8:at + 8 + n] = part
        at += 8 + n
    return out


_NO_SALT = bytes(32)           # RFC 5869 section 2.2: a missing salt is HashLen zeros


def hkdf(ikm, salt, info, length, *more_info):
    """HKDF-SHA256 (RFC 5869): extract with salt (nil = 32 zero bytes), then expand; the
    info is info | more_info..., MACed in parts (no joined copy)."""
    prk = hmac_sha256(salt or _NO_SALT, ikm)
    out = b""
    block = b""
    i = bytearray(1)             # the block counter octet
    while len(out) < length:
        i[0] += 1
        block = hmac_sha256(prk, block, info, *more_info, i)  # T(i) = HMAC(PRK, T(i-1)|info|i)
        out = out + block if out else block
    return out if len(out) == length else out[:length]


def key_schedule(tt, aad=b""):
    """(Ke, KcA, KcB) from the transcript (RFC 9382 section 4); each 16 bytes."""
    digest = hashlib.sha256(tt).digest()
    # KcA | KcB = HKDF(Ka, salt=nil, "ConfirmationKeys" | AAD, 32): one expand block
    kc = hkdf(digest[KEY_LEN:], b"", b"ConfirmationKeys", 2 * KEY_LEN, aad)
    return digest[:KEY_LEN], kc[:KEY_LEN], kc[KEY_LEN:]


def confirmation(kc, tt):
    """cA = HMAC(KcA, TT) or cB = HMAC(KcB, TT), 32 bytes."""
    return hmac_sha256(kc, tt)


def run(role, w, secret, own_share, peer_share, id_a, id_b, aad=b""):
    """Everything after the shares crossed: (Ke, my confirmation, the peer's expected one).

    role is ROLE_A (sent pA) or ROLE_B; raises Spake2Error for an invalid peer share."""
    k = shared_element(role, w, secret, peer_share)
    if role == ROLE_A:
        tt = transcript(id_a, id_b, own_share, peer_share, k, w)
    else:
        tt = transcript(id_a, id_b, peer_share, own_share, k, w)
    ke, kca, kcb = key_schedule(tt, aad)
    ca, cb = confirmation(kca, tt), confirmation(kcb, tt)
    return (ke, ca, cb) if role == ROLE_A else (ke, cb, ca)
