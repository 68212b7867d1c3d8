/**
 * The host preparation and endpoint scripts run for real, as root, in network namespaces
 * this test creates (names `cdr-*`, deleted in `finally`): apply/add twice gives the same
 * state (the endpoint's host side included: host route, ARP entry, proxy ARP), remove
 * leaves nothing behind. Skipped (with the reason) where namespaces cannot
 * be made.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../components/config.js";
import {
  buildModel,
  syntheticEndpointId,
  tapName,
  type ClusterModel,
} from "../components/model.js";
import { devRaw, endpointOf, hostOf, modelOf } from "./helpers/stacks.js";
import { endpointLockFile } from "../components/render/endpoint-script.js";
import {
  renderAgentScript,
  renderEndpointScript,
  renderHostScript,
} from "../components/render/index.js";
import {
  canUseNetns,
  hasCommand,
  inNetns,
  run,
  withNetns,
  type RunResult,
  expectOk as ok,
} from "./helpers/tools.js";

const skip =
  canUseNetns() ?? (hasCommand("iptables-save") ? undefined : "iptables is not installed");
const tag = String(process.pid % 100000);

const dev = modelOf(devRaw());
const devBgp = modelOf({ ...devRaw(), bgp: { enabled: true } });
const devBgpPool2 = buildModel(
  loadConfig({
    ...devRaw(),
    bgp: { enabled: true },
    endpointPool: "172.20.0.0/16",
    endpoints: [{ host: "host-1", ip: "172.20.1.1", group: "web" }],
    groups: {},
  }),
);

/** A script file in a scratch dir, removed with it. */
function scriptFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o755 });
  return path;
}

describe("host preparation script, for real in a namespace", { skip }, () => {
  const ns = `cdr-host-${tag}`;

  /** A GCE-like host: its address as a /32 and a default route via a gateway. */
  function makeHost() {
    ok(inNetns(ns, "ip", ["link", "add", "cdr0", "type", "veth", "peer", "name", "cdr1"]), "veth");
    ok(inNetns(ns, "ip", ["link", "set", "cdr0", "up"]), "up");
    ok(inNetns(ns, "ip", ["link", "set", "cdr1", "up"]), "up");
    ok(inNetns(ns, "ip", ["addr", "add", "10.240.0.2/32", "dev", "cdr0"]), "addr");
    ok(inNetns(ns, "ip", ["route", "add", "10.240.0.1", "dev", "cdr0"]), "gw route");
    ok(
      inNetns(ns, "ip", ["route", "add", "default", "via", "10.240.0.1", "dev", "cdr0"]),
      "default",
    );
  }

  function state(root: string): string {
    // The SNAT chain sits in the legacy tables, beside Felix's (libiptc) chains.
    const nat = ok(inNetns(ns, "iptables-legacy-save", ["-t", "nat"]), "iptables-legacy-save")
      .stdout.split("\n")
      .filter((l) => !l.startsWith("#"))
      .map((l) => l.replace(/\[\d+:\d+\]/, ""))
      .join("\n");
    const routes = ok(inNetns(ns, "ip", ["-4", "route", "show"]), "ip route").stdout;
    const addrs = ok(inNetns(ns, "ip", ["-4", "-o", "addr", "show"]), "ip addr").stdout.replace(
      /\s+valid_lft.*$/gm,
      "",
    );
    const stateDir = run("ls", [join(root, "var/lib/calico")]).stdout;
    return `${nat}\n--\n${routes}--\n${addrs}--\n${stateDir}`;
  }

  function script(model: ClusterModel, root: string, action: string): RunResult {
    const file = scriptFile(
      root,
      `host-${action}.sh`,
      renderHostScript(model, hostOf(model, "host-1")),
    );
    return inNetns(ns, "bash", [file, action], { env: { ...process.env, CALICO_ROOT: root } });
  }

  async function withHost(fn: (root: string) => void): Promise<void> {
    const root = mkdtempSync(join(tmpdir(), "cdr-root-"));
    try {
      await withNetns([ns], () => {
        makeHost();
        fn(root);
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  it("GCE with BGP: apply twice gives the same state; remove restores the start", async () => {
    await withHost((root) => {
      const before = state(root);
      const first = ok(script(devBgp, root, "apply"), "apply");
      const once = state(root);
      assert.match(
        first.stdout,
        /^\[calico-host\] added peer address 10\.240\.0\.2 peer 10\.240\.0\.1 on cdr0$/m,
      );
      assert.match(once, /^-A POSTROUTING -j CALICO-SNAT$/m);
      assert.match(
        once,
        /^-A CALICO-SNAT -s 192\.168\.0\.0\/16 ! -d 192\.168\.0\.0\/16 .*-j MASQUERADE$/m,
      );
      // The hosts' subnet and the metadata server first: never masqueraded.
      assert.deepEqual(
        once
          .split("\n")
          .filter((l) => l.startsWith("-A CALICO-SNAT"))
          .map((l) => l.replace(/ -m comment.*? -j/, " -j")),
        [
          "-A CALICO-SNAT -s 192.168.0.0/16 -d 10.240.0.0/16 -j RETURN",
          "-A CALICO-SNAT -s 192.168.0.0/16 -d 169.254.169.254/32 -j RETURN",
          "-A CALICO-SNAT -s 192.168.0.0/16 ! -d 192.168.0.0/16 -j MASQUERADE",
        ],
      );
      assert.match(once, /^unreachable 192\.168\.0\.0\/16/m);
      assert.match(first.stdout, /iptables for the SNAT chain: iptables-legacy/);
      const nft = inNetns(ns, "iptables-nft-save", ["-t", "nat"]).stdout;
      assert.doesNotMatch(nft, /CALICO-SNAT/, "nothing of ours in the nf_tables backend");
      assert.match(once, /inet 10\.240\.0\.2 peer 10\.240\.0\.1\/32/);
      const second = ok(script(devBgp, root, "apply"), "second apply");
      assert.equal(state(root), once, "a second apply changes nothing");
      assert.doesNotMatch(second.stdout, /\] (added|created|wrote|SNAT:)/);
      assert.match(second.stdout, /is in place/);
      for (const f of ["etc/modules-load.d/calico.conf", "etc/sysctl.d/calico.conf"]) {
        assert.ok(readFileSync(join(root, f), "utf8").length > 0, f);
      }
      assert.equal(
        readFileSync(join(root, "etc/modules-load.d/calico.conf"), "utf8"),
        "ip_tables\niptable_filter\niptable_nat\nip6_tables\nxt_set\n",
      );
      ok(script(devBgp, root, "remove"), "remove");
      assert.equal(state(root), before, "remove undoes apply");
      const again = ok(script(devBgp, root, "remove"), "second remove");
      assert.match(again.stdout, /no nat chain CALICO-SNAT/);
      assert.equal(state(root), before);
    });
  });

  it("leaves an address it did not add, and follows a changed pool or BGP turned off", async () => {
    await withHost((root) => {
      // The peer address was there before: apply uses it, remove keeps it.
      ok(
        inNetns(ns, "ip", ["addr", "add", "10.240.0.2", "peer", "10.240.0.1", "dev", "cdr0"]),
        "pre",
      );
      ok(script(devBgp, root, "apply"), "apply");
      ok(script(devBgpPool2, root, "apply"), "apply with another pool");
      const s = state(root);
      assert.match(s, /^unreachable 172\.20\.0\.0\/16/m);
      assert.doesNotMatch(s, /192\.168\.0\.0/, "the old pool's route and rule are gone");
      // The exclusions (hosts' subnet, metadata server) and one MASQUERADE, for the new pool.
      assert.equal(s.match(/^-A CALICO-SNAT /gm)?.length, 3);
      assert.match(s, /^-A CALICO-SNAT -s 172\.20\.0\.0\/16 -d 10\.240\.0\.0\/16 .*-j RETURN$/m);
      ok(script(dev, root, "apply"), "apply with BGP off");
      const off = state(root);
      assert.doesNotMatch(off, /unreachable/);
      assert.match(off, /inet 10\.240\.0\.2 peer 10\.240\.0\.1\/32/, "not ours to remove");
      ok(script(dev, root, "remove"), "remove");
      assert.match(state(root), /inet 10\.240\.0\.2 peer 10\.240\.0\.1\/32/);
    });
  });

  it("installed as the host script, apply writes the boot unit and remove takes it away", async () => {
    await withHost((root) => {
      const installed = join(root, "opt/calico/bin/calico-host-prepare.sh");
      mkdirSync(dirname(installed), { recursive: true });
      writeFileSync(installed, renderHostScript(dev, hostOf(dev, "host-1")), { mode: 0o755 });
      const unit = join(root, "etc/systemd/system/calico-host-prepare.service");
      const run1 = ok(
        inNetns(ns, "bash", [installed, "apply"], { env: { ...process.env, CALICO_ROOT: root } }),
        "apply",
      );
      assert.match(run1.stdout, /wrote .*calico-host-prepare\.service/);
      assert.match(
        readFileSync(unit, "utf8"),
        /^ExecStart=\/opt\/calico\/bin\/calico-host-prepare\.sh apply$/m,
      );
      const run2 = ok(
        inNetns(ns, "bash", [installed, "apply"], { env: { ...process.env, CALICO_ROOT: root } }),
        "apply again",
      );
      assert.match(run2.stdout, /calico-host-prepare\.service is up to date/);
      // The host agent and its unit are installed too, and left alone when unchanged.
      const agent = join(root, "opt/calico/bin/calico-agent.sh");
      const agentUnitFile = join(root, "etc/systemd/system/calico-agent.service");
      assert.equal(readFileSync(agent, "utf8"), renderAgentScript(dev, hostOf(dev, "host-1")));
      assert.equal(statSync(agent).mode & 0o777, 0o755);
      assert.match(
        readFileSync(agentUnitFile, "utf8"),
        /^ExecStart=\/opt\/calico\/bin\/calico-agent\.sh run$/m,
      );
      assert.match(readFileSync(agentUnitFile, "utf8"), /^Restart=always$/m);
      assert.match(run1.stdout, /wrote .*calico-agent\.sh/);
      assert.match(run2.stdout, /calico-agent\.sh is up to date/);
      ok(
        inNetns(ns, "bash", [installed, "remove"], { env: { ...process.env, CALICO_ROOT: root } }),
        "remove",
      );
      assert.ok(!existsSync(unit));
      assert.ok(!existsSync(agent) && !existsSync(agentUnitFile), "remove takes the agent away");
    });
  });

  it("without BGP adds SNAT only; fails clearly with no default route on GCE with BGP", async () => {
    await withHost((root) => {
      ok(script(dev, root, "apply"), "apply");
      assert.doesNotMatch(state(root), /unreachable|peer/);
      ok(inNetns(ns, "ip", ["route", "del", "default"]), "del default");
      const r = script(devBgp, root, "apply");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no IPv4 default route/);
      const bad = script(dev, root, "frobnicate");
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /usage: .* apply\|remove/);
    });
  });
});

describe("endpoint script, for real in namespaces", { skip }, () => {
  const host = `cdr-eph-${tag}`;
  const ep = `cdr-epe-${tag}`;
  const ep2 = `cdr-epf-${tag}`;
  const e = dev.endpoints[0]!;
  const id = syntheticEndpointId(e.name);
  const tap = tapName(id);

  function state(): string {
    const h = ok(inNetns(host, "ip", ["-o", "link", "show"]), "host links").stdout;
    const hostRoutes = ok(inNetns(host, "ip", ["-4", "route", "show"]), "host routes").stdout;
    const neigh = ok(
      inNetns(host, "ip", ["-4", "neigh", "show", "nud", "permanent"]),
      "neigh",
    ).stdout;
    const sysctls = inNetns(host, "sh", [
      "-c",
      `cat /proc/sys/net/ipv4/conf/${tap}/proxy_arp /proc/sys/net/ipv4/conf/${tap}/route_localnet /proc/sys/net/ipv4/neigh/${tap}/proxy_delay 2>/dev/null || echo no tap`,
    ]).stdout;
    const links = ok(inNetns(ep, "ip", ["-o", "link", "show"]), "ep links").stdout;
    const addrs = ok(inNetns(ep, "ip", ["-4", "-o", "addr", "show"]), "ep addrs").stdout;
    const routes = ok(inNetns(ep, "ip", ["-4", "route", "show"]), "ep routes").stdout;
    return [h, hostRoutes, neigh, sysctls, links, addrs, routes]
      .join("--\n")
      .replace(/\s+valid_lft.*$/gm, "");
  }

  /** Waits (up to 3 s) until a link's operational state is UP. */
  function untilStateUp(ns: string, link: string): RunResult {
    const poll = `for _ in $(seq 30); do ip -o link show dev "$1" | grep -q 'state UP' && exit 0; sleep 0.1; done; ip -o link show dev "$1"; exit 1`;
    return inNetns(ns, "sh", ["-c", poll, "sh", link]);
  }

  async function withScript(fn: (sh: (...args: string[]) => RunResult) => void): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "cdr-ep-"));
    try {
      const file = scriptFile(dir, `endpoint-${e.name}.sh`, renderEndpointScript(e, id));
      await withNetns([host, ep, ep2], () =>
        fn((...args) => inNetns(host, "bash", [file, ...args])),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(endpointLockFile(e.name), { force: true });
    }
  }

  it("add wires eth0 and the tap; a second add changes nothing; remove leaves nothing", async () => {
    await withScript((sh) => {
      ok(inNetns(host, "ip", ["link", "set", "lo", "up"]), "host lo up");
      const before = state();
      ok(sh("add", "--netns", ep), "add");
      // Up with carrier at once (forwarding needs no more); the operational state follows
      // within a second (the kernel reports carrier changes in batches).
      const flags = ok(inNetns(host, "ip", ["-o", "link", "show", "dev", tap]), "tap").stdout;
      assert.match(flags, /<[^>]*\bUP,LOWER_UP\b/);
      ok(untilStateUp(host, tap), `${tap} operationally up`);
      ok(untilStateUp(ep, "eth0"), "eth0 operationally up");
      const once = state();
      const tapLine = once.split("\n").find((l) => l.includes(`${tap}@`));
      assert.ok(tapLine, `no ${tap} on the host:\n${once}`);
      assert.match(tapLine, /state UP/);
      const tapIndex = tapLine.split(":")[0];
      assert.match(once, new RegExp(`eth0@if${tapIndex}: .*state UP.*link/ether ${e.mac} `));
      assert.match(once, /eth0\s+inet 192\.168\.1\.1\/32 /);
      assert.match(once, /^default dev eth0 scope link/m);
      // The host side, as Felix programs it: host route, static ARP entry, proxy ARP and
      // route_localnet on the tap.
      assert.match(once, new RegExp(`^192\\.168\\.1\\.1 dev ${tap} scope link`, "m"));
      assert.match(
        once,
        new RegExp(`^192\\.168\\.1\\.1 dev ${tap} lladdr ${e.mac} PERMANENT`, "m"),
      );
      assert.match(once, /^1\n1\n0\n--/m, "proxy_arp and route_localnet 1, proxy_delay 0");
      const second = ok(sh("add", "--netns", ep), "second add");
      assert.match(second.stdout, /is in place/);
      assert.doesNotMatch(second.stdout, /host route|ARP entry|proxy_arp on/);
      assert.equal(state(), once, "a second add changes nothing");

      // A host route Felix put there the same way, or one that points elsewhere, is
      // replaced in place (the same route, so Felix and the script agree).
      ok(inNetns(host, "ip", ["route", "replace", "192.168.1.1/32", "dev", "lo"]), "stray route");
      assert.match(
        ok(sh("add", "--netns", ep), "add again").stdout,
        /host route 192\.168\.1\.1 dev/,
      );
      assert.equal(state(), once);

      // The endpoint reaches the host through the host side the script made.
      ok(inNetns(host, "ip", ["addr", "add", "10.99.0.1/32", "dev", "lo"]), "host addr");
      if (hasCommand("ping")) {
        ok(
          inNetns(ep, "ping", ["-c", "1", "-W", "2", "10.99.0.1"]),
          "ping the host from the endpoint",
        );
      }
      ok(inNetns(host, "ip", ["addr", "del", "10.99.0.1/32", "dev", "lo"]), "host addr del");

      ok(sh("remove", "--netns", ep), "remove");
      // add brings the namespace's loopback up (Docker does too) and remove leaves it.
      const noLo = (text: string) =>
        text
          .split("\n")
          .filter((l) => !/^1: lo\b/.test(l))
          .join("\n");
      assert.equal(noLo(state()), noLo(before));
      assert.doesNotMatch(state(), new RegExp(`${tap}|eth0|192\\.168\\.1\\.1`));
      const again = ok(sh("remove", "--netns", ep), "second remove");
      assert.match(again.stdout, /nothing to delete/);
    });
  });

  it("re-wires when the tap's other side is elsewhere (a restarted container)", async () => {
    await withScript((sh) => {
      ok(sh("add", "--netns", ep), "add");
      const r = ok(sh("add", "--netns", ep2), "add into another namespace");
      assert.match(r.stdout, /deleted stale/);
      assert.match(
        ok(inNetns(ep2, "ip", ["-4", "-o", "addr"]), "addrs").stdout,
        /192\.168\.1\.1\/32/,
      );
      assert.doesNotMatch(ok(inNetns(ep, "ip", ["-o", "link"]), "links").stdout, /eth0/);
      // The old tap took its host route and ARP entry with it; the re-wire restores them.
      assert.match(r.stdout, /host route 192\.168\.1\.1 dev/);
      assert.match(
        ok(inNetns(host, "ip", ["-4", "route", "show", "exact", "192.168.1.1/32"]), "route").stdout,
        new RegExp(`^192\\.168\\.1\\.1 dev ${tap} `),
      );
      ok(sh("remove", "--netns", ep2), "remove");
    });
  });

  it("rejects a bad --netns, a missing namespace and a foreign eth0", async () => {
    await withScript((sh) => {
      for (const bad of ["a;b", "../x", "-x", "$(id)", "x".repeat(64)]) {
        const r = sh("add", "--netns", bad);
        assert.equal(r.status, 1, `${bad}: ${r.output}`);
        assert.match(r.stderr, /is not a namespace name/);
      }
      const missing = sh("add", "--netns", "cdr-none-here");
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /no network namespace named 'cdr-none-here'/);
      ok(
        inNetns(ep, "ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "other"]),
        "eth0",
      );
      const foreign = sh("add", "--netns", ep);
      assert.equal(foreign.status, 1);
      assert.match(foreign.stderr, /already has an eth0 that is not paired/);
      assert.doesNotMatch(ok(inNetns(host, "ip", ["-o", "link"]), "links").stdout, new RegExp(tap));
      assert.equal(sh("bogus").status, 2);
    });
  });
});

describe("endpoint script, docker mode (a stand-in docker on PATH)", { skip }, () => {
  const host = `cdr-dkh-${tag}`;
  const ep = `cdr-dke-${tag}`;
  const name = `cdr-dk-${tag}`;
  const model = buildModel(
    loadConfig({
      ...devRaw(),
      endpoints: [{ name, host: "host-2", ip: "192.168.1.3", group: "web" }],
      groups: {},
    }),
  );
  const id = syntheticEndpointId(name);
  const link = `/var/run/netns/calico-${name}`;

  /** A `docker` that answers `inspect -f '{{.State.Pid}} {{.Id}}' <name>` from files. */
  function fakeDocker(dir: string, pid: string, containerId: string): void {
    writeFileSync(
      join(dir, "docker"),
      `#!/bin/sh\n[ "$1" = inspect ] && [ "$4" = ${JSON.stringify(name)} ] || { echo "Error: No such object: $4" >&2; exit 1; }\necho "${pid} ${containerId}"\n`,
      { mode: 0o755 },
    );
  }

  it("finds the namespace from docker's pid, links it, wires it; remove unlinks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cdr-dk-"));
    const file = scriptFile(dir, "endpoint.sh", renderEndpointScript(endpointOf(model, name), id));
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` };
    await withNetns([host, ep], async () => {
      // A process in the endpoint namespace stands in for the container.
      const holder = spawn("ip", ["netns", "exec", ep, "sleep", "60"], { stdio: "ignore" });
      try {
        await new Promise((r) => setTimeout(r, 200));
        const pid = String(holder.pid);
        fakeDocker(dir, pid, id);
        const sh = (...args: string[]) => inNetns(host, "bash", [file, ...args], { env });
        const first = ok(sh("add"), "add");
        assert.match(first.stdout, new RegExp(`linked ${link} .*\\(pid ${pid}\\)`));
        assert.equal(readlinkSync(link), `/proc/${pid}/ns/net`);
        assert.match(
          ok(inNetns(ep, "ip", ["-4", "-o", "addr"]), "addrs").stdout,
          /192\.168\.1\.3\/32/,
        );
        const second = ok(sh("add"), "second add");
        assert.doesNotMatch(second.stdout, /linked|created/);

        fakeDocker(dir, pid, "e".repeat(64));
        const wrongId = sh("add");
        assert.equal(wrongId.status, 1);
        assert.match(wrongId.stderr, /has id e{64}, but this script is for/);
        fakeDocker(dir, "0", id);
        const stopped = sh("add");
        assert.equal(stopped.status, 1);
        assert.match(stopped.stderr, /is not running/);

        ok(sh("remove"), "remove");
        assert.ok(!existsSync(link) && !lstatExists(link), "namespace link removed");
        assert.doesNotMatch(ok(inNetns(ep, "ip", ["-o", "link"]), "links").stdout, /eth0/);
        ok(sh("remove"), "second remove");
      } finally {
        holder.kill("SIGKILL");
        rmSync(link, { force: true });
        rmSync(endpointLockFile(name), { force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
