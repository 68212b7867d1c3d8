/**
 * Stage `BIRD`: each host's rendered bird.conf, parse-checked by BIRD itself, then BIRD in the
 * host's namespace (BGP on). With BGP off the fabric's static routes carry endpoint traffic
 * (GCE) or nothing does (existing hosts, as in production). Undo: the BIRD processes are
 * stopped by `down` (found by their state-folder paths).
 */
import { writeFile } from "node:fs/promises";
import { renderBirdConf } from "../../components/render/index.js";
import { startBirdProcess } from "../bird.js";
import { LabError } from "../context.js";
import { pool, run } from "../exec.js";
import type { LabRun, Stage } from "./run.js";

export const birdStage: Stage = {
  title: (r) => `BIRD in ${r.plan.hosts.length} host(s)`,
  applies(r: LabRun) {
    if (r.plan.bgp) return true;
    r.log(
      r.plan.fabric === "router"
        ? "- BGP is off: the fabric's static routes carry endpoint traffic between hosts"
        : "- BGP is off on platform existing: nothing carries endpoint routes between hosts " +
            "(as in production), so only pairs on the same host can answer",
    );
    return false;
  },
  async up(r: LabRun) {
    await pool(r.plan.hosts, r.concurrency, async (h) => {
      const conf = r.state.birdConf(h.index);
      await writeFile(conf, renderBirdConf(r.model, r.model.hosts[h.index]!));
      try {
        await run("bird", ["-p", "-c", conf]);
      } catch (e) {
        throw new LabError(
          `BIRD rejects the rendered bird.conf of ${h.name}: ${(e as Error).message}`,
        );
      }
    });
    for (const h of r.plan.hosts) {
      r.st.birds.push(startBirdProcess(r.state, h));
      r.save();
    }
  },
};
