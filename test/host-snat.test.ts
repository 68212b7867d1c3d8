/**
 * The SNAT rules of the rendered host script, for real, in namespaces this test makes
 * (`chs-*`, deleted in `finally`): an endpoint (`chs-ep-*`, 192.168.5.5/32) behind a host
 * (`chs-a-*`, 10.240.0.2, which runs the host script's `apply`), and a second host
 * (`chs-b-*`, 10.240.0.3, Felix's port 9902 listening) that is also the first host's way
 * out to an outside address (198.51.100.7). Every listener answers with the source address
 * it sees:
 *   - to the other host's 9902 the endpoint arrives with its own pool address, not the
 *     host's: GCE's `zeromq` rule (source tag: the hosts' own addresses) does not admit it;
 *   - to the outside address it is still masqueraded (the host's address).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PORTS } from "../components/model.js";
import { renderHostScript, SNAT_CHAIN } from "../components/render/index.js";
import { devRaw, hostOf, modelOf } from "./helpers/stacks.js";
import { canUseNetns, hasCommand, inNetns, withNetns, expectOk as ok } from "./helpers/tools.js";

const skip =
  canUseNetns() ?? (hasCommand("iptables-legacy") ? undefined : "iptables-legacy is not installed");
const tag = String(process.pid % 100000);
const EP = `chs-ep-${tag}`;
const A = `chs-a-${tag}`;
const B = `chs-b-${tag}`;
const OUTSIDE = "198.51.100.7";

/** Answers every connection with the peer's address, on each address:port given. */
const SERVER = `
const net = require("node:net");
for (const spec of process.argv.slice(1)) {
  const [host, port] = spec.split(":");
  net.createServer((s) => s.end(s.remoteAddress + "\\n")).listen(Number(port), host, () => console.log("listening " + spec));
}`;

function link(ns1: string, if1: string, ns2: string, if2: string): void {
  ok(inNetns(ns1, "ip", ["link", "add", if1, "type", "veth", "peer", "name", if2]), "veth");
  ok(inNetns(ns1, "ip", ["link", "set", if2, "netns", ns2]), "move");
  ok(inNetns(ns1, "ip", ["link", "set", if1, "up"]), "up");
  ok(inNetns(ns2, "ip", ["link", "set", if2, "up"]), "up");
}

function topology(): void {
  for (const ns of [EP, A, B]) ok(inNetns(ns, "ip", ["link", "set", "lo", "up"]), "lo");
  // The endpoint, wired as the endpoint script wires it: a /32, default route via eth0,
  // proxy ARP and a host route on the host's side.
  link(A, "tapchs", EP, "eth0");
  ok(inNetns(EP, "ip", ["addr", "add", "192.168.5.5/32", "dev", "eth0"]), "ep addr");
  ok(inNetns(EP, "ip", ["route", "add", "default", "dev", "eth0"]), "ep default");
  ok(inNetns(A, "sysctl", ["-qw", "net.ipv4.conf.tapchs.proxy_arp=1"]), "proxy arp");
  ok(inNetns(A, "ip", ["route", "add", "192.168.5.5/32", "dev", "tapchs"]), "host route");
  // The hosts' network, and the way out through host B.
  link(A, "hostchs", B, "hostchsb");
  ok(inNetns(A, "ip", ["addr", "add", "10.240.0.2/16", "dev", "hostchs"]), "a addr");
  ok(inNetns(B, "ip", ["addr", "add", "10.240.0.3/16", "dev", "hostchsb"]), "b addr");
  ok(inNetns(A, "ip", ["route", "add", "default", "via", "10.240.0.3"]), "a default");
  ok(inNetns(B, "ip", ["addr", "add", `${OUTSIDE}/32`, "dev", "lo"]), "outside addr");
  // B knows the pool is behind A (as GCE's routes do), so unmasqueraded replies come back.
  ok(inNetns(B, "ip", ["route", "add", "192.168.0.0/16", "via", "10.240.0.2"]), "pool route");
}

/** The source address a listener saw for a connection from the endpoint. */
function sourceSeen(address: string, port: number): string {
  const r = inNetns(EP, "bash", [
    "-c",
    `exec 3<>/dev/tcp/${address}/${port} && timeout 5 head -n 1 <&3`,
  ]);
  return r.status === 0 ? r.stdout.trim() : `failed: ${r.output.trim()}`;
}

describe("host SNAT, for real in namespaces", { skip }, () => {
  it("to another host the endpoint keeps its own address; to the outside it is masqueraded", async () => {
    const model = modelOf(devRaw());
    const host = hostOf(model, "host-1");
    const root = mkdtempSync(join(tmpdir(), "chs-root-"));
    let server: ChildProcess | undefined;
    try {
      await withNetns([EP, A, B], async () => {
        topology();
        const script = join(root, "host.sh");
        writeFileSync(script, renderHostScript(model, host), { mode: 0o755 });
        ok(
          inNetns(A, "bash", [script, "apply"], { env: { ...process.env, CALICO_ROOT: root } }),
          "apply",
        );
        server = spawn(
          "ip",
          [
            "netns",
            "exec",
            B,
            process.execPath,
            "-e",
            SERVER,
            `10.240.0.3:${PORTS.felix}`,
            `${OUTSIDE}:80`,
          ],
          { stdio: ["ignore", "pipe", "inherit"] },
        );
        await new Promise<void>((resolve, reject) => {
          let seen = "";
          server!.stdout!.setEncoding("utf8").on("data", (t: string) => {
            seen += t;
            if ((seen.match(/listening/g) ?? []).length === 2) resolve();
          });
          server!.once("exit", () => reject(new Error("the listener exited")));
        });
        const nat = ok(
          inNetns(A, "iptables-legacy", ["-t", "nat", "-S", SNAT_CHAIN]),
          "chain",
        ).stdout;
        assert.equal(
          sourceSeen("10.240.0.3", PORTS.felix),
          "192.168.5.5",
          `another host's Felix port sees the endpoint's own address, not the host's:\n${nat}`,
        );
        assert.equal(sourceSeen(OUTSIDE, 80), "10.240.0.2", "the outside sees the host's address");
      });
    } finally {
      server?.kill("SIGKILL");
      rmSync(root, { recursive: true, force: true });
    }
  });
});
