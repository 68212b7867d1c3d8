/**
 * What Felix has programmed in a host's namespace, read from its legacy iptables filter
 * table (python-iptables drives the legacy interface): its endpoint chains and their rules.
 */
import { runIn, sleep } from "./exec.js";

/** Suffixes that have a `felix-to-` chain in the host's legacy iptables filter table. */
export async function felixChains(ns: string): Promise<Set<string>> {
  const stdout = await filterTable(ns);
  return new Set([...stdout.matchAll(/^:felix-to-(\S{11}) /gm)].map((m) => m[1]!));
}

/** The rules of one chain, as iptables-legacy-save prints them. */
export async function chainRules(ns: string, chain: string): Promise<string[]> {
  const stdout = await filterTable(ns);
  return stdout.split("\n").filter((l) => l.startsWith(`-A ${chain} `));
}

/**
 * The host's filter table as iptables-legacy-save prints it. Read again when Felix deleted an
 * ipset between iptables-save reading a rule and naming its set ("Set with index N in kernel
 * doesn't exist"): a table in the middle of a change, not an answer.
 */
async function filterTable(ns: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await runIn(ns, "iptables-legacy-save", ["-t", "filter"])).stdout;
    } catch (e) {
      const midChange = /Set with index \d+ in kernel doesn't exist/.test(String(e));
      if (!midChange || attempt >= 20) throw e;
      await sleep(100);
    }
  }
}
