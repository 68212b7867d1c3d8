// Workload endpoints in the stack config: what an endpoint runs (image, command, env, secret
// env, limits, volumes, labels) or attaches, validated by the real schema with errors that
// name the key path and the value.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ConfigError, loadConfig } from "../components/config.js";
import { rawFromStackConfig } from "../components/stack-keys.js";
import { IMAGE_REF, memoryMb, pathWithin } from "../components/workload.js";
import { assertRejects, existingStack, issuesOf } from "./helpers/config.js";

type Raw = Record<string, unknown>;

function stack(endpoint: Raw, extra: Raw = {}): Raw {
  return {
    ...existingStack(),
    endpoints: [{ host: "alpha", ip: "192.168.7.1", group: "web", ...endpoint }],
    ...extra,
  };
}

const secretStack = (endpoint: Raw, secrets: Raw = { dbPassword: { secret: true } }) =>
  stack(endpoint, { stackSecrets: secrets, allowedHostPaths: ["/srv/data"] });

describe("workload endpoints: accepted", () => {
  it("an endpoint with nothing new runs the util image (the old behaviour)", () => {
    const e = loadConfig(stack({})).endpoints[0]!;
    assert.deepEqual(e.workload, { kind: "run", env: {}, secretEnv: {}, volumes: [], labels: {} });
    assert.equal(e.configPath, "endpoints[0]");
  });

  it("volumes from a listed directory, memory as MiB or with a unit", () => {
    const c = loadConfig(
      stack(
        {
          memory: 256,
          volumes: [
            { hostPath: "/srv/data/web", containerPath: "/data" },
            { hostPath: "/srv", containerPath: "/srv", readOnly: true },
          ],
        },
        { allowedHostPaths: ["/srv"] },
      ),
    );
    const w = c.endpoints[0]!.workload;
    assert.equal(w.kind, "run");
    if (w.kind !== "run") return;
    assert.equal(w.memoryMb, 256);
    assert.deepEqual(w.volumes, [
      { hostPath: "/srv/data/web", containerPath: "/data", readOnly: false },
      { hostPath: "/srv", containerPath: "/srv", readOnly: true },
    ]);
    assert.deepEqual(c.allowedHostPaths, ["/srv"]);
  });

  it("every field, with defaults filled in and env values as strings", () => {
    const image = `registry.example.com:5000/shop/web@sha256:${"a".repeat(64)}`;
    const c = loadConfig(
      secretStack(
        {
          name: "web-1",
          image,
          command: ["httpd", "-f", "-p", "8080", "-h", "/"],
          env: { PORT: 8080, DEBUG: false, GREETING: "hello world" },
          secretEnv: { DB_PASSWORD: "dbPassword" },
          workingDir: "/srv/www",
          user: "1000:1000",
          memory: "1g",
          cpus: 0.5,
          volumes: [{ hostPath: "/srv/data/web", containerPath: "/data", readOnly: true }],
          labels: { "com.example.team": "shop" },
        },
        { dbPassword: { secret: true } },
      ),
    );
    assert.deepEqual(c.endpoints[0]!.workload, {
      kind: "run",
      image,
      command: ["httpd", "-f", "-p", "8080", "-h", "/"],
      env: { PORT: "8080", DEBUG: "false", GREETING: "hello world" },
      secretEnv: { DB_PASSWORD: "dbPassword" },
      workingDir: "/srv/www",
      user: "1000:1000",
      memoryMb: 1024,
      cpus: 0.5,
      volumes: [{ hostPath: "/srv/data/web", containerPath: "/data", readOnly: true }],
      labels: { "com.example.team": "shop" },
    });
    assert.deepEqual(c.secretKeys, ["dbPassword"], "the program reads this key as a secret");
  });

  it("attach: true with a name", () => {
    const e = loadConfig(stack({ name: "legacy-db", attach: true })).endpoints[0]!;
    assert.deepEqual(e.workload, { kind: "attach" });
  });

  it("image references Docker accepts", () => {
    for (const ref of [
      "nginx",
      "nginx:1.27",
      "calico-lab/util:latest",
      "localhost:5000/app",
      "10.0.0.5:5000/team/app:v1.2.3",
      "ghcr.io/org/app_x/y-z:Tag_1",
      `busybox@sha256:${"0".repeat(64)}`,
      `busybox:1.36@sha256:${"f".repeat(64)}`,
    ]) {
      assert.ok(IMAGE_REF.test(ref), ref);
      assert.equal(loadConfig(stack({ image: ref })).endpoints[0]!.workload.kind, "run");
    }
  });

  it("memory sizes", () => {
    assert.equal(memoryMb("512m"), 512);
    assert.equal(memoryMb("2G"), 2048);
    assert.equal(memoryMb("65536k"), 64);
    assert.equal(memoryMb("12x"), undefined);
    assert.equal(pathWithin("/srv", "/srv2"), false, "a sibling with the same prefix");
    assert.equal(pathWithin("/srv", "/srv/a"), true);
  });
});

describe("workload endpoints: refused, naming the key and the value", () => {
  it("image references Docker would not pull", () => {
    for (const ref of ["Nginx:latest", "nginx:", "web server", "app@sha256:abc", "-app", "a//b"]) {
      assertRejects(stack({ image: ref }), "endpoints[0].image", /docker image reference/, ref);
    }
  });
  it("an empty command, a NUL in a word", () => {
    assertRejects(stack({ command: [] }), "endpoints[0].command", /at least one word/, []);
    assertRejects(stack({ command: ["a\0b"] }), "endpoints[0].command[0]", /NUL/, "a\0b");
  });
  it("an environment variable or label name that is not one, reported by name", () => {
    assertRejects(
      stack({ env: { "BAD-NAME": "x" } }),
      "endpoints[0].env.BAD-NAME",
      /the name "BAD-NAME" is not an environment variable name/,
      "x",
    );
    assertRejects(
      stack({ labels: { "-x": "y" } }),
      "endpoints[0].labels.-x",
      /the name "-x" is not a label key/,
      "y",
    );
  });
  it("a variable both plain and secret; a secret named like a setting", () => {
    assertRejects(
      secretStack({ env: { DB_PASSWORD: "x" }, secretEnv: { DB_PASSWORD: "dbPassword" } }),
      "endpoints[0].secretEnv.DB_PASSWORD",
      /also set in env/,
      "dbPassword",
    );
    assertRejects(
      secretStack({ secretEnv: { DB_PASSWORD: "hosts" } }, { hosts: { secret: true } }),
      "endpoints[0].secretEnv.DB_PASSWORD",
      /names a calico-docker setting/,
      "hosts",
    );
  });
  it("a secret that is not set, or set in plain text (its value never shown)", () => {
    assertRejects(
      secretStack({ secretEnv: { DB_PASSWORD: "dbPassword" } }, {}),
      "endpoints[0].secretEnv.DB_PASSWORD",
      /not set \(pulumi config set --secret dbPassword <value>\)/,
      "dbPassword",
    );
    assertRejects(
      secretStack({ secretEnv: { DB_PASSWORD: "dbPassword" } }, { dbPassword: { secret: false } }),
      "dbPassword",
      /stored in plain text/,
      "(value not shown)",
    );
  });
  it("working directory, user, memory and cpus out of shape", () => {
    assertRejects(stack({ workingDir: "srv" }), "endpoints[0].workingDir", /absolute/, "srv");
    assertRejects(
      stack({ workingDir: "/srv/../etc" }),
      "endpoints[0].workingDir",
      /normalised/,
      "/srv/../etc",
    );
    assertRejects(stack({ user: "root;id" }), "endpoints[0].user", /user like/, "root;id");
    assertRejects(stack({ memory: "lots" }), "endpoints[0].memory", /size like 512m/, "lots");
    assertRejects(stack({ memory: "4m" }), "endpoints[0].memory", /minimum of 6 MiB/, "4m");
    assertRejects(stack({ cpus: 0 }), "endpoints[0].cpus", /more than 0/, 0);
  });
  it("host paths outside the allow-list, or any host path without one", () => {
    const vol = (hostPath: string) => ({ volumes: [{ hostPath, containerPath: "/data" }] });
    assertRejects(
      stack(vol("/srv/data")),
      "endpoints[0].volumes[0].hostPath",
      /no host path is, until allowedHostPaths lists its directory/,
      "/srv/data",
    );
    assertRejects(
      stack(vol("/etc"), { allowedHostPaths: ["/srv/data"] }),
      "endpoints[0].volumes[0].hostPath",
      /outside allowedHostPaths \(\/srv\/data\)/,
      "/etc",
    );
    assertRejects(
      stack(vol("/srv/data2"), { allowedHostPaths: ["/srv/data"] }),
      "endpoints[0].volumes[0].hostPath",
      /outside allowedHostPaths/,
      "/srv/data2",
    );
    assertRejects(
      stack(vol("/srv/data/../../etc"), { allowedHostPaths: ["/srv/data"] }),
      "endpoints[0].volumes[0].hostPath",
      /normalised/,
      "/srv/data/../../etc",
    );
    assertRejects(
      stack(
        {
          volumes: [
            { hostPath: "/srv/data/a", containerPath: "/data" },
            { hostPath: "/srv/data/b", containerPath: "/data" },
          ],
        },
        { allowedHostPaths: ["/srv/data"] },
      ),
      "endpoints[0].volumes[1].containerPath",
      /duplicates volumes\[0\]/,
      "/data",
    );
    assertRejects(
      stack({}, { allowedHostPaths: ["srv"] }),
      "allowedHostPaths[0]",
      /absolute/,
      "srv",
    );
  });
  it("labels in the program's own namespace", () => {
    assertRejects(
      stack({ labels: { "calico-docker.role": "system" } }),
      "endpoints[0].labels.calico-docker.role",
      /reserved/,
      "calico-docker.role",
    );
  });
  it("no key makes a workload privileged or puts it on the host's network", () => {
    for (const [key, value] of [
      ["privileged", true],
      ["networkMode", "host"],
      ["pidMode", "host"],
      ["capabilities", { adds: ["SYS_ADMIN"] }],
    ] as const) {
      const issues = issuesOf(stack({ [key]: value }));
      assert.ok(
        issues.some((i) => i.path === "endpoints[0]" && i.message.includes(`"${key}"`)),
        `${key}: ${JSON.stringify(issues)}`,
      );
    }
  });
  it("attach: true without a name, or with fields of a container the program runs", () => {
    assertRejects(
      stack({ attach: true }),
      "endpoints[0].name",
      /required with attach: true/,
      undefined,
    );
    assertRejects(
      stack({ name: "legacy", attach: true, image: "nginx" }),
      "endpoints[0].image",
      /does not apply with attach: true/,
      "nginx",
    );
    assertRejects(
      stack({ name: "legacy", attach: true, command: ["sh"] }),
      "endpoints[0].command",
      /does not apply with attach: true/,
      ["sh"],
    );
  });
  it("registries: the password secret must be set; one entry per address", () => {
    const registries = [
      { address: "registry.example.com", username: "ci", passwordSecret: "registryToken" },
      { address: "registry.example.com", username: "ci", passwordSecret: "registryToken" },
    ];
    assertRejects(
      stack({}, { registries }),
      "registries[0].passwordSecret",
      /stack secret registryToken, which is not set/,
      "registryToken",
    );
    assertRejects(
      stack({}, { registries, stackSecrets: { registryToken: { secret: true } } }),
      "registries[1].address",
      /duplicates another registry/,
      "registry.example.com",
    );
    const ok = loadConfig(
      stack({}, { registries: [registries[0]], stackSecrets: { registryToken: { secret: true } } }),
    );
    assert.deepEqual(ok.secretKeys, ["registryToken"]);
  });
});

describe("stack secrets named by endpoints, from the stack file or the runtime", () => {
  const endpoints = [
    { host: "alpha", ip: "192.168.7.1", group: "web", secretEnv: { DB_PASSWORD: "dbPassword" } },
  ];
  it("a `secure:` value in the stack file becomes a marker; the ciphertext never travels", () => {
    const raw = rawFromStackConfig({
      "calico-docker:endpoints": endpoints,
      "calico-docker:dbPassword": { secure: "v1:AAAAciphertext" },
    });
    assert.deepEqual(raw.stackSecrets, { dbPassword: { secret: true } });
    assert.ok(!JSON.stringify(raw).includes("ciphertext"));
  });
  it("at runtime (JSON strings, decrypted values) the runtime says which keys are secret", () => {
    const entries = {
      "calico-docker:endpoints": JSON.stringify(endpoints),
      "calico-docker:dbPassword": "hunter2",
    };
    const secret = rawFromStackConfig(entries, {
      isSecret: (k) => k === "calico-docker:dbPassword",
    });
    assert.deepEqual(secret.stackSecrets, { dbPassword: { secret: true } });
    assert.ok(!JSON.stringify(secret).includes("hunter2"), "the value is never carried");
    const plain = rawFromStackConfig(entries);
    assert.deepEqual(plain.stackSecrets, { dbPassword: { secret: false } });
    assert.ok(!JSON.stringify(plain).includes("hunter2"));
  });
  it("a key nothing names is still an unknown setting", () => {
    assert.throws(
      () =>
        rawFromStackConfig({
          "calico-docker:endpoints": endpoints,
          "calico-docker:dbPasword": { secure: "v1:x" },
        }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.some(
          (i) => i.path === "dbPasword" && /not a calico-docker setting/.test(i.message),
        ),
    );
  });
});

describe("the worked example in docs/workloads.md", () => {
  const text = readFileSync(new URL("../docs/workloads.md", import.meta.url), "utf8");
  const block = /```yaml\n(config:\n[\s\S]*?)```/.exec(text)?.[1];
  it("is a stack config the program accepts (with its two secrets set)", () => {
    assert.ok(block, "the example's config block");
    const config = (parse(block) as { config: Record<string, unknown> }).config;
    const c = loadConfig(
      rawFromStackConfig({
        ...config,
        "calico-docker:sshPrivateKey": { secure: "v1:key" },
        "calico-docker:dbPassword": { secure: "v1:pw" },
      }),
    );
    assert.deepEqual(
      c.endpoints.map((e) => [e.name, e.host, e.group]),
      [
        ["web-1", "node-a", "web"],
        ["web-2", "node-b", "web"],
        ["db", "node-b", "db"],
      ],
    );
    assert.deepEqual(c.secretKeys, ["dbPassword"]);
    // web reaches db on tcp/5432 only: db admits web on that port and nothing else of web's.
    assert.deepEqual(
      c.groups.db!.inbound.filter((r) => r.group === "web"),
      [{ group: "web", protocol: "tcp", port: 5432 }],
    );
    assert.deepEqual(
      c.groups.web!.outbound.filter((r) => r.group !== "web"),
      [{ group: "db", protocol: "tcp", port: 5432 }],
    );
  });
  it("the three-line and one-line endpoints are valid endpoints", () => {
    const snippets = [...text.matchAll(/```yaml\n {4}- (\{[\s\S]*?\})\n```/g)].map((m) => m[1]!);
    assert.equal(snippets.length, 2);
    for (const s of snippets) {
      const endpoint = parse(s) as Record<string, unknown>;
      const c = loadConfig({
        platform: "existing",
        sshPrivateKey: { secret: true },
        ssh: { user: "calico" },
        hosts: [{ name: "node-a", address: "10.0.0.11" }],
        endpoints: [endpoint],
      });
      assert.equal(c.endpoints[0]!.name, endpoint.name);
    }
  });
});

describe("workload records keep every key (zod's records drop __proto__ without a word)", () => {
  // JSON.parse keeps "__proto__" as an own key, as the Pulumi runtime hands config over.
  const withProto = (value: unknown) =>
    JSON.parse(`{"__proto__": ${JSON.stringify(value)}}`) as Raw;

  it("env", () => {
    assertRejects(
      stack({ env: withProto("x") }),
      "endpoints[0].env.__proto__",
      /is not an environment variable name/,
      "x",
    );
  });

  it("labels", () => {
    assertRejects(
      stack({ labels: withProto("x") }),
      "endpoints[0].labels.__proto__",
      /is not a label key/,
      "x",
    );
  });

  it("secretEnv", () => {
    assertRejects(
      stack({ secretEnv: withProto("dbPassword") }),
      "endpoints[0].secretEnv.__proto__",
      /is not an environment variable name/,
      "dbPassword",
    );
  });

  it("stackSecrets", () => {
    assertRejects(
      stack({}, { stackSecrets: withProto({ secret: true }) }),
      "stackSecrets.__proto__",
      /is not a stack secret's name/,
      { secret: true },
    );
  });
});
