# What a pickup attempt is checked against: the locker derives the code's password from the
# slot record (depositing courier's key, generation, the locker's own deposit bucket).
# The slot comes FROM THE CODE (its first digits), so an attempt costs one password
# derivation and one SPAKE2 run whatever the number of occupied slots (ADR 0002, ADR 0009).
# The code binds exactly one bucket (the locker's own deposit timestamp, which the phone got
# in the DEPOSIT answer): a PAKE run tests one password, so there is no skew window.
#
# Two steps:
#   password()  the slot's password and what a confirmed PAKE would mean (outcome()).
#   outcome()   what a matching code does (open, reopen, expired, out of service, gone).
# Only a PAKE whose confirmation fails is a wrong code: a right code is told the truth
# (issue 12.4) and its try is given back.
from micropython import const

from core import pickup_code
from core.kdf import LABEL_CREDENTIAL, derive
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
    def __init__(self, master, locker_id, bucket_s, ttl_s):
        self._master = master
        self._locker_id = locker_id
        self.bucket_s = bucket_s
        self.ttl_s = ttl_s
        self.passwords_derived = 0     # for the benchmarks

    def password(self, slot, form, now, random_bytes):
        """(verdict, w): what a confirmed PAKE with this slot would mean, and its password.

        The code of the slot's current (OCCUPIED) or last (FREE) occupancy: outcome() says
        what it does. A slot that never held a parcel: WRONG with a random password, so the
        attempt looks and costs the same and its confirmation can never verify."""
        if slot is None or not slot.cred:
            return WRONG, pickup_code.random_scalar(random_bytes)
        # Credential.key() of the stored block, without decoding it first
        key = derive(self._master, LABEL_CREDENTIAL, self._locker_id, slot.cred)
        self.passwords_derived += 1
        material = pickup_code.secret_material(key, form, self._locker_id, slot.sid, slot.gen,
                                               slot.deposit_ts // self.bucket_s)
        return outcome(slot, now, self.ttl_s), pickup_code.password_scalar(form, slot.sid,
                                                                         material)
