/**
 * The plugin never gives up: a Felix that stops answering, garbage on every socket, peers
 * that vanish mid-request, malformed or half-written data files, a data directory that
 * does not exist yet, restarts while the peers stay up. Ports 23000-23199.
 */
import assert from "node:assert/strict";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { Dealer, Request } from "zeromq";
import { EndpointPlugin } from "../src/index.js";
import { captureLogger, endpointText, felixText, tmpDir, until } from "./helpers.js";
import { endpointRig, ep, networkRig } from "./fixture.js";
import { FakeFelix, sleep, type Json } from "./peers.js";

const H1 = { host: "host1", ip: "127.0.0.2" };
const H2 = { host: "host2", ip: "127.0.0.3" };

test("a Felix that stops answering: timeout, socket recreated, full state resent when it is back", async (t) => {
  const a = ep(1, "host1");
  const b = ep(2, "host1");
  const rig = await endpointRig(t, {
    basePort: 23000,
    hosts: [H1],
    endpoints: [a],
    plugin: { felixTimeoutMs: 250, heartbeatIntervalMs: 100 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await felix.received.waitFor((m) => m["endpoint_id"] === a.id);
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(conn);
  await until(() => conn.settled, 2000, "felix told about a");
  const generation = conn.socketGeneration;

  felix.mute();
  await rig.writeEndpoint(b); // this create gets no reply
  await until(() => conn.socketGeneration > generation, 2000, "socket recreated after timeout");
  assert.ok(
    rig.log.lines.some((l) => String(l["msg"]).startsWith("no reply from felix")),
    "the timeout is logged",
  );
  // The plugin still serves its own socket meanwhile.
  assert.equal((await felix.heartbeat())["rc"], "SUCCESS");

  const since = felix.received.length;
  await felix.unmute();
  // Full state: a create (resync_id null) for every endpoint of the host, old and new.
  const creates = await felix.received.waitForCount(
    (m) => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === null,
    2,
    { since, timeoutMs: 3000 },
  );
  assert.deepEqual(creates.map((c) => c["endpoint_id"]).sort(), [a.id, b.id].sort());
  await until(() => conn.settled, 2000, "settled after comeback");
  assert.deepEqual([...felix.endpoints.keys()].sort(), [a.id, b.id].sort());
  assert.deepEqual(felix.violations, []);
});

test("a Felix that never existed does not block the other hosts", async (t) => {
  const rig = await endpointRig(t, {
    basePort: 23010,
    hosts: [H1, H2],
    felixFor: ["host1"],
    endpoints: [ep(1, "host2")],
    plugin: { felixTimeoutMs: 200 },
  });
  const [f1] = rig.felixes;
  assert.ok(f1);
  const e = ep(2, "host1");
  const t0 = performance.now();
  await rig.writeEndpoint(e);
  const c = await f1.received.waitFor((m) => m["endpoint_id"] === e.id);
  assert.ok(c.at - t0 < 1000);
  await sleep(450); // a couple of timeouts towards host2
  assert.ok((rig.plugin.felixConnections.get("host2")?.socketGeneration ?? 0) >= 2);
  assert.equal((await f1.heartbeat())["rc"], "SUCCESS");
});

test("a burst of garbage on 9901: every reply carries the request's type; then business as usual", async (t) => {
  const e = ep(1, "host1");
  const rig = await endpointRig(t, { basePort: 23020, hosts: [H1], endpoints: [e] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const junk: Array<[string | Buffer, unknown, RegExp]> = [
    ["this is not json", null, /not JSON/],
    [Buffer.from([0xff, 0x00, 0xfe, 0x80]), null, /not JSON/],
    ["", null, /not JSON/],
    ["[1,2,3]", null, /not a JSON object/],
    ["42", null, /not a JSON object/],
    ['{"hostname":"host1"}', null, /no `type`/],
    ['{"type":42}', 42, /type must be a string/],
    ['{"type":"NOSUCHTHING","issued":1}', "NOSUCHTHING", /unknown request type/],
    ['{"type":"ENDPOINTCREATED"}', "ENDPOINTCREATED", /unknown request type/],
    ['{"type":"RESYNCSTATE","hostname":"host1"}', "RESYNCSTATE", /resync_id must be/],
    ['{"type":"RESYNCSTATE","resync_id":7,"hostname":"host1"}', "RESYNCSTATE", /resync_id must be/],
    [
      '{"type":"RESYNCSTATE","resync_id":"x","hostname":["host1"]}',
      "RESYNCSTATE",
      /hostname must be/,
    ],
    ['{"type":"RESYNCSTATE","resync_id":"x"}', "RESYNCSTATE", /hostname must be/],
  ];
  for (const [frame, type, message] of junk) {
    const reply = JSON.parse(await felix.requestRaw(frame)) as Json;
    assert.deepEqual(reply["type"], type, `type echoed for ${String(frame)}`);
    assert.equal(reply["rc"], "INVALID", `rc for ${String(frame)}`);
    assert.match(String(reply["message"]), message);
    if (type === "RESYNCSTATE") assert.equal(reply["endpoint_count"], 0);
  }
  // A DEALER speaking without the REQ envelope, with several frames.
  const dealer = new Dealer({ linger: 0, receiveTimeout: 1000 });
  dealer.connect(rig.pluginAddress);
  await dealer.send(["a", "b", "c"]);
  const [dealerReply] = await dealer.receive();
  assert.equal((JSON.parse(dealerReply?.toString() ?? "") as Json)["rc"], "INVALID");
  dealer.close();
  // Peers that send a request and vanish before the reply.
  for (let i = 0; i < 5; i++) {
    const req = new Request({ linger: 0 });
    req.connect(rig.pluginAddress);
    await req.send(JSON.stringify({ type: "HEARTBEAT", issued: Date.now() }));
    req.close();
  }
  await sleep(50);
  // Still answering correctly.
  assert.deepEqual(await felix.heartbeat(), { type: "HEARTBEAT", rc: "SUCCESS", message: "" });
  const { reply, creates, id } = await felix.resyncState();
  assert.equal(reply["endpoint_count"], 1);
  assert.equal(creates[0]?.["resync_id"], id);
  assert.deepEqual(felix.violations, []);
});

test("garbage replies from Felix do not stop the plugin", async (t) => {
  const rig = await endpointRig(t, {
    basePort: 23030,
    hosts: [H1],
    plugin: { felixTimeoutMs: 300 },
  });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const replies = ["nonsense", "[]", '{"type":"SOMETHINGELSE","rc":"SUCCESS"}', '{"rc":5}'];
  let n = 0;
  felix.replyWith = () => replies[n++];
  for (let i = 1; i <= 4; i++) await rig.writeEndpoint(ep(i, "host1"));
  await until(() => n >= 4, 3000, "four junk replies");
  felix.replyWith = null;
  const e = ep(9, "host1");
  await rig.writeEndpoint(e);
  await felix.received.waitFor((m) => m["endpoint_id"] === e.id && m["type"] === "ENDPOINTCREATED");
  assert.equal((await felix.heartbeat())["rc"], "SUCCESS");
  assert.ok(rig.log.lines.some((l) => l["msg"] === "unreadable reply from felix"));
});

test("garbage on 9903: INVALID with the request's type, GETGROUPS still answered", async (t) => {
  const rig = await networkRig(t, { basePort: 23040, endpoints: [ep(1, "h1", "web")] });
  for (const [frame, type] of [
    ["garbage", null],
    ['{"type":"GETACLSTATE"}', "GETACLSTATE"],
    ['{"issued":1}', null],
  ] as const) {
    const reply = JSON.parse(await rig.acl.requestRaw(frame)) as Json;
    assert.equal(reply["type"], type);
    assert.equal(reply["rc"], "INVALID");
  }
  const since = rig.acl.received.length;
  assert.deepEqual(await rig.acl.getGroups(), { type: "GETGROUPS", rc: "SUCCESS", message: "" });
  await rig.acl.waitForGroup("web", undefined, { since });
  assert.deepEqual(rig.acl.violations, []);
});

test("a malformed data file keeps its last good state; a fix is picked up", async (t) => {
  const a = ep(1, "host1");
  const rig = await endpointRig(t, { basePort: 23050, hosts: [H1], endpoints: [a] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await felix.received.waitFor((m) => m["endpoint_id"] === a.id);
  const file = join(rig.dir, `${a.name}.txt`);

  // Unparseable.
  await writeFile(file, "[endpoint ep1\nthis is not ini at all");
  await until(
    () => rig.log.lines.some((l) => l["file"] === "ep1.txt" && l["level"] === 50),
    2000,
    "parse error logged",
  );
  // A bad value in the section.
  await writeFile(file, endpointText({ ...a, ip: "192.168.1.999" }));
  await until(
    () => rig.log.lines.some((l) => l["field"] === "ip" && l["value"] === "192.168.1.999"),
    2000,
    "bad field logged",
  );
  // felix.txt broken too: the Felix connection stays.
  await writeFile(join(rig.dir, "felix.txt"), "[felix host1\n");
  await sleep(150);
  assert.equal(
    felix.received.items.filter((i) => i.value["type"] === "ENDPOINTDESTROYED").length,
    0,
  );
  assert.deepEqual([...felix.endpoints.keys()], [a.id]);
  const badLog = rig.log.lines.find((l) => l["field"] === "ip");
  assert.equal(badLog?.["file"], "ep1.txt");
  assert.equal(badLog?.["section"], "endpoint ep1");

  // Fixed, with a new address: destroyed and created afresh.
  const since = felix.received.length;
  await writeFile(file, endpointText({ ...a, ip: "192.168.1.77" }));
  const d = await felix.received.waitFor((m) => m["type"] === "ENDPOINTDESTROYED", { since });
  const c = await felix.received.waitFor((m) => m["type"] === "ENDPOINTCREATED", {
    since: d.index,
  });
  assert.deepEqual(c.value["addrs"], [{ addr: "192.168.1.77" }]);
  assert.deepEqual(felix.violations, []);
});

test("a file written in slow pieces causes no destroy storm", async (t) => {
  const endpoints = Array.from({ length: 5 }, (_, i) => ep(i + 1, "host1"));
  const rig = await endpointRig(t, { basePort: 23060, hosts: [H1] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  // The seed's style: every endpoint in one concatenated file.
  const all = join(rig.dir, "data.txt");
  await writeFile(all, endpoints.map(endpointText).join("\n"));
  await felix.received.waitForCount((m) => m["type"] === "ENDPOINTCREATED", 5);
  const since = felix.received.length;
  // Rewrite it as a slow writer would: truncate, then dribble it out in chunks.
  const text = endpoints.map(endpointText).join("\n");
  const fh = await open(all, "w");
  for (let i = 0; i < text.length; i += 97) {
    await fh.write(text.slice(i, i + 97));
    await sleep(8);
  }
  await fh.close();
  await sleep(200);
  const after = felix.received.items.slice(since).map((i) => i.value["type"]);
  assert.deepEqual(
    after.filter((x) => x !== "HEARTBEAT"),
    [],
    "no destroy or create while the file was being rewritten with the same content",
  );
  assert.equal(felix.endpoints.size, 5);
});

test("a data directory that does not exist yet is waited for", async (t) => {
  const parent = await tmpDir("late");
  t.after(() => parent.remove());
  const dir = join(parent.path, "data");
  const felix = new FakeFelix({
    hostname: "host1",
    ip: "127.0.0.2",
    port: 23072,
    plugin: "tcp://127.0.0.1:23071",
  });
  await felix.start();
  t.after(() => felix.stop());
  const log = captureLogger();
  const plugin = new EndpointPlugin({
    dataDir: dir,
    logger: log.logger,
    bind: "127.0.0.1",
    port: 23071,
    felixPort: 23072,
    pollMs: 50,
    rescanIntervalMs: 0,
  });
  await plugin.start();
  t.after(() => plugin.stop());
  const r = await felix.resyncState();
  assert.equal(r.reply["endpoint_count"], 0);
  await mkdir(dir);
  await writeFile(join(dir, "felix.txt"), felixText([H1]));
  const e = ep(1, "host1");
  await writeFile(join(dir, "ep1.txt"), endpointText(e));
  const c = await felix.received.waitFor((m) => m["endpoint_id"] === e.id, { timeoutMs: 2000 });
  assert.equal(c.value["type"], "ENDPOINTCREATED");
  assert.ok(log.lines.some((l) => l["msg"] === "data directory appeared"));
  // The directory vanishing keeps the last good state.
  await rm(dir, { recursive: true });
  await sleep(200);
  assert.equal(
    felix.received.items.filter((i) => i.value["type"] === "ENDPOINTDESTROYED").length,
    0,
  );
});

test("endpoint plugin restarted while Felix stays up: Felix is re-told everything", async (t) => {
  const endpoints = [ep(1, "host1"), ep(2, "host1")];
  const rig = await endpointRig(t, { basePort: 23080, hosts: [H1], endpoints });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await felix.received.waitForCount((m) => m["type"] === "ENDPOINTCREATED", 2);
  const since = felix.received.length;
  await rig.restartPlugin();
  const creates = await felix.received.waitForCount(
    (m) => m["type"] === "ENDPOINTCREATED" && m["resync_id"] === null,
    2,
    { since },
  );
  assert.deepEqual(creates.map((c) => c["endpoint_id"]).sort(), endpoints.map((e) => e.id).sort());
  // Felix's own REQ socket reconnects by itself.
  assert.deepEqual(await felix.heartbeat(), { type: "HEARTBEAT", rc: "SUCCESS", message: "" });
  const r = await felix.resyncState();
  assert.equal(r.reply["endpoint_count"], 2);
  assert.deepEqual(felix.violations, []);
});

test("network plugin restarted while the ACL Manager stays up: groups flow again", async (t) => {
  // The ACL Manager asks GETGROUPS only at its start; its SUB socket reconnects to the
  // restarted plugin by itself, and that subscription is what brings the groups back.
  const rig = await networkRig(t, { basePort: 23090, endpoints: [ep(1, "h1", "web")] });
  await rig.acl.waitForGroup("web");
  await rig.restartPlugin();
  const since = rig.acl.received.length;
  const t0 = performance.now();
  await rig.acl.waitForGroup("web", undefined, { since, timeoutMs: 3000 });
  assert.ok(performance.now() - t0 < 2000, "groups back within 2 s of the restart");
  assert.deepEqual(await rig.acl.getGroups(), { type: "GETGROUPS", rc: "SUCCESS", message: "" });
  const b = ep(2, "h1", "web");
  const s2 = rig.acl.received.length;
  await rig.writeEndpoint(b);
  await rig.acl.waitForGroup("web", (m) => Object.keys(m["members"] as Json).length === 2, {
    since: s2,
  });
  assert.deepEqual(rig.acl.violations, []);
});

test("a create Felix refuses (INVALID) is not retried, and never destroyed", async (t) => {
  const rig = await endpointRig(t, { basePort: 23100, hosts: [H1] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  const bad = ep(1, "host1");
  felix.replyWith = (m) =>
    m["endpoint_id"] === bad.id && m["type"] === "ENDPOINTCREATED"
      ? JSON.stringify({ type: "ENDPOINTCREATED", rc: "INVALID", message: "bad mac" })
      : undefined;
  await rig.writeEndpoint(bad);
  await felix.received.waitFor((m) => m["endpoint_id"] === bad.id);
  const conn = rig.plugin.felixConnections.get("host1");
  assert.ok(conn);
  await until(() => conn.settled, 2000, "settled");
  // Other work flows, and the refused create is not sent again.
  const other = ep(2, "host1");
  await rig.writeEndpoint(other);
  await felix.received.waitFor((m) => m["endpoint_id"] === other.id);
  await sleep(100);
  assert.equal(felix.received.items.filter((i) => i.value["endpoint_id"] === bad.id).length, 1);
  assert.ok(rig.log.lines.some((l) => l["msg"] === "felix refused ENDPOINTCREATED"));
  // Removing it sends no destroy (Felix never had it); the fake flags one as a violation.
  await rm(join(rig.dir, `${bad.name}.txt`));
  await until(() => conn.settled, 2000, "settled after removal");
  await sleep(100);
  assert.equal(felix.received.items.filter((i) => i.value["endpoint_id"] === bad.id).length, 1);
  // Written again with new content, it is offered again.
  felix.replyWith = null;
  await rig.writeEndpoint({ ...bad, mac: "ee:ee:00:00:00:42" });
  const again = await felix.received.waitFor(
    (m) => m["endpoint_id"] === bad.id && m["mac"] === "ee:ee:00:00:00:42",
  );
  assert.equal(again.value["type"], "ENDPOINTCREATED");
  assert.deepEqual(felix.violations, []);
});

test("an update Felix does not know (NOTEXIST, e.g. after a Felix restart) becomes a create", async (t) => {
  const e = ep(1, "host1");
  const rig = await endpointRig(t, { basePort: 23110, hosts: [H1], endpoints: [e] });
  const [felix] = rig.felixes;
  assert.ok(felix);
  await felix.received.waitFor((m) => m["endpoint_id"] === e.id);
  await until(() => felix.endpoints.has(e.id), 2000, "felix has the endpoint");
  felix.endpoints.clear(); // Felix lost its state
  const since = felix.received.length;
  await writeFile(join(rig.dir, `${e.name}.txt`), `${endpointText(e)}state=disabled\n`);
  const update = await felix.received.waitFor((m) => m["type"] === "ENDPOINTUPDATED", { since });
  const create = await felix.received.waitFor((m) => m["type"] === "ENDPOINTCREATED", {
    since: update.index,
  });
  assert.equal(create.value["resync_id"], null);
  assert.equal(create.value["state"], "disabled");
  assert.equal(felix.endpoints.get(e.id)?.state, "disabled");
  assert.deepEqual(felix.violations, []);
});
