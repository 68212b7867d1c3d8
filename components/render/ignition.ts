/**
 * Ignition (spec 3.3.0, Flatcar) for a GCE host: a static, host-independent bootstrap, the
 * same for every host of a stack: the `core` user's SSH key (its groups left as Flatcar
 * sets them: docker, wheel, ...), docker enabled, what a reboot must not lose (kernel
 * modules, sysctls, the Calico directories) and Flatcar's reboot strategy. Nothing an
 * endpoint or the host agent changes is here: `metadata["user-data"]` replaces the instance
 * when it changes, so the agent and everything per host come with host preparation over
 * SSH (which also installs the boot unit that prepares the host again at every boot).
 */
import type { ClusterModel } from "../model.js";
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

/** Where Flatcar's update and reboot settings go (read by locksmithd). */
export const UPDATE_CONF = "/etc/flatcar/update.conf";

/** /etc/flatcar/update.conf: the reboot strategy, and the window when one is set. */
export function updateConf(model: ClusterModel): string {
  const { strategy, window } = model.config.gce.reboot;
  const lines = [`REBOOT_STRATEGY=${strategy}`];
  if (window !== undefined) {
    lines.push(`LOCKSMITHD_REBOOT_WINDOW_START="${window.start}"`);
    lines.push(`LOCKSMITHD_REBOOT_WINDOW_LENGTH="${window.length}"`);
  }
  return lines.join("\n") + "\n";
}

export function renderIgnition(model: ClusterModel, sshPublicKey: string): string {
  const key = sshPublicKey.trim();
  if (/[\r\n]/.test(key) || !SSH_KEY_RE.test(key)) {
    throw new RenderError(
      `the SSH public key for the hosts is not one OpenSSH public key line ` +
        `(like "ssh-ed25519 AAAA... comment"), got ${JSON.stringify(sshPublicKey.slice(0, 40))}`,
    );
  }
  const config = {
    ignition: { version: IGNITION_VERSION },
    passwd: {
      // No `groups`: Ignition would replace core's groups (usermod --groups), dropping wheel.
      users: [{ name: "core", sshAuthorizedKeys: [key] }],
    },
    systemd: {
      units: [{ name: "docker.service", enabled: true }],
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
        file(UPDATE_CONF, updateConf(model)),
      ],
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}
