/**
 * The validated config that `loadConfig` returns: every default filled in, every
 * cross-reference resolved. Types only.
 */
import type { GceSubnet } from "../allocation.js";
import type { RegistryConfig, Workload } from "../workload.js";
import type { GroupRules, Parsed } from "./schema.js";

export interface HostConfig {
  name: string;
  zone: string;
  /** The zone's region (GCE). */
  region: string;
  machineType: string;
  /** SSH address: the given one (existing, or a static IP on GCE), else unknown until created. */
  address?: string;
  internalAddress: string;
  sshUser: string;
  endpointBlock?: string;
}

export interface EndpointConfig {
  name: string;
  host: string;
  ip: string;
  group: string;
  /** Where the endpoint is in the stack config, for messages: `endpoints[2]`. */
  configPath: string;
  /** What runs in the container: the program's own (an image) or an attached one. */
  workload: Workload;
}

export interface CalicoConfig {
  platform: "gce" | "existing";
  controller: string;
  hosts: HostConfig[];
  endpoints: EndpointConfig[];
  endpointPool: string;
  /** The MTU of both ends of every endpoint's veth. */
  vethMtu: number;
  bgp: {
    enabled: boolean;
    asNumber: number;
    peering: "full-mesh" | "route-reflector";
    routeReflectors: string[];
    session: "multihop" | "direct";
    connectDelaySeconds: number;
  };
  gce: Omit<Parsed["gce"], "region"> & {
    /** The provider region: gce.region, else the first host's. */
    region: string;
    /** One subnet per region the hosts use, carved from subnetCidr. */
    subnets: GceSubnet[];
  };
  /** True when the stack supplies `sshPrivateKey` (a secret); else the program generates one. */
  sshKeySupplied: boolean;
  groups: Record<string, GroupRules>;
  images: Parsed["images"];
  felix: Parsed["felix"];
  plugin: Parsed["plugin"];
  /** Directories workload volumes may bind from (absolute, normalised). */
  allowedHostPaths: string[];
  registries: RegistryConfig[];
  /** Every stack secret the program reads (secretEnv values, registry passwords), sorted. */
  secretKeys: string[];
}
