/**
 * check's batch prober (lab/probe-batch.py), for real, in two namespaces this test makes
 * (`cpb-a-*` probes, `cpb-b-*` is probed; deleted in `finally`). B answers on some ports and
 * addresses, rejects others and drops the rest with iptables, and one prober process sends
 * every probe at once: each outcome must be the one B's rules make, in the order given.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import type { EndpointPlan, LabPlan } from "../lab/plan.js";
import {
  parseObservation,
  probeAll,
  PROBE_TIMEOUT_S,
  PYTHON3,
  startListeners,
  stopListeners,
  type ProbeSpec,
} from "../lab/policy-probes.js";
import { canUseNetns, hasCommand, inNetns, withNetns, expectOk as ok } from "./helpers/tools.js";

const skip =
  canUseNetns() ??
  (hasCommand("iptables") ? undefined : "iptables is not installed") ??
  (hasCommand(PYTHON3) ? undefined : "python3 is not installed");
const tag = String(process.pid % 100000);
const A = `cpb-a-${tag}`;
const B = `cpb-b-${tag}`;
// B's addresses: OPEN answers, SILENT drops ICMP, SHUT rejects ICMP (admin prohibited).
const [OPEN, SILENT, SHUT] = ["10.99.0.2", "10.99.0.3", "10.99.0.4"];

function topology(): void {
  ok(inNetns(A, "ip", ["link", "add", "pba", "type", "veth", "peer", "name", "pbb"]), "veth");
  ok(inNetns(A, "ip", ["link", "set", "pbb", "netns", B]), "move");
  for (const [ns, dev] of [
    [A, "pba"],
    [B, "pbb"],
  ] as const) {
    ok(inNetns(ns, "ip", ["link", "set", "lo", "up"]), "lo");
    ok(inNetns(ns, "ip", ["link", "set", dev, "up"]), "up");
  }
  ok(inNetns(A, "ip", ["addr", "add", "10.99.0.1/24", "dev", "pba"]), "a addr");
  for (const ip of [OPEN, SILENT, SHUT]) {
    ok(inNetns(B, "ip", ["addr", "add", `${ip}/24`, "dev", "pbb"]), `b addr ${ip}`);
  }
  const rules = [
    ["-p", "tcp", "--dport", "5433", "-j", "DROP"],
    ["-p", "udp", "--dport", "5433", "-j", "DROP"],
    ["-d", SILENT, "-p", "icmp", "-j", "DROP"],
    ["-d", SHUT, "-p", "icmp", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"],
  ];
  for (const r of rules) ok(inNetns(B, "iptables", ["-A", "INPUT", ...r]), r.join(" "));
}

const endpoint = (name: string, ns: string, ip: string): EndpointPlan =>
  ({ name, ns, ip }) as EndpointPlan;

describe("check's batch prober, in namespaces", { skip }, () => {
  it("tells connected, refused and dropped apart for TCP, UDP and ICMP, all from one process", async () => {
    await withNetns([A, B], async () => {
      topology();
      const plan = {
        endpoints: [endpoint("a", A, "10.99.0.1"), endpoint("b", B, OPEN)],
      } as unknown as LabPlan;
      const pids = startListeners(plan, [
        {
          endpoint: "b",
          listen: [
            { proto: "tcp", port: 5432 },
            { proto: "udp", port: 5432 },
          ],
        },
      ]);
      try {
        await new Promise((r) => setTimeout(r, 300)); // the listeners bind
        const cases: [ProbeSpec, string][] = [
          [{ from: "a", to: "b", toIp: OPEN, proto: "tcp", port: 5432 }, "connected"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "tcp", port: 5434 }, "refused"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "tcp", port: 5433 }, "dropped"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "udp", port: 5432 }, "connected"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "udp", port: 5434 }, "refused"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "udp", port: 5433 }, "dropped"],
          [{ from: "a", to: "b", toIp: OPEN, proto: "icmp" }, "connected"],
          [{ from: "a", to: "b", toIp: SILENT, proto: "icmp" }, "dropped"],
          [{ from: "a", to: "b", toIp: SHUT, proto: "icmp" }, "refused"],
        ];
        const seen = await probeAll(
          plan,
          cases.map(([p]) => p),
        );
        const got = seen.map((o) => o.outcome);
        assert.deepEqual(
          got,
          cases.map(([, want]) => want),
          JSON.stringify(seen, null, 1),
        );
        // A dropped probe waited for its whole timeout; an answered one did not.
        for (const [i, o] of seen.entries()) {
          if (o.outcome === "dropped")
            assert.ok(o.ms >= PROBE_TIMEOUT_S * 1000 - 100, `${i}: ${o.ms} ms`);
        }
      } finally {
        stopListeners(pids);
      }
    });
  });

  it("calls an ICMP probe it cannot send (no CAP_NET_RAW) an error, not a verdict", () => {
    const prober = fileURLToPath(new URL("../lab/probe-batch.py", import.meta.url));
    const input = JSON.stringify({
      timeout: 0.2,
      probes: [
        { proto: "icmp", ip: "127.0.0.1", port: 0 },
        { proto: "tcp", ip: "127.0.0.1", port: 1 },
      ],
    });
    const out = execFileSync(
      "setpriv",
      ["--inh-caps=-net_raw", "--bounding-set=-net_raw", "--", PYTHON3, prober],
      { input, encoding: "utf8" },
    );
    const [icmp, tcp] = out.trim().split("\n").map(parseObservation);
    assert.equal(icmp?.outcome, "error");
    assert.match(icmp?.detail ?? "", /cannot open a raw ICMP socket/);
    assert.equal(tcp?.outcome, "refused", "the other probes still run");
  });

  it("says what a prober printed that is no observation", () => {
    assert.deepEqual(parseObservation('{"outcome":"dropped","ms":1500.2}'), {
      outcome: "dropped",
      ms: 1500.2,
    });
    assert.deepEqual(parseObservation('{"outcome":"refused","ms":2,"detail":"x"}'), {
      outcome: "refused",
      ms: 2,
      detail: "x",
    });
    for (const bad of [
      undefined,
      "",
      "Traceback (most recent call last):",
      '{"outcome":"maybe","ms":1}',
    ]) {
      const o = parseObservation(bad);
      assert.equal(o.outcome, "error");
      assert.match(o.detail ?? "", /the prober printed/);
    }
  });
});
