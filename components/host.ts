/**
 * One Calico host, on any platform: wait until it is usable, prepare it, talk to its Docker
 * daemon over SSH, build the images there, deliver the rendered config and run the seed's
 * containers (Felix everywhere; ACL Manager and the plugin on the controller; BIRD when BGP
 * is on).
 */
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { buildContext, contextDockerfile, type ImageKind } from "./build-context.js";
import type { ClusterModel, HostModel } from "./model.js";
import { PATHS } from "./model.js";
import {
  LABELS,
  renderAclManagerCfg,
  renderBirdConf,
  renderFelixCfg,
  imageBuildScript,
  readinessScript,
  renderHostScript,
} from "./render/index.js";
import {
  connectionFor,
  keptScriptCommands,
  dockerSshOpts,
  remoteFile,
  sha256,
  type Connection,
  type SshDir,
} from "./ssh.js";

/** Where the bird image reads its config (images/bird/Dockerfile). */
export const BIRD_CONF_IN_CONTAINER = "/etc/bird/bird.conf";

/** The label that carries the hash of a container's rendered config. */
export const CONFIG_LABEL = "calico-docker.config-sha256";

export interface CalicoHostArgs {
  model: ClusterModel;
  host: HostModel;
  /** The address the operator's machine reaches the host's SSH daemon at. */
  address: pulumi.Input<string>;
  /** Changes when the machine is replaced (a GCE instance id; the address elsewhere). */
  identity: pulumi.Input<string>;
  /** The SSH private key (a secret). */
  privateKey: pulumi.Output<string>;
  /** That key's file as `ssh` names it (`~/...`), for the docker provider (see ssh.ts). */
  keyFile: pulumi.Output<string>;
  /** This stack's SSH directory (the known-hosts files go there too). */
  sshDir: SshDir;
  /** Private registries this host's Docker logs in to (passwords as secrets). */
  registryAuth?: docker.types.input.ProviderRegistryAuth[];
  /** Resources that must exist before SSH can work (the instance, the SSH firewall rule). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class CalicoHost extends pulumi.ComponentResource {
  public readonly name: string;
  public readonly user: string;
  /** Changes when the machine is replaced; part of every trigger on this host. */
  public readonly identity: pulumi.Output<string>;
  /** The SSH connection for remote commands (secret). */
  public readonly connection: pulumi.Output<Connection>;
  /** Passes once SSH answers and Docker works: everything else on the host waits for it. */
  public readonly ready: command.remote.Command;
  /** The host preparation script, applied. */
  public readonly prepared: command.remote.Command;
  /** This host's Docker daemon, over SSH. */
  public readonly provider: docker.Provider;
  /** Image references (an image id once built) by kind, for the images this host runs. */
  public readonly images: Partial<Record<ImageKind, pulumi.Output<string>>>;
  /** The rendered config files delivered to the host, by path. */
  public readonly files: Record<string, command.remote.Command>;
  /** The Calico containers on this host, by container name. */
  public readonly containers: Record<string, docker.Container>;

  constructor(name: string, args: CalicoHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("calico-docker:host:CalicoHost", name, {}, opts);
    const { model, host } = args;
    const child = (extra: pulumi.CustomResourceOptions = {}) =>
      pulumi.mergeOptions({ parent: this }, extra);
    this.name = host.name;
    this.user = host.sshUser;
    this.identity = pulumi.output(args.identity);
    this.connection = connectionFor(args.address, host.sshUser, args.privateKey);

    // 1. Readiness gate. A replaced machine (new identity) is waited for again, patiently
    // (a fresh instance's SSH daemon takes a while); everything else gives up in a minute.
    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: connectionFor(args.address, host.sshUser, args.privateKey, "patient"),
        create: readinessScript(host),
        triggers: [args.identity],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: args.dependsOn ?? [],
        additionalSecretOutputs: ["connection"],
        customTimeouts: { create: "20m" },
      }),
    );

    // 2. Host preparation: the script is put on the host (so `remove` finds the same text
    // that `apply` ran) and applied. A changed script (the host agent in it, an attached
    // endpoint, the SNAT exclusions) is applied again in place: `apply` converges, so
    // nothing is taken down first. A new machine is prepared afresh.
    const hostScript = renderHostScript(model, host);
    this.prepared = new command.remote.Command(
      `${name}-prepare`,
      {
        connection: this.connection,
        ...keptScriptCommands(host.sshUser, PATHS.hostScript, "apply"),
        stdin: hostScript,
        triggers: [this.identity],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: [this.ready],
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["connection"],
      }),
    );

    // 3. The Docker daemon over SSH (never TCP). It waits for the gate.
    const knownHosts = pulumi
      .output(args.identity)
      .apply(
        (id) =>
          `${args.sshDir.forSsh}/known_hosts-${host.name}-${id.replace(/[^A-Za-z0-9_.-]/g, "_")}`,
      );
    this.provider = new docker.Provider(
      `${name}-docker`,
      {
        host: pulumi.interpolate`ssh://${host.sshUser}@${args.address}`,
        sshOpts: dockerSshOpts(args.keyFile, knownHosts),
        ...(args.registryAuth !== undefined && args.registryAuth.length > 0
          ? { registryAuth: args.registryAuth }
          : {}),
      },
      child({ dependsOn: [this.ready] }),
    );
    const onDocker = (extra: pulumi.CustomResourceOptions = {}) =>
      child(pulumi.mergeOptions({ provider: this.provider, dependsOn: [this.ready] }, extra));

    // 4. Images, built on this host's daemon from this repository: no registry involved.
    const runs: ImageKind[] = ["felix", "util"];
    if (model.config.bgp.enabled) runs.push("bird");
    if (host.isController) runs.push("plugin");
    this.images = {};
    for (const kind of runs) this.images[kind] = this.image(name, model, kind, onDocker);

    // 5. Rendered config, delivered to the host; the containers bind-mount it.
    this.files = {};
    const deliver = (key: string, path: string, content: string) => {
      this.files[path] = remoteFile(
        `${name}-${key}`,
        {
          host: host.name,
          identity: this.identity,
          connection: this.connection,
          user: host.sshUser,
          path,
          content,
          replaceOnChange: true,
        },
        child({ dependsOn: [this.prepared] }),
      );
      return { file: this.files[path], hash: sha256(content) };
    };

    // 6. The containers, with the seed's flags.
    this.containers = {};
    const run = (
      containerName: string,
      image: pulumi.Output<string>,
      cmd: string[],
      mounts: docker.types.input.ContainerVolume[],
      config: { file: command.remote.Command; hash: string } | undefined,
    ) => {
      this.containers[containerName] = new docker.Container(
        `${name}-${containerName}`,
        {
          name: containerName,
          image,
          command: cmd,
          privileged: true,
          networkMode: "host",
          restart: "always",
          mustRun: true,
          volumes: [{ hostPath: PATHS.logDir, containerPath: PATHS.logDir }, ...mounts],
          labels: [
            { label: LABELS.role, value: containerName },
            // The host agent restarts this host's system containers that turn unhealthy.
            { label: LABELS.host, value: host.name },
            // A new machine behind the same address (a static IP) gets new containers.
            { label: LABELS.hostIdentity, value: this.identity },
            ...(config ? [{ label: CONFIG_LABEL, value: config.hash }] : []),
          ],
          logDriver: "json-file",
          logOpts: { "max-size": "10m", "max-file": "3" },
        },
        onDocker({
          deleteBeforeReplace: true,
          dependsOn: [this.prepared, ...(config ? [config.file] : [])],
        }),
      );
    };

    const felixCfg = deliver("felix-cfg", PATHS.felixCfg, renderFelixCfg(model, host));
    run(
      "felix",
      this.images.felix!,
      ["calico-felix", `--config-file=${PATHS.felixCfg}`],
      [{ hostPath: PATHS.felixCfg, containerPath: PATHS.felixCfg, readOnly: true }],
      felixCfg,
    );

    if (host.isController) {
      const aclCfg = deliver("acl-manager-cfg", PATHS.aclManagerCfg, renderAclManagerCfg(model));
      run(
        "aclmgr",
        this.images.felix!,
        ["calico-acl-manager", `--config-file=${PATHS.aclManagerCfg}`],
        [{ hostPath: PATHS.aclManagerCfg, containerPath: PATHS.aclManagerCfg, readOnly: true }],
        aclCfg,
      );
      const pluginMount = { hostPath: PATHS.pluginDir, containerPath: PATHS.pluginDir };
      const common = ["--data-dir", PATHS.dataDir, "--log-dir", PATHS.logDir];
      run("plugin-network", this.images.plugin!, ["network", ...common], [pluginMount], undefined);
      run(
        "plugin-endpoint",
        this.images.plugin!,
        [
          "endpoint",
          ...common,
          "--resync-delay-ms",
          String(model.config.plugin.resyncDelayMs),
          "--felix-timeout-ms",
          String(model.config.plugin.requestTimeoutMs),
        ],
        [pluginMount],
        undefined,
      );
    }

    if (model.config.bgp.enabled) {
      const birdConf = deliver("bird-conf", PATHS.birdConf, renderBirdConf(model, host));
      run(
        "bird",
        this.images.bird!,
        ["run_bird", BIRD_CONF_IN_CONTAINER],
        [{ hostPath: PATHS.birdConf, containerPath: BIRD_CONF_IN_CONTAINER, readOnly: true }],
        birdConf,
      );
    }

    this.registerOutputs({ ready: this.ready.stdout });
  }

  /**
   * One image on this host's daemon. The default names (`calico:felix`...) are built on the
   * host from this repository's Dockerfiles: the build context goes as a tar on the SSH
   * connection's stdin (`docker build -`), so no registry is needed. (`docker.Image` is not
   * used: its build client ignores the provider's `sshOpts`, so it could not use our key.)
   * A name changed under `images:` in the stack config is a prebuilt image the host pulls.
   * Containers run the image by id, so a rebuild replaces them.
   */
  private image(
    name: string,
    model: ClusterModel,
    kind: ImageKind,
    onDocker: (extra?: pulumi.CustomResourceOptions) => pulumi.CustomResourceOptions,
  ): pulumi.Output<string> {
    const ref = model.config.images[kind];
    if (ref !== `calico:${kind}`) {
      const pulled = new docker.RemoteImage(
        `${name}-image-${kind}`,
        { name: ref, keepLocally: true },
        onDocker(),
      );
      return pulumi.all([pulled.imageId, pulled.name]).apply(([id, n]) => id || n);
    }
    // Strings only through pulumi.output: it would unwrap the tar's Buffer into a plain object.
    const context = buildContext(kind);
    const built = new command.remote.Command(
      `${name}-image-${kind}`,
      {
        connection: this.connection,
        create: imageBuildScript(ref, contextDockerfile(kind)),
        stdin: pulumi.output(context.then((c) => c.tar.toString("base64"))),
        // A changed context rebuilds (and so replaces the containers that run the image).
        triggers: [pulumi.output(context.then((c) => c.hash)), this.identity],
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        dependsOn: [this.ready],
        additionalSecretOutputs: ["connection"],
        customTimeouts: { create: "45m", update: "45m" },
      },
    );
    // The last line the build script prints is the image id.
    return built.stdout.apply((out) => lastLine(out) || ref);
  }
}

function lastLine(text: string | undefined): string {
  const lines = (text ?? "").trim().split("\n");
  return lines[lines.length - 1]!.trim();
}
