/**
 * What the lab tests compare before and after a lab: named namespaces, the root namespace's
 * links and BIRD processes. A lab must leave none of its own behind.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { loadConfig, type CalicoConfig } from "../../components/config.js";
import { run } from "../../lab/exec.js";
import { stackRaw } from "./stacks.js";

export interface SystemSnapshot {
  namespaces: string[];
  rootLinks: string[];
  birds: string[];
}

export async function systemSnapshot(): Promise<SystemSnapshot> {
  const ns = await run("ip", ["netns", "list"]);
  const links = await run("ip", ["-o", "link", "show"]);
  const birds: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (/(^|\/)bird$/.test(argv[0] ?? "")) birds.push(`${entry} ${argv.join(" ").trim()}`);
    } catch {
      // gone meanwhile
    }
  }
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
  };
}

/** What `after` has that `before` did not (things left behind). */
export function leftovers(before: SystemSnapshot, after: SystemSnapshot): SystemSnapshot {
  const extra = (a: string[], b: string[]) => b.filter((x) => !a.includes(x));
  return {
    namespaces: extra(before.namespaces, after.namespaces),
    rootLinks: extra(before.rootLinks, after.rootLinks),
    birds: extra(before.birds, after.birds),
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
