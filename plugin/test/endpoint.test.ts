/**
 * The endpoint API over real ZeroMQ sockets on loopback: fake Felix hosts on 127.0.0.2,
 * 127.0.0.3, ... and the plugin on 127.0.0.1. Ports 21000-21199.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { endpointText, until, writeAtomic } from "./helpers.js";
import { endpointRig, ep } from "./fixture.js";
import type { FakeFelix, Json } from "./peers.js";
import type { EndpointSpec } from "./helpers.js";

const H1 = { host: "host1", ip: "127.0.0.2" };
const H2 = { host: "host2", ip: "127.0.0.3" };
const H3 = { host: "host3", ip: "127.0.0.4" };

/** Field-by-field check of an ENDPOINTCREATED against the endpoint it describes. */
function assertCreated(msg: Json, e: EndpointSpec, resyncId: string | null): void {
  assert.deepEqual(Object.keys(msg).sort(), [
    "addrs",
    "endpoint_id",
    "issued",
    "mac",
    "resync_id",
    "state",
    "type",
  ]);
  assert.equal(msg["type"], "ENDPOINTCREATED");
  assert.equal(msg["endpoint_id"], e.id);
  assert.equal(msg["resync_id"], resyncId);
  assert.equal(typeof msg["issued"], "number");
  assert.ok(Number.isInteger(msg["issued"]), "issued is an integer");
  assert.ok(Math.abs((msg["issued"] as number) - Date.now()) < 10_000, "issued is ms since epoch");
  assert.equal(msg["mac"], e.mac);
  assert.equal(msg["state"], "enabled");
  assert.deepEqual(msg["addrs"], [{ addr: e.ip }]);
}

function assertResyncReply(reply: Json, count: number): void {
  assert.deepEqual(Object.keys(reply).sort(), ["endpoint_count", "message", "rc", "type"]);
  assert.equal(reply["type"], "RESYNCSTATE");
  assert.equal(reply["rc"], "SUCCESS");
  assert.equal(typeof reply["message"], "string");
  assert.equal(typeof reply["endpoint_count"], "number", "endpoint_count is a JSON number");
  assert.ok(Number.isInteger(reply["endpoint_count"]));
  assert.equal(reply["endpoint_count"], count);
}

function noViolations(...felixes: FakeFelix[]): void {
  for (const f of felixes) assert.deepEqual(f.violations, [], `violations at ${f.opts.hostname}`);
}

test("resync with 0 endpoints, and from a host that is not in the data", async (t) => {
  const rig = await endpointRig(t, { basePort: 21000, hosts: [H1] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const { reply, creates } = await felix.resyncState();
  assertResyncReply(reply, 0);
  assert.deepEqual(creates, []);

  const stranger = await felix.request({
    type: "RESYNCSTATE",
    resync_id: "8b0ab5ab-2f25-4a43-a52c-5d4bf7f7e0f1",
    issued: Date.now(),
    hostname: "not-a-host",
  });
  assertResyncReply(stranger, 0);
  noViolations(felix);
});

test("resync with 1 endpoint: integer count, then one create carrying the resync_id", async (t) => {
  const e = ep(1, "host1");
  const rig = await endpointRig(t, {
    basePort: 21010,
    hosts: [H1],
    endpoints: [e],
    plugin: { resyncDelayMs: 200 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  // At start the plugin pushes what it knows (resync_id null).
  const pushed = await felix.received.waitFor((m) => m["type"] === "ENDPOINTCREATED");
  assertCreated(pushed.value, e, null);

  const since = felix.received.length;
  const started = performance.now();
  const { reply, creates, id } = await felix.resyncState();
  assertResyncReply(reply, 1);
  assert.equal(creates.length, 1);
  assertCreated(creates[0] as Json, e, id);
  const createAt = felix.received.items.find(
    (item, i) => i >= since && item.value["resync_id"] === id,
  )?.at;
  assert.ok(createAt !== undefined);
  assert.ok(
    createAt - started >= 190,
    `creates wait for the resync delay (${createAt - started} ms)`,
  );
  assert.deepEqual([...felix.endpoints.keys()], [e.id]);
  noViolations(felix);
});

test("resync with many endpoints on three hosts: each host gets exactly its own", async (t) => {
  const hosts = [H1, H2, H3];
  const endpoints = Array.from({ length: 60 }, (_, i) => ep(i + 1, hosts[i % 3]?.host ?? ""));
  const rig = await endpointRig(t, { basePort: 21020, hosts, endpoints });
  const results = await Promise.all(rig.felixes.map((f) => f.resyncState(5000)));
  for (const [i, f] of rig.felixes.entries()) {
    const mine = endpoints.filter((e) => e.host === f.opts.hostname);
    const r = results[i];
    assert.ok(r);
    assertResyncReply(r.reply, 20);
    assert.equal(r.creates.length, 20);
    const byId = new Map(mine.map((e) => [e.id, e]));
    for (const c of r.creates) {
      const e = byId.get(c["endpoint_id"] as string);
      assert.ok(e, `create for ${String(c["endpoint_id"])} belongs to ${f.opts.hostname}`);
      assertCreated(c, e, r.id);
    }
    assert.equal(new Set(r.creates.map((c) => c["endpoint_id"])).size, 20, "no duplicates");
    assert.deepEqual([...f.endpoints.keys()].sort(), mine.map((e) => e.id).sort());
  }
  noViolations(...rig.felixes);
});

test("heartbeats both ways", async (t) => {
  const rig = await endpointRig(t, {
    basePort: 21030,
    hosts: [H1],
    plugin: { heartbeatIntervalMs: 150 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const reply = await felix.heartbeat();
  assert.deepEqual(reply, { type: "HEARTBEAT", rc: "SUCCESS", message: "" });
  const beats = await felix.received.waitForCount((m) => m["type"] === "HEARTBEAT", 3, {
    timeoutMs: 2000,
  });
  for (const b of beats) {
    assert.deepEqual(Object.keys(b).sort(), ["issued", "type"]);
    assert.ok(Number.isInteger(b["issued"]));
  }
  const at = felix.received.items.filter((i) => i.value["type"] === "HEARTBEAT").map((i) => i.at);
  for (let i = 1; i < at.length; i++) {
    const gap = (at[i] ?? 0) - (at[i - 1] ?? 0);
    assert.ok(gap >= 100 && gap < 1000, `heartbeat gap ${gap} ms for a 150 ms interval`);
  }
  noViolations(felix);
});

test("add, change and remove an endpoint by editing files: pushed in well under 1 s", async (t) => {
  const rig = await endpointRig(t, {
    basePort: 21040,
    hosts: [H1, H2],
    felixFor: ["host1", "host2"],
  });
  const [f1, f2] = rig.felixes;
  assert.ok(f1 && f2);
  const e = ep(7, "host1");

  // Add.
  let since = f1.received.length;
  let t0 = performance.now();
  await rig.writeEndpoint(e);
  const created = await f1.received.waitFor((m) => m["type"] === "ENDPOINTCREATED", { since });
  assert.ok(created.at - t0 < 1000, `create took ${created.at - t0} ms`);
  assertCreated(created.value, e, null);

  // Change the IP and MAC (written atomically: temp file + rename): destroyed, then created
  // afresh (Felix 0.10 mangles the endpoint's chain when an update changes its address).
  const changed = { ...e, ip: "192.168.9.9", mac: "ee:ee:00:00:99:99" };
  since = f1.received.length;
  t0 = performance.now();
  await writeAtomic(join(rig.dir, `${e.name}.txt`), endpointText(changed));
  const old = await f1.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { since });
  const again = await f1.received.waitFor((m) => m["type"] === "ENDPOINTCREATED", {
    since: old.index,
  });
  assert.ok(again.at - t0 < 1000, `re-create took ${again.at - t0} ms`);
  assert.equal(old.value["endpoint_id"], e.id);
  assertCreated(again.value, changed, null);
  assert.equal(
    f1.received.items.slice(since).filter((i) => i.value["type"] === "ENDPOINTUPDATED").length,
    0,
  );

  // Disable it: only its state changes, so an ENDPOINTUPDATED.
  since = f1.received.length;
  await writeAtomic(join(rig.dir, `${e.name}.txt`), `${endpointText(changed)}state=disabled\n`);
  const updated = await f1.received.waitFor((m) => m["type"] === "ENDPOINTUPDATED", { since });
  assert.deepEqual(Object.keys(updated.value).sort(), [
    "addrs",
    "endpoint_id",
    "issued",
    "mac",
    "state",
    "type",
  ]);
  assert.equal(updated.value["endpoint_id"], e.id);
  assert.equal(updated.value["mac"], "ee:ee:00:00:99:99");
  assert.equal(updated.value["state"], "disabled");
  assert.deepEqual(updated.value["addrs"], [{ addr: "192.168.9.9" }]);
  assert.ok(Number.isInteger(updated.value["issued"]));

  // Move to host2: destroyed on host1, created on host2.
  const moved = { ...changed, host: "host2" };
  const since1 = f1.received.length;
  const since2 = f2.received.length;
  t0 = performance.now();
  await rig.writeEndpoint(moved);
  const destroyed = await f1.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", {
    since: since1,
  });
  const created2 = await f2.received.waitFor((m) => m["type"] === "ENDPOINTCREATED", {
    since: since2,
  });
  assert.ok(Math.max(destroyed.at, created2.at) - t0 < 1000);
  assert.deepEqual(Object.keys(destroyed.value).sort(), ["endpoint_id", "issued", "type"]);
  assert.equal(destroyed.value["endpoint_id"], e.id);
  assertCreated(created2.value, moved, null);

  // Remove the file: destroyed on host2.
  since = f2.received.length;
  t0 = performance.now();
  await rm(join(rig.dir, `${e.name}.txt`));
  const gone = await f2.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { since });
  assert.ok(gone.at - t0 < 1000, `destroy took ${gone.at - t0} ms`);
  assert.equal(gone.value["endpoint_id"], e.id);
  assert.equal(f1.endpoints.size + f2.endpoints.size, 0);
  noViolations(f1, f2);
});

test("a destroy is sent only for endpoints Felix was told about", async (t) => {
  const rig = await endpointRig(t, { basePort: 21050, hosts: [H1], endpoints: [] });
  const [f1] = rig.felixes;
  assert.ok(f1);
  // An endpoint on a host without a [felix] section is never announced, so never destroyed.
  const orphan = ep(3, "nohost");
  await rig.writeEndpoint(orphan);
  // Added then removed before being announced anywhere.
  await new Promise((r) => setTimeout(r, 150));
  await rm(join(rig.dir, `${orphan.name}.txt`));
  const e = ep(4, "host1");
  await rig.writeEndpoint(e);
  await f1.received.waitFor((m) => m["endpoint_id"] === e.id);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(f1.received.items.filter((i) => i.value["type"] === "ENDPOINTDESTROYED").length, 0);
  assert.ok(
    rig.log.lines.some((l) => l["msg"] === "endpoints on hosts without a [felix] section"),
    "the orphan endpoint is reported",
  );
  noViolations(f1);
});

test("a disabled endpoint is announced with state disabled", async (t) => {
  const rig = await endpointRig(t, { basePort: 21060, hosts: [H1] });
  const [f1] = rig.felixes;
  assert.ok(f1);
  const e = ep(5, "host1");
  await writeFile(join(rig.dir, "ep5.txt"), `${endpointText(e)}state=disabled\n`);
  const c = await f1.received.waitFor((m) => m["type"] === "ENDPOINTCREATED");
  assert.equal(c.value["state"], "disabled");
  noViolations(f1);
});

test("a Felix restarted in the middle of a resync: its new resync supersedes the old one", async (t) => {
  const endpoints = Array.from({ length: 12 }, (_, i) => ep(i + 1, "host1"));
  const rig = await endpointRig(t, { basePort: 21070, hosts: [H1], endpoints });
  const [felix] = rig.felixes;
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(felix && conn);
  await until(() => conn.settled, 5000, "start-up push done");

  // Resync A: Felix takes 3 of its creates, then hangs (its process is going away).
  const a = await felix.sendResync();
  assertResyncReply(a.reply, endpoints.length);
  const isA = (m: Json): boolean => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === a.id;
  await felix.received.waitForCount(isA, 3, { timeoutMs: 5000, what: "creates of A" });
  felix.mute();
  const generation = conn.socketGeneration;
  await until(() => conn.socketGeneration > generation, 5000, "the plugin gives up on A's reply");
  const sentOfA = felix.received.items.filter((i) => isA(i.value)).length;
  assert.ok(sentOfA < endpoints.length, `A is unfinished (${sentOfA} creates sent)`);

  // The new process asks for resync B from a fresh socket, then its REP answers.
  felix.newProcess();
  const since = felix.received.length;
  const b = await felix.sendResync();
  assertResyncReply(b.reply, endpoints.length);
  await felix.unmute();
  const isB = (m: Json): boolean => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === b.id;
  const creates = await felix.received.waitForCount(isB, endpoints.length, {
    since,
    timeoutMs: 10_000,
    what: "creates of B",
  });
  await until(() => conn.settled, 5000, "settled after B");
  const after = felix.received.items.slice(since).map((i) => i.value);
  assert.deepEqual(after.filter(isA), [], "no create of A after B was asked for");
  assert.equal(after.filter(isB).length, endpoints.length, "exactly endpoint_count creates of B");
  assert.deepEqual(creates.map((c) => c["endpoint_id"]).sort(), endpoints.map((e) => e.id).sort());
  assert.deepEqual([...felix.endpoints.keys()].sort(), endpoints.map((e) => e.id).sort());
  assert.ok(rig.log.lines.some((l) => l["msg"] === "unfinished resync superseded by a newer one"));
  noViolations(felix);
});
