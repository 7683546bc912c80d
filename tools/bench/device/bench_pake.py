# Hook of bench_memory for the PAKE pickup (RFC 9382 SPAKE2 over P-256): the locker's side of
# one exchange, its big-integer arithmetic reported apart from the requests' transients.
# Until the firmware has core.spake2, transients() yields nothing and bench_memory says so.
# When the PAKE pickup request lands in Locker.handle, add it here as a request.
import hashlib


def transients(rig, allocated):
    """Yield (name, bytes allocated) pairs; allocated(fn) -> (result, bytes) as in
    bench_memory (collector off on the unix port; the WebAssembly port never collects
    inside a call)."""
    try:
        from core import spake2
    except ImportError:
        return
    from core import p256
    w = int.from_bytes(hashlib.sha256(b"bench-pake-w").digest(), "big") % p256.N
    x = int.from_bytes(hashlib.sha256(b"bench-pake-x").digest(), "big") % p256.N
    y = int.from_bytes(hashlib.sha256(b"bench-pake-y").digest(), "big") % p256.N
    share_a = spake2.share(spake2.ROLE_A, w, x)
    share_b, used = allocated(lambda: spake2.share(spake2.ROLE_B, w, y))
    yield "PAKE: locker's share y*P + w*N (P-256 big ints)", used
    _, used = allocated(lambda: spake2.run(spake2.ROLE_B, w, y, share_b, share_a,
                                           b"phone", b"locker"))
    yield "PAKE: shared element, transcript, key schedule (P-256 big ints)", used
