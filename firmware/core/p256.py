# The NIST P-256 group (secp256r1; SEC 2 section 2.4.2, FIPS 186-5 / SP 800-186 section 3.2.1.3)
# in plain integers, for MicroPython (no elliptic-curve module on the ESP32) and CPython.
# The ONLY group arithmetic of the product: core/spake2.py uses it for the pickup PAKE.
#
# Points are projective triples (X, Y, Z), the neutral element is (0, 1, 0). Addition uses the
# COMPLETE formula for a = -3 of Renes, Costello and Batina, "Complete addition formulas for
# prime order elliptic curves" (EUROCRYPT 2016, Algorithm 4): one formula for every pair of
# inputs (equal points, the neutral element, opposite points), so no branch depends on secret
# values. Scalar multiplication always runs 256 double-and-add steps over a fixed table
# (Straus-Shamir for two scalars): constant structure, no early exit, no data-dependent
# branch. (Python big-integer arithmetic itself is not constant time: the table index and the
# size of intermediate numbers still vary; see docs/adr/0009-pickup-pake.md.)
from micropython import const

_BITS = const(256)
P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff    # field prime
N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551    # group order
B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b    # y^2 = x^3 - 3x + b
GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296
GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5

INFINITY = (0, 1, 0)
G = (GX, GY, 1)

class PointError(ValueError):
    """Bytes that are not the SEC1 encoding of a point of P-256 other than the neutral one."""


def add(p1, p2):
    """p1 + p2 for any two projective points (complete: doubling and infinity included).
    12 field multiplications and 2 by b; RCB 2016 Algorithm 4 (a = -3)."""
    p = P
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    t0 = x1 * x2 % p
    t1 = y1 * y2 % p
    t2 = z1 * z2 % p
    t3 = (x1 + y1) * (x2 + y2) % p
    t4 = t0 + t1
    t3 = t3 - t4
    t4 = (y1 + z1) * (y2 + z2) % p
    x3 = t1 + t2
    t4 = t4 - x3
    x3 = (x1 + z1) * (x2 + z2) % p
    y3 = t0 + t2
    y3 = x3 - y3
    z3 = B * t2 % p
    x3 = y3 - z3
    z3 = x3 + x3
    x3 = x3 + z3
    z3 = t1 - x3
    x3 = t1 + x3
    y3 = B * y3 % p
    t1 = t2 + t2
    t2 = t1 + t2
    y3 = y3 - t2
    y3 = y3 - t0
    t1 = y3 + y3
    y3 = t1 + y3
    t1 = t0 + t0
    t0 = t1 + t0
    t0 = t0 - t2
    t1 = t4 * y3 % p
    t2 = t0 * y3 % p
    y3 = x3 * z3 % p
    y3 = (y3 + t2) % p
    x3 = t3 * x3 % p
    x3 = (x3 - t1) % p
    z3 = t4 * z3 % p
    t1 = t3 * t0 % p
    z3 = (z3 + t1) % p
    return (x3, y3, z3)


def neg(pt):
    return (pt[0], (-pt[1]) % P, pt[2])


def mul2(k1, p1, k2, p2):
    """k1*p1 + k2*p2 (scalars taken mod N): Straus-Shamir over the table
    [O, p1, p2, p1+p2], 256 doublings and 256 additions whatever the scalars."""
    k1 %= N
    k2 %= N
    table = (INFINITY, p1, p2, add(p1, p2))
    r = INFINITY
    for i in range(_BITS - 1, -1, -1):
        r = add(r, r)
        r = add(r, table[((k1 >> i) & 1) | (((k2 >> i) & 1) << 1)])
    return r


def mul(k, pt):
    """k*pt (k taken mod N); same 256-step structure as mul2."""
    return mul2(k, pt, 0, INFINITY)


def is_infinity(pt):
    return pt[2] % P == 0


def affine(pt):
    """(x, y) of a point other than the neutral element (PointError for it)."""
    if is_infinity(pt):
        raise PointError("the neutral element has no affine coordinates")
    zi = pow(pt[2], P - 2, P)          # Fermat inverse: no branch on the value
    return pt[0] * zi % P, pt[1] * zi % P


def equal(p1, p2):
    """Projective equality (X1*Z2 == X2*Z1 and Y1*Z2 == Y2*Z1)."""
    return ((p1[0] * p2[2] - p2[0] * p1[2]) % P == 0
            and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0)


def on_curve(x, y):
    return (y * y - (x * x * x - 3 * x + B)) % P == 0


def encode(pt):
    """SEC1 section 2.3.3 uncompressed encoding: 0x04 | x (32) | y (32), 65 bytes."""
    x, y = affine(pt)
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def decode(data):
    """SEC1 section 2.3.4: 65-byte uncompressed or 33-byte compressed point -> (x, y, 1).

    Checks coordinates below P and the curve equation (P-256 has cofactor 1, so every curve
    point is in the group). PointError for anything else, the neutral element included."""
    data = bytes(data)
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
        if x >= P or y >= P or not on_curve(x, y):
            raise PointError("not a point of P-256")
        return (x, y, 1)
    if len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise PointError("x coordinate out of range")
        rhs = (x * x * x - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)      # P = 3 mod 4: the square root, if there is one
        if y * y % P != rhs:
            raise PointError("not a point of P-256")
        if (y & 1) != (data[0] & 1):
            y = P - y
        return (x, y, 1)
    raise PointError("a P-256 point is 65 bytes (0x04 | x | y) or 33 bytes (0x02/0x03 | x)")


def scalar_bytes(k):
    """A scalar as 32 big-endian bytes (RFC 9382 section 3.3: w padded to the length of N)."""
    return (k % N).to_bytes(32, "big")


def scalar_from(data):
    """OS2IP(data) mod N. For a uniform scalar pass at least 40 bytes (RFC 9382 section 3.2:
    64 bits more than N, so the bias of the reduction is below 2^-64)."""
    return int.from_bytes(bytes(data), "big") % N
