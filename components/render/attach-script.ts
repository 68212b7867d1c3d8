/**
 * The lookup of an attached endpoint (`attach: true`): the container something else runs,
 * found by name. Pure: no I/O.
 */
import type { EndpointModel } from "../model.js";
import { shQuote } from "./text.js";

/**
 * The readiness-style check for an attached endpoint: the container called `name` runs on
 * the host with no network of its own (`--net=none`; never the host's namespace or another
 * container's), and its id is printed last. It fails `up` naming the endpoint's key. Run by
 * the program over SSH, and by the lab in the host's namespace (POSIX sh; any shell will do).
 */
export function attachLookupScript(endpoint: EndpointModel): string {
  const who = `calico-docker: ${endpoint.configPath} (${endpoint.name}, attach: true) on host ${endpoint.host}`;
  const q = shQuote;
  return [
    "set -u",
    `if ! out=$(docker inspect --type container -f '{{.Id}} {{.State.Running}} {{.HostConfig.NetworkMode}}' -- ${q(endpoint.containerName)} 2>&1); then`,
    `  echo ${q(`${who}: there is no container named ${endpoint.containerName} to attach; start it first (docker run --net=none --name ${endpoint.containerName} ...)`)} >&2`,
    '  echo "docker says: $out" >&2',
    "  exit 1",
    "fi",
    "read -r id running mode <<EOF",
    "$out",
    "EOF",
    'if [ "$running" != true ]; then',
    `  echo ${q(`${who}: container ${endpoint.containerName} is not running; start it, then run pulumi up again`)} >&2`,
    "  exit 1",
    "fi",
    'if [ "$mode" != none ]; then',
    `  echo ${q(`${who}: container ${endpoint.containerName} has network mode`)}" $mode; "${q(`an attached container must run with --net=none (Calico gives it its network)`)} >&2`,
    "  exit 1",
    "fi",
    'echo "$id"',
  ].join("\n");
}
