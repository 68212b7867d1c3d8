/**
 * calico-docker: Calico container networking on Docker hosts, from one validated stack config.
 *
 * Stack config -> validated config -> cluster model -> resources. A bad config stops here,
 * before any resource is created, with one message naming every bad key and value.
 */
import * as pulumi from "@pulumi/pulumi";
import { CalicoCluster, modelFromStackConfig } from "./components/cluster.js";

// Structured values (hosts, endpoints, gce...) arrive as JSON strings; config.ts parses them.
// The project and stack name every GCE resource and tag, and the local SSH directory.
const model = modelFromStackConfig(pulumi.runtime.allConfig(), {
  project: pulumi.getProject(),
  stack: pulumi.getStack(),
});

const config = new pulumi.Config();
const cluster = new CalicoCluster("calico", {
  model,
  ...(model.config.sshKeySupplied ? { sshPrivateKey: config.requireSecret("sshPrivateKey") } : {}),
});

/** Every host: name, role, internal and external address, and how to SSH to it. */
export const hosts = cluster.hostOutputs;
/** Every endpoint: name, host, IP, group, MAC and docker container id. */
export const endpoints = cluster.endpointOutputs;
/** Commands that show the deployment at work: routes, iptables, SNAT, containers, BGP. */
export const verify = cluster.verifyOutputs;
/** The controller host (ACL Manager and plugin). */
export const controller = model.controller.name;
/** The SSH private key the hosts accept (secret: `pulumi stack output sshPrivateKey --show-secrets`). */
export const sshPrivateKey = cluster.sshPrivateKey;
