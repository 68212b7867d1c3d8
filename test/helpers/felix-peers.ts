/**
 * What the real Felix and ACL Manager 0.10.2 did in a lab host, read from the outside: their
 * chains and ipsets in the host's namespace, their logs, their containers. And the means to
 * feed them synthetic endpoints: a data file in the controller's plugin data directory (as
 * render/ writes one) and a tap for it (Felix programs nothing for an endpoint whose tap is
 * missing or down: it logs an error and retries).
 */
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { iniSection } from "../../components/render/text.js";
import { docker } from "../../lab/docker.js";
import { ipBatch, runIn, sleep } from "../../lab/exec.js";

export interface Synthetic {
  name: string;
  id: string;
  ip: string;
  mac: string;
  host: string;
  group: string;
}

/** The first 11 characters of an endpoint id: Felix's suffix for its tap, chains and ipsets. */
export const suffix = (id: string): string => id.slice(0, 11);

export function synthetic(name: string, ip: string, host: string, group = "web"): Synthetic {
  const id = randomBytes(32).toString("hex");
  const mac = `02:${id.slice(0, 10).replace(/(..)(?!$)/g, "$1:")}`;
  return { name, id, ip, mac, host, group };
}

/** Write an endpoint's data file as `pulumi up` does: aside, then renamed into place. */
export function writeEndpointFile(dir: string, e: Synthetic): void {
  const text = iniSection(
    `endpoint ${e.name}`,
    [
      ["id", e.id],
      ["ip", e.ip],
      ["mac", e.mac],
      ["host", e.host],
      ["group", e.group],
    ],
    "=",
  );
  const tmp = path.join(dir, `.${e.name}.txt.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path.join(dir, `${e.name}.txt`));
}

export function removeEndpointFile(dir: string, e: Synthetic): void {
  unlinkSync(path.join(dir, `${e.name}.txt`));
}

/** A veth pair per endpoint, host side `tap<suffix>`, both ends up (operstate "up"). */
export async function addTaps(ns: string, eps: readonly Synthetic[]): Promise<void> {
  await ipBatch(
    ns,
    eps.flatMap((e) => {
      const s = suffix(e.id);
      return [
        `link add tap${s} type veth peer name cf${s}`,
        `link set cf${s} up`,
        `link set tap${s} up`,
      ];
    }),
  );
}

export async function delTaps(ns: string, eps: readonly Synthetic[]): Promise<void> {
  const { stdout } = await runIn(ns, "ip", ["-o", "link", "show"]);
  const present = eps.filter((e) => stdout.includes(`tap${suffix(e.id)}`));
  await ipBatch(
    ns,
    present.map((e) => `link del tap${suffix(e.id)}`),
  );
}

export { chainRules, felixChains } from "../../lab/felix-chains.js";

/** The names of the host's ipsets. */
export async function ipsetNames(ns: string): Promise<Set<string>> {
  const { stdout } = await runIn(ns, "ipset", ["list", "-n"]);
  return new Set(stdout.split("\n").filter(Boolean));
}

/** The members of one ipset, or undefined when it does not exist. */
export async function ipsetMembers(ns: string, name: string): Promise<string[] | undefined> {
  const r = await runIn(ns, "ipset", ["list", name], { okCodes: [1] });
  if (r.code !== 0) return undefined;
  const at = r.stdout.indexOf("Members:\n");
  return r.stdout
    .slice(at + "Members:\n".length)
    .split("\n")
    .filter(Boolean)
    .sort();
}

/** The six ipsets Felix makes for one endpoint. */
export const endpointIpsets = (id: string): string[] =>
  ["to", "from"].flatMap((d) =>
    ["addr", "port", "icmp"].map((k) => `felix-${d}-${k}-${suffix(id)}`),
  );

/** Wait until `probe` holds; the time it took, or a failure naming `what` after `ms`. */
export async function within(
  what: string,
  ms: number,
  probe: () => Promise<boolean>,
): Promise<number> {
  const t0 = Date.now();
  while (!(await probe())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
  return Date.now() - t0;
}

/** A log file from a byte offset on (what a peer said since then). */
export function logSince(file: string, offset = 0): string {
  return readFileSync(file).subarray(offset).toString("utf8");
}

export const logSize = (file: string): number => statSync(file).size;

/** The endpoint ids Felix logged as received in ENDPOINTCREATED requests in `text`. */
export function createdIds(text: string): Set<string> {
  return new Set([...text.matchAll(/Received ENDPOINTCREATED\((\w+)\)/g)].map((m) => m[1]!));
}

/** Each container's state: "running", or what Docker says it is. */
export async function containerStates(host: string, names: string[]): Promise<string[]> {
  const { stdout } = await docker(host, ["inspect", "-f", "{{.Name}} {{.State.Status}}", ...names]);
  return stdout.trim().split("\n").sort();
}
