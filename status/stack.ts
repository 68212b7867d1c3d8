/**
 * A live stack as a target of the health probes: the model from `Pulumi.<stack>.yaml`, and
 * from the stack's outputs the hosts' addresses and SSH users, the endpoints' container ids
 * and the SSH key. Outputs come from `pulumi stack output --json --show-secrets` when the
 * Pulumi CLI is on PATH, or from a file holding that command's output (`--outputs`).
 */
import { z } from "zod";
import type { ClusterModel } from "../components/model.js";
import { PATHS } from "../components/model.js";
import { netnsLinkName } from "../components/render/index.js";
import { StatusError } from "./errors.js";
import { readRegularFile } from "./read.js";
import { spawnCollect, type SshHost } from "./transport.js";
import type { StatusTarget } from "./types.js";

export { StatusError } from "./errors.js";

/** The host agent's systemd unit. */
export const AGENT_UNIT = "calico-agent.service";
/** BIRD's control socket inside the bird container. */
export const BIRD_SOCKET = "/var/run/bird/bird.ctl";

const outputsSchema = z.object({
  hosts: z.array(
    z.object({
      name: z.string(),
      controller: z.boolean().optional(),
      internalAddress: z.string().optional(),
      externalAddress: z.string().min(1),
      sshUser: z.string().optional(),
    }),
  ),
  endpoints: z
    .array(z.object({ name: z.string(), containerId: z.string().regex(/^[0-9a-f]{12,64}$/) }))
    .default([]),
  sshPrivateKey: z.string().optional(),
});
export type StackOutputs = z.infer<typeof outputsSchema>;

export function parseOutputs(text: string, source: string): StackOutputs {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StatusError(`${source}: not JSON (${(e as Error).message})`);
  }
  const r = outputsSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new StatusError(
      `${source}: ${first.path.join(".") || "(top)"}: ${first.message} ` +
        "(expected the output of `pulumi stack output --json --show-secrets`)",
    );
  }
  return r.data;
}

/** The stack's outputs: from a file, or from the Pulumi CLI when it is on PATH. */
export async function readOutputs(stack: string, file?: string): Promise<StackOutputs> {
  if (file !== undefined) {
    return parseOutputs(readRegularFile(file, "--outputs"), file);
  }
  let r;
  try {
    r = await spawnCollect(
      "pulumi",
      ["stack", "output", "--json", "--show-secrets", "--stack", stack],
      60_000,
    );
  } catch {
    throw new StatusError(
      "the Pulumi CLI is not on PATH: give the stack's outputs with --outputs FILE " +
        "(`pulumi stack output --json --show-secrets > FILE` where the CLI is; the file holds " +
        "the SSH key, keep it private), or run with --lab against the lab",
    );
  }
  if (r.truncated === true) {
    throw new StatusError(`pulumi stack output --stack ${stack} printed more than status reads`);
  }
  if (r.code !== 0) {
    throw new StatusError(`pulumi stack output --stack ${stack} failed: ${r.stderr.trim()}`);
  }
  return parseOutputs(r.stdout, `pulumi stack output --stack ${stack}`);
}

export interface StackTargetOptions {
  /** SSH user for every host, instead of the outputs' `sshUser`. */
  user?: string;
}

/** The engine's view of a live stack, and how SSH reaches each host. */
export function stackTarget(
  stack: string,
  model: ClusterModel,
  outputs: StackOutputs,
  opts: StackTargetOptions = {},
): { target: StatusTarget; hosts: SshHost[] } {
  const byName = new Map(outputs.hosts.map((h) => [h.name, h]));
  const hosts: SshHost[] = model.hosts.map((h) => {
    const o = byName.get(h.name);
    if (o === undefined) {
      throw new StatusError(
        `host ${h.name} of Pulumi.${stack}.yaml is not in the stack's outputs: run \`pulumi up\` first`,
      );
    }
    return { name: h.name, address: o.externalAddress, user: opts.user ?? o.sshUser ?? h.sshUser };
  });
  const ids = new Map(outputs.endpoints.map((e) => [e.name, e.containerId]));
  for (const e of model.endpoints) {
    if (!ids.has(e.name)) {
      throw new StatusError(
        `endpoint ${e.name} of Pulumi.${stack}.yaml is not in the stack's outputs: run \`pulumi up\` first`,
      );
    }
  }
  const user = new Map(hosts.map((h) => [h.name, h.user]));
  const target: StatusTarget = {
    stack,
    kind: "stack",
    model,
    endpointIds: ids,
    birdc: () => ["docker", "exec", "bird", "birdc", "-s", BIRD_SOCKET, "show", "protocols"],
    endpointNetns: (e) => netnsLinkName(e.name),
    dataDir: PATHS.dataDir,
    docker: { filters: () => ["label=calico-docker.role"] },
    systemContainers: true,
    agent: { name: AGENT_UNIT, argv: () => ["systemctl", "is-active", AGENT_UNIT] },
    felix: true,
    sudo: (h) => (user.get(h.name) === "root" ? [] : ["sudo", "-n"]),
  };
  return { target, hosts };
}
