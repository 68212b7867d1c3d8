// npm run status against hostile or broken host replies, through the real engine and the real
// command (status/cli.ts) with a transport standing in for SSH: a reply that does not fit is
// that host's problem, named; the healthy hosts are still reported; the exit code keeps its
// meaning (1: problems found). A reply past the bound is cut there, in bounded memory.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildModel } from "../components/model.js";
import { statusCli } from "../status/cli.js";
import { problemKey as problemKeyOf, runStatus, type StatusReport } from "../status/engine.js";
import { formatProblem } from "../status/report.js";
import { parseOutputs, stackTarget } from "../status/stack.js";
import { spawnCollect, type Transport } from "../status/transport.js";
import { stackWith } from "./helpers/lab.js";
import { fakeTransport, healthySections, reply, type Replies } from "./helpers/status-replies.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const model = buildModel(stackWith("dev", (raw) => (raw.bgp = { enabled: true })));
const { target } = stackTarget(
  "dev",
  model,
  parseOutputs(
    JSON.stringify({
      hosts: model.hosts.map((h) => ({ name: h.name, externalAddress: "198.51.100.7" })),
      endpoints: model.endpoints.map((e, i) => ({
        name: e.name,
        containerId: String(i + 1).repeat(64),
      })),
    }),
    "t",
  ),
);
const healthy = Object.fromEntries(
  model.hosts.map((h) => [h.name, healthySections(target, h)]),
) as Record<string, Replies>;

/** host-1 answers as a healthy host; host-2 with its healthy sections, changed. */
function transport(change: (s: Replies) => void): Transport {
  return fakeTransport(async (host) => {
    const s = { ...healthy[host]! };
    if (host === "host-2") change(s);
    return { stdout: reply(s), stderr: "", code: 0 };
  });
}

/** The command for real, with the lab handed in as this target and transport. */
async function cli(t: Transport, args: string[] = []) {
  let out = "";
  let err = "";
  const code = await statusCli(["node", "status", "--lab", "--json", ...args], {
    repoRoot: root,
    lab: () => ({ target, transport: t }),
    io: { out: (s) => (out += s), err: (s) => (err += s) },
  });
  return { code, report: (out ? JSON.parse(out) : undefined) as StatusReport, err };
}

function assertOnlyHost2(r: StatusReport, problem: string) {
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems.map(formatProblem), [problem]);
  assert.deepEqual(r.consequences, []);
  const h1 = r.hosts.find((h) => h.host === "host-1")!;
  assert.deepEqual(h1.problems, [], "the healthy host is reported healthy");
  assert.deepEqual(
    h1.checks.map((c) => `${c.check} ${c.status}`),
    [
      "reach ok",
      "containers ok",
      "agent ok",
      "bgp ok",
      "routes ok",
      "endpoints ok",
      "felix ok",
      "snat ok",
      "plugin-data ok",
    ],
  );
}

describe("status: a healthy stack through a stand-in transport", () => {
  it("is healthy, exit 0", async () => {
    const r = await cli(transport(() => {}));
    assert.equal(r.code, 0, r.err);
    assert.equal(r.report.ok, true, r.report.problems.map(formatProblem).join("; "));
  });
});

describe("status: one malformed host reply is that host's problem, named", () => {
  const routes =
    "host-2: routes: the routes reply: expected a list of IPv4 routes (ip -j -4 route), found not a list of IPv4 routes: ";
  const cases: [string, (s: Replies) => void, string][] = [
    [
      "routes null",
      (s) => (s.routes = "null"),
      `${routes}(top): Invalid input: expected array, received null`,
    ],
    [
      "routes {}",
      (s) => (s.routes = "{}"),
      `${routes}(top): Invalid input: expected array, received object`,
    ],
    [
      "routes [null]",
      (s) => (s.routes = "[null]"),
      `${routes}[0]: Invalid input: expected object, received null`,
    ],
    [
      "a route without dst",
      (s) => (s.routes = '[{"dev":"eth0","protocol":"bird"}]'),
      `${routes}[0].dst: Invalid input: expected string, received undefined`,
    ],
    [
      "an IPv6 dst",
      (s) => (s.routes = s.routes!.replace('"dst":"default"', '"dst":"2001:db8::/64"')),
      `${routes}[0].dst: not an IPv4 destination: "2001:db8::/64"`,
    ],
    [
      "links [null]",
      (s) => (s.links = "[null]"),
      "host-2: endpoints: the links reply: expected a list of links (ip -j link), found not a list of links: [0]: Invalid input: expected object, received null",
    ],
    [
      "a containers line {}",
      (s) => (s.containers = `${s.containers}\n{}`),
      "host-2: containers: the containers reply: expected one container per line (docker inspect), found line 4 is not a container: name: Invalid input: expected string, received undefined",
    ],
  ];
  for (const [what, change, problem] of cases) {
    it(`${what}: the other host reported, this one named, exit 1`, async () => {
      assertOnlyHost2(await runStatus(target, transport(change)), problem);
      const r = await cli(transport(change));
      assert.equal(r.code, 1, r.err);
      assertOnlyHost2(r.report, problem);
    });
  }
});

describe("status: what is read of a host's reply is bounded", () => {
  const cut = (mib: string) =>
    `host-2: reach: host-2: expected a reply of at most ${mib}, found more than ${mib} (cut there, the command stopped)`;

  it("a reply past --max-reply (a transport that does not cut it itself): that host's problem", async () => {
    const big = transport((s) => (s.felix = "x".repeat(3 * 1024 * 1024)));
    const r = await cli(big, ["--max-reply", "1"]);
    assert.equal(r.code, 1, r.err);
    assertOnlyHost2(r.report, cut("1 MiB"));
    assert.equal((await cli(big, ["--max-reply", "0"])).code, 2, "a bad bound is a bad option");
  });

  it("a peer's session down to a host whose reply was cut is a consequence of that", async () => {
    const t = fakeTransport(async (host) => {
      const s = { ...healthy[host]! };
      if (host === "host-1")
        s.bird = s.bird!.replace("up     07:00:01    Established", "start  07:00:01    Active");
      if (host === "host-2") s.felix = "x".repeat(2 * 1024 * 1024);
      return { stdout: reply(s), stderr: "", code: 0 };
    });
    const r = await runStatus(target, t, { maxReplyBytes: 1024 * 1024 });
    assert.deepEqual(r.problems.map(formatProblem), [cut("1 MiB")]);
    assert.deepEqual(
      r.consequences.map((p) => `${problemKeyOf(p)} <- ${p.causedBy}`),
      ["host-1/bgp/session host-2 <- host-2/reach/host-2"],
    );
  });

  it("a real process printing without end is cut at 16 MiB, in bounded memory", async () => {
    // host-2's command prints zeros forever, read by the collector both real transports use.
    const endless = fakeTransport(async (host, o) =>
      host === "host-2"
        ? spawnCollect(
            "sh",
            ["-c", "exec cat /dev/zero"],
            o.timeoutMs ?? 30_000,
            process.env,
            o.maxBytes,
          )
        : { stdout: reply(healthy[host]!), stderr: "", code: 0 },
    );
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const t0 = performance.now();
    let r: StatusReport;
    try {
      r = await runStatus(target, endless, { hostTimeoutMs: 20_000 });
    } finally {
      clearInterval(sample);
    }
    const ms = performance.now() - t0;
    assertOnlyHost2(r, cut("16 MiB"));
    const grewMiB = (peak - before) / 1024 / 1024;
    assert.ok(grewMiB < 200, `memory grew ${grewMiB.toFixed(0)} MiB reading an endless reply`);
    assert.ok(ms < 10_000, `cut after ${ms.toFixed(0)} ms, not at the time limit`);
  });
});

describe("status: options", () => {
  it("an unknown option is a bad option: exit 2", async () => {
    const r = await cli(
      transport(() => {}),
      ["--no-such-option"],
    );
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown option '--no-such-option'/);
  });
});
