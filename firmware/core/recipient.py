# The recipient's phone side of the pickup PAKE (SPAKE2 party A; docs/protocol.md section 8).
# Not imported by the locker (it only answers as party B, core/pickup_code.locker_reply), so
# its bytecode never sits in the locker's heap; host tools and MicroPython test scripts that
# play the phone import it.
from core import pickup_code, spake2
from core.hmac_sha256 import equal


class CodeMismatch(ValueError):
    """The locker's confirmation does not verify: wrong code, or not the real locker."""


class RecipientPake:
    """The phone's side (party A) of one pickup attempt.

    .share is pA (65 bytes, send it in PICKUP_START); finish(pB, cB) -> cA (32 bytes) once
    the locker proved it knows the same code (CodeMismatch otherwise); then check_answer()
    for the locker's MACed PICKUP_FINISH answer. random_bytes(n) -> n random bytes."""

    def __init__(self, slot, form, material, locker_id, random_bytes):
        self.slot = slot
        self.form = form
        self.locker_id = bytes(locker_id)
        self._w = pickup_code.password_scalar(form, slot, material)
        self._x = pickup_code.random_scalar(random_bytes)
        self.share = spake2.share(spake2.ROLE_A, self._w, self._x)
        self.key = None

    def finish(self, share_b, confirm_b):
        try:
            ke, ca, cb = spake2.run(spake2.ROLE_A, self._w, self._x, self.share, share_b,
                                    pickup_code.ID_RECIPIENT, self.locker_id,
                                    pickup_code.aad(self.slot, self.form))
        except spake2.Spake2Error:
            raise CodeMismatch("the locker's share is not a P-256 point")
        if not equal(cb, confirm_b):
            raise CodeMismatch("the locker did not prove the code: wrong code or not the "
                               "real locker")
        self.key = ke
        return ca

    def check_answer(self, answer):
        """The FINISH answer frame's body without its MAC if the MAC verifies, else None."""
        at = len(answer) - pickup_code.ANSWER_MAC_LEN
        if self.key is None or at < 19:
            return None
        if not equal(answer[at:], pickup_code.answer_mac(self.key, answer[:3],
                                                          answer[19:at])):
            return None
        return bytes(answer[19:at])


def start_frame(pake):
    """PICKUP_START: 01 21 | slot u16 | form u8 | pA (65)."""
    return (bytes((1, 0x21)) + pake.slot.to_bytes(2, "big") + bytes((pake.form,))
            + pake.share)


def pickup(call, slot, form, material, locker_id, random_bytes):
    """A whole pickup over call(request frame) -> answer frame, for scripts and tests.

    Returns (answer, pake): the PICKUP_START answer when it was refused or its cB did not
    verify (then pake.key is None and nothing more was sent), else the PICKUP_FINISH answer."""
    pake = RecipientPake(slot, form, material, locker_id, random_bytes)
    answer = call(start_frame(pake))
    if answer[2] != 0 or len(answer) != 19 + pickup_code.SHARE_LEN + pickup_code.CONFIRM_LEN:
        return answer, pake
    try:
        confirm_a = pake.finish(answer[19:19 + pickup_code.SHARE_LEN],
                                answer[19 + pickup_code.SHARE_LEN:])
    except CodeMismatch:
        return answer, pake
    return call(bytes((1, 0x22)) + confirm_a), pake
