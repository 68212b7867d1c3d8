/**
 * fast-check arbitraries for valid random stacks.
 *
 *   stackArb(opts?)  -> raw stack configs (what `loadConfig` takes) that always validate:
 *                       1..maxHosts hosts (existing or gce), 0..maxEndpointsPerHost
 *                       endpoints each, unique IPs inside the pool and inside the host's
 *                       /24 block (declared as `endpointBlock` at random), groups with and
 *                       without explicit rules, BGP on/off, full mesh or route reflectors,
 *                       multihop or direct sessions (direct only on existing).
 *   modelArb(opts?)  -> { raw, model } with `model = buildModel(loadConfig(raw))`.
 *
 * Options narrow the space: `{ platform: "existing", bgp: true, peering: "route-reflector",
 * session: "direct" }`. Endpoint IPs come from `10.<n>.<host>.<k>`-free ranges so that they
 * never collide with host addresses.
 */
import fc from "fast-check";
import { loadConfig, RESERVED_ENDPOINT_NAMES } from "../../components/config.js";
import { buildModel, type ClusterModel } from "../../components/model.js";

export interface StackArbOptions {
  platform?: "existing" | "gce";
  bgp?: boolean;
  peering?: "full-mesh" | "route-reflector";
  session?: "multihop" | "direct";
  maxHosts?: number;
  maxEndpointsPerHost?: number;
}

/** Pools with at least 16 /24 blocks, none overlapping host addresses (10.x) or each other. */
const POOLS = ["192.168.0.0/16", "172.20.0.0/16", "100.64.0.0/20"] as const;
const ZONES = ["us-central1-a", "us-central1-b", "europe-west1-b", "asia-east1-a"] as const;
const GROUPS = ["web", "db", "app", "cache", "g.1", "Blue_team"] as const;
const PROTOCOLS = ["tcp", "udp", "sctp"] as const;

const hostName = fc.stringMatching(/^[a-z]([a-z0-9-]{0,10}[a-z0-9])?$/);
/** Endpoint names; never `felix` or `groups`, whose data files the plugin reserves. */
const endpointName = fc
  .stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/)
  .filter((n) => !RESERVED_ENDPOINT_NAMES.includes(n));

function poolBase(pool: string): number[] {
  return pool.split("/")[0]!.split(".").map(Number);
}

/** The i-th /24 block of a pool, and an address in it. */
function blockOf(pool: string, i: number): string {
  const [a, b, c] = poolBase(pool);
  return `${a}.${b}.${c! + i}.0/24`;
}
function ipIn(pool: string, block: number, host: number): string {
  const [a, b, c] = poolBase(pool);
  return `${a}.${b}.${c! + block}.${host}`;
}

const ruleArb = (groups: readonly string[]) =>
  fc.oneof(
    fc.record({ group: fc.constantFrom(...groups) }),
    fc.record({ cidr: fc.constantFrom("0.0.0.0/0", "10.0.0.0/8", "203.0.113.0/24") }),
    fc.record({
      group: fc.constantFrom(...groups),
      protocol: fc.constantFrom(...PROTOCOLS),
      port: fc.oneof(
        fc.integer({ min: 1, max: 65535 }),
        fc
          .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
          .map(([x, y]) => [Math.min(x, y), Math.max(x, y)] as [number, number]),
      ),
    }),
    fc.record({ cidr: fc.constant("0.0.0.0/0"), protocol: fc.constant("icmp") }),
  );

export function stackArb(opts: StackArbOptions = {}): fc.Arbitrary<Record<string, unknown>> {
  const maxHosts = opts.maxHosts ?? 6;
  const maxEps = opts.maxEndpointsPerHost ?? 5;
  return fc
    .record({
      platform: opts.platform ? fc.constant(opts.platform) : fc.constantFrom("existing", "gce"),
      names: fc.uniqueArray(hostName, { minLength: 1, maxLength: maxHosts }),
      pool: fc.constantFrom(...POOLS),
      bgp: opts.bgp !== undefined ? fc.constant(opts.bgp) : fc.boolean(),
      peering: opts.peering
        ? fc.constant(opts.peering)
        : fc.constantFrom("full-mesh", "route-reflector"),
      session: opts.session ? fc.constant(opts.session) : fc.constantFrom("multihop", "direct"),
      asNumber: fc.oneof(fc.constant(64511), fc.integer({ min: 1, max: 4294967295 })),
      declareBlocks: fc.boolean(),
      seed: fc.integer({ min: 0, max: 2 ** 30 }),
    })
    .chain((s) => {
      const n = s.names.length;
      return fc
        .record({
          controller: fc.integer({ min: 0, max: n - 1 }),
          reflectors: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), {
            minLength: 1,
            maxLength: Math.min(n, 3),
          }),
          zones: fc.array(fc.constantFrom(...ZONES), { minLength: n, maxLength: n }),
          endpoints: fc.array(
            fc.uniqueArray(
              fc.record({
                host: fc.integer({ min: 1, max: 254 }),
                group: fc.constantFrom(...GROUPS),
                name: fc.option(endpointName, { nil: undefined }),
              }),
              { maxLength: maxEps, selector: (e) => e.host },
            ),
            { minLength: n, maxLength: n },
          ),
          ruled: fc.subarray([...GROUPS]),
          rules: fc.dictionary(
            fc.constantFrom(...GROUPS),
            fc.record({
              inbound: fc.array(ruleArb(GROUPS), { maxLength: 3 }),
              outbound: fc.array(ruleArb(GROUPS), { maxLength: 3 }),
            }),
          ),
        })
        .map((x) => {
          const session = s.platform === "gce" ? "multihop" : s.session;
          const hosts = s.names.map((name, i) => ({
            name,
            ...(s.platform === "existing"
              ? { address: `10.0.${Math.floor(i / 200)}.${(i % 200) + 10}` }
              : { zone: x.zones[i] }),
            ...(s.declareBlocks ? { endpointBlock: blockOf(s.pool, i) } : {}),
          }));
          // Endpoint names must be unique: drop a chosen name that is already taken.
          const used = new Set<string>();
          const endpoints = x.endpoints.flatMap((eps, i) =>
            eps.map((e) => {
              const ip = ipIn(s.pool, i, e.host);
              const name = e.name !== undefined && !used.has(e.name) ? e.name : undefined;
              used.add(name ?? ip.replaceAll(".", "_"));
              return { ...(name ? { name } : {}), host: s.names[i]!, ip, group: e.group };
            }),
          );
          // Rules may only name groups that exist: members' groups or ruled groups.
          const groups = Object.fromEntries(
            Object.entries(x.rules).filter(([g]) => x.ruled.includes(g as (typeof GROUPS)[number])),
          );
          const existing = new Set([...endpoints.map((e) => e.group), ...Object.keys(groups)]);
          for (const rules of Object.values(groups)) {
            rules.inbound = rules.inbound.filter((r) => !("group" in r) || existing.has(r.group));
            rules.outbound = rules.outbound.filter((r) => !("group" in r) || existing.has(r.group));
          }
          const raw: Record<string, unknown> = {
            platform: s.platform,
            controller: s.names[x.controller],
            hosts,
            endpoints,
            endpointPool: s.pool,
            groups,
            bgp: {
              enabled: s.bgp,
              asNumber: s.asNumber,
              peering: s.peering,
              session,
              ...(s.peering === "route-reflector"
                ? { routeReflectors: x.reflectors.map((i) => s.names[i]) }
                : {}),
            },
          };
          if (s.platform === "existing") {
            raw.sshPrivateKey = { secret: true };
            raw.ssh = { user: "core" };
          } else {
            raw.gce = {
              sshSourceRanges: ["203.0.113.0/24"],
              routeGranularity: s.declareBlocks ? "host-block" : "endpoint",
            };
          }
          return raw;
        });
    });
}

/** A generated stack and its model (the config always validates). */
export function modelArb(
  opts: StackArbOptions = {},
): fc.Arbitrary<{ raw: Record<string, unknown>; model: ClusterModel }> {
  return stackArb(opts).map((raw) => ({ raw, model: buildModel(loadConfig(raw)) }));
}
