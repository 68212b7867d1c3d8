// The GCE firewall emulated in the lab's fabric (lab/fabric-firewall.ts). The render is checked
// as text; then, in namespaces of its own (`fwt-`), a fabric as the lab builds it for the dev
// stack with BGP on (one bridge with the regional gateways, hosts with a /32 and a default
// route, static routes for the endpoints) carries real TCP connections with and without it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import {
  applyFabricFirewall,
  fabricFirewallRules,
  FABRIC_FIREWALL_CHAIN,
  renderFabricFirewall,
} from "../lab/fabric-firewall.js";
import { ipBatch, run, runIn, sleep, spawnDetached } from "../lab/exec.js";
import { hostLinkCommands } from "../lab/lab.js";
import { buildPlan, type LabPlan } from "../lab/plan.js";
import { LAB_SKIP } from "./helpers/lab.js";
import { devModel } from "./helpers/stacks.js";

const model = devModel({ bgp: { enabled: true } });
const labPlan = buildPlan(model, "fwt");
/** The lab's plan for the stack, in this test's own namespaces. */
const plan: LabPlan = {
  ...labPlan,
  fabricNs: "fwt-fabric",
  operator: { ...labPlan.operator, ns: "fwt-op" },
  hosts: labPlan.hosts.map((h, i) => ({ ...h, ns: `fwt-h${i + 1}` })),
};
const [host1, host2] = plan.hosts as [LabPlan["hosts"][0], LabPlan["hosts"][0]];
/** One endpoint behind each host: the dev stack's 192.168.1.1 (host-1), 192.168.1.3 (host-2). */
const ep1 = { ns: "fwt-e1", ip: "192.168.1.1", host: host1, tap: "fwt-t1" };
const ep2 = { ns: "fwt-e2", ip: "192.168.1.3", host: host2, tap: "fwt-t2" };
const NAMESPACES = [plan.fabricNs, plan.operator.ns, host1.ns, host2.ns, ep1.ns, ep2.ns];
const ENDPOINT_PORT = 8080;

describe("fabric firewall: the render", () => {
  const lines = renderFabricFirewall(labPlan, model).split("\n");
  const chain = (rest: string) => `-A ${FABRIC_FIREWALL_CHAIN} ${rest}`;

  it("accepts replies first and drops what goes to a host or the pool last", () => {
    assert.deepEqual(lines.slice(0, 3), [
      "*filter",
      `:${FABRIC_FIREWALL_CHAIN} - [0:0]`,
      chain("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
    ]);
    assert.deepEqual(lines.slice(-5), [
      chain("-d 10.240.0.2/32 -m comment --comment gce-deny -j DROP"),
      chain("-d 10.240.128.2/32 -m comment --comment gce-deny -j DROP"),
      chain("-d 192.168.0.0/16 -m comment --comment gce-deny -j DROP"),
      "COMMIT",
      "",
    ]);
  });

  it("admits ZeroMQ and BGP from each host, SSH from the ranges and the operator", () => {
    for (const h of ["10.240.0.2", "10.240.128.2"]) {
      assert.ok(
        lines.includes(
          chain(
            `-s ${h}/32 -p tcp -m tcp --dport 9901:9906 -m comment --comment gce-zeromq -j ACCEPT`,
          ),
        ),
      );
      assert.ok(
        lines.includes(
          chain(`-s ${h}/32 -p tcp -m tcp --dport 179 -m comment --comment gce-bgp -j ACCEPT`),
        ),
      );
    }
    for (const s of ["203.0.113.0/24", `${labPlan.operator.address}/32`]) {
      assert.ok(
        lines.includes(
          chain(`-s ${s} -p tcp -m tcp --dport 22 -m comment --comment gce-ssh -j ACCEPT`),
        ),
        s,
      );
    }
    for (const p of ["tcp", "udp", "icmp"]) {
      assert.ok(
        lines.includes(
          chain(
            `-s 192.168.0.0/16 -d 192.168.0.0/16 -p ${p} -m comment --comment gce-endpoints -j ACCEPT`,
          ),
        ),
        p,
      );
    }
    assert.equal(lines.filter((l) => l.includes("-j ACCEPT")).length, 1 + 2 + 2 + 2 + 3);
  });

  it("has no BGP rule with BGP off", () => {
    const off = devModel();
    assert.ok(!renderFabricFirewall(buildPlan(off, "fwt"), off).includes("gce-bgp"));
  });

  it("refuses a LAN fabric and an address that is not one, naming it", () => {
    assert.throws(
      () => renderFabricFirewall({ ...labPlan, fabric: "lan" }, model),
      /needs a router fabric \(platform gce\), not lan/,
    );
    const bad = { ...labPlan, operator: { address: "10.0.0.1\n-A FORWARD -j ACCEPT" } };
    assert.throws(() => renderFabricFirewall(bad, model), /operator\.address: "10\.0\.0\.1\\n-A/);
  });
});

// ---------------------------------------------------------------------------------------------
// Real namespaces.

type Outcome = "connected" | "dropped" | "refused";

/** A TCP connect from `ns` to ip:port: connected, dropped (timed out after 2 s) or refused. */
async function connect(ns: string, ip: string, port: number): Promise<Outcome> {
  const probe = 'exec 3<>"/dev/tcp/$0/$1"';
  const r = await runIn(ns, "timeout", ["2", "bash", "-c", probe, ip, String(port)], {
    okCodes: [1, 124],
  });
  return r.code === 0 ? "connected" : r.code === 124 ? "dropped" : "refused";
}

async function removeNamespaces(): Promise<void> {
  for (const ns of NAMESPACES) await run("ip", ["netns", "del", ns], { okCodes: [1] });
}

/** The fabric, the operator and the hosts, wired as the lab wires them (lab/lab.ts). */
async function buildFabric(): Promise<void> {
  for (const ns of NAMESPACES) await run("ip", ["netns", "add", ns]);
  await ipBatch(plan.fabricNs, [
    "link set lo up",
    `link add ${plan.bridge} type bridge`,
    ...plan.bridgeAddresses.map((a) => `addr add ${a} dev ${plan.bridge}`),
    `link set ${plan.bridge} up`,
    ...[...plan.hosts, plan.operator].flatMap((h) => [
      `link add ${h.fabricPort} type veth peer name ${h.uplink} netns ${h.ns}`,
      `link set ${h.fabricPort} master ${plan.bridge}`,
      `link set ${h.fabricPort} up`,
    ]),
    ...plan.fabricRoutes.map((r) => `route replace ${r.dest} via ${r.via} dev ${plan.bridge}`),
  ]);
  await runIn(plan.fabricNs, "sysctl", [
    "-q",
    "-w",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.send_redirects=0",
    `net.ipv4.conf.${plan.bridge}.send_redirects=0`,
  ]);
  for (const h of [...plan.hosts, plan.operator]) await ipBatch(h.ns, hostLinkCommands(h));
  for (const h of plan.hosts) await runIn(h.ns, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
}

/** An endpoint namespace behind its host: a veth, the pool address, a host route to it. */
async function wireEndpoint(e: typeof ep1): Promise<void> {
  await ipBatch(e.host.ns, [
    `link add ${e.tap} type veth peer name eth0 netns ${e.ns}`,
    `addr add 169.254.1.1/32 dev ${e.tap}`,
    `link set ${e.tap} up`,
    `route add ${e.ip}/32 dev ${e.tap}`,
  ]);
  await ipBatch(e.ns, [
    "link set lo up",
    `addr add ${e.ip}/32 dev eth0`,
    "link set eth0 up",
    "route add 169.254.1.1 dev eth0 scope link",
    "route add default via 169.254.1.1 dev eth0",
  ]);
}

const listeners: number[] = [];

/** A TCP listener (busybox nc, one process for every connection) in `ns`, once it listens. */
async function listen(ns: string, ip: string, port: number): Promise<void> {
  const devNull = openSync("/dev/null", "w");
  try {
    const args = ["--net=/var/run/netns/" + ns, "--", "busybox", "nc", "-ll", "-p", String(port)];
    listeners.push(spawnDetached("nsenter", [...args, "-e", "/bin/true"], devNull));
  } finally {
    closeSync(devNull);
  }
  for (let i = 0; i < 50; i++) {
    if ((await connect(ns, ip, port)) === "connected") return;
    await sleep(100);
  }
  throw new Error(`test: nothing listens on ${ip}:${port} in ${ns}`);
}

describe("fabric firewall: TCP through a lab fabric", { skip: LAB_SKIP }, () => {
  before(async () => {
    await removeNamespaces(); // a previous run's, if it was killed
    await buildFabric();
    await wireEndpoint(ep1);
    await wireEndpoint(ep2);
    for (const port of [9902, 22, 179]) await listen(host2.ns, host2.address, port);
    await listen(ep2.ns, ep2.ip, ENDPOINT_PORT);
  });

  after(async () => {
    for (const pid of listeners) {
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
    }
    await removeNamespaces();
  });

  it("without it, an endpoint's own address reaches another host's Felix port", async () => {
    assert.deepEqual(await fabricFirewallRules(plan.fabricNs), { jumped: false, rules: [] });
    assert.equal(await connect(ep1.ns, host2.address, 9902), "connected");
  });

  it("loads once (applied twice) and reads back as rendered", async () => {
    await applyFabricFirewall(plan, model);
    await applyFabricFirewall(plan, model);
    const rendered = renderFabricFirewall(plan, model).split("\n");
    const state = await fabricFirewallRules(plan.fabricNs);
    assert.equal(state.jumped, true);
    assert.deepEqual(
      state.rules,
      rendered.filter((l) => l.startsWith("-A ")),
    );
    const forward = await runIn(plan.fabricNs, "iptables-legacy", ["-S", "FORWARD"]);
    assert.equal(forward.stdout.split("\n").filter((l) => l.includes("-j CALICO")).length, 1);
  });

  it("host-1 reaches host-2's ZeroMQ (9902) and BGP (179), not its sshd", async () => {
    assert.equal(await connect(host1.ns, host2.address, 9902), "connected");
    assert.equal(await connect(host1.ns, host2.address, 179), "connected");
    assert.equal(await connect(host1.ns, host2.address, 22), "dropped");
  });

  it("an endpoint's own address (no SNAT) reaches none of host-2's 9902, 22, 179", async () => {
    const outcomes = await Promise.all(
      [9902, 22, 179].map((port) => connect(ep1.ns, host2.address, port)),
    );
    assert.deepEqual(outcomes, ["dropped", "dropped", "dropped"]);
  });

  it("the operator reaches host-2's sshd and not its ZeroMQ", async () => {
    assert.equal(await connect(plan.operator.ns, host2.address, 22), "connected");
    assert.equal(await connect(plan.operator.ns, host2.address, 9902), "dropped");
  });

  it("endpoint to endpoint across hosts passes; host to a remote endpoint does not", async () => {
    assert.equal(await connect(ep1.ns, ep2.ip, ENDPOINT_PORT), "connected");
    assert.equal(await connect(host1.ns, ep2.ip, ENDPOINT_PORT), "dropped");
  });
});
