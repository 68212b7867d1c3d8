/**
 * calico-docker policies, checked at preview time:
 *   pulumi preview --policy-pack policy
 * The rules themselves are pure functions in rules.ts.
 */
import * as gcp from "@pulumi/gcp";
import { PolicyPack, validateResourceOfType } from "@pulumi/policy";
import {
  dockerProviderViolations,
  ipForwardViolations,
  openToWorldViolations,
  sshViolations,
  workloadEndpointViolations,
  type ContainerProps,
  type FirewallProps,
} from "./rules.js";

const report = (problems: string[], reportViolation: (message: string) => void) => {
  for (const p of problems) reportViolation(p);
};

new PolicyPack("calico-docker", {
  enforcementLevel: "mandatory",
  policies: [
    {
      name: "no-world-ingress-but-icmp",
      description: "No firewall rule opens anything but ICMP to 0.0.0.0/0.",
      validateResource: validateResourceOfType(gcp.compute.Firewall, (fw, _args, reportViolation) =>
        report(openToWorldViolations(fw as FirewallProps), reportViolation),
      ),
    },
    {
      name: "ssh-from-listed-ranges",
      description:
        "SSH (tcp/22) only from listed ranges: never 0.0.0.0/0, none wider than /16, " +
        "at most 0.01% of the public IPv4 space in all.",
      configSchema: {
        properties: { allowedRanges: { type: "array", items: { type: "string" } } },
      },
      validateResource: validateResourceOfType(gcp.compute.Firewall, (fw, args, reportViolation) =>
        report(
          sshViolations(
            fw as FirewallProps,
            args.getConfig<{ allowedRanges?: string[] }>().allowedRanges,
          ),
          reportViolation,
        ),
      ),
    },
    {
      name: "instances-forward-ip",
      description: "Every instance has canIpForward: Calico hosts route container addresses.",
      validateResource: validateResourceOfType(
        gcp.compute.Instance,
        (instance, _args, reportViolation) =>
          report(ipForwardViolations(instance), reportViolation),
      ),
    },
    {
      name: "docker-over-ssh-only",
      description: "Docker providers reach their daemon over ssh:// only.",
      validateResource: (args, reportViolation) => {
        if (args.type !== "pulumi:providers:docker") return;
        report(dockerProviderViolations(args.props as { host?: string }), reportViolation);
      },
    },
    {
      name: "workload-endpoints-confined",
      description:
        "Endpoint containers are never privileged, stay off the host's network (networkMode none) and bind host paths only from allowedHostPaths.",
      configSchema: {
        properties: { allowedHostPaths: { type: "array", items: { type: "string" } } },
      },
      validateResource: (args, reportViolation) => {
        if (args.type !== "docker:index/container:Container") return;
        report(
          workloadEndpointViolations(
            args.props as ContainerProps,
            args.getConfig<{ allowedHostPaths?: string[] }>().allowedHostPaths,
          ),
          reportViolation,
        );
      },
    },
  ],
});
