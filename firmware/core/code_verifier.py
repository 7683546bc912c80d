# Checks a presented pickup proof against the locker's records and clock.
# The slot comes FROM THE CODE (its first digits), so one attempt costs a fixed number of
# hashes for the candidate time buckets of that one slot: it does not grow with the number
# of occupied slots, and only by (2*skew_buckets + 1) with the window.
#
# Two steps, kept apart so another proof of the code (a PAKE) can reuse the second:
#   verify()   does the proof match the code of the slot's current, or last, occupancy?
#   outcome()  what a matching code does (open, reopen, expired, out of service, gone).
# Only a proof that matches nothing is a wrong code (a throttle strike): a right code is
# told the truth and never charged (issue 12.4).
from micropython import const

from core import pickup_code
from core.credentials import decode
from core.hmac_sha256 import equal
from core.slot_manager import LEFT_PICKUP, OCCUPIED, reopens_for

VALID = const(0)
WRONG = const(1)
EXPIRED = const(2)
REOPEN = const(3)          # the code of the parcel its pickup just took: open that door again
OUT_OF_SERVICE = const(4)  # right code, slot out of service: a technician must open it
GONE = const(5)            # right code of a parcel that has left (collected, taken back,
                           # removed by a technician) and is past any reopen window


def outcome(slot, now, ttl_s):
    """What a pickup does whose code matches slot's current (OCCUPIED) or last (FREE)
    occupancy: VALID, EXPIRED, REOPEN, OUT_OF_SERVICE or GONE. Never WRONG: the code was right.

    REOPEN only while the slot was emptied by a pickup (so by this very code) less than
    REOPEN_S ago and nothing was deposited since: a slot emptied by cancel, reclaim or a
    technician has nothing of the recipient's in it (ADR 0004)."""
    if slot.state == OCCUPIED:
        if slot.out_of_service:
            return OUT_OF_SERVICE
        if pickup_code.is_expired(slot.deposit_ts, now, ttl_s):
            return EXPIRED
        return VALID
    if reopens_for(slot, LEFT_PICKUP, now):
        return OUT_OF_SERVICE if slot.out_of_service else REOPEN
    return GONE


class CodeVerifier:
    def __init__(self, master, locker_id, bucket_s, skew_buckets, ttl_s):
        self._master = master
        self._locker_id = locker_id
        self.bucket_s = bucket_s
        self.skew_buckets = skew_buckets
        self.ttl_s = ttl_s
        self.candidates_tried = 0     # for the benchmarks: proofs computed so far

    def verify(self, slot, form, presented_proof, challenge, now):
        """VALID, WRONG, EXPIRED, REOPEN, OUT_OF_SERVICE or GONE for a proof naming slot:
        WRONG unless the proof is one of the window codes of the slot's current or last
        occupancy (at most 2*skew_buckets + 1 proofs computed), else outcome()."""
        if slot is None or not slot.cred:
            return WRONG
        cred, _ = decode(slot.cred)
        key = cred.key(self._master, self._locker_id)
        for bucket in pickup_code.candidate_buckets(slot.deposit_ts, self.bucket_s,
                                                    self.skew_buckets):
            self.candidates_tried += 1
            material = pickup_code.secret_material(key, form, self._locker_id, slot.sid,
                                                   slot.gen, bucket)
            if equal(pickup_code.proof(form, material, challenge, slot.sid), presented_proof):
                return outcome(slot, now, self.ttl_s)
        return WRONG
