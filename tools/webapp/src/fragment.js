// Fragments (docs/protocol.md section 2): one per BLE write / notification.
// Header: bit 7 FIRST (0x80), bit 6 LAST (0x40), bits 0-5 sequence number mod 64.

export const FIRST = 0x80;
export const LAST = 0x40;
export const SEQ_MASK = 0x3f;
export const DEFAULT_LINK_PAYLOAD = 20; // ATT MTU 23 - 3
export const MAX_LINK_PAYLOAD = 244; // ESP32 ATT MTU 247 - 3

export class FragmentError extends Error {}

/** Split a message into fragments of at most linkPayload bytes (header included). */
export function split(message, linkPayload = DEFAULT_LINK_PAYLOAD) {
  if (!(linkPayload >= 2 && linkPayload <= 512)) throw new RangeError("link payload 2..512");
  const room = linkPayload - 1;
  const out = [];
  let seq = 0;
  let pos = 0;
  do {
    const piece = message.subarray(pos, pos + room);
    pos += piece.length;
    let header = seq & SEQ_MASK;
    if (out.length === 0) header |= FIRST;
    if (pos >= message.length) header |= LAST;
    const f = new Uint8Array(1 + piece.length);
    f[0] = header;
    f.set(piece, 1);
    out.push(f);
    seq++;
  } while (pos < message.length);
  return out;
}

/** Receiving side: feed fragments; feed() returns the whole message after its LAST fragment,
 * else null. A fault (unexpected sequence, non-FIRST with nothing open, empty fragment, too
 * long) drops the partial message and throws FragmentError. */
export class Reassembler {
  constructor(maxSize) {
    this.maxSize = maxSize;
    this.parts = null;
    this.size = 0;
    this.seq = 0;
  }

  feed(fragment) {
    if (fragment.length === 0) return this._fail("empty fragment");
    const h = fragment[0];
    if (h & FIRST) {
      this.parts = [];
      this.size = 0;
      this.seq = 0;
    } else if (this.parts === null) {
      return this._fail("fragment without FIRST and no message open");
    }
    if ((h & SEQ_MASK) !== this.seq) return this._fail("fragment out of sequence");
    const piece = fragment.subarray(1);
    this.size += piece.length;
    if (this.size > this.maxSize) return this._fail("message longer than " + this.maxSize);
    this.parts.push(piece);
    this.seq = (this.seq + 1) & SEQ_MASK;
    if (!(h & LAST)) return null;
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    this.parts = null;
    return out;
  }

  _fail(why) {
    this.parts = null;
    throw new FragmentError(why);
  }
}
