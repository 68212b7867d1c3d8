// The real program (index.ts) with the dev stack (Pulumi.dev.yaml: GCE, two hosts in two
// regions, three endpoints, BGP off, one route per endpoint), run under Pulumi mocks. Every
// step of the seed README that the program replaces is asserted on the resource graph.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  installMocks,
  isSecretValue,
  MOCK_KEY,
  mockContainerId,
  stackFileConfig,
  PROJECT,
  T,
  valueOf,
  type Recorded,
} from "./program-mocks.js";

const entries = stackFileConfig("dev");
const world = await installMocks(entries, { stack: "dev" });
// Mocks first, then the program.
const program = await import("../index.js");
const { loadConfig } = await import("../components/config.js");
const { rawFromStackConfig } = await import("../components/stack-keys.js");
const { buildModel, PATHS } = await import("../components/model.js");
const render = await import("../components/render/index.js");
const { CONFIG_LABEL, BIRD_CONF_IN_CONTAINER } = await import("../components/host.js");
const { buildContext } = await import("../components/build-context.js");
const felixContext = await buildContext("felix");
const pluginContext = await buildContext("plugin");
const { sha256, sshDirFor } = await import("../components/ssh.js");
const { hostOf } = await import("./helpers/stacks.js");
const { gceNames } = await import("../components/names.js");
const names = gceNames({ project: PROJECT, stack: "dev" });

const hostsOut = await valueOf(program.hosts);
const endpointsOut = await valueOf(program.endpoints);
const verifyOut = await valueOf(program.verify);
await world.settle();
after(() => world.cleanup());

const model = buildModel(loadConfig(rawFromStackConfig(entries)), {
  project: PROJECT,
  stack: "dev",
});
const pool = model.config.endpointPool;
const addressOf = new Map(hostsOut.map((h) => [h.name, h.externalAddress]));
const hostAt = new Map(hostsOut.map((h) => [h.externalAddress, h.name]));

const count = (type: string) => world.ofType(type).length;
const str = (v: unknown) => v as string;
/** The host a remote command runs on, from its (unwrapped) connection. */
const commandHost = (c: Recorded) =>
  hostAt.get(str((c.inputs.connection as Record<string, unknown>).host));
/** The host whose docker provider a docker resource uses. */
const dockerHost = (r: Recorded) => /::calico-(host-\d+)-docker::/.exec(r.provider ?? "")?.[1];
const containersNamed = (name: string) =>
  world.ofType(T.container).filter((c) => c.inputs.name === name);
/** The machine identity of a host (its GCE instance id), as the readiness gate records it. */
const identity = (host: string) =>
  str((world.byName(`calico-${host}-ready`).inputs.triggers as unknown[])[0]);
const builds = () => world.ofType(T.command).filter((c) => /-image-[a-z]+$/.test(c.name));
const fileCommand = (host: string, path: string) => {
  const found = world
    .ofType(T.command)
    .filter((c) => commandHost(c) === host && str(c.inputs.create).includes(`mv -f`))
    .filter((c) => str(c.inputs.create).endsWith(`'${path}'`));
  assert.equal(found.length, 1, `one file command for ${path} on ${host}`);
  return found[0]!;
};

describe("the dev stack builds the whole graph", () => {
  it("creates one network, a subnet per region, three firewall rules and two hosts", () => {
    assert.equal(count(T.network), 1);
    assert.equal(world.ofType(T.network)[0]!.inputs.autoCreateSubnetworks, false);
    assert.deepEqual(
      world
        .ofType(T.subnet)
        .map((s) => [s.inputs.region, s.inputs.ipCidrRange])
        .sort(),
      model.config.gce.subnets.map((s) => [s.region, s.cidr]).sort(),
    );
    assert.equal(count(T.firewall), 3, "endpoints, zeromq, ssh (no BGP rule with BGP off)");
    assert.equal(count(T.instance), 2);
    assert.equal(count(T.route), 3, "one route per endpoint");
    assert.equal(count(T.privateKey), 1, "a generated key when none is supplied");
    assert.equal(count(T.dockerProvider), 2, "one docker provider per host");
    assert.equal(count(T.image), 0, "no docker.Image: images are built over the SSH connection");
    assert.equal(builds().length, 5, "felix+util on both hosts, plugin on the controller");
    assert.equal(count(T.container), 8, "felix x2, aclmgr, plugin x2, three endpoints");
    // ready + prepare per host, felix.cfg per host, acl_manager.cfg, felix.txt, groups.txt,
    // and per endpoint its wiring and its data file.
    // and the five image builds.
    assert.equal(count(T.command), 2 * 2 + 2 + 1 + 2 + 3 * 2 + 5);
  });
  it("registers every component as calico-docker:<module>:<Class>, the module its file", () => {
    const ours = [...new Set(world.resources.map((r) => r.type))]
      .filter((t) => t.startsWith("calico-docker:"))
      .sort();
    assert.deepEqual(ours, [
      "calico-docker:cluster:CalicoCluster",
      "calico-docker:endpoint:CalicoEndpoint",
      "calico-docker:gce:Fabric",
      "calico-docker:host:CalicoHost",
    ]);
  });
});

describe("seed: Prerequisites (GCE hosts with IP forwarding, modules, directories)", () => {
  const instances = world.ofType(T.instance);
  it("every instance forwards IP and carries this stack's host tag", () => {
    assert.match(names.hostTag, /^calico-dev-[0-9a-f]{6}-host$/);
    for (const i of instances) {
      assert.equal(i.inputs.canIpForward, true, `${str(i.inputs.name)} forwards IP`);
      assert.deepEqual(i.inputs.tags, [names.hostTag]);
    }
  });
  it("every GCE resource has a fixed name with the stack's prefix, deleted before replaced", () => {
    const named = [T.network, T.subnet, T.firewall, T.instance, T.route].flatMap((t) =>
      world.ofType(t),
    );
    assert.equal(named.length, 1 + 2 + 3 + 2 + 3);
    for (const r of named) {
      assert.ok(
        str(r.inputs.name).startsWith(`${names.prefix}-`),
        `${r.name}: ${str(r.inputs.name)}`,
      );
      assert.ok(str(r.inputs.name).length <= 63, str(r.inputs.name));
    }
    assert.deepEqual(
      world
        .ofType(T.route)
        .map((r) => r.inputs.name)
        .sort(),
      model.routes.map((r) => names.route(r.name)).sort(),
    );
  });
  it("each instance is the model's host: name, zone, machine type, image, internal address", () => {
    for (const h of model.hosts) {
      const i = instances.find((x) => x.inputs.name === names.instance(h.name))!;
      assert.ok(i, `instance ${h.name}`);
      assert.equal(i.inputs.zone, h.zone);
      assert.equal(i.inputs.machineType, h.machineType);
      const boot = i.inputs.bootDisk as { initializeParams: { image: string } };
      assert.equal(boot.initializeParams.image, model.config.gce.image);
      const nic = (i.inputs.networkInterfaces as Record<string, unknown>[])[0]!;
      assert.equal(nic.networkIp, h.internalAddress);
      assert.equal((nic.accessConfigs as unknown[]).length, 1, "an external IP for SSH");
      assert.equal(i.inputs.serviceAccount, undefined, "no Google API access");
    }
  });
  it("Ignition user-data is the rendered one, with the generated public key", () => {
    for (const h of model.hosts) {
      const i = instances.find((x) => x.inputs.name === names.instance(h.name))!;
      const metadata = i.inputs.metadata as Record<string, string>;
      assert.equal(metadata["user-data"], render.renderIgnition(model, MOCK_KEY.publicOpenssh));
      assert.equal(metadata["ssh-keys"], `core:${MOCK_KEY.publicOpenssh}`);
      assert.equal(metadata["block-project-ssh-keys"], "true");
    }
  });
  it("each host is prepared by the rendered host script: apply on create, remove on delete", () => {
    for (const h of model.hosts) {
      const prep = world.byName(`calico-${h.name}-prepare`);
      assert.equal(commandHost(prep), h.name);
      assert.equal(prep.inputs.stdin, render.renderHostScript(model, h));
      // Applied again in place when the script changes (apply converges); a new machine
      // (identity) is prepared afresh.
      assert.match(
        str(prep.inputs.create),
        new RegExp(`\nsudo -n bash '${PATHS.hostScript}' apply$`),
      );
      assert.match(str(prep.inputs.delete), new RegExp(`bash '${PATHS.hostScript}' remove`));
      assert.deepEqual(prep.inputs.triggers, [identity(h.name)]);
      for (const m of render.KERNEL_MODULES) assert.ok(str(prep.inputs.stdin).includes(`'${m}'`));
      // apply installs this host's agent and its unit (calico-agent.service).
      const text = str(prep.inputs.stdin);
      assert.ok(text.includes(render.renderAgentScript(model, h).trimEnd()), "the agent");
      assert.ok(text.includes(render.agentUnit()), "the agent's unit");
      assert.match(text, /^AGENT_SCRIPT='\/opt\/calico\/bin\/calico-agent\.sh'$/m);
      assert.match(text, /^ {2}apply_agent$/m);
    }
  });
  it("Ignition carries nothing of the agent's: host preparation owns it", () => {
    for (const h of model.hosts) {
      const i = instances.find((x) => x.inputs.name === names.instance(h.name))!;
      const userData = (i.inputs.metadata as Record<string, string>)["user-data"]!;
      assert.doesNotMatch(userData, /calico-agent/);
    }
  });
  it("a host that is gone fails a command in about a minute; only the readiness gate waits", () => {
    const commands = world.ofType(T.command);
    assert.ok(commands.length > 4);
    for (const c of commands) {
      const conn = c.inputs.connection as { dialErrorLimit: number; perDialTimeout: number };
      const seconds = conn.dialErrorLimit * conn.perDialTimeout;
      if (/-ready$/.test(c.name)) {
        assert.ok(seconds >= 600, `${c.name}: a fresh instance may take minutes to answer`);
      } else {
        assert.ok(seconds <= 60, `${c.name}: ${seconds} s of dialling before giving up`);
      }
    }
  });
  it("a readiness gate waits for SSH and docker on every host, per machine", () => {
    assert.match(identity("host-1"), /^\d+$/);
    assert.notEqual(identity("host-1"), identity("host-2"));
    for (const h of model.hosts) {
      const gate = world.byName(`calico-${h.name}-ready`);
      assert.equal(commandHost(gate), h.name);
      assert.match(str(gate.inputs.create), /until docker info/);
      assert.match(str(gate.inputs.create), /sudo -n true/);
    }
  });
});

describe("seed: Start the containers", () => {
  const seedFlags = (c: Recorded) => {
    assert.equal(c.inputs.privileged, true, "--privileged=true");
    assert.equal(c.inputs.networkMode, "host", "--net=host");
    assert.equal(c.inputs.restart, "always", "--restart=always");
    const volumes = c.inputs.volumes as Record<string, unknown>[];
    assert.ok(
      volumes.some((v) => v.hostPath === PATHS.logDir && v.containerPath === PATHS.logDir),
      "-v /var/log/calico:/var/log/calico",
    );
  };
  const configMount = (c: Recorded, hostPath: string, containerPath: string) => {
    const volumes = c.inputs.volumes as Record<string, unknown>[];
    assert.ok(
      volumes.some(
        (v) => v.hostPath === hostPath && v.containerPath === containerPath && v.readOnly === true,
      ),
      `${hostPath} mounted read-only at ${containerPath}`,
    );
  };
  const label = (c: Recorded, name: string) =>
    (c.inputs.labels as { label: string; value: string }[]).find((l) => l.label === name)?.value;

  it("felix runs on every host with felix.cfg, from calico:felix built on that host", () => {
    const felix = containersNamed("felix");
    assert.deepEqual(felix.map(dockerHost).sort(), ["host-1", "host-2"]);
    for (const c of felix) {
      const host = dockerHost(c)!;
      seedFlags(c);
      assert.deepEqual(c.inputs.command, ["calico-felix", "--config-file=/etc/calico/felix.cfg"]);
      configMount(c, PATHS.felixCfg, PATHS.felixCfg);
      const image = world.byName(`calico-${host}-image-felix`);
      assert.equal(commandHost(image), host, "built on the host's own daemon");
      assert.equal(image.inputs.create, render.imageBuildScript("calico:felix", "Dockerfile"));
      const context = felixContext;
      assert.equal(image.inputs.stdin, context.tar.toString("base64"));
      assert.deepEqual(image.inputs.triggers, [context.hash, identity(host)]);
      assert.equal(
        c.inputs.image,
        `sha256:${sha256(`calico-${host}-image-felix`)}`,
        "runs the built image",
      );
      const cfg = render.renderFelixCfg(model, hostOf(model, host));
      assert.equal(fileCommand(host, PATHS.felixCfg).inputs.stdin, cfg);
      assert.equal(label(c, CONFIG_LABEL), sha256(cfg), "a config change replaces the container");
      assert.deepEqual(fileCommand(host, PATHS.felixCfg).inputs.triggers, [
        host,
        identity(host),
        sha256(cfg),
      ]);
      assert.equal(label(c, "calico-docker.host-identity"), identity(host));
      assert.equal(label(c, "calico-docker.host"), host, "the agent of this host watches it");
    }
  });
  it("the ACL Manager runs on the controller only", () => {
    const acl = containersNamed("aclmgr");
    assert.deepEqual(acl.map(dockerHost), [model.controller.name]);
    seedFlags(acl[0]!);
    assert.deepEqual(acl[0]!.inputs.command, [
      "calico-acl-manager",
      "--config-file=/etc/calico/acl_manager.cfg",
    ]);
    configMount(acl[0]!, PATHS.aclManagerCfg, PATHS.aclManagerCfg);
    const cfg = render.renderAclManagerCfg(model);
    assert.equal(fileCommand(model.controller.name, PATHS.aclManagerCfg).inputs.stdin, cfg);
    assert.equal(label(acl[0]!, CONFIG_LABEL), sha256(cfg));
    assert.equal(label(acl[0]!, "calico-docker.host"), model.controller.name);
    assert.equal(label(acl[0]!, "calico-docker.role"), "aclmgr");
  });
  it("the plugin's network and endpoint processes run on the controller only, with /opt/plugin", () => {
    for (const role of ["network", "endpoint"]) {
      const plugin = containersNamed(`plugin-${role}`);
      assert.deepEqual(plugin.map(dockerHost), [model.controller.name]);
      seedFlags(plugin[0]!);
      const cmd = plugin[0]!.inputs.command as string[];
      assert.deepEqual(cmd.slice(0, 5), [
        role,
        "--data-dir",
        PATHS.dataDir,
        "--log-dir",
        PATHS.logDir,
      ]);
      const volumes = plugin[0]!.inputs.volumes as Record<string, unknown>[];
      assert.ok(
        volumes.some((v) => v.hostPath === PATHS.pluginDir && v.containerPath === PATHS.pluginDir),
      );
    }
    const image = world.byName(`calico-${model.controller.name}-image-plugin`);
    assert.equal(
      image.inputs.create,
      render.imageBuildScript("calico:plugin", "images/plugin/Dockerfile"),
    );
    assert.equal(image.inputs.stdin, pluginContext.tar.toString("base64"));
    assert.throws(() => world.byName("calico-host-2-image-plugin"), /0 resources/);
  });
  it("no bird on GCE without BGP (the seed's GCE path)", () => {
    assert.equal(containersNamed("bird").length, 0);
    assert.equal(builds().filter((b) => b.name.endsWith("-image-bird")).length, 0);
    assert.ok(!BIRD_CONF_IN_CONTAINER.startsWith(PATHS.configDir));
  });
  it("every docker provider talks to its host over ssh://, with our key file (0600)", () => {
    const dir = sshDirFor(PROJECT, "dev");
    for (const p of world.ofType(T.dockerProvider)) {
      const host = /^calico-(host-\d+)-docker$/.exec(p.name)![1]!;
      assert.equal(p.inputs.host, `ssh://core@${addressOf.get(host)}`);
      const raw = p.inputs.sshOpts;
      const opts = (typeof raw === "string" ? JSON.parse(raw) : raw) as string[];
      // Stored as `~/...`: ssh finds it under the home of whoever runs refresh or destroy.
      assert.equal(opts[opts.indexOf("-i") + 1], `~/.calico-docker/ssh/${PROJECT}/dev/id_key`);
      const keyFile = join(dir.local, "id_key");
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.equal(statSync(dir.local).mode & 0o777, 0o700);
      assert.equal(readFileSync(keyFile, "utf8").trim(), MOCK_KEY.privatePem.trim());
      assert.ok(opts.includes("StrictHostKeyChecking=accept-new"));
      assert.ok(opts.includes("IdentitiesOnly=yes"));
    }
  });
  it("the docker providers' stored settings name no temp dir and no machine's path", () => {
    // refresh and destroy reuse these settings on whatever machine runs them.
    for (const p of world.ofType(T.dockerProvider)) {
      const text = JSON.stringify(p.inputs);
      assert.ok(!text.includes(tmpdir()), `${p.name} names the temp dir: ${text}`);
      assert.ok(!text.includes(userInfo().homedir + "/"), `${p.name} names this user's home`);
      const raw = p.inputs.sshOpts;
      const opts = (typeof raw === "string" ? JSON.parse(raw) : raw) as string[];
      const paths = opts.flatMap((o) => /(?:^|=)([~/][^,]*)$/.exec(o)?.[1] ?? []);
      assert.equal(paths.length, 2, "the key and the known-hosts file");
      for (const path of paths)
        assert.match(path, /^~\/\.calico-docker\/ssh\/calico-docker\/dev\//);
    }
  });
});

describe("seed: Create some configuration for Felix", () => {
  it("felix.txt lists every host, written on the controller", () => {
    const felixTxt = fileCommand(model.controller.name, `${PATHS.dataDir}/felix.txt`);
    assert.equal(felixTxt.inputs.stdin, render.renderFelixTxt(model));
    for (const h of model.hosts) {
      assert.ok(str(felixTxt.inputs.stdin).includes(`[felix ${h.name}]\nip=${h.internalAddress}`));
    }
  });
  it("groups.txt carries the dev stack's db rules, on the controller", () => {
    const groups = fileCommand(model.controller.name, `${PATHS.dataDir}/groups.txt`);
    assert.equal(groups.inputs.stdin, render.renderGroupsTxt(model));
  });
  for (const e of model.endpoints) {
    it(`endpoint ${e.name}: a --net=none util container on ${e.host}, wired, and its data file`, () => {
      const [c, ...more] = containersNamed(e.containerName);
      assert.equal(more.length, 0);
      assert.equal(dockerHost(c!), e.host);
      assert.equal(c!.inputs.networkMode, "none");
      // Docker brings it back after a crash, a daemon restart or a reboot; the agent
      // finds it by these labels and wires it again.
      assert.equal(c!.inputs.restart, "unless-stopped");
      const labels = Object.fromEntries(
        (c!.inputs.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]),
      );
      assert.deepEqual(labels, {
        "calico-docker.role": "endpoint",
        "calico-docker.host": e.host,
        "calico-docker.host-identity": identity(e.host),
        "calico-docker.endpoint": e.name,
        "calico-docker.ip": e.ip,
        "calico-docker.group": e.group,
      });
      assert.equal(c!.inputs.image, `sha256:${sha256(`calico-${e.host}-image-util`)}`);
      const id = mockContainerId(`calico-ep-${e.name}`);

      const wiring = world.byName(`calico-ep-${e.name}-wiring`);
      assert.equal(commandHost(wiring), e.host);
      assert.equal(wiring.inputs.stdin, render.renderEndpointScript(e, id));
      // The script takes the endpoint's own lock (a stable file), not its replaced path.
      assert.match(
        str(wiring.inputs.create),
        new RegExp(`\\nsudo -n bash '[^']*endpoint-${e.name}\\.sh' add$`),
      );
      assert.match(
        str(wiring.inputs.stdin),
        new RegExp(`^LOCK_FILE='/run/lock/calico-docker/endpoint-${e.name}\\.lock'$`, "m"),
      );
      assert.match(str(wiring.inputs.delete), new RegExp(`endpoint-${e.name}\\.sh' remove`));
      assert.deepEqual(wiring.inputs.triggers, [id]);

      // No scp, no cat: the file is written on the controller, whichever host runs it.
      const data = fileCommand(model.controller.name, `${PATHS.dataDir}/${e.dataFile}`);
      assert.equal(data.inputs.stdin, render.renderEndpointData(e, id));
      assert.ok(str(data.inputs.stdin).includes(`id=${id}`));
      assert.equal(data.inputs.delete, `sudo -n rm -f '${PATHS.dataDir}/${e.dataFile}'`);
      assert.match(str(data.inputs.create), /tee '\/opt\/plugin\/data\/\.[^']+\.tmp'/, "atomic");
      // Replaced (the old file removed first) when its text changes, as with a new container
      // id, so it never names a container that is gone; moved if the controller changes.
      assert.deepEqual(data.inputs.triggers, [
        model.controller.name,
        identity(model.controller.name),
        sha256(render.renderEndpointData(e, id)),
      ]);
    });
  }
});

describe("seed: Extra configuration for GCE (routes, firewall, SNAT)", () => {
  it("one /32 route per endpoint, next hop its host's instance in its zone", () => {
    const routes = world.ofType(T.route);
    for (const e of model.endpoints) {
      const r = routes.filter((x) => x.inputs.destRange === `${e.ip}/32`);
      assert.equal(r.length, 1, `route for ${e.ip}`);
      const host = model.hosts.find((h) => h.name === e.host)!;
      assert.match(
        str(r[0]!.inputs.nextHopInstance),
        new RegExp(`/zones/${host.zone}/instances/${names.instance(host.name)}$`),
      );
      assert.equal(r[0]!.inputs.nextHopInstanceZone, host.zone);
    }
  });
  it("no firewall rule opens anything but ICMP to 0.0.0.0/0", () => {
    for (const f of world.ofType(T.firewall)) {
      const ranges = (f.inputs.sourceRanges as string[] | undefined) ?? [];
      if (ranges.some((r) => r.endsWith("/0"))) {
        const allows = f.inputs.allows as { protocol: string }[];
        assert.ok(
          allows.every((a) => a.protocol === "icmp"),
          `${f.name} opens more than ICMP`,
        );
      }
      assert.deepEqual(f.inputs.targetTags, [names.hostTag]);
    }
  });
  it("endpoint traffic (tcp, udp, icmp) is allowed from the pool to the pool", () => {
    const f = world.byName("calico-gce-endpoints");
    assert.deepEqual(f.inputs.sourceRanges, [pool]);
    assert.deepEqual(f.inputs.destinationRanges, [pool], "to containers, not to the hosts");
    assert.deepEqual((f.inputs.allows as { protocol: string }[]).map((a) => a.protocol).sort(), [
      "icmp",
      "tcp",
      "udp",
    ]);
  });
  it("ZeroMQ 9901-9906 only between hosts, SSH only from sshSourceRanges", () => {
    const zmq = world.byName("calico-gce-zeromq");
    assert.deepEqual(zmq.inputs.sourceTags, [names.hostTag]);
    assert.equal(zmq.inputs.sourceRanges, undefined);
    assert.deepEqual(zmq.inputs.allows, [{ protocol: "tcp", ports: ["9901-9906"] }]);
    const ssh = world.byName("calico-gce-ssh");
    assert.deepEqual(ssh.inputs.sourceRanges, model.config.gce.sshSourceRanges);
    assert.deepEqual(ssh.inputs.allows, [{ protocol: "tcp", ports: ["22"] }]);
  });
  it("SNAT for the pool is in every host's preparation", () => {
    for (const h of model.hosts) {
      const script = str(world.byName(`calico-${h.name}-prepare`).inputs.stdin);
      assert.ok(script.includes(`ENDPOINT_POOL='${pool}'`));
      assert.ok(script.includes("-j MASQUERADE"));
      assert.ok(script.includes(`GCE_BGP='no'`), "no BIRD tricks with BGP off");
    }
  });
});

describe("secrets", () => {
  it("the connection object is built secret, and every remote command's connection is one", async () => {
    const { connectionFor } = await import("../components/ssh.js");
    const conn = connectionFor("192.0.2.1", "core", "not-a-key");
    assert.equal(await pulumi.isSecret(conn), true);
    const commands = world.ofType(T.command);
    assert.ok(commands.length > 0);
    for (const c of commands) assert.ok(isSecretValue(c.raw.connection), `${c.name} connection`);
  });
  it("the private key appears in no input outside a secret", () => {
    const body = MOCK_KEY.privatePem.split("\n")[1]!;
    const strip = (v: unknown): unknown =>
      isSecretValue(v)
        ? "[secret]"
        : Array.isArray(v)
          ? v.map(strip)
          : v !== null && typeof v === "object"
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x)]))
            : v;
    for (const r of world.resources) {
      assert.ok(!JSON.stringify(strip(r.raw)).includes(body), `${r.name} leaks the key`);
    }
  });
  it("the sshPrivateKey stack output is a secret; host outputs are not", async () => {
    assert.equal(await pulumi.isSecret(program.sshPrivateKey), true);
    assert.equal(await valueOf(program.sshPrivateKey), MOCK_KEY.privatePem);
    assert.equal(await pulumi.isSecret(program.hosts), false);
  });
});

describe("stack outputs", () => {
  it("hosts: name, internal and external IP, SSH user (npm run status reads it), SSH command", () => {
    assert.deepEqual(
      hostsOut.map((h) => [h.name, h.internalAddress, h.controller, h.sshUser]),
      model.hosts.map((h) => [h.name, h.internalAddress, h.isController, "core"]),
    );
    for (const h of hostsOut) assert.match(h.ssh, new RegExp(`core@${h.externalAddress}$`));
  });
  it("endpoints: name, host, IP, group and container id", () => {
    assert.deepEqual(
      endpointsOut.map((e) => [e.name, e.host, e.ip, e.group, e.containerId]),
      model.endpoints.map((e) => [
        e.name,
        e.host,
        e.ip,
        e.group,
        mockContainerId(`calico-ep-${e.name}`),
      ]),
    );
  });
  it("verification commands for routes and iptables (no BGP command with BGP off)", () => {
    for (const v of verifyOut) {
      assert.match(v.routes, / ip route$/);
      // Felix's backend (legacy), which the host's nf_tables iptables would not show.
      assert.match(v.iptables, / docker exec felix iptables -L -n$/);
      assert.match(v.snat, / docker exec felix iptables -t nat -S CALICO-SNAT$/);
      assert.equal(v.bgp, undefined);
    }
  });
});

describe("the remote shell text", () => {
  it("passes shellcheck as POSIX sh (the SSH user's shell may be any sh)", () => {
    const dir = mkdtempSync(join(tmpdir(), "calico-program-sh-"));
    try {
      const files: string[] = [];
      for (const c of world.ofType(T.command)) {
        for (const key of ["create", "delete"] as const) {
          const text = c.inputs[key];
          if (typeof text !== "string") continue;
          const file = join(dir, `${c.name}-${key}.sh`);
          writeFileSync(file, `#!/bin/sh\n${text}\n`);
          files.push(file);
        }
      }
      assert.ok(files.length >= 20);
      const res = spawnSync("shellcheck", ["-s", "sh", ...files], { encoding: "utf8" });
      assert.equal(res.error, undefined, "shellcheck must be installed");
      assert.equal(res.status, 0, res.stdout + res.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the policy pack passes the dev stack", () => {
  it("no firewall, instance or docker provider violates a rule", async () => {
    const rules = await import("../policy/rules.js");
    const problems: string[] = [];
    for (const f of world.ofType(T.firewall)) {
      problems.push(
        ...rules.openToWorldViolations(f.inputs),
        ...rules.sshViolations(f.inputs, model.config.gce.sshSourceRanges),
      );
    }
    for (const i of world.ofType(T.instance)) problems.push(...rules.ipForwardViolations(i.inputs));
    for (const p of world.ofType(T.dockerProvider)) {
      problems.push(...rules.dockerProviderViolations(p.inputs as { host?: string }));
    }
    assert.deepEqual(problems, []);
  });
});
