/**
 * The layers import one way, and no module cycle hides in them, type-only
 * imports included: `protocol/` depends on nothing outside itself, and
 * `crypto/` (shared by the client and the relay) on nothing outside itself;
 * the client (`mod.ts`) and the relay (`server.ts`) never reach each
 * other's modules; the relay's routing code reaches a client only through
 * the Peer seam, never the session class; each public client interface sits
 * apart from its implementation class. Reads the graph with `deno info --json`.
 */

import assert from "node:assert/strict";

interface Dependency {
  readonly code?: { readonly specifier: string };
  readonly type?: { readonly specifier: string };
}

interface ModuleInfo {
  readonly specifier: string;
  readonly dependencies?: readonly Dependency[];
}

const ROOT = new URL("../", import.meta.url);

/** Every module `entry` reaches, with the modules it imports (values and types). */
async function importGraph(entry: string): Promise<Map<string, string[]>> {
  entry = new URL(entry, ROOT).href;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(output.success, `deno info ${entry} failed`);
  const { modules } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: ModuleInfo[];
  };
  const graph = new Map<string, string[]>();
  for (const module of modules) {
    const imports = (module.dependencies ?? []).flatMap((d) =>
      [d.code?.specifier, d.type?.specifier].filter((s): s is string => s !== undefined)
    );
    graph.set(module.specifier, imports);
  }
  return graph;
}

/** The URLs of the TypeScript modules in `dir`, a folder of the repository. */
async function modulesIn(dir: string): Promise<string[]> {
  const folder = new URL(dir, ROOT);
  const found: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isFile && entry.name.endsWith(".ts")) found.push(new URL(entry.name, folder).href);
  }
  return found.sort();
}

/** Whether `specifier` is a module inside `dir`, a folder of the repository. */
function isIn(specifier: string, dir: string): boolean {
  return specifier.startsWith(new URL(dir, ROOT).href);
}

/** The strongly connected groups of more than one module (or a module importing itself). */
function cycles(graph: Map<string, string[]>): string[][] {
  // Tarjan's algorithm; the graph is a few dozen modules, so recursion is fine.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, index.size);
    low.set(module, index.get(module)!);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(module, Math.min(low.get(module)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(module, Math.min(low.get(module)!, index.get(next)!));
      }
    }
    if (low.get(module) !== index.get(module)) return;
    const group: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== module);
    if (group.length > 1 || graph.get(module)?.includes(module)) found.push(group);
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return found;
}

Deno.test("server.ts imports no module cycle, type-only imports included", async () => {
  const graph = await importGraph("server.ts");
  assert.ok([...graph.keys()].some((m) => m.endsWith("/server/router.ts")));
  assert.deepEqual(cycles(graph), []);
});

Deno.test("mod.ts reaches every client/ module and imports no cycle, type-only imports included", async () => {
  const graph = await importGraph("mod.ts");
  const reached = new Set(graph.keys());
  assert.deepEqual((await modulesIn("client/")).filter((m) => !reached.has(m)), []);
  assert.deepEqual(cycles(graph), []);
});

Deno.test("protocol/ imports nothing outside protocol/", async () => {
  const graph = await importGraph("protocol/mod.ts");
  const reached = new Set(graph.keys());
  assert.deepEqual((await modulesIn("protocol/")).filter((m) => !reached.has(m)), []);
  const outside = [...graph].flatMap(([module, imports]) =>
    imports.filter((i) => !isIn(i, "protocol/")).map((i) => `${module} -> ${i}`)
  );
  assert.deepEqual(outside, []);
  assert.deepEqual(cycles(graph), []);
});

Deno.test("crypto/ imports nothing outside crypto/, and both the client and the relay use it", async () => {
  const modules = await modulesIn("crypto/");
  assert.ok(modules.length > 0);
  for (const module of modules) {
    const graph = await importGraph(module);
    const outside = [...graph].flatMap(([from, imports]) =>
      imports.filter((i) => !isIn(i, "crypto/")).map((i) => `${from} -> ${i}`)
    );
    assert.deepEqual(outside, []);
    assert.deepEqual(cycles(graph), []);
  }
  const client = await importGraph("mod.ts");
  const relay = await importGraph("server.ts");
  assert.ok([...client.keys()].some((m) => isIn(m, "crypto/")), "the client signs with crypto/");
  assert.ok([...relay.keys()].some((m) => isIn(m, "crypto/")), "the relay verifies with crypto/");
});

Deno.test("the client and the relay never import each other's modules", async () => {
  const client = await importGraph("mod.ts");
  assert.deepEqual([...client.keys()].filter((m) => isIn(m, "server/")), []);
  const relay = await importGraph("server.ts");
  assert.deepEqual([...relay.keys()].filter((m) => isIn(m, "client/")), []);
});

Deno.test("cycles() finds a cycle, not the modules that only lead into it", () => {
  const graph = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(cycles(graph).map((group) => group.sort()), [["a", "b", "c"]]);
});
