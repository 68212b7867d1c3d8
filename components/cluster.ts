/**
 * The whole deployment: the platform (GCE, or hosts you already have), one CalicoHost per
 * host, one CalicoEndpoint per endpoint, the plugin's shared data on the controller, and the
 * outputs an operator needs (addresses, SSH commands, verification commands).
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { CalicoEndpoint } from "./endpoint.js";
import { existingHosts } from "./existing.js";
import { Fabric } from "./gce.js";
import { CalicoHost } from "./host.js";
import type { ClusterModel } from "./model.js";
import { PATHS } from "./model.js";
import type { HostReachMap } from "./platform.js";
import { renderFelixTxt, renderGroupsTxt, SNAT_CHAIN } from "./render/index.js";
import { KEY_FILE, keyFileFor, remoteFile, sshDirFor } from "./ssh.js";
import type * as command from "@pulumi/command";

export interface CalicoClusterArgs {
  model: ClusterModel;
  /**
   * The SSH private key (OpenSSH or PEM) the hosts accept, as a secret; required for
   * `platform: existing`. When absent an ed25519 key is generated and kept in the state.
   */
  sshPrivateKey?: pulumi.Input<string>;
  /**
   * The values of the stack secrets the config names (`config.secretKeys`: endpoints'
   * `secretEnv`, registries' `passwordSecret`), by key, as secrets.
   */
  secrets?: Record<string, pulumi.Input<string>>;
}

export interface HostOutput {
  name: string;
  controller: boolean;
  internalAddress: string;
  externalAddress: string;
  /** The user the program (and `npm run status`) logs in as. */
  sshUser: string;
  ssh: string;
}

export interface EndpointOutput {
  name: string;
  host: string;
  ip: string;
  group: string;
  mac: string;
  /** The image the endpoint runs (the util image when it names none); "" when attached. */
  image: string;
  /** True when the endpoint wires a container something else runs. */
  attached: boolean;
  containerId: string;
}

export interface VerifyOutput {
  host: string;
  routes: string;
  iptables: string;
  snat: string;
  containers: string;
  bgp?: string;
}

export class CalicoCluster extends pulumi.ComponentResource {
  public readonly hosts: CalicoHost[];
  public readonly endpoints: CalicoEndpoint[];
  public readonly fabric?: Fabric;
  /** The SSH private key (secret). */
  public readonly sshPrivateKey: pulumi.Output<string>;
  public readonly sshPublicKey: pulumi.Output<string>;
  /** Plugin data shared by all endpoints, on the controller: felix.txt, groups.txt. */
  public readonly pluginData: command.remote.Command[];
  public readonly hostOutputs: pulumi.Output<HostOutput[]>;
  public readonly endpointOutputs: pulumi.Output<EndpointOutput[]>;
  public readonly verifyOutputs: pulumi.Output<VerifyOutput[]>;

  constructor(name: string, args: CalicoClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    // Registered as `calico-docker:index:CalicoCluster` before; the alias keeps existing
    // stacks' resources in place under the new type.
    super(
      "calico-docker:cluster:CalicoCluster",
      name,
      {},
      pulumi.mergeOptions(opts, { aliases: [{ type: "calico-docker:index:CalicoCluster" }] }),
    );
    const { model } = args;
    const config = model.config;

    // The SSH key: supplied (secret config), or generated here and kept in the state.
    if (args.sshPrivateKey !== undefined) {
      this.sshPrivateKey = pulumi.secret(args.sshPrivateKey);
      this.sshPublicKey = pulumi.unsecret(
        tls.getPublicKeyOutput({ privateKeyOpenssh: this.sshPrivateKey }, { parent: this })
          .publicKeyOpenssh,
      );
    } else {
      const key = new tls.PrivateKey(
        `${name}-ssh-key`,
        { algorithm: "ED25519" },
        {
          parent: this,
          additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"],
        },
      );
      this.sshPrivateKey = pulumi.secret(key.privateKeyOpenssh);
      this.sshPublicKey = key.publicKeyOpenssh;
    }
    if (model.deployment === undefined) {
      throw new Error("CalicoCluster needs a model built with its deployment (project and stack)");
    }
    const sshDir = sshDirFor(model.deployment.project, model.deployment.stack);
    const keyFile = keyFileFor(this.sshPrivateKey, sshDir);

    // The platform.
    let reach: HostReachMap;
    if (config.platform === "gce") {
      const provider =
        config.gce.project !== undefined
          ? new gcp.Provider(
              `${name}-gcp`,
              { project: config.gce.project, region: config.gce.region },
              { parent: this },
            )
          : undefined;
      this.fabric = new Fabric(
        `${name}-gce`,
        { model, sshPublicKey: this.sshPublicKey },
        { parent: this, ...(provider ? { providers: [provider] } : {}) },
      );
      reach = this.fabric.reach;
    } else {
      reach = existingHosts(model);
    }

    // Stack secrets, by key; every one the config names must be given.
    const secrets: Record<string, pulumi.Output<string>> = {};
    for (const key of config.secretKeys) {
      const value = args.secrets?.[key];
      if (value === undefined) {
        throw new Error(`the stack secret ${key} is named in the config but was not passed in`);
      }
      secrets[key] = pulumi.secret(value);
    }
    // Private registries: every host's Docker logs in with these (the password a secret).
    const registryAuth = config.registries.map((r) => ({
      address: r.address,
      username: r.username,
      password: secrets[r.passwordSecret]!,
    }));

    // The hosts.
    this.hosts = model.hosts.map((h) => {
      const r = reach.get(h.name)!;
      return new CalicoHost(
        `${name}-${h.name}`,
        {
          model,
          host: h,
          address: r.address,
          identity: r.identity,
          privateKey: this.sshPrivateKey,
          keyFile,
          sshDir,
          registryAuth,
          dependsOn: r.dependsOn,
        },
        { parent: this },
      );
    });
    const hostByName = new Map(this.hosts.map((h) => [h.name, h]));
    const controller = hostByName.get(model.controller.name)!;

    // The plugin's shared data on the controller, rewritten in place when it changes.
    const shared: [string, string, string | undefined][] = [
      ["felix-txt", `${PATHS.dataDir}/felix.txt`, renderFelixTxt(model)],
      ["groups-txt", `${PATHS.dataDir}/groups.txt`, renderGroupsTxt(model)],
    ];
    this.pluginData = shared
      .filter((s): s is [string, string, string] => s[2] !== undefined)
      .map(([key, path, content]) =>
        remoteFile(
          `${name}-${key}`,
          {
            host: controller.name,
            identity: controller.identity,
            connection: controller.connection,
            user: controller.user,
            path,
            content,
          },
          { parent: this, dependsOn: [controller.prepared] },
        ),
      );

    // The endpoints.
    this.endpoints = model.endpoints.map(
      (e) =>
        new CalicoEndpoint(
          `${name}-ep-${e.name}`,
          {
            model,
            endpoint: e,
            host: hostByName.get(e.host)!,
            controller,
            secrets: Object.fromEntries(
              e.workload.kind === "run"
                ? Object.values(e.workload.secretEnv).map((k) => [k, secrets[k]!])
                : [],
            ),
          },
          { parent: this },
        ),
    );

    // Outputs.
    const keyPath = `${sshDir.forSsh}/${KEY_FILE}`;
    this.hostOutputs = pulumi.all(
      model.hosts.map((h) => {
        const r = reach.get(h.name)!;
        return pulumi.all([r.address, r.internal]).apply(([address, internal]) => ({
          name: h.name,
          controller: h.isController,
          internalAddress: internal,
          externalAddress: address,
          sshUser: h.sshUser,
          ssh: `ssh -i ${keyPath} ${h.sshUser}@${address}`,
        }));
      }),
    );
    this.endpointOutputs = pulumi.all(
      this.endpoints.map((ep, i) => {
        const e = model.endpoints[i]!;
        return ep.containerId.apply((id) => ({
          name: e.name,
          host: e.host,
          ip: e.ip,
          group: e.group,
          mac: e.mac,
          image: e.workload.kind === "attach" ? "" : (e.workload.image ?? config.images.util),
          attached: e.workload.kind === "attach",
          containerId: id,
        }));
      }),
    );
    this.verifyOutputs = pulumi.all(
      model.hosts.map((h) =>
        reach.get(h.name)!.address.apply((address) => {
          const ssh = `ssh -i ${keyPath} ${h.sshUser}@${address}`;
          // Felix's chains are in the legacy tables (libiptc), which a host whose iptables
          // is nf_tables (Flatcar) does not show: read them, and the SNAT chain beside
          // them, with the Felix container's own iptables (legacy, host network).
          const felixIptables = `${ssh} docker exec felix iptables`;
          return {
            host: h.name,
            routes: `${ssh} ip route`,
            iptables: `${felixIptables} -L -n`,
            snat: `${felixIptables} -t nat -S ${SNAT_CHAIN}`,
            containers: `${ssh} docker ps --filter label=calico-docker.role`,
            ...(config.bgp.enabled
              ? { bgp: `${ssh} docker exec bird birdc -s /var/run/bird/bird.ctl show protocols` }
              : {}),
          };
        }),
      ),
    );

    this.registerOutputs({
      hosts: this.hostOutputs,
      endpoints: this.endpointOutputs,
      verify: this.verifyOutputs,
    });
  }
}
