/**
 * One Calico host, on any platform: wait until it is usable, prepare it, talk to its Docker
 * daemon over SSH, build the images there, deliver the rendered config and run the seed's
 * containers (Felix everywhere; ACL Manager and the plugin on the controller; BIRD when BGP
 * is on).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterModel, HostModel } from "./model.js";
import { PATHS } from "./model.js";
import {
  LABELS,
  renderAclManagerCfg,
  renderBirdConf,
  renderFelixCfg,
  renderHostScript,
  shQuote,
} from "./render/index.js";
import {
  atomicWriteScript,
  connectionFor,
  dockerSshOpts,
  remoteFile,
  sha256,
  sudoFor,
  type Connection,
  type SshDir,
} from "./ssh.js";

export type ImageKind = "felix" | "bird" | "plugin" | "util";

/** Where each image is built from (paths relative to the repository root). */
export const IMAGE_BUILDS: Record<ImageKind, { context: string; dockerfile: string }> = {
  felix: { context: "images/felix", dockerfile: "images/felix/Dockerfile" },
  bird: { context: "images/bird", dockerfile: "images/bird/Dockerfile" },
  // The plugin's image needs the workspace's lockfile, so its context is the repository root.
  plugin: { context: ".", dockerfile: "images/plugin/Dockerfile" },
  util: { context: "images/util", dockerfile: "images/util/Dockerfile" },
};

/** Where the bird image reads its config (images/bird/Dockerfile). */
export const BIRD_CONF_IN_CONTAINER = "/etc/bird/bird.conf";

/** The label that carries the hash of a container's rendered config. */
export const CONFIG_LABEL = "calico-docker.config-sha256";

/** How long the readiness gate waits for Docker, in 5 s steps (10 minutes). */
const READY_ATTEMPTS = 120;

export interface CalicoHostArgs {
  model: ClusterModel;
  host: HostModel;
  /** The address the operator's machine reaches the host's SSH daemon at. */
  address: pulumi.Input<string>;
  /** Changes when the machine is replaced (a GCE instance id; the address elsewhere). */
  identity: pulumi.Input<string>;
  /** The SSH private key (a secret). */
  privateKey: pulumi.Output<string>;
  /** That key's file as `ssh` names it (`~/...`), for the docker provider (see ssh.ts). */
  keyFile: pulumi.Output<string>;
  /** This stack's SSH directory (the known-hosts files go there too). */
  sshDir: SshDir;
  /** Private registries this host's Docker logs in to (passwords as secrets). */
  registryAuth?: docker.types.input.ProviderRegistryAuth[];
  /** Resources that must exist before SSH can work (the instance, the SSH firewall rule). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The readiness gate: SSH answers, `docker info` works for the user, and root is reachable. */
export function readinessScript(host: HostModel): string {
  const who = `${host.sshUser}@${host.name}`;
  const rootCheck =
    host.sshUser === "root"
      ? ""
      : [
          "if ! sudo -n true 2>/dev/null; then",
          `  echo ${shQuote(`calico-docker: ${who} cannot run sudo without a password; host preparation needs root`)} >&2`,
          "  exit 1",
          "fi",
        ].join("\n");
  return [
    "set -u",
    "i=0",
    "until docker info >/dev/null 2>&1; do",
    "  i=$((i + 1))",
    `  if [ "$i" -ge ${READY_ATTEMPTS} ]; then`,
    `    echo ${shQuote(`calico-docker: ${who}: docker is not usable after ${(READY_ATTEMPTS * 5) / 60} minutes (daemon not running, or the user not in the docker group?); docker info says:`)} >&2`,
    "    docker info >&2 || true",
    "    exit 1",
    "  fi",
    "  sleep 5",
    "done",
    rootCheck,
    `echo "ready: $(hostname) docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)"`,
  ]
    .filter((line) => line !== "")
    .join("\n");
}

export class CalicoHost extends pulumi.ComponentResource {
  public readonly name: string;
  public readonly user: string;
  /** Changes when the machine is replaced; part of every trigger on this host. */
  public readonly identity: pulumi.Output<string>;
  /** The SSH connection for remote commands (secret). */
  public readonly connection: pulumi.Output<Connection>;
  /** Passes once SSH answers and Docker works: everything else on the host waits for it. */
  public readonly ready: command.remote.Command;
  /** The host preparation script, applied. */
  public readonly prepared: command.remote.Command;
  /** This host's Docker daemon, over SSH. */
  public readonly provider: docker.Provider;
  /** Image references (an image id once built) by kind, for the images this host runs. */
  public readonly images: Partial<Record<ImageKind, pulumi.Output<string>>>;
  /** The rendered config files delivered to the host, by path. */
  public readonly files: Record<string, command.remote.Command>;
  /** The Calico containers on this host, by container name. */
  public readonly containers: Record<string, docker.Container>;

  constructor(name: string, args: CalicoHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("calico-docker:host:CalicoHost", name, {}, opts);
    const { model, host } = args;
    const child = (extra: pulumi.CustomResourceOptions = {}) =>
      pulumi.mergeOptions({ parent: this }, extra);
    this.name = host.name;
    this.user = host.sshUser;
    this.identity = pulumi.output(args.identity);
    const sudo = sudoFor(host.sshUser);
    this.connection = connectionFor(args.address, host.sshUser, args.privateKey);

    // 1. Readiness gate. A replaced machine (new identity) is waited for again.
    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: this.connection,
        create: readinessScript(host),
        triggers: [args.identity],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: args.dependsOn ?? [],
        additionalSecretOutputs: ["connection"],
        customTimeouts: { create: "20m" },
      }),
    );

    // 2. Host preparation: the script is put on the host (so `remove` finds the same text
    // that `apply` ran) and applied; a change to the script removes the old state first.
    const hostScript = renderHostScript(model, host.name);
    this.prepared = new command.remote.Command(
      `${name}-prepare`,
      {
        connection: this.connection,
        create: `${atomicWriteScript(host.sshUser, PATHS.hostScript, 0o755)}\n${sudo}bash ${shQuote(PATHS.hostScript)} apply`,
        delete: [
          `if [ -f ${shQuote(PATHS.hostScript)} ]; then ${sudo}bash ${shQuote(PATHS.hostScript)} remove; fi`,
          `${sudo}rm -f ${shQuote(PATHS.hostScript)}`,
        ].join("\n"),
        stdin: hostScript,
        triggers: [sha256(hostScript), this.identity],
        addPreviousOutputInEnv: false,
      },
      child({
        dependsOn: [this.ready],
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["connection"],
      }),
    );

    // 3. The Docker daemon over SSH (never TCP). It waits for the gate.
    const knownHosts = pulumi
      .output(args.identity)
      .apply(
        (id) =>
          `${args.sshDir.forSsh}/known_hosts-${host.name}-${id.replace(/[^A-Za-z0-9_.-]/g, "_")}`,
      );
    this.provider = new docker.Provider(
      `${name}-docker`,
      {
        host: pulumi.interpolate`ssh://${host.sshUser}@${args.address}`,
        sshOpts: dockerSshOpts(args.keyFile, knownHosts),
        ...(args.registryAuth !== undefined && args.registryAuth.length > 0
          ? { registryAuth: args.registryAuth }
          : {}),
      },
      child({ dependsOn: [this.ready] }),
    );
    const onDocker = (extra: pulumi.CustomResourceOptions = {}) =>
      child(pulumi.mergeOptions({ provider: this.provider, dependsOn: [this.ready] }, extra));

    // 4. Images, built on this host's daemon from this repository: no registry involved.
    const runs: ImageKind[] = ["felix", "util"];
    if (model.config.bgp.enabled) runs.push("bird");
    if (host.isController) runs.push("plugin");
    this.images = {};
    for (const kind of runs) this.images[kind] = this.image(name, model, kind, onDocker);

    // 5. Rendered config, delivered to the host; the containers bind-mount it.
    this.files = {};
    const deliver = (key: string, path: string, content: string) => {
      this.files[path] = remoteFile(
        `${name}-${key}`,
        {
          host: host.name,
          identity: this.identity,
          connection: this.connection,
          user: host.sshUser,
          path,
          content,
          replaceOnChange: true,
        },
        child({ dependsOn: [this.prepared] }),
      );
      return { file: this.files[path], hash: sha256(content) };
    };

    // 6. The containers, with the seed's flags.
    this.containers = {};
    const run = (
      containerName: string,
      image: pulumi.Output<string>,
      cmd: string[],
      mounts: docker.types.input.ContainerVolume[],
      config: { file: command.remote.Command; hash: string } | undefined,
    ) => {
      this.containers[containerName] = new docker.Container(
        `${name}-${containerName}`,
        {
          name: containerName,
          image,
          command: cmd,
          privileged: true,
          networkMode: "host",
          restart: "always",
          mustRun: true,
          volumes: [{ hostPath: PATHS.logDir, containerPath: PATHS.logDir }, ...mounts],
          labels: [
            { label: LABELS.role, value: containerName },
            // The host agent restarts this host's system containers that turn unhealthy.
            { label: LABELS.host, value: host.name },
            // A new machine behind the same address (a static IP) gets new containers.
            { label: LABELS.hostIdentity, value: this.identity },
            ...(config ? [{ label: CONFIG_LABEL, value: config.hash }] : []),
          ],
          logDriver: "json-file",
          logOpts: { "max-size": "10m", "max-file": "3" },
        },
        onDocker({
          deleteBeforeReplace: true,
          dependsOn: [this.prepared, ...(config ? [config.file] : [])],
        }),
      );
    };

    const felixCfg = deliver("felix-cfg", PATHS.felixCfg, renderFelixCfg(model, host.name));
    run(
      "felix",
      this.images.felix!,
      ["calico-felix", `--config-file=${PATHS.felixCfg}`],
      [{ hostPath: PATHS.felixCfg, containerPath: PATHS.felixCfg, readOnly: true }],
      felixCfg,
    );

    if (host.isController) {
      const aclCfg = deliver("acl-manager-cfg", PATHS.aclManagerCfg, renderAclManagerCfg(model));
      run(
        "aclmgr",
        this.images.felix!,
        ["calico-acl-manager", `--config-file=${PATHS.aclManagerCfg}`],
        [{ hostPath: PATHS.aclManagerCfg, containerPath: PATHS.aclManagerCfg, readOnly: true }],
        aclCfg,
      );
      const pluginMount = { hostPath: PATHS.pluginDir, containerPath: PATHS.pluginDir };
      const common = ["--data-dir", PATHS.dataDir, "--log-dir", PATHS.logDir];
      run("plugin-network", this.images.plugin!, ["network", ...common], [pluginMount], undefined);
      run(
        "plugin-endpoint",
        this.images.plugin!,
        [
          "endpoint",
          ...common,
          "--resync-delay-ms",
          String(model.config.plugin.resyncDelayMs),
          "--felix-timeout-ms",
          String(model.config.plugin.requestTimeoutMs),
        ],
        [pluginMount],
        undefined,
      );
    }

    if (model.config.bgp.enabled) {
      const birdConf = deliver("bird-conf", PATHS.birdConf, renderBirdConf(model, host.name));
      run(
        "bird",
        this.images.bird!,
        ["run_bird", BIRD_CONF_IN_CONTAINER],
        [{ hostPath: PATHS.birdConf, containerPath: BIRD_CONF_IN_CONTAINER, readOnly: true }],
        birdConf,
      );
    }

    this.registerOutputs({ ready: this.ready.stdout });
  }

  /**
   * One image on this host's daemon. The default names (`calico:felix`...) are built on the
   * host from this repository's Dockerfiles: the build context goes as a tar on the SSH
   * connection's stdin (`docker build -`), so no registry is needed. (`docker.Image` is not
   * used: its build client ignores the provider's `sshOpts`, so it could not use our key.)
   * A name changed under `images:` in the stack config is a prebuilt image the host pulls.
   * Containers run the image by id, so a rebuild replaces them.
   */
  private image(
    name: string,
    model: ClusterModel,
    kind: ImageKind,
    onDocker: (extra?: pulumi.CustomResourceOptions) => pulumi.CustomResourceOptions,
  ): pulumi.Output<string> {
    const ref = model.config.images[kind];
    if (ref !== `calico:${kind}`) {
      const pulled = new docker.RemoteImage(
        `${name}-image-${kind}`,
        { name: ref, keepLocally: true },
        onDocker(),
      );
      return pulumi.all([pulled.imageId, pulled.name]).apply(([id, n]) => id || n);
    }
    const context = buildContext(kind);
    const built = new command.remote.Command(
      `${name}-image-${kind}`,
      {
        connection: this.connection,
        create: imageBuildScript(ref, context.dockerfile),
        stdin: context.tar.toString("base64"),
        // A changed context rebuilds (and so replaces the containers that run the image).
        triggers: [context.hash, this.identity],
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        dependsOn: [this.ready],
        additionalSecretOutputs: ["connection"],
        customTimeouts: { create: "45m", update: "45m" },
      },
    );
    // The last line the build script prints is the image id.
    return built.stdout.apply((out) => lastLine(out) || ref);
  }
}

function lastLine(text: string | undefined): string {
  const lines = (text ?? "").trim().split("\n");
  return lines[lines.length - 1]!.trim();
}

/** The shell text that builds `ref` from a base64 tar context on stdin, then prints its id. */
export function imageBuildScript(ref: string, dockerfile: string): string {
  return [
    "set -eu",
    "ctx=$(mktemp -d)",
    "trap 'rm -rf \"$ctx\"' EXIT",
    'base64 -d > "$ctx/context.tar"',
    `docker build -t ${shQuote(ref)} -f ${shQuote(dockerfile)} - < "$ctx/context.tar" >&2`,
    `docker image inspect -f '{{.Id}}' ${shQuote(ref)}`,
  ].join("\n");
}

export interface BuildContext {
  /** The Dockerfile's path inside the context. */
  dockerfile: string;
  /** Context-relative paths, sorted. */
  files: string[];
  /** A deterministic tar of the files (ustar, mtime 0, root-owned). */
  tar: Buffer;
  /** SHA-256 of the tar. */
  hash: string;
}

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The build context of an image, as Docker would send it: every file of `images/<kind>/`,
 * or for the plugin (context = repository root) what `images/plugin/Dockerfile.dockerignore`
 * lets through, plus the Dockerfile.
 */
export function buildContext(kind: ImageKind, root: string = REPO_ROOT): BuildContext {
  const spec = IMAGE_BUILDS[kind];
  const contextDir = join(root, spec.context);
  const dockerfile = relative(contextDir, join(root, spec.dockerfile)).split(sep).join("/");
  let files: string[];
  if (spec.context === ".") {
    const rules = parseDockerignore(
      readFileSync(`${join(root, spec.dockerfile)}.dockerignore`, "utf8"),
    );
    files = [...new Set([...allowedFiles(contextDir, rules), dockerfile])].sort();
  } else {
    files = walk(contextDir, "").sort();
  }
  const tar = ustar(files.map((f) => ({ path: f, full: join(contextDir, f) })));
  return { dockerfile, files, tar, hash: sha256Buffer(tar) };
}

interface IgnoreRule {
  negate: boolean;
  /** Path segments; `**` matches any number of segments. */
  segments: string[];
}

/**
 * The subset of .dockerignore that an allowlist needs: `*` first (ignore everything), then
 * `!path` to let a file or directory through and `**\/name` or `path` to keep one out; the
 * last matching rule wins, as in Docker. Anything else (other globs) is refused, loudly.
 */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, "");
    const segments = pattern.split("/");
    const plain = (s: string) => /^[A-Za-z0-9_.-]+$/.test(s);
    const ok =
      (rules.length === 0 ? pattern === "*" && !negate : pattern !== "*") &&
      segments.every((seg, i) => plain(seg) || (seg === "**" && i === 0) || pattern === "*");
    if (!ok) throw new Error(`unsupported .dockerignore pattern ${JSON.stringify(line)}`);
    rules.push({ negate, segments });
  }
  return rules;
}

function matches(rule: IgnoreRule, path: string[]): boolean {
  if (rule.segments.length === 1 && rule.segments[0] === "*") return true;
  if (rule.segments[0] === "**") {
    const name = rule.segments.slice(1);
    return path.some((_, i) => name.every((seg, j) => path[i + j] === seg));
  }
  // A path pattern matches that path and everything under it.
  return rule.segments.every((seg, i) => path[i] === seg);
}

function allowedFiles(contextDir: string, rules: IgnoreRule[]): string[] {
  const roots = rules.filter((r) => r.negate).map((r) => r.segments.join("/"));
  const candidates = new Set<string>();
  for (const r of roots) {
    const full = join(contextDir, r);
    if (!existsSync(full)) continue;
    if (statSync(full).isDirectory()) for (const f of walk(full, r)) candidates.add(f);
    else candidates.add(r);
  }
  return [...candidates].filter((f) => {
    const path = f.split("/");
    let included = true;
    for (const rule of rules) if (matches(rule, path)) included = rule.negate;
    return included;
  });
}

function walk(dir: string, prefix: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...walk(join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

function sha256Buffer(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A minimal deterministic POSIX ustar archive of regular files. */
export function ustar(files: { path: string; full: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const data = readFileSync(f.full);
    const mode = statSync(f.full).mode & 0o111 ? 0o755 : 0o644;
    let name = f.path;
    let prefix = "";
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf("/", name.length - 1);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
      if (Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
        throw new Error(`path too long for a tar header: ${f.path}`);
      }
    }
    const header = Buffer.alloc(512);
    const put = (text: string, offset: number, length: number) =>
      header.write(text, offset, length, "utf8");
    const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0");
    put(name, 0, 100);
    put(octal(mode, 8), 100, 8);
    put(octal(0, 8), 108, 8);
    put(octal(0, 8), 116, 8);
    put(octal(data.length, 12), 124, 12);
    put(octal(0, 12), 136, 12);
    put("        ", 148, 8);
    put("0", 156, 1);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    put("root", 265, 32);
    put("root", 297, 32);
    put(prefix, 345, 155);
    let sum = 0;
    for (const b of header) sum += b;
    put(`${octal(sum, 7)}\0`, 148, 8);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
