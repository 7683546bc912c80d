// PICKUP (docs/protocol.md sections 5.5 and 8): a SPAKE2 run (RFC 9382, P-256) with the
// pickup code as the password, in pickup_pake.js. The app imports the pickup from here, so
// a change of the pickup exchange touches only this file.
export { pickup } from "./pickup_pake.js";
