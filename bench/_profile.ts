/**
 * Summarizes a V8 .cpuprofile (as written by `deno run --cpu-prof`): total
 * self time per function, top N.
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
  percent: number;
}

/** Top `limit` functions by self time in the profile at `path`. */
export function topSelfTime(path: string, limit = 12): SelfTime[] {
  const profile: Profile = JSON.parse(Deno.readTextFileSync(path));
  const nameOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.split("/").slice(-2).join("/");
    nameOf.set(node.id, `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`);
  }
  const micros = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const name = nameOf.get(id) ?? "?";
    micros.set(name, (micros.get(name) ?? 0) + delta);
    total += delta;
  });
  return [...micros.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({
      name,
      ms: Math.round(us / 1000),
      percent: Math.round((us / total) * 1000) / 10,
    }));
}
