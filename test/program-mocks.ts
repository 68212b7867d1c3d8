/**
 * Pulumi mocks for the program tests: records every resource registration (type, name,
 * inputs, provider) and answers with plausible provider outputs (docker container ids of 64
 * hex chars, GCE instance ids and external IPs, a real ed25519 public key).
 *
 * Use: `const world = await installMocks(stackConfig)` FIRST, then `await import("../index.ts")`
 * (or the components), then `await world.settle()`. One installation per test process.
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import { rmSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { readStackEntries } from "../components/stackfile.js";
import { sshDirFor } from "../components/ssh.js";

export const PROJECT = "calico-docker";

/** The wire markers Pulumi uses for a secret value inside serialized inputs. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Recorded {
  type: string;
  name: string;
  /** Inputs as the engine got them: secrets still wrapped (see `isSecretValue`). */
  raw: Record<string, unknown>;
  /** Inputs with secrets unwrapped. */
  inputs: Record<string, unknown>;
  provider: string | undefined;
  custom: boolean;
}

export function isSecretValue(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG
  );
}

/** Removes the secret wrappers, recursively. */
export function unwrap(value: unknown): unknown {
  if (isSecretValue(value)) return unwrap((value as { value: unknown }).value);
  if (Array.isArray(value)) return value.map(unwrap);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrap(v)]));
  }
  return value;
}

/** A real ed25519 key pair; the public half in OpenSSH format. */
function keyPair(): { publicOpenssh: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]);
  return {
    publicOpenssh: `ssh-ed25519 ${blob.toString("base64")} mock`,
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

export const MOCK_KEY = keyPair();

/** The 64-hex docker id the mock gives a container. */
export function mockContainerId(name: string): string {
  return createHash("sha256").update(`container/${name}`).digest("hex");
}

/** Stack config entries as the Pulumi runtime presents them: structured values as JSON. */
export function runtimeConfig(entries: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(entries).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

export function stackFileConfig(stack: string): Record<string, unknown> {
  return readStackEntries(new URL(`../Pulumi.${stack}.yaml`, import.meta.url).pathname);
}

export interface World {
  resources: Recorded[];
  /** Resolves once no registration has arrived for a while. */
  settle(): Promise<void>;
  ofType(type: string): Recorded[];
  byName(name: string): Recorded;
  /** Removes the SSH directory (key and known hosts) the program wrote for this stack. */
  cleanup(): void;
}

export async function installMocks(
  entries: Record<string, unknown>,
  opts: { stack?: string; secretKeys?: string[] } = {},
): Promise<World> {
  const stack = opts.stack ?? "test";
  const resources: Recorded[] = [];
  let instanceCount = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const raw = args.inputs as Record<string, unknown>;
        const inputs = unwrap(raw) as Record<string, unknown>;
        resources.push({
          type: args.type,
          name: args.name,
          raw,
          inputs,
          provider: args.provider,
          custom: args.custom ?? true,
        });
        const state: Record<string, unknown> = { ...raw };
        let id = `${args.name}-id`;
        switch (args.type) {
          case "docker:index/container:Container":
            id = mockContainerId(args.name);
            break;
          case "gcp:compute/instance:Instance": {
            instanceCount += 1;
            state.instanceId = `70000000000000${String(instanceCount).padStart(5, "0")}`;
            state.selfLink = `https://www.googleapis.com/compute/v1/projects/p/zones/${String(inputs.zone)}/instances/${String(inputs.name)}`;
            const nics = (inputs.networkInterfaces as Record<string, unknown>[]).map((nic) => ({
              ...nic,
              accessConfigs: ((nic.accessConfigs as Record<string, unknown>[]) ?? []).map((ac) => ({
                ...ac,
                natIp: ac.natIp ?? `198.51.100.${instanceCount}`,
              })),
            }));
            state.networkInterfaces = nics;
            break;
          }
          case "gcp:compute/network:Network":
          case "gcp:compute/subnetwork:Subnetwork":
            state.selfLink = `https://www.googleapis.com/compute/v1/projects/p/global/x/${args.name}`;
            break;
          case "tls:index/privateKey:PrivateKey":
            state.privateKeyOpenssh = MOCK_KEY.privatePem;
            state.publicKeyOpenssh = `${MOCK_KEY.publicOpenssh}\n`;
            break;
          case "command:remote:Command":
            // An image build prints the image id last; an attached endpoint's lookup, the
            // id of the running container it found.
            state.stdout = /-image-[a-z]+$/.test(args.name)
              ? `sha256:${createHash("sha256").update(args.name).digest("hex")}\n`
              : /-attach$/.test(args.name)
                ? `${mockContainerId(args.name)}\n`
                : "";
            state.stderr = "";
            break;
        }
        return { id, state };
      },
      call(args) {
        if (args.token === "tls:index/getPublicKey:getPublicKey") {
          return { publicKeyOpenssh: `${MOCK_KEY.publicOpenssh}\n` };
        }
        if (args.token === "gcp:compute/getNetwork:getNetwork") {
          return {
            id: `projects/p/global/networks/${String(args.inputs.name)}`,
            selfLink: `https://www.googleapis.com/compute/v1/projects/p/global/networks/${String(args.inputs.name)}`,
          };
        }
        throw new Error(`unexpected call ${args.token}`);
      },
    },
    PROJECT,
    stack,
    false,
  );
  pulumi.runtime.setAllConfig(runtimeConfig(entries), opts.secretKeys);

  return {
    resources,
    async settle() {
      let last = -1;
      let quiet = 0;
      while (quiet < 10) {
        await new Promise((r) => setTimeout(r, 10));
        if (resources.length === last) quiet += 1;
        else {
          quiet = 0;
          last = resources.length;
        }
      }
    },
    ofType(type) {
      return resources.filter((r) => r.type === type);
    },
    byName(name) {
      const found = resources.filter((r) => r.name === name);
      if (found.length !== 1) throw new Error(`${found.length} resources named ${name}`);
      return found[0]!;
    },
    cleanup() {
      rmSync(sshDirFor(PROJECT, stack).local, { recursive: true, force: true });
    },
  };
}

/** Resolves an Output's value (mocks resolve everything that is known). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

export const T = {
  container: "docker:index/container:Container",
  image: "docker:index/image:Image",
  remoteImage: "docker:index/remoteImage:RemoteImage",
  dockerProvider: "pulumi:providers:docker",
  command: "command:remote:Command",
  instance: "gcp:compute/instance:Instance",
  network: "gcp:compute/network:Network",
  subnet: "gcp:compute/subnetwork:Subnetwork",
  firewall: "gcp:compute/firewall:Firewall",
  route: "gcp:compute/route:Route",
  privateKey: "tls:index/privateKey:PrivateKey",
} as const;

/**
 * A GCE stack of `hosts` hosts (one region) and `endpoints` endpoints spread evenly over
 * them, each host's endpoints in its own /24 of 192.168.0.0/16, two groups.
 */
export function syntheticStack(hosts: number, endpoints: number): Record<string, unknown> {
  const hostList = Array.from({ length: hosts }, (_, i) => ({
    name: `host-${i + 1}`,
    zone: "us-central1-a",
  }));
  const endpointList = Array.from({ length: endpoints }, (_, i) => {
    const h = i % hosts;
    const n = Math.floor(i / hosts);
    return {
      host: `host-${h + 1}`,
      ip: `192.168.${h + Math.floor(n / 250) * hosts}.${(n % 250) + 1}`,
      group: i % 2 === 0 ? "web" : "db",
    };
  });
  return {
    "calico-docker:platform": "gce",
    "calico-docker:endpointPool": "192.168.0.0/16",
    // One route per endpoint: a project whose routes quota was raised to fit them.
    "calico-docker:gce": {
      subnetCidr: "10.240.0.0/16",
      sshSourceRanges: ["203.0.113.0/24"],
      routeQuota: Math.max(250, endpoints),
    },
    "calico-docker:hosts": hostList,
    "calico-docker:endpoints": endpointList,
  };
}
