// DEPOSIT and CANCEL (docs/protocol.md sections 5.2, 5.3): signed with the courier's
// credential key over the connection's challenge. ONE module so that a change of the deposit
// answer (a MAC over it) touches only this file.
import { concat, readU16, readU32, randomBytes, u8 } from "./bytes.js";
import { CANCEL, DEPOSIT, ProtocolError, REQ_ID_LEN, request, sign } from "./frames.js";
import { humanCode, machineCode } from "./pickupcode.js";

export const SIZES = { S: 1, M: 2, L: 3, XL: 4 };
export const SIZE_NAMES = { 1: "S", 2: "M", 3: "L", 4: "XL" };

export const newRequestId = () => randomBytes(REQ_ID_LEN);

export function depositRequest(cred, requestId, size, challenge) {
  if (requestId.length !== REQ_ID_LEN) throw new RangeError("request id is 8 bytes");
  if (!(size >= 1 && size <= 4)) throw new RangeError("size class is 1..4");
  return sign(request(DEPOSIT, concat(cred.block, requestId, u8(size))), cred.key, challenge);
}

export function cancelRequest(cred, requestId, challenge) {
  return sign(request(CANCEL, concat(cred.block, requestId)), cred.key, challenge);
}

/** DEPOSIT answer body (17 bytes, its tag already checked and removed): slot u16,
 * generation u32, deposit_ts u32, size u8, ttl u32, bucket_s u16. */
export function parseDepositAnswer(body) {
  if (body.length !== 17) throw new ProtocolError("DEPOSIT answer must be 17 bytes");
  return {
    slot: readU16(body, 0), generation: readU32(body, 2), depositTs: readU32(body, 6),
    size: body[10], ttlS: readU32(body, 11), bucketS: readU16(body, 15),
  };
}

/** Deposit over a LockerClient that has said HELLO. Same requestId after a dropped link =
 * same slot (idempotent on the locker). Returns the answer plus both forms of the code. */
export async function deposit(client, cred, size, requestId) {
  const body = await client.fresh(DEPOSIT,
    (challenge) => depositRequest(cred, requestId, size, challenge), cred.key);
  const a = parseDepositAnswer(body);
  const bucketS = a.bucketS; // from the authenticated answer, never from HELLO
  return {
    ...a,
    code: humanCode(cred.key, cred.lockerId, a.slot, a.generation, a.depositTs, bucketS),
    machineCode: machineCode(cred.key, cred.lockerId, a.slot, a.generation, a.depositTs,
      bucketS),
  };
}

/** Cancel the deposit with that request id: returns the slot that opened. */
export async function cancel(client, cred, requestId) {
  const body = await client.fresh(CANCEL, (challenge) => cancelRequest(cred, requestId, challenge),
    cred.key);
  if (body.length !== 2) throw new ProtocolError("CANCEL answer must be 2 bytes");
  return readU16(body, 0);
}
