/**
 * Stage `host agents`: the agent host preparation installed, run in each host's namespace as
 * its systemd unit would (`calico-agent.sh run`) against the lab's daemon. It wires every
 * endpoint container of its host when it starts — in `up` as after any restart — and
 * restarts a system container (felix, aclmgr) that Docker reports unhealthy.
 * Undo: `stopAgents` (agent.ts), found by path whatever the state file says.
 */
import { startAgent } from "../agent.js";
import type { LabRun, Stage } from "./run.js";

export const agentsStage: Stage = {
  title: (r) => `host agent in each of ${r.plan.hosts.length} host(s)`,
  applies: (r) => r.st.docker !== undefined,
  async up(r: LabRun) {
    r.st.agents = [];
    for (const h of r.plan.hosts) {
      r.st.agents.push(startAgent(r.state, h, r.st.docker!.host));
      r.save();
    }
  },
};
