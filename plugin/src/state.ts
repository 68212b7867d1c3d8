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
  return a.state === b.state && sameAddressing(a, b);
}

/** Same MAC and addresses: an endpoint whose view changed only in its state. */
export function sameAddressing(a: EndpointView, b: EndpointView): boolean {
  return (
    a.mac === b.mac &&
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

/** What changed in one step of an incremental merge. */
export interface StateDelta {
  /** Endpoints (by name) whose merged definition changed: before and after (absent = none). */
  readonly endpoints: ReadonlyMap<string, { before?: Endpoint; after?: Endpoint }>;
  readonly felixChanged: boolean;
  readonly groupsChanged: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Same definition, wherever it comes from (the `file` field left out). */
function sameDef<T extends { file: string }>(a: T | undefined, b: T | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const strip = (x: T): string => {
    const rest: Partial<T> = { ...x };
    delete rest.file;
    return JSON.stringify(rest);
  };
  return strip(a) === strip(b);
}

function count(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n === 0) m.delete(key);
  else m.set(key, n);
}

/**
 * How many times each name is defined over all files (felix hosts, endpoint names and ids,
 * groups). A name defined exactly once cannot be in a conflict, so a change that touches
 * only such names can be applied to the merged state without merging everything again.
 */
export class DefinitionCounts {
  readonly felix = new Map<string, number>();
  readonly names = new Map<string, number>();
  readonly ids = new Map<string, number>();
  readonly groups = new Map<string, number>();

  add(content: FileContent | null, by: 1 | -1): void {
    if (!content) return;
    for (const f of content.felix) count(this.felix, f.host.toLowerCase(), by);
    for (const e of content.endpoints) {
      count(this.names, e.name, by);
      count(this.ids, e.id, by);
    }
    for (const g of content.groups) count(this.groups, g.name, by);
  }

  /** Every name of `content` is defined at most once. */
  unique(content: FileContent | null): boolean {
    if (!content) return true;
    return (
      content.felix.every((f) => (this.felix.get(f.host.toLowerCase()) ?? 0) <= 1) &&
      content.endpoints.every(
        (e) => (this.names.get(e.name) ?? 0) <= 1 && (this.ids.get(e.id) ?? 0) <= 1,
      ) &&
      content.groups.every((g) => (this.groups.get(g.name) ?? 0) <= 1)
    );
  }
}

/**
 * Applies the change of some files' contents to `state` in place, in time proportional to
 * what changed, when that gives exactly what mergeFiles would: every name the old and new
 * contents define is defined only once, before and after (`counts` is updated here).
 * Returns null, with `counts` updated all the same, when a full merge is needed.
 */
export function applyFileChanges(
  state: State,
  counts: DefinitionCounts,
  changes: ReadonlyArray<{ before: FileContent | null; after: FileContent | null }>,
): StateDelta | null {
  let simple = changes.every((c) => counts.unique(c.before));
  for (const c of changes) counts.add(c.before, -1);
  for (const c of changes) counts.add(c.after, 1);
  simple &&= changes.every((c) => counts.unique(c.after));
  if (!simple) return null;
  const felix = state.felix as Map<string, FelixHost>;
  const endpoints = state.endpoints as Map<string, Endpoint>;
  const groupRules = state.groupRules as Map<string, GroupRules>;
  const delta: Mutable<StateDelta> & {
    endpoints: Map<string, { before?: Endpoint; after?: Endpoint }>;
  } = {
    endpoints: new Map(),
    felixChanged: false,
    groupsChanged: false,
  };
  const felixBefore = new Map<string, FelixHost | undefined>();
  const groupsBefore = new Map<string, GroupRules | undefined>();
  const endpointsBefore = new Map<string, Endpoint | undefined>();
  const remember = <T>(m: Map<string, T | undefined>, key: string, cur: Map<string, T>): void => {
    if (!m.has(key)) m.set(key, cur.get(key));
  };
  for (const { before } of changes) {
    if (!before) continue;
    for (const f of before.felix) {
      const key = f.host.toLowerCase();
      remember(felixBefore, key, felix);
      felix.delete(key);
    }
    for (const e of before.endpoints) {
      remember(endpointsBefore, e.name, endpoints);
      endpoints.delete(e.name);
    }
    for (const g of before.groups) {
      remember(groupsBefore, g.name, groupRules);
      groupRules.delete(g.name);
    }
  }
  for (const { after } of changes) {
    if (!after) continue;
    for (const f of after.felix) {
      const key = f.host.toLowerCase();
      remember(felixBefore, key, felix);
      felix.set(key, f);
    }
    for (const e of after.endpoints) {
      remember(endpointsBefore, e.name, endpoints);
      endpoints.set(e.name, e);
    }
    for (const g of after.groups) {
      remember(groupsBefore, g.name, groupRules);
      groupRules.set(g.name, g);
    }
  }
  for (const [key, old] of felixBefore) {
    if (!sameDef(old, felix.get(key))) delta.felixChanged = true;
  }
  for (const [key, old] of groupsBefore) {
    if (!sameDef(old, groupRules.get(key))) delta.groupsChanged = true;
  }
  for (const [name, old] of endpointsBefore) {
    const now = endpoints.get(name);
    if (sameDef(old, now)) continue;
    delta.endpoints.set(name, {
      ...(old === undefined ? {} : { before: old }),
      ...(now === undefined ? {} : { after: now }),
    });
  }
  return delta;
}
