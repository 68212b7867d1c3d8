/**
 * Before anything is made: Linux, root, and the tools of this lab (installed with apt when
 * missing, said on the way), and BIRD 1.x when BGP is on.
 */
import { LabError } from "../context.js";
import { missingTools, run } from "../exec.js";

const TOOL_PACKAGES: Record<string, string> = {
  dockerd: "docker.io",
  docker: "docker.io",
  busybox: "busybox-static",
  tar: "tar",
  ip: "iproute2",
  iptables: "iptables",
  "iptables-legacy-restore": "iptables",
  nsenter: "util-linux",
  setpriv: "util-linux",
  sysctl: "procps",
  ping: "iputils-ping",
  python3: "python3",
  bird: "bird",
  birdc: "bird",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  ssh: "openssh-client",
  mmdebstrap: "mmdebstrap",
};

export interface Needs {
  bird: boolean;
  /** `daemon`: the lab starts its own dockerd; `cli`: DOCKER_HOST names one. */
  docker?: "daemon" | "cli";
}

export async function preflight(needs: Needs, log: (l: string) => void): Promise<void> {
  const needBird = needs.bird;
  if (process.platform !== "linux") {
    throw new LabError(`the lab needs Linux network namespaces (this is ${process.platform})`);
  }
  if (process.getuid?.() !== 0) {
    throw new LabError(
      "the lab needs root (it creates network namespaces and runs BIRD): " +
        "run `sudo npm run lab -- up|check|down`",
    );
  }
  const tools = [
    "ip",
    "iptables",
    "iptables-legacy-restore",
    "nsenter",
    "setpriv",
    "sysctl",
    "ping",
    "python3",
    "sshd",
    "ssh-keygen",
    "ssh",
    ...(needBird ? ["bird", "birdc"] : []),
    ...(needs.docker === "daemon" ? ["dockerd"] : []),
    ...(needs.docker !== undefined ? ["docker", "busybox", "tar"] : []),
  ];
  await installMissing(tools, log);
  if (needBird) {
    const { stdout, stderr } = await run("bird", ["--version"]);
    const version = /BIRD version (\S+)/.exec(stderr + stdout)?.[1];
    if (version === undefined || !version.startsWith("1.")) {
      throw new LabError(
        `the lab needs BIRD 1.x (the rendered bird.conf is BIRD 1 syntax), found ${
          version ?? "an unknown version"
        }: install Debian's \`bird\` package, not \`bird2\``,
      );
    }
  }
}

/**
 * The tools that are missing, installed with apt-get (said on the way); a LabError naming
 * the packages when that cannot be done.
 */
export async function installMissing(tools: string[], log: (l: string) => void): Promise<void> {
  let missing = await missingTools(tools);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))];
  const apt = (await missingTools(["apt-get"])).length === 0;
  if (!apt) {
    throw new LabError(
      `missing ${missing.join(", ")}: install ${packages.join(" ")}` +
        `${packages.includes("bird") ? " (BIRD must be 1.x)" : ""} and retry`,
    );
  }
  log(`- installing ${packages.join(" ")} with apt-get (missing: ${missing.join(", ")})`);
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
      env: aptEnv,
      timeoutMs: 600_000,
    });
  try {
    // A fresh machine may have no package lists yet: update once, then try again.
    await install().catch(async () => {
      log("- apt-get update (the first install failed)");
      await run("apt-get", ["update", "-qq"], { env: aptEnv, timeoutMs: 600_000 });
      await install();
    });
  } catch (e) {
    throw new LabError(
      `could not install ${packages.join(" ")} with apt-get (try \`apt-get update\` first): ${
        (e as Error).message
      }`,
    );
  }
  missing = await missingTools(tools);
  if (missing.length > 0) throw new LabError(`still missing after apt-get: ${missing.join(", ")}`);
}
