// The courier's credential (docs/protocol.md section 6): the public block and the credential
// key the operator issued with it. Hand-over: the JSON file `lockerctl credential issue` writes
// (format "lockerctl-credential/1"), as a file, pasted text or the text of a QR code.
// ONE module so a change of the hand-over format touches only this file.
import { readU32, unhex, hex } from "./bytes.js";

export const FORMAT = "lockerctl-credential/1";
export const KIND_COURIER = 1;
export const KIND_TECHNICIAN = 2;

export class CredentialError extends Error {}

/** Credential block bytes -> {kind, flags, serial, issuedAt, notAfter, holder}. Throws
 * CredentialError on a block that does not parse (16..31 bytes, holder 1..16 bytes). */
export function decodeBlock(block) {
  if (block.length < 16) throw new CredentialError("credential block too short");
  const h = block[14];
  if (h < 1 || h > 16) throw new CredentialError("holder length must be 1..16");
  if (block.length !== 15 + h) throw new CredentialError("credential block length does not match");
  const c = {
    kind: block[0],
    flags: block[1],
    serial: readU32(block, 2),
    issuedAt: readU32(block, 6),
    notAfter: readU32(block, 10),
    holder: new TextDecoder().decode(block.subarray(15, 15 + h)),
  };
  if (c.kind !== KIND_COURIER && c.kind !== KIND_TECHNICIAN) {
    throw new CredentialError("unknown credential kind " + c.kind);
  }
  if (c.notAfter < c.issuedAt) throw new CredentialError("credential ends before it starts");
  return c;
}

/** Text of a credential file (or QR) -> {lockerId, block, key, info}. Throws CredentialError
 * with a message for the courier. */
export function parseCredential(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    throw new CredentialError("this is not a credential file (not JSON)");
  }
  if (!data || data.format !== FORMAT) {
    throw new CredentialError(`this is not a credential file (format must be ${FORMAT})`);
  }
  let lockerId, block, key;
  try {
    lockerId = unhex(data.locker_id);
    block = unhex(data.block);
    key = unhex(data.key);
  } catch {
    throw new CredentialError("credential file has a field that is not hex");
  }
  if (lockerId.length !== 8) throw new CredentialError("locker id must be 8 bytes");
  if (key.length !== 32) throw new CredentialError("credential key must be 32 bytes");
  const info = decodeBlock(block);
  return { lockerId, block, key, info };
}

/** The same JSON a credential file holds (to keep it on the phone). */
export function serializeCredential(cred) {
  const i = cred.info;
  return JSON.stringify({
    format: FORMAT, locker_id: hex(cred.lockerId),
    kind: i.kind === KIND_COURIER ? "courier" : "technician", holder: i.holder,
    serial: i.serial, issued_at: i.issuedAt, not_after: i.notAfter, flags: i.flags,
    block: hex(cred.block), key: hex(cred.key),
  });
}
