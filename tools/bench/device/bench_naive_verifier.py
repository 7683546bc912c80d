# The verifier the locker would need if a pickup code did NOT name its slot (ADR 0002):
# try every occupied slot, and for each every bucket of the accepted time window.
# A baseline for the benchmark only; never part of the firmware.
from core import pickup_code
from core.credentials import decode
from core.hmac_sha256 import equal
from core.slot_manager import OCCUPIED


class NaiveVerifier:
    def __init__(self, master, locker_id, bucket_s, skew_buckets):
        self._master = master
        self._locker_id = locker_id
        self.bucket_s = bucket_s
        self.skew_buckets = skew_buckets

    def verify(self, slots, form, presented_proof, challenge):
        """Return the slot id whose current parcel the proof belongs to, or None.

        The per-candidate work is the shipped verifier's (same code material and proof), so
        the difference in cost is only the number of candidates."""
        for sid in slots.sids():
            slot = slots.get(sid)
            if slot.state != OCCUPIED or slot.out_of_service:
                continue
            cred, _ = decode(slot.cred)
            key = cred.key(self._master, self._locker_id)
            for bucket in pickup_code.candidate_buckets(slot.deposit_ts, self.bucket_s,
                                                        self.skew_buckets):
                material = pickup_code.secret_material(key, form, self._locker_id, sid,
                                                       slot.gen, bucket)
                if equal(pickup_code.proof(form, material, challenge, sid), presented_proof):
                    return sid
        return None
