// Stack configs an attacker or a careless operator could write, each refused by the real
// schema and checks with the key path and the value (or, where the name is harmless,
// accepted and read as written): endpoint names of the host's system containers, names of
// Object's methods as secrets, variables and groups, stack keys with a second colon, and
// container paths and limits that would only fail at deploy time.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { ConfigError, loadConfig } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { rawFromStackConfig } from "../components/stack-keys.js";
import { loadStackFile } from "../components/stackfile.js";
import { assertRejects, configIssues, existingStack } from "./helpers/config.js";

type Raw = Record<string, unknown>;

function stack(endpoint: Raw, extra: Raw = {}): Raw {
  return {
    ...existingStack(),
    endpoints: [{ host: "alpha", ip: "192.168.7.1", group: "web", ...endpoint }],
    ...extra,
  };
}

const OBJECT_METHODS = ["toString", "constructor", "valueOf", "hasOwnProperty"];

describe("endpoint names of the host's system containers", () => {
  for (const name of ["bird", "aclmgr", "plugin-endpoint", "plugin-network", "felix"]) {
    it(`${name}: refused, created or attached`, () => {
      assertRejects(stack({ name }), "endpoints[0].name", /is reserved: .*has that name/, name);
      assertRejects(stack({ name, attach: true }), "endpoints[0].name", /is reserved/, name);
    });
  }
  it("names that only look alike are taken", () => {
    for (const name of ["bird2", "plugin", "Bird", "aclmgr-web"]) {
      assert.deepEqual(configIssues(stack({ name })), [], name);
    }
  });
});

describe("names of Object's methods are ordinary names", () => {
  const secrets = (names: string[]) => Object.fromEntries(names.map((n) => [n, { secret: true }]));

  for (const method of OBJECT_METHODS) {
    it(`${method} as a secret variable, a secret's name and a group`, () => {
      // A variable of that name, secret, with nothing of that name in env.
      const asVariable = loadConfig(
        stack({ secretEnv: { [method]: "dbPassword" } }, { stackSecrets: secrets(["dbPassword"]) }),
      );
      const w = asVariable.endpoints[0]!.workload;
      assert.ok(w.kind === "run" && Object.hasOwn(w.secretEnv, method));
      // A secret of that name, set as a secret: accepted; not set: "not set", by name.
      const named = stack({ secretEnv: { DB: method } }, { stackSecrets: secrets([method]) });
      assert.deepEqual(loadConfig(named).secretKeys, [method]);
      assertRejects(
        stack({ secretEnv: { DB: method } }),
        "endpoints[0].secretEnv.DB",
        new RegExp(`names the stack secret ${method}, which is not set`),
        method,
      );
      // A group of that name without rules gets the prototype's policy.
      const model = buildModel(loadConfig(stack({ group: method })));
      const group = model.groups.find((g) => g.name === method)!;
      assert.equal(group.explicit, false);
      assert.deepEqual(group.members, ["192_168_7_1"]);
    });
  }

  it("from the stack file: a secret called constructor stored with --secret", () => {
    const raw = rawFromStackConfig({
      "calico-docker:platform": "existing",
      "calico-docker:sshPrivateKey": { secure: "v1:x" },
      "calico-docker:ssh": { user: "ops" },
      "calico-docker:hosts": [{ name: "alpha", address: "10.0.0.11" }],
      "calico-docker:endpoints": [
        { host: "alpha", ip: "192.168.7.1", group: "g", secretEnv: { X: "constructor" } },
      ],
      "calico-docker:constructor": { secure: "v1:AAAA" },
    });
    assert.deepEqual(loadConfig(raw).secretKeys, ["constructor"]);
  });
});

describe("stack keys are exactly calico-docker:<setting>", () => {
  const hosts = [{ name: "alpha", address: "10.0.0.11" }];
  const later = [{ name: "intruder", address: "10.0.0.99" }];

  it("a second colon is refused, naming the key, and never replaces the key before it", () => {
    for (const extra of ["calico-docker:hosts:later", "calico-docker:config:hosts"]) {
      const entries = { "calico-docker:hosts": hosts, [extra]: later };
      assert.throws(
        () => rawFromStackConfig(entries),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.issues.length === 1 &&
          e.issues[0]!.path === extra.slice("calico-docker:".length) &&
          e.issues[0]!.value === extra &&
          /exactly calico-docker:<setting>, with one colon/.test(e.issues[0]!.message) &&
          e.message.includes(extra),
      );
    }
  });

  it("from a stack file, as npm run render reads it", () => {
    const dir = mkdtempSync(join(tmpdir(), "cdc-keys-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "Pulumi.twice.yaml");
    const config = {
      "calico-docker:platform": "existing",
      "calico-docker:sshPrivateKey": { secure: "v1:x" },
      "calico-docker:ssh": { user: "ops" },
      "calico-docker:hosts": hosts,
      "calico-docker:hosts:later": later,
    };
    writeFileSync(file, stringify({ config }));
    assert.throws(() => loadStackFile(file), /hosts:later: is not a calico-docker setting/);
    // Keys of other namespaces stay ignored, colons and all.
    delete (config as Raw)["calico-docker:hosts:later"];
    writeFileSync(file, stringify({ config: { ...config, "gcp:project:x": "y" } }));
    assert.deepEqual(
      loadStackFile(file).hosts.map((h) => h.name),
      ["alpha"],
    );
  });
});

describe("container paths and limits that would fail only at deploy time", () => {
  const volumeAt = (containerPath: string) =>
    stack(
      { volumes: [{ hostPath: "/srv/data", containerPath }] },
      { allowedHostPaths: ["/srv/data"] },
    );

  it("a volume over /, /proc, /sys or /dev, or below them", () => {
    assertRejects(
      volumeAt("/"),
      "endpoints[0].volumes[0].containerPath",
      /is the container's root/,
      "/",
    );
    for (const path of ["/proc", "/proc/sys/net", "/sys", "/sys/fs/cgroup", "/dev", "/dev/shm"]) {
      assertRejects(
        volumeAt(path),
        "endpoints[0].volumes[0].containerPath",
        /\/proc, \/sys and \/dev are not for volumes/,
        path,
      );
    }
    for (const path of ["/data", "/procfs", "/devices", "/srv/proc", "/system"]) {
      assert.deepEqual(configIssues(volumeAt(path)), [], path);
    }
  });

  it("cpus below Docker's 0.01", () => {
    for (const cpus of [0.001, 0.0099]) {
      assertRejects(stack({ cpus }), "endpoints[0].cpus", /is below 0\.01/, cpus);
    }
    assert.equal(loadConfig(stack({ cpus: 0.01 })).endpoints[0]!.workload.kind, "run");
  });

  it("memory above 32 TiB, GCE's largest machines", () => {
    for (const memory of ["32769g", "9999999g", 33554433]) {
      assertRejects(
        stack({ memory }),
        "endpoints[0].memory",
        /is above 32 TiB \(33554432 MiB\)/,
        memory,
      );
    }
    const w = loadConfig(stack({ memory: "32768g" })).endpoints[0]!.workload;
    assert.ok(w.kind === "run" && w.memoryMb === 33554432);
  });
});
