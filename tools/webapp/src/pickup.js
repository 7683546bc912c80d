// PICKUP (docs/protocol.md sections 5.5 and 8): the recipient proves knowledge of the code
// over the connection's challenge; the code itself never goes over the air. ONE module so
// that a change of the pickup exchange (a PAKE) touches only this file.
import { ascii, concat, readU16, readU32, u8, u16 } from "./bytes.js";
import { PICKUP, ProtocolError, hmacSha256, request, sha256 } from "./frames.js";
import { parseCode } from "./pickupcode.js";

const PROOF_KEY_LABEL = ascii("LKR1/proof-key");
const PROOF_LABEL = ascii("LKR1/proof");

/** proof_key = SHA256("LKR1/proof-key" | form | material) */
export function proofKey(form, material) {
  return sha256(concat(PROOF_KEY_LABEL, u8(form), material));
}

/** proof = HMAC(proof_key, "LKR1/proof" | challenge | slot)[:16] */
export function proof(form, material, challenge, slot) {
  return hmacSha256(proofKey(form, material), concat(PROOF_LABEL, challenge, u16(slot)))
    .subarray(0, 16);
}

/** PICKUP frame for a code (typed or scanned) and the challenge of the last answer. */
export function pickupRequest(code, challenge) {
  const { slot, form, material } = typeof code === "string" ? parseCode(code) : code;
  return request(PICKUP, concat(u16(slot), u8(form), proof(form, material, challenge, slot)));
}

/** PICKUP answer body -> {slot, size, depositTs}. */
export function parsePickupAnswer(body) {
  if (body.length !== 7) throw new ProtocolError("PICKUP answer must be 7 bytes");
  return { slot: readU16(body, 0), size: body[2], depositTs: readU32(body, 3) };
}

/** Run the pickup over a LockerClient: returns {slot, size, depositTs}; throws
 * LockerRefused (E_CODE, E_LOCKED_OUT, E_EXPIRED, E_VALUE...) or CodeFormatError. */
export async function pickup(client, code) {
  const parsed = parseCode(code);
  const body = await client.fresh(PICKUP, (challenge) => pickupRequest(parsed, challenge));
  return parsePickupAnswer(body);
}
