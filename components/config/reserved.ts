/** Names an endpoint may not have, and the name it gets when it gives none. Pure. */

/** The plugin's own data files (`felix.txt`, `groups.txt`): an endpoint's file would replace one. */
export const PLUGIN_DATA_NAMES: readonly string[] = ["felix", "groups"];

/**
 * The Docker names of the system containers the program runs on a host (`components/host.ts`):
 * an endpoint's container (or the container it attaches) must not be one of them.
 */
export const SYSTEM_CONTAINER_NAMES: readonly string[] = [
  "felix",
  "aclmgr",
  "bird",
  "plugin-endpoint",
  "plugin-network",
];

/** Every name an endpoint may not have. */
export const RESERVED_ENDPOINT_NAMES: readonly string[] = [
  ...new Set([...PLUGIN_DATA_NAMES, ...SYSTEM_CONTAINER_NAMES]),
];

/** Why an endpoint may not be called `name`, or undefined when it may. */
export function reservedNameProblem(name: string): string | undefined {
  if (PLUGIN_DATA_NAMES.includes(name)) {
    return "is reserved: the plugin's own data file has that name";
  }
  if (SYSTEM_CONTAINER_NAMES.includes(name)) {
    return (
      "is reserved: a system container of the host has that name " +
      `(${SYSTEM_CONTAINER_NAMES.join(", ")})`
    );
  }
  return undefined;
}

/** The seed's default endpoint name: the IP with dots as underscores (`192_168_1_1`). */
export function defaultEndpointName(ip: string): string {
  return ip.replaceAll(".", "_");
}
