/**
 * The felix image's health check (images/felix/calico_health.py) against real ZeroMQ peers
 * on loopback (the plugin's zeromq package): a REP standing in for Felix's endpoint API and
 * a PUB standing in for the ACL Manager's publisher. Run under python3 here (the image runs
 * it under Python 2.7; the script is written for both).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Publisher, Reply } from "zeromq";
import { renderAclManagerCfg, renderFelixCfg } from "../components/render/index.js";
import { devModel, hostOf } from "./helpers/stacks.js";
import { hasCommand } from "./helpers/tools.js";

const CHECK = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "images",
  "felix",
  "calico_health.py",
);
const skip = hasCommand("python3") ? undefined : "python3 is not installed";

interface Outcome {
  status: number | null;
  out: string;
  ms: number;
}

/** Run the check asynchronously (the peers answer from this same event loop). */
function check(args: string[]): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolveRun) => {
    const child = spawn("python3", [CHECK, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("close", (status) => resolveRun({ status, out: out.trim(), ms: Date.now() - t0 }));
  });
}

async function bound<T extends Reply | Publisher>(sock: T): Promise<{ sock: T; port: number }> {
  await sock.bind("tcp://127.0.0.1:*");
  const port = Number(/:(\d+)$/.exec(sock.lastEndpoint ?? "")?.[1]);
  assert.ok(port > 0, `no port in ${String(sock.lastEndpoint)}`);
  return { sock, port };
}

describe("felix image health check, against real ZeroMQ peers", { skip }, () => {
  it("felix: healthy when a HEARTBEAT request gets a HEARTBEAT reply", async () => {
    const { sock, port } = await bound(new Reply());
    const seen: unknown[] = [];
    const serve = (async () => {
      for await (const [msg] of sock) {
        const req = JSON.parse(String(msg)) as { type: string };
        seen.push(req);
        await sock.send(JSON.stringify({ type: req.type, rc: "SUCCESS", message: "" }));
      }
    })();
    try {
      const r = await check(["felix", "--address", "127.0.0.1", "--port", String(port)]);
      assert.equal(r.status, 0, r.out);
      assert.equal(r.out, `healthy: Felix at 127.0.0.1:${port} answered HEARTBEAT`);
      assert.equal(seen.length, 1);
      const req = seen[0] as { type: string; issued: number };
      assert.equal(req.type, "HEARTBEAT");
      assert.ok(
        Math.abs(req.issued - Date.now()) < 10_000,
        "issued is milliseconds since the epoch",
      );
    } finally {
      sock.close();
      await serve.catch(() => undefined);
    }
  });

  it("felix: unhealthy when nothing answers in time, the reply is wrong, or nobody listens", async () => {
    // A hung Felix: the socket accepts the request (libzmq does that), the loop never replies.
    const hung = await bound(new Reply());
    try {
      const r = await check([
        "felix",
        "--address",
        "127.0.0.1",
        "--port",
        String(hung.port),
        "--timeout",
        "1",
      ]);
      assert.equal(r.status, 1, r.out);
      assert.equal(r.out, `unhealthy: no answer from 127.0.0.1:${hung.port} within 1 s`);
      assert.ok(r.ms < 5000, `the timeout holds (${r.ms} ms)`);
    } finally {
      hung.sock.close();
    }
    const wrong = await bound(new Reply());
    const serve = (async () => {
      for await (const [msg] of wrong.sock) {
        const type = (JSON.parse(String(msg)) as { type: string }).type;
        await wrong.sock.send(
          JSON.stringify({ type: type === "HEARTBEAT" ? "RESYNCSTATE" : type }),
        );
      }
    })();
    try {
      const r = await check(["felix", "--address", "127.0.0.1", "--port", String(wrong.port)]);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /^unhealthy: unexpected reply from 127\.0\.0\.1:\d+: .*RESYNCSTATE/);
    } finally {
      wrong.sock.close();
      await serve.catch(() => undefined);
    }
    const closedPort = wrong.port; // closed now
    const r = await check([
      "felix",
      "--address",
      "127.0.0.1",
      "--port",
      String(closedPort),
      "--timeout",
      "2",
    ]);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /^unhealthy: cannot connect to 127\.0\.0\.1:\d+: /);
  });

  it("acl-manager: healthy when its publisher publishes, unhealthy when it stays silent", async () => {
    const pub = await bound(new Publisher());
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        await pub.sock.send([
          "networkheartbeat",
          JSON.stringify({ type: "HEARTBEAT", issued: Date.now() }),
        ]);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const r = await check([
        "acl-manager",
        "--address",
        "127.0.0.1",
        "--port",
        String(pub.port),
        "--timeout",
        "5",
      ]);
      assert.equal(r.status, 0, r.out);
      assert.equal(
        r.out,
        `healthy: the ACL Manager at 127.0.0.1:${pub.port} published (HEARTBEAT)`,
      );
    } finally {
      publishing = false;
      await loop;
      pub.sock.close();
    }
    const silent = await bound(new Publisher());
    try {
      const r = await check([
        "acl-manager",
        "--address",
        "127.0.0.1",
        "--port",
        String(silent.port),
        "--timeout",
        "1",
      ]);
      assert.equal(r.status, 1, r.out);
      assert.equal(r.out, `unhealthy: no answer from 127.0.0.1:${silent.port} within 1 s`);
    } finally {
      silent.sock.close();
    }
  });

  it("reads LocalAddress from the rendered felix.cfg and acl_manager.cfg", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cdh-"));
    try {
      const model = devModel();
      const felix = join(dir, "felix.cfg");
      const acl = join(dir, "acl_manager.cfg");
      writeFileSync(felix, renderFelixCfg(model, hostOf(model, "host-2")));
      writeFileSync(acl, renderAclManagerCfg(model));
      writeFileSync(join(dir, "none.cfg"), "[global]\nPluginAddress = 10.0.0.1\n");
      const py = [
        "import sys",
        `sys.path.insert(0, ${JSON.stringify(dirname(CHECK))})`,
        "import calico_health as h",
        "for p in sys.argv[1:]: print(h.local_address(p))",
      ].join("\n");
      await new Promise<void>((done, fail) => {
        const child = spawn("python3", ["-B", "-c", py, felix, acl, join(dir, "none.cfg")]);
        let out = "";
        child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
        child.on("close", (status) => {
          try {
            assert.equal(status, 0);
            const host2 = model.hosts.find((h) => h.name === "host-2")!.internalAddress;
            assert.deepEqual(out.trim().split("\n"), [
              host2,
              model.controller.internalAddress,
              "127.0.0.1",
            ]);
            done();
          } catch (err) {
            fail(err as Error);
          }
        });
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without a mode or a Felix main process, it says it cannot tell", async () => {
    const r = await check([]);
    assert.equal(r.status, 1);
    assert.match(r.out, /cannot tell Felix from the ACL Manager/);
  });
});
