/**
 * The relay's counters for `/metrics`: plain numbers the hot paths bump
 * (no allocation per frame), read and formatted only when scraped.
 *
 * @module
 */

/** Counters of events since the relay started; gauges are read from their owners on scrape. */
export class RelayMetrics {
  /** Peers that completed their handshake and joined. */
  joins = 0;
  /** Payload bytes of ArbitraryData forwarded from one end of a connection to the other. */
  relayedBytes = 0;
  /** Requests (status, echo, connect) clients made, refused ones included. */
  requests = 0;
  /** Links and joins refused, by reason name. Refusals are rare: a map is cheap enough. */
  readonly refusals: Map<string, number> = new Map();

  /** Counts one refusal for `reason` (a Reason name such as "InvalidIdentity"). */
  refused(reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }
}

/** The gauges a scrape reads from the running relay. */
export interface RelayGauges {
  /** Clients online now. */
  readonly clientsOnline: number;
  /** Virtual connections open now. */
  readonly connectionsOpen: number;
  /** Bytes held for data now (credit outstanding plus queued), relay-wide. */
  readonly bufferedBytes: number;
  /** The relay-wide ceiling on buffered bytes. */
  readonly bufferedBytesLimit: number;
  /** A clustered relay's links and presence; absent for a lone relay. */
  readonly cluster?: ClusterGauges;
}

/** The gauges of a relay that is part of a cluster. */
export interface ClusterGauges {
  /** Relay links open now. */
  readonly links: number;
  /** Clients of other relays this relay routes to now, over its links. */
  readonly remoteClients: number;
  /** Whether the NATS connection is up. */
  readonly natsConnected: boolean;
}

/** One metric family: its name, type, help and samples (label text, value). */
function family(
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: readonly (readonly [string, number])[],
): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  return lines.join("\n") + "\n";
}

/** Label values escaped as the Prometheus text format asks. */
function labelValue(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * The Prometheus text exposition (version 0.0.4) of `metrics` and `gauges`.
 * Base units (bytes), `_total` counters, no per-address labels.
 */
export function formatMetrics(metrics: RelayMetrics, gauges: RelayGauges): string {
  const refusals = [...metrics.refusals].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([reason, count]) => [`{reason="${labelValue(reason)}"}`, count] as const);
  return [
    family("alphanet_clients_online", "gauge", "Clients joined and online now.", [
      ["", gauges.clientsOnline],
    ]),
    family("alphanet_virtual_connections_open", "gauge", "Virtual connections open now.", [
      ["", gauges.connectionsOpen],
    ]),
    family(
      "alphanet_relayed_bytes_total",
      "counter",
      "Payload bytes forwarded between virtual connection ends.",
      [["", metrics.relayedBytes]],
    ),
    family("alphanet_joins_total", "counter", "Clients that completed the handshake.", [
      ["", metrics.joins],
    ]),
    family(
      "alphanet_refusals_total",
      "counter",
      "Links and joins refused, by reason code name.",
      refusals,
    ),
    family(
      "alphanet_buffered_bytes",
      "gauge",
      "Bytes the relay holds for data now (credit outstanding plus queued).",
      [["", gauges.bufferedBytes]],
    ),
    family(
      "alphanet_buffered_bytes_limit",
      "gauge",
      "The relay-wide ceiling on buffered bytes.",
      [["", gauges.bufferedBytesLimit]],
    ),
    family(
      "alphanet_requests_total",
      "counter",
      "Requests (status, echo, connect) clients made, refused ones included.",
      [["", metrics.requests]],
    ),
    ...(gauges.cluster === undefined ? [] : clusterFamilies(gauges.cluster)),
  ].join("");
}

function clusterFamilies(cluster: ClusterGauges): string[] {
  return [
    family("alphanet_cluster_links", "gauge", "Relay links to other relays open now.", [
      ["", cluster.links],
    ]),
    family(
      "alphanet_cluster_remote_clients",
      "gauge",
      "Clients of other relays this relay routes to now.",
      [["", cluster.remoteClients]],
    ),
    family(
      "alphanet_cluster_nats_connected",
      "gauge",
      "1 while the relay's NATS connection is up, else 0.",
      [["", cluster.natsConnected ? 1 : 0]],
    ),
  ];
}
