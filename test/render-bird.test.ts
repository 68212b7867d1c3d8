/**
 * Rendered bird.conf files driving real BIRD 1.x processes in network namespaces this test
 * creates (`cdr-*`; processes and namespaces removed in `finally`): sessions come up, the
 * endpoint /32s reach every host's kernel, the pool's unreachable guard route is never
 * exported, reflected routes keep their next hop, and on a GCE-like /32 host the host
 * script's peer address is what lets BIRD install the routes.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { loadConfig } from "../components/config.js";
import {
  buildModel,
  syntheticEndpointId,
  tapName,
  type ClusterModel,
} from "../components/model.js";
import { devRaw, modelOf } from "./helpers/stacks.js";
import {
  renderBirdConf,
  renderEndpointScript,
  renderHostScript,
} from "../components/render/index.js";
import { endpointLockFile } from "../components/render/endpoint-script.js";
import {
  BIRD_BIN,
  canUseNetns,
  hasCommand,
  inNetns,
  run,
  withNetns,
  type RunResult,
  expectOk as ok,
} from "./helpers/tools.js";

const skip =
  canUseNetns() ??
  (existsSync(BIRD_BIN) && hasCommand("birdc")
    ? undefined
    : `BIRD is not installed (${BIRD_BIN})`) ??
  (hasCommand("ping") ? undefined : "ping is not installed (iputils-ping)");
const tag = String(process.pid % 10000);

/** BIRD processes in namespaces, stopped by `stop()` whatever happened. */
class Birds {
  private readonly procs: { proc: ChildProcess; log: string[] }[] = [];
  constructor(private readonly dir: string) {}

  start(ns: string, conf: string): string {
    const file = join(this.dir, `${ns}.conf`);
    const ctl = join(this.dir, `${ns}.ctl`);
    writeFileSync(file, conf);
    const proc = spawn("ip", ["netns", "exec", ns, BIRD_BIN, "-f", "-c", file, "-s", ctl], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const entry = { proc, log: [] as string[] };
    proc.stderr?.on("data", (d: Buffer) => entry.log.push(d.toString()));
    this.procs.push(entry);
    return ctl;
  }

  logs(): string {
    return this.procs.map((p) => p.log.join("").split("\n").slice(-15).join("\n")).join("\n---\n");
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        ({ proc }) =>
          new Promise<void>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
            proc.once("exit", () => resolve());
            proc.kill("SIGTERM");
            setTimeout(() => proc.kill("SIGKILL"), 3000).unref();
          }),
      ),
    );
  }
}

async function waitFor(what: string, check: () => boolean, birds: Birds, timeoutMs = 30_000) {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs)
      assert.fail(`timed out waiting for ${what}\n${birds.logs()}`);
    await sleep(250);
  }
  return Date.now() - start;
}

/** One echo from a namespace; a retry allows for the first packet lost to neighbour set-up. */
function ping(ns: string, ip: string): void {
  let last: RunResult | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    last = inNetns(ns, "ping", ["-c", "1", "-W", "2", ip]);
    if (last.status === 0) return;
  }
  assert.fail(`ping ${ip} from ${ns} failed 3 times:\n${last?.output}`);
}

const kernelRoutes = (ns: string) =>
  ok(inNetns(ns, "ip", ["-4", "route", "show"]), "ip route").stdout;

/** Wire each endpoint into its own namespace with the rendered script; do Felix's part by hand. */
function wireEndpoints(
  model: ClusterModel,
  hostNs: (h: string) => string,
  epNs: (e: string) => string,
  dir: string,
) {
  for (const e of model.endpoints) {
    const id = syntheticEndpointId(e.name);
    const file = join(dir, `ep-${e.name}.sh`);
    writeFileSync(file, renderEndpointScript(e, id));
    ok(inNetns(hostNs(e.host), "bash", [file, "add", "--netns", epNs(e.name)]), `wire ${e.name}`);
    rmSync(endpointLockFile(e.name), { force: true });
    // The script's add restores the host side itself (route and proxy ARP, as Felix sets them).
    const tap = tapName(id);
    const routes = ok(
      inNetns(hostNs(e.host), "ip", ["-4", "route", "show", `${e.ip}/32`]),
      "host route",
    ).stdout;
    assert.match(
      routes,
      new RegExp(`dev ${tap}\\b`),
      `${e.name}: no host route ${e.ip} dev ${tap} after add`,
    );
  }
}

function existingStack(session: "direct" | "multihop", peering: "full-mesh" | "route-reflector") {
  return buildModel(
    loadConfig({
      platform: "existing",
      sshPrivateKey: { secret: true },
      ssh: { user: "ops" },
      hosts: [
        { name: "alpha", address: "10.0.0.11" },
        { name: "beta", address: "10.0.0.12" },
        { name: "gamma", address: "10.0.0.13" },
      ],
      endpoints: [
        { host: "alpha", ip: "192.168.1.1", group: "g" },
        { host: "beta", ip: "192.168.2.1", group: "g" },
        { host: "gamma", ip: "192.168.3.1", group: "g" },
      ],
      bgp: { session, peering },
    }),
  );
}

describe("rendered bird.conf with real BIRD", { skip }, () => {
  for (const [session, peering] of [
    ["direct", "full-mesh"],
    ["multihop", "route-reflector"],
  ] as const) {
    it(`${peering}, ${session}: endpoint routes reach every host, the guard route does not`, async (t) => {
      const model = existingStack(session, peering);
      const short = { alpha: "a", beta: "b", gamma: "c" } as Record<string, string>;
      const hostNs = (h: string) => `cdr-b${tag}${short[h]}`;
      const epNs = (name: string) => `cdr-b${tag}e${name.slice(-5, -2)}`;
      const fabric = `cdr-b${tag}f`;
      const names = [
        fabric,
        ...model.hosts.map((h) => hostNs(h.name)),
        ...model.endpoints.map((e) => epNs(e.name)),
      ];
      const dir = mkdtempSync(join(tmpdir(), "cdr-bird-"));
      const birds = new Birds(dir);
      try {
        await withNetns(names, async () => {
          const bridge = inNetns(fabric, "ip", ["link", "add", "br0", "type", "bridge"]);
          if (bridge.status !== 0) {
            t.skip(`no bridge devices here: ${bridge.output.trim()}`);
            return;
          }
          ok(inNetns(fabric, "ip", ["link", "set", "br0", "up"]), "bridge up");
          for (const h of model.hosts) {
            const ns = hostNs(h.name);
            ok(
              run("ip", [
                "-n",
                ns,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                `p-${h.name}`,
              ]),
              "veth",
            );
            ok(run("ip", ["-n", ns, "link", "set", `p-${h.name}`, "netns", fabric]), "move");
            ok(
              run("ip", ["-n", fabric, "link", "set", `p-${h.name}`, "master", "br0", "up"]),
              "port",
            );
            ok(
              run("ip", ["-n", ns, "addr", "add", `${h.internalAddress}/24`, "dev", "eth0"]),
              "addr",
            );
            ok(run("ip", ["-n", ns, "link", "set", "eth0", "up"]), "up");
            ok(run("ip", ["-n", ns, "link", "set", "lo", "up"]), "lo");
            ok(inNetns(ns, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]), "forward");
            // The GCE-style guard route: BIRD learns it but must not pass it on.
            ok(
              run("ip", ["-n", ns, "route", "add", "unreachable", model.config.endpointPool]),
              "guard",
            );
          }
          wireEndpoints(model, hostNs, epNs, dir);
          for (const h of model.hosts) birds.start(hostNs(h.name), renderBirdConf(model, h));

          const others = (h: string) => model.endpoints.filter((e) => e.host !== h);
          const ms = await waitFor(
            "every endpoint route on every host",
            () =>
              model.hosts.every((h) => {
                const routes = kernelRoutes(hostNs(h.name));
                return others(h.name).every((e) => routes.includes(`${e.ip} via `));
              }),
            birds,
          );
          for (const h of model.hosts) {
            const routes = kernelRoutes(hostNs(h.name));
            for (const e of others(h.name)) {
              const owner = model.hosts.find((x) => x.name === e.host)!;
              // Reflected routes keep the originating host as next hop (no detour).
              assert.match(
                routes,
                new RegExp(
                  `^${e.ip.replaceAll(".", "\\.")} via ${owner.internalAddress.replaceAll(".", "\\.")} dev eth0 proto bird`,
                  "m",
                ),
              );
            }
            assert.doesNotMatch(
              routes,
              /^192\.168\.0\.0\/16 .*proto bird/m,
              "the guard route stays home",
            );
            assert.match(routes, /^unreachable 192\.168\.0\.0\/16/m);
          }
          for (const from of model.endpoints) {
            for (const to of model.endpoints.filter((x) => x.host !== from.host)) {
              ping(epNs(from.name), to.ip);
            }
          }
          assert.ok(ms < 30_000);
        });
      } finally {
        await birds.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("GCE-like /32 hosts: BIRD installs peer routes only once the host script added the peer address", async () => {
    const raw = {
      ...devRaw(),
      bgp: { enabled: true },
    };
    const model = modelOf(raw);
    const [h1, h2] = model.hosts as [ClusterModel["hosts"][0], ClusterModel["hosts"][0]];
    const gw = `cdr-g${tag}r`;
    const hostNs = (h: string) => `cdr-g${tag}${h.slice(-1)}`;
    const epNs = (name: string) => `cdr-g${tag}e${name.slice(-1)}`;
    const names = [
      gw,
      hostNs(h1.name),
      hostNs(h2.name),
      ...model.endpoints.map((e) => epNs(e.name)),
    ];
    const dir = mkdtempSync(join(tmpdir(), "cdr-gce-"));
    const birds = new Birds(dir);
    try {
      await withNetns(names, async () => {
        ok(inNetns(gw, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]), "router forwards");
        for (const h of [h1, h2]) {
          const ns = hostNs(h.name);
          const gateway = h.internalAddress.replace(/\.\d+$/, ".1");
          const port = `gw-${h.name.slice(-1)}`;
          ok(
            run("ip", ["-n", ns, "link", "add", "ens4", "type", "veth", "peer", "name", port]),
            "veth",
          );
          ok(run("ip", ["-n", ns, "link", "set", port, "netns", gw]), "move");
          ok(run("ip", ["-n", gw, "addr", "add", `${gateway}/32`, "dev", port]), "gw addr");
          ok(run("ip", ["-n", gw, "link", "set", port, "up"]), "gw up");
          ok(
            run("ip", ["-n", gw, "route", "add", `${h.internalAddress}/32`, "dev", port]),
            "gw route",
          );
          ok(run("ip", ["-n", ns, "link", "set", "ens4", "up"]), "up");
          ok(run("ip", ["-n", ns, "link", "set", "lo", "up"]), "lo");
          // As GCE's DHCP sets a host up: a /32 and a default route via the gateway.
          ok(
            run("ip", ["-n", ns, "addr", "add", `${h.internalAddress}/32`, "dev", "ens4"]),
            "addr",
          );
          ok(run("ip", ["-n", ns, "route", "add", gateway, "dev", "ens4"]), "gw link route");
          ok(
            run("ip", ["-n", ns, "route", "add", "default", "via", gateway, "dev", "ens4"]),
            "default",
          );
        }
        wireEndpoints(model, hostNs, epNs, dir);
        for (const h of [h1, h2]) birds.start(hostNs(h.name), renderBirdConf(model, h));
        const established = (h: string) =>
          run("birdc", ["-s", join(dir, `${hostNs(h)}.ctl`), "show", "protocols"]).stdout.includes(
            "Established",
          );
        await waitFor("the BGP session", () => established(h1.name) && established(h2.name), birds);
        await sleep(3000); // two kernel scans: nothing may be installed without the peer address
        const early = run("birdc", [
          "-s",
          join(dir, `${hostNs(h1.name)}.ctl`),
          "show",
          "route",
          "protocol",
          "peer_host_2",
        ]).stdout;
        assert.match(early, /unreachable/, "BIRD cannot resolve the gateway yet");
        assert.doesNotMatch(
          kernelRoutes(hostNs(h1.name)),
          /proto bird/,
          "and installs no black hole",
        );

        for (const h of [h1, h2]) {
          const root = join(dir, `root-${h.name}`);
          const file = join(dir, `prepare-${h.name}.sh`);
          writeFileSync(file, renderHostScript(model, h));
          ok(
            inNetns(hostNs(h.name), "bash", [file, "apply"], {
              env: { ...process.env, CALICO_ROOT: root },
            }),
            "apply",
          );
        }
        const e3 = model.endpoints.find((e) => e.host === h2.name)!;
        await waitFor(
          "the BGP route through the gateway",
          () =>
            kernelRoutes(hostNs(h1.name)).includes(`${e3.ip} via 10.240.0.1 dev ens4 proto bird`),
          birds,
        );
        const routes = kernelRoutes(hostNs(h1.name));
        assert.match(routes, /^unreachable 192\.168\.0\.0\/16/m);
        assert.doesNotMatch(routes, /^192\.168\.0\.0\/16 .*proto bird/m);
      });
    } finally {
      await birds.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
