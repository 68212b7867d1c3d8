/**
 * Ignition (spec 3.3.0, Flatcar) for a GCE host: the `core` user with the SSH key in the
 * docker group, docker enabled, what a reboot must not lose (kernel modules, sysctls, the
 * Calico directories), and the host agent with its unit, enabled, so endpoint containers
 * are wired from the first boot on (host preparation over SSH installs the same files).
 */
import type { ClusterModel, HostModel } from "../model.js";
import { AGENT_SCRIPT, AGENT_UNIT, agentUnit, renderAgentScript } from "./agent-script.js";
import { HOST_DIRS, HOST_SYSCTLS, KERNEL_MODULES } from "./host-script.js";
import { RenderError } from "./text.js";

export const IGNITION_VERSION = "3.3.0";

/** `ssh-ed25519 AAAA... comment` and friends: one line, a known key type first. */
const SSH_KEY_RE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) \S+/;

interface IgnitionFile {
  path: string;
  mode: number;
  overwrite: boolean;
  contents: { source: string };
}

function dataUrl(text: string): string {
  return `data:,${encodeURIComponent(text)}`;
}

function file(path: string, text: string, mode = 0o644): IgnitionFile {
  return { path, mode, overwrite: true, contents: { source: dataUrl(text) } };
}

/** The tmpfiles.d entries: the directories again at every boot (/var/run is a tmpfs). */
export function tmpfilesConf(): string {
  return HOST_DIRS.map((d) => `d ${d} 0755 root root -`).join("\n") + "\n";
}

export function renderIgnition(model: ClusterModel, host: HostModel, sshPublicKey: string): string {
  const key = sshPublicKey.trim();
  if (/[\r\n]/.test(key) || !SSH_KEY_RE.test(key)) {
    throw new RenderError(
      `the SSH public key for ${host.name} is not one OpenSSH public key line ` +
        `(like "ssh-ed25519 AAAA... comment"), got ${JSON.stringify(sshPublicKey.slice(0, 40))}`,
    );
  }
  const config = {
    ignition: { version: IGNITION_VERSION },
    passwd: {
      users: [{ name: "core", sshAuthorizedKeys: [key], groups: ["docker"] }],
    },
    systemd: {
      units: [
        { name: "docker.service", enabled: true },
        { name: AGENT_UNIT, enabled: true, contents: agentUnit() + "\n" },
      ],
    },
    storage: {
      directories: HOST_DIRS.filter((d) => !d.startsWith("/var/run/")).map((path) => ({
        path,
        mode: 0o755,
      })),
      files: [
        file("/etc/modules-load.d/calico.conf", KERNEL_MODULES.join("\n") + "\n"),
        file(
          "/etc/sysctl.d/calico.conf",
          HOST_SYSCTLS.map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
        ),
        file("/etc/tmpfiles.d/calico.conf", tmpfilesConf()),
        file(AGENT_SCRIPT, renderAgentScript(model, host), 0o755),
      ],
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}
