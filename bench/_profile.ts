/**
 * Summarizes a V8 .cpuprofile (as written by `deno run --cpu-prof`): total
 * self time per function, top N, and the shares of V8's pseudo-frames
 * (idle, program, garbage collector).
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of the samples. */
export interface SelfTime {
  name: string;
  ms: number;
  /** Share of all sampled time, idle included. */
  percent: number;
  /** Share of the busy (non-idle) sampled time. */
  busyPercent: number;
}

/** A profile's totals and its top functions by self time. */
export interface ProfileSummary {
  /** All sampled time, ms. */
  totalMs: number;
  /** Shares of all sampled time, in percent, of V8's pseudo-frames. */
  idle: number;
  program: number;
  gc: number;
  /** Top functions by self time, the pseudo-frames left out. */
  top: SelfTime[];
}

/** The pseudo-frames V8 samples when no JavaScript function is on the stack. */
const PSEUDO = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

function selfMicros(path: string): { micros: Map<string, number>; total: number } {
  const profile: Profile = JSON.parse(Deno.readTextFileSync(path));
  const nameOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    // Pseudo-frames have no url: keep their bare name so they can be told apart.
    const file = url.split("/").slice(-2).join("/");
    nameOf.set(
      node.id,
      url ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName,
    );
  }
  const micros = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const name = nameOf.get(id) ?? "?";
    micros.set(name, (micros.get(name) ?? 0) + delta);
    total += delta;
  });
  return { micros, total };
}

const pct = (part: number, whole: number) => whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0;

/** Totals and top `limit` functions of the profile at `path` (idle, program and GC apart). */
export function summarizeProfile(path: string, limit = 12): ProfileSummary {
  const { micros, total } = selfMicros(path);
  const idle = micros.get("(idle)") ?? 0;
  const busy = total - idle;
  return {
    totalMs: Math.round(total / 1000),
    idle: pct(idle, total),
    program: pct(micros.get("(program)") ?? 0, total),
    gc: pct(micros.get("(garbage collector)") ?? 0, total),
    top: [...micros.entries()]
      .filter(([name]) => !PSEUDO.has(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => ({
        name,
        ms: Math.round(us / 1000),
        percent: pct(us, total),
        busyPercent: pct(us, busy),
      })),
  };
}
