import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDataFile, type FileContent } from "../src/parse.js";
import {
  applyFileChanges,
  DefinitionCounts,
  defaultPolicy,
  endpointsForHost,
  groupsOf,
  mergeFiles,
  resolveHost,
} from "../src/state.js";
import { endpointId, endpointText, felixText } from "./helpers.js";

const ID1 = endpointId("one");
const ID2 = endpointId("two");

const ep1 = { name: "192_168_1_1", id: ID1, ip: "192.168.1.1", mac: "ee:ee:00:00:00:01" };

function ok(file: string, text: string, previous?: FileContent): FileContent {
  const r = parseDataFile(file, text, previous);
  assert.ok(r.content, `expected ${file} to parse: ${JSON.stringify(r.problems)}`);
  return r.content;
}

test("felix.txt and an endpoint file parse into the merged state", () => {
  const felix = ok(
    "felix.txt",
    felixText([
      { host: "host-1", ip: "10.240.0.2" },
      { host: "host-2", ip: "10.240.0.3" },
    ]),
  );
  const e = ok("192_168_1_1.txt", endpointText({ ...ep1, host: "host-1", group: "web" }));
  const { state, problems } = mergeFiles(
    new Map([
      ["felix.txt", felix],
      ["192_168_1_1.txt", e],
    ]),
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(
    [...state.felix.values()].map((f) => [f.host, f.ip]),
    [
      ["host-1", "10.240.0.2"],
      ["host-2", "10.240.0.3"],
    ],
  );
  const endpoint = state.endpoints.get("192_168_1_1");
  assert.deepEqual(endpoint, {
    name: "192_168_1_1",
    id: ID1,
    ip: "192.168.1.1",
    mac: "ee:ee:00:00:00:01",
    host: "host-1",
    group: "web",
    state: "enabled",
    file: "192_168_1_1.txt",
  });
  assert.deepEqual(
    [...endpointsForHost(state, "host-1")],
    [[ID1, { mac: "ee:ee:00:00:00:01", state: "enabled", addrs: ["192.168.1.1"] }]],
  );
  assert.equal(endpointsForHost(state, "host-2").size, 0);
});

test("liberal parsing: comments, spaces, CRLF, quotes, upper-case MAC, seed-style concatenation", () => {
  const text =
    "; the seed's data.txt: everything concatenated\r\n" +
    "# another comment\r\n" +
    "[felix host1]\r\n  ip = 10.0.0.1 \r\nhost=host1\r\n\r\n" +
    `[endpoint a]\r\nid = "${ID1}"\r\nip=192.168.1.1\r\nmac=EE:EE:00:00:00:01\r\nhost=host1\r\ngroup=g\r\n`;
  const c = ok("data.txt", text);
  assert.equal(c.felix[0]?.ip, "10.0.0.1");
  assert.equal(c.endpoints[0]?.id, ID1);
  assert.equal(c.endpoints[0]?.mac, "ee:ee:00:00:00:01");
});

test("a bad section is reported with file, section, field and value, and skipped", () => {
  const bad = [
    ["ip", "192.168.1.300", /invalid IPv4 address "192.168.1.300"/],
    ["mac", "ee:ee:00:00:01", /invalid MAC "ee:ee:00:00:01"/],
    ["id", "abc123", /invalid endpoint id "abc123"/],
    ["id", ID1.toUpperCase(), /expected 64 lowercase hex/],
    ["host", "host;rm -rf /", /invalid name/],
    ["group", "", /missing required field `group`/],
  ] as const;
  for (const [field, value, message] of bad) {
    const spec = { ...ep1, host: "h", group: "g" };
    const text = endpointText(spec).replace(new RegExp(`^${field}=.*$`, "m"), `${field}=${value}`);
    const r = parseDataFile("e.txt", text);
    assert.ok(r.content);
    assert.equal(r.content.endpoints.length, 0, `${field}=${value} must be rejected`);
    assert.equal(r.problems.length, 1);
    const p = r.problems[0];
    assert.equal(p?.file, "e.txt");
    assert.equal(p?.section, "endpoint 192_168_1_1");
    assert.equal(p?.field, field);
    assert.match(p?.message ?? "", message);
    if (value !== "") assert.equal(p?.value, value);
  }
});

test("a missing field is named; other sections of the file are still accepted", () => {
  const text =
    `[endpoint good]\nid=${ID1}\nip=192.168.1.1\nmac=ee:ee:00:00:00:01\nhost=h\ngroup=g\n` +
    `[endpoint nomac]\nid=${ID2}\nip=192.168.1.2\nhost=h\ngroup=g\n`;
  const r = parseDataFile("two.txt", text);
  assert.deepEqual(
    r.content?.endpoints.map((e) => e.name),
    ["good"],
  );
  assert.equal(r.problems[0]?.field, "mac");
  assert.equal(r.problems[0]?.section, "endpoint nomac");
  assert.equal(r.problems[0]?.line, 7, "the section header line");
});

test("a file that does not parse yields null (caller keeps the last good content)", () => {
  for (const text of ["[endpoint broken\nid=1\n", "[felix h]\nthis line has no equals sign\n"]) {
    const r = parseDataFile("x.txt", text);
    assert.equal(r.content, null);
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]?.file, "x.txt");
    assert.equal(typeof r.problems[0]?.line, "number");
  }
});

test("a half-written section keeps its last good version from the same file", () => {
  const good = ok("e.txt", endpointText({ ...ep1, host: "h", group: "g" }));
  const half = `[endpoint 192_168_1_1]\nid=${ID1}\nip=192.168.1`;
  const r = parseDataFile("e.txt", half, good);
  assert.deepEqual(r.content?.endpoints, good.endpoints);
  assert.match(r.problems[0]?.message ?? "", /last good version stays in force/);
  // Without a previous version, the section is simply not accepted.
  assert.deepEqual(parseDataFile("e.txt", half).content?.endpoints, []);
});

test("unknown section kinds are ignored with a problem, not a failure", () => {
  const r = parseDataFile("x.txt", "[global]\nfoo=bar\n[felix h]\nip=10.0.0.1\nhost=h\n");
  assert.equal(r.content?.felix.length, 1);
  assert.match(r.problems[0]?.message ?? "", /unknown section kind "global"/);
});

test("duplicates across files: first file (by name) wins, the others are reported", () => {
  const a = ok("a.txt", endpointText({ ...ep1, host: "h", group: "g" }));
  const b = ok("b.txt", endpointText({ ...ep1, ip: "192.168.1.9", host: "h", group: "g" }));
  const c = ok("c.txt", endpointText({ ...ep1, name: "other", host: "h", group: "g" }));
  const { state, problems } = mergeFiles(
    new Map([
      ["c.txt", c],
      ["b.txt", b],
      ["a.txt", a],
    ]),
  );
  assert.equal(state.endpoints.size, 1);
  assert.equal(state.endpoints.get("192_168_1_1")?.ip, "192.168.1.1");
  assert.equal(problems.length, 2);
  assert.match(problems[0]?.message ?? "", /already defined in a.txt/);
  assert.match(problems[1]?.message ?? "", /id is already used by endpoint 192_168_1_1/);
});

test("host names resolve exactly, else by their unqualified name", () => {
  const { state } = mergeFiles(
    new Map([["felix.txt", ok("felix.txt", felixText([{ host: "host1", ip: "10.0.0.1" }]))]]),
  );
  assert.equal(resolveHost(state, "host1")?.ip, "10.0.0.1");
  assert.equal(resolveHost(state, "HOST1")?.ip, "10.0.0.1");
  assert.equal(resolveHost(state, "host1.c.project.internal")?.ip, "10.0.0.1");
  assert.equal(resolveHost(state, "host2"), undefined);
});

test("groups: members from endpoints, explicit rules from [group], prototype policy otherwise", () => {
  const rules = {
    inbound: [{ group: null, cidr: "10.0.0.0/8", protocol: "tcp", port: [80, 443] }],
    outbound: [{ group: "db", cidr: null, protocol: "tcp", port: 5432 }],
  };
  const groups = ok(
    "groups.txt",
    `[group web]\ninbound=${JSON.stringify(rules.inbound)}\noutbound=${JSON.stringify(rules.outbound)}\n` +
      `[group unused]\ninbound=[]\noutbound=[]\n`,
  );
  const e1 = ok("e1.txt", endpointText({ ...ep1, host: "h", group: "web" }));
  const e2 = ok(
    "e2.txt",
    endpointText({
      name: "e2",
      id: ID2,
      ip: "192.168.1.2",
      mac: "ee:ee:00:00:00:02",
      host: "h",
      group: "db",
    }),
  );
  const { state } = mergeFiles(
    new Map([
      ["groups.txt", groups],
      ["e1.txt", e1],
      ["e2.txt", e2],
    ]),
  );
  const g = groupsOf(state);
  assert.deepEqual([...g.keys()], ["db", "web"], "a group without members is not a group");
  assert.deepEqual(g.get("web")?.members, { [ID1]: ["192.168.1.1"] });
  assert.deepEqual(g.get("web")?.policy, rules);
  assert.deepEqual(g.get("db")?.policy, defaultPolicy("db"));
  assert.deepEqual(defaultPolicy("db"), {
    inbound: [{ group: "db", cidr: null, protocol: null, port: null }],
    outbound: [
      { group: "db", cidr: null, protocol: null, port: null },
      { group: null, cidr: "0.0.0.0/0", protocol: null, port: null },
    ],
  });
});

test("group rules are validated strictly, naming the rule and the field", () => {
  const cases: Array<[string, RegExp, string]> = [
    [
      '[{"group":"a","cidr":"10.0.0.0/8","protocol":null,"port":null}]',
      /exactly one of group and cidr/,
      "inbound[0]",
    ],
    [
      '[{"group":null,"cidr":null,"protocol":null,"port":null}]',
      /exactly one of group and cidr/,
      "inbound[0]",
    ],
    ['[{"cidr":"10.0.0.0/33"}]', /invalid cidr "10.0.0.0\/33"/, "inbound[0].cidr"],
    ['[{"group":"a","port":80}]', /protocol must be "tcp" or "udp"/, "inbound[0].protocol"],
    ['[{"group":"a","protocol":"tcp","port":70000}]', /invalid port 70000/, "inbound[0].port"],
    [
      '[{"group":"a","protocol":"tcp","port":[90,80]}]',
      /invalid port \[90,80\]/,
      "inbound[0].port",
    ],
    ['[{"group":"a","proto":"tcp"}]', /unknown key `proto`/, "inbound[0].proto"],
    ['{"group":"a"}', /must be a JSON array/, "inbound"],
    ["[{group:a}]", /not valid JSON/, "inbound"],
  ];
  for (const [json, message, field] of cases) {
    const r = parseDataFile("groups.txt", `[group g]\ninbound=${json}\noutbound=[]\n`);
    assert.equal(r.content?.groups.length, 0, json);
    assert.match(r.problems[0]?.message ?? "", message, json);
    assert.equal(r.problems[0]?.field, field, json);
    assert.equal(r.problems[0]?.section, "group g");
  }
  // Missing keys are null; the result always has all four keys.
  const c = ok("groups.txt", '[group g]\ninbound=[{"group":"g"}]\n');
  assert.deepEqual(c.groups[0]?.inbound, [{ group: "g", cidr: null, protocol: null, port: null }]);
  assert.deepEqual(c.groups[0]?.outbound, []);
});

test("incremental merge: random file changes give what a full merge gives, conflicts included", () => {
  // A small pool so that names, ids and hosts collide often; a seeded generator.
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const section = (): string => {
    const k = rand(10);
    if (k < 6) {
      const n = rand(8);
      return endpointText({
        name: `ep${n}`,
        id: endpointId(`id${rand(8)}`),
        ip: `10.0.0.${rand(4) + 1}`,
        mac: "ee:ee:00:00:00:01",
        host: `host${rand(3)}`,
        group: `g${rand(3)}`,
      });
    }
    if (k < 8) return felixText([{ host: `host${rand(3)}`, ip: `10.1.0.${rand(3) + 1}` }]);
    return `[group g${rand(3)}]\ninbound=[]\noutbound=${rand(2) ? "[]" : '[{"cidr":"10.0.0.0/8"}]'}\n`;
  };
  const fileText = (): string =>
    Array.from({ length: rand(3) + 1 }, section)
      .join("\n")
      .replace(/\[endpoint (ep\d+)\]([\s\S]*?)\[endpoint \1\]/, "[endpoint $1]$2[endpoint x$1]");
  const sorted = <T>(m: ReadonlyMap<string, T>): Array<[string, T]> =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const merged = new Map<string, FileContent>();
  const counts = new DefinitionCounts();
  let state = mergeFiles(merged).state;
  let fast = 0;
  let full = 0;
  for (let step = 0; step < 2000; step++) {
    const changes: Array<{ before: FileContent | null; after: FileContent | null }> = [];
    for (let k = rand(2) + 1; k > 0; k--) {
      const name = `f${rand(6)}.txt`;
      if (changes.length > 0 && merged.has(name) && rand(2) === 0) continue;
      const before = merged.get(name) ?? null;
      let after: FileContent | null = null;
      if (rand(5) > 0) {
        const r = parseDataFile(name, fileText());
        after = r.content;
      }
      if (before === after) continue;
      changes.push({ before, after });
      if (after) merged.set(name, after);
      else merged.delete(name);
    }
    const previous = {
      felix: new Map(state.felix),
      endpoints: new Map(state.endpoints),
      groupRules: new Map(state.groupRules),
    };
    const delta = applyFileChanges(state, counts, changes);
    const expected = mergeFiles(merged).state;
    if (delta) {
      fast++;
      for (const [name, e] of sorted(expected.endpoints)) {
        const was = previous.endpoints.get(name);
        const same = JSON.stringify({ ...was, file: "" }) === JSON.stringify({ ...e, file: "" });
        assert.equal(delta.endpoints.has(name), !same, `step ${step}: delta of ${name}`);
        if (!same) assert.deepEqual(delta.endpoints.get(name)?.after, e);
      }
      for (const name of previous.endpoints.keys()) {
        if (!expected.endpoints.has(name)) {
          assert.deepEqual(delta.endpoints.get(name)?.before, previous.endpoints.get(name));
        }
      }
    } else {
      full++;
      state = expected;
    }
    assert.deepEqual(sorted(state.felix), sorted(expected.felix), `step ${step}: felix`);
    assert.deepEqual(sorted(state.endpoints), sorted(expected.endpoints), `step ${step}`);
    assert.deepEqual(sorted(state.groupRules), sorted(expected.groupRules), `step ${step}`);
  }
  // Both ways were taken many times.
  assert.ok(fast > 100 && full > 100, `fast ${fast}, full ${full}`);
});
