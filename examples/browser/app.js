// The browser example: join an AlphaNET relay over a WebSocket, keep the
// identity in IndexedDB, and chat line by line with `alphanet listen PORT`.
// Plain JavaScript so a browser runs it as served; the client library is the
// bundle `deno task bundle` writes (dist/alphanet.js).

const DEFAULT_RELAY = "ws://127.0.0.1:8080/";
const DB_NAME = "alphanet-example";
const STORE = "identities";
const KEY = "default";
/** Most lines the log keeps on screen, so a chatty peer cannot grow the page without bound. */
const MAX_LOG_LINES = 500;

const $ = (id) => document.getElementById(id);
const relayInput = $("relay");
const stateText = $("state");
const vipOutput = $("vip");
const identityText = $("identity");
const peerInput = $("peer");
const lineInput = $("line");
const log = $("log");

/** The joined client, and the open chat connection with its line encoder. */
let net = null;
/** The client library, once loaded. */
let alphanet = null;
let conn = null;
const encoder = new TextEncoder();

function setState(state, text) {
  stateText.dataset.state = state;
  stateText.textContent = text;
}

function addLine(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = kind === "sent" ? `> ${text}` : kind === "received" ? `< ${text}` : text;
  log.append(item);
  while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
}

function enable(ids, on) {
  for (const id of ids) $(id).disabled = !on;
}

// IndexedDB, promisified: one object store holding the identity under one key.
function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/**
 * The identity this browser keeps: read from IndexedDB, or made once with a
 * private key that is not extractable and stored there. IndexedDB keeps the
 * CryptoKey itself (structured clone), so the key's bytes are never visible to
 * any script, this one included; the same identity gives the same virtual IP.
 */
async function loadIdentity() {
  const db = await openDb();
  try {
    const read = db.transaction(STORE, "readonly").objectStore(STORE);
    const stored = await request(read.get(KEY));
    if (stored) return { identity: stored, created: false };
    const identity = await alphanet.generateIdentity({ extractable: false });
    const write = db.transaction(STORE, "readwrite").objectStore(STORE);
    // An Identity is a plain (frozen) object of a Uint8Array and a CryptoKey: IndexedDB
    // stores it as it is (a structured clone), and what it reads back is an Identity again.
    await request(write.put(identity, KEY));
    return { identity, created: true };
  } finally {
    db.close();
  }
}

function hex(bytes) {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function join(url) {
  enable(["join"], false);
  setState("joining", `joining ${url} ...`);
  try {
    const { identity, created } = await loadIdentity();
    identityText.textContent = `Identity: ${created ? "new, " : ""}kept in IndexedDB, ` +
      `private key extractable: ${identity.privateKey.extractable}, ` +
      `public key ${hex(identity.publicKey).slice(0, 16)}...`;
    net = await alphanet.connect({ url, identity });
  } catch (error) {
    setState("error", `could not join: ${error.message}`);
    enable(["join"], true);
    return;
  }
  vipOutput.value = net.virtualIp;
  setState("joined", "joined");
  enable(["peer", "dial"], true);
  net.addEventListener("statechange", (event) => {
    if (event.state === "connected") setState("joined", "joined");
    else if (event.state === "reconnecting") setState("reconnecting", "reconnecting ...");
    else {
      setState("closed", `closed${event.error ? `: ${event.error.message}` : ""}`);
      enable(["peer", "dial", "line", "send"], false);
      enable(["join"], true);
    }
  });
}

/** Parses `VIP:PORT`; null if it is not one. */
function parsePeer(text) {
  const match = /^\s*(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\s*$/.exec(text);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) return null;
  return { hostname: match[1], port: Number(match[2]) };
}

async function dial(text) {
  const peer = parsePeer(text);
  if (!peer) {
    addLine("note", `not VIP:PORT: ${text}`);
    return;
  }
  enable(["peer", "dial"], false);
  try {
    conn = await net.connect(peer);
  } catch (error) {
    addLine("note", `could not connect to ${peer.hostname}:${peer.port}: ${error.message}`);
    enable(["peer", "dial"], true);
    return;
  }
  addLine("note", `connected to ${peer.hostname}:${peer.port}`);
  enable(["line", "send"], true);
  lineInput.focus();
  readLines(conn);
}

/** Shows each line the peer sends until it ends its side or the connection fails. */
async function readLines(current) {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(16 * 1024);
  let pending = "";
  try {
    while (true) {
      const n = await current.read(buffer);
      if (n === null) break;
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) addLine("received", line);
    }
    pending += decoder.decode();
    if (pending !== "") addLine("received", pending);
    addLine("note", "the peer ended the connection");
  } catch (error) {
    addLine("note", `connection lost: ${error.message}`);
  }
  current.close();
  if (conn === current) {
    conn = null;
    enable(["line", "send"], false);
    if (net?.state !== "closed") enable(["peer", "dial"], true);
  }
}

async function send(text) {
  if (!conn) return;
  try {
    await conn.write(encoder.encode(`${text}\n`));
    addLine("sent", text);
  } catch (error) {
    addLine("note", `could not send: ${error.message}`);
  }
}

// The bundle is imported by URL at run time: dist/ is a build output, absent
// from a fresh clone, and a static import would fail `deno check` there.
try {
  alphanet = await import(new URL("../../dist/alphanet.js", import.meta.url).href);
} catch (error) {
  setState("error", `cannot load dist/alphanet.js (run \`deno task bundle\`): ${error.message}`);
  enable(["join"], false);
}

relayInput.value = new URLSearchParams(location.search).get("relay") ?? DEFAULT_RELAY;

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  join(relayInput.value.trim());
});
$("dial-form").addEventListener("submit", (event) => {
  event.preventDefault();
  dial(peerInput.value);
});
$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = lineInput.value;
  lineInput.value = "";
  send(text);
});
