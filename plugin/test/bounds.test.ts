/**
 * Hostile peers: every field the plugin accepts is bounded, replies and log lines carry
 * short previews only, an oversized id is never forwarded to Felix, and a flood of GETGROUPS
 * is coalesced. Ports 27200-27299.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Request } from "zeromq";
import { MAX_HOSTNAME, MAX_RESYNC_ID } from "../src/endpoint.js";
import { MAX_REQUEST_BYTES } from "../src/zmq.js";
import { endpointRig, ep, networkRig } from "./fixture.js";
import type { Json } from "./peers.js";

const H1 = { host: "host1", ip: "127.0.0.2" };

/** The longest log line, in characters of JSON. */
function longestLine(lines: ReadonlyArray<Record<string, unknown>>): number {
  return Math.max(0, ...lines.map((l) => JSON.stringify(l).length));
}

test("RESYNCSTATE fields are bounded: short replies and log lines, no oversized id forwarded", async (t) => {
  const e = ep(1, "host1");
  const rig = await endpointRig(t, { basePort: 27200, hosts: [H1], endpoints: [e] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const big = (n: number): string => "h".repeat(n);
  const cases: Array<[Json, RegExp]> = [
    [
      { type: "RESYNCSTATE", resync_id: "r1", issued: 1, hostname: big(MAX_HOSTNAME + 1) },
      /hostname is 254 characters long/,
    ],
    [
      { type: "RESYNCSTATE", resync_id: big(MAX_RESYNC_ID + 1), issued: 1, hostname: "host1" },
      /resync_id must be 1-128 printable/,
    ],
    [
      { type: "RESYNCSTATE", resync_id: "a b\n", issued: 1, hostname: "host1" },
      /resync_id must be 1-128 printable/,
    ],
    [{ type: big(40_000), issued: 1 }, /type is 40000 characters long/],
    [{ type: { nested: big(40_000) }, issued: 1 }, /type must be a string/],
  ];
  const since = felix.received.length;
  for (const [msg, message] of cases) {
    const raw = await felix.requestRaw(JSON.stringify(msg));
    assert.ok(raw.length < 600, `reply of ${raw.length} characters`);
    const reply = JSON.parse(raw) as Json;
    assert.equal(reply["rc"], "INVALID");
    assert.match(String(reply["message"]), message);
    if (msg["type"] === "RESYNCSTATE") {
      assert.equal(reply["type"], "RESYNCSTATE");
      assert.equal(reply["endpoint_count"], 0);
    } else assert.equal(reply["type"], null, "an oversized type is not echoed");
  }
  assert.ok(longestLine(rig.log.lines) < 1000, `log line of ${longestLine(rig.log.lines)}`);
  // Nothing with those ids reached Felix.
  assert.ok(
    felix.received.items
      .slice(since)
      .every((i) => String(i.value["resync_id"] ?? "").length <= MAX_RESYNC_ID),
  );

  // A request over the size limit is dropped by ZeroMQ without being read; the plugin serves on.
  const req = new Request({ linger: 0, receiveTimeout: 500 });
  t.after(() => req.close());
  req.connect(rig.pluginAddress);
  const huge = JSON.stringify({
    type: "RESYNCSTATE",
    resync_id: "r",
    issued: 1,
    hostname: big(10 * 1024 * 1024),
  });
  assert.ok(huge.length > MAX_REQUEST_BYTES);
  await req.send(huge);
  await assert.rejects(req.receive(), "no reply to an oversized request");
  assert.ok(longestLine(rig.log.lines) < 1000);
  const r = await felix.resyncState();
  assert.equal(r.reply["endpoint_count"], 1);
  assert.deepEqual(felix.violations, []);
});

test("a flood of 1,000 GETGROUPS is coalesced: a few publications of every group, not 1,000", async (t) => {
  const endpoints = Array.from({ length: 25 }, (_, i) => ep(i + 1, "h1", `g${i + 1}`));
  const rig = await networkRig(t, { basePort: 27210, endpoints });
  const since = rig.acl.received.length;
  for (let i = 0; i < 1000; i++) {
    const reply = await rig.acl.getGroups();
    assert.equal(reply["rc"], "SUCCESS");
  }
  const last = rig.acl.received.length;
  // Every group is published after the last request too (it may be the one that asked).
  await rig.acl.received.waitForCount((p) => p.topic === "groups", 25, {
    since: last,
    timeoutMs: 5000,
    what: "the publication after the flood",
  });
  await rig.plugin.whenSent();
  const updates = rig.acl.received.items.slice(since).filter((i) => i.value.topic === "groups");
  assert.ok(updates.length <= 25 * 10, `${updates.length} GROUPUPDATEs for 1,000 GETGROUPS`);
  assert.deepEqual(rig.acl.violations, []);
});
