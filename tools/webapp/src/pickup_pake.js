// The pickup as a SPAKE2 run (RFC 9382, SPAKE2-P256-SHA256-HKDF-HMAC), docs/protocol.md
// sections 5.5 and 8 (PICKUP_START 0x21 / PICKUP_FINISH 0x22); the app imports it through
// pickup.js. The answer's shape is {slot, size, depositTs}; refusals are LockerRefused.
// P-256 from @noble/curves, hashes, HMAC and HKDF from @noble/hashes.
import { p256 } from "@noble/curves/nist.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { ascii, concat, equal, randomBytes, readU16, readU32, u8, u16, unhex } from "./bytes.js";
import {
  LockerRefused, OK, ProtocolError, RESPONSE_BIT, VERSION, hmacSha256, parseError,
  parseResponse, sha256,
} from "./frames.js";
import { parseCode } from "./pickupcode.js";

export const PICKUP_START = 0x21;
export const PICKUP_FINISH = 0x22;
const E_EXPIRED = 11;
const E_DONE = 13;             // parcel already gone (protocol.md section 4)
const E_OUT_OF_SERVICE = 18;   // slot out of service
const E_BUSY = 19;             // PAKE pacing: wait retry_after s (0: under a second), resend
export const BUSY_RETRIES = 20; // as lockerctl's client (tools/lockerctl/client.py)
// The longest busy wait followed (s), as lockerctl's BUSY_MAX_WAIT_S: E_BUSY is not
// authenticated, and the locker's pacing asks for seconds; a longer wait ends the pickup.
export const BUSY_MAX_WAIT_S = 30;
const Point = p256.Point;
const n = Point.Fn.ORDER;
export const M = Point.fromHex("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f");
export const N = Point.fromHex("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49");
export const ID_A = ascii("LKR1/recipient");
const PW_LABEL = ascii("LKR1/pickup-pw");
const ANSWER_LABEL = ascii("LKR1/pickup-answer");

const toBig = (b) => b.reduce((v, x) => (v << 8n) | BigInt(x), 0n);
const toBytes32 = (v) => unhex(v.toString(16).padStart(64, "0"));
const le64 = (len) => { const o = new Uint8Array(8); new DataView(o.buffer).setUint32(0, len, true); return o; };

/** pw = form | slot u16 | material */
export const password = (slot, form, material) => concat(u8(form), u16(slot), material);

/** w = OS2IP(SHA256(label|01|pw) | SHA256(label|02|pw)) mod n */
export function passwordScalar(pw) {
  return toBig(concat(sha256(concat(PW_LABEL, u8(1), pw)), sha256(concat(PW_LABEL, u8(2), pw)))) % n;
}

export const aad = (slot, form) => concat(ascii("LKR1/pickup"), u16(slot), u8(form));

/** x uniform in [1, n): 40 random bytes mod n. */
export function randomScalar(bytes = randomBytes) {
  for (;;) {
    const x = toBig(bytes(40)) % n;
    if (x !== 0n) return x;
  }
}

/** Step 1: pA = x*G + w*M (65 bytes, SEC1 uncompressed). */
export function share(x, w) {
  return Point.BASE.multiply(x).add(M.multiply(w)).toBytes(false);
}

/** Steps 3 and 5: TT, Ke, the confirmation MACs for the phone's x and the locker's pB. */
export function keys({ x, w, pA, pB, idB, aadBytes }) {
  const K = Point.fromBytes(pB).subtract(N.multiply(w)).multiply(x).toBytes(false);
  const part = (b) => concat(le64(b.length), b);
  const TT = concat(part(ID_A), part(idB), part(pA), part(pB), part(K), part(toBytes32(w)));
  const h = sha256(TT);
  const Ke = h.slice(0, 16), Ka = h.slice(16);
  const kc = hkdf(sha256, Ka, new Uint8Array(32), concat(ascii("ConfirmationKeys"), aadBytes), 32);
  const KcA = kc.slice(0, 16), KcB = kc.slice(16);
  return { K, TT, Ke, KcA, KcB, cA: hmacSha256(KcA, TT), cB: hmacSha256(KcB, TT) };
}

/** The locker's side, for tests: pB = y*G + w*N and K = y*(pA - w*M). */
export const pointB = (y, w) => Point.BASE.multiply(y).add(N.multiply(w)).toBytes(false);
export const lockerK = (y, w, pA) => Point.fromBytes(pA).subtract(M.multiply(w)).multiply(y).toBytes(false);

export function startFrame(slot, form, pA) {
  return concat(Uint8Array.of(VERSION, PICKUP_START), u16(slot), u8(form), pA);
}

export function finishFrame(cA) {
  return concat(Uint8Array.of(VERSION, PICKUP_FINISH), cA);
}

/** HMAC(Ke, "LKR1/pickup-answer" | version | type | status | body)[:16] */
export function answerMac(Ke, head, body) {
  return hmacSha256(Ke, concat(ANSWER_LABEL, head, body)).subarray(0, 16);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The whole pickup over a LockerClient (HELLO gives the locker id B). Returns {slot, size,
 * depositTs}; throws LockerRefused, or ProtocolError when the locker does not prove it knows
 * the code (cB) or an answer's MAC does not verify (a fake locker). A START refused as
 * busy (E_BUSY) is sent again, up to `retries` times. */
export async function pickup(client, code, { random = randomBytes, retries = BUSY_RETRIES } = {}) {
  const { slot, form, material } = typeof code === "string" ? parseCode(code) : code;
  if (!client.hello) await client.sayHello();
  const w = passwordScalar(password(slot, form, material));
  const x = randomScalar(random);
  const pA = share(x, w);
  let started;
  for (let attempt = 0; ; attempt++) {
    started = parseResponse(await client.exchange(startFrame(slot, form, pA)));
    client.challenge = started.challenge;    // every answer carries the next challenge
    if (started.status === OK) break;
    const e = parseError(started.body);
    // E_BUSY: the locker paced the PAKE (its CPU), nothing was evaluated or counted: the same
    // START again after the wait it names (a short backoff when it says "under a second")
    if (started.status !== E_BUSY || attempt >= retries || e.retryAfter > BUSY_MAX_WAIT_S) {
      throw new LockerRefused(started.status, e.message, e.retryAfter);
    }
    await sleep(e.retryAfter ? e.retryAfter * 1000 : 50 * (attempt + 1));
  }
  if (started.type !== (PICKUP_START | RESPONSE_BIT) || started.body.length !== 97) {
    throw new ProtocolError("PICKUP_START answer must be 97 bytes");
  }
  const pB = started.body.slice(0, 65);
  let k;
  try {
    k = keys({ x, w, pA, pB, idB: client.hello.lockerId, aadBytes: aad(slot, form) });
  } catch {
    throw new ProtocolError("the locker's share is not a P-256 point");
  }
  if (!equal(k.cB, started.body.slice(65))) {
    // wrong code, or not the real locker: stop here (the attempt was counted at START)
    throw new LockerRefused(9, "wrong pickup code", 0);
  }
  const raw = await client.exchange(finishFrame(k.cA));
  const done = parseResponse(raw);
  client.challenge = done.challenge;
  const head = raw.subarray(0, 3);
  if (done.status === OK) {
    if (done.body.length !== 23) throw new ProtocolError("PICKUP_FINISH answer must be 23 bytes");
    const seven = done.body.subarray(0, 7);
    if (!equal(answerMac(k.Ke, head, seven), done.body.subarray(7))) {
      throw new ProtocolError("the answer's MAC does not verify");
    }
    return { slot: readU16(seven, 0), size: seven[2], depositTs: readU32(seven, 3) };
  }
  const e = parseError(done.body);
  // Every answer that says what happened to the parcel is MACed with Ke (protocol.md 5.5);
  // only "wrong code" and "no pickup started" cannot be.
  if ([E_EXPIRED, E_OUT_OF_SERVICE, E_DONE].includes(done.status)) {
    const errLen = 5 + done.body[4];
    if (!equal(answerMac(k.Ke, head, done.body.subarray(0, errLen)), done.body.subarray(errLen, errLen + 16))) {
      throw new ProtocolError("the answer's MAC does not verify");
    }
  }
  throw new LockerRefused(done.status, e.message, e.retryAfter);
}
