/**
 * `npm run bench:lab` (root): time from `up` to a full ping matrix for 2 hosts x 3 endpoints
 * and 10 hosts x 50 endpoints (BGP full mesh, Docker endpoints), beside a floor measured in
 * the same run: the same containers started straight with the Docker CLI (in parallel), the
 * same namespaces, veths and addresses made with one `ip -batch` per namespace, plus BIRD's
 * own convergence (its start to all routes present), and with the real Felix its own
 * programming of the endpoints handed all at once (felix-floor.ts). And restart -> reachable from
 * every other endpoint, p50 and p99 over --restarts restarts (default 20) on the 2x3 lab.
 *
 *   npm run bench:lab [-- --sizes 2x3,10x50] [--restarts 20] [--endpoints docker|netns]
 *                     [--felix real|stand-in] [--pinger fping|ping] [--verbose]
 *   npm run bench:lab -- --policy [--changes 20] [--gap-ms 3000]
 *                                                    policy change -> enforced (lab-policy.ts)
 *
 * Felix is real (its policy proven pair by pair, restarts judged reachable AND isolated) up
 * to 20 endpoints, the routing stand-in above (pass --felix to choose).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildModel } from "../components/model.js";
import { labCheck } from "../lab/check.js";
import {
  docker,
  endpointCreateArgs,
  ensureUtilImage,
  startDockerd,
  stopDockerd,
} from "../lab/docker.js";
import { ipBatch, pool, run, sleep } from "../lab/exec.js";
import { hostLinkCommands, labDockerHost, labDown, labUp } from "../lab/lab.js";
import { buildPlan, type EndpointMode, type LabPlan } from "../lab/plan.js";
import { StateDir } from "../lab/state.js";
import {
  policyBench,
  RESTART_LIMIT_MS,
  restartsWithPolicy,
  ROUND_EVERY_MS,
  type RestartTimes,
} from "./lab-policy.js";
import { felixFloorMs } from "./felix-floor.js";
import { benchConfig, parseSizes, type Size } from "./sizes.js";
import { statsLine } from "./stats.js";

const s = (ms: number | undefined) => (ms === undefined ? "  n/a" : `${(ms / 1000).toFixed(2)} s`);
const concurrency = 8;

/**
 * The floor's own part: the plan's containers started straight with `docker run -d` (same
 * arguments, same parallelism) on a fresh daemon, and the plan's namespaces, veths and
 * addresses made with one `ip -batch` per namespace. Milliseconds for each.
 */
async function floor(plan: LabPlan): Promise<{ dockerMs: number; ipMs: number }> {
  const stateRoot = mkdtempSync(path.join(tmpdir(), "lab-floor-"));
  const state = new StateDir(stateRoot, "floor");
  const prefix = `${plan.prefix}f`;
  const rename = (ns: string) => ns.replace(plan.prefix, prefix);
  const namespaces = [plan.fabricNs, ...plan.hosts.map((h) => h.ns)].map(rename);
  try {
    const rec = await startDockerd(state, prefix);
    await ensureUtilImage(rec.host, state);
    const t0 = performance.now();
    const ids = await pool(plan.endpoints, concurrency, async (e) => {
      const args = endpointCreateArgs({ ...e, container: `f-${e.container}` }, prefix);
      return (await docker(rec.host, ["run", "-d", ...args.slice(1)])).stdout.trim();
    });
    const dockerMs = performance.now() - t0;
    const pids = await pool(ids, concurrency, async (id) =>
      Number((await docker(rec.host, ["inspect", "-f", "{{.State.Pid}}", id])).stdout.trim()),
    );

    const t1 = performance.now();
    await ipBatch(
      undefined,
      namespaces.map((ns) => `netns add ${ns}`),
    );
    await ipBatch(rename(plan.fabricNs), [
      "link set lo up",
      `link add ${plan.bridge} type bridge`,
      ...plan.bridgeAddresses.map((a) => `addr add ${a} dev ${plan.bridge}`),
      `link set ${plan.bridge} up`,
      ...plan.hosts.flatMap((h) => [
        `link add ${h.fabricPort} type veth peer name ${h.uplink} netns ${rename(h.ns)}`,
        `link set ${h.fabricPort} master ${plan.bridge}`,
        `link set ${h.fabricPort} up`,
      ]),
    ]);
    await pool(plan.hosts, concurrency, async (h) => {
      const eps = plan.endpoints.map((e, i) => ({ e, i })).filter(({ e }) => e.host === h.name);
      await ipBatch(rename(h.ns), [
        ...hostLinkCommands(h),
        ...eps.flatMap(({ e, i }) => [
          `link add t${i} type veth peer name p${i} netns ${pids[i]}`,
          `link set t${i} up`,
          `route add ${e.ip}/32 dev t${i}`,
        ]),
      ]);
    });
    await pool(plan.endpoints, concurrency, async (e, i) => {
      await run("nsenter", [`--net=/proc/${pids[i]}/ns/net`, "--", "ip", "-batch", "-"], {
        input: [
          `link set p${i} name eth0`,
          `addr add ${e.ip}/32 dev eth0`,
          "link set eth0 up",
          "link set lo up",
          "route add default dev eth0",
        ].join("\n"),
      });
    });
    const ipMs = performance.now() - t1;
    return { dockerMs, ipMs };
  } finally {
    await stopDockerd(state, prefix);
    for (const ns of namespaces) await run("ip", ["netns", "del", ns], { okCodes: [1, 255] });
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

/** `docker restart` of one endpoint -> every other endpoint reaches it again, n times. */
async function restarts(plan: LabPlan, host: string, n: number): Promise<RestartTimes> {
  const total: number[] = [];
  const afterStart: number[] = [];
  let missed = 0;
  for (let k = 0; k < n; k++) {
    const target = plan.endpoints[k % plan.endpoints.length]!;
    const others = plan.endpoints.filter((e) => e !== target);
    const t0 = performance.now();
    await docker(host, ["restart", target.container]);
    const t1 = performance.now();
    const reached = await Promise.all(
      others.map(async (from) => {
        while (performance.now() - t0 < RESTART_LIMIT_MS) {
          const { code } = await run(
            "nsenter",
            [`--net=/var/run/netns/${from.ns}`, "--", "ping", "-c", "1", "-W", "0.1", target.ip],
            { okCodes: [1, 2] },
          );
          if (code === 0) return true;
          await sleep(10);
        }
        return false;
      }),
    );
    if (!reached.every(Boolean)) {
      missed++;
      continue;
    }
    total.push(performance.now() - t0);
    afterStart.push(performance.now() - t1);
  }
  return { total, afterStart, missed };
}

async function bench(size: Size, pinger: "fping" | "ping" | undefined, mode: EndpointMode) {
  const stack = `bench-${size.hosts}x${size.endpoints}`;
  const stateRoot = mkdtempSync(path.join(tmpdir(), "lab-bench-"));
  const log = verbose ? (l: string) => process.stderr.write(`    ${l}\n`) : undefined;
  const config = benchConfig(size);
  // The real Felix where its policy matrix can be probed pair by pair; the stand-in (routing
  // only, an fping matrix) for large labs.
  const felix = felixArg ?? (size.hosts * size.endpoints <= 20 ? "real" : "stand-in");
  const opts = { stack, stateRoot, config, endpoints: mode, felix, ...(log ? { log } : {}) };
  try {
    const t0 = performance.now();
    const up = await labUp(opts);
    const report = await labCheck({ ...opts, timeoutMs: 120_000, ...(pinger ? { pinger } : {}) });
    const total = performance.now() - t0;
    const model = buildModel(config);
    let restartTimes: RestartTimes = { total: [], afterStart: [], missed: 0 };
    if (mode === "docker" && restartCount > 0 && size.hosts * size.endpoints <= 12) {
      restartTimes =
        felix === "real"
          ? await restartsWithPolicy(up.plan, model, labDockerHost(opts), restartCount)
          : await restarts(up.plan, labDockerHost(opts), restartCount);
    }
    // After the restarts: Felix may still work through ACL updates once the policy holds again.
    const felixMs =
      felix === "real" && mode === "docker" && report.ok
        ? await felixFloorMs(opts, model, up.plan)
        : undefined;
    const tDown = performance.now();
    await labDown(opts);
    const down = performance.now() - tDown;
    const probed = report.matrix
      ? { pairs: report.matrix.pairs, ms: report.matrix.durationMs, how: report.matrix.pinger }
      : {
          pairs: report.policy!.judgement.counts.probes,
          ms: report.policy!.durationMs,
          how: "policy probes",
        };
    const bgp = report.timings.bgpEstablished?.sinceStartMs;
    const routes = report.timings.allRoutes?.sinceStartMs;
    const n = size.hosts * size.endpoints;
    const f = mode === "docker" ? await floor(buildPlan(model, stack, "docker")) : undefined;
    const routingFloorMs = f && routes !== undefined ? f.dockerMs + f.ipMs + routes : undefined;
    const floorMs =
      routingFloorMs !== undefined && felixMs !== undefined
        ? routingFloorMs + felixMs
        : routingFloorMs;
    const lines = [
      `${size.hosts} hosts x ${size.endpoints} endpoints (${n} endpoints as ${
        mode === "docker" ? "Docker containers" : "bare namespaces"
      }, ${probed.pairs} probes, ${probed.how}): ${report.ok ? "OK" : "FAILED"}`,
      `  up (daemon, namespaces, containers, agents wiring, BIRD)  ${s(up.durationMs)}`,
      `  BIRD start -> all sessions Established    ${s(bgp)}`,
      `  BIRD start -> all routes present          ${s(routes)}`,
      `  ping matrix                               ${s(probed.ms)}`,
      `  up start -> full matrix                   ${s(total)}`,
      `  down                                      ${s(down)}`,
    ];
    if (f !== undefined) {
      lines.push(
        `  floor: docker run -d x${n} (parallel ${concurrency})  ${s(f.dockerMs)}`,
        `  floor: ip -batch per namespace            ${s(f.ipMs)}`,
        `  floor: + BIRD convergence                 ${s(routingFloorMs)}`,
        ...(felixMs !== undefined
          ? [
              `  floor: + Felix and the ACL Manager programming the ${n} endpoints handed`,
              `    all at once, to the policy proven (bench/felix-floor.ts)  ${s(felixMs)}`,
            ]
          : []),
        `  floor                                     ${s(floorMs)}`,
        `  up-to-matrix / floor                      ${
          floorMs ? (total / floorMs).toFixed(2) : "n/a"
        }x   (goal <= 2x)`,
        ...(felixMs !== undefined && routingFloorMs
          ? [`  up-to-matrix / floor without Felix        ${(total / routingFloorMs).toFixed(2)}x`]
          : []),
      );
    } else {
      lines.push(
        `  up-to-matrix / BIRD convergence           ${
          routes ? (total / routes).toFixed(2) : "n/a"
        }x`,
      );
    }
    lines.push(
      `  matrix pairs per second                   ${Math.round(
        probed.pairs / (probed.ms / 1000),
      )}`,
    );
    if (restartTimes.total.length + restartTimes.missed > 0) {
      lines.push(
        `  restart -> ${
          felix === "real"
            ? "reachable and isolated (its every probe as the policy says)"
            : "reachable from every other endpoint"
        } (${restartTimes.total.length} restarts${
          restartTimes.missed
            ? `, ${restartTimes.missed} NOT within ${RESTART_LIMIT_MS / 1000} s`
            : ""
        }):`,
        `    from \`docker restart\` issued            ${statsLine(restartTimes.total, s)}   (target p99 < 2 s)`,
        `    from the container running again       ${statsLine(restartTimes.afterStart, s)}`,
      );
      if (restartTimes.heldFrom?.length)
        lines.push(
          `    held from (restart issued -> start of the first of the probe rounds that`,
          `    all passed; rounds every ${ROUND_EVERY_MS / 1000} s)         ${statsLine(restartTimes.heldFrom, s)}`,
        );
    }
    console.log(lines.join("\n"));
    if (!report.ok)
      console.log(
        report.problems
          .slice(0, 10)
          .map((p) => `  ! ${p}`)
          .join("\n"),
      );
    return report.ok;
  } finally {
    await labDown(opts).catch(() => {});
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes: Size[] = parseSizes(arg("--sizes") ?? "2x3,10x50");
const pingerArg = arg("--pinger");
const verbose = args.includes("--verbose");
const restartCount = Number(arg("--restarts") ?? "20");
const modeArg = arg("--endpoints") ?? "docker";
const felixArg = arg("--felix") as "real" | "stand-in" | undefined;
if (felixArg !== undefined && felixArg !== "real" && felixArg !== "stand-in") {
  throw new Error(`--felix must be real or stand-in, got ${JSON.stringify(felixArg)}`);
}
if (pingerArg !== undefined && pingerArg !== "fping" && pingerArg !== "ping") {
  throw new Error(`--pinger must be fping or ping, got ${JSON.stringify(pingerArg)}`);
}
if (modeArg !== "docker" && modeArg !== "netns") {
  throw new Error(`--endpoints must be docker or netns, got ${JSON.stringify(modeArg)}`);
}
if (!Number.isInteger(restartCount) || restartCount < 0) {
  throw new Error(`--restarts must be a whole number, got ${JSON.stringify(arg("--restarts"))}`);
}
if (process.getuid?.() !== 0) {
  console.error("bench:lab needs root (network namespaces, BIRD, dockerd): sudo npm run bench:lab");
  process.exit(1);
}
let ok = true;
if (args.includes("--policy")) {
  ok = await policyBench(Number(arg("--changes") ?? "20"), Number(arg("--gap-ms") ?? "3000"));
} else {
  for (const size of sizes) ok = (await bench(size, pingerArg, modeArg)) && ok;
}
process.exitCode = ok ? 0 : 1;
