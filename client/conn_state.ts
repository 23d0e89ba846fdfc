/**
 * The lifecycle of a virtual connection: its states and every transition,
 * in one table (as yamux's `streamState`).
 *
 * @module
 */

/**
 * Where a connection is in its life:
 * - `"open"`: data flows both ways;
 * - `"writeShut"`: this side called `closeWrite()`: writes fail, reads go on;
 * - `"readShut"`: the peer shut down its write side (or the relay removed the
 *   connection): reads end after the bytes already received, writes go on;
 * - `"bothShut"`: both of the above;
 * - `"closed"`: this side called `close()`: reads end, writes fail.
 *
 * Whether the relay still carries the connection is not a state but a cause:
 * once the relay removed it or the link dropped, the connection keeps the
 * error that says why, and sends nothing more.
 */
export type ConnState = "open" | "writeShut" | "readShut" | "bothShut" | "closed";

/**
 * What moves a connection from one state to another:
 * - `"closeWrite"`: this side shuts down its write side;
 * - `"peerShutdown"`: the peer's SocketShutdown, or its SocketClosed (the
 *   relay removed the connection: nothing more will arrive);
 * - `"close"`: this side closes the connection.
 */
export type ConnEvent = "closeWrite" | "peerShutdown" | "close";

/** Every transition; an event that changes nothing maps a state to itself. */
const TRANSITIONS: Readonly<Record<ConnState, Readonly<Record<ConnEvent, ConnState>>>> = {
  open: { closeWrite: "writeShut", peerShutdown: "readShut", close: "closed" },
  writeShut: { closeWrite: "writeShut", peerShutdown: "bothShut", close: "closed" },
  readShut: { closeWrite: "bothShut", peerShutdown: "readShut", close: "closed" },
  bothShut: { closeWrite: "bothShut", peerShutdown: "bothShut", close: "closed" },
  closed: { closeWrite: "closed", peerShutdown: "closed", close: "closed" },
};

/** The state `event` moves a connection in `state` to. */
export function nextConnState(state: ConnState, event: ConnEvent): ConnState {
  return TRANSITIONS[state][event];
}

/** Whether bytes from the peer are still taken in `state` (neither read-shut nor closed). */
export function readsOpen(state: ConnState): boolean {
  return state === "open" || state === "writeShut";
}

/** Whether this side has shut down its write side in `state` (close aside). */
export function writesShut(state: ConnState): boolean {
  return state === "writeShut" || state === "bothShut";
}
