// The plugin's protocol against the real peers: Felix and the ACL Manager 0.10.2 from the felix
// image, in one `dev` lab (root, the lab's own dockerd). plugin/test/ proves the protocol
// against written peers; here each step is observed in what the real ones do — the chains and
// ipsets Felix programs in its host's namespace, their logs (no Python traceback), their
// containers (still running) — for create/update/destroy, a group's rules changing, a group
// losing its last member, a resync of 10 endpoints after a Felix restart, and a restarted
// plugin (each Felix told its endpoints again) and ACL Manager. Each wait is bounded; the
// times are printed as diagnostics.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CalicoConfig } from "../../components/config.js";
import { applyPolicy } from "../../lab/apply.js";
import { labCheck } from "../../lab/check.js";
import type { LabOptions } from "../../lab/context.js";
import { docker } from "../../lab/docker.js";
import { runIn } from "../../lab/exec.js";
import { labDockerHost, labDown, labUp, restartLabPlugin } from "../../lab/lab.js";
import type { LabPlan } from "../../lab/plan.js";
import { labLogDir, systemContainerName } from "../../lab/stages/felix.js";
import { StateDir } from "../../lab/state.js";
import {
  addTaps,
  chainRules,
  createdIds,
  containerStates,
  delTaps,
  endpointIpsets,
  felixChains,
  ipsetMembers,
  ipsetNames,
  logSince,
  logSize,
  removeEndpointFile,
  suffix,
  synthetic,
  within,
  writeEndpointFile,
  type Synthetic,
} from "../helpers/felix-peers.js";
import { LAB_SKIP, leftovers, NOTHING, stackWith, systemSnapshot } from "../helpers/lab.js";

/** Each wait's bound: the machine is shared and loaded. */
const WAIT = 60_000;
/**
 * Endpoints of the resync step and its waits' bound. They join `bulk`, whose rules name only
 * `web`: in a group that admits itself Felix 0.10.2's work grows with the square of the group
 * (each member change makes the ACL Manager resend every member's ACLs, and Felix rewrites
 * each member's address set), which would be timed here instead of the resync. The figures
 * are in docs/testing.md.
 */
const MANY = 10;
const MANY_WAIT = 180_000;

/** dev, with optional changes to its raw config. */
const devWith = (change: (raw: Record<string, unknown>) => void = () => {}): CalicoConfig =>
  stackWith("dev", change);

/** dev's `db` group with one more inbound rule: tcp/5433 from web. */
const withPort5433 = devWith((raw) => {
  const groups = raw["groups"] as Record<string, { inbound: unknown[] }>;
  groups["db"]!.inbound.push({ group: "web", protocol: "tcp", port: 5433 });
});

/** dev with a group `bulk` that admits web's tcp/80 and not itself, for the many endpoints. */
const withBulk = devWith((raw) => {
  const groups = raw["groups"] as Record<string, unknown>;
  groups["bulk"] = {
    inbound: [{ group: "web", protocol: "tcp", port: 80 }],
    outbound: [{ cidr: "0.0.0.0/0" }],
  };
});

/** dev with db's only endpoint moved to web: group db loses its last member. */
const dbEmptied = devWith((raw) => {
  const eps = raw["endpoints"] as { group: string }[];
  for (const e of eps) if (e.group === "db") e.group = "web";
});

describe("conformance with the real Felix and ACL Manager 0.10.2 (dev)", { skip: LAB_SKIP }, () => {
  let opts: LabOptions;
  let plan: LabPlan;
  let state: StateDir;
  let stateRoot = "";
  let host = "";
  let baseline: Awaited<ReturnType<typeof systemSnapshot>>;
  const timings: Record<string, number> = {};
  const extra: Synthetic[] = [];

  const nsOf = (name: string) => plan.hosts.find((h) => h.name === name)!.ns;
  const hostPlan = (name: string) => plan.hosts.find((h) => h.name === name)!;
  const dataDir = () => state.pluginDataDir(0);
  const felixLog = (name: string) => path.join(labLogDir(state, hostPlan(name)), "felix.log");
  const aclLog = () => path.join(labLogDir(state, hostPlan("host-1")), "aclmanager.log");
  const peers = () => [
    ...plan.hosts.map((h) => systemContainerName(plan.prefix, h, "felix")),
    systemContainerName(plan.prefix, hostPlan("host-1"), "aclmgr"),
  ];

  /** The peers are alive and said nothing fatal: containers running, no traceback. */
  async function peersHealthy(when: string) {
    const states = await containerStates(host, peers());
    assert.deepEqual(
      states.map((s) => s.split(" ")[1]),
      states.map(() => "running"),
      `${when}: ${states.join(", ")}`,
    );
    for (const file of [...plan.hosts.map((h) => felixLog(h.name)), aclLog()]) {
      assert.doesNotMatch(logSince(file), /Traceback/, `${when}: ${file}`);
    }
  }

  async function policyHolds(when: string) {
    const report = await labCheck({ ...opts, timeoutMs: 90_000 });
    if (report.problems.length > 0) await dump(when);
    assert.deepEqual(report.problems, [], when);
    const j = report.policy!.judgement;
    assert.equal(j.counts.passed, j.counts.probes, when);
  }

  /** What the peers had programmed and said, for a failure's diagnosis. */
  async function dump(when: string) {
    const ns = nsOf("host-1");
    const chains = [...(await felixChains(ns))].join(" ");
    const pick = (file: string, re: RegExp) =>
      logSince(file)
        .split("\n")
        .filter((l) => re.test(l))
        .slice(-40)
        .join("\n");
    const pluginLog = path.join(labLogDir(state, hostPlan("host-1")), "plugin-endpoint.log");
    console.log(
      `--- ${when}: felix chains on host-1: ${chains}\n--- felix host-1\n` +
        `${pick(felixLog("host-1"), /ERROR|WARNING|Traceback|ENDPOINTCREATED|resync/)}\n` +
        `--- plugin endpoint\n${pick(pluginLog, /"level":[4-6]0/)}`,
    );
  }

  const time = async (step: string, what: string, probe: () => Promise<boolean>) => {
    timings[step] = await within(what, WAIT, probe);
  };

  /** A step's synthetic endpoints go after it, even when it failed: files, then taps. */
  async function dropExtra() {
    for (const e of extra) rmSync(path.join(dataDir(), `${e.name}.txt`), { force: true });
    for (const name of ["host-1", "host-2"]) {
      await delTaps(
        nsOf(name),
        extra.filter((e) => e.host === name),
      ).catch(() => {});
    }
    extra.length = 0;
  }

  afterEach(() => dropExtra());

  before(async () => {
    baseline = await systemSnapshot();
    stateRoot = await mkdtemp(path.join(tmpdir(), "lab-conf-"));
    opts = { stack: `t-conf-${process.pid}`, stateRoot, config: devWith(), felix: "real" };
    state = new StateDir(stateRoot, opts.stack!);
    plan = (await labUp(opts)).plan;
    host = labDockerHost(opts);
    assert.equal(hostPlan("host-1").index, 0, "dev's controller is host-1");
  });

  after(async () => {
    try {
      await dropExtra();
    } finally {
      await labDown(opts);
      await rm(stateRoot, { recursive: true, force: true });
      console.log(`felix conformance timings (ms): ${JSON.stringify(timings)}`);
    }
    // Others work on this machine at the same time: only what this lab named is its own.
    const left = Object.entries(leftovers(baseline, await systemSnapshot())).map(([k, v]) => [
      k,
      (v as string[]).filter((x) => x.includes(plan.prefix) || x.includes(stateRoot)),
    ]);
    assert.deepEqual(Object.fromEntries(left), NOTHING);
  });

  it("the stack's policy holds once the lab is up", () => policyHolds("up"));

  it("create, update, destroy: Felix's chains and ipsets follow the data file", async () => {
    const ns = nsOf("host-1");
    const e = synthetic("conf-one", "192.168.2.1", "host-1");
    extra.push(e);
    await addTaps(ns, [e]);
    const s = suffix(e.id);
    writeEndpointFile(dataDir(), e);
    await time("create", `felix-to/from-${s} and its ipsets`, async () => {
      const sets = await ipsetNames(ns);
      return (await felixChains(ns)).has(s) && endpointIpsets(e.id).every((n) => sets.has(n));
    });
    assert.ok((await chainRules(ns, `felix-from-${s}`)).some((r) => r.includes("192.168.2.1/32")));
    // A web member: its own group's addresses may reach it, so its to-addr set holds its IP.
    await time("create-acl", "its to-addr ipset", async () =>
      ((await ipsetMembers(ns, `felix-to-addr-${s}`)) ?? []).includes("192.168.2.1"),
    );

    const moved = { ...e, ip: "192.168.2.2" };
    writeEndpointFile(dataDir(), moved);
    await time("update", "the new address in its chain and ipset", async () => {
      const rules = (await chainRules(ns, `felix-from-${s}`)).join("\n");
      const addrs = (await ipsetMembers(ns, `felix-to-addr-${s}`)) ?? [];
      return (
        rules.includes("192.168.2.2/32") &&
        !rules.includes("192.168.2.1/32") &&
        addrs.includes("192.168.2.2") &&
        !addrs.includes("192.168.2.1")
      );
    });
    // The whole chain as a fresh create makes it: one source rule, the final DROP kept.
    const from = await chainRules(ns, `felix-from-${s}`);
    assert.equal(from.filter((r) => r.includes("--set-xmark")).length, 1, from.join("\n"));
    assert.equal(from.at(-1), `-A felix-from-${s} -j DROP`, from.join("\n"));
    const route = await within("Felix's host route to the new address", WAIT, async () =>
      (await runRoutes(ns)).includes("192.168.2.2 dev tap" + s),
    );
    timings["update-route"] = route;

    removeEndpointFile(dataDir(), moved);
    await time("destroy", "its chains and ipsets gone", async () => {
      const sets = await ipsetNames(ns);
      return !(await felixChains(ns)).has(s) && endpointIpsets(e.id).every((n) => !sets.has(n));
    });
    await delTaps(ns, [e]);
    await peersHealthy("create/update/destroy");
  });

  it("a group's rules change: the ACL Manager republishes, Felix's port ipsets follow", async () => {
    const ns = nsOf("host-1");
    const db = plan.endpoints.find((x) => x.group === "db")!;
    const webIps = plan.endpoints.filter((x) => x.group === "web").map((x) => x.ip);
    const ports = async () => (await ipsetMembers(ns, `felix-to-port-${suffix(db.id)}`)) ?? [];
    assert.ok(
      (await ports()).some((m) => m.endsWith(",tcp:5432")),
      (await ports()).join(" "),
    );
    const aclAt = logSize(aclLog());
    applyPolicy(opts, withPort5433);
    await time("group-rules", "web,tcp:5433 in db's to-port ipset", async () => {
      const now = await ports();
      return webIps.every((ip) => now.includes(`${ip},tcp:5433`));
    });
    assert.match(logSince(aclLog(), aclAt), /Network API group update received/);
    applyPolicy(opts, devWith());
    await time("group-rules-back", "tcp:5433 gone again", async () =>
      (await ports()).every((m) => !m.endsWith(",tcp:5433")),
    );
    await peersHealthy("group rules");
  });

  it("a group loses its last member: empty GROUPUPDATE, no crash, policy holds", async () => {
    const ns = nsOf("host-1");
    const db = plan.endpoints.find((x) => x.group === "db")!;
    const web = plan.endpoints.find((x) => x.group === "web" && x.host === "host-1")!;
    const aclAt = logSize(aclLog());
    applyPolicy(opts, dbEmptied);
    await time("group-emptied", "the ACL Manager's empty update for db", async () =>
      /Removing empty group db\b/.test(logSince(aclLog(), aclAt)),
    );
    const empty = logSince(aclLog(), aclAt)
      .split("\n")
      .find((l) => /Received published message/.test(l) && /u'group': u'db'/.test(l));
    assert.match(empty ?? "", /u'members': \{\}/, "a GROUPUPDATE for db with no members");
    // The former db member is now web: web's addresses reach it on any port.
    await time("group-emptied-acl", "web's address in the former db member's to-addr", async () =>
      ((await ipsetMembers(ns, `felix-to-addr-${suffix(db.id)}`)) ?? []).includes(web.ip),
    );
    await peersHealthy("db emptied");
    await policyHolds("db emptied");
    applyPolicy(opts, devWith());
    await time(
      "group-restored",
      "web's address gone from db's to-addr",
      async () =>
        !((await ipsetMembers(ns, `felix-to-addr-${suffix(db.id)}`)) ?? []).includes(web.ip),
    );
    await peersHealthy("db restored");
  });

  it(`a Felix restart: its resync brings back all ${MANY} endpoints of its host`, async () => {
    const ns = nsOf("host-2");
    const many = Array.from({ length: MANY }, (_, i) =>
      synthetic(`conf-m${i}`, `192.168.3.${i + 1}`, "host-2", "bulk"),
    );
    extra.push(...many);
    applyPolicy(opts, withBulk);
    await addTaps(ns, many);
    const t0 = Date.now();
    for (const e of many) writeEndpointFile(dataDir(), e);
    const have = async () => {
      const chains = await felixChains(ns);
      return many.filter((e) => chains.has(suffix(e.id))).length;
    };
    await within(
      `chains for ${MANY} new endpoints`,
      MANY_WAIT,
      async () => (await have()) === MANY,
    );
    timings["many-create"] = Date.now() - t0;

    const log = felixLog("host-2");
    const at = logSize(log);
    const t1 = Date.now();
    await docker(host, ["restart", systemContainerName(plan.prefix, hostPlan("host-2"), "felix")]);
    const created = () => {
      const text = logSince(log, at);
      const first = text.indexOf("Do total resync");
      const ids = createdIds(first < 0 ? "" : text.slice(first));
      return many.filter((e) => ids.has(e.id)).length;
    };
    await within(`ENDPOINTCREATED for all ${MANY} after the resync`, MANY_WAIT, async () => {
      return created() === MANY;
    });
    timings["many-resync"] = Date.now() - t1;
    assert.equal(await have(), MANY, "every chain still there after the resync");
    assert.doesNotMatch(logSince(log, at), /Removing \S+ rules for removed object/);
    await peersHealthy("Felix restart with many endpoints");

    const t2 = Date.now();
    for (const e of many) removeEndpointFile(dataDir(), e);
    await within(`the ${MANY} endpoints' chains gone`, MANY_WAIT, async () => (await have()) === 0);
    timings["many-destroy"] = Date.now() - t2;
    await delTaps(ns, many);
    applyPolicy(opts, devWith());
    await peersHealthy("many destroyed");
  });

  it("a restarted plugin and ACL Manager resync with nothing lost", async () => {
    const count = async () =>
      Promise.all(plan.hosts.map(async (h) => (await felixChains(h.ns)).size));
    const chains = await count();
    const at = plan.hosts.map((h) => logSize(felixLog(h.name)));
    const t0 = Date.now();
    await restartLabPlugin(opts, "endpoint");
    await restartLabPlugin(opts, "network");
    // The new plugin knows nothing acknowledged, so it tells each Felix every endpoint of its
    // host again (or answers the resync a Felix starts because its request went unanswered).
    const told = (i: number) => createdIds(logSince(felixLog(plan.hosts[i]!.name), at[i]));
    timings["plugin-restart-told"] = await within(
      "every Felix told its endpoints by the new plugin",
      WAIT,
      async () =>
        plan.hosts.every((h, i) =>
          plan.endpoints.filter((e) => e.host === h.name).every((e) => told(i).has(e.id)),
        ),
    );
    assert.deepEqual(await count(), chains, "the same chains after the plugin's restart");
    const aclAt = logSize(aclLog());
    await docker(host, ["restart", systemContainerName(plan.prefix, hostPlan("host-1"), "aclmgr")]);
    await time("aclmgr-restart", "the ACL Manager's start-of-day groups", async () =>
      /Received start of day response[\s\S]*Network API group update received/.test(
        logSince(aclLog(), aclAt),
      ),
    );
    timings["restarts-total"] = Date.now() - t0;
    await peersHealthy("plugin and ACL Manager restarted");
    await policyHolds("plugin and ACL Manager restarted");
    assert.deepEqual(await count(), chains, "the same chains after the ACL Manager's restart");
  });
});

/** The host's routes, one per line. */
async function runRoutes(ns: string): Promise<string> {
  return (await runIn(ns, "ip", ["route", "show"])).stdout;
}
