// The CalicoCluster component under mocks with the other shapes a stack can take: BGP on GCE
// (the seed's "Running bird under GCE"), routes per host block, hosts you already have
// (`platform: existing`), prebuilt images, and an existing GCE network. Each variant is its
// own cluster (its own name prefix) in this one mocked process.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import {
  installMocks,
  PROJECT,
  isSecretValue,
  MOCK_KEY,
  stackFileConfig,
  T,
  valueOf,
  type Recorded,
} from "./program-mocks.js";

const world = await installMocks({}, { stack: "variants" });
after(() => world.cleanup());
const { CalicoCluster } = await import("../components/cluster.js");
const { loadConfig } = await import("../components/config.js");
const { rawFromStackConfig } = await import("../components/stack-keys.js");
const { devRaw, hostOf } = await import("./helpers/stacks.js");
const { buildModel, PATHS } = await import("../components/model.js");
const render = await import("../components/render/index.js");
const { sha256 } = await import("../components/ssh.js");

type Raw = Record<string, unknown>;
/** The dev stack's raw config (without the `calico-docker:` prefix), changed by `patch`. */
const devWith = (patch: Raw): Raw => ({ ...devRaw(), ...patch });

async function deploy(name: string, raw: Raw, sshPrivateKey?: string) {
  const model = buildModel(loadConfig(raw), { project: PROJECT, stack: "variants" });
  const cluster = new CalicoCluster(name, {
    model,
    ...(sshPrivateKey !== undefined ? { sshPrivateKey: pulumi.secret(sshPrivateKey) } : {}),
  });
  const hosts = await valueOf(cluster.hostOutputs);
  const verify = await valueOf(cluster.verifyOutputs);
  await valueOf(cluster.endpointOutputs);
  await world.settle();
  const mine = (r: Recorded) => r.name === name || r.name.startsWith(`${name}-`);
  const of = (type: string) => world.ofType(type).filter(mine);
  const hostAt = new Map(hosts.map((h) => [h.externalAddress, h.name]));
  const onHost = (r: Recorded) =>
    hostAt.get((r.inputs.connection as { host?: string } | undefined)?.host ?? "") ??
    new RegExp(`::${name}-([a-z0-9-]+)-docker::`).exec(r.provider ?? "")?.[1];
  return { model, cluster, hosts, verify, of, onHost };
}

const gceBgp = await deploy("bgp", devWith({ bgp: { enabled: true } }));
const block = await deploy(
  "block",
  devWith({
    gce: {
      subnetCidr: "10.240.0.0/16",
      routeGranularity: "host-block",
      sshSourceRanges: ["203.0.113.0/24"],
    },
    hosts: [
      { name: "host-1", zone: "asia-east1-a", endpointBlock: "192.168.1.0/24" },
      { name: "host-2", zone: "us-central1-a", endpointBlock: "192.168.2.0/24" },
    ],
    endpoints: [
      { host: "host-1", ip: "192.168.1.1", group: "web" },
      { host: "host-1", ip: "192.168.1.2", group: "db" },
      { host: "host-2", ip: "192.168.2.3", group: "web" },
    ],
  }),
);
// The example stack of Pulumi.existing-example.yaml, with its key set as
// `pulumi config set --secret sshPrivateKey` would.
const existingRaw = rawFromStackConfig({
  ...stackFileConfig("existing-example"),
  "calico-docker:sshPrivateKey": "(set as a secret)",
});
const existing = await deploy("existing", existingRaw, MOCK_KEY.privatePem);
const prebuilt = await deploy(
  "prebuilt",
  devWith({ images: { felix: "registry.example.com/calico/felix:0.10.2" } }),
);
const sharedNet = await deploy(
  "sharednet",
  devWith({
    gce: { network: "ops", subnetwork: "ops-asia", sshSourceRanges: ["203.0.113.0/24"] },
    hosts: [
      { name: "host-1", zone: "asia-east1-a" },
      { name: "host-2", zone: "asia-east1-b" },
    ],
  }),
);

describe("seed: Running bird under GCE", () => {
  const { model, of, onHost, verify } = gceBgp;
  it("runs bird on every host with that host's rendered bird.conf, read-only", () => {
    const birds = of(T.container).filter((c) => c.inputs.name === "bird");
    assert.deepEqual(birds.map(onHost).sort(), ["host-1", "host-2"]);
    for (const c of birds) {
      const host = onHost(c)!;
      assert.deepEqual(c.inputs.command, ["run_bird", "/etc/bird/bird.conf"]);
      assert.equal(c.inputs.privileged, true);
      assert.equal(c.inputs.networkMode, "host");
      assert.equal(c.inputs.restart, "always");
      assert.ok(
        (c.inputs.volumes as Record<string, unknown>[]).some(
          (v) =>
            v.hostPath === PATHS.birdConf &&
            v.containerPath === "/etc/bird/bird.conf" &&
            v.readOnly,
        ),
      );
      const conf = render.renderBirdConf(model, hostOf(model, host));
      const file = of(T.command).filter(
        (x) => onHost(x) === host && String(x.inputs.create).endsWith(`'${PATHS.birdConf}'`),
      );
      assert.equal(file.length, 1);
      assert.equal(file[0]!.inputs.stdin, conf);
      const labels = c.inputs.labels as { label: string; value: string }[];
      assert.ok(
        labels.some((l) => l.value === sha256(conf)),
        "bird.conf hash on the container",
      );
    }
    assert.equal(of(T.command).filter((c) => c.name.endsWith("-image-bird")).length, 2);
  });
  it("the host script does the peer-address trick and the unreachable pool route", () => {
    assert.equal(render.gceBgp(model), true);
    for (const h of model.hosts) {
      const prep = of(T.command).find((c) => c.name === `bgp-${h.name}-prepare`)!;
      assert.equal(prep.inputs.stdin, render.renderHostScript(model, h));
      assert.ok(String(prep.inputs.stdin).includes(`GCE_BGP='yes'`));
      assert.ok(String(prep.inputs.stdin).includes("peer"));
      assert.ok(String(prep.inputs.stdin).includes("unreachable"));
    }
  });
  it("opens BGP (tcp/179) between hosts only", () => {
    const bgp = of(T.firewall).find((f) => f.name === "bgp-gce-bgp")!;
    assert.deepEqual(bgp.inputs.allows, [{ protocol: "tcp", ports: ["179"] }]);
    assert.match(
      String((bgp.inputs.sourceTags as string[])[0]),
      /^calico-[a-z0-9-]+-[0-9a-f]{6}-host$/,
    );
    assert.deepEqual(bgp.inputs.sourceTags, bgp.inputs.targetTags);
    assert.equal(bgp.inputs.sourceRanges, undefined);
    assert.equal(of(T.firewall).length, 4);
  });
  it("still routes each endpoint through the fabric, and offers a BGP check", () => {
    assert.equal(of(T.route).length, model.endpoints.length);
    for (const v of verify) {
      assert.match(v.bgp!, /docker exec bird birdc -s \/var\/run\/bird\/bird\.ctl show protocols$/);
    }
  });
});

describe("routes per host block (routeGranularity: host-block)", () => {
  it("creates one route per host, for its block, next hop that host", () => {
    const routes = block.of(T.route);
    assert.deepEqual(routes.map((r) => [r.inputs.destRange, r.inputs.nextHopInstanceZone]).sort(), [
      ["192.168.1.0/24", "asia-east1-a"],
      ["192.168.2.0/24", "us-central1-a"],
    ]);
    for (const r of routes) {
      const host = r.inputs.destRange === "192.168.1.0/24" ? "host-1" : "host-2";
      assert.match(
        String(r.inputs.nextHopInstance),
        new RegExp(`/instances/calico-variants-[0-9a-f]{6}-${host}$`),
      );
    }
  });
});

describe("platform: existing (Pulumi.existing-example.yaml: your own hosts over SSH)", () => {
  const { of, model, hosts, onHost } = existing;
  it("creates no GCP resource and generates no key", () => {
    const gcp = world.resources.filter(
      (r) =>
        r.name.startsWith("existing-") &&
        (r.type.startsWith("gcp:") || r.type.startsWith("pulumi:providers:gcp")),
    );
    assert.deepEqual(gcp, []);
    assert.equal(of(T.privateKey).length, 0, "the supplied key is used");
  });
  it("reaches every host at its address as its SSH user, docker over ssh:// only", () => {
    const providers = of(T.dockerProvider);
    assert.deepEqual(providers.map((p) => p.inputs.host).sort(), [
      "ssh://calico@10.0.0.11",
      "ssh://calico@10.0.0.12",
      "ssh://root@node-c.example.net",
    ]);
    assert.deepEqual(
      hosts.map((h) => [h.name, h.internalAddress, h.externalAddress]),
      [
        ["node-a", "10.0.0.11", "10.0.0.11"],
        ["node-b", "10.0.0.12", "10.0.0.12"],
        ["node-c", "10.0.0.13", "node-c.example.net"],
      ],
    );
  });
  it("uses sudo for a non-root user and not for root", () => {
    const prepOf = (h: string) => of(T.command).find((c) => c.name === `existing-${h}-prepare`)!;
    assert.match(String(prepOf("node-a").inputs.create), /sudo -n bash/);
    assert.doesNotMatch(String(prepOf("node-c").inputs.create), /sudo/);
  });
  it("runs bird on every host, and the ACL Manager and plugin on the chosen controller", () => {
    assert.equal(model.config.bgp.enabled, true);
    const controllerOnly = of(T.container).filter((c) =>
      ["aclmgr", "plugin-network", "plugin-endpoint"].includes(String(c.inputs.name)),
    );
    assert.deepEqual([...new Set(controllerOnly.map(onHost))], ["node-a"]);
    const birds = of(T.container).filter((c) => c.inputs.name === "bird");
    assert.deepEqual(birds.map(onHost).sort(), ["node-a", "node-b", "node-c"]);
  });
  it("keeps the supplied key secret everywhere", async () => {
    for (const c of of(T.command)) assert.ok(isSecretValue(c.raw.connection));
    assert.equal(await pulumi.isSecret(existing.cluster.sshPrivateKey), true);
  });
});

describe("images: a name other than calico:<kind> is a prebuilt image the host pulls", () => {
  it("pulls the overridden felix image and still builds the others", () => {
    const pulled = prebuilt.of(T.remoteImage);
    assert.deepEqual(
      pulled.map((p) => p.inputs.name),
      ["registry.example.com/calico/felix:0.10.2", "registry.example.com/calico/felix:0.10.2"],
    );
    assert.equal(prebuilt.of(T.command).filter((c) => c.name.endsWith("-image-felix")).length, 0);
    assert.equal(prebuilt.of(T.command).filter((c) => c.name.endsWith("-image-util")).length, 2);
  });
});

describe("an existing GCE network", () => {
  it("creates no network or subnet, and puts rules and routes on the given network", () => {
    assert.equal(sharedNet.of(T.network).length, 0);
    assert.equal(sharedNet.of(T.subnet).length, 0);
    for (const r of [...sharedNet.of(T.firewall), ...sharedNet.of(T.route)]) {
      assert.match(String(r.inputs.network), /\/networks\/ops$/);
    }
    for (const i of sharedNet.of(T.instance)) {
      const nic = (i.inputs.networkInterfaces as Record<string, unknown>[])[0]!;
      assert.equal(nic.subnetwork, "ops-asia");
    }
  });
});
