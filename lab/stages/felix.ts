/**
 * Stage `Felix`: the real Felix in every host and the ACL Manager on the controller, from the
 * image built from images/felix/Dockerfile, with the rendered felix.cfg / acl_manager.cfg.
 *
 * A host runs them as `--net=host` containers; a lab host is a named network namespace, and
 * Docker cannot start a container in one. So each runs as a container of the lab's daemon
 * whose main process first enters its host's namespace (`nsenter --net=<bind-mounted netns>`,
 * hence CAP_SYS_ADMIN), mounts a sysfs of that namespace over /sys (Felix finds its taps in
 * /sys/class/net), and then execs the image's own entry point; it needs CAP_NET_ADMIN
 * (routes, ARP, iptables, ipsets), CAP_NET_RAW, and /proc/sys writable (proxy_arp and
 * route_localnet per tap: `systempaths=unconfined`) — the pieces of `--privileged` it uses,
 * since a privileged container cannot start here. The image's health check runs the same way
 * (in the host's namespace), and the host agent restarts a container Docker reports
 * unhealthy, as on a host. They restart with the daemon (`--restart=always`), entering the
 * same named namespace again.
 *
 * With `--felix stand-in` the lab does Felix's routing part itself (a host route and proxy
 * ARP per tap) and programs no policy; `check` then says that no policy was tested.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { renderAclManagerCfg, renderFelixCfg } from "../../components/render/index.js";
import { LABELS } from "../../components/render/agent-script.js";
import { LabError } from "../context.js";
import { docker, LAB_LABEL } from "../docker.js";
import { ipBatch, netnsPath, pool, runIn, sleep } from "../exec.js";
import type { HostPlan, LabPlan } from "../plan.js";
import type { StateDir } from "../state.js";
import { ensureLabFelixImage } from "./felix-image.js";
import type { LabRun, Stage } from "./run.js";

/** Where a system container finds its host's namespace (bind-mounted). */
const NETNS_IN_CONTAINER = "/run/calico/netns";

/**
 * The lab's health check timing: the image's check (a HEARTBEAT answered within 10 s), run
 * every 5 s instead of a host's 30 s, so that a hung Felix is restarted within about a
 * minute; three misses in a row, as on a host, so that a Felix busy on a loaded machine is
 * not taken for a hung one.
 */
export const LAB_HEALTH = { intervalS: 5, timeoutS: 20, retries: 3, startPeriodS: 30 };

export type SystemRole = "felix" | "aclmgr";

export interface SystemContainer {
  role: SystemRole;
  host: string;
  name: string;
}

export function systemContainerName(prefix: string, h: HostPlan, role: SystemRole): string {
  return `${prefix}-h${h.index}-${role}`;
}

/** Every system container of the lab: Felix per host, the ACL Manager on the controller. */
export function systemContainers(plan: LabPlan, controller: string): SystemContainer[] {
  return plan.hosts.flatMap((h) => [
    { role: "felix" as const, host: h.name, name: systemContainerName(plan.prefix, h, "felix") },
    ...(h.name === controller
      ? [
          {
            role: "aclmgr" as const,
            host: h.name,
            name: systemContainerName(plan.prefix, h, "aclmgr"),
          },
        ]
      : []),
  ]);
}

/** `docker run` arguments of a system container, as the lab runs it (see above). */
export function systemRunArgs(
  c: SystemContainer,
  h: HostPlan,
  prefix: string,
  image: string,
  cfg: string,
  logDir: string,
): string[] {
  const entry = c.role === "felix" ? "calico-felix" : "calico-acl-manager";
  const cfgIn = c.role === "felix" ? "/etc/calico/felix.cfg" : "/etc/calico/acl_manager.cfg";
  const enter = ["nsenter", `--net=${NETNS_IN_CONTAINER}`, "--"];
  // Felix looks for its taps in /sys/class/net: sysfs shows the namespace of whoever mounts
  // it, so it is mounted again (in the container's own mount namespace) once inside.
  const remountSys = ["sh", "-c", 'mount -t sysfs sysfs /sys && exec "$@"', c.role];
  return [
    "run",
    "-d",
    "--name",
    c.name,
    "--restart=always",
    "--network=none",
    "--cap-add=NET_ADMIN",
    "--cap-add=NET_RAW",
    "--cap-add=SYS_ADMIN",
    "--security-opt=systempaths=unconfined",
    "-v",
    `${netnsPath(h.ns)}:${NETNS_IN_CONTAINER}:ro`,
    "-v",
    `${logDir}:/var/log/calico`,
    "-v",
    `${cfg}:${cfgIn}:ro`,
    "--label",
    `${LABELS.role}=${c.role}`,
    "--label",
    `${LABELS.host}=${h.name}`,
    "--label",
    `${LAB_LABEL}=${prefix}`,
    `--health-cmd=${enter.join(" ")} calico-health`,
    `--health-interval=${LAB_HEALTH.intervalS}s`,
    `--health-timeout=${LAB_HEALTH.timeoutS}s`,
    `--health-retries=${LAB_HEALTH.retries}`,
    `--health-start-period=${LAB_HEALTH.startPeriodS}s`,
    image,
    ...enter,
    ...remountSys,
    entry,
    `--config-file=${cfgIn}`,
  ];
}

/** The rendered config of a system container, written into the state folder. */
async function writeConfig(r: LabRun, c: SystemContainer, h: HostPlan): Promise<string> {
  const dir = path.join(r.state.hostRoot(h.index), "etc", "calico");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, c.role === "felix" ? "felix.cfg" : "acl_manager.cfg");
  const text =
    c.role === "felix"
      ? renderFelixCfg(r.model, r.model.hosts[h.index]!)
      : renderAclManagerCfg(r.model);
  await writeFile(file, text);
  return file;
}

export function labLogDir(state: StateDir, h: HostPlan): string {
  return path.join(state.hostRoot(h.index), "var", "log", "calico");
}

export const felixStage: Stage = {
  title: (r) =>
    `Felix in ${r.plan.hosts.length} host(s) and the ACL Manager on ${r.model.controller.name}`,
  applies: (r) => r.felix === "real",
  async up(r: LabRun) {
    const host = r.st.docker!.host;
    const image = await ensureLabFelixImage(r, host);
    const containers = systemContainers(r.plan, r.model.controller.name);
    await pool(containers, r.concurrency, async (c) => {
      const h = r.plan.hosts.find((x) => x.name === c.host)!;
      const cfg = await writeConfig(r, c, h);
      const logDir = labLogDir(r.state, h);
      mkdirSync(logDir, { recursive: true });
      await docker(host, systemRunArgs(c, h, r.plan.prefix, image, cfg, logDir));
    });
    r.st.felix = { mode: "real", image, containers };
    r.save();
    await sleep(500);
    await assertRunning(host, containers);
  },
};

/** A container that exited at once (bad config, missing capability) fails `up` with its log. */
async function assertRunning(host: string, containers: SystemContainer[]): Promise<void> {
  for (const c of containers) {
    const { stdout } = await docker(host, ["inspect", "-f", "{{.State.Running}}", c.name]);
    if (stdout.trim() !== "true") {
      const logs = await docker(host, ["logs", "--tail", "20", c.name], { okCodes: [1] });
      throw new LabError(
        `${c.role} on ${c.host} (${c.name}) is not running:\n    ` +
          (logs.stdout + logs.stderr).trim().split("\n").join("\n    "),
      );
    }
  }
}

/** What `up` says it does in place of Felix, in its output and the check report. */
export const FELIX_STAND_IN =
  "Felix stand-in (--felix stand-in): the lab does the routing part of Felix's job itself, a " +
  "host route `<ip> dev <tap>` and proxy ARP (proxy_delay 0) on each tap. No ACLs are " +
  "programmed: NO POLICY WAS TESTED.";

export const standInStage: Stage = {
  title: () => "Felix stand-in: host route and proxy ARP per tap (no policy)",
  applies: (r) => r.felix === "stand-in",
  async up(r: LabRun) {
    await felixStandIn(r.plan, r.concurrency);
    r.st.felix = { mode: "stand-in" };
    r.save();
    r.log(`    (${FELIX_STAND_IN})`);
  },
};

/** Felix's routing part, per host: `<ip> dev <tap>` and proxy ARP with no delay on each tap. */
export async function felixStandIn(plan: LabPlan, concurrency: number, only?: string[]) {
  await pool(plan.hosts, concurrency, async (h) => {
    const eps = plan.endpoints.filter(
      (e) => e.host === h.name && (only === undefined || only.includes(e.name)),
    );
    if (eps.length === 0) return;
    await ipBatch(
      h.ns,
      eps.map((e) => `route replace ${e.ip}/32 dev ${e.tap}`),
    );
    // A fresh tap answers ARP only after proxy_delay (~0.8 s): set it to 0.
    for (let i = 0; i < eps.length; i += 100) {
      await runIn(h.ns, "sysctl", [
        "-q",
        "-w",
        ...eps
          .slice(i, i + 100)
          .flatMap((e) => [
            `net.ipv4.conf.${e.tap}.proxy_arp=1`,
            `net.ipv4.neigh.${e.tap}.proxy_delay=0`,
          ]),
      ]);
    }
  });
}
