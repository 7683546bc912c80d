// The phone's side of a connection: frames over a link, challenges carried from answer to
// answer (docs/protocol.md section 4). A link moves fragments: {linkPayload, send(fragment),
// onFragment = fn, onClose = fn, close()} (links.js: Web Bluetooth, WebSocket relay).
import { split, Reassembler, FragmentError } from "./fragment.js";
import {
  E_CHALLENGE, HELLO, LockerRefused, MAX_RESPONSE, OK, ProtocolError, RESPONSE_BIT,
  parseError, parseHello, parseResponse, request,
} from "./frames.js";

export class LinkLost extends Error {}

export class LockerClient {
  constructor(link, { timeoutMs = 10000 } = {}) {
    this.link = link;
    this.timeoutMs = timeoutMs;
    this.challenge = null;
    this.hello = null;
    this.reasm = new Reassembler(MAX_RESPONSE);
    this.waiting = null; // {resolve, reject, timer}
    link.onFragment = (f) => this._onFragment(f);
    link.onClose = () => this._fail(new LinkLost("the connection to the locker dropped"));
  }

  _onFragment(fragment) {
    let message;
    try {
      message = this.reasm.feed(fragment);
    } catch (e) {
      if (e instanceof FragmentError) return this._fail(new ProtocolError("garbled answer: " + e.message));
      throw e;
    }
    if (message && this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      clearTimeout(w.timer);
      w.resolve(message);
    }
  }

  _fail(err) {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  /** Send one frame, return the locker's whole answer frame. */
  async exchange(frame) {
    if (this.waiting) throw new Error("one request at a time");
    this.reasm = new Reassembler(MAX_RESPONSE);
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new LinkLost("the locker did not answer in time"));
      }, this.timeoutMs);
      this.waiting = { resolve, reject, timer };
    });
    try {
      for (const f of split(frame, this.link.linkPayload)) await this.link.send(f);
    } catch (e) {
      this._fail(new LinkLost("could not send to the locker: " + (e.message || e)));
    }
    return answer;
  }

  /** Send a frame of reqType; return the answer body or throw LockerRefused. */
  async call(reqType, frame) {
    const r = parseResponse(await this.exchange(frame));
    this.challenge = r.challenge;
    if (r.status !== OK) {
      const { retryAfter, message } = parseError(r.body);
      throw new LockerRefused(r.status, message, retryAfter);
    }
    if (r.type !== (reqType | RESPONSE_BIT)) {
      throw new ProtocolError(`answer of type 0x${r.type.toString(16)} to 0x${reqType.toString(16)}`);
    }
    return r.body;
  }

  async sayHello() {
    this.hello = parseHello(await this.call(HELLO, request(HELLO)));
    return this.hello;
  }

  /** build(challenge) -> frame; on E_CHALLENGE (nothing evaluated) once more with the
   * challenge that the refusal carries. */
  async fresh(reqType, build) {
    for (let attempt = 0; ; attempt++) {
      if (!this.challenge) await this.sayHello();
      const challenge = this.challenge;
      this.challenge = null;
      try {
        return await this.call(reqType, build(challenge));
      } catch (e) {
        if (!(e instanceof LockerRefused && e.status === E_CHALLENGE) || attempt) throw e;
      }
    }
  }

  close() {
    this.link.close();
  }
}
