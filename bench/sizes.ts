/** The stacks the lab benchmarks build: N hosts x M endpoints each, BGP full mesh. */
import { loadConfig, type CalicoConfig } from "../components/config.js";

export interface Size {
  hosts: number;
  endpoints: number;
}

export function benchConfig({ hosts, endpoints }: Size): CalicoConfig {
  const zones = ["asia-east1-a", "us-central1-a"];
  return loadConfig({
    platform: "gce",
    endpointPool: "192.168.0.0/16",
    gce: { subnetCidr: "10.240.0.0/16", sshSourceRanges: ["203.0.113.0/24"] },
    bgp: { enabled: true, peering: "full-mesh" },
    hosts: Array.from({ length: hosts }, (_, h) => ({
      name: `host-${h + 1}`,
      zone: zones[h % zones.length],
    })),
    endpoints: Array.from({ length: hosts * endpoints }, (_, i) => {
      const h = Math.floor(i / endpoints);
      const n = i % endpoints;
      // Named apart from the shipped stacks' endpoints (their namespace links are
      // machine-wide names), so a bench runs beside a lab of those stacks.
      return {
        name: `b${h + 1}-${n + 1}`,
        host: `host-${h + 1}`,
        ip: `192.168.${h + 1}.${n + 1}`,
        group: `g${n % 4}`,
      };
    }),
  });
}

/** `2x3,10x50` -> sizes. */
export function parseSizes(text: string): Size[] {
  return text.split(",").map((t) => {
    const m = /^(\d+)x(\d+)$/.exec(t);
    if (!m) throw new Error(`--sizes: ${JSON.stringify(t)} is not HOSTSxENDPOINTS like 10x50`);
    return { hosts: Number(m[1]), endpoints: Number(m[2]) };
  });
}
