/**
 * The tunnels people use instead of AlphaNET, set up on 127.0.0.1 for row 7:
 * `ssh -L` through a private sshd, and two `socat` hops. Each runs only
 * where its tools are installed; a missing tool gives a one-line note, never
 * an error. Every process is a {@linkcode Proc}, so the bench's watchdog
 * kills it too.
 *
 * @module
 */

import { findExecutable, freePort, Proc, waitForPort } from "./_proc.ts";

/** How long a tunnel may take to accept connections. */
const READY_MS = 30_000;
/** The directory sshd chroots its pre-auth child into when run as root (compiled into sshd). */
const PRIVSEP_DIR = "/run/sshd";

/** A running tunnel: connections to 127.0.0.1:`port` reach the target port. */
export interface Tunnel {
  readonly port: number;
  /** Stops every process of the tunnel and removes what it created. */
  close(): Promise<void>;
}

/** Runs a command to completion; throws with its stderr if it fails. */
async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

/** Terminates `procs` last-started first (a client before its server), each given `graceMs`. */
export async function terminate(procs: Proc[], graceMs?: number): Promise<void> {
  for (const proc of [...procs].reverse()) await proc.terminate(graceMs);
}

/**
 * `ssh -N -L port:127.0.0.1:targetPort` through a private sshd on a free
 * loopback port, run as the current user from `dir` (host key and user key
 * generated there, the user key the only authorized one). Cipher
 * aes128-gcm@openssh.com, as a user would pick for speed. Root needs sshd's
 * privilege separation directory, which exists only while the system's sshd
 * service runs; it is created for the run and removed after if missing.
 * Returns a note instead when a tool is missing.
 */
export async function sshTunnel(targetPort: number, dir: string): Promise<Tunnel | string> {
  const sshd = findExecutable("sshd");
  const ssh = findExecutable("ssh");
  const keygen = findExecutable("ssh-keygen");
  const missing = [!sshd && "sshd", !ssh && "ssh", !keygen && "ssh-keygen"].filter(Boolean);
  if (missing.length) return `ssh -L: ${missing.join(", ")} not installed`;
  const procs: Proc[] = [];
  let madePrivsepDir = false;
  // Also when the bench exits early (the watchdog's Deno.exit dispatches "unload").
  const removePrivsepDir = () => {
    if (!madePrivsepDir) return;
    madePrivsepDir = false;
    globalThis.removeEventListener("unload", removePrivsepDir);
    try {
      Deno.removeSync(PRIVSEP_DIR);
    } catch {
      // Already gone, or in use by another sshd that started meanwhile.
    }
  };
  const close = async () => {
    await terminate(procs, 2000);
    removePrivsepDir();
  };
  try {
    if (Deno.uid() === 0) {
      try {
        Deno.statSync(PRIVSEP_DIR);
      } catch {
        Deno.mkdirSync(PRIVSEP_DIR, { mode: 0o755 });
        madePrivsepDir = true;
        globalThis.addEventListener("unload", removePrivsepDir);
      }
    }
    for (const key of ["host_key", "user_key"]) {
      await run(keygen!, ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/${key}`]);
    }
    Deno.copyFileSync(`${dir}/user_key.pub`, `${dir}/authorized_keys`);
    const sshPort = freePort();
    const config = [
      `Port ${sshPort}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PidFile ${dir}/sshd.pid`,
      "UsePAM no",
      "StrictModes no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "AllowTcpForwarding yes",
      "LogLevel ERROR",
    ];
    Deno.writeTextFileSync(`${dir}/sshd_config`, config.join("\n") + "\n");
    // sshd re-executes itself, so it must be started by its absolute path.
    const daemon = new Proc("sshd", ["-D", "-f", `${dir}/sshd_config`, "-e"], sshd!);
    procs.push(daemon);
    await waitForPort(sshPort, READY_MS, daemon);
    const port = freePort();
    const client = new Proc("ssh -L", [
      "-F",
      "/dev/null",
      "-N",
      "-n",
      "-L",
      `${port}:127.0.0.1:${targetPort}`,
      "-c",
      "aes128-gcm@openssh.com",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "LogLevel=ERROR",
      "-i",
      `${dir}/user_key`,
      "-p",
      String(sshPort),
      "127.0.0.1",
    ], ssh!);
    procs.push(client);
    // ssh listens on the forwarded port only once it is authenticated.
    await waitForPort(port, READY_MS, client);
    return { port, close };
  } catch (error) {
    const stderr = await Promise.all(procs.map(async (proc) => {
      await proc.terminate(1000);
      return `${proc.name}: ${(await proc.stderr).trim()}`;
    }));
    await close();
    throw new Error(`ssh -L setup failed: ${error} ${stderr.join("; ")}`);
  }
}

/**
 * Two `socat TCP-LISTEN:a,fork TCP:127.0.0.1:b` hops in a row, socat's
 * default 8 KiB block size, ending at `targetPort`; a note instead if socat
 * is missing.
 */
export async function socatTunnel(targetPort: number): Promise<Tunnel | string> {
  const socat = findExecutable("socat");
  if (!socat) return "socat: not installed";
  const procs: Proc[] = [];
  const close = () => terminate(procs, 2000);
  try {
    let next = targetPort;
    for (const hop of [2, 1]) {
      const port = freePort();
      const proc = new Proc(`socat hop ${hop}`, [
        `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
        `TCP:127.0.0.1:${next}`,
      ], socat);
      procs.push(proc);
      await waitForPort(port, READY_MS, proc);
      next = port;
    }
    return { port: next, close };
  } catch (error) {
    await close();
    throw error;
  }
}
