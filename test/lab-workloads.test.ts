// Workload endpoints in the lab, with real Docker (root): an endpoint running the lab's util
// image with `httpd -f -p 8080 -h /` on one host, fetched over TCP with wget from an endpoint
// on the other host, through the fabric's routes (dev) and through BGP (lab-bgp); a
// container started by the test with `docker run --net=none` attached, wired and reached, and
// left running by `down`; an image the daemon does not have, and an attached container that
// does not exist, each failing `up` with the endpoint's key. Traffic stays inside the
// namespaces and containers these tests make; everything is removed, even on failure.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CalicoConfig } from "../components/config.js";
import type { LabOptions } from "../lab/context.js";
import { labCheck } from "../lab/check.js";
import { docker, ensureUtilImage, startDockerd, stopDockerd, UTIL_IMAGE } from "../lab/docker.js";
import { labDockerHost, labDown, labUp } from "../lab/lab.js";
import { labPrefix } from "../lab/plan.js";
import { StateDir } from "../lab/state.js";
import {
  leftovers,
  NOTHING,
  stackWith,
  systemSnapshot,
  type SystemSnapshot,
  LAB_SKIP,
} from "./helpers/lab.js";

const skip = LAB_SKIP;
const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/"];
/** The util image's root holds /www/index.html saying `calico-lab`. */
const PAGE = "/www/index.html";

let stateRoot = "";
let baseline: SystemSnapshot;

const stackName = (kind: string) => `t-wl-${kind}-${process.pid}`;

/**
 * wget from a container, over TCP; its output (or the failure, as text). (Busybox 1.35's
 * `wget -T` crashes, so the time limit is the runner's.)
 */
async function fetchFrom(host: string, container: string, url: string): Promise<string> {
  const r = await docker(host, ["exec", container, "wget", "-q", "-O", "-", url], {
    okCodes: [1],
    timeoutMs: 15_000,
  });
  return r.code === 0 ? r.stdout : `wget failed: ${r.stderr.trim()}`;
}

/** The dev-shaped stack (or lab-bgp) whose first endpoint serves HTTP on 8080. */
function webStack(stack: "dev" | "lab-bgp"): CalicoConfig {
  return stackWith(stack, (raw) => {
    raw.endpoints = [
      {
        name: "web",
        host: "host-1",
        ip: "192.168.1.1",
        group: "web",
        image: UTIL_IMAGE,
        command: HTTPD,
      },
      { name: "db", host: "host-1", ip: "192.168.1.2", group: "db" },
      { name: "client", host: "host-2", ip: "192.168.1.3", group: "web" },
    ];
  });
}

async function serveAndFetch(
  kind: string,
  config: CalicoConfig,
  via: "fabric" | "bgp",
  felix: "real" | "stand-in",
) {
  const opts: LabOptions = { stack: stackName(kind), config, stateRoot, felix };
  const before = await systemSnapshot();
  try {
    await labUp(opts);
    const host = labDockerHost(opts);
    const report = await labCheck({ ...opts, timeoutMs: 30_000 });
    assert.deepEqual(report.problems, [], JSON.stringify(report.problems));
    assert.ok(
      report.routes.every((h) => h.via === via),
      JSON.stringify(report.routes),
    );
    // The web endpoint runs the stack's command, not the util image's sleep.
    const { stdout: cmd } = await docker(host, ["inspect", "-f", "{{json .Config.Cmd}}", "web"]);
    assert.deepEqual(JSON.parse(cmd) as string[], HTTPD);
    // From the other host, over TCP.
    assert.equal(
      (await fetchFrom(host, "client", `http://192.168.1.1:8080${PAGE}`)).trim(),
      "calico-lab",
    );
    // And nothing listens on the client: the fetch above went to the web endpoint.
    assert.match(await fetchFrom(host, "web", `http://192.168.1.3:8080${PAGE}`), /wget failed/);
  } finally {
    await labDown(opts);
  }
  assert.deepEqual(leftovers(before, await systemSnapshot()), NOTHING, "left behind");
}

describe("lab: workload endpoints with real Docker", { skip }, () => {
  before(async () => {
    stateRoot = await mkdtemp(path.join(tmpdir(), "lab-workloads-"));
    baseline = await systemSnapshot();
  });
  after(async () => {
    await rm(stateRoot, { recursive: true, force: true });
    assert.deepEqual(leftovers(baseline, await systemSnapshot()), NOTHING);
  });

  it("httpd on host-1 fetched from host-2 through the fabric's routes (dev)", () =>
    serveAndFetch("dev", webStack("dev"), "fabric", "real"));

  it("httpd on host-1 fetched from host-2 through BGP (lab-bgp)", () =>
    serveAndFetch("bgp", webStack("lab-bgp"), "bgp", "stand-in"));

  describe("with a daemon the test runs (DOCKER_HOST), holding a container of its own", () => {
    const daemonState = () => new StateDir(stateRoot, "t-wl-daemon");
    const prefix = labPrefix("t-wl-daemon");
    let host = "";
    const legacy = `legacy-${process.pid}`;
    const savedDockerHost = process.env.DOCKER_HOST;
    before(async () => {
      host = (await startDockerd(daemonState(), prefix)).host;
      await ensureUtilImage(host, daemonState());
      // Started as docs/workloads.md says: --net=none and a restart policy, none of our
      // labels; the host agent knows it by name and wires it again after a restart.
      await docker(host, [
        "run",
        "-d",
        "--net=none",
        "--restart",
        "unless-stopped",
        "--name",
        legacy,
        UTIL_IMAGE,
        ...HTTPD,
      ]);
      process.env.DOCKER_HOST = host;
    });
    after(async () => {
      if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = savedDockerHost;
      await stopDockerd(daemonState(), prefix);
      await rm(daemonState().dir, { recursive: true, force: true });
    });

    it("attaches the running container: wired, reached, and left running by down", async () => {
      const config = stackWith("dev", (raw) => {
        raw.endpoints = [
          { name: legacy, host: "host-1", ip: "192.168.1.1", group: "web", attach: true },
          { name: "client", host: "host-2", ip: "192.168.1.3", group: "web" },
        ];
      });
      const opts: LabOptions = { stack: stackName("att"), config, stateRoot, felix: "stand-in" };
      const before = await systemSnapshot();
      const { stdout: id } = await docker(host, ["inspect", "-f", "{{.Id}}", legacy]);
      try {
        await labUp(opts);
        const report = await labCheck({ ...opts, timeoutMs: 30_000 });
        assert.deepEqual(report.problems, [], JSON.stringify(report.problems));
        assert.equal(
          (await fetchFrom(host, "client", `http://192.168.1.1:8080${PAGE}`)).trim(),
          "calico-lab",
        );
        const { stdout: addr } = await docker(host, ["exec", legacy, "ip", "-4", "-o", "addr"]);
        assert.match(addr, /eth0\s+inet 192\.168\.1\.1\/32/);
        // Restarted: it comes back with only lo, and host-1's agent wires it again.
        await docker(host, ["restart", "-t", "1", legacy]);
        const deadline = Date.now() + 20_000;
        let page = "";
        while (Date.now() < deadline) {
          page = await fetchFrom(host, "client", `http://192.168.1.1:8080${PAGE}`);
          if (page.trim() === "calico-lab") break;
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(page.trim(), "calico-lab", "reached again after the restart");
      } finally {
        await labDown(opts);
      }
      // The lab removed its own container and left the attached one running, same id,
      // unwired (its eth0 went with the lab's tap).
      const { stdout: ps } = await docker(host, ["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
      assert.deepEqual(ps.trim().split("\n"), [`${legacy} running`]);
      const { stdout: after } = await docker(host, ["inspect", "-f", "{{.Id}}", legacy]);
      assert.equal(after.trim(), id.trim());
      const { stdout: links } = await docker(host, ["exec", legacy, "ip", "-o", "link"]);
      assert.doesNotMatch(links, /eth0/);
      // The restart gave the test's own daemon a new shim and namespace mount for its
      // container: those are the test daemon's (its `after` removes them), not the lab's.
      const left = leftovers(before, await systemSnapshot());
      const ours = (x: string) => !x.includes(daemonState().dir);
      left.dockers = left.dockers.filter(ours);
      left.mounts = left.mounts.filter(ours);
      assert.deepEqual(left, NOTHING, "left behind");
    });

    it("an image the daemon does not have fails up, naming the endpoint's key", async () => {
      const config = stackWith("dev", (raw) => {
        raw.endpoints = [
          { host: "host-1", ip: "192.168.1.1", group: "web" },
          {
            name: "shop",
            host: "host-2",
            ip: "192.168.1.3",
            group: "web",
            image: "calico-lab/absent:1",
          },
        ];
      });
      const opts: LabOptions = { stack: stackName("img"), config, stateRoot, felix: "stand-in" };
      try {
        await assert.rejects(labUp(opts), (e: Error) => {
          assert.match(
            e.message,
            /endpoints\[1\]\.image: calico-lab\/absent:1 \(endpoint shop\) is not on the lab's Docker daemon/,
          );
          return true;
        });
      } finally {
        await labDown(opts);
      }
    });

    it("an attached container that is not there fails up, naming the endpoint's key", async () => {
      const config = stackWith("dev", (raw) => {
        raw.endpoints = [
          { host: "host-1", ip: "192.168.1.1", group: "web" },
          { name: "ghost", host: "host-2", ip: "192.168.1.3", group: "web", attach: true },
        ];
      });
      const opts: LabOptions = { stack: stackName("gho"), config, stateRoot, felix: "stand-in" };
      try {
        await assert.rejects(labUp(opts), (e: Error) => {
          assert.match(
            e.message,
            /endpoints\[1\] \(ghost, attach: true\) on host host-2: there is no container named ghost/,
          );
          return true;
        });
      } finally {
        await labDown(opts);
      }
      // The container that is there was not touched.
      const { stdout } = await docker(host, ["inspect", "-f", "{{.State.Running}}", legacy]);
      assert.equal(stdout.trim(), "true");
    });
  });
});
