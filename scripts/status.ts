/**
 * `npm run status`: the entry point. For `--lab` the lab hands status its target and transport
 * (status/ itself knows nothing of the lab); the lab's own errors are the operator's.
 */
import { LabError } from "../lab/context.js";
import { labSshTransport, labTarget } from "../lab/probes.js";
import { REPO_ROOT } from "../lab/state.js";
import { statusCli, type LabSource } from "../status/cli.js";
import { StatusError } from "../status/errors.js";

const lab: LabSource = ({ stack, stateRoot, connectTimeoutS }) => {
  try {
    const l = labTarget({ stack, ...(stateRoot !== undefined ? { stateRoot } : {}) });
    return { target: l.target, transport: labSshTransport(l.plan, l.state, connectTimeoutS) };
  } catch (e) {
    throw e instanceof LabError ? new StatusError(e.message) : e;
  }
};

process.exitCode = await statusCli(process.argv, { repoRoot: REPO_ROOT, lab });
