/**
 * Delivery to Felix: only a SUCCESS reply of the request's own type counts; everything else
 * is sent again, with backoff, until Felix acknowledges it; a destroy survives a reply
 * timeout; the newest resync a Felix asks for gets its endpoint_count creates, an older
 * unfinished one is dropped. Ports 27000-27099.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { endpointText, until } from "./helpers.js";
import { endpointRig, ep } from "./fixture.js";
import type { Json } from "./peers.js";

const H1 = { host: "host1", ip: "127.0.0.2" };
const RETRY = { retryBaseMs: 40, retryMaxMs: 200 };

/** Gaps between the arrival times of the items, in ms. */
function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] ?? t));
}

test("a create, an update and a destroy answered with garbage are sent again until Felix says SUCCESS", async (t) => {
  const rig = await endpointRig(t, { basePort: 27000, hosts: [H1], plugin: RETRY });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const e = ep(1, "host1");
  // Replies a real Felix never gives: not JSON, an unknown rc, another type, no rc at all.
  const junk = (type: string): string[] => [
    "nonsense",
    JSON.stringify({ type, rc: "BOGUS", message: "" }),
    JSON.stringify({ type: "HEARTBEAT", rc: "SUCCESS", message: "" }),
    JSON.stringify({ type, message: "" }),
  ];
  let left: string[] = junk("ENDPOINTCREATED");
  felix.replyWith = (m) => (m["endpoint_id"] === e.id ? left.shift() : undefined);

  await rig.writeEndpoint(e);
  await until(() => felix.endpoints.has(e.id), 10_000, "felix acknowledged the create");
  const creates = felix.received.items.filter(
    (i) => i.value["endpoint_id"] === e.id && i.value["type"] === "ENDPOINTCREATED",
  );
  assert.equal(creates.length, 5, "four refused by garbage, the fifth acknowledged");
  // Backoff: each retry waits at least as long as the one before (40, 80, 160, 200 ms).
  const g = gaps(creates.map((c) => c.at));
  g.forEach((gap, i) => assert.ok(gap >= Math.min(40 * 2 ** i, 200) - 5, `gap ${i}: ${gap} ms`));

  left = junk("ENDPOINTUPDATED");
  // Only the state changes, so an update (a new address is a destroy and a create).
  await writeFile(join(rig.dir, `${e.name}.txt`), `${endpointText(e)}state=disabled\n`);
  await until(
    () => felix.endpoints.get(e.id)?.state === "disabled",
    10_000,
    "felix acknowledged the update",
  );
  left = junk("ENDPOINTDESTROYED");
  await rm(join(rig.dir, `${e.name}.txt`));
  await until(() => !felix.endpoints.has(e.id), 10_000, "felix acknowledged the destroy");
  const types = felix.received.items
    .filter((i) => i.value["endpoint_id"] === e.id)
    .map((i) => i.value["type"]);
  assert.deepEqual(types, [
    ...Array<string>(5).fill("ENDPOINTCREATED"),
    ...Array<string>(5).fill("ENDPOINTUPDATED"),
    ...Array<string>(5).fill("ENDPOINTDESTROYED"),
  ]);
  const conn = rig.plugin.felixConnections.get("host1");
  await until(() => conn?.settled === true, 3000, "settled");
  assert.deepEqual(felix.violations, []);
});

test("a destroy that times out is sent again when Felix is back", async (t) => {
  const e = ep(1, "host1");
  const keep = ep(2, "host1");
  const rig = await endpointRig(t, {
    basePort: 27010,
    hosts: [H1],
    endpoints: [e, keep],
    plugin: { felixTimeoutMs: 300, ...RETRY },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(conn);
  await until(() => conn.settled && felix.endpoints.size === 2, 5000, "felix has both");
  const generation = conn.socketGeneration;

  felix.mute();
  const since = felix.received.length;
  await rm(join(rig.dir, `${e.name}.txt`));
  await felix.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { since });
  await until(() => conn.socketGeneration > generation, 5000, "the destroy timed out");
  assert.ok(!conn.settled, "the destroy is still owed");

  await felix.unmute();
  await until(() => !felix.endpoints.has(e.id), 10_000, "felix dropped the endpoint");
  await until(() => conn.settled, 5000, "settled");
  assert.deepEqual([...felix.endpoints.keys()], [keep.id]);
  assert.deepEqual(felix.violations, []);
});

test("a destroy Felix never answers because it forgot the endpoint does not block the host", async (t) => {
  const e = ep(1, "host1");
  const rig = await endpointRig(t, {
    basePort: 27020,
    hosts: [H1],
    endpoints: [e],
    plugin: { felixTimeoutMs: 300, ...RETRY },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(conn);
  await until(() => conn.settled && felix.endpoints.has(e.id), 5000, "felix has it");
  // Felix restarted and lost its state; like Felix <= 0.12 it never answers such a destroy.
  felix.forget();
  felix.silentOnUnknownDestroy = true;
  await rm(join(rig.dir, `${e.name}.txt`));
  await until(() => felix.unanswered.length >= 1, 5000, "the unanswered destroy");
  // Felix answered a heartbeat on a fresh socket, so the silence means "unknown here": the
  // destroy is dropped and other work flows.
  const other = ep(2, "host1");
  await rig.writeEndpoint(other);
  await until(() => felix.endpoints.has(other.id), 10_000, "later work reaches felix");
  await until(() => conn.settled, 5000, "settled");
  assert.ok(felix.unanswered.length <= 2, `destroy sent ${felix.unanswered.length} times`);
  assert.ok(
    rig.log.lines.some(
      (l) => l["msg"] === "felix does not know the endpoint it was asked to destroy",
    ),
  );
  assert.deepEqual(felix.violations, []);
});

test("in a flood of resyncs each newer one supersedes the last, and only the newest is sent", async (t) => {
  const endpoints = Array.from({ length: 20 }, (_, i) => ep(i + 1, "host1"));
  const rig = await endpointRig(t, {
    basePort: 27030,
    hosts: [H1],
    endpoints,
    plugin: { resyncDelayMs: 150 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(conn);
  await until(() => conn.settled, 5000, "start-up push done");
  const since = felix.received.length;
  const replies: Array<{ reply: Json; id: string; at: number }> = [];
  for (let i = 0; i < 10; i++) {
    replies.push({ ...(await felix.sendResync()), at: felix.received.length });
  }
  for (const r of replies) {
    assert.equal(r.reply["rc"], "SUCCESS");
    assert.equal(r.reply["endpoint_count"], endpoints.length);
  }
  const last = replies.at(-1);
  assert.ok(last);
  const creates = await felix.received.waitForCount(
    (m) => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === last.id,
    endpoints.length,
    { since, timeoutMs: 10_000, what: `creates of resync ${last.id}` },
  );
  assert.deepEqual(creates.map((c) => c["endpoint_id"]).sort(), endpoints.map((x) => x.id).sort());
  await until(() => conn.settled, 5000, "settled");
  // A superseded resync's creates stop once a newer one is asked for (one create already on
  // its way then may still arrive after the reply).
  for (let i = 0; i + 1 < replies.length; i++) {
    const id = replies[i]?.id;
    const from = replies[i + 1]?.at ?? 0;
    const late: number = felix.received.items
      .slice(from)
      .filter((item) => item.value["resync_id"] === id).length;
    assert.ok(late <= 1, `${late} creates of resync ${i + 1} after resync ${i + 2} was answered`);
  }
  const ofLast = felix.received.items.filter((item) => item.value["resync_id"] === last.id);
  assert.equal(ofLast.length, endpoints.length, "exactly endpoint_count creates of the newest");
  // Once the newest is sent, a new resync is answered and sent in full.
  const again = await felix.resyncState(10_000);
  assert.equal(again.reply["rc"], "SUCCESS");
  assert.equal(again.creates.length, endpoints.length);
  assert.deepEqual(felix.violations, []);
});

test("Felix 0.10's HEARTBEAT reply, its type alone, counts as an answer; garbage does not", async (t) => {
  const rig = await endpointRig(t, {
    basePort: 27090,
    hosts: [H1],
    plugin: { heartbeatIntervalMs: 50 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  let reply = JSON.stringify({ type: "HEARTBEAT" });
  felix.replyWith = (m) => (m["type"] === "HEARTBEAT" ? reply : undefined);
  const warned = () =>
    rig.log.lines.filter((l) => l["msg"] === "heartbeat not acknowledged by felix").length;
  await felix.received.waitForCount((m) => m["type"] === "HEARTBEAT", 5);
  assert.equal(warned(), 0);
  reply = JSON.stringify({ type: "HEARTBEAT", rc: "INVALID", message: "" });
  await until(() => warned() > 0, 3000, "a refused heartbeat is warned about");
});
