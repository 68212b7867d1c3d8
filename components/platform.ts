/**
 * The seam between a platform and the hosts on it: what the host layer needs to reach one
 * host, whichever platform made it (`Fabric.reach` in gce.ts, `existingHosts(model)`).
 */
import type * as pulumi from "@pulumi/pulumi";

export interface HostReach {
  /** The address to SSH to. */
  address: pulumi.Output<string>;
  /** The address Felix, BIRD and the plugin use between hosts. */
  internal: pulumi.Output<string>;
  /** Changes when the machine is replaced: keys every host-side step and the known-hosts file. */
  identity: pulumi.Output<string>;
  /** What must exist before the host can be reached (its instance, the firewall rules). */
  dependsOn: pulumi.Resource[];
}

/** Every host of a stack by name. */
export type HostReachMap = ReadonlyMap<string, HostReach>;
