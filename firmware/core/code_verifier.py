# What a pickup attempt is checked against: the locker derives the code's password from the
# slot record (depositing courier's key, generation, the locker's own deposit bucket).
# The slot comes FROM THE CODE (its first digits), so an attempt costs one password
# derivation and one SPAKE2 run whatever the number of occupied slots (ADR 0002, ADR 0005).
# The code binds exactly one bucket (the locker's own deposit timestamp, which the phone got
# in the DEPOSIT answer): a PAKE run tests one password, so there is no skew window.
from micropython import const

from core import pickup_code
from core.credentials import decode
from core.slot_manager import FREE, OCCUPIED, REOPEN_S

VALID = const(0)
WRONG = const(1)       # no parcel this code could open: the PAKE runs with a random password
EXPIRED = const(2)
REOPEN = const(3)      # the code of the parcel that just left: open the same door again


class CodeVerifier:
    def __init__(self, master, locker_id, bucket_s, ttl_s):
        self._master = master
        self._locker_id = locker_id
        self.bucket_s = bucket_s
        self.ttl_s = ttl_s
        self.passwords_derived = 0     # for the benchmarks

    def password(self, slot, form, now, random_bytes):
        """(verdict, w): what a confirmed PAKE with this slot would mean, and its password.

        verdict VALID, EXPIRED or REOPEN with the slot's real password; WRONG (no parcel a
        code could open: empty, out of service) with a random one, so the attempt looks and
        costs the same and its confirmation can never verify.
        REOPEN: the slot was emptied by this very code less than REOPEN_S ago and nothing
        has been deposited since (ADR 0004)."""
        if slot is None or slot.out_of_service or not slot.cred:
            return WRONG, pickup_code.random_scalar(random_bytes)
        reopen = (slot.state == FREE and slot.released_ts
                  and 0 <= now - slot.released_ts <= REOPEN_S)
        if slot.state != OCCUPIED and not reopen:
            return WRONG, pickup_code.random_scalar(random_bytes)
        cred, _ = decode(slot.cred)
        key = cred.key(self._master, self._locker_id)
        self.passwords_derived += 1
        material = pickup_code.secret_material(key, form, self._locker_id, slot.sid, slot.gen,
                                               slot.deposit_ts // self.bucket_s)
        w = pickup_code.password_scalar(form, slot.sid, material)
        if reopen:
            return REOPEN, w
        if pickup_code.is_expired(slot.deposit_ts, now, self.ttl_s):
            return EXPIRED, w
        return VALID, w
