/**
 * One endpoint: a container started with no network on its host (the util image, or the
 * workload the stack names: image, command, environment, limits, volumes), or a running
 * container something else made (`attach: true`); wired by the rendered endpoint script
 * (veth `tap<id>`, /32, default route, fixed MAC), and its plugin data file on the
 * controller, so the plugin tells Felix and the ACL Manager about it.
 *
 * Replacing the container (a new image, command or environment) goes in this order, so no
 * data file ever names a container that is gone: the data file is removed (the plugin
 * withdraws the endpoint), the wiring is removed, the old container is deleted, the new one
 * created and wired, and the data file written with the new id. (The container, the wiring
 * and the data file are all `deleteBeforeReplace`, and the wiring and data file carry the
 * container id in their triggers, so Pulumi deletes them before the container they follow.)
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { CalicoHost } from "./host.js";
import type { ClusterModel, EndpointModel } from "./model.js";
import { PATHS } from "./model.js";
import {
  attachLookupScript,
  ENDPOINT_RESTART_POLICY,
  LABELS,
  renderEndpointData,
  renderEndpointScript,
} from "./render/index.js";
import { keptScriptCommands, remoteFile } from "./ssh.js";
import type { Workload } from "./workload.js";

export interface CalicoEndpointArgs {
  model: ClusterModel;
  endpoint: EndpointModel;
  /** The host the container runs on. */
  host: CalicoHost;
  /** The controller, where the plugin reads its data. */
  controller: CalicoHost;
  /**
   * The values of the stack secrets this endpoint's `secretEnv` names, by key (secrets).
   * They reach the container's environment and nothing else.
   */
  secrets?: Record<string, pulumi.Input<string>>;
}

/** Where an endpoint's wiring script lives on its host. */
export function endpointScriptPath(endpoint: EndpointModel): string {
  return `${PATHS.scriptDir}/endpoint-${endpoint.name}.sh`;
}

/**
 * The labels every endpoint container the program runs carries: the host agent of
 * `calico-docker.host` wires a container labelled `calico-docker.role=endpoint` at every
 * start, running the script of `calico-docker.endpoint`.
 */
export function endpointLabels(
  endpoint: EndpointModel,
  hostIdentity: pulumi.Input<string>,
): docker.types.input.ContainerLabel[] {
  return [
    { label: LABELS.role, value: "endpoint" },
    { label: LABELS.host, value: endpoint.host },
    { label: LABELS.hostIdentity, value: hostIdentity },
    { label: LABELS.endpoint, value: endpoint.name },
    { label: LABELS.ip, value: endpoint.ip },
    { label: LABELS.group, value: endpoint.group },
  ];
}

/**
 * The container of a workload endpoint: no network (`--net=none`, the script wires it), never
 * privileged, the stack's command, environment (secret values stay secret: each is its own
 * secret Output), working directory, user, limits, volumes and labels.
 */
export function workloadContainerArgs(
  endpoint: EndpointModel,
  workload: Extract<Workload, { kind: "run" }>,
  image: pulumi.Input<string>,
  hostIdentity: pulumi.Input<string>,
  secrets: Record<string, pulumi.Input<string>>,
): docker.ContainerArgs {
  const plain = Object.entries(workload.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const secret = Object.entries(workload.secretEnv)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([variable, key]) => {
      const value = secrets[key];
      if (value === undefined) {
        throw new Error(
          `${endpoint.configPath}.secretEnv.${variable}: the stack secret ${key} was not passed to the endpoint`,
        );
      }
      return pulumi.secret(value).apply((v) => `${variable}=${v}`);
    });
  const userLabels = Object.entries(workload.labels).map(([label, value]) => ({ label, value }));
  return {
    name: endpoint.containerName,
    image,
    networkMode: "none",
    privileged: false,
    restart: ENDPOINT_RESTART_POLICY,
    mustRun: true,
    ...(workload.command !== undefined ? { command: workload.command } : {}),
    ...(plain.length + secret.length > 0 ? { envs: [...plain, ...secret] } : {}),
    ...(workload.workingDir !== undefined ? { workingDir: workload.workingDir } : {}),
    ...(workload.user !== undefined ? { user: workload.user } : {}),
    ...(workload.memoryMb !== undefined ? { memory: workload.memoryMb } : {}),
    ...(workload.cpus !== undefined ? { cpus: String(workload.cpus) } : {}),
    ...(workload.volumes.length > 0
      ? {
          volumes: workload.volumes.map((v) => ({
            hostPath: v.hostPath,
            containerPath: v.containerPath,
            readOnly: v.readOnly,
          })),
        }
      : {}),
    labels: [...endpointLabels(endpoint, hostIdentity), ...userLabels],
  };
}

export class CalicoEndpoint extends pulumi.ComponentResource {
  /** The container the program runs; undefined for an attached endpoint. */
  public readonly container?: docker.Container;
  /** The image pulled for a workload that names one. */
  public readonly image?: docker.RemoteImage;
  /** The check that finds an attached container (attach: true). */
  public readonly lookup?: command.remote.Command;
  /** The docker container id: the endpoint id Felix and the plugin know it by. */
  public readonly containerId: pulumi.Output<string>;
  public readonly wiring: command.remote.Command;
  public readonly dataFile: command.remote.Command;

  constructor(name: string, args: CalicoEndpointArgs, opts?: pulumi.ComponentResourceOptions) {
    super("calico-docker:endpoint:CalicoEndpoint", name, {}, opts);
    const { endpoint, host, controller } = args;
    const child = (extra: pulumi.CustomResourceOptions = {}) =>
      pulumi.mergeOptions({ parent: this }, extra);
    const workload = endpoint.workload;

    let started: pulumi.Resource;
    let containerId: pulumi.Output<string>;
    if (workload.kind === "attach") {
      // Someone else's container: found, never created, stopped or deleted (no delete).
      this.lookup = new command.remote.Command(
        `${name}-attach`,
        {
          connection: host.connection,
          create: attachLookupScript(endpoint),
          triggers: [host.identity],
          addPreviousOutputInEnv: false,
        },
        child({ dependsOn: [host.ready], additionalSecretOutputs: ["connection"] }),
      );
      containerId = this.lookup.stdout.apply((out) => lastLine(out));
      started = this.lookup;
    } else {
      // The image: the util image built on the host, or the named one pulled on this
      // endpoint's host through that host's provider (its registry logins included).
      let image: pulumi.Input<string>;
      if (workload.image === undefined) {
        image = host.images.util!;
      } else {
        this.image = new docker.RemoteImage(
          `${name}-image`,
          { name: workload.image, keepLocally: true },
          child({ provider: host.provider, dependsOn: [host.ready] }),
        );
        const pulled = this.image;
        image = pulumi.all([pulled.imageId, pulled.name]).apply(([id, n]) => id || n);
      }
      // The container: no network of its own (`--net=none`). Docker brings it back after a
      // crash, a daemon restart or a reboot (restart policy `unless-stopped`: an operator's
      // `docker stop` or `docker kill` holds until the next `pulumi up`); each start gets a
      // fresh, unwired namespace, and the host agent (calico-agent.service) finds it by its
      // labels and runs the wiring script's `add` again within a second or two. The id stays
      // the same, so neither Pulumi nor `--refresh` is involved.
      const secretEnv = Object.keys(workload.secretEnv).length > 0;
      this.container = new docker.Container(
        name,
        workloadContainerArgs(endpoint, workload, image, host.identity, args.secrets ?? {}),
        child({
          provider: host.provider,
          deleteBeforeReplace: true,
          dependsOn: [host.ready],
          ...(secretEnv ? { additionalSecretOutputs: ["envs"] } : {}),
        }),
      );
      started = this.container;
      containerId = this.container.id;
    }
    this.containerId = containerId;
    // The wiring: the script (rendered for this container id) is kept on the host so that
    // `remove` runs the very text that `add` ran, and the agent finds it at every start; a new container id replaces the wiring
    // (old one removed first).
    const script = this.containerId.apply((id) => renderEndpointScript(endpoint, id));
    const path = endpointScriptPath(endpoint);
    this.wiring = new command.remote.Command(
      `${name}-wiring`,
      {
        connection: host.connection,
        ...keptScriptCommands(host.user, path, "add"),
        stdin: script,
        triggers: [this.containerId],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: [host.prepared, started],
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["connection"],
      }),
    );

    // The plugin's data file on the controller, written atomically (the plugin watches the
    // directory), after the wiring so Felix finds the tap. A new container id replaces it:
    // the old file goes before the old container does (see the top of this file).
    this.dataFile = remoteFile(
      `${name}-data`,
      {
        host: controller.name,
        identity: controller.identity,
        connection: controller.connection,
        user: controller.user,
        path: `${PATHS.dataDir}/${endpoint.dataFile}`,
        content: this.containerId.apply((id) => renderEndpointData(endpoint, id)),
        replaceOnChange: true,
      },
      child({ dependsOn: [controller.prepared, this.wiring] }),
    );

    this.registerOutputs({ containerId: this.containerId });
  }
}

function lastLine(text: string | undefined): string {
  const lines = (text ?? "").trim().split("\n");
  return lines[lines.length - 1]!.trim();
}
