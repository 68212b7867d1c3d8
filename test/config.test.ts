import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ConfigError, loadConfig } from "../components/config.js";
import { rawFromStackConfig } from "../components/stack-keys.js";
import { loadStackFile, stackFilePath } from "../components/stackfile.js";
import { assertRejects, existingStack, issuesOf } from "./helpers/config.js";

/** A small valid GCE stack; each test breaks one thing. */
function gceStack(): Record<string, unknown> {
  return {
    platform: "gce",
    gce: { sshSourceRanges: ["203.0.113.0/24"] },
    hosts: [
      { name: "host-1", zone: "asia-east1-a" },
      { name: "host-2", zone: "us-central1-a" },
    ],
    endpoints: [
      { host: "host-1", ip: "192.168.1.1", group: "web" },
      { host: "host-2", ip: "192.168.1.3", group: "web" },
    ],
  };
}

describe("loadConfig accepts and defaults", () => {
  it("the seed topology on GCE, with the seed's defaults", () => {
    const c = loadConfig(gceStack());
    assert.equal(c.platform, "gce");
    assert.equal(c.controller, "host-1");
    assert.equal(c.endpointPool, "192.168.0.0/16");
    assert.equal(c.bgp.enabled, false, "GCE runs without BIRD by default, as the seed");
    assert.equal(c.bgp.asNumber, 64511);
    assert.equal(c.gce.image, "projects/kinvolk-public/global/images/family/flatcar-stable");
    assert.deepEqual(
      c.endpoints.map((e) => e.name),
      ["192_168_1_1", "192_168_1_3"],
      "default names from the IP, as the seed",
    );
    assert.deepEqual(c.images, {
      felix: "calico:felix",
      bird: "calico:bird",
      plugin: "calico:plugin",
      util: "calico:util",
    });
    assert.equal(c.sshKeySupplied, false);
  });

  it("one regional subnet per region, and host addresses allocated inside them", () => {
    const c = loadConfig(gceStack());
    assert.deepEqual(c.gce.subnets, [
      { region: "asia-east1", cidr: "10.240.0.0/17" },
      { region: "us-central1", cidr: "10.240.128.0/17" },
    ]);
    assert.deepEqual(
      c.hosts.map((h) => [h.name, h.region, h.internalAddress]),
      [
        ["host-1", "asia-east1", "10.240.0.2"],
        ["host-2", "us-central1", "10.240.128.2"],
      ],
    );
  });

  it("skips explicitly given internal addresses when allocating", () => {
    const raw = gceStack();
    raw.hosts = [
      { name: "a", zone: "us-central1-a" },
      { name: "b", zone: "us-central1-b", internalAddress: "10.240.0.2" },
      { name: "c", zone: "us-central1-c" },
    ];
    raw.endpoints = [];
    const c = loadConfig(raw);
    assert.deepEqual(
      c.hosts.map((h) => h.internalAddress),
      ["10.240.0.3", "10.240.0.2", "10.240.0.4"],
    );
  });

  it("existing hosts: BGP on by default, internal address = SSH address", () => {
    const c = loadConfig(existingStack());
    assert.equal(c.bgp.enabled, true);
    assert.deepEqual(
      c.hosts.map((h) => [h.internalAddress, h.sshUser]),
      [
        ["10.0.0.11", "ops"],
        ["10.0.0.12", "ops"],
      ],
    );
    assert.equal(c.sshKeySupplied, true);
  });

  it("route reflectors default to the controller", () => {
    const raw = existingStack();
    raw.bgp = { peering: "route-reflector" };
    raw.controller = "beta";
    assert.deepEqual(loadConfig(raw).bgp.routeReflectors, ["beta"]);
  });
});

describe("loadConfig rejects, naming the key path and the value", () => {
  it("a malformed endpoint IP", () => {
    const raw = gceStack();
    (raw.endpoints as Record<string, unknown>[])[1]!.ip = "192.168.1.256";
    assertRejects(raw, "endpoints[1].ip", /not an IPv4 address/, "192.168.1.256");
  });

  it("a malformed CIDR, and one with host bits set", () => {
    const raw = gceStack();
    raw.endpointPool = "192.168.0.0/33";
    assertRejects(raw, "endpointPool", /prefix length over 32/, "192.168.0.0/33");
    raw.endpointPool = "192.168.1.7/24";
    assertRejects(raw, "endpointPool", /did you mean 192\.168\.1\.0\/24/, "192.168.1.7/24");
    raw.endpointPool = "banana";
    assertRejects(raw, "endpointPool", /not an IPv4 CIDR/, "banana");
  });

  it("an endpoint IP outside the pool", () => {
    const raw = gceStack();
    (raw.endpoints as Record<string, unknown>[])[0]!.ip = "172.16.0.5";
    assertRejects(raw, "endpoints[0].ip", /outside endpointPool 192\.168\.0\.0\/16/, "172.16.0.5");
  });

  it("an endpoint IP outside its host's block", () => {
    const raw = gceStack();
    raw.hosts = [
      { name: "host-1", zone: "asia-east1-a", endpointBlock: "192.168.1.0/24" },
      { name: "host-2", zone: "us-central1-a", endpointBlock: "192.168.2.0/24" },
    ];
    assertRejects(raw, "endpoints[1].ip", /outside host host-2's endpointBlock/, "192.168.1.3");
  });

  it("duplicate endpoint IPs", () => {
    const raw = gceStack();
    (raw.endpoints as Record<string, unknown>[])[1]!.ip = "192.168.1.1";
    assertRejects(raw, "endpoints[1].ip", /duplicates endpoints\[0\]\.ip/, "192.168.1.1");
  });

  it("duplicate endpoint names, given or defaulted", () => {
    const raw = gceStack();
    (raw.endpoints as Record<string, unknown>[])[1]!.name = "192_168_1_1";
    assertRejects(raw, "endpoints[1].name", /duplicates endpoints\[0\]'s name/, "192_168_1_1");
  });

  it("an endpoint name that would overwrite the plugin's felix.txt or groups.txt", () => {
    for (const name of ["felix", "groups"]) {
      const raw = gceStack();
      (raw.endpoints as Record<string, unknown>[])[0]!.name = name;
      assertRejects(raw, "endpoints[0].name", /reserved/, name);
    }
  });

  it("duplicate host names", () => {
    const raw = gceStack();
    (raw.hosts as Record<string, unknown>[])[1]!.name = "host-1";
    assertRejects(raw, "hosts[1].name", /duplicates another host/, "host-1");
  });

  it("an endpoint on an unknown host", () => {
    const raw = gceStack();
    (raw.endpoints as Record<string, unknown>[])[1]!.host = "host-9";
    assertRejects(raw, "endpoints[1].host", /not the name of a host/, "host-9");
  });

  it("a pool that overlaps the host subnet", () => {
    const raw = gceStack();
    raw.endpointPool = "10.0.0.0/8";
    raw.endpoints = [];
    assertRejects(raw, "endpointPool", /overlaps the host subnet/, "10.0.0.0/8");
  });

  it("an existing host whose address lies in the pool", () => {
    const raw = existingStack();
    (raw.hosts as Record<string, unknown>[])[0]!.address = "192.168.9.9";
    assertRejects(raw, "hosts[0].internalAddress", /lies in endpointPool/, "192.168.9.9");
  });

  it("overlapping host blocks", () => {
    const raw = gceStack();
    raw.hosts = [
      { name: "host-1", zone: "asia-east1-a", endpointBlock: "192.168.0.0/23" },
      { name: "host-2", zone: "us-central1-a", endpointBlock: "192.168.1.0/24" },
    ];
    assertRejects(
      raw,
      "hosts[1].endpointBlock",
      /overlaps hosts\[0\]\.endpointBlock/,
      "192.168.1.0/24",
    );
  });

  it("a host block outside the pool", () => {
    const raw = gceStack();
    raw.hosts = [{ name: "host-1", endpointBlock: "172.16.0.0/24" }];
    raw.endpoints = [];
    assertRejects(raw, "hosts[0].endpointBlock", /not inside endpointPool/, "172.16.0.0/24");
  });

  it("host-block routes without a block", () => {
    const raw = gceStack();
    raw.gce = { sshSourceRanges: ["203.0.113.0/24"], routeGranularity: "host-block" };
    assertRejects(raw, "hosts[0].endpointBlock", /required with gce.routeGranularity/, undefined);
  });

  for (const name of [
    "a;b",
    "Host1",
    "1host",
    "host_1",
    "-host",
    "host-",
    "a".repeat(64),
    "../x",
    "$(reboot)",
  ]) {
    it(`a host name that is not a valid GCE name or could break a shell: ${JSON.stringify(name.slice(0, 12))}`, () => {
      const raw = gceStack();
      (raw.hosts as Record<string, unknown>[])[0]!.name = name;
      assertRejects(raw, "hosts[0].name", /RFC 1035/, name);
    });
  }

  for (const name of [
    "a b",
    "x;rm -rf",
    "../etc/passwd",
    ".hidden",
    "a/b",
    "`id`",
    "a".repeat(64),
  ]) {
    it(`an endpoint or group name that could break a shell or file path: ${JSON.stringify(name.slice(0, 12))}`, () => {
      const raw = gceStack();
      (raw.endpoints as Record<string, unknown>[])[0]!.name = name;
      assertRejects(raw, "endpoints[0].name", /not a safe name/, name);
      const raw2 = gceStack();
      (raw2.endpoints as Record<string, unknown>[])[0]!.group = name;
      assertRejects(raw2, "endpoints[0].group", /not a safe group name/, name);
    });
  }

  it("a controller that is not a host", () => {
    const raw = gceStack();
    raw.controller = "host-3";
    assertRejects(raw, "controller", /not the name of a host/, "host-3");
  });

  for (const asNumber of [0, -1, 4294967296, 1.5]) {
    it(`AS number out of range: ${asNumber}`, () => {
      const raw = gceStack();
      raw.bgp = { asNumber };
      const issues = issuesOf(raw);
      assert.equal(issues[0]?.path, "bgp.asNumber");
      assert.equal(issues[0]?.value, asNumber);
    });
  }

  it("an empty host list", () => {
    const raw = gceStack();
    raw.hosts = [];
    raw.endpoints = [];
    assertRejects(raw, "hosts", /at least one host/, []);
  });

  it("SSH open to the whole internet, or to nobody", () => {
    const raw = gceStack();
    raw.gce = { sshSourceRanges: ["203.0.113.0/24", "0.0.0.0/0"] };
    assertRejects(raw, "gce.sshSourceRanges[1]", /whole internet/, "0.0.0.0/0");
    raw.gce = {};
    assertRejects(raw, "gce.sshSourceRanges", /must list the ranges/, undefined);
  });

  it("SSH open to the world in halves or slices, or through one wide range", () => {
    const raw = gceStack();
    raw.gce = { sshSourceRanges: ["0.0.0.0/1", "128.0.0.0/1"] };
    const issues = issuesOf(raw);
    for (const i of [0, 1]) {
      assert.match(
        issues.find((x) => x.path === `gce.sshSourceRanges[${i}]`)?.message ?? "",
        /is wider than \/16 \(2,147,483,648 addresses/,
        JSON.stringify(issues),
      );
    }
    // Each range allowed alone, too many together: six public /16s.
    const six = ["1", "2", "3", "4", "5", "6"].map((n) => `${n}.1.0.0/16`);
    raw.gce = { sshSourceRanges: six };
    assertRejects(
      raw,
      "gce.sshSourceRanges",
      /together cover 393,216 public addresses, 0\.0106% of the public IPv4 space; at most 0\.01% \(370,225 addresses\)/,
      six,
    );
    assert.ok(!issuesOf(raw).some((i) => i.path.startsWith("gce.sshSourceRanges[")));
    // Five are within the share; overlapping ranges count once.
    raw.gce = { sshSourceRanges: [...six.slice(0, 5), "1.1.2.0/24"] };
    assert.doesNotThrow(() => loadConfig(raw));
    raw.gce = { sshSourceRanges: ["198.51.100.0/24", "8.8.0.0/15"] };
    assertRejects(raw, "gce.sshSourceRanges[1]", /is wider than \/16/, "8.8.0.0/15");
  });

  it("SSH from private space is not public space, but a wide range is still refused", () => {
    const raw = gceStack();
    raw.gce = {
      sshSourceRanges: [
        "10.0.0.0/16",
        "10.1.0.0/16",
        "10.2.0.0/16",
        "10.3.0.0/16",
        "10.4.0.0/16",
        "10.5.0.0/16",
      ],
    };
    assert.doesNotThrow(() => loadConfig(raw));
    raw.gce = { sshSourceRanges: ["10.0.0.0/8"] };
    assertRejects(raw, "gce.sshSourceRanges[0]", /is wider than \/16/, "10.0.0.0/8");
  });

  it("direct BGP sessions on GCE, where hosts share no link", () => {
    const raw = gceStack();
    raw.bgp = { enabled: true, session: "direct" };
    assertRejects(raw, "bgp.session", /multihop/, "direct");
  });

  it("an existing host without an address, or without a key", () => {
    const raw = existingStack();
    delete (raw.hosts as Record<string, unknown>[])[1]!.address;
    delete raw.sshPrivateKey;
    const issues = issuesOf(raw);
    assert.ok(issues.some((i) => i.path === "hosts[1].address" && /required/.test(i.message)));
    assert.ok(issues.some((i) => i.path === "sshPrivateKey" && /--secret/.test(i.message)));
  });

  it("a rule with both group and cidr, or a port without a port protocol", () => {
    const raw = gceStack();
    raw.groups = {
      web: {
        inbound: [
          { group: "web", cidr: "10.0.0.0/8" },
          { cidr: "10.0.0.0/8", protocol: "icmp", port: 80 },
        ],
      },
    };
    const issues = issuesOf(raw);
    assert.ok(
      issues.some((i) => i.path === "groups.web.inbound[0]" && /exactly one/.test(i.message)),
    );
    assert.ok(
      issues.some((i) => i.path === "groups.web.inbound[1].port" && /tcp, udp/.test(i.message)),
    );
  });

  it("a rule naming a group nobody is in", () => {
    const raw = gceStack();
    raw.groups = { web: { inbound: [{ group: "wbe" }] } };
    assertRejects(raw, "groups.web.inbound[0].group", /not a group of any endpoint/, "wbe");
  });

  it("a group named __proto__, which zod's records drop without a word", () => {
    // As the Pulumi runtime hands it over (a JSON string) and as a stack file gives it (YAML).
    const json = rawFromStackConfig({
      ...Object.fromEntries(Object.entries(gceStack()).map(([k, v]) => [`calico-docker:${k}`, v])),
      "calico-docker:groups": '{"__proto__": {"inbound": [{"cidr": "0.0.0.0/0"}]}}',
    });
    assertRejects(json, "groups.__proto__", /is not a valid group name/, {
      inbound: [{ cidr: "0.0.0.0/0" }],
    });
    const yaml = { ...gceStack(), groups: parse("__proto__: { inbound: [ { group: web } ] }\n") };
    assertRejects(yaml, "groups.__proto__", /is not a valid group name/, {
      inbound: [{ group: "web" }],
    });
  });

  it("unknown keys, so a typo never falls back to a default", () => {
    const raw = gceStack();
    (raw.hosts as Record<string, unknown>[])[0]!.zoen = "asia-east1-b";
    const issues = issuesOf(raw);
    assert.equal(issues[0]?.path, "hosts[0]");
    assert.match(issues[0]!.message, /zoen/);
  });

  it("every problem at once, in one error", () => {
    const raw = gceStack();
    raw.controller = "nobody";
    (raw.endpoints as Record<string, unknown>[])[0]!.host = "nowhere";
    (raw.endpoints as Record<string, unknown>[])[1]!.ip = "10.9.9.9";
    const paths = issuesOf(raw).map((i) => i.path);
    assert.deepEqual(paths.sort(), ["controller", "endpoints[0].host", "endpoints[1].ip"]);
  });
});

describe("reading stack config like the program does", () => {
  it("turns Pulumi's JSON strings and YAML objects into the same raw config", () => {
    const fromRuntime = rawFromStackConfig({
      "calico-docker:hosts": JSON.stringify([{ name: "h1" }]),
      "calico-docker:platform": "gce",
      "gcp:project": "someone-elses-namespace",
    });
    const fromYaml = rawFromStackConfig({
      "calico-docker:hosts": [{ name: "h1" }],
      "calico-docker:platform": "gce",
    });
    assert.deepEqual(fromRuntime, fromYaml);
    assert.deepEqual(fromRuntime, { hosts: [{ name: "h1" }], platform: "gce" });
  });

  it("keeps the secret key's value out of the config", () => {
    const raw = rawFromStackConfig({ "calico-docker:sshPrivateKey": "-----BEGIN OPENSSH..." });
    assert.deepEqual(raw, { sshPrivateKey: { secret: true } });
    assert.ok(!JSON.stringify(raw).includes("BEGIN"));
  });

  it("rejects an unknown key of ours, and broken JSON", () => {
    assert.throws(
      () => rawFromStackConfig({ "calico-docker:host": "[]", "calico-docker:gce": "{oops" }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.some((i) => i.path === "host" && /not a calico-docker setting/.test(i.message)) &&
        e.issues.some((i) => i.path === "gce" && /not valid JSON/.test(i.message)),
    );
  });

  it("the dev stack file is valid and is the seed's topology", () => {
    const c = loadStackFile(stackFilePath("dev"));
    assert.deepEqual(
      c.hosts.map((h) => [h.name, h.zone]),
      [
        ["host-1", "asia-east1-a"],
        ["host-2", "us-central1-a"],
      ],
    );
    assert.deepEqual(
      c.endpoints.map((e) => [e.ip, e.host]),
      [
        ["192.168.1.1", "host-1"],
        ["192.168.1.2", "host-1"],
        ["192.168.1.3", "host-2"],
      ],
    );
  });

  it("refuses a stack name that could escape the directory", () => {
    assert.throws(() => stackFilePath("../etc"), /may only hold/);
  });
});
