/**
 * The operations endpoint's status page (`/`) for people, and the plain
 * snapshot it renders (also served as `/status.json`). Self-contained HTML:
 * no scripts, fonts or links elsewhere, so it works offline; every value is
 * escaped; it reloads itself every few seconds.
 *
 * @module
 */

import type { CarrierKind } from "./carrier.ts";

/** One online client as the status page shows it. */
export interface StatusClient {
  /** Its virtual IPv4, dotted. */
  readonly virtualIp: string;
  /** The carrier it came over: TCP, TLS, WebSocket (`ws`) or WebSocket over TLS (`wss`). */
  readonly carrier: CarrierKind;
  /** When it joined, ISO 8601. */
  readonly since: string;
  /** Payload bytes it sent that the relay forwarded. */
  readonly bytesRelayed: number;
}

/** Everything the status page shows, as plain data. */
export interface StatusSnapshot {
  /** When the snapshot was taken, ISO 8601. */
  readonly now: string;
  /** The clients online now, by virtual IP. */
  readonly clients: readonly StatusClient[];
  /** Virtual connections open now. */
  readonly connectionsOpen: number;
  /** Seconds between traffic samples. */
  readonly sampleIntervalSeconds: number;
  /** Bytes relayed in each sample interval, oldest first. */
  readonly traffic: readonly number[];
  /** Links and joins refused since start, by reason name. */
  readonly refusals: Readonly<Record<string, number>>;
}

/**
 * Samples a growing counter at a fixed interval into a bounded ring and
 * hands back the increments: the traffic chart's data.
 */
export class TrafficRing {
  readonly #capacity: number;
  readonly #deltas: number[] = [];
  #last: number;

  /** A ring of at most `capacity` increments, counting from `start`. */
  constructor(capacity: number, start = 0) {
    this.#capacity = capacity;
    this.#last = start;
  }

  /** Records the counter's value now. */
  sample(total: number): void {
    this.#deltas.push(Math.max(0, total - this.#last));
    this.#last = total;
    if (this.#deltas.length > this.#capacity) this.#deltas.shift();
  }

  /** The increments, oldest first. */
  values(): number[] {
    return [...this.#deltas];
  }
}

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const CHART_WIDTH = 600;
const CHART_HEIGHT = 120;

/** An inline SVG bar chart of `values`; no external references. */
function chart(values: readonly number[]): string {
  const max = Math.max(1, ...values);
  const width = CHART_WIDTH / Math.max(1, values.length);
  const bars = values.map((value, i) => {
    const height = Math.round((value / max) * (CHART_HEIGHT - 2));
    const x = (i * width).toFixed(1);
    return `<rect x="${x}" y="${CHART_HEIGHT - height}" width="${
      Math.max(1, width - 1).toFixed(1)
    }" height="${height}"><title>${value} bytes</title></rect>`;
  });
  return `<svg role="img" aria-label="bytes relayed per sample" width="${CHART_WIDTH}" ` +
    `height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}">` +
    `<rect width="${CHART_WIDTH}" height="${CHART_HEIGHT}" fill="#f4f4f4"></rect>` +
    `<g fill="#3a6ea5">${bars.join("")}</g></svg>`;
}

/** The status page's HTML for `snapshot`. */
export function renderStatusPage(snapshot: StatusSnapshot): string {
  const e = (value: string | number) => escapeHtml(String(value));
  const clients = snapshot.clients.map((client) =>
    `<tr><td>${e(client.virtualIp)}</td><td>${e(client.carrier)}</td><td>${
      e(client.since)
    }</td><td>${e(client.bytesRelayed)}</td></tr>`
  );
  const refusals = Object.entries(snapshot.refusals).map(([reason, count]) =>
    `<tr><td>${e(reason)}</td><td>${e(count)}</td></tr>`
  );
  const total = snapshot.traffic.reduce((sum, value) => sum + value, 0);
  const span = snapshot.traffic.length * snapshot.sampleIntervalSeconds;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>AlphaNET relay status</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
</style>
</head>
<body>
<h1>AlphaNET relay status</h1>
<p>As of ${e(snapshot.now)}.</p>
<h2>Clients online: ${e(snapshot.clients.length)}</h2>
<table>
<tr><th>Virtual IP</th><th>Carrier</th><th>Since</th><th>Bytes sent, relayed</th></tr>
${clients.join("\n")}
</table>
<h2>Virtual connections open: ${e(snapshot.connectionsOpen)}</h2>
<h2>Traffic</h2>
<p>${e(total)} bytes relayed over the last ${e(span)} s (one bar per ${
    e(snapshot.sampleIntervalSeconds)
  } s).</p>
${chart(snapshot.traffic)}
<h2>Refusals since start</h2>
<table>
<tr><th>Reason</th><th>Count</th></tr>
${refusals.join("\n")}
</table>
</body>
</html>
`;
}
