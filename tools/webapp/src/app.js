// The phone app: recipient (prove a pickup code, see which slot opened) and courier (load a
// credential, deposit, hand the pickup code on, retry after a dropped link, cancel).
import encodeQR from "@paulmillr/qr";
import { hex, unhex } from "./bytes.js";
import { LockerClient, LinkLost } from "./client.js";
import { LockerRefused, ProtocolError, STATUS_NAMES } from "./frames.js";
import { CodeFormatError, codeFromFragment, parseCode, pickupLink } from "./pickupcode.js";
import { pickup } from "./pickup.js";
import { cancel, deposit, newRequestId, SIZE_NAMES } from "./deposit.js";
import { CredentialError, parseCredential, serializeCredential } from "./credential.js";
import { BleLink, RelayLink, chooseLocker, hasWebBluetooth } from "./links.js";
import { scanQr, decodeQrFile } from "./scan.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["v-home", "v-recipient", "v-r-result", "v-courier", "v-c-dropped", "v-c-result",
  "v-c-message", "v-busy"];
const K_CRED = "locker.credential";
const K_PENDING = "locker.pending"; // a deposit sent but not (yet) answered: retry it
const K_LAST = "locker.last"; // the last deposit answered: cancel it

let relayUrl = null; // set when served by `lockerctl sim web`
let device = null; // the locker chosen in the Bluetooth chooser (reused for a retry)
let size = 1;

function show(id) {
  for (const v of VIEWS) $(v).hidden = v !== id;
  window.scrollTo(0, 0);
  document.body.dataset.view = id;
}

function busy(text) {
  $("busy-text").textContent = text;
  show("v-busy");
}

function setError(el, text) {
  $(el).textContent = text || "";
  $(el).hidden = !text;
}

const minutes = (s) => Math.max(1, Math.ceil(s / 60));
const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;

// ---- reaching the locker ---------------------------------------------------------------

/** A LockerClient that has said HELLO, over the relay or Bluetooth. Call from a tap. */
async function connect() {
  let link;
  if (relayUrl) {
    link = await new RelayLink(relayUrl).open();
  } else {
    if (!hasWebBluetooth()) throw new LinkLost("this browser has no Web Bluetooth");
    if (!device) device = await chooseLocker(); // throws NotFoundError if the user cancels
    busy("Connecting…");
    link = await new BleLink(device).open();
  }
  const client = new LockerClient(link);
  await client.sayHello();
  return client;
}

/** What a failure to reach the locker means to a person. */
function linkProblem(e) {
  if (e && e.name === "NotFoundError") return "No locker chosen. Tap again and pick the locker in front of you.";
  if (e && e.name === "SecurityError") return "The browser blocked Bluetooth: open this page over https (or localhost).";
  return "Could not reach the locker. Stand next to it, check that Bluetooth is on, and try again.";
}

// ---- recipient ---------------------------------------------------------------------------

function recipientView(code, fromLink) {
  $("r-code").value = code || "";
  $("r-from-link").hidden = !fromLink;
  setError("r-error", "");
  show("v-recipient");
}

function recipientResult(kind, title, detail, again = true) {
  $("rr-box").className = "result " + kind;
  $("rr-title").textContent = title;
  $("rr-detail").textContent = detail;
  $("rr-again").hidden = !again;
  show("v-r-result");
}

async function openMyLocker() {
  let parsed;
  try {
    parsed = parseCode($("r-code").value);
  } catch (e) {
    if (e instanceof CodeFormatError) return setError("r-error", "Check the code: " + e.message + ".");
    throw e;
  }
  let client;
  try {
    busy("Connecting…");
    client = await connect();
    busy("Checking your code…");
    const r = await pickup(client, $("r-code").value);
    history.replaceState(null, "", location.pathname + location.search); // the code is spent
    recipientResult("ok", `Slot ${r.slot} is open`, "Take your parcel and close the door.", false);
  } catch (e) {
    recipientRefusal(e, parsed.slot);
  } finally {
    if (client) client.close();
  }
}

function recipientRefusal(e, slot) {
  if (e instanceof LockerRefused) {
    const s = STATUS_NAMES[e.status];
    if (s === "wrong-code") {
      return recipientResult("bad", "Wrong code", "Check the code and type it again." +
        (e.retryAfter ? ` You can try again in ${plural(e.retryAfter, "second")}.` : ""));
    }
    if (s === "locked-out") {
      return recipientResult("wait", "Please wait", `Too many wrong codes were tried at this locker. ` +
        `Wait ${plural(minutes(e.retryAfter), "minute")}, then try again.`);
    }
    if (s === "code-expired") {
      return recipientResult("bad", "Code expired", "This code is too old. Ask the courier or " +
        "the sender: the parcel goes back to the courier.", false);
    }
    if (s === "already-done") {
      return recipientResult("bad", "Already collected", "The parcel for this code has already " +
        "left the locker. If you did not take it, contact the sender.", false);
    }
    if (s === "bad-value") {
      return recipientResult("bad", "Wrong code", `This locker has no slot ${slot}: check the code, ` +
        "and that you are at the right locker.");
    }
    if (s === "busy") {
      return recipientResult("wait", "Locker busy", "The locker is busy with other pickups. " +
        "Try again in a minute.");
    }
    return recipientResult("bad", "Not opened", `The locker refused (${s}). Try again; if it ` +
      "happens again, contact the sender.");
  }
  recipientResult("wait", "No connection", linkProblem(e));
}

// ---- courier: credential -----------------------------------------------------------------

function loadCred() {
  try {
    const t = localStorage.getItem(K_CRED);
    return t ? parseCredential(t) : null;
  } catch {
    return null;
  }
}

function useCredText(text) {
  try {
    const cred = parseCredential(text.trim());
    localStorage.setItem(K_CRED, serializeCredential(cred));
    setError("c-cred-error", "");
    courierView();
  } catch (e) {
    if (!(e instanceof CredentialError)) throw e;
    setError("c-cred-error", "That is not a usable credential: " + e.message + ".");
  }
}

async function credFromFile(file) {
  if (!file) return;
  if (file.type.startsWith("image/")) {
    try {
      useCredText(await decodeQrFile(file));
    } catch {
      setError("c-cred-error", "No QR code found in that picture.");
    }
  } else {
    useCredText(await file.text());
  }
}

function courierView() {
  const cred = loadCred();
  $("c-nocred").hidden = !!cred;
  $("c-hascred").hidden = !cred;
  setError("c-error", "");
  if (cred) {
    const until = new Date(cred.info.notAfter * 1000);
    $("c-who").textContent = `${cred.info.holder} · locker ${hex(cred.lockerId).toUpperCase()} · ` +
      `valid until ${until.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    selectSize(size);
  }
  show("v-courier");
}

function selectSize(n) {
  size = n;
  for (const b of document.querySelectorAll(".size")) {
    b.setAttribute("aria-checked", String(Number(b.dataset.size) === n));
  }
}

// ---- courier: deposit, retry, cancel -------------------------------------------------------

function courierMessage(kind, title, detail) {
  $("cm-box").className = "result " + kind;
  $("cm-title").textContent = title;
  $("cm-detail").textContent = detail;
  show("v-c-message");
}

function courierRefusal(e, what) {
  const s = STATUS_NAMES[e.status];
  const text = {
    "no-free-slot": `No free slot of size ${SIZE_NAMES[size]} or larger. Choose another size or another locker.`,
    "credential-refused": "Your credential has expired or was revoked. Ask your operator for a new one.",
    "bad-mac": "The locker does not accept this credential (wrong key or wrong locker).",
    "not-permitted": "This credential may not do that.",
    "already-done": "That deposit is already finished (collected, cancelled or reclaimed).",
    "wrong-state": "There is no such deposit of yours at this locker.",
  }[s] || `The locker refused (${s}): ${e.lockerMessage}`;
  courierMessage("bad", `${what} refused`, text);
}

async function courierConnect(cred) {
  busy("Connecting…");
  const client = await connect();
  if (hex(client.hello.lockerId) !== hex(cred.lockerId)) {
    client.close();
    throw new CredentialError(`this credential is for locker ${hex(cred.lockerId).toUpperCase()}, ` +
      `but this is locker ${hex(client.hello.lockerId).toUpperCase()}`);
  }
  return client;
}

async function doDeposit(pending) {
  const cred = loadCred();
  if (!cred) return courierView();
  // The request id is saved BEFORE it is sent: after a dropped link (or a closed tab) the retry
  // sends the same id, and the locker answers with the same slot instead of a second one.
  localStorage.setItem(K_PENDING, JSON.stringify(pending));
  let client;
  try {
    client = await courierConnect(cred);
    busy("Opening a slot…");
    const d = await deposit(client, cred, pending.size, unhex(pending.requestId));
    localStorage.removeItem(K_PENDING);
    const last = { requestId: pending.requestId, slot: d.slot, code: d.code, machineCode: d.machineCode };
    localStorage.setItem(K_LAST, JSON.stringify(last));
    depositResult(last);
  } catch (e) {
    if (e instanceof LockerRefused) {
      if (STATUS_NAMES[e.status] !== "internal-error") localStorage.removeItem(K_PENDING);
      courierRefusal(e, "Deposit");
    } else if (e instanceof CredentialError) {
      localStorage.removeItem(K_PENDING);
      courierMessage("bad", "Wrong locker", e.message[0].toUpperCase() + e.message.slice(1) + ".");
    } else if (e instanceof LinkLost || e instanceof ProtocolError || (e && e.name === "NetworkError")) {
      show("v-c-dropped");
    } else if (e && e.name === "NotFoundError") {
      localStorage.removeItem(K_PENDING);
      courierMessage("wait", "No locker chosen", linkProblem(e));
    } else {
      show("v-c-dropped");
    }
  } finally {
    if (client) client.close();
  }
}

function depositResult(last) {
  $("cr-title").textContent = `Slot ${last.slot} is open`;
  $("cr-code").textContent = last.code;
  const link = pickupLink(location.href, last.machineCode);
  $("cr-link").value = link;
  $("cr-qr").innerHTML = encodeQR(link, "svg", { ecc: "medium", border: 2 });
  $("cr-share").hidden = !navigator.share;
  show("v-c-result");
}

async function doCancel(requestId) {
  const cred = loadCred();
  if (!cred || !requestId) return courierView();
  let client;
  try {
    client = await courierConnect(cred);
    busy("Cancelling…");
    const slot = await cancel(client, cred, unhex(requestId));
    localStorage.removeItem(K_PENDING);
    localStorage.removeItem(K_LAST);
    courierMessage("ok", `Slot ${slot} is open`, "Deposit cancelled: take the parcel out and close the door.");
  } catch (e) {
    if (e instanceof LockerRefused) {
      const s = STATUS_NAMES[e.status];
      if (s === "wrong-state" || s === "already-done") localStorage.removeItem(K_PENDING);
      courierRefusal(e, "Cancel");
    } else if (e instanceof CredentialError) {
      courierMessage("bad", "Wrong locker", e.message);
    } else {
      courierMessage("wait", "No connection", linkProblem(e));
    }
  } finally {
    if (client) client.close();
  }
}

const pendingOf = (k) => {
  try {
    return JSON.parse(localStorage.getItem(k) || "null");
  } catch {
    return null;
  }
};

// ---- wiring --------------------------------------------------------------------------------

function guard(fn) {
  return (...a) => Promise.resolve(fn(...a)).catch((e) => {
    console.error(e);
    courierMessage("bad", "Something went wrong", "Please try again. (" + (e && e.message) + ")");
  });
}

async function findRelay() {
  try {
    const r = await fetch("relay.json", { cache: "no-store" });
    if (!r.ok) return null;
    const j = await r.json();
    if (!j.relay) return null;
    const u = new URL(j.relay, location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  } catch {
    return null;
  }
}

async function main() {
  relayUrl = await findRelay();
  $("via").textContent = relayUrl ? "via simulator relay" : hasWebBluetooth() ? "via Bluetooth" : "";
  $("no-ble").hidden = !!relayUrl || hasWebBluetooth();

  $("nav-home").onclick = () => show("v-home");
  $("go-recipient").onclick = () => recipientView("", false);
  $("go-courier").onclick = () => {
    const p = pendingOf(K_PENDING);
    if (p && loadCred()) show("v-c-dropped");
    else courierView();
  };
  $("r-open").onclick = guard(openMyLocker);
  $("r-code").addEventListener("keydown", (e) => { if (e.key === "Enter") openMyLocker(); });
  $("r-scan").onclick = guard(async () => {
    const t = await scanQr();
    if (t) recipientView(codeFromFragment(t.includes("#") ? t.slice(t.indexOf("#")) : t) || t, true);
  });
  $("rr-again").onclick = () => recipientView($("r-code").value, false);
  $("rr-done").onclick = () => show("v-home");

  $("c-file").onchange = guard((e) => credFromFile(e.target.files[0]));
  $("c-paste").onclick = () => useCredText($("c-text").value);
  $("c-scan").onclick = guard(async () => { const t = await scanQr(); if (t) useCredText(t); });
  $("c-forget").onclick = () => { localStorage.removeItem(K_CRED); courierView(); };
  for (const b of document.querySelectorAll(".size")) b.onclick = () => selectSize(Number(b.dataset.size));
  $("c-deposit").onclick = guard(() => doDeposit({ requestId: hex(newRequestId()), size }));
  $("cd-retry").onclick = guard(() => doDeposit(pendingOf(K_PENDING)));
  $("cd-cancel").onclick = guard(() => doCancel(pendingOf(K_PENDING)?.requestId));
  $("cr-cancel").onclick = guard(() => doCancel(pendingOf(K_LAST)?.requestId));
  $("cr-next").onclick = () => { localStorage.removeItem(K_LAST); courierView(); };
  $("cr-share").onclick = guard(() => navigator.share({ title: "Your parcel", text:
    `Pickup code ${$("cr-code").textContent}`, url: $("cr-link").value }));
  $("cm-back").onclick = () => courierView();

  const code = codeFromFragment(location.hash);
  if (code) recipientView(code, true);
  else show("v-home");
  // a pickup link tapped while the app is already open changes only the fragment
  window.addEventListener("hashchange", () => {
    const c = codeFromFragment(location.hash);
    if (c) recipientView(c, true);
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch(() => {});
  }
  document.body.dataset.ready = "1";
}

main();
