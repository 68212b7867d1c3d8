// The real program (index.ts) under Pulumi mocks, with a stack whose endpoints run the
// stack's own workloads: an image from a private registry with a command, environment, a
// secret environment value, limits, a volume and labels; a second image on the other host;
// an attached container; and a plain util endpoint. The graph shows where each image is
// pulled, what each container is made with, that the attached container is never created,
// and that no secret appears in plain text in any recorded input or output.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { shellcheck } from "./helpers/tools.js";
import {
  installMocks,
  isSecretValue,
  mockContainerId,
  MOCK_KEY,
  T,
  valueOf,
  type Recorded,
} from "./program-mocks.js";

const DB_PASSWORD = "s3cret-db-pw-7Qx9";
const REGISTRY_TOKEN = "tok-registry-Zk41";
const SSH_KEY = MOCK_KEY.privatePem;
const WEB_IMAGE = `registry.example.com/shop/web@sha256:${"ab".repeat(32)}`;

const entries: Record<string, unknown> = {
  "calico-docker:platform": "existing",
  "calico-docker:ssh": { user: "ops" },
  "calico-docker:hosts": [
    { name: "alpha", address: "10.0.0.11" },
    { name: "beta", address: "10.0.0.12" },
  ],
  "calico-docker:allowedHostPaths": ["/srv/calico-data"],
  "calico-docker:registries": [
    { address: "registry.example.com", username: "ci", passwordSecret: "registryToken" },
  ],
  "calico-docker:endpoints": [
    {
      name: "web-1",
      host: "alpha",
      ip: "192.168.7.1",
      group: "web",
      image: WEB_IMAGE,
      command: ["httpd", "-f", "-p", "8080", "-h", "/srv/www"],
      env: { PORT: 8080, MODE: "production" },
      secretEnv: { DB_PASSWORD: "dbPassword" },
      workingDir: "/srv/www",
      user: "1000:1000",
      memory: "256m",
      cpus: 0.5,
      volumes: [{ hostPath: "/srv/calico-data/web", containerPath: "/data", readOnly: true }],
      labels: { "com.example.team": "shop" },
    },
    { name: "db", host: "beta", ip: "192.168.7.2", group: "db", image: "postgres:16" },
    { name: "legacy", host: "beta", ip: "192.168.7.3", group: "web", attach: true },
    { host: "alpha", ip: "192.168.7.4", group: "web" },
  ],
  "calico-docker:sshPrivateKey": SSH_KEY,
  "calico-docker:dbPassword": DB_PASSWORD,
  "calico-docker:registryToken": REGISTRY_TOKEN,
};
const secretKeys = ["sshPrivateKey", "dbPassword", "registryToken"].map(
  (k) => `calico-docker:${k}`,
);
const world = await installMocks(entries, { stack: "workloads", secretKeys });
const program = await import("../index.js");
const { attachLookupScript } = await import("../components/render/index.js");
const { buildModel } = await import("../components/model.js");
const { loadConfig } = await import("../components/config.js");
const { rawFromStackConfig } = await import("../components/stack-keys.js");
const render = await import("../components/render/index.js");
const { endpointOf } = await import("./helpers/stacks.js");

const endpointsOut = await valueOf(program.endpoints);
await world.settle();
after(() => world.cleanup());

const model = buildModel(
  loadConfig(rawFromStackConfig(entries, { isSecret: (k) => secretKeys.includes(k) })),
);
const dockerHost = (r: Recorded) => /::calico-([a-z]+)-docker::/.exec(r.provider ?? "")?.[1];
const containerNamed = (name: string) => {
  const found = world.ofType(T.container).filter((c) => c.inputs.name === name);
  assert.equal(found.length, 1, `one container named ${name}`);
  return found[0]!;
};
const labels = (c: Recorded) =>
  Object.fromEntries(
    (c.inputs.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]),
  );

/** Every place a plain string (not inside a secret wrapper) contains `needle`. */
function plainLeaks(value: unknown, needle: string, path = "$"): string[] {
  if (isSecretValue(value)) return [];
  if (typeof value === "string") return value.includes(needle) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainLeaks(v, needle, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => plainLeaks(v, needle, `${path}.${k}`));
  }
  return [];
}

describe("workload images are pulled on the endpoint's own host", () => {
  it("one pull per endpoint that names an image, through that host's docker provider", () => {
    const pulls = world.ofType(T.remoteImage);
    assert.deepEqual(
      pulls.map((p) => [p.name, dockerHost(p), p.inputs.name, p.inputs.keepLocally]).sort(),
      [
        ["calico-ep-db-image", "beta", "postgres:16", true],
        ["calico-ep-web-1-image", "alpha", WEB_IMAGE, true],
      ],
    );
  });
  it("the containers run the pulled images (by digest when the stack pins one)", () => {
    assert.equal(containerNamed("web-1").inputs.image, WEB_IMAGE);
    assert.equal(dockerHost(containerNamed("web-1")), "alpha");
    assert.equal(containerNamed("db").inputs.image, "postgres:16");
    assert.equal(dockerHost(containerNamed("db")), "beta");
  });
  it("an endpoint that names no image still runs the util image built on its host", () => {
    const util = containerNamed("192_168_7_4");
    assert.match(String(util.inputs.image), /^sha256:[0-9a-f]{64}$/);
    assert.equal(dockerHost(util), "alpha");
  });
  it("every host's Docker logs in to the private registry, the password a secret", () => {
    const providers = world.ofType(T.dockerProvider);
    assert.equal(providers.length, 2);
    for (const p of providers) {
      // Provider inputs travel as JSON text.
      const auth = (JSON.parse(String(p.inputs.registryAuth)) as Record<string, unknown>[])[0]!;
      assert.deepEqual(
        [auth.address, auth.username, auth.password],
        ["registry.example.com", "ci", REGISTRY_TOKEN],
      );
      assert.equal(isSecretValue(p.raw.registryAuth), true);
      assert.deepEqual(plainLeaks(p.raw, REGISTRY_TOKEN), [], "wrapped as a secret");
    }
  });
});

describe("the workload container is made as the stack says, and confined", () => {
  const web = containerNamed("web-1");
  it("command, working directory, user, limits and volume", () => {
    assert.deepEqual(web.inputs.command, ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]);
    assert.equal(web.inputs.workingDir, "/srv/www");
    assert.equal(web.inputs.user, "1000:1000");
    assert.equal(web.inputs.memory, 256);
    assert.equal(web.inputs.cpus, "0.5");
    assert.deepEqual(web.inputs.volumes, [
      { hostPath: "/srv/calico-data/web", containerPath: "/data", readOnly: true },
    ]);
  });
  it("plain environment in sorted order, then the secret one", () => {
    assert.deepEqual(web.inputs.envs, [
      "MODE=production",
      "PORT=8080",
      `DB_PASSWORD=${DB_PASSWORD}`,
    ]);
    // One secret value makes the whole list a secret in the engine (a preview shows
    // [secret]); the plain values are in the stack file for anyone who needs them.
    assert.equal(isSecretValue(web.raw.envs), true, "the list travels as a secret");
    assert.equal(isSecretValue(containerNamed("db").raw.image), false);
  });
  it("no network of its own, never privileged, the program's labels and the stack's", () => {
    for (const name of ["web-1", "db", "192_168_7_4"]) {
      const c = containerNamed(name);
      assert.equal(c.inputs.networkMode, "none", name);
      assert.equal(c.inputs.privileged, false, name);
      assert.equal(labels(c)["calico-docker.role"], "endpoint", name);
      assert.equal(labels(c)["calico-docker.endpoint"], name);
    }
    assert.equal(labels(web)["com.example.team"], "shop");
  });
  it("the wiring and data file follow the workload container's id", () => {
    const id = mockContainerId("calico-ep-web-1");
    const wiring = world.byName("calico-ep-web-1-wiring");
    assert.deepEqual(wiring.inputs.triggers, [id]);
    assert.equal(wiring.inputs.stdin, render.renderEndpointScript(endpointOf(model, "web-1"), id));
    const data = world.byName("calico-ep-web-1-data");
    assert.equal(data.inputs.stdin, render.renderEndpointData(endpointOf(model, "web-1"), id));
  });
});

describe("an attached container is found and wired, never created", () => {
  const legacy = model.endpoints.find((e) => e.name === "legacy")!;
  it("no container resource, no image pull for it", () => {
    assert.equal(world.ofType(T.container).filter((c) => c.inputs.name === "legacy").length, 0);
    assert.equal(
      world.resources.filter((r) => r.name.startsWith("calico-ep-legacy-image")).length,
      0,
    );
  });
  it("a lookup on its host, with no delete (destroy leaves the container alone)", () => {
    const lookup = world.byName("calico-ep-legacy-attach");
    assert.equal((lookup.inputs.connection as { host: string }).host, "10.0.0.12");
    assert.equal(lookup.inputs.create, attachLookupScript(legacy));
    assert.equal(lookup.inputs.delete, undefined);
  });
  it("wired with the id the lookup found; destroy runs the script's remove", () => {
    const id = mockContainerId("calico-ep-legacy-attach");
    const wiring = world.byName("calico-ep-legacy-wiring");
    assert.deepEqual(wiring.inputs.triggers, [id]);
    assert.equal(wiring.inputs.stdin, render.renderEndpointScript(endpointOf(model, "legacy"), id));
    assert.match(String(wiring.inputs.delete), /endpoint-legacy\.sh' remove/);
    assert.ok(
      !String(wiring.inputs.delete).includes("docker"),
      "remove never touches the container",
    );
    assert.equal(
      world.byName("calico-ep-legacy-data").inputs.stdin,
      render.renderEndpointData(endpointOf(model, "legacy"), id),
    );
  });
  it("the stack output says which endpoints are attached and what the others run", () => {
    const row = (n: string) => endpointsOut.find((e) => e.name === n)!;
    assert.deepEqual([row("legacy").attached, row("legacy").image], [true, ""]);
    assert.deepEqual([row("web-1").attached, row("web-1").image], [false, WEB_IMAGE]);
    assert.equal(row("192_168_7_4").image, "calico:util");
    assert.equal(row("legacy").containerId, mockContainerId("calico-ep-legacy-attach"));
  });
});

describe("the lookup, run by a real shell against a stand-in docker", () => {
  const legacy = model.endpoints.find((e) => e.name === "legacy")!;
  const script = attachLookupScript(legacy);
  const dir = mkdtempSync(join(tmpdir(), "calico-attach-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const id = "c".repeat(64);
  const lookup = (dockerOut: string, dockerStatus: number) => {
    writeFileSync(
      join(dir, "docker"),
      `#!/bin/sh\nprintf '%s\\n' ${JSON.stringify(dockerOut)}\nexit ${dockerStatus}\n`,
    );
    chmodSync(join(dir, "docker"), 0o755);
    return spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: { PATH: `${dir}:/usr/bin:/bin` },
    });
  };
  it("passes shellcheck", () => {
    const r = shellcheck([`#!/bin/sh\n${script}\n`]);
    assert.ok(r.ok, r.output);
  });
  it("prints the id of a running --net=none container", () => {
    const r = lookup(`${id} true none`, 0);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), id);
  });
  it("fails naming the endpoint's key when the container is missing", () => {
    const r = lookup("Error: No such object: legacy", 1);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /endpoints\[2\] \(legacy, attach: true\) on host beta: there is no container named legacy/,
    );
    assert.match(r.stderr, /No such object/);
  });
  it("fails when it is stopped, or on the host's (or any other) network", () => {
    const stopped = lookup(`${id} false none`, 0);
    assert.equal(stopped.status, 1);
    assert.match(stopped.stderr, /endpoints\[2\].*is not running/);
    for (const mode of ["host", "bridge", "container:abc"]) {
      const r = lookup(`${id} true ${mode}`, 0);
      assert.equal(r.status, 1, mode);
      assert.match(r.stderr, new RegExp(`endpoints\\[2\\].*network mode ${mode}; .*--net=none`));
    }
  });
});

describe("secrets stay secret", () => {
  it("no recorded input or output holds a secret in plain text", () => {
    for (const secret of [DB_PASSWORD, REGISTRY_TOKEN]) {
      const leaks = world.resources.flatMap((r) =>
        plainLeaks(r.raw, secret).map((p) => `${r.type} ${r.name} ${p}`),
      );
      assert.deepEqual(leaks, [], secret);
    }
  });
  it("the stack outputs hold none of them, and the container's secret env is a secret", async () => {
    for (const out of [program.hosts, program.endpoints, program.verify]) {
      const text = JSON.stringify(await valueOf(out as pulumi.Output<unknown>));
      assert.ok(!text.includes(DB_PASSWORD) && !text.includes(REGISTRY_TOKEN));
    }
  });
  it("the secret env value did reach the container (the check above is not vacuous)", () => {
    const web = containerNamed("web-1");
    assert.ok(JSON.stringify(web.inputs).includes(DB_PASSWORD));
    assert.ok(JSON.stringify(web.raw).includes(DB_PASSWORD), "inside its secret wrapper");
  });
});
