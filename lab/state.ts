/**
 * The lab's state folder, `.lab/<stack>/`: the plan it built, what it made so far (recorded
 * before each thing is made, so `down` cleans up after a half-failed `up`), BIRD's files,
 * the rendered scripts and a scratch root for the host preparation script.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { CalicoConfig } from "../components/config.js";
import { PATHS } from "../components/model.js";
import { AGENT_SCRIPT } from "../components/render/index.js";
import type { NeighbourRecord } from "./neigh.js";
import type { LabPlan } from "./plan.js";

/** The repository root (the lab's default state root is `<repo>/.lab`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_STATE_ROOT = path.join(REPO_ROOT, ".lab");
/** Short paths for sockets when the state folder is too deep for them. */
export const RUN_ROOT = "/run/calico-lab";

export interface BirdRecord {
  host: string;
  pid: number;
  /** Epoch ms when it was started. */
  startedAt: number;
}

/** The Docker daemon the lab's endpoint containers run on. */
export interface DockerRecord {
  /** DOCKER_HOST for it: `unix://<socket>`. */
  host: string;
  /** True when the lab started it (and stops it on `down`); false for a DOCKER_HOST given. */
  own: boolean;
  pid?: number;
}

/** A host agent the lab runs in a host's namespace. */
export interface AgentRecord {
  host: string;
  pid: number;
  startedAt: number;
}

/** How the lab runs Felix: from the felix image, or its routing stand-in (no policy). */
export type FelixRecord =
  | {
      mode: "real";
      image: string;
      containers: { role: "felix" | "aclmgr"; host: string; name: string }[];
    }
  | { mode: "stand-in" };

export interface LabState {
  version: 1;
  stack: string;
  prefix: string;
  createdAt: string;
  /** The validated config the lab was built from (the probes judge against it). */
  config?: CalicoConfig;
  /** The plan as built (check and down use it, not the possibly edited stack file). */
  plan?: LabPlan;
  /** Namespaces recorded before they are created. */
  namespaces: string[];
  birds: BirdRecord[];
  /** Set when the endpoints are Docker containers (the default). */
  docker?: DockerRecord;
  agents?: AgentRecord[];
  /** Real Felix and ACL Manager (their image and containers), or the routing stand-in. */
  felix?: FelixRecord;
  /**
   * Probe kinds the stack's rules named before a policy change (`apply`): check keeps probing
   * them, so that a revoked rule is proven revoked.
   */
  formerKinds?: { proto: "icmp" | "tcp" | "udp"; port?: number }[];
  /** The plugin's processes on the controller (real Felix only). */
  plugins?: { role: "endpoint" | "network"; pid: number; startedAt: number }[];
  /** The kernel-wide neighbour table limits `up` raised (see neigh.ts), to put back. */
  neighbour?: NeighbourRecord;
  /** Epoch ms when `up` finished. */
  upDoneAt?: number;
}

export class StateDir {
  constructor(
    public readonly root: string,
    public readonly stack: string,
  ) {}

  get dir(): string {
    return path.join(this.root, this.stack);
  }
  get file(): string {
    return path.join(this.dir, "state.json");
  }
  /** Short names: a BIRD control socket path must stay under 108 bytes. */
  birdConf(index: number): string {
    return path.join(this.dir, `bird-h${index}.conf`);
  }
  birdSocket(index: number): string {
    return path.join(this.dir, `bird-h${index}.ctl`);
  }
  birdPid(index: number): string {
    return path.join(this.dir, `bird-h${index}.pid`);
  }
  birdLog(index: number): string {
    return path.join(this.dir, `bird-h${index}.log`);
  }
  hostScript(index: number): string {
    return path.join(this.dir, `host-prepare-h${index}.sh`);
  }
  endpointScript(name: string): string {
    return path.join(this.dir, "endpoints", `endpoint-${name}.sh`);
  }
  /** The lab's SSH files: host keys, the operator's key, authorized_keys, known_hosts. */
  get sshDir(): string {
    return path.join(this.dir, "ssh");
  }
  sshdConf(index: number): string {
    return path.join(this.dir, `sshd-h${index}.conf`);
  }
  sshdPid(index: number): string {
    return path.join(this.dir, `sshd-h${index}.pid`);
  }
  sshdLog(index: number): string {
    return path.join(this.dir, `sshd-h${index}.log`);
  }
  /** The controller's plugin data directory, as `render/` makes it for production. */
  pluginDataDir(controllerIndex: number): string {
    return path.join(this.hostRoot(controllerIndex), PATHS.dataDir);
  }
  /** The lab's own dockerd: data root, exec root, socket, pid file and log. */
  get dockerDataRoot(): string {
    return path.join(this.dir, "docker");
  }
  /**
   * Docker's exec root holds containerd's sockets (`<exec-root>/containerd/containerd.sock.ttrpc`)
   * and a unix socket path has at most 107 bytes: under the state folder when that fits,
   * else under /run/calico-lab/<prefix>.
   */
  dockerExecRoot(prefix: string): string {
    const local = path.join(this.dir, "dx");
    return local.length + 40 < 108 ? local : path.join(RUN_ROOT, prefix, "dx");
  }
  dockerSocket(prefix: string): string {
    const local = path.join(this.dir, "docker.sock");
    return local.length < 100 ? local : path.join(RUN_ROOT, prefix, "docker.sock");
  }
  /** Where the paths of dockerSocket/dockerExecRoot go when the state folder is too deep. */
  runDir(prefix: string): string {
    return path.join(RUN_ROOT, prefix);
  }
  get dockerPid(): string {
    return path.join(this.dir, "docker.pid");
  }
  get dockerLog(): string {
    return path.join(this.dir, "dockerd.log");
  }
  /** The util image's root filesystem while it is made. */
  get imageRoot(): string {
    return path.join(this.dir, "util-rootfs");
  }
  /** The folder of all endpoint scripts (the host agents' CALICO_SCRIPT_DIR). */
  get endpointScripts(): string {
    return path.join(this.dir, "endpoints");
  }
  /** The host agent where host preparation installs it (under the host's CALICO_ROOT). */
  agentScript(index: number): string {
    return path.join(this.hostRoot(index), AGENT_SCRIPT);
  }
  agentLog(index: number): string {
    return path.join(this.dir, `calico-agent-h${index}.log`);
  }
  /** CALICO_ROOT for one host's preparation script: its files go here, not to `/`. */
  hostRoot(index: number): string {
    return path.join(this.dir, "root", `h${index}`);
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  read(): LabState | undefined {
    if (!this.exists()) return undefined;
    const state = JSON.parse(readFileSync(this.file, "utf8")) as LabState;
    if (state.version !== 1 || state.stack !== this.stack) {
      throw new Error(`${this.file} is not a lab state file for stack ${this.stack}`);
    }
    return state;
  }

  write(state: LabState): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
    renameSync(tmp, this.file);
  }
}
