/**
 * One endpoint: a `calico:util` container started with no network on its host, wired by the
 * rendered endpoint script (veth `tap<id>`, /32, default route, fixed MAC), and its plugin
 * data file on the controller, so the plugin tells Felix and the ACL Manager about it.
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { CalicoHost } from "./host.js";
import type { ClusterModel, EndpointModel } from "./model.js";
import { PATHS } from "./model.js";
import { renderEndpointData, renderEndpointScript, shQuote } from "./render/index.js";
import { atomicWriteScript, remoteFile, sudoFor } from "./ssh.js";

export interface CalicoEndpointArgs {
  model: ClusterModel;
  endpoint: EndpointModel;
  /** The host the container runs on. */
  host: CalicoHost;
  /** The controller, where the plugin reads its data. */
  controller: CalicoHost;
}

/** Where an endpoint's wiring script lives on its host. */
export function endpointScriptPath(endpoint: EndpointModel): string {
  return `${PATHS.scriptDir}/endpoint-${endpoint.name}.sh`;
}

export class CalicoEndpoint extends pulumi.ComponentResource {
  public readonly container: docker.Container;
  /** The docker container id: the endpoint id Felix and the plugin know it by. */
  public readonly containerId: pulumi.Output<string>;
  public readonly wiring: command.remote.Command;
  public readonly dataFile: command.remote.Command;

  constructor(name: string, args: CalicoEndpointArgs, opts?: pulumi.ComponentResourceOptions) {
    super("calico-docker:endpoint:CalicoEndpoint", name, {}, opts);
    const { endpoint, host, controller } = args;
    const child = (extra: pulumi.CustomResourceOptions = {}) =>
      pulumi.mergeOptions({ parent: this }, extra);

    // The container: no network of its own (`--net=none`). It is not restarted by Docker:
    // a restarted container gets a fresh, unwired namespace. After a host reboot,
    // `pulumi up --refresh` sees it stopped and recreates it, and the new id re-wires it.
    this.container = new docker.Container(
      name,
      {
        name: endpoint.containerName,
        image: host.images.util!,
        networkMode: "none",
        restart: "no",
        mustRun: true,
        labels: [
          { label: "calico-docker.role", value: "endpoint" },
          { label: "calico-docker.host-identity", value: host.identity },
          { label: "calico-docker.endpoint", value: endpoint.name },
          { label: "calico-docker.ip", value: endpoint.ip },
          { label: "calico-docker.group", value: endpoint.group },
        ],
      },
      child({
        provider: host.provider,
        deleteBeforeReplace: true,
        dependsOn: [host.ready],
      }),
    );
    this.containerId = this.container.id;

    // The wiring: the script (rendered for this container id) is kept on the host so that
    // `remove` runs the very text that `add` ran; a new container id replaces the wiring
    // (old one removed first).
    const script = this.containerId.apply((id) => renderEndpointScript(endpoint, id));
    const path = endpointScriptPath(endpoint);
    const sudo = sudoFor(host.user);
    this.wiring = new command.remote.Command(
      `${name}-wiring`,
      {
        connection: host.connection,
        create: `${atomicWriteScript(host.user, path, 0o755)}\n${sudo}bash ${shQuote(path)} add`,
        delete: [
          `if [ -f ${shQuote(path)} ]; then ${sudo}bash ${shQuote(path)} remove; fi`,
          `${sudo}rm -f ${shQuote(path)}`,
        ].join("\n"),
        stdin: script,
        triggers: [this.containerId],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: [host.prepared, this.container],
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["connection"],
      }),
    );

    // The plugin's data file on the controller, written atomically and updated in place
    // (the plugin watches the directory), after the wiring so Felix finds the tap.
    this.dataFile = remoteFile(
      `${name}-data`,
      {
        host: controller.name,
        identity: controller.identity,
        connection: controller.connection,
        user: controller.user,
        path: `${PATHS.dataDir}/${endpoint.dataFile}`,
        content: this.containerId.apply((id) => renderEndpointData(endpoint, id)),
        replaceOnChange: false,
      },
      child({ dependsOn: [controller.prepared, this.wiring] }),
    );

    this.registerOutputs({ containerId: this.containerId });
  }
}
