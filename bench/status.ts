/**
 * `npm run bench:status` (root): `npm run status` on a lab of 10 hosts x 50 endpoints, over
 * SSH to the lab hosts' sshd, beside the very same probes through the lab's own namespace
 * transport (what the lab's `check` uses): the difference is what SSH costs.
 *
 *   npm run bench:status [-- --sizes 10x50] [--rounds 5]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { labDown, labUp } from "../lab/lab.js";
import { labNamespaceTransport, labSshTransport, labTarget } from "../lab/probes.js";
import { runStatus, type StatusReport } from "../status/engine.js";
import type { Transport } from "../status/transport.js";
import { benchConfig, parseSizes, type Size } from "./sizes.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = parseSizes(arg("--sizes") ?? "10x50");
const rounds = Number(arg("--rounds") ?? "5");
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be a whole number ≥ 1");

const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(transport: Transport, opts: Parameters<typeof labTarget>[0]) {
  const { target } = labTarget(opts);
  const times: number[] = [];
  let last: StatusReport | undefined;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    last = await runStatus(target, transport);
    times.push(performance.now() - t0);
  }
  return { times, report: last! };
}

async function bench(size: Size): Promise<boolean> {
  const stack = `bench-status-${size.hosts}x${size.endpoints}`;
  const stateRoot = mkdtempSync(path.join(tmpdir(), "status-bench-"));
  const opts = { stack, stateRoot, config: benchConfig(size), felix: "stand-in" as const };
  try {
    await labUp(opts);
    const { plan, state, target } = labTarget(opts);
    // Converged first: both transports then judge the same healthy lab.
    const deadline = Date.now() + 120_000;
    while (!(await runStatus(target, labNamespaceTransport(plan))).ok) {
      if (Date.now() > deadline) throw new Error("the lab did not converge within 120 s");
      await new Promise((r) => setTimeout(r, 250));
    }
    const ns = await timed(labNamespaceTransport(plan), opts);
    const ssh = await timed(labSshTransport(plan, state), opts);
    const t0 = performance.now();
    const cli = spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/status.ts", "--lab", "--stack", stack, "--state-dir", stateRoot],
      { cwd: root, encoding: "utf8" },
    );
    const cliMs = performance.now() - t0;
    const n = size.hosts * size.endpoints;
    const [a, b] = [median(ns.times), median(ssh.times)];
    console.log(
      [
        `${size.hosts} hosts x ${size.endpoints} endpoints (${n} endpoints), ${rounds} round(s), median:`,
        `  probes through the lab's namespaces (check)   ${s(a)}   ${ns.report.ok ? "healthy" : "NOT healthy"}`,
        `  probes over SSH, hosts in parallel (status)   ${s(b)}   ${ssh.report.ok ? "healthy" : "NOT healthy"}`,
        `  SSH / namespaces                              ${(b / a).toFixed(1)}x  (SSH costs ${s(b - a)})`,
        `  npm run status -- --lab, whole command        ${s(cliMs)}   exit ${cli.status}`,
        `  slowest host over SSH                         ${s(Math.max(...ssh.report.hosts.map((h) => h.durationMs)))}`,
      ].join("\n"),
    );
    return ns.report.ok && ssh.report.ok && cli.status === 0;
  } finally {
    await labDown(opts).catch(() => {});
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

if (process.getuid?.() !== 0) {
  console.error(
    "bench:status needs root (network namespaces, BIRD, sshd): sudo npm run bench:status",
  );
  process.exit(1);
}
let ok = true;
for (const size of sizes) ok = (await bench(size)) && ok;
process.exitCode = ok ? 0 : 1;
