/**
 * calico-docker: Calico container networking on Docker hosts, from one validated stack config.
 *
 * Stack config -> validated config -> cluster model -> resources. A bad config stops here,
 * before any resource is created, with one message naming every bad key and value.
 */
import * as pulumi from "@pulumi/pulumi";
import { CalicoCluster } from "./components/cluster.js";
import { ConfigError, loadConfig } from "./components/config.js";
import { buildModel, type ClusterModel } from "./components/model.js";
import type { Deployment } from "./components/names.js";
import { rawFromStackConfig } from "./components/stack-keys.js";

/**
 * Stack config entries (as `pulumi.runtime.allConfig()` gives them: structured values as JSON
 * strings) to the cluster model. A bad config becomes a RunError: Pulumi prints the message,
 * which names every bad key and value, without a stack trace, before any resource exists.
 */
function modelFromStackConfig(
  entries: Record<string, unknown>,
  deployment: Deployment,
): ClusterModel {
  try {
    return buildModel(
      loadConfig(rawFromStackConfig(entries, { isSecret: runtimeIsSecret }), deployment),
      deployment,
    );
  } catch (err) {
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

/**
 * Whether the runtime holds a config key as a secret (set with `--secret`). The SDK keeps
 * this in `runtime.isConfigSecret`, which its typings mark internal; without it every key
 * counts as plain, and a stack secret named by an endpoint is refused rather than trusted.
 */
function runtimeIsSecret(fullKey: string): boolean {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  return runtime.isConfigSecret?.(fullKey) ?? false;
}

// Structured values (hosts, endpoints, gce...) arrive as JSON strings; stack-keys.ts parses them.
// The project and stack name every GCE resource and tag, and the local SSH directory.
const model = modelFromStackConfig(pulumi.runtime.allConfig(), {
  project: pulumi.getProject(),
  stack: pulumi.getStack(),
});

const config = new pulumi.Config();
const cluster = new CalicoCluster("calico", {
  model,
  ...(model.config.sshKeySupplied ? { sshPrivateKey: config.requireSecret("sshPrivateKey") } : {}),
  // The stack secrets endpoints and registries name (`secretEnv`, `passwordSecret`): each
  // its own top-level key, set with `pulumi config set --secret <key>`.
  secrets: Object.fromEntries(model.config.secretKeys.map((k) => [k, config.requireSecret(k)])),
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
