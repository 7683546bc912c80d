// The pickup code (docs/protocol.md section 8): generated on the courier's phone from the
// DEPOSIT answer; parsed from what the recipient typed or scanned.
import { ascii, concat, u8, u16, u32, unhex, hex } from "./bytes.js";
import { hmacSha256 } from "./frames.js";

export const SLOT_DIGITS = 3;
export const SECRET_DIGITS = 10;
export const TOKEN_BYTES = 16;
export const HUMAN = 0;
export const MACHINE = 1;
const LABEL = ascii("LKR1/pickup");

export class CodeFormatError extends Error {}

/** bucket = deposit_ts div bucket_s */
export const bucketOf = (ts, bucketS) => Math.floor(ts / bucketS);

/** mac(form) = HMAC(courier_key, "LKR1/pickup" | form | locker_id | slot | generation | bucket) */
export function codeMac(courierKey, form, lockerId, slot, generation, bucket) {
  return hmacSha256(courierKey,
    concat(LABEL, u8(form), lockerId, u16(slot), u32(generation), u32(bucket)));
}

/** 10 decimal digits as a string: first 8 bytes of mac(0) as u64, mod 10^10. */
export function humanDigits(mac) {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(mac[i]);
  return (v % 10_000_000_000n).toString().padStart(SECRET_DIGITS, "0");
}

const slotText = (slot) => String(slot).padStart(SLOT_DIGITS, "0");

/** `SSS-DDDDD-DDDDD` */
export function humanCode(courierKey, lockerId, slot, generation, depositTs, bucketS) {
  const d = humanDigits(codeMac(courierKey, HUMAN, lockerId, slot, generation,
    bucketOf(depositTs, bucketS)));
  return `${slotText(slot)}-${d.slice(0, 5)}-${d.slice(5)}`;
}

/** `SSS.` + 32 lowercase hex digits */
export function machineCode(courierKey, lockerId, slot, generation, depositTs, bucketS) {
  const mac = codeMac(courierKey, MACHINE, lockerId, slot, generation,
    bucketOf(depositTs, bucketS));
  return `${slotText(slot)}.${hex(mac.subarray(0, TOKEN_BYTES))}`;
}

function slotOf(text) {
  if (!/^[0-9]+$/.test(text)) throw new CodeFormatError("the slot part must be digits");
  const slot = parseInt(text, 10);
  if (slot < 1 || slot > 999) throw new CodeFormatError("slot out of range (1..999)");
  return slot;
}

/** What a user typed or scanned -> {slot, form, material}. Throws CodeFormatError. */
export function parseCode(text) {
  const t = String(text).trim();
  if (t.includes(".")) {
    const [s, tok, ...rest] = t.split(".");
    if (rest.length || !/^[0-9a-fA-F]{32}$/.test(tok)) {
      throw new CodeFormatError("a machine code needs 32 hex digits after the dot");
    }
    return { slot: slotOf(s), form: MACHINE, material: unhex(tok) };
  }
  const digits = t.replace(/[\s-]/g, "");
  if (!/^[0-9]{13}$/.test(digits)) {
    throw new CodeFormatError("a pickup code has 13 digits, like 003-06931-09185");
  }
  return { slot: slotOf(digits.slice(0, 3)), form: HUMAN, material: ascii(digits.slice(3)) };
}

/** The recipient's link: the machine form in the URL fragment (never sent to a server). */
export function pickupLink(baseUrl, machine) {
  return baseUrl.split("#")[0] + "#code=" + machine;
}

/** The code in a location.hash like "#code=003.6ee9..." (or "#003.6ee9..."), else null. */
export function codeFromFragment(hash) {
  const h = String(hash || "").replace(/^#/, "");
  if (!h) return null;
  const params = new URLSearchParams(h);
  return params.get("code") || (h.includes("=") ? null : decodeURIComponent(h));
}
