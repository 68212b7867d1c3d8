/**
 * The lab's hosts answer SSH, as real hosts do: Debian's OpenSSH server in each host
 * namespace, on the host's fabric address only, with its own config, host key, pid file and
 * log in the state folder, and one key per lab that root may log in with. `npm run status --
 * --lab` reaches them from the operator's namespace on the fabric.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { alive, cmdline, killAll } from "./processes.js";
import { LabError } from "./context.js";
import { netnsPath, pool, run, sleep, spawnDetached } from "./exec.js";
import type { HostPlan, LabPlan } from "./plan.js";
import type { StateDir } from "./state.js";

export const SSHD = "/usr/sbin/sshd";
/** The user status logs in as on lab hosts (the probes need root, as on real hosts). */
export const LAB_SSH_USER = "root";

export function labKeyFile(state: StateDir): string {
  return path.join(state.sshDir, "id_operator");
}
export function labKnownHosts(state: StateDir): string {
  return path.join(state.sshDir, "known_hosts");
}
function hostKeyFile(state: StateDir, h: HostPlan): string {
  return path.join(state.sshDir, `host_key_h${h.index}`);
}
function authorizedKeys(state: StateDir): string {
  return path.join(state.sshDir, "authorized_keys");
}

/** One host's sshd_config: its address only, key login for root only, nothing forwarded. */
export function sshdConfig(state: StateDir, h: HostPlan): string {
  return [
    `# sshd of lab host ${h.name} (namespace ${h.ns})`,
    `ListenAddress ${h.address}:22`,
    `HostKey ${hostKeyFile(state, h)}`,
    `PidFile ${state.sshdPid(h.index)}`,
    `AuthorizedKeysFile ${authorizedKeys(state)}`,
    "UsePAM no",
    `AllowUsers ${LAB_SSH_USER}`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    // The key files are 0600 in a 0700 folder, but the state root may sit in a shared /tmp,
    // whose mode sshd's path check refuses.
    "StrictModes no",
    "AllowTcpForwarding no",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    "PermitTTY no",
    "PrintMotd no",
    "UseDNS no",
    // A lab host shares root's home with the machine that runs the lab. Debian's bash reads
    // ~/.bashrc for an SSH command when SHLVL is unset; set, the command runs with no rc
    // file, as it would on a host whose root has none, not the operator's toolchain setup.
    "SetEnv SHLVL=1",
    "MaxStartups 64:30:128",
    "LogLevel INFO",
    "",
  ].join("\n");
}

/** Keys (host keys, the operator's key), known_hosts and configs; then sshd per host. */
export async function startLabSshd(
  state: StateDir,
  plan: LabPlan,
  concurrency: number,
): Promise<number[]> {
  mkdirSync(state.sshDir, { recursive: true, mode: 0o700 });
  // sshd refuses to start without its privilege separation directory.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const keygen = (file: string, comment: string) =>
    run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  if (!existsSync(labKeyFile(state))) await keygen(labKeyFile(state), `lab-${plan.stack}-operator`);
  await writeFile(authorizedKeys(state), readFileSync(`${labKeyFile(state)}.pub`), {
    mode: 0o600,
  });
  const known = await pool(plan.hosts, concurrency, async (h) => {
    if (!existsSync(hostKeyFile(state, h))) {
      await keygen(hostKeyFile(state, h), `lab-${plan.stack}-${h.name}`);
    }
    await writeFile(state.sshdConf(h.index), sshdConfig(state, h), { mode: 0o600 });
    try {
      await run(SSHD, ["-t", "-f", state.sshdConf(h.index)]);
    } catch (e) {
      throw new LabError(`sshd rejects the config of ${h.name}: ${(e as Error).message}`);
    }
    const pub = readFileSync(`${hostKeyFile(state, h)}.pub`, "utf8")
      .trim()
      .split(" ");
    return `${h.address} ${pub[0]} ${pub[1]}`;
  });
  await writeFile(labKnownHosts(state), known.join("\n") + "\n", { mode: 0o600 });
  const pids = plan.hosts.map((h) => startSshdProcess(state, h));
  await waitForSshd(state, plan.hosts);
  return pids;
}

/** Ready when each has written its pid file (sshd does so once it listens). */
export async function waitForSshd(state: StateDir, hosts: HostPlan[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const h of hosts) {
    while (!existsSync(state.sshdPid(h.index))) {
      if (Date.now() > deadline) {
        throw new LabError(
          `sshd of ${h.name} did not start: ${readFileSync(state.sshdLog(h.index), "utf8").trim()}`,
        );
      }
      await sleep(20);
    }
  }
}

export function startSshdProcess(state: StateDir, h: HostPlan): number {
  const fd = openSync(state.sshdLog(h.index), "a");
  try {
    return spawnDetached(
      "nsenter",
      [`--net=${netnsPath(h.ns)}`, "--", SSHD, "-D", "-e", "-f", state.sshdConf(h.index)],
      fd,
    );
  } finally {
    closeSync(fd);
  }
}

/** sshd processes started for this state folder (listeners; sessions end with their client). */
export function labSshdPids(state: StateDir, h?: HostPlan): number[] {
  const marker = h === undefined ? `${state.dir}${path.sep}sshd-h` : state.sshdConf(h.index);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    // sshd rewrites its command line ("sshd: /usr/sbin/sshd -D -e -f <conf> [listener] ..."),
    // so the words are matched in the whole line.
    const line = cmdline(Number(entry)).join(" ");
    if (!/^(sshd: )?(\S*\/)?(sshd|nsenter) /.test(line)) continue;
    if (line.split(" ").some((a) => a.startsWith(marker))) pids.push(Number(entry));
  }
  return pids;
}

export async function stopLabSshd(state: StateDir, h?: HostPlan): Promise<number[]> {
  const pids = labSshdPids(state, h);
  await killAll(pids);
  // A stopped listener may leave its pid file; a fresh start must wait for a new one.
  if (h !== undefined) rmSync(state.sshdPid(h.index), { force: true });
  return pids.filter((p) => !alive(p));
}
