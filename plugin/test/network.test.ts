/**
 * The network API over real ZeroMQ sockets on loopback, with a fake ACL Manager.
 * Ports 22000-22199.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { ep, networkRig } from "./fixture.js";
import { until } from "./helpers.js";
import { FakeAclManager, type Json } from "./peers.js";

/**
 * GETGROUPS until `check` holds: a SUB that has only just connected may miss the first
 * publications (PUB/SUB drops what is sent before the subscription arrives).
 */
async function heldAfterGetGroups(
  acl: FakeAclManager,
  check: (acl: FakeAclManager) => boolean,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await acl.getGroups();
    try {
      await until(() => check(acl), 2500, "groups held after GETGROUPS");
      return;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
}

function noViolations(acl: FakeAclManager): void {
  assert.deepEqual(acl.violations, []);
}

const prototypePolicy = (group: string): Json => ({
  inbound: [{ group, cidr: null, protocol: null, port: null }],
  outbound: [
    { group, cidr: null, protocol: null, port: null },
    { group: null, cidr: "0.0.0.0/0", protocol: null, port: null },
  ],
  inbound_default: "deny",
  outbound_default: "deny",
});

test("GETGROUPS: SUCCESS reply, then every group is published", async (t) => {
  const a = ep(1, "h1", "web");
  const b = ep(2, "h1", "web");
  const c = ep(3, "h1", "db");
  const rig = await networkRig(t, { basePort: 22000, endpoints: [a, b, c] });
  const since = rig.acl.received.length;
  const reply = await rig.acl.getGroups();
  assert.deepEqual(reply, { type: "GETGROUPS", rc: "SUCCESS", message: "" });
  const web = await rig.acl.waitForGroup("web", undefined, { since });
  const db = await rig.acl.waitForGroup("db", undefined, { since });
  assert.equal(web.value.topic, "groups");
  assert.deepEqual(Object.keys(web.value.msg).sort(), [
    "group",
    "issued",
    "members",
    "rules",
    "type",
  ]);
  assert.equal(web.value.msg["type"], "GROUPUPDATE");
  assert.ok(Number.isInteger(web.value.msg["issued"]));
  assert.deepEqual(web.value.msg["members"], { [a.id]: [a.ip], [b.id]: [b.ip] });
  assert.deepEqual(web.value.msg["rules"], prototypePolicy("web"));
  assert.deepEqual(db.value.msg["members"], { [c.id]: [c.ip] });
  assert.deepEqual(db.value.msg["rules"], prototypePolicy("db"));
  noViolations(rig.acl);
});

test("no groups: the networkheartbeat keeps the ACL Manager alive", async (t) => {
  const rig = await networkRig(t, { basePort: 22010, plugin: { networkHeartbeatMs: 150 } });
  const beats = await rig.acl.received.waitForCount((p) => p.topic === "networkheartbeat", 2, {
    timeoutMs: 2000,
  });
  for (const b of beats) {
    assert.deepEqual(Object.keys(b.msg).sort(), ["issued", "type"]);
    assert.equal(b.msg["type"], "HEARTBEAT");
    assert.ok(Number.isInteger(b.msg["issued"]));
  }
  assert.equal(rig.acl.received.items.filter((i) => i.value.topic === "groups").length, 0);
  noViolations(rig.acl);
});

test("with groups, heartbeats keep the ACL Manager alive and no group is republished", async (t) => {
  // Each republished group makes the ACL Manager 0.10.2 resend every endpoint's ACLs and
  // Felix reprogram them all: the plugin must not do that just to stay alive.
  const rig = await networkRig(t, {
    basePort: 22040,
    endpoints: [ep(1, "h1", "web"), ep(2, "h1", "db")],
    plugin: { networkHeartbeatMs: 100 },
  });
  await rig.acl.waitForGroup("web");
  await rig.acl.waitForGroup("db");
  const since = rig.acl.received.length;
  await rig.acl.received.waitForCount((p) => p.topic === "networkheartbeat", 5, {
    since,
    timeoutMs: 3000,
  });
  const later = rig.acl.received.items.slice(since).filter((i) => i.value.topic === "groups");
  assert.deepEqual(
    later.map((i) => i.value.msg["group"]),
    [],
  );
  noViolations(rig.acl);
});

test("all groups are republished periodically, as a safety net", async (t) => {
  const rig = await networkRig(t, {
    basePort: 22020,
    endpoints: [ep(1, "h1", "web")],
    plugin: { republishIntervalMs: 150, networkHeartbeatMs: 60_000 },
  });
  const updates = await rig.acl.received.waitForCount(
    (p) => p.topic === "groups" && p.msg["group"] === "web",
    3,
    { timeoutMs: 2000 },
  );
  for (const u of updates)
    assert.deepEqual(Object.keys(u.msg["members"] as Json), [ep(1, "h1").id]);
  noViolations(rig.acl);
});

test("a subscriber that joins gets every group without asking", async (t) => {
  const a = ep(1, "h1", "web");
  const c = ep(2, "h1", "db");
  const rig = await networkRig(t, { basePort: 22050, endpoints: [a, c] });
  await rig.acl.waitForGroup("web");
  await new Promise((r) => setTimeout(r, 1100)); // past the coalescing window (1 s)
  // A second ACL Manager (or the first, reconnected) joins: it asks for nothing.
  const late = new FakeAclManager(rig.acl.opts);
  await late.start();
  t.after(() => late.stop());
  const t0 = performance.now();
  const web = await late.waitForGroup("web", undefined, { timeoutMs: 2000 });
  assert.ok(web.at - t0 < 1000, `took ${Math.round(web.at - t0)} ms`);
  assert.deepEqual(web.value.msg["members"], { [a.id]: [a.ip] });
  await late.waitForGroup("db", undefined, { timeoutMs: 2000 });
  noViolations(late);
});

test("joining and asking at once, as the ACL Manager does at its start: one publication", async (t) => {
  // The plugin's debug log says when it has seen the subscription; the GETGROUPS is sent only
  // then, as the ACL Manager's comes after its subscribe. Without that order the request can
  // overtake the subscription (two TCP connections), and then two publications are right.
  const rig = await networkRig(t, {
    basePort: 22060,
    endpoints: [ep(1, "h1", "web")],
    plugin: { joinDelayMs: 2000 },
    logLevel: "debug",
  });
  await rig.acl.waitForGroup("web");
  await new Promise((r) => setTimeout(r, 1100)); // past the coalescing window (1 s)
  const from = rig.log.lines.length;
  const after = (msg: string): Array<Record<string, unknown>> =>
    rig.log.lines.slice(from).filter((l) => l["msg"] === msg);
  const joiner = new FakeAclManager(rig.acl.opts);
  await joiner.start();
  t.after(() => joiner.stop());
  await until(
    () =>
      after("full publication coalesced with the next one").some((l) => l["why"] === "subscribed"),
    5000,
    "the plugin to see the subscription",
  );
  await joiner.getGroups();
  await joiner.waitForGroup("web", undefined, { timeoutMs: 5000 });
  // A second publication would come one coalescing window (1 s) after the first.
  await new Promise((r) => setTimeout(r, 1500));
  const webs = joiner.received.items.filter((i) => i.value.msg["group"] === "web");
  assert.equal(webs.length, 1, `web published ${webs.length} times to a joining ACL Manager`);
  assert.deepEqual(
    after("published all groups").map((l) => l["why"]),
    ["subscribed"],
    "the GETGROUPS shared the publication the subscription set off",
  );
  noViolations(joiner);
});

test("membership change and group deletion are published within a second", async (t) => {
  const a = ep(1, "h1", "web");
  // Each change measured alone: no coalescing (it has its own test below).
  const rig = await networkRig(t, {
    basePort: 22030,
    endpoints: [a],
    plugin: { groupUpdateIntervalMs: 0 },
  });
  await rig.acl.getGroups();
  await rig.acl.waitForGroup("web");

  // A second member joins.
  const b = ep(2, "h1", "web");
  let since = rig.acl.received.length;
  let t0 = performance.now();
  await rig.writeEndpoint(b);
  const joined = await rig.acl.waitForGroup(
    "web",
    (m) => Object.keys(m["members"] as Json).length === 2,
    {
      since,
    },
  );
  assert.ok(joined.at - t0 < 1000, `took ${joined.at - t0} ms`);
  assert.deepEqual(joined.value.msg["members"], { [a.id]: [a.ip], [b.id]: [b.ip] });

  // a moves to group "db": web shrinks, db appears.
  since = rig.acl.received.length;
  t0 = performance.now();
  await rig.writeEndpoint({ ...a, group: "db" });
  const web = await rig.acl.waitForGroup("web", undefined, { since });
  const db = await rig.acl.waitForGroup("db", undefined, { since });
  assert.ok(Math.max(web.at, db.at) - t0 < 1000);
  assert.deepEqual(web.value.msg["members"], { [b.id]: [b.ip] });
  assert.deepEqual(db.value.msg["members"], { [a.id]: [a.ip] });
  assert.deepEqual(db.value.msg["rules"], prototypePolicy("db"));

  // The last member of web goes: web is published with empty members (deleted).
  since = rig.acl.received.length;
  t0 = performance.now();
  await rm(join(rig.dir, `${b.name}.txt`));
  const deleted = await rig.acl.waitForGroup("web", undefined, { since });
  assert.ok(deleted.at - t0 < 1000);
  assert.deepEqual(deleted.value.msg["members"], {});
  assert.deepEqual(deleted.value.msg["rules"], prototypePolicy("web"));

  // A deleted group is not republished afterwards.
  since = rig.acl.received.length;
  await rig.acl.getGroups();
  await rig.acl.waitForGroup("db", undefined, { since });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(
    rig.acl.received.items.slice(since).filter((i) => i.value.msg["group"] === "web").length,
    0,
  );
  noViolations(rig.acl);
});

test("groups.txt rules are published as given; editing them republishes the group", async (t) => {
  const inbound = [
    { group: "web", cidr: null, protocol: null, port: null },
    { group: null, cidr: "10.0.0.0/8", protocol: "tcp", port: [8000, 8080] },
  ];
  const outbound = [{ group: "db", cidr: null, protocol: "tcp", port: 5432 }];
  const groupsTxt = `[group web]\ninbound=${JSON.stringify(inbound)}\noutbound=${JSON.stringify(outbound)}\n`;
  const a = ep(1, "h1", "web");
  const rig = await networkRig(t, {
    basePort: 22040,
    endpoints: [a, ep(2, "h1", "db")], // a rule names only groups with members
    groupsTxt,
    plugin: { groupUpdateIntervalMs: 0 }, // the edit measured alone, not coalesced
  });
  await rig.acl.getGroups();
  const web = await rig.acl.waitForGroup("web");
  assert.deepEqual(web.value.msg["rules"], {
    inbound,
    outbound,
    inbound_default: "deny",
    outbound_default: "deny",
  });

  const since = rig.acl.received.length;
  const t0 = performance.now();
  const icmp = [{ group: null, cidr: "0.0.0.0/0", protocol: "icmp", port: null }];
  await writeFile(
    join(rig.dir, "groups.txt"),
    `[group web]\ninbound=${JSON.stringify(icmp)}\noutbound=[]\n`,
  );
  const changed = await rig.acl.waitForGroup("web", undefined, { since });
  assert.ok(changed.at - t0 < 1000);
  assert.deepEqual(changed.value.msg["rules"], {
    inbound: icmp,
    outbound: [],
    inbound_default: "deny",
    outbound_default: "deny",
  });
  assert.deepEqual(changed.value.msg["members"], { [a.id]: [a.ip] });
  noViolations(rig.acl);
});

test("a rule naming a group that empties never reaches the ACL Manager (it would kill 0.10.2)", async (t) => {
  // web's rules name db; db's rules name web: whichever is published first names a group
  // the ACL Manager does not hold yet.
  const rule = (group: string): Json => ({ group, cidr: null, protocol: "tcp", port: 80 });
  const groupsTxt =
    `[group web]\ninbound=${JSON.stringify([rule("db"), rule("web")])}\noutbound=[]\n` +
    `[group db]\ninbound=${JSON.stringify([rule("web")])}\noutbound=[]\n`;
  const w = ep(1, "h1", "web");
  const d = ep(2, "h1", "db");
  // The order is what is tested, not the coalescing of a burst: with the default interval the
  // removal below could wait up to 2 s behind the start's publication, on a loaded machine past
  // the waits' bound.
  const started = await networkRig(t, {
    basePort: 22050,
    endpoints: [w, d],
    groupsTxt,
    plugin: { groupUpdateIntervalMs: 0 },
  });
  // The rig's own ACL Manager may have joined in the middle of the start-up publications (and
  // died of it, as the real one would): this test uses one that joins after them.
  await started.plugin.whenSent();
  const acl = new FakeAclManager({
    groups: "tcp://127.0.0.1:22053",
    publish: "tcp://127.0.0.1:22054",
  });
  await acl.start();
  t.after(() => acl.stop());
  const rig = { ...started, acl, log: started.log, dir: started.dir };
  const names = (m: Json, dir: string): unknown[] =>
    ((m["rules"] as Json)[dir] as Json[]).map((r) => r["group"]);
  await heldAfterGetGroups(rig.acl, (acl) => {
    const web = acl.groups.get("web");
    return acl.groups.has("db") && web !== undefined && names(web, "inbound").length === 2;
  });
  assert.equal(rig.acl.dead, null);

  // db's last endpoint goes: web must lose its db rule before db is deleted.
  const since = rig.acl.received.length;
  await rm(join(rig.dir, `${d.name}.txt`));
  const deleted = await rig.acl.waitForGroup(
    "db",
    (m) => Object.keys(m["members"] as Json).length === 0,
    { since, timeoutMs: 6000 },
  );
  const webBefore = rig.acl.received.items
    .slice(since, deleted.index)
    .filter((i) => i.value.msg["group"] === "web");
  assert.ok(webBefore.length >= 1, "web republished before db is deleted");
  assert.deepEqual(names(webBefore.at(-1)?.value.msg ?? {}, "inbound"), ["web"]);
  assert.equal(rig.acl.dead, null, String(rig.acl.dead));
  assert.ok(
    rig.log.lines.some((l) => String(l["msg"]).startsWith("rules naming a group without members")),
  );

  // db comes back: it is published before web names it again.
  const back = rig.acl.received.length;
  await rig.writeEndpoint(d);
  const webAgain = await rig.acl.waitForGroup("web", (m) => names(m, "inbound").length === 2, {
    since: back,
    timeoutMs: 6000,
  });
  const dbAgain = await rig.acl.waitForGroup("db", undefined, { since: back });
  assert.ok(dbAgain.index < webAgain.index);
  assert.equal(rig.acl.dead, null, String(rig.acl.dead));
  noViolations(rig.acl);

  // A fresh ACL Manager asking GETGROUPS survives the cycle web <-> db.
  const fresh = new FakeAclManager({
    groups: "tcp://127.0.0.1:22053",
    publish: "tcp://127.0.0.1:22054",
  });
  await fresh.start();
  t.after(() => fresh.stop());
  await heldAfterGetGroups(fresh, (acl) => {
    const web = acl.groups.get("web");
    return acl.groups.has("db") && web !== undefined && names(web, "inbound").length === 2;
  });
  assert.equal(fresh.dead, null, String(fresh.dead));
  noViolations(fresh);
});

test("a burst of changes shares publications: the first at once, the rest at the interval's end", async (t) => {
  const a = ep(1, "h1", "web");
  const rig = await networkRig(t, { basePort: 22070, endpoints: [a] });
  await rig.acl.getGroups();
  await rig.acl.waitForGroup("web");
  await new Promise((r) => setTimeout(r, 2100)); // past the interval of the start's publication

  // One change after a quiet spell: published at once.
  const b = ep(2, "h1", "web");
  let since = rig.acl.received.length;
  const t0 = performance.now();
  await rig.writeEndpoint(b);
  const first = await rig.acl.waitForGroup("web", undefined, { since });
  assert.ok(first.at - t0 < 1000, `took ${Math.round(first.at - t0)} ms`);

  // Forty more members written one by one, as an `up` does: a publication or two, not forty.
  since = rig.acl.received.length;
  const burst = Array.from({ length: 40 }, (_, i) => ep(10 + i, "h1", "web"));
  for (const e of burst) await rig.writeEndpoint(e);
  const all = await rig.acl.waitForGroup(
    "web",
    (m) => Object.keys(m["members"] as Json).length === 42,
    { since, timeoutMs: 5000 },
  );
  await new Promise((r) => setTimeout(r, 2500)); // nothing more is due
  const webs = rig.acl.received.items.slice(since).filter((i) => i.value.msg["group"] === "web");
  assert.ok(webs.length <= 2, `web published ${webs.length} times for one burst`);
  assert.equal(webs.at(-1)?.at, all.at, "the last publication holds every member");
  noViolations(rig.acl);
});
