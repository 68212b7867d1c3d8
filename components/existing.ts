/**
 * The `existing` platform: hosts you already have, reached at the addresses the stack
 * gives. Nothing is created.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ClusterModel } from "./model.js";
import type { HostReach, HostReachMap } from "./platform.js";

/** Each host's reach: its configured SSH address (also its identity) and internal address. */
export function existingHosts(model: ClusterModel): HostReachMap {
  return new Map(
    model.hosts.map((h): [string, HostReach] => [
      h.name,
      {
        address: pulumi.output(h.address!),
        internal: pulumi.output(h.internalAddress),
        identity: pulumi.output(h.address!),
        dependsOn: [],
      },
    ]),
  );
}
