// Request and response frames, challenges and tags (docs/protocol.md sections 3, 4, 7).
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concat, readU16, readU32 } from "./bytes.js";

export const VERSION = 1;
export const CHALLENGE_LEN = 16;
export const TAG_LEN = 16;
export const REQ_ID_LEN = 8;
export const LOCKER_ID_LEN = 8;
export const MAX_REQUEST = 256;
export const MAX_RESPONSE = 1024;

export const HELLO = 0x01;
export const DEPOSIT = 0x10;
export const CANCEL = 0x11;
export const PICKUP = 0x20;
export const RESPONSE_BIT = 0x80;

export const OK = 0;
export const E_CHALLENGE = 5;
export const E_CODE = 9;
export const E_LOCKED_OUT = 10;
export const E_EXPIRED = 11;

/** Status code -> name (section 7; the same names as tools/lockerctl/client.py). */
export const STATUS_NAMES = {
  0: "ok", 1: "unsupported-version", 2: "unknown-type", 3: "bad-length", 4: "bad-mac",
  5: "stale-challenge", 6: "credential-refused", 7: "no-free-slot", 8: "wrong-state",
  9: "wrong-code", 10: "locked-out", 11: "code-expired", 12: "not-permitted",
  13: "already-done", 14: "too-large", 15: "internal-error", 16: "replayed", 17: "bad-value",
  18: "out-of-service", 19: "busy",
};

export class ProtocolError extends Error {}

/** The locker answered with a status other than OK. */
export class LockerRefused extends Error {
  constructor(status, message, retryAfter = 0, verified = false) {
    super(`${STATUS_NAMES[status] ?? status}: ${message}`);
    this.status = status;
    this.name_ = STATUS_NAMES[status] ?? String(status);
    this.lockerMessage = message;
    this.retryAfter = retryAfter;
    this.verified = verified; // a tagged refusal (section 4); untagged ones may be forged
  }
}

export const hmacSha256 = (key, msg) => hmac(sha256, key, msg);

/** The answer to a signed request was altered (or made up) on the way: nothing in it may be
 * used (section 4, "Authenticated answers"). */
export class AnswerNotAuthentic extends ProtocolError {}

/** Check the answer tag of an answer to a signed request (section 4):
 * tag = HMAC(credential_key, challenge the request answered | answer without tag)[:16].
 * An OK answer must carry it; a refusal may (after the request was authenticated).
 * Returns {body (tag removed), verified}; throws AnswerNotAuthentic. */
export function checkAnswerTag(frame, status, body, key, challenge) {
  let tagged = true;
  if (status !== OK) {
    const n = body.length >= 5 ? body[4] : -1;
    if (body.length === 5 + n) tagged = false;
    else if (body.length !== 5 + n + TAG_LEN) throw new AnswerNotAuthentic("malformed refusal");
  } else if (body.length < TAG_LEN) {
    throw new AnswerNotAuthentic("answer without its tag");
  }
  if (!tagged) return { body, verified: false };
  const cut = frame.length - TAG_LEN;
  const want = hmacSha256(key, concat(challenge, frame.subarray(0, cut))).subarray(0, TAG_LEN);
  let diff = 0;
  for (let i = 0; i < TAG_LEN; i++) diff |= want[i] ^ frame[cut + i];
  if (diff) throw new AnswerNotAuthentic("answer tag does not verify: altered on the way");
  return { body: body.subarray(0, body.length - TAG_LEN), verified: true };
}
export { sha256 };

/** version | type | body (no tag). */
export function request(type, body = new Uint8Array(0)) {
  return concat(Uint8Array.of(VERSION, type), body);
}

/** Append tag = HMAC(key, challenge | unsigned)[:16] (section 4). */
export function sign(unsigned, key, challenge) {
  return concat(unsigned, hmacSha256(key, concat(challenge, unsigned)).subarray(0, TAG_LEN));
}

/** Response -> {type, status, challenge, body}. Throws ProtocolError on a short/odd frame. */
export function parseResponse(frame) {
  if (frame.length < 3 + CHALLENGE_LEN) throw new ProtocolError("response too short");
  if (frame[0] !== VERSION) throw new ProtocolError("response of protocol version " + frame[0]);
  return {
    type: frame[1],
    status: frame[2],
    challenge: frame.slice(3, 3 + CHALLENGE_LEN),
    body: frame.slice(3 + CHALLENGE_LEN),
  };
}

/** Error body -> {retryAfter (s), message}. */
export function parseError(body) {
  if (body.length < 5) throw new ProtocolError("error body too short");
  const k = body[4];
  if (body.length < 5 + k) throw new ProtocolError("error message truncated");
  return {
    retryAfter: readU32(body, 0),
    message: new TextDecoder("utf-8", { fatal: false }).decode(body.subarray(5, 5 + k)),
  };
}

/** HELLO answer body (section 5.1). */
export function parseHello(body) {
  if (body.length < 23) throw new ProtocolError("HELLO answer too short");
  return {
    lockerId: body.slice(0, 8),
    time: readU32(body, 8),
    slotCount: readU16(body, 12),
    maxRequest: readU16(body, 14),
    bucketS: readU16(body, 16),
    skewBuckets: body[18],
    ttlS: readU32(body, 19),
  };
}
