/**
 * The order of group publications, so that the ACL Manager never holds a rule naming a
 * group it does not have.
 *
 * ACL Manager 0.10.2 recalculates every endpoint's rules after each GROUPUPDATE and looks
 * each rule's group up among the groups it has, which are those published with members
 * (`recalc_rules` in `calico/acl_manager/processor.py`). A rule naming any other group raises
 * KeyError in its subscriber thread, which dies: no update is applied ever again. So:
 * - a rule naming a group without members is not published (it would match nobody anyway);
 * - before a group is deleted (published empty), every group whose rules name it is
 *   republished without those rules;
 * - a new group is published with only the rules naming groups already there, and
 *   republished with all its rules once the groups they name are there too.
 * Everything here is pure.
 */
import type { Rule } from "./parse.js";
import type { Group, GroupPolicy } from "./state.js";

export type Members = Readonly<Record<string, readonly string[]>>;

/** A group as the ACL Manager has it (as published, with members). */
export interface SentGroup {
  readonly members: Members;
  readonly policy: GroupPolicy;
}

/** One GROUPUPDATE to publish; empty `members` deletes the group. */
export interface GroupStep extends SentGroup {
  readonly name: string;
}

/** The groups a policy's rules name. */
export function namedGroups(policy: GroupPolicy): Set<string> {
  const out = new Set<string>();
  for (const r of [...policy.inbound, ...policy.outbound]) if (r.group !== null) out.add(r.group);
  return out;
}

/** The policy without the rules that name a group outside `allowed`. */
export function restrictPolicy(policy: GroupPolicy, allowed: ReadonlySet<string>): GroupPolicy {
  const keep = (r: Rule): boolean => r.group === null || allowed.has(r.group);
  return { inbound: policy.inbound.filter(keep), outbound: policy.outbound.filter(keep) };
}

function print(g: SentGroup): string {
  const members = Object.keys(g.members)
    .sort()
    .map((id) => [id, g.members[id]]);
  return JSON.stringify([members, g.policy]);
}

/**
 * The publications that take an ACL Manager holding `known` to `target` (groups with
 * members, with their full policy) without ever holding a rule that names a group it does
 * not have; and what it holds afterwards. From an empty `known` this publishes everything
 * (GETGROUPS, periodic republication).
 */
export function planGroups(
  known: ReadonlyMap<string, SentGroup>,
  target: ReadonlyMap<string, Group>,
): { steps: GroupStep[]; known: Map<string, SentGroup> } {
  const model = new Map(known);
  const steps: GroupStep[] = [];
  const emit = (name: string, members: Members, policy: GroupPolicy): void => {
    steps.push({ name, members, policy });
    if (Object.keys(members).length === 0) model.delete(name);
    else model.set(name, { members, policy });
  };
  const subset = (names: Set<string>, allowed: ReadonlySet<string>): boolean =>
    [...names].every((n) => allowed.has(n));

  // 1. Nothing held may name a group about to be deleted.
  const gone = new Set([...model.keys()].filter((n) => !target.has(n)));
  const staying = [...model.keys()].filter((n) => !gone.has(n));
  for (const [name, sent] of [...model]) {
    const allowed = new Set([...staying, name]);
    if (subset(namedGroups(sent.policy), allowed)) continue;
    const t = target.get(name);
    if (t) emit(name, t.members, restrictPolicy(t.policy, allowed));
    else emit(name, sent.members, restrictPolicy(sent.policy, allowed));
  }
  // 2. Delete.
  for (const name of [...gone].sort()) {
    emit(name, {}, model.get(name)?.policy ?? { inbound: [], outbound: [] });
  }
  // 3. New groups, those whose named groups are already there first.
  const added = [...target.keys()].filter((n) => !model.has(n)).sort();
  while (added.length > 0) {
    const ready = added.findIndex((n) => {
      const g = target.get(n);
      return g !== undefined && subset(namedGroups(g.policy), new Set([...model.keys(), n]));
    });
    const [name] = added.splice(ready < 0 ? 0 : ready, 1);
    const g = name === undefined ? undefined : target.get(name);
    if (name === undefined || g === undefined) continue;
    emit(name, g.members, restrictPolicy(g.policy, new Set([...model.keys(), name])));
  }
  // 4. Every group in its final form: rules naming groups without members left out.
  const all = new Set(target.keys());
  for (const [name, g] of [...target].sort(([a], [b]) => a.localeCompare(b))) {
    const final = { members: g.members, policy: restrictPolicy(g.policy, all) };
    const held = model.get(name);
    if (!held || print(held) !== print(final)) emit(name, final.members, final.policy);
  }
  return { steps, known: model };
}

/** Rules that name a group without members, as `group -> [named groups]` (for a warning). */
export function danglingRules(target: ReadonlyMap<string, Group>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, g] of target) {
    const missing = [...namedGroups(g.policy)].filter((n) => !target.has(n)).sort();
    if (missing.length > 0) out.set(name, missing);
  }
  return out;
}
