/**
 * The rendered endpoint script under contention, for real, in namespaces this test makes
 * (`chr-*`, deleted in `finally`): many concurrent `add` and `remove` runs of one endpoint
 * (what `pulumi up`, `pulumi destroy` and the host agent may start at the same moment),
 * while busy loops load the CPUs, 10 rounds: no run may fail, and after each round one more
 * `add` leaves the endpoint fully wired, the veth at the configured MTU on both ends.
 * Also, without namespaces: the MTU follows `vethMtu` (1460 on gce, 1500 on existing).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../components/config.js";
import { buildModel, syntheticEndpointId, tapName } from "../components/model.js";
import { renderEndpointScript } from "../components/render/index.js";
import { endpointLockFile } from "../components/render/endpoint-script.js";
import { devRaw, endpointOf, modelOf } from "./helpers/stacks.js";
import { canUseNetns, inNetns, withNetns, expectOk as ok } from "./helpers/tools.js";

const tag = String(process.pid % 100000);
const HOST = `chr-h-${tag}`;
const EP = `chr-e-${tag}`;
const NAME = `chr${tag}`;
const ROUNDS = 10;
/** The runs started at once in each round, in this order. */
const MIX = ["add", "remove", "add", "add", "remove"];

const model = buildModel(
  loadConfig({
    ...devRaw(),
    endpoints: [{ name: NAME, host: "host-1", ip: "192.168.6.6", group: "web" }],
    groups: {},
  }),
);
const endpoint = endpointOf(model, NAME);
const id = syntheticEndpointId(NAME);
const tap = tapName(id);

function runAsync(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn("ip", ["netns", "exec", HOST, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    c.stdout.setEncoding("utf8").on("data", (t: string) => (output += t));
    c.stderr.setEncoding("utf8").on("data", (t: string) => (output += t));
    c.on("close", (status) => resolve({ status, output }));
  });
}

/** Busy loops, one per core of a small machine. */
function load(n: number): ChildProcess[] {
  return Array.from({ length: n }, () =>
    spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }),
  );
}

describe(
  "endpoint script: concurrent add and remove under CPU load",
  { skip: canUseNetns() },
  () => {
    it(`${ROUNDS} rounds of ${MIX.length} concurrent runs: no failure, wired at the end`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "chr-"));
      const busy = load(2);
      try {
        const script = join(dir, `endpoint-${NAME}.sh`);
        writeFileSync(script, renderEndpointScript(endpoint, id), { mode: 0o755 });
        await withNetns([HOST, EP], async () => {
          const failures: string[] = [];
          const started = Date.now();
          for (let round = 1; round <= ROUNDS; round++) {
            const results = await Promise.all(
              MIX.map((action) => runAsync(["bash", script, action, "--netns", EP])),
            );
            results.forEach((r, i) => {
              if (r.status !== 0) {
                failures.push(
                  `round ${round}, ${MIX[i]}: exit ${String(r.status)}: ${r.output.trim()}`,
                );
              }
            });
            assert.deepEqual(failures, [], `round ${round}: ${failures.length} failed runs`);
            ok(inNetns(HOST, "bash", [script, "add", "--netns", EP]), `add after round ${round}`);
            const eth0 = ok(
              inNetns(EP, "ip", ["-o", "link", "show", "dev", "eth0"]),
              "eth0",
            ).stdout;
            const hostTap = ok(
              inNetns(HOST, "ip", ["-o", "link", "show", "dev", tap]),
              "tap",
            ).stdout;
            assert.match(eth0, /\bUP,LOWER_UP\b.* mtu 1460 /, `round ${round}: ${eth0}`);
            assert.match(hostTap, /\bUP,LOWER_UP\b.* mtu 1460 /, `round ${round}: ${hostTap}`);
            assert.match(
              ok(inNetns(HOST, "ip", ["-4", "route", "show", "exact", "192.168.6.6/32"]), "route")
                .stdout,
              new RegExp(`^192\\.168\\.6\\.6 dev ${tap} `),
            );
          }
          console.log(
            `${ROUNDS * MIX.length} concurrent runs in ${Date.now() - started} ms, none failed`,
          );
        });
      } finally {
        for (const b of busy) b.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
        rmSync(endpointLockFile(NAME), { force: true });
      }
    });
  },
);

describe("endpoint script: the veth MTU", () => {
  const mtuOf = (raw: Record<string, unknown>) => {
    const m = modelOf(raw);
    const text = renderEndpointScript(m.endpoints[0]!, syntheticEndpointId(m.endpoints[0]!.name));
    return /^MTU='(\d+)'$/m.exec(text)?.[1];
  };

  it("is 1460 on gce, 1500 on existing, and vethMtu when set", () => {
    assert.equal(mtuOf(devRaw()), "1460");
    assert.equal(mtuOf({ ...devRaw(), vethMtu: 1400 }), "1400");
    const existing = {
      platform: "existing",
      sshPrivateKey: "x",
      hosts: [{ name: "h1", address: "10.0.0.1", sshUser: "core" }],
      endpoints: [{ host: "h1", ip: "192.168.1.1", group: "web" }],
    };
    assert.equal(mtuOf(existing), "1500");
    assert.throws(() => loadConfig({ ...devRaw(), vethMtu: 100 }), /vethMtu/);
  });

  it("the script sets it on both ends of the veth", () => {
    const text = renderEndpointScript(endpoint, id);
    assert.match(
      text,
      /ip link add "\$TAP" mtu "\$MTU" type veth peer name eth0 mtu "\$MTU" address "\$MAC" netns "\$NS"/,
    );
    assert.match(text, /ip link set dev "\$TAP" mtu "\$MTU"/);
    assert.match(text, /ip -n "\$NS" link set dev eth0 mtu "\$MTU"/);
  });
});
