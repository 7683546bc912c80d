"""core/p256.py and core/spake2.py against published vectors and independent implementations.

- RFC 9382 Appendix B (every value of the four SPAKE2-P256-SHA256-HKDF-HMAC vectors), on
  CPython and on the MicroPython unix port (host_tests/mp/pake_check.py, heap 100k).
- P-256 scalar multiplication against `cryptography` (OpenSSL: public key derivation and
  ECDH) and point addition / SEC1 decoding against the `ecdsa` package, so the firmware's
  arithmetic is never only checked against itself.
"""
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ecdsa import NIST256p
from ecdsa.ellipticcurve import INFINITY, PointJacobi
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mp_runner
from core import p256
from core import spake2 as S

HERE = os.path.dirname(__file__)
RFC9382 = os.path.join(HERE, "data", "spake2_rfc9382.json")
scalars = st.integers(min_value=1, max_value=p256.N - 1)


def rfc_cases():
    with open(RFC9382) as f:
        return json.load(f)["cases"]


def openssl_kG(k):
    """k*G, uncompressed SEC1, computed by OpenSSL through `cryptography`."""
    key = ec.derive_private_key(k, ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


def ecdsa_point(data):
    return PointJacobi.from_bytes(NIST256p.curve, data)


# ---- published vectors ------------------------------------------------------------------

@pytest.mark.parametrize("c", rfc_cases(), ids=lambda c: "A=%r,B=%r" % (c["A"], c["B"]))
def test_rfc9382_vectors(c):
    w, x, y = int(c["w"], 16), int(c["x"], 16), int(c["y"], 16)
    pa, pb = S.share(S.ROLE_A, w, x), S.share(S.ROLE_B, w, y)
    assert (pa.hex(), pb.hex()) == (c["pA"], c["pB"])
    k = S.shared_element(S.ROLE_A, w, x, pb)
    assert k.hex() == c["K"] == S.shared_element(S.ROLE_B, w, y, pa).hex()
    tt = S.transcript(c["A"].encode(), c["B"].encode(), pa, pb, k, w)
    assert tt.hex() == c["TT"]
    ke, kca, kcb = S.key_schedule(tt)
    assert (ke.hex(), kca.hex(), kcb.hex()) == (c["Ke"], c["KcA"], c["KcB"])
    assert S.confirmation(kca, tt).hex() == c["A_conf"]
    assert S.confirmation(kcb, tt).hex() == c["B_conf"]


def test_rfc9382_m_and_n_are_the_published_points():
    # RFC 9382 section 6 gives M and N compressed; ecdsa decodes them independently
    assert p256.encode(S.M) == ecdsa_point(bytes.fromhex(
        "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f")).to_bytes(
        "uncompressed")
    assert p256.encode(S.N) == ecdsa_point(bytes.fromhex(
        "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49")).to_bytes(
        "uncompressed")


# ---- independent implementations ---------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(scalars)
def test_scalar_mult_matches_openssl(k):
    assert p256.encode(p256.mul(k, p256.G)) == openssl_kG(k)


@settings(max_examples=30, deadline=None)
@given(scalars, scalars)
def test_diffie_hellman_matches_openssl_ecdh(a, b):
    """Variable-base multiplication: a*(b*G) has the x coordinate OpenSSL's ECDH gives."""
    pub_b = p256.decode(openssl_kG(b))
    shared = p256.affine(p256.mul(a, pub_b))[0].to_bytes(32, "big")
    key_a = ec.derive_private_key(a, ec.SECP256R1())
    assert shared == key_a.exchange(ec.ECDH(), ec.derive_private_key(b, ec.SECP256R1())
                                    .public_key())


@settings(max_examples=40, deadline=None)
@given(scalars, scalars, scalars, scalars)
@example(1, 1, 1, p256.N - 1)             # c*P + d*P = the neutral element (found by hypothesis)
@example(3, 5, 5, p256.N - 3)
def test_two_scalar_mult_and_addition_match_ecdsa(a, b, c, d):
    pa, pb = p256.mul(a, p256.G), p256.mul(b, p256.G)
    qa, qb = a * NIST256p.generator, b * NIST256p.generator

    def same(mine, theirs):
        """Equal points; the neutral element (c*a + d*b = 0 mod n) has no encoding."""
        if theirs == INFINITY:
            return p256.is_infinity(mine)
        return p256.encode(mine) == theirs.to_bytes("uncompressed")
    assert same(p256.add(pa, pb), qa + qb)
    assert same(p256.add(pa, pa), qa + qa)
    assert same(p256.mul2(c, pa, d, pb), c * qa + d * qb)


def test_complete_addition_edge_cases():
    g, o = p256.G, p256.INFINITY
    assert p256.equal(p256.add(g, o), g) and p256.equal(p256.add(o, g), g)
    assert p256.is_infinity(p256.add(g, p256.neg(g)))
    assert p256.is_infinity(p256.add(o, o))
    assert p256.is_infinity(p256.mul(p256.N, g)) and p256.is_infinity(p256.mul(0, g))
    assert p256.encode(p256.mul(p256.N - 1, g)) == openssl_kG(p256.N - 1)
    assert p256.encode(p256.mul(p256.N + 5, g)) == openssl_kG(5)


@settings(max_examples=40, deadline=None)
@given(scalars)
def test_sec1_decoding_matches_ecdsa(k):
    pt = ecdsa_point(openssl_kG(k))
    for form in ("uncompressed", "compressed"):
        assert p256.encode(p256.decode(pt.to_bytes(form))) == pt.to_bytes("uncompressed")


@given(st.binary(max_size=70))
def test_decode_takes_only_points(data):
    """Any bytes: a point (ecdsa agrees it is one) or PointError, never another exception."""
    try:
        got = p256.encode(p256.decode(data))
    except p256.PointError:
        with pytest.raises(Exception):
            if len(data) not in (33, 65):
                raise ValueError
            ecdsa_point(data)
        return
    assert got == ecdsa_point(data).to_bytes("uncompressed")


def test_decode_refuses_off_curve_and_out_of_range():
    good = bytearray(openssl_kG(7))
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(p256.PointError):
        p256.decode(bytes(bad))
    with pytest.raises(p256.PointError):      # x = P + x' (same residue) is not canonical
        p256.decode(b"\x04" + (p256.P + 1).to_bytes(33, "big")[1:] + bytes(32))
    with pytest.raises(p256.PointError):
        p256.decode(b"\x00")                  # SEC1 neutral element: never a share


def test_peer_share_must_be_a_point():
    with pytest.raises(S.Spake2Error):
        S.shared_element(S.ROLE_B, 5, 7, b"\x04" + bytes(64))
    # pA = w*M gives K = neutral: refused rather than keyed with it
    w = 12345
    with pytest.raises(S.Spake2Error):
        S.shared_element(S.ROLE_B, w, 99, p256.encode(p256.mul(w, S.M)))


def test_hkdf_rfc5869_case_1():
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    assert S.hkdf(ikm, salt, info, 42).hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865")


# ---- the same on MicroPython --------------------------------------------------------------

def test_vectors_on_micropython(tmp_path):
    ks = [1, 2, 3, p256.N - 1, p256.N - 2, 2 ** 128 + 1, 0x7fff << 200] + [
        int.from_bytes(os.urandom(32), "big") % p256.N for _ in range(5)]
    dec = []
    for k in ks[:4]:
        pt = ecdsa_point(openssl_kG(k))
        dec.append({"in": pt.to_bytes("compressed").hex(),
                    "out": pt.to_bytes("uncompressed").hex()})
    dec.append({"in": "04" + "00" * 64, "out": "PointError"})
    dec.append({"in": "02" + "ff" * 32, "out": "PointError"})
    points = {"mul": [{"k": "%064x" % k, "kG": openssl_kG(k).hex()} for k in ks],
              "decode": dec}
    path = tmp_path / "points.json"
    path.write_text(json.dumps(points))
    out = mp_runner.run_json("pake_check.py", RFC9382, str(path))
    assert out["failures"] == []
    assert out["checked"] == 8 * len(rfc_cases()) + len(ks) + len(dec) + 2
