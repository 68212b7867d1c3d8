// Each judge of npm run status on its own, on small recorded replies of the real tools
// (iproute2 6.1 `ip -j`, BIRD 1.6 `birdc show protocols`, `docker inspect` with the engine's
// format, `iptables -S`, `iptables-save`, `sha256sum`): what it finds, and what it names.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { buildModel } from "../components/model.js";
import { renderPluginData } from "../components/render/index.js";
import { readFacts } from "../status/facts.js";
import { judgeAgent } from "../status/judges/agent.js";
import { judgeBgp } from "../status/judges/bgp.js";
import { judgeContainers } from "../status/judges/containers.js";
import { judgeEndpoints } from "../status/judges/endpoints.js";
import { judgeFelix } from "../status/judges/felix.js";
import type { JudgeInput, Verdict } from "../status/judges/judge.js";
import { judgePluginData } from "../status/judges/plugin-data.js";
import { judgeRoutes } from "../status/judges/routes.js";
import { judgeSnat } from "../status/judges/snat.js";
import { parseContainers, parseRoutes } from "../status/parse.js";
import { parseOutputs, stackTarget } from "../status/stack.js";
import type { KernelRoute, StatusTarget } from "../status/types.js";
import { stackWith } from "./helpers/lab.js";

// The dev stack with BGP: host-1 (controller; 192.168.1.1 and .2), host-2 (192.168.1.3).
const model = buildModel(stackWith("dev", (raw) => (raw.bgp = { enabled: true })));
const ids = ["1", "2", "3"].map((d) => d.repeat(64));
const { target } = stackTarget(
  "dev",
  model,
  parseOutputs(
    JSON.stringify({
      hosts: model.hosts.map((h) => ({ name: h.name, externalAddress: "198.51.100.7" })),
      endpoints: model.endpoints.map((e, i) => ({ name: e.name, containerId: ids[i] })),
    }),
    "t",
  ),
);
const [host1, host2] = model.hosts as [(typeof model.hosts)[0], (typeof model.hosts)[0]];
const labTarget: StatusTarget = {
  ...target,
  systemContainers: "the lab runs no system containers",
  agent: { none: "the lab runs no host agent" },
  felix: "Felix cannot run in the lab",
};

/** A judge's input from recorded sections (exit code 0 unless given). */
function input(
  sections: Record<string, string>,
  o: {
    rc?: Record<string, number>;
    t?: StatusTarget;
    h?: typeof host1;
    fabric?: KernelRoute[];
  } = {},
): JudgeInput {
  const s = new Map(Object.entries(sections).map(([k, out]) => [k, { out, rc: o.rc?.[k] ?? 0 }]));
  return { t: o.t ?? target, h: o.h ?? host2, facts: readFacts(s), fabric: o.fabric };
}
const found = (v: Verdict | undefined) => v!.problems.map((p) => `${p.subject}: ${p.found}`);

// host-2's own replies, recorded on a healthy host.
const ROUTES_H2 =
  '[{"dst":"default","gateway":"10.240.0.1","dev":"eth0","flags":[]},' +
  '{"dst":"10.240.0.0/16","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.240.128.2","flags":[]},' +
  '{"dst":"192.168.1.1","gateway":"10.240.0.2","dev":"eth0","protocol":"bird","flags":[]},' +
  '{"dst":"192.168.1.2","gateway":"10.240.0.2","dev":"eth0","protocol":"bird","flags":[]},' +
  '{"dst":"192.168.1.3","dev":"tap33333333333","scope":"link","flags":[]}]';
const LINKS_H2 =
  '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN","link_type":"loopback","address":"00:00:00:00:00:00"},' +
  '{"ifindex":7,"ifname":"tap33333333333","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"9a:3c:5e:11:20:07"}]';
const ETH0_H2 =
  '[{"ifindex":2,"link_index":7,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","address":"02:ca:c0:a8:01:03"}]';
const WIRED_H2 = {
  routes: ROUTES_H2,
  links: LINKS_H2,
  proxyarp: "tap33333333333 1",
  "eth0 192_168_1_3": ETH0_H2,
};
const inspect = (name: string, status: string, role: string, endpoint?: string) =>
  JSON.stringify({
    name: `/${name}`,
    status,
    restarts: status === "running" ? 0 : 3,
    labels: {
      "calico-docker.role": role,
      ...(endpoint ? { "calico-docker.endpoint": endpoint } : {}),
    },
  });
const CONTAINERS_H2 = [
  inspect("felix", "running", "felix"),
  inspect("bird", "running", "bird"),
  inspect("192_168_1_3", "running", "endpoint", "192_168_1_3"),
].join("\n");
const BIRDC = (info: string) =>
  [
    "BIRD 1.6.8 ready.",
    "name     proto    table    state  since       info",
    "kernel1  Kernel   master   up     07:00:00    ",
    "device1  Device   master   up     07:00:00    ",
    `peer_host_1 BGP   master   ${info.startsWith("Est") ? "up   " : "start"}  07:00:01    ${info}`,
  ].join("\n");

describe("status judges: containers", () => {
  it("all system containers running: ok, with their restart counts", () => {
    const v = judgeContainers(input({ containers: CONTAINERS_H2 }));
    assert.deepEqual(found(v), []);
    assert.equal(v.detail, "felix running (0 restarts), bird running (0 restarts)");
  });

  it("names a stopped one and a missing one", () => {
    const text = [inspect("bird", "exited", "bird"), inspect("x", "running", "endpoint", "x")];
    assert.deepEqual(found(judgeContainers(input({ containers: text.join("\n") }))), [
      "felix: no container",
      "bird: exited",
    ]);
  });

  it("Docker not answering: its first line", () => {
    const down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.";
    const v = judgeContainers(input({ containers: down }, { rc: { containers: 1 } }));
    assert.deepEqual(found(v), [`docker: ${down}`]);
  });

  it("a line that is not a container is this reply's problem", () => {
    const v = judgeContainers(input({ containers: `${CONTAINERS_H2}\n{}` }));
    assert.deepEqual(found(v), [
      "the containers reply: line 4 is not a container: name: Invalid input: expected string, received undefined",
    ]);
  });

  it("n/a where the target runs no system containers", () => {
    const v = judgeContainers(input({ containers: CONTAINERS_H2 }, { t: labTarget }));
    assert.equal(v.status, "n/a");
    assert.equal(v.detail, "1 endpoint container(s); the lab runs no system containers");
  });
});

describe("status judges: agent", () => {
  it("running, not running, not applicable", () => {
    assert.deepEqual(found(judgeAgent(input({ agent: "active" }))), []);
    const v = judgeAgent(input({ agent: "inactive" }, { rc: { agent: 3 } }));
    assert.deepEqual(found(v), ["calico-agent.service: inactive"]);
    assert.equal(judgeAgent(input({}, { t: labTarget })).status, "n/a");
  });
});

describe("status judges: bgp", () => {
  it("an Established session: ok, with BIRD's sessions as facts", () => {
    const v = judgeBgp(input({ bird: BIRDC("Established") }));
    assert.deepEqual(found(v), []);
    assert.equal(v.detail, "1/1 sessions Established");
    assert.deepEqual(v.bgp?.sessions, [{ name: "peer_host_1", state: "up", info: "Established" }]);
  });

  it("a session not Established, and BIRD not answering", () => {
    const active = judgeBgp(input({ bird: BIRDC("Active        Socket: Connection refused") }));
    assert.deepEqual(found(active), [
      "session host-1: start Active        Socket: Connection refused",
    ]);
    const down =
      "Unable to connect to server control socket (/var/run/bird/bird.ctl): No such file or directory";
    const v = judgeBgp(input({ bird: down }, { rc: { bird: 1 } }));
    assert.deepEqual(found(v), [`bird: ${down}`]);
    assert.equal(v.bgp?.running, false);
  });
});

describe("status judges: routes", () => {
  it("a BGP route to every remote endpoint: ok", () => {
    const v = judgeRoutes(input({ routes: ROUTES_H2 }));
    assert.deepEqual(found(v), []);
    assert.deepEqual(v.routes, [
      "192.168.1.1: 192.168.1.1/32 via 10.240.0.2 dev eth0 proto bird",
      "192.168.1.2: 192.168.1.2/32 via 10.240.0.2 dev eth0 proto bird",
    ]);
  });

  it("a missing route, and one that is not BIRD's", () => {
    const routes = JSON.parse(ROUTES_H2) as KernelRoute[];
    routes[2] = { dst: "192.168.1.1", type: "blackhole", protocol: "bird" };
    routes.splice(3, 1);
    assert.deepEqual(found(judgeRoutes(input({ routes: JSON.stringify(routes) }))), [
      "192_168_1_1 (192.168.1.1): blackhole 192.168.1.1/32",
      "192_168_1_2 (192.168.1.2): no route",
    ]);
  });

  it("without BGP: the gateway here, and the fabric's route to the right host", () => {
    const off = buildModel(stackWith("dev"));
    const t = { ...target, model: off };
    const table = '[{"dst":"default","gateway":"10.240.0.1","dev":"eth0","flags":[]}]';
    const fabric = [
      { dst: "192.168.1.1", gateway: "10.240.0.2" },
      { dst: "192.168.1.2", gateway: "10.240.128.2" },
    ];
    const v = judgeRoutes(input({ routes: table }, { t, h: off.hosts[1], fabric }));
    assert.deepEqual(found(v), [
      "192_168_1_2 (192.168.1.2): fabric: 192.168.1.2/32 via 10.240.128.2",
    ]);
    assert.equal(v.detail, "1/2 remote endpoint routes (fabric)");
  });

  for (const [what, text, why] of [
    [
      "null",
      "null",
      "not a list of IPv4 routes: (top): Invalid input: expected array, received null",
    ],
    [
      "{}",
      "{}",
      "not a list of IPv4 routes: (top): Invalid input: expected array, received object",
    ],
    [
      "[null]",
      "[null]",
      "not a list of IPv4 routes: [0]: Invalid input: expected object, received null",
    ],
    [
      "a route without dst",
      '[{"dev":"eth0"}]',
      "not a list of IPv4 routes: [0].dst: Invalid input: expected string, received undefined",
    ],
    [
      "an IPv6 dst",
      '[{"dst":"fe80::/64","dev":"eth0"}]',
      'not a list of IPv4 routes: [0].dst: not an IPv4 destination: "fe80::/64"',
    ],
    ["not JSON", "Error: ip: command not found", "not JSON: Error: ip: command not found"],
  ] as const) {
    it(`a routes reply of ${what}: one problem naming the reply`, () => {
      assert.deepEqual(found(judgeRoutes(input({ routes: text }))), [`the routes reply: ${why}`]);
      assert.deepEqual(parseRoutes(text), { ok: false, why });
    });
  }
});

describe("status judges: endpoints", () => {
  it("container running, tap up, host route, proxy ARP, eth0's MAC: wired", () => {
    const v = judgeEndpoints(input({ ...WIRED_H2, containers: CONTAINERS_H2 }));
    assert.deepEqual(found(v), []);
    assert.equal(v.detail, "1/1 local endpoints wired");
  });

  it("the first thing wrong, one problem per endpoint", () => {
    const cases: [Record<string, string>, string][] = [
      [
        {
          containers: CONTAINERS_H2.replace(
            /"running","restarts":0,"labels":\{"calico-docker.role":"endpoint"/,
            '"exited","restarts":0,"labels":{"calico-docker.role":"endpoint"',
          ),
        },
        "container exited",
      ],
      [
        {
          links: LINKS_H2.replace(
            '"UP","LOWER_UP"],"mtu":1500,"operstate":"UP"',
            '"NO-CARRIER"],"mtu":1500,"operstate":"DOWN"',
          ),
        },
        "DOWN",
      ],
      [{ links: "[]" }, "no such interface"],
      [{ routes: "[]" }, "no such route"],
      [{ proxyarp: "tap33333333333 0" }, "proxy_arp=0"],
      [
        {
          "eth0 192_168_1_3":
            'Cannot open network namespace "cd-192_168_1_3": No such file or directory',
        },
        'Cannot open network namespace "cd-192_168_1_3": No such file or directory',
      ],
      [
        { "eth0 192_168_1_3": ETH0_H2.replace("02:ca:c0:a8:01:03", "02:42:ac:11:00:02") },
        "02:42:ac:11:00:02",
      ],
      [
        { "eth0 192_168_1_3": "[null]" },
        "its reply is not a list of links: [0]: Invalid input: expected object, received null",
      ],
    ];
    for (const [change, what] of cases) {
      const v = judgeEndpoints(input({ ...WIRED_H2, containers: CONTAINERS_H2, ...change }));
      assert.deepEqual(found(v), [`192_168_1_3: ${what}`], JSON.stringify(change));
    }
  });

  it("links of [null]: the links reply, named; routes unreadable: the route step is the routes check's", () => {
    const v = judgeEndpoints(input({ ...WIRED_H2, links: "[null]" }));
    assert.deepEqual(found(v), [
      "the links reply: not a list of links: [0]: Invalid input: expected object, received null",
    ]);
    assert.deepEqual(found(judgeEndpoints(input({ ...WIRED_H2, routes: "null" }))), []);
  });
});

describe("status judges: felix, snat, plugin data", () => {
  const chains = (ids3: string[]) =>
    ["*filter", ":INPUT ACCEPT [0:0]", ...ids3.map((c) => `:${c} - [0:0]`), "COMMIT"].join("\n");

  it("felix: both chains of every local endpoint", () => {
    const both = chains(["felix-to-33333333333", "felix-from-33333333333"]);
    assert.deepEqual(found(judgeFelix(input({ felix: both }))), []);
    const one = chains(["felix-from-33333333333"]);
    assert.deepEqual(found(judgeFelix(input({ felix: one }))), ["192_168_1_3: missing"]);
    const gone = "Error response from daemon: No such container: felix";
    const v = judgeFelix(input({ felix: gone }, { rc: { felix: 1 } }));
    assert.deepEqual(found(v), [`felix: ${gone}`]);
    assert.equal(judgeFelix(input({}, { t: labTarget })).status, "n/a");
  });

  it("snat: the MASQUERADE rule and POSTROUTING's jump", () => {
    const rule =
      "-N CALICO-SNAT\n-A CALICO-SNAT -s 192.168.0.0/16 ! -d 192.168.0.0/16 -j MASQUERADE";
    const jump = "@@postrouting\n-P POSTROUTING ACCEPT\n-A POSTROUTING -j CALICO-SNAT";
    assert.deepEqual(found(judgeSnat(input({ snat: `${rule}\n${jump}` }))), []);
    assert.deepEqual(
      found(judgeSnat(input({ snat: `${rule}\n@@postrouting\n-P POSTROUTING ACCEPT` }))),
      ["POSTROUTING: none"],
    );
    const none = "iptables: No chain/target/match by that name.";
    const v = judgeSnat(input({ snat: none }, { rc: { snat: 1 } }));
    assert.deepEqual(found(v), [`CALICO-SNAT: ${none}`]);
  });

  it("plugin data, on the controller only: missing, stale, extra, each named", () => {
    const ids3 = new Map(model.endpoints.map((e, i) => [e.name, ids[i]!]));
    const files = renderPluginData(model, ids3);
    const line = (name: string, content: string) =>
      `${createHash("sha256").update(content).digest("hex")}  /opt/plugin/data/${name}`;
    const all = files.map((f) => line(f.name, f.content));
    const ok = judgePluginData(input({ data: all.join("\n") }, { h: host1 }));
    assert.deepEqual(found(ok), []);
    const [first, second] = files as [(typeof files)[0], (typeof files)[0]];
    const changed = [line(second.name, "{}"), ...all.slice(2), line("old.json", "{}")];
    assert.deepEqual(found(judgePluginData(input({ data: changed.join("\n") }, { h: host1 }))), [
      `${first.name}: missing`,
      `${second.name}: different (stale)`,
      "old.json: present",
    ]);
    const gone = "find: '/opt/plugin/data': No such file or directory";
    const v = judgePluginData(input({ data: gone }, { h: host1, rc: { data: 1 } }));
    assert.deepEqual(found(v), ["/opt/plugin/data: missing"]);
    assert.equal(judgePluginData(input({ data: "" })), undefined, "no line off the controller");
  });
});

describe("status parsers", () => {
  it("containers: Docker's warnings are skipped, a bad line is named by its number", () => {
    const r = parseContainers(`WARNING: No swap limit support\n${CONTAINERS_H2}`);
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.map((c) => `${c.name}/${c.role}/${c.endpoint ?? ""}`),
      ["felix/felix/", "bird/bird/", "192_168_1_3/endpoint/192_168_1_3"],
    );
    assert.deepEqual(
      parseContainers('{"name":"/x","status":"running","restarts":-1,"labels":null}'),
      {
        ok: false,
        why: "line 1 is not a container: restarts: Too small: expected number to be >=0",
      },
    );
    assert.equal(parseContainers("{oops").ok, false);
  });
});
