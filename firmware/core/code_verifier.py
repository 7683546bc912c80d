# Checks a presented pickup proof against the locker's records and clock.
# The slot comes FROM THE CODE (its first digits), so one attempt costs a fixed number of
# hashes for the candidate time buckets of that one slot: it does not grow with the number
# of occupied slots, and only by (2*skew_buckets + 1) with the window.
from micropython import const

from core import pickup_code
from core.credentials import decode
from core.hmac_sha256 import equal
from core.slot_manager import FREE, OCCUPIED, REOPEN_S

VALID = const(0)
WRONG = const(1)
EXPIRED = const(2)
REOPEN = const(3)      # the code of the parcel that just left: open the same door again


class CodeVerifier:
    def __init__(self, master, locker_id, bucket_s, skew_buckets, ttl_s):
        self._master = master
        self._locker_id = locker_id
        self.bucket_s = bucket_s
        self.skew_buckets = skew_buckets
        self.ttl_s = ttl_s
        self.candidates_tried = 0     # for the benchmarks: proofs computed so far

    def verify(self, slot, form, presented_proof, challenge, now):
        """Return VALID, WRONG, EXPIRED or REOPEN for a proof naming slot (a Slot or None).

        REOPEN: the slot was emptied by this very code less than REOPEN_S ago and nothing
        has been deposited since (power cut between the pickup record and the door, or a
        door the recipient did not pull in time). Same occupancy, so still single-use."""
        if slot is None or slot.out_of_service or not slot.cred:
            return WRONG
        reopen = (slot.state == FREE and slot.released_ts
                  and 0 <= now - slot.released_ts <= REOPEN_S)
        if slot.state != OCCUPIED and not reopen:
            return WRONG
        cred, _ = decode(slot.cred)
        key = cred.key(self._master, self._locker_id)
        for bucket in pickup_code.candidate_buckets(slot.deposit_ts, self.bucket_s,
                                                    self.skew_buckets):
            self.candidates_tried += 1
            material = pickup_code.secret_material(key, form, self._locker_id, slot.sid,
                                                   slot.gen, bucket)
            if equal(pickup_code.proof(form, material, challenge, slot.sid), presented_proof):
                if reopen:
                    return REOPEN
                if pickup_code.is_expired(slot.deposit_ts, now, self.ttl_s):
                    return EXPIRED
                return VALID
        return WRONG
