/**
 * What the lab tests compare before and after a lab: named namespaces, the root namespace's
 * links, BIRD and Docker processes (dockerd, containerd, shims), agents, sshd and mounts. A lab must
 * leave none of its own behind.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { loadConfig, type CalicoConfig } from "../../components/config.js";
import { run } from "../../lab/exec.js";
import { stackRaw } from "./stacks.js";

/** Why a lab test cannot run here (namespaces, BIRD and dockerd need root on Linux), or false. */
export const LAB_SKIP: string | false =
  process.platform !== "linux" || process.getuid?.() !== 0 ? "needs root on Linux" : false;

export interface SystemSnapshot {
  namespaces: string[];
  rootLinks: string[];
  birds: string[];
  /** dockerd, containerd and containerd-shim processes. */
  dockers: string[];
  /** Host agents (`calico-agent` scripts). */
  agents: string[];
  /** Mount points. */
  mounts: string[];
  /** sshd processes (the lab runs one per host). */
  sshds: string[];
  /** The plugin's processes (the lab runs its two roles on the controller). */
  plugins: string[];
}

/** An empty snapshot: what `leftovers` says when nothing was left behind. */
export const NOTHING: SystemSnapshot = {
  namespaces: [],
  rootLinks: [],
  birds: [],
  dockers: [],
  agents: [],
  mounts: [],
  sshds: [],
  plugins: [],
};

export async function systemSnapshot(): Promise<SystemSnapshot> {
  const ns = await run("ip", ["netns", "list"]);
  const links = await run("ip", ["-o", "link", "show"]);
  const birds: string[] = [];
  const dockers: string[] = [];
  const agents: string[] = [];
  const sshds: string[] = [];
  const plugins: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const line = `${entry} ${argv.join(" ").trim()}`;
      // `bird -p` only parses a file and exits (other suites run it): not a lab's BIRD.
      if (/(^|\/)bird$/.test(argv[0] ?? "") && !argv.includes("-p")) birds.push(line);
      if (/(^|\/)(dockerd|containerd[a-z0-9-]*)$/.test(argv[0] ?? "")) dockers.push(line);
      if (argv.some((a) => /calico-agent[^/]*\.sh$/.test(a))) agents.push(line);
      // sshd rewrites its command line: "sshd: /usr/sbin/sshd -D -f <conf> [listener] ...".
      if (/^(sshd: )?(\S*\/)?sshd( |$)/.test(argv.join(" "))) sshds.push(line);
      if (argv.some((a) => a.endsWith("plugin/src/cli.ts")) && argv.includes("--data-dir")) {
        plugins.push(line);
      }
    } catch {
      // gone meanwhile
    }
  }
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && m !== "");
  return {
    namespaces: ns.stdout
      .split("\n")
      .map((l) => l.split(" ")[0]!)
      .filter(Boolean)
      .sort(),
    rootLinks: links.stdout
      .split("\n")
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined)
      .sort(),
    birds: birds.sort(),
    dockers: dockers.sort(),
    agents: agents.sort(),
    mounts: [...new Set(mounts)].sort(),
    sshds: sshds.sort(),
    plugins: plugins.sort(),
  };
}

/** What `after` has that `before` did not (things left behind). */
export function leftovers(before: SystemSnapshot, after: SystemSnapshot): SystemSnapshot {
  const extra = (a: string[], b: string[]) => b.filter((x) => !a.includes(x));
  return {
    namespaces: extra(before.namespaces, after.namespaces),
    rootLinks: extra(before.rootLinks, after.rootLinks),
    birds: extra(before.birds, after.birds),
    dockers: extra(before.dockers, after.dockers),
    agents: extra(before.agents, after.agents),
    mounts: extra(before.mounts, after.mounts),
    sshds: extra(before.sshds, after.sshds),
    plugins: extra(before.plugins, after.plugins),
  };
}

/** A committed stack's raw config with changes applied, validated. */
export function stackWith(
  stack: string,
  change: (raw: Record<string, unknown>) => void = () => {},
): CalicoConfig {
  const raw = stackRaw(stack);
  change(raw);
  return loadConfig(raw);
}

/** A raw config from YAML text (the `calico-docker:` keys without prefix). */
export function configFromYaml(text: string): CalicoConfig {
  return loadConfig(parse(text) as unknown);
}
