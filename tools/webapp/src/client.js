// The phone's side of a connection: frames over a link with the locker's credits
// (docs/protocol.md section 2.1), challenges carried from answer to answer (section 4). A link moves fragments: {linkPayload, send(fragment),
// onFragment = fn, onClose = fn, close()} (links.js: Web Bluetooth, WebSocket relay).
import { split, Reassembler, FragmentError } from "./fragment.js";
import {
  AnswerNotAuthentic, E_CHALLENGE, HELLO, LockerRefused, MAX_RESPONSE, OK, ProtocolError,
  RESPONSE_BIT, checkAnswerTag, parseError, parseHello, parseResponse, request,
} from "./frames.js";

export class LinkLost extends Error {}

/** The locker grants a credit after every WINDOW fragments of a request (section 2.1). */
export const WINDOW = 8;
/** A credit: the 1-byte fragment 0xFF (FIRST|LAST with sequence 63, never a data fragment). */
export const isCredit = (f) => f.length === 1 && f[0] === 0xff;

export class LockerClient {
  constructor(link, { timeoutMs = 10000 } = {}) {
    this.link = link;
    this.timeoutMs = timeoutMs;
    this.challenge = null;
    this.hello = null;
    this.reasm = new Reassembler(MAX_RESPONSE);
    this.waiting = null; // {resolve, reject, timer}
    this.credits = 0; // credits received and not yet used
    this.creditWaiter = null; // resolve(true on a credit, false when the answer came instead)
    link.onFragment = (f) => this._onFragment(f);
    link.onClose = () => this._fail(new LinkLost("the connection to the locker dropped"));
  }

  _onFragment(fragment) {
    if (isCredit(fragment)) {
      if (this.creditWaiter) this._wake(true);
      else this.credits++;
      return; // a credit where an answer is expected is ignored
    }
    let message;
    try {
      message = this.reasm.feed(fragment);
    } catch (e) {
      if (e instanceof FragmentError) return this._fail(new ProtocolError("garbled answer: " + e.message));
      throw e;
    }
    if (message && this.waiting) {
      this._wake(false); // an answer instead of a credit: stop sending, read it
      const w = this.waiting;
      this.waiting = null;
      clearTimeout(w.timer);
      w.resolve(message);
    }
  }

  _wake(credit) {
    const w = this.creditWaiter;
    this.creditWaiter = null;
    if (w) w(credit);
  }

  _nextCredit() {
    if (!this.waiting) return Promise.resolve(false); // answered (or failed) meanwhile
    if (this.credits > 0) {
      this.credits--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => { this.creditWaiter = resolve; });
  }

  _fail(err) {
    this._wake(false);
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
      const timer = setTimeout(() => this._fail(new LinkLost("the locker did not answer in time")),
        this.timeoutMs);
      this.waiting = { resolve, reject, timer };
    });
    this.credits = 0;
    try {
      const fragments = split(frame, this.link.linkPayload);
      for (let i = 0; i < fragments.length && this.waiting; i++) {
        // fragments 1-8, wait for the credit, 9-16, ...; an answer instead ends the sending
        if (i > 0 && i % WINDOW === 0 && !(await this._nextCredit())) break;
        if (this.waiting) await this.link.send(fragments[i]);
      }
    } catch (e) {
      this._fail(new LinkLost("could not send to the locker: " + (e.message || e)));
    }
    return answer;
  }

  /** Send a frame of reqType; return the answer body or throw LockerRefused. auth =
   * {key, challenge} for a signed request: the answer tag is checked (AnswerNotAuthentic)
   * before anything in the answer is used, and removed from the body. */
  async call(reqType, frame, auth = null) {
    const answer = await this.exchange(frame);
    const r = parseResponse(answer);
    this.challenge = r.challenge;
    let verified = false;
    if (auth) ({ body: r.body, verified } = checkAnswerTag(answer, r.status, r.body, auth.key,
      auth.challenge));
    if (r.status !== OK) {
      const { retryAfter, message } = parseError(r.body);
      throw new LockerRefused(r.status, message, retryAfter, verified);
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
   * challenge that the refusal carries. key: the request is signed with it, so its answer
   * is tagged with it over that challenge (section 4). */
  async fresh(reqType, build, key = null) {
    for (let attempt = 0; ; attempt++) {
      if (!this.challenge) await this.sayHello();
      const challenge = this.challenge;
      this.challenge = null;
      try {
        return await this.call(reqType, build(challenge), key ? { key, challenge } : null);
      } catch (e) {
        if (e instanceof AnswerNotAuthentic) throw e;
        if (!(e instanceof LockerRefused && e.status === E_CHALLENGE) || attempt) throw e;
      }
    }
  }

  close() {
    this.link.close();
  }
}
