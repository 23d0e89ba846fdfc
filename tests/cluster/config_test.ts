/**
 * The cluster settings of issue 12 (`--registry`, `--nats`, `--mesh-port`,
 * `--mesh-key-file`, `--advertise`): how the flags parse, what the config
 * accepts together, and that the mesh key never shows. No engine needed.
 */

import assert from "node:assert/strict";
import { UsageError } from "../../flags/usage_error.ts";
import {
  advertisedMesh,
  DEFAULT_RELAY_CONFIG,
  redactedUrl,
  relayNodeName,
  resolveRelayConfig,
} from "../../server/config.ts";
import { parseRelayFlags, USAGE } from "../../server/flags.ts";

const KEY_HEX = "0123456789abcdef".repeat(4);
const CLUSTER = {
  registry: "postgres://alphanet@127.0.0.1:5432/alphanet",
  nats: "nats://127.0.0.1:4222",
  meshPort: 0,
  meshKey: KEY_HEX,
  hostname: "127.0.0.1",
};

function usageError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("a relay with no cluster settings has none: SQLite at db, no NATS, no mesh", () => {
  const config = resolveRelayConfig({});
  for (const field of ["registry", "nats", "meshPort", "meshKey", "advertise"] as const) {
    assert.equal(DEFAULT_RELAY_CONFIG[field], null, field);
    assert.equal(config[field], null, field);
  }
  assert.equal(config.db, "./alphanet.db");
  assert.deepEqual(parseRelayFlags([]), { help: false, options: {}, tlsFiles: null });
});

Deno.test("the cluster flags parse into their options, the mesh key read from its file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keyFile = `${dir}/mesh.key`;
    await Deno.writeTextFile(keyFile, `  ${KEY_HEX.toUpperCase()}\n`, { mode: 0o600 });
    const parsed = parseRelayFlags([
      "--registry",
      "postgresql://relay:pw@db.example:5432/net",
      "--nats",
      "nats://a:4222,nats://b:4222",
      "--mesh-port",
      "7000",
      "--mesh-key-file",
      keyFile,
      "--advertise",
      "relay1.example",
    ]);
    assert.deepEqual(parsed, {
      help: false,
      options: {
        registry: "postgresql://relay:pw@db.example:5432/net",
        nats: "nats://a:4222,nats://b:4222",
        meshPort: 7000,
        meshKey: KEY_HEX,
        advertise: "relay1.example",
      },
      tlsFiles: null,
    });
    assert.ok(!parsed.help);
    const config = resolveRelayConfig(parsed.options);
    assert.equal(config.meshKey?.length, 32);
    assert.equal(config.meshKey?.[0], 0x01);
    assert.equal(config.advertise, "relay1.example");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad cluster flags are usage errors that never echo a key or a password", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const shortKey = `${dir}/short.key`;
    await Deno.writeTextFile(shortKey, "abcdef0123\n", { mode: 0o600 });
    const openKey = `${dir}/open.key`;
    await Deno.writeTextFile(openKey, `${KEY_HEX}\n`);
    await Deno.chmod(openKey, 0o644);
    const cases: [string[], RegExp][] = [
      [["--registry", "mysql://db/x"], /^bad --registry "mysql:\/\/db\/x": expected postgres:/],
      [["--registry", "postgres://u:secret@/x"], /^bad --registry "\[unparsable URL\]"/],
      [["--registry", "mysql://u:secret@db/x"], /^bad --registry "mysql:\/\/u:\*\*\*@db\/x"/],
      [["--registry", "postgres://h/x", "--db", "a.db"], /--registry and --db are alternatives/],
      [["--nats", "http://h:4222"], /^bad --nats "http:\/\/h:4222": expected nats:/],
      [["--nats", "nats://a:1,"], /^bad --nats/],
      [["--mesh-port", "70000"], /^bad --mesh-port "70000"/],
      [["--mesh-key-file", `${dir}/missing`], /^cannot read --mesh-key-file .*: NotFound$/],
      [["--mesh-key-file", shortKey], /^bad --mesh-key-file .*: expected 64 hex digits/],
      [["--mesh-key-file", openKey], /is open to other users \(mode 0644\): chmod 600 /],
    ];
    for (const [args, pattern] of cases) {
      await t.step(args.join(" "), () => {
        assert.throws(() => parseRelayFlags(args), usageError(pattern));
        assert.throws(() => parseRelayFlags(args), (error: Error) => {
          assert.ok(!error.message.includes("secret") && !error.message.includes("abcdef0123"));
          return true;
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the cluster settings come together, with a PostgreSQL registry and a host to dial", async (t) => {
  assert.equal(resolveRelayConfig(CLUSTER).advertise, "127.0.0.1", "hostname, not a wildcard");
  assert.equal(
    resolveRelayConfig({ registry: CLUSTER.registry, hostname: "127.0.0.1" }).registry,
    CLUSTER.registry,
  );
  assert.equal(
    resolveRelayConfig({ registry: CLUSTER.registry, advertise: "relay1.example" }).advertise,
    "relay1.example",
  );
  const cases: [string, object, RegExp][] = [
    ["nats alone", { ...CLUSTER, meshPort: undefined, meshKey: undefined }, /go together/],
    ["no mesh key", { ...CLUSTER, meshKey: undefined }, /go together/],
    ["no registry", { ...CLUSTER, registry: undefined }, /needs a shared registry/],
    ["a wildcard host", { ...CLUSTER, hostname: "0.0.0.0" }, /needs advertise/],
    [
      "a registry on a wildcard host",
      { registry: CLUSTER.registry },
      /a relay on a shared registry needs advertise/,
    ],
    ["a wildcard advertised", { ...CLUSTER, advertise: "::" }, /not a host other relays can dial/],
    ["a registry not PostgreSQL", { registry: "sqlite:///x" }, /not a postgres:/],
    ["a NATS URL not NATS", { ...CLUSTER, nats: "tcp://h:1" }, /not nats:\/\/HOST:PORT/],
    ["a short key", { ...CLUSTER, meshKey: "ab" }, /meshKey is not 64 hex digits/],
    ["a key of 31 bytes", { ...CLUSTER, meshKey: new Uint8Array(31) }, /not 32 bytes/],
    ["a mesh port out of range", { ...CLUSTER, meshPort: 65_536 }, /mesh port 65536/],
  ];
  for (const [name, options, pattern] of cases) {
    await t.step(name, () => assert.throws(() => resolveRelayConfig(options), pattern));
  }
  const wildcard = resolveRelayConfig({ ...CLUSTER, hostname: "0.0.0.0", advertise: "10.1.2.3" });
  assert.equal(wildcard.advertise, "10.1.2.3");
  assert.equal(resolveRelayConfig({}).advertise, null, "a lone relay on 0.0.0.0 needs none");
});

Deno.test("the resolved mesh key prints as [redacted], in text and JSON alike", () => {
  const config = resolveRelayConfig(CLUSTER);
  const key = config.meshKey!;
  assert.equal(`${key}`, "[redacted]");
  assert.ok(!JSON.stringify(config).includes("1,35,69"));
  assert.match(JSON.stringify(config), /"meshKey":"\[redacted\]"/);
  assert.ok(!Deno.inspect(config).includes("35"));
  // Still the bytes for whoever uses them.
  assert.deepEqual([...key.subarray(0, 4)], [0x01, 0x23, 0x45, 0x67]);
  assert.equal(resolveRelayConfig(config).meshKey?.[1], 0x23, "a resolved config resolves again");
});

Deno.test("a registry URL is shown without its password, and node names follow the contract", () => {
  assert.equal(redactedUrl("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
  assert.equal(redactedUrl("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
  const config = resolveRelayConfig(CLUSTER);
  assert.equal(relayNodeName(config, 1337, 7000), "127.0.0.1:7000");
  assert.equal(relayNodeName(resolveRelayConfig({}), 1337, null), "0.0.0.0:1337");
  assert.match(USAGE, /--registry URL +keep the registry in PostgreSQL/);
  assert.match(USAGE, /--mesh-key-file FILE +cluster: file of the secret/);
});

Deno.test("advertise may name the port other relays dial (a NAT or proxy maps it), else the mesh port is it", () => {
  assert.equal(advertisedMesh("relay1.example", 7000), "relay1.example:7000");
  assert.equal(advertisedMesh("relay1.example:17000", 7000), "relay1.example:17000");
  assert.equal(advertisedMesh("::1", 7000), "[::1]:7000");
  assert.equal(advertisedMesh("[::1]:17000", 7000), "[::1]:17000");
  const mapped = resolveRelayConfig({ ...CLUSTER, advertise: "203.0.113.9:17000" });
  assert.equal(relayNodeName(mapped, 1337, 7000), "203.0.113.9:17000");
  assert.throws(
    () => resolveRelayConfig({ ...CLUSTER, hostname: "0.0.0.0", advertise: "0.0.0.0:7000" }),
    /advertise "0\.0\.0\.0:7000" is not a host other relays can dial/,
  );
});

Deno.test("relay links use TLS with the relay's: a mesh CA needs a certificate to serve", () => {
  assert.throws(
    () => parseRelayFlags(["--mesh-ca-file", "/tmp/ca.pem"]),
    usageError(/--mesh-ca-file needs --tls-cert/),
  );
  assert.throws(
    () => resolveRelayConfig({ ...CLUSTER, meshCaCerts: ["-----BEGIN CERTIFICATE-----"] }),
    /meshCaCerts needs tls/,
  );
  const parsed = parseRelayFlags([
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
    "--mesh-ca-file",
    "ca.pem",
  ]);
  assert.ok(!parsed.help);
  assert.deepEqual(parsed.tlsFiles, { cert: "c.pem", key: "k.pem", meshCa: "ca.pem" });
});

Deno.test("a bad --nats list is shown without the password of any of its URLs", () => {
  assert.throws(
    () => parseRelayFlags(["--nats", "nats://u:secret@h:4222,http://x"]),
    (error) => {
      assert.ok(error instanceof UsageError);
      assert.ok(!error.message.includes("secret"), error.message);
      assert.match(error.message, /nats:\/\/u:\*\*\*@h:4222/);
      return true;
    },
  );
});

Deno.test("a NATS URL's lone user part is a token, and never shown", () => {
  assert.throws(
    () => parseRelayFlags(["--nats", "nats://s3cr3t@h:4222,bad"]),
    (error) => {
      assert.ok(error instanceof UsageError);
      assert.ok(!error.message.includes("s3cr3t"), error.message);
      return true;
    },
  );
});
