/**
 * The merged data of the whole directory (what every file contributes, first definition
 * wins) and what follows from it: the endpoints each Felix host has, and the groups with
 * their members and policy. Everything here is pure.
 */
import type {
  Endpoint,
  EndpointState,
  FelixHost,
  FileContent,
  GroupRules,
  Problem,
  Rule,
} from "./parse.js";
/** The merged data of the whole directory. Keys of `felix` are lowercase host names. */
export interface State {
  readonly felix: ReadonlyMap<string, FelixHost>;
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  readonly groupRules: ReadonlyMap<string, GroupRules>;
}

export const EMPTY_STATE: State = {
  felix: new Map(),
  endpoints: new Map(),
  groupRules: new Map(),
};

/** Merges the files' contents, in file-name order; the first definition of a name wins. */
export function mergeFiles(files: ReadonlyMap<string, FileContent>): {
  state: State;
  problems: Problem[];
} {
  const problems: Problem[] = [];
  const felix = new Map<string, FelixHost>();
  const endpoints = new Map<string, Endpoint>();
  const byId = new Map<string, Endpoint>();
  const groupRules = new Map<string, GroupRules>();
  const names = [...files.keys()].sort();
  for (const file of names) {
    const content = files.get(file);
    if (!content) continue;
    for (const f of content.felix) {
      const key = f.host.toLowerCase();
      const other = felix.get(key);
      if (other) {
        problems.push({
          file,
          section: `felix ${f.host}`,
          message: `host ${f.host} is already defined in ${other.file}; this one is ignored`,
        });
        continue;
      }
      felix.set(key, f);
    }
    for (const e of content.endpoints) {
      const other = endpoints.get(e.name);
      if (other) {
        problems.push({
          file,
          section: `endpoint ${e.name}`,
          message: `endpoint ${e.name} is already defined in ${other.file}; this one is ignored`,
        });
        continue;
      }
      const sameId = byId.get(e.id);
      if (sameId) {
        problems.push({
          file,
          section: `endpoint ${e.name}`,
          field: "id",
          value: e.id,
          message: `id is already used by endpoint ${sameId.name} (${sameId.file}); this one is ignored`,
        });
        continue;
      }
      endpoints.set(e.name, e);
      byId.set(e.id, e);
    }
    for (const g of content.groups) {
      const other = groupRules.get(g.name);
      if (other) {
        problems.push({
          file,
          section: `group ${g.name}`,
          message: `group ${g.name} is already defined in ${other.file}; this one is ignored`,
        });
        continue;
      }
      groupRules.set(g.name, g);
    }
  }
  return { state: { felix, endpoints, groupRules }, problems };
}

function shortName(name: string): string {
  const dot = name.indexOf(".");
  return (dot < 0 ? name : name.slice(0, dot)).toLowerCase();
}

/**
 * Finds the Felix host a name refers to: exact (case-insensitive) match first, else the
 * unqualified names (up to the first dot) compared, as the seed's hostnames were.
 */
export function resolveHost(state: State, name: string): FelixHost | undefined {
  const exact = state.felix.get(name.toLowerCase());
  if (exact) return exact;
  const short = shortName(name);
  for (const f of state.felix.values()) {
    if (shortName(f.host) === short) return f;
  }
  return undefined;
}

/** What Felix is told about one endpoint. */
export interface EndpointView {
  readonly mac: string;
  readonly state: EndpointState;
  readonly addrs: readonly string[];
}

export function sameView(a: EndpointView, b: EndpointView): boolean {
  return (
    a.mac === b.mac &&
    a.state === b.state &&
    a.addrs.length === b.addrs.length &&
    a.addrs.every((x, i) => x === b.addrs[i])
  );
}

/** endpoint_id -> view, for every endpoint whose `host` resolves to the given Felix host. */
export function endpointsForHost(state: State, felixHost: string): Map<string, EndpointView> {
  const out = new Map<string, EndpointView>();
  const target = felixHost.toLowerCase();
  for (const e of state.endpoints.values()) {
    const f = resolveHost(state, e.host);
    if (f && f.host.toLowerCase() === target) {
      out.set(e.id, { mac: e.mac, state: e.state, addrs: [e.ip] });
    }
  }
  return out;
}

/** Endpoints whose host is not in any `[felix]` section. */
export function orphanEndpoints(state: State): Endpoint[] {
  return [...state.endpoints.values()].filter((e) => resolveHost(state, e.host) === undefined);
}

export interface GroupPolicy {
  readonly inbound: readonly Rule[];
  readonly outbound: readonly Rule[];
}

/** The prototype's policy: members reach each other and may start traffic to anywhere. */
export function defaultPolicy(group: string): GroupPolicy {
  return {
    inbound: [{ group, cidr: null, protocol: null, port: null }],
    outbound: [
      { group, cidr: null, protocol: null, port: null },
      { group: null, cidr: "0.0.0.0/0", protocol: null, port: null },
    ],
  };
}

export interface Group {
  readonly name: string;
  /** endpoint_id -> IP strings. */
  readonly members: Readonly<Record<string, readonly string[]>>;
  readonly policy: GroupPolicy;
}

/** Every group that has at least one member, with its explicit or default policy. */
export function groupsOf(state: State): Map<string, Group> {
  const members = new Map<string, Record<string, string[]>>();
  for (const e of state.endpoints.values()) {
    let m = members.get(e.group);
    if (!m) {
      m = {};
      members.set(e.group, m);
    }
    (m[e.id] ??= []).push(e.ip);
  }
  const out = new Map<string, Group>();
  for (const name of [...members.keys()].sort()) {
    const rules = state.groupRules.get(name);
    out.set(name, {
      name,
      members: members.get(name) ?? {},
      policy: rules ? { inbound: rules.inbound, outbound: rules.outbound } : defaultPolicy(name),
    });
  }
  return out;
}
