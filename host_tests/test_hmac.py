"""The locker's own HMAC-SHA256 (neither MicroPython port ships `hmac`).

Checked three ways: the RFC 4231 vectors (typed in from the RFC), CPython's `hmac` on
generated keys and messages, and the same RFC vectors run on the real MicroPython unix port,
because that is where this module actually has to be right."""
import hashlib
import hmac
import json
import subprocess

import mp_runner
import pytest
from core.hmac_sha256 import equal, hmac_sha256
from hypothesis import given, settings
from hypothesis import strategies as st

# RFC 4231 section 4: (key, data, HMAC-SHA-256 as printed; case 5 is printed truncated to
# 128 bits, cases 6 and 7 use a 131-byte key, longer than SHA-256's 64-byte block).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation",
     "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data."
     b" The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize("case", range(1, 8))
def test_rfc4231_vectors(case):
    key, data, expected = RFC4231[case - 1]
    digest = hmac_sha256(key, data)
    assert len(digest) == 32
    # Case 5 prints only the first 128 bits: compare the printed prefix, as the RFC says.
    assert digest[:len(expected) // 2].hex() == expected


def test_rfc4231_case5_truncation_is_a_prefix_of_the_full_tag():
    key, data, expected = RFC4231[4]
    full = hmac_sha256(key, data)
    assert full.hex().startswith(expected) and len(full.hex()) > len(expected)


def test_rfc4231_split_messages_give_the_same_tag():
    """The multi-part form must be exactly HMAC of the concatenation."""
    for key, data, expected in RFC4231:
        cut = len(data) // 3
        tag = hmac_sha256(key, data[:cut], data[cut:2 * cut], data[2 * cut:])
        assert tag[:len(expected) // 2].hex() == expected


keys = st.binary(min_size=0, max_size=200)      # below, at and above the 64-byte block
messages = st.binary(min_size=0, max_size=300)


@settings(max_examples=200, deadline=None)
@given(keys, messages)
def test_matches_cpython_hmac(key, msg):
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@settings(max_examples=100, deadline=None)
@given(keys, st.lists(messages, min_size=1, max_size=5))
def test_multi_part_matches_cpython_on_the_concatenation(key, parts):
    assert hmac_sha256(key, *parts) == hmac.new(key, b"".join(parts), hashlib.sha256).digest()


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=64), messages)
def test_accepts_bytearray_and_memoryview(key, msg):
    """The locker passes slices of receive buffers; the type must not change the tag."""
    expected = hmac.new(key, msg, hashlib.sha256).digest()
    assert hmac_sha256(bytearray(key), memoryview(msg)) == expected


def test_key_of_exactly_one_block_is_not_hashed():
    key = bytes(range(64))
    msg = b"boundary"
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
    assert hmac_sha256(key, msg) != hmac_sha256(hashlib.sha256(key).digest(), msg)


# ---- equal(): the comparison every tag and proof check goes through -------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_equal_agrees_with_compare_digest(a, b):
    assert equal(a, b) == hmac.compare_digest(a, b)


@given(st.binary(min_size=1, max_size=32), st.data())
def test_equal_rejects_any_single_flipped_bit(tag, data):
    i = data.draw(st.integers(0, len(tag) - 1))
    bit = data.draw(st.integers(0, 7))
    other = bytearray(tag)
    other[i] ^= 1 << bit
    assert equal(tag, tag) and equal(tag, bytes(tag))
    assert not equal(tag, bytes(other))


def test_equal_rejects_prefixes_and_extensions():
    tag = bytes(range(16))
    assert not equal(tag, tag[:15])
    assert not equal(tag, tag + b"\x00")
    assert not equal(tag, b"")
    assert equal(b"", b"")


# ---- the same vectors on the real MicroPython unix port -------------------------------

MP_SCRIPT = """
import sys, json, binascii
sys.path.insert(0, sys.argv[1])
from core.hmac_sha256 import hmac_sha256
with open(sys.argv[2]) as f:
    cases = json.load(f)
for key, data in cases:
    k = binascii.unhexlify(key)
    d = binascii.unhexlify(data)
    third = len(d) // 3
    whole = hmac_sha256(k, d)
    parts = hmac_sha256(k, d[:third], d[third:])
    print(binascii.hexlify(whole).decode(), whole == parts)
"""


def test_rfc4231_vectors_on_micropython(tmp_path):
    script = tmp_path / "hmac_check.py"
    script.write_text(MP_SCRIPT)
    # Through a file: a long command-line argument crashes the unix port (uncaught NLR).
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([[k.hex(), d.hex()] for k, d, _ in RFC4231]))
    out = subprocess.run([mp_runner.micropython(), "-X", "heapsize=100k", str(script),
                          mp_runner.firmware_mpy(),
                          str(cases)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    for (_, _, expected), line in zip(RFC4231, lines):
        digest, parts_agree = line.split()
        assert digest.startswith(expected)
        assert parts_agree == "True"
    assert len([x for x in lines if x]) == len(RFC4231)
