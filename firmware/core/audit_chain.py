# The audit log read back with its whole MAC chain checked, for the host's tools and tests
# (the vectors, the campaigns, the store's tests). The locker itself serves AUDIT_READ from
# Store.page, which copies the stored lines unchecked at a fixed cost (docs/protocol.md 5.7,
# docs/security.md "The audit log"): this module is never imported on a board.
from core.store import StoreCorrupt, _names
from core.store_recover import read_segment


def read_audit(fs, key, from_seq=1, raw=False):
    """Yield every retained record with n >= from_seq, checking the whole chain.
    raw: yield the stored lines instead, so the operator can check the MACs over the very
    bytes that were chained (a re-encoded dict may order its keys differently).

    Segments must join up: each header names the (n, mac) where the previous one ended.
    Raises StoreCorrupt on any break."""
    segs = _names(fs, "j.")
    end_seq = end_mac = None      # where the previous segment ended
    for n in segs:
        rows = read_segment(fs, key, n, raw)
        header, mac = next(rows)
        if end_seq is not None and (header["n"] != end_seq or mac != end_mac):
            raise StoreCorrupt("segment %d does not continue segment %d" % (n, n - 1))
        seq = header["n"]
        for record, mac in rows:
            seq += 1              # read_segment checked that records count up by one
            if seq >= from_seq:
                yield record[:-1] if raw else record     # a raw line without its LF
        end_seq, end_mac = seq, mac
