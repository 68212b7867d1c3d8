/**
 * Stage `sshd`: an sshd in each host's namespace, for `npm run status -- --lab` from the
 * operator's namespace. Undo: `stopLabSshd` (sshd.ts).
 */
import { startLabSshd } from "../sshd.js";
import type { Stage } from "./run.js";

export const sshdStage: Stage = {
  title: (r) => `sshd in ${r.plan.hosts.length} host(s), for npm run status -- --lab`,
  async up(r) {
    await startLabSshd(r.state, r.plan, r.concurrency);
  },
};
