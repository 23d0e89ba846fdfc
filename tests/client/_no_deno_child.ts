/**
 * Imports mod.ts the way a browser would meet it, in a process of its own,
 * and prints one JSON line. Mode `watch`: `Deno` is watched while mod.ts
 * loads, and every property read is recorded. Mode `absent`: there is no
 * `Deno` global at all while mod.ts loads; it then makes, exports and
 * imports an identity (WebCrypto only).
 *
 * Usage: deno run --allow-read _no_deno_child.ts watch|absent
 */

const MOD = new URL("../../mod.ts", import.meta.url).href;
const real = globalThis.Deno;
const mode = real.args[0];
const print = (value: unknown): void =>
  void real.stdout.writeSync(new TextEncoder().encode(JSON.stringify(value) + "\n"));

if (mode === "watch") {
  const read: string[] = [];
  const watched = new Proxy(real, {
    get(target, property, receiver): unknown {
      read.push(String(property));
      return Reflect.get(target, property, receiver);
    },
  });
  Object.defineProperty(globalThis, "Deno", { value: watched, configurable: true });
  await import(MOD);
  Object.defineProperty(globalThis, "Deno", { value: real, configurable: true });
  print({ read: [...new Set(read)] });
} else {
  delete (globalThis as { Deno?: unknown }).Deno;
  const mod = await import(MOD) as typeof import("../../mod.ts");
  const identity = await mod.generateIdentity();
  const back = await mod.importIdentity(await mod.exportIdentity(identity));
  print({
    roundTrip: back.publicKey.every((byte, i) => byte === identity.publicKey[i]),
    errorsExtendError: new mod.ConnectionRefused("Cannot connect: demo") instanceof Error,
  });
}
