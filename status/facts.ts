/** A host's reply as facts: each section parsed once, for every judge to read. */
import type { Section, Sections } from "./gather.js";
import {
  parseBirdProtocols,
  parseContainers,
  parseEth0,
  parseLinks,
  parseProxyArp,
  parseRoutes,
  type Parsed,
} from "./parse.js";
import type { BgpSession, ContainerInfo, KernelRoute, LinkInfo } from "./types.js";

export interface HostFacts {
  /** A section as printed; `(not gathered)`, exit -1, when the reply lacks it. */
  section(name: string): Section;
  /** The host's containers when Docker answered (undefined: it did not, its section says why). */
  containers: Parsed<ContainerInfo[]> | undefined;
  /** BIRD's sessions when it answered on its control socket. */
  bird: BgpSession[] | undefined;
  routes: Parsed<KernelRoute[]>;
  links: Parsed<LinkInfo[]>;
  /** Tap -> its proxy_arp setting. */
  proxyArp: Map<string, string>;
  /** The eth0 of an endpoint's container (undefined: `ip` found none). */
  eth0(endpoint: string): Parsed<LinkInfo | undefined>;
}

const NOT_GATHERED: Section = { out: "(not gathered)", rc: -1 };

export function readFacts(sections: Sections): HostFacts {
  const section = (name: string) => sections.get(name) ?? NOT_GATHERED;
  const docker = sections.get("containers");
  const bird = sections.get("bird");
  return {
    section,
    containers: docker !== undefined && docker.rc === 0 ? parseContainers(docker.out) : undefined,
    bird: bird !== undefined && bird.rc === 0 ? parseBirdProtocols(bird.out) : undefined,
    routes: parseRoutes(section("routes").out),
    links: parseLinks(section("links").out),
    proxyArp: parseProxyArp(section("proxyarp").out),
    eth0: (endpoint) => parseEth0(section(`eth0 ${endpoint}`).out),
  };
}
