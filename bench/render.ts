/**
 * `npm run bench:render`: render time and output size for 2, 20 and 200 hosts with 50
 * endpoints per host, full-mesh BGP on, and how they grow.
 *
 * Under a full mesh every host has a BGP block for every other host, so the total
 * bird.conf text grows with hosts²; everything else (scripts, plugin data, felix.cfg)
 * grows linearly in hosts and endpoints. The two parts are printed separately.
 */
import { performance } from "node:perf_hooks";
import { loadConfig } from "../components/config.js";
import { buildModel } from "../components/model.js";
import { renderAll } from "../components/render/index.js";

const SIZES = [2, 20, 200] as const;
const ENDPOINTS_PER_HOST = 50;

function stack(hosts: number): Record<string, unknown> {
  return {
    platform: "existing",
    sshPrivateKey: { secret: true },
    ssh: { user: "core" },
    endpointPool: "192.168.0.0/16",
    bgp: { enabled: true, peering: "full-mesh" },
    hosts: Array.from({ length: hosts }, (_, i) => ({
      name: `host-${i + 1}`,
      address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    })),
    endpoints: Array.from({ length: hosts * ENDPOINTS_PER_HOST }, (_, k) => {
      const h = Math.floor(k / ENDPOINTS_PER_HOST);
      return {
        host: `host-${h + 1}`,
        ip: `192.168.${h}.${(k % ENDPOINTS_PER_HOST) + 1}`,
        group: `g${k % 10}`,
      };
    }),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Row {
  hosts: number;
  endpoints: number;
  modelMs: number;
  renderMs: number;
  files: number;
  birdBytes: number;
  otherBytes: number;
}

function measure(hosts: number): Row {
  const raw = stack(hosts);
  const reps = hosts >= 200 ? 3 : hosts >= 20 ? 7 : 25;
  const modelTimes: number[] = [];
  const renderTimes: number[] = [];
  let files = renderAll(buildModel(loadConfig(raw))); // warm-up
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const model = buildModel(loadConfig(raw));
    const t1 = performance.now();
    files = renderAll(model);
    const t2 = performance.now();
    modelTimes.push(t1 - t0);
    renderTimes.push(t2 - t1);
  }
  let birdBytes = 0;
  let otherBytes = 0;
  for (const f of files) {
    const n = Buffer.byteLength(f.content);
    if (f.path.endsWith("/bird.conf")) birdBytes += n;
    else otherBytes += n;
  }
  return {
    hosts,
    endpoints: hosts * ENDPOINTS_PER_HOST,
    modelMs: median(modelTimes),
    renderMs: median(renderTimes),
    files: files.length,
    birdBytes,
    otherBytes,
  };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const ratio = (a: number, b: number) => `×${(b / a).toFixed(1)}`;

const rows = SIZES.map(measure);
console.log(
  `render benchmark: full-mesh BGP, ${ENDPOINTS_PER_HOST} endpoints per host (median of repeats)\n`,
);
console.log(
  [
    "hosts",
    "endpoints",
    "validate+model",
    "renderAll",
    "files",
    "bird.conf total",
    "other files total",
  ]
    .map((h, i) => h.padStart(i === 0 ? 5 : 17))
    .join(" "),
);
for (const r of rows) {
  console.log(
    [
      String(r.hosts).padStart(5),
      String(r.endpoints).padStart(17),
      `${r.modelMs.toFixed(1)} ms`.padStart(17),
      `${r.renderMs.toFixed(1)} ms`.padStart(17),
      String(r.files).padStart(17),
      kb(r.birdBytes).padStart(17),
      kb(r.otherBytes).padStart(17),
    ].join(" "),
  );
}
console.log("\ngrowth for each ×10 in hosts (and so ×10 in endpoints):");
for (let i = 1; i < rows.length; i++) {
  const a = rows[i - 1]!;
  const b = rows[i]!;
  console.log(
    `  ${a.hosts} -> ${b.hosts} hosts: renderAll ${ratio(a.renderMs, b.renderMs)}, ` +
      `bird.conf text ${ratio(a.birdBytes, b.birdBytes)} (hosts² predicts ×${((b.hosts / a.hosts) ** 2).toFixed(0)}` +
      `; sessions per host ${a.hosts - 1} -> ${b.hosts - 1}), ` +
      `other text ${ratio(a.otherBytes, b.otherBytes)} (linear predicts ×${(b.endpoints / a.endpoints).toFixed(0)}), ` +
      `files ${ratio(a.files, b.files)}`,
  );
}
console.log(
  "\nbird.conf: a full mesh gives every host one `protocol bgp` block per other host, so its" +
    "\ntotal text grows with hosts² (each file with hosts); route reflectors make it linear." +
    "\nThe measured factor stays under the ideal ×100 while the fixed head of each file" +
    "\n(filters, kernel/device/direct protocols) still weighs: it tends to ×100 as hosts grow." +
    "\nEverything else (plugin data, endpoint and host scripts, felix.cfg) grows linearly in" +
    "\nendpoints and hosts; the per-file size stays flat.",
);
