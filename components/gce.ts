/**
 * The GCE platform: a dedicated VPC network and regional subnets (or the given ones), least
 * privilege firewall rules on this stack's host tag, the hosts (IP forwarding on, Ignition
 * user-data, a fixed internal address from the model) and the static routes that carry the
 * endpoint addresses through Google's fabric. Every GCE name and the tag carry the stack's
 * prefix (names.ts), so two stacks in one GCP project neither collide nor admit each other.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterModel, HostModel } from "./model.js";
import { firewallRules, type FirewallRanges, type FirewallSuffix } from "./firewall.js";
import { gceNames, type GceNames } from "./names.js";
import type { HostReach, HostReachMap } from "./platform.js";
import { renderIgnition } from "./render/index.js";

export interface FabricArgs {
  model: ClusterModel;
  /** The SSH public key (OpenSSH format) that Ignition gives the `core` user. */
  sshPublicKey: pulumi.Input<string>;
}

/** What the host layer needs from one GCE instance. */
export interface GceHost {
  name: string;
  instance: gcp.compute.Instance;
  /** The address to SSH to: the static address, else the ephemeral external IP. */
  externalAddress: pulumi.Output<string>;
  internalAddress: pulumi.Output<string>;
  /** Changes when the instance is replaced (for the SSH known-hosts file). */
  identity: pulumi.Output<string>;
}

export class Fabric extends pulumi.ComponentResource {
  /** The network the hosts are in: its self link. */
  public readonly network: pulumi.Output<string>;
  public readonly subnets: gcp.compute.Subnetwork[];
  public readonly firewalls: gcp.compute.Firewall[];
  public readonly hosts: GceHost[];
  /** How the host layer reaches each instance (after the firewall rules let it in). */
  public readonly reach: HostReachMap;
  public readonly routes: gcp.compute.Route[];
  /** The GCE names and the host tag of this stack. */
  public readonly names: GceNames;

  constructor(name: string, args: FabricArgs, opts?: pulumi.ComponentResourceOptions) {
    super("calico-docker:gce:Fabric", name, {}, opts);
    const { model } = args;
    const gce = model.config.gce;
    if (model.deployment === undefined) {
      throw new Error("the GCE Fabric needs a model built with its deployment (project and stack)");
    }
    const names = gceNames(model.deployment);
    this.names = names;
    // Fixed names: a replacement must delete the old resource before making the new one.
    const child: pulumi.CustomResourceOptions = { parent: this, deleteBeforeReplace: true };

    // 1. Network and subnets: dedicated (removed by `pulumi destroy`), or the given ones.
    const subnetOfRegion = new Map<string, pulumi.Input<string>>();
    if (gce.network === undefined) {
      const network = new gcp.compute.Network(
        `${name}-net`,
        {
          name: names.network,
          autoCreateSubnetworks: false,
          description: "Calico hosts (calico-docker)",
          routingMode: "GLOBAL",
        },
        child,
      );
      this.network = network.selfLink;
      this.subnets = gce.subnets.map(
        (s) =>
          new gcp.compute.Subnetwork(
            `${name}-subnet-${s.region}`,
            {
              name: names.subnet(s.region),
              network: network.id,
              region: s.region,
              ipCidrRange: s.cidr,
              description: `Calico hosts in ${s.region}`,
            },
            child,
          ),
      );
      this.subnets.forEach((subnet, i) => subnetOfRegion.set(gce.subnets[i]!.region, subnet.id));
    } else {
      const network = gcp.compute.getNetworkOutput(
        { name: gce.network, ...(gce.project ? { project: gce.project } : {}) },
        { parent: this },
      );
      this.network = network.selfLink;
      this.subnets = [];
      // One region only with an existing network (config enforces it).
      for (const s of gce.subnets) subnetOfRegion.set(s.region, gce.subnetwork!);
    }

    // 2. Firewall rules, all ingress, all on this stack's host tag (and the host-to-host
    // ones from it only). Nothing but ICMP may ever be open to 0.0.0.0/0 (the policy pack
    // checks it too); here nothing is.
    const rule = (
      suffix: FirewallSuffix,
      description: string,
      allows: gcp.types.input.compute.FirewallAllow[],
      source: FirewallRanges | { sourceTags: string[] },
    ) =>
      new gcp.compute.Firewall(
        `${name}-${suffix}`,
        {
          name: names.firewall(suffix),
          network: this.network,
          description,
          direction: "INGRESS",
          targetTags: [names.hostTag],
          allows,
          ...source,
        },
        child,
      );
    const firewalls = firewallRules(model).map((r) =>
      rule(
        r.suffix,
        r.description,
        r.allows,
        r.source === "hosts" ? { sourceTags: [names.hostTag] } : r.source,
      ),
    );
    this.firewalls = firewalls;

    // 3. Instances. The internal address is fixed by the model, so every rendered file is
    // known at preview. Ignition runs on first boot only: a change to it replaces the
    // instance, and the fixed name and address mean the old one must go first.
    this.hosts = model.hosts.map((host) =>
      this.instance(name, names, model, host, args, subnetOfRegion),
    );
    this.reach = new Map(
      this.hosts.map((h): [string, HostReach] => [
        h.name,
        {
          address: h.externalAddress,
          internal: h.internalAddress,
          identity: h.identity,
          dependsOn: [h.instance, ...firewalls],
        },
      ]),
    );

    // 4. Static routes, one per endpoint (or per host block), all independent of each other
    // so the engine creates them in parallel. The instance id in the description makes a
    // route follow its next hop when that instance is replaced.
    const hostByName = new Map(this.hosts.map((h) => [h.name, h]));
    this.routes = model.routes.map((r) => {
      const next = hostByName.get(r.host)!;
      return new gcp.compute.Route(
        `${name}-${r.name}`,
        {
          name: names.route(r.name),
          network: this.network,
          destRange: r.destRange,
          nextHopInstance: next.instance.selfLink,
          nextHopInstanceZone: r.zone,
          priority: 1000,
          description: pulumi.interpolate`Calico endpoints ${r.destRange} via ${r.host} (instance ${next.identity})`,
        },
        child,
      );
    });

    this.registerOutputs({
      network: this.network,
      hosts: this.hosts.map((h) => ({ name: h.name, external: h.externalAddress })),
    });
  }

  private instance(
    name: string,
    names: GceNames,
    model: ClusterModel,
    host: HostModel,
    args: FabricArgs,
    subnetOfRegion: Map<string, pulumi.Input<string>>,
  ): GceHost {
    const gce = model.config.gce;
    const publicKey = pulumi.output(args.sshPublicKey);
    const userData = publicKey.apply((key) => renderIgnition(model, key.trim()));
    const instance = new gcp.compute.Instance(
      `${name}-${host.name}`,
      {
        // The instance name carries the stack's prefix. Felix, BIRD and the plugin know the
        // host by the config's name (FelixHostname, plugin data), not by the instance's.
        name: names.instance(host.name),
        zone: host.zone,
        machineType: host.machineType,
        canIpForward: true,
        tags: [names.hostTag],
        description: `Calico host ${host.name}${host.isController ? " (controller)" : ""}`,
        labels: {
          "calico-docker": "host",
          "calico-role": host.isController ? "controller" : "host",
          "calico-stack": names.prefix,
        },
        bootDisk: {
          autoDelete: true,
          initializeParams: { image: gce.image, size: 20, type: "pd-balanced" },
        },
        networkInterfaces: [
          {
            subnetwork: subnetOfRegion.get(host.region)!,
            networkIp: host.internalAddress,
            accessConfigs: [host.address !== undefined ? { natIp: host.address } : {}],
          },
        ],
        metadata: {
          "user-data": userData,
          // Ignition already gives `core` the key; the guest agent keeps it there too.
          "ssh-keys": publicKey.apply((key) => `core:${key.trim()}`),
          // Only our key gets in: project-wide keys are not copied to the hosts.
          "block-project-ssh-keys": "true",
        },
        // No service account: the hosts call no Google API.
        allowStoppingForUpdate: true,
      },
      {
        parent: this,
        deleteBeforeReplace: true,
        replaceOnChanges: ['metadata["user-data"]', "canIpForward"],
      },
    );
    const nic = instance.networkInterfaces.apply((nics) => nics[0]);
    return {
      name: host.name,
      instance,
      externalAddress:
        host.address !== undefined
          ? pulumi.output(host.address)
          : nic.apply((n) => n?.accessConfigs?.[0]?.natIp ?? ""),
      internalAddress: nic.apply((n) => n?.networkIp ?? host.internalAddress),
      identity: instance.instanceId,
    };
  }
}
