// Links move fragments between the phone and the locker (docs/protocol.md section 2):
//  - BleLink: Web Bluetooth, GATT service 6c6b7201-...: fragments are written into the
//    request characteristic and arrive as notifications of the response characteristic.
//  - RelayLink: a WebSocket to `lockerctl sim web`, which relays to the simulator's socket;
//    each WebSocket binary message is one fragment; the relay's first message is one byte,
//    the link payload the simulator agreed.
// Both: {linkPayload, send(fragment) -> Promise, onFragment, onClose, close()}.
import { DEFAULT_LINK_PAYLOAD } from "./fragment.js";

export const SERVICE_UUID = "6c6b7201-6f66-4c69-6e65-4c6f636b6572";
export const REQUEST_UUID = "6c6b7202-6f66-4c69-6e65-4c6f636b6572";
export const RESPONSE_UUID = "6c6b7203-6f66-4c69-6e65-4c6f636b6572";

export const hasWebBluetooth = () =>
  typeof navigator !== "undefined" && !!navigator.bluetooth;

/** The browser's device chooser, showing only lockers (by service UUID). Call it from a tap. */
export async function chooseLocker() {
  return navigator.bluetooth.requestDevice({ filters: [{ services: [SERVICE_UUID] }] });
}

export class BleLink {
  // Web Bluetooth does not tell the agreed ATT MTU: write fragments that fit the default
  // MTU (23 - 3 = 20 bytes), which every locker accepts.
  linkPayload = DEFAULT_LINK_PAYLOAD;

  constructor(device) {
    this.device = device;
    this.onFragment = null;
    this.onClose = null;
    this.closed = false;
    this._changed = (e) => {
      const v = e.target.value;
      if (this.onFragment) this.onFragment(new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice());
    };
    this._disconnected = () => this._lost();
  }

  async open() {
    this.device.addEventListener("gattserverdisconnected", this._disconnected);
    const server = await this.device.gatt.connect();
    const service = await server.getPrimaryService(SERVICE_UUID);
    this.request = await service.getCharacteristic(REQUEST_UUID);
    this.response = await service.getCharacteristic(RESPONSE_UUID);
    this.response.addEventListener("characteristicvaluechanged", this._changed);
    await this.response.startNotifications();
    return this;
  }

  async send(fragment) {
    if (this.closed) throw new Error("link closed");
    await this.request.writeValueWithResponse(fragment);
  }

  _detach() {
    this.device.removeEventListener("gattserverdisconnected", this._disconnected);
    if (this.response) this.response.removeEventListener("characteristicvaluechanged", this._changed);
  }

  _lost() {
    if (this.closed) return;
    this.closed = true;
    this._detach();
    if (this.onClose) this.onClose();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._detach();
    if (this.device.gatt.connected) this.device.gatt.disconnect();
  }
}

export class RelayLink {
  constructor(url) {
    this.url = url;
    this.linkPayload = DEFAULT_LINK_PAYLOAD;
    this.onFragment = null;
    this.onClose = null;
    this.closed = false;
  }

  open(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let ready = false;
      const timer = setTimeout(() => { ws.close(); reject(new Error("the relay did not answer")); }, timeoutMs);
      ws.onmessage = (e) => {
        const data = new Uint8Array(e.data);
        if (!ready) {
          ready = true;
          clearTimeout(timer);
          this.linkPayload = data[0];
          resolve(this);
        } else if (this.onFragment) {
          this.onFragment(data);
        }
      };
      ws.onerror = () => { if (!ready) { clearTimeout(timer); reject(new Error("cannot reach the relay")); } };
      ws.onclose = () => {
        if (!ready) { clearTimeout(timer); reject(new Error("the relay closed the connection")); }
        if (!this.closed) { this.closed = true; if (this.onClose) this.onClose(); }
      };
    });
  }

  async send(fragment) {
    if (this.closed) throw new Error("link closed");
    this.ws.send(fragment);
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
