/**
 * The renderers on the dev stack (Pulumi.dev.yaml) and on two fixed variants (BGP on the
 * dev stack; an `existing` stack with route reflectors and direct sessions): a snapshot per
 * file next to checks of what the text means.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse as parseIni } from "ini";
import { loadConfig } from "../components/config.js";
import {
  buildModel,
  syntheticEndpointId,
  tapName,
  type ClusterModel,
} from "../components/model.js";
import { devRaw, endpointOf, hostOf, modelOf } from "./helpers/stacks.js";
import {
  BIRD_BGP_TEMPLATE,
  BIRD_FILTERS,
  STAND_IN_SSH_KEY,
  RenderError,
  imageBuildScript,
  readinessScript,
  renderAclManagerCfg,
  renderAgentScript,
  renderAll,
  renderBirdConf,
  renderEndpointData,
  renderEndpointScript,
  renderFelixCfg,
  renderFelixTxt,
  renderGroupsTxt,
  renderHostScript,
  renderIgnition,
} from "../components/render/index.js";
import { bgpBlocks, bgpTemplates } from "./helpers/bird.js";
import { assertSnapshot } from "./helpers/snapshot.js";
import { birdParse, shellcheck } from "./helpers/tools.js";

const dev = modelOf(devRaw());
const devBgp = modelOf({ ...devRaw(), bgp: { enabled: true } });

/** Four existing hosts, two route reflectors, direct sessions, no explicit rules. */
const rrRaw = {
  platform: "existing",
  sshPrivateKey: { secret: true },
  ssh: { user: "ops" },
  controller: "beta",
  hosts: [
    { name: "alpha", address: "10.0.0.11" },
    { name: "beta", address: "10.0.0.12" },
    { name: "gamma", address: "10.0.0.13" },
    { name: "delta", address: "gw.example.net", internalAddress: "10.0.0.14" },
  ],
  endpointPool: "172.20.0.0/16",
  endpoints: [
    { host: "alpha", ip: "172.20.1.1", group: "a" },
    { host: "gamma", ip: "172.20.3.1", group: "a", name: "api" },
    { host: "delta", ip: "172.20.4.1", group: "b" },
  ],
  bgp: {
    peering: "route-reflector",
    routeReflectors: ["alpha", "beta"],
    session: "direct",
    asNumber: 65001,
    connectDelaySeconds: 3,
  },
};
const rr = modelOf(rrRaw);

const ID = (name: string) => syntheticEndpointId(name);

describe("plugin data", () => {
  it("felix.txt has a [felix <name>] section per host with ip and host", () => {
    const text = renderFelixTxt(dev);
    assertSnapshot("render/dev/felix.txt", text);
    const parsed = parseIni(text);
    assert.deepEqual(Object.keys(parsed), ["felix host-1", "felix host-2"]);
    for (const h of dev.hosts) {
      assert.deepEqual({ ...parsed[`felix ${h.name}`] }, { ip: h.internalAddress, host: h.name });
    }
  });

  it("an endpoint file has id, ip, mac, host and group", () => {
    for (const e of dev.endpoints) {
      const text = renderEndpointData(e, ID(e.name));
      assertSnapshot(`render/dev/plugin-data/${e.dataFile}`, text);
      assert.deepEqual(
        { ...parseIni(text)[`endpoint ${e.name}`] },
        { id: ID(e.name), ip: e.ip, mac: e.mac, host: e.host, group: e.group },
      );
    }
    assert.match(renderEndpointData(endpointOf(dev, "192_168_1_1"), ID("x")), /^id=[0-9a-f]{64}$/m);
  });

  it("groups.txt carries the explicit rules as JSON wire rules, all four keys", () => {
    const text = renderGroupsTxt(dev);
    assert.ok(text !== undefined);
    assertSnapshot("render/dev/plugin-data/groups.txt", text);
    const parsed = parseIni(text);
    assert.deepEqual(Object.keys(parsed), ["group db"]); // web has no rules: prototype policy
    const db = parsed["group db"] as Record<string, string>;
    const inbound = JSON.parse(db.inbound!) as unknown[];
    assert.deepEqual(inbound, [
      { group: "db", cidr: null, protocol: null, port: null },
      { group: "web", cidr: null, protocol: "tcp", port: 5432 },
    ]);
    assert.deepEqual(JSON.parse(db.outbound!), [
      { group: "db", cidr: null, protocol: null, port: null },
      { group: null, cidr: "0.0.0.0/0", protocol: null, port: null },
    ]);
    assert.equal(renderGroupsTxt(rr), undefined);
  });

  it("rejects an id that is not a container id", () => {
    assert.throws(
      () => renderEndpointData(endpointOf(dev, "192_168_1_1"), "abc;rm -rf /"),
      (e: unknown) =>
        e instanceof RenderError && /64 lowercase hex.*"abc;rm -rf \/"/.test(e.message),
    );
    assert.throws(
      () => renderEndpointData(endpointOf(dev, "192_168_1_1"), ID("a").toUpperCase()),
      RenderError,
    );
  });
});

describe("bird.conf", () => {
  it("dev stack with BGP on: router id, one session, pool filters; BIRD accepts it", () => {
    for (const h of devBgp.hosts) {
      const conf = renderBirdConf(devBgp, h);
      assertSnapshot(`render/dev-bgp/${h.name}.bird.conf`, conf);
      assert.match(
        conf,
        new RegExp(`^router id ${h.internalAddress.replaceAll(".", "\\.")};$`, "m"),
      );
      assert.match(conf, /^log stderr all;$/m);
      const blocks = bgpBlocks(conf);
      assert.equal(blocks.length, 1);
      const peer = devBgp.hosts.find((o) => o.name !== h.name)!;
      assert.match(blocks[0]!.body, new RegExp(`neighbor ${peer.internalAddress} as 64511;`));
      assert.match(blocks[0]!.body, new RegExp(`source address ${h.internalAddress};`));
      assert.match(blocks[0]!.body, /^\s+multihop;$/m);
      assert.match(blocks[0]!.body, /next hop self;/);
      assert.match(blocks[0]!.body, /connect delay time 1;/);
      assert.doesNotMatch(conf, new RegExp(`neighbor ${h.internalAddress} `));
      assert.match(conf, /net ~ \[ 192\.168\.0\.0\/16\+ \]/);
      for (const f of Object.values(BIRD_FILTERS))
        assert.match(conf, new RegExp(`^filter ${f} \\{`, "m"));
      const parsed = birdParse(conf);
      assert.ok(parsed.ok, parsed.output);
    }
  });

  it("route reflectors: clients peer with reflectors only, reflectors with all", () => {
    for (const h of rr.hosts) {
      const conf = renderBirdConf(rr, h);
      assertSnapshot(`render/rr-direct/${h.name}.bird.conf`, conf);
      const parsed = birdParse(conf);
      assert.ok(parsed.ok, `${h.name}: ${parsed.output}`);
      const blocks = bgpBlocks(conf);
      assert.equal(blocks.length, h.peers.length);
      assert.ok(blocks.every((b) => /^\s+direct;$/m.test(b.body)));
      assert.ok(
        blocks.every((b) => /local as 65001;/.test(b.body) && /connect delay time 3;/.test(b.body)),
      );
      if (h.isRouteReflector) {
        assert.equal(blocks.length, rr.hosts.length - 1);
        const clients = blocks.filter((b) => /rr client;/.test(b.body));
        assert.deepEqual(
          clients.map((b) => b.name).sort(),
          ["peer_delta", "peer_gamma"].filter((p) => p !== `peer_${h.name}`).sort(),
        );
        assert.ok(clients.every((b) => b.body.includes(`rr cluster id ${h.internalAddress};`)));
        assert.ok(
          blocks.every((b) => !/next hop self/.test(b.body)),
          "a reflector keeps next hops",
        );
      } else {
        assert.deepEqual(blocks.map((b) => b.name).sort(), ["peer_alpha", "peer_beta"]);
        assert.ok(blocks.every((b) => !/rr client/.test(b.body) && /next hop self;/.test(b.body)));
      }
    }
  });

  it("one `template bgp` holds the shared settings; every peer is a short block `from` it", () => {
    const mesh = (n: number) =>
      buildModel(
        loadConfig({
          platform: "existing",
          sshPrivateKey: { secret: true },
          ssh: { user: "ops" },
          hosts: Array.from({ length: n }, (_, i) => ({
            name: `h${i + 1}`,
            address: `10.0.0.${i + 11}`,
          })),
          endpoints: [],
          bgp: { peering: "full-mesh" },
        }),
      );
    const lines = (conf: string) => conf.split("\n").length;
    const big = mesh(20);
    const small = mesh(2);
    for (const [model, h] of [
      [big, big.hosts[0]!],
      [small, small.hosts[1]!],
      ...rr.hosts.map((x) => [rr, x] as const),
      ...devBgp.hosts.map((x) => [devBgp, x] as const),
    ] as const) {
      const conf = renderBirdConf(model, h);
      const templates = bgpTemplates(conf);
      assert.deepEqual([...templates.keys()], [BIRD_BGP_TEMPLATE], `${h.name}: one template`);
      const shared = templates.get(BIRD_BGP_TEMPLATE)!;
      assert.match(shared, new RegExp(`source address ${h.internalAddress};`));
      assert.match(shared, new RegExp(`import filter ${BIRD_FILTERS.import};`));
      const blocks = bgpBlocks(conf);
      assert.equal(blocks.length, h.peers.length);
      for (const b of blocks) {
        assert.equal(b.from, BIRD_BGP_TEMPLATE, `${b.name} is from the template`);
        // Only what differs per peer: description, neighbour, route-reflector client lines.
        for (const line of b.own.split("\n").filter((l) => l !== "")) {
          assert.match(line, /^\s+(description|neighbor|rr client|rr cluster id)\b/, line);
        }
      }
      assert.ok(birdParse(conf).ok, `${h.name}: BIRD accepts it`);
    }
    // Lines each further peer adds to a full-mesh bird.conf: 2 -> 20 hosts is 1 -> 19 peers.
    const confBig = renderBirdConf(big, big.hosts[0]!);
    const confSmall = renderBirdConf(small, small.hosts[0]!);
    const perPeer = (lines(confBig) - lines(confSmall)) / 18;
    // Written out without a template, each peer repeats the template's settings: what the
    // file used to be (18 lines per peer).
    const expanded = bgpBlocks(confBig).map((b) => b.body.split("\n").length + 3);
    assert.ok(
      expanded.every((n) => n === 18),
      `expanded blocks: ${expanded.join(",")}`,
    );
    assert.equal(perPeer, 6, "comment, open, description, neighbour, close, blank");
    assert.ok(perPeer < expanded[0]! / 2);
  });

  it("a single host has no BGP block and still parses", () => {
    const one = buildModel(
      loadConfig({
        ...rrRaw,
        controller: "alpha",
        hosts: [rrRaw.hosts[0]],
        endpoints: [],
        bgp: {},
      }),
    );
    const conf = renderBirdConf(one, hostOf(one, "alpha"));
    assert.equal(bgpBlocks(conf).length, 0);
    assert.ok(birdParse(conf).ok);
  });
});

describe("felix.cfg and acl_manager.cfg", () => {
  it("felix.cfg has the three sections and the keys Felix 0.10 reads", () => {
    for (const h of dev.hosts) {
      const text = renderFelixCfg(dev, h);
      assertSnapshot(`render/dev/${h.name}.felix.cfg`, text);
      const cfg = parseIni(text) as Record<string, Record<string, string>>;
      assert.deepEqual(Object.keys(cfg), ["global", "log", "connection"]);
      assert.deepEqual(
        { ...cfg.global },
        {
          PluginAddress: dev.controller.internalAddress,
          ACLAddress: dev.controller.internalAddress,
          FelixHostname: h.name,
          LocalAddress: h.internalAddress,
          ResyncIntervalSecs: "1800",
          MetadataAddr: "None",
          MetadataPort: "9697",
          EndpointRetryTimeMillis: "500",
        },
      );
      assert.deepEqual(
        { ...cfg.log },
        {
          LogFilePath: "/var/log/calico/felix.log",
          LogSeverityFile: "INFO",
          LogSeveritySys: "INFO",
          LogSeverityScreen: "INFO",
        },
      );
      assert.deepEqual(
        { ...cfg.connection },
        { ConnectionTimeoutMillis: "40000", ConnectionKeepaliveIntervalMillis: "5000" },
      );
    }
  });

  it("follows felix.resyncIntervalSecs and felix.logSeverity", () => {
    const m = buildModel(
      loadConfig({ ...rrRaw, felix: { resyncIntervalSecs: 5, logSeverity: "DEBUG" } }),
    );
    const cfg = parseIni(renderFelixCfg(m, hostOf(m, "gamma"))) as Record<
      string,
      Record<string, string>
    >;
    assert.equal(cfg.global!.ResyncIntervalSecs, "5");
    assert.equal(cfg.global!.PluginAddress, "10.0.0.12"); // controller beta
    assert.equal(cfg.log!.LogSeverityFile, "DEBUG");
    const acl = parseIni(renderAclManagerCfg(m)) as Record<string, Record<string, string>>;
    assert.equal(acl.log!.LogSeverityScreen, "DEBUG");
  });

  it("acl_manager.cfg points at the controller", () => {
    const text = renderAclManagerCfg(dev);
    assertSnapshot("render/dev/acl_manager.cfg", text);
    const cfg = parseIni(text) as Record<string, Record<string, string>>;
    assert.deepEqual(
      { ...cfg.global },
      { PluginAddress: "10.240.0.2", LocalAddress: "10.240.0.2" },
    );
    assert.equal(cfg.log!.LogFilePath, "/var/log/calico/aclmanager.log");
  });
});

describe("scripts", () => {
  it("host scripts: values quoted at the top, shellcheck clean", () => {
    const scripts = [
      ...dev.hosts.map((h) => renderHostScript(dev, h)),
      ...devBgp.hosts.map((h) => renderHostScript(devBgp, h)),
      ...rr.hosts.map((h) => renderHostScript(rr, h)),
    ];
    assertSnapshot("render/dev/host-1.calico-host-prepare.sh", scripts[0]!);
    assert.match(scripts[0]!, /^set -euo pipefail$/m);
    assert.match(scripts[0]!, /^INTERNAL_ADDRESS='10\.240\.0\.2'$/m);
    assert.match(scripts[0]!, /^ENDPOINT_POOL='192\.168\.0\.0\/16'$/m);
    assert.match(scripts[0]!, /^GCE_BGP='no'$/m);
    assert.match(renderHostScript(devBgp, hostOf(devBgp, "host-1")), /^GCE_BGP='yes'$/m);
    assert.match(renderHostScript(rr, hostOf(rr, "alpha")), /^GCE_BGP='no'$/m); // BGP, but not on GCE
    const sc = shellcheck(scripts);
    assert.ok(sc.ok, sc.output);
  });

  it("readiness gate and image build: names quoted, shellcheck clean", () => {
    // Run by `sh -c` over SSH: checked as POSIX sh.
    const root = { ...hostOf(rr, "alpha"), sshUser: "root" };
    const scripts = [
      ...dev.hosts.map((h) => readinessScript(h)),
      readinessScript(root),
      imageBuildScript("calico:felix", "Dockerfile"),
      imageBuildScript("registry.example.com/team/plugin:1.2", "images/plugin/Dockerfile"),
    ].map((s) => `#!/bin/sh\n${s}\n`);
    assert.match(scripts[0]!, /calico-docker: core@host-1 cannot run sudo/);
    assert.doesNotMatch(scripts[dev.hosts.length]!, /sudo/, "root needs no sudo check");
    assert.match(
      scripts.at(-1)!,
      /-t 'registry\.example\.com\/team\/plugin:1\.2' -f 'images\/plugin\/Dockerfile'/,
    );
    const sc = shellcheck(scripts);
    assert.ok(sc.ok, sc.output);
  });

  it("endpoint scripts: id, tap, IP and MAC quoted at the top, shellcheck clean", () => {
    const scripts = dev.endpoints.map((e) => renderEndpointScript(e, ID(e.name)));
    assertSnapshot("render/dev/host-1.endpoint-192_168_1_1.sh", scripts[0]!);
    const e = dev.endpoints[0]!;
    assert.match(scripts[0]!, new RegExp(`^ENDPOINT_ID='${ID(e.name)}'$`, "m"));
    assert.match(scripts[0]!, new RegExp(`^TAP='${tapName(ID(e.name))}'$`, "m"));
    assert.equal(tapName(ID(e.name)).length, 14);
    assert.match(scripts[0]!, /^IP='192\.168\.1\.1'$/m);
    assert.match(scripts[0]!, /^MAC='02:ca:c0:a8:01:01'$/m);
    assert.match(scripts[0]!, /^CONTAINER='192_168_1_1'$/m);
    // Re-wiring restores the tap's host side itself, as Felix programs it.
    assert.match(scripts[0]!, /^ {4}ip -4 route replace "\$IP\/32" dev "\$TAP"$/m);
    assert.match(scripts[0]!, /for key in proxy_arp route_localnet; do/);
    const sc = shellcheck([
      ...scripts,
      ...rr.endpoints.map((x) => renderEndpointScript(x, ID(x.name))),
    ]);
    assert.ok(sc.ok, sc.output);
  });

  it("host agent: its host baked in, selecting by label, shellcheck clean", () => {
    const scripts = [
      ...dev.hosts.map((h) => renderAgentScript(dev, h)),
      ...rr.hosts.map((h) => renderAgentScript(rr, h)),
    ];
    assertSnapshot("render/dev/host-1.calico-agent.sh", scripts[0]!);
    assert.match(scripts[0]!, /^HOST_NAME='host-1'$/m);
    assert.match(renderAgentScript(rr, hostOf(rr, "gamma")), /^HOST_NAME='gamma'$/m);
    assert.match(scripts[0]!, /^HOST_LABEL='calico-docker\.host'$/m);
    assert.match(scripts[0]!, /--filter "label=\$HOST_LABEL=\$HOST_NAME"/);
    assert.match(scripts[0]!, /^SCRIPT_DIR="\$\{CALICO_SCRIPT_DIR:-\$DEFAULT_SCRIPT_DIR\}"$/m);
    assert.match(scripts[0]!, /^ATTACHED=\(\)$/m);
    // Attached endpoints (attach: true) are known by name; their events carry no labels.
    const att = modelOf({
      ...devRaw(),
      endpoints: [
        { name: "legacy-app", host: "host-1", ip: "192.168.1.9", group: "web", attach: true },
        { name: "db-1", host: "host-1", ip: "192.168.1.10", group: "web", attach: true },
        { name: "other", host: "host-2", ip: "192.168.1.11", group: "web", attach: true },
      ],
      groups: {},
    });
    const withAttached = renderAgentScript(att, hostOf(att, "host-1"));
    assert.match(withAttached, /^ATTACHED=\('legacy-app' 'db-1'\)$/m);
    assert.match(withAttached, /--filter event=health_status --format "\$EVENT_FORMAT"/);
    assert.match(
      scripts[0]!,
      /--filter event=health_status --filter "label=\$HOST_LABEL=\$HOST_NAME" --format/,
    );
    assert.match(renderAgentScript(att, hostOf(att, "host-2")), /^ATTACHED=\('other'\)$/m);
    const sc = shellcheck([...scripts, withAttached]);
    assert.ok(sc.ok, sc.output);
  });

  it("refuses an endpoint id that could break the script", () => {
    assert.throws(
      () => renderEndpointScript(endpointOf(dev, "192_168_1_1"), `${"a".repeat(63)}'`),
      RenderError,
    );
  });
});

describe("ignition", () => {
  const key =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmSGmlkOaP0iyJqu2tN0XLFYJ7SrHHq3bH0tQ3lWw7o deploy";

  it("is Ignition 3.3.0 with the core user, docker, modules, sysctls, directories and reboots", () => {
    const text = renderIgnition(dev, key);
    assertSnapshot("render/dev/host-1.ignition.json", text);
    type File = { path: string; contents: { source: string } };
    const ign = JSON.parse(text) as {
      ignition: { version: string };
      passwd: { users: Record<string, unknown>[] };
      systemd: { units: { name: string; enabled: boolean; contents?: string }[] };
      storage: { files: (File & { mode: number })[]; directories: { path: string }[] };
    };
    assert.equal(ign.ignition.version, "3.3.0");
    // No `groups`: Ignition would run usermod --groups and drop core's wheel, sudo, ...
    assert.deepEqual(ign.passwd.users, [{ name: "core", sshAuthorizedKeys: [key] }]);
    // Nothing per host, nothing of the agent's: host preparation owns the agent.
    assert.deepEqual(ign.systemd.units, [{ name: "docker.service", enabled: true }]);
    assert.doesNotMatch(text, /calico-agent/);
    const content = (path: string) => {
      const f = ign.storage.files.find((x) => x.path === path);
      assert.ok(f, `no ${path}`);
      assert.ok(f.contents.source.startsWith("data:,"));
      return decodeURIComponent(f.contents.source.slice("data:,".length));
    };
    assert.equal(
      content("/etc/modules-load.d/calico.conf"),
      "ip_tables\niptable_filter\niptable_nat\nip6_tables\nxt_set\n",
    );
    assert.match(content("/etc/sysctl.d/calico.conf"), /^net\.ipv4\.ip_forward = 1$/m);
    const tmpfiles = content("/etc/tmpfiles.d/calico.conf");
    for (const d of ["/var/log/calico", "/var/run/netns", "/opt/plugin/data"]) {
      assert.match(tmpfiles, new RegExp(`^d ${d} 0755 root root -$`, "m"));
    }
    const dirs = ign.storage.directories.map((d) => d.path);
    assert.ok(dirs.includes("/var/log/calico") && dirs.includes("/opt/plugin/data"));
    // Updates never reboot a host by default: every host would reboot at once.
    assert.equal(content("/etc/flatcar/update.conf"), "REBOOT_STRATEGY=off\n");
  });

  it("renders gce.reboot: a strategy and a window; a window needs strategy reboot", () => {
    const windowed = modelOf({
      ...devRaw(),
      gce: {
        ...(devRaw().gce as object),
        reboot: { strategy: "reboot", window: { start: "Sun 04:00", length: "1h30m" } },
      },
    });
    const ign = JSON.parse(renderIgnition(windowed, key)) as {
      storage: { files: { path: string; contents: { source: string } }[] };
    };
    const f = ign.storage.files.find((x) => x.path === "/etc/flatcar/update.conf")!;
    assert.equal(
      decodeURIComponent(f.contents.source.slice("data:,".length)),
      'REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_WINDOW_START="Sun 04:00"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH="1h30m"\n',
    );
    const refused = (reboot: unknown) =>
      assert.throws(
        () => loadConfig({ ...devRaw(), gce: { ...(devRaw().gce as object), reboot } }),
        (e: Error) => /gce\.reboot/.test(e.message),
        JSON.stringify(reboot),
      );
    refused({ strategy: "off", window: { start: "04:00", length: "1h" } });
    refused({ strategy: "etcd-lock" });
    refused({ strategy: "reboot", window: { start: "Sun 4am", length: "1h" } });
    refused({ strategy: "reboot", window: { start: "04:00", length: "$(reboot)" } });
    refused({ strategy: "reboot", window: { start: "04:00", length: "" } });
  });

  it("is the same for every host, and takes the stand-in key, refuses a multi-line or foreign key", () => {
    assert.ok(renderIgnition(dev, STAND_IN_SSH_KEY).includes(STAND_IN_SSH_KEY));
    const files = renderAll(dev).filter((f) => f.path.endsWith("/ignition.json"));
    assert.ok(files.length >= 2);
    for (const f of files) assert.equal(f.content, files[0]!.content, f.path);
    assert.throws(() => renderIgnition(dev, `${key}\nssh-rsa AAAA evil`), /not one OpenSSH/);
    assert.throws(() => renderIgnition(dev, "hello"), /not one OpenSSH/);
  });
});

describe("renderAll", () => {
  function paths(model: ClusterModel, opts?: Parameters<typeof renderAll>[1]) {
    return renderAll(model, opts).map((f) => `${f.path} ${f.mode.toString(8)}`);
  }

  it("dev stack: every file of both hosts, plugin data on the controller", () => {
    assert.deepEqual(paths(dev), [
      "host-1/calico-host-prepare.sh 755",
      "host-1/calico-agent.sh 755",
      "host-1/felix.cfg 644",
      "host-1/ignition.json 644",
      "host-1/endpoint-192_168_1_1.sh 755",
      "host-1/endpoint-192_168_1_2.sh 755",
      "host-1/acl_manager.cfg 644",
      "host-1/plugin-data/felix.txt 644",
      "host-1/plugin-data/groups.txt 644",
      "host-1/plugin-data/192_168_1_1.txt 644",
      "host-1/plugin-data/192_168_1_2.txt 644",
      "host-1/plugin-data/192_168_1_3.txt 644",
      "host-2/calico-host-prepare.sh 755",
      "host-2/calico-agent.sh 755",
      "host-2/felix.cfg 644",
      "host-2/ignition.json 644",
      "host-2/endpoint-192_168_1_3.sh 755",
    ]);
    assert.ok(paths(devBgp).includes("host-2/bird.conf 644"));
  });

  it("existing stack: bird.conf everywhere, no ignition, data on the controller beta", () => {
    const p = paths(rr);
    assert.ok(!p.some((x) => x.includes("ignition")));
    assert.equal(p.filter((x) => x.endsWith("/bird.conf 644")).length, 4);
    assert.ok(p.includes("beta/plugin-data/api.txt 644") && p.includes("beta/acl_manager.cfg 644"));
    assert.ok(p.includes("gamma/endpoint-api.sh 755"));
  });

  it("uses given endpoint ids, synthetic ones otherwise, and checks them", () => {
    const real = "f".repeat(64);
    const files = renderAll(dev, { endpointIds: { "192_168_1_3": real } });
    const data = files.find((f) => f.path === "host-1/plugin-data/192_168_1_3.txt")!;
    assert.match(data.content, new RegExp(`^id=${real}$`, "m"));
    const script = files.find((f) => f.path === "host-2/endpoint-192_168_1_3.sh")!;
    assert.match(script.content, /^TAP='tapfffffffffff'$/m);
    const other = files.find((f) => f.path === "host-1/plugin-data/192_168_1_1.txt")!;
    assert.match(other.content, new RegExp(`^id=${ID("192_168_1_1")}$`, "m"));
    assert.throws(() => renderAll(dev, { endpointIds: { ghost: real } }), /ghost.*no endpoint/);
    assert.throws(
      () => renderAll(dev, { endpointIds: { "192_168_1_1": real, "192_168_1_2": real } }),
      /same name/,
    );
  });

  it("refuses an endpoint whose data file would replace felix.txt", () => {
    // loadConfig refuses the name already; the renderer guards on its own, for models
    // built any other way.
    const valid = buildModel(
      loadConfig({
        ...rrRaw,
        endpoints: [{ name: "felix-1", host: "alpha", ip: "172.20.1.9", group: "a" }],
      }),
    );
    const renamed = { ...valid.endpoints[0]!, name: "felix", dataFile: "felix.txt" };
    const m = {
      ...valid,
      endpoints: [renamed],
      hosts: valid.hosts.map((h) => ({
        ...h,
        endpoints: h.endpoints.map(() => renamed),
      })),
    };
    assert.throws(() => renderAll(m), /felix\.txt would overwrite/);
    assert.throws(
      () => renderEndpointData(endpointOf(m, "felix"), ID("felix")),
      /felix\.txt would overwrite/,
    );
  });
});
