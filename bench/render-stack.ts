/** The synthetic `existing` stacks bench:render measures: full-mesh BGP, `hosts` hosts. */
export const ENDPOINTS_PER_HOST = 50;

export function stack(
  hosts: number,
  endpoints = hosts * ENDPOINTS_PER_HOST,
): Record<string, unknown> {
  const perHost = Math.ceil(endpoints / hosts);
  return {
    platform: "existing",
    sshPrivateKey: { secret: true },
    ssh: { user: "core" },
    endpointPool: "192.168.0.0/16",
    bgp: { enabled: true, peering: "full-mesh" },
    hosts: Array.from({ length: hosts }, (_, i) => ({
      name: `host-${i + 1}`,
      address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    })),
    endpoints: Array.from({ length: endpoints }, (_, k) => {
      const h = Math.floor(k / perHost);
      // A /24 per host while they fit, else consecutive addresses of the pool.
      const n = perHost <= 254 ? h * 256 + (k % perHost) + 1 : k + 1;
      return {
        host: `host-${h + 1}`,
        ip: `192.168.${Math.floor(n / 256)}.${n % 256}`,
        group: `g${k % 10}`,
      };
    }),
  };
}
