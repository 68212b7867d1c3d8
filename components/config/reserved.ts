/** Names an endpoint may not have, and the name it gets when it gives none. Pure. */

/** Names whose data file would overwrite the plugin's own `felix.txt` or `groups.txt`. */
export const RESERVED_ENDPOINT_NAMES: readonly string[] = ["felix", "groups"];

/** The seed's default endpoint name: the IP with dots as underscores (`192_168_1_1`). */
export function defaultEndpointName(ip: string): string {
  return ip.replaceAll(".", "_");
}
