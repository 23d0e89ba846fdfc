/**
 * A ConnectionHost for a connection on no socket: every method does nothing
 * (window growth and slab views always granted) unless the test overrides it,
 * so a change to the interface is one edit here.
 */

import type { ConnectionHost } from "../../client/virtual_conn_impl.ts";

/** A host that drops what it is asked to send; `overrides` replace any of its methods. */
export function stubHost(overrides: Partial<ConnectionHost> = {}): ConnectionHost {
  return {
    sendData: () => {},
    linkRoom: () => undefined,
    sendWindowUpdate: () => {},
    growWindow: (_conn, wanted) => wanted,
    holdSlab: () => true,
    releaseSlab: () => {},
    sendShutdown: () => {},
    sendClosed: () => {},
    release: () => {},
    refChanged: () => {},
    ...overrides,
  };
}
