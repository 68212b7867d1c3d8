/**
 * A reboot of a prepared host must come up: the boot unit (`calico-host-prepare.service`, a
 * oneshot) runs `apply`, and `apply` must never wait for a start job of a unit ordered after
 * the boot unit (the host agent's), or the two wait for each other forever and
 * `multi-user.target` is never reached.
 *
 *   - Always: the rendered units and host script are read as systemd would (`After=`, and
 *     every `systemctl` call `apply` makes); any synchronous start or restart of a unit
 *     ordered after the boot unit fails the test; the boot unit has a start timeout.
 *   - With real systemd as PID 1, when a root file system made with
 *     `mmdebstrap --variant=minbase --include=systemd,dbus bullseye DIR` (as .ci/run makes it)
 *     is named by CALICO_SYSTEMD_ROOTFS: the rendered host script is installed and applied in a
 *     container of a private dockerd (name `chb-*`), the container is restarted (a reboot),
 *     and the boot must reach `running` with the boot unit and the agent active.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import {
  AGENT_UNIT,
  agentUnit,
  BOOT_UNIT,
  bootUnit,
  renderHostScript,
} from "../components/render/index.js";
import { canRunDockerd, startDockerd, type Dockerd } from "./helpers/docker.js";
import { devRaw, hostOf, modelOf } from "./helpers/stacks.js";
import { run } from "./helpers/tools.js";

const dev = modelOf(devRaw());
const hostScript = renderHostScript(dev, hostOf(dev, "host-1"));

/** The values of a `[Unit]` directive (space-separated, every occurrence). */
function directive(unit: string, key: string): string[] {
  return unit
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .flatMap((l) => l.slice(key.length + 1).split(/\s+/))
    .filter(Boolean);
}

/** The shell variables of the script that name units (`AGENT_UNIT='calico-agent.service'`). */
function unitVars(script: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const m of script.matchAll(/^([A-Z_]+)='([^']+\.service)'$/gm)) vars.set(m[1]!, m[2]!);
  return vars;
}

/** Every `systemctl start|restart ...` call: its unit and whether it blocks. */
function startCalls(script: string): { line: string; unit: string; blocks: boolean }[] {
  const vars = unitVars(script);
  const calls: { line: string; unit: string; blocks: boolean }[] = [];
  for (const line of script.split("\n")) {
    const m =
      /\bsystemctl\s+((?:--?[a-z-]+\s+)*)(start|restart|try-restart|reload-or-restart)\s+(\S+)/.exec(
        line,
      );
    if (m === null) continue;
    const ref = m[3]!.replace(/^"?\$\{?([A-Z_]+)\}?"?$/, "$1");
    calls.push({
      line: line.trim(),
      unit: vars.get(ref) ?? ref,
      blocks: !/--no-block/.test(m[1]!),
    });
  }
  return calls;
}

describe("boot ordering of the rendered units", () => {
  const units = new Map([
    [BOOT_UNIT, bootUnit()],
    [AGENT_UNIT, agentUnit()],
  ]);

  it("apply, run by the boot unit, starts no unit ordered after it synchronously", () => {
    const calls = startCalls(hostScript);
    assert.ok(calls.length >= 2, `the agent is started or restarted: ${JSON.stringify(calls)}`);
    for (const call of calls) {
      const unit = units.get(call.unit);
      assert.ok(unit, `a start of a unit this test does not know: ${call.line}`);
      const after = directive(unit, "After");
      if (after.includes(BOOT_UNIT)) {
        assert.equal(
          call.blocks,
          false,
          `${call.line}: ${call.unit} is ordered After=${BOOT_UNIT}, whose apply makes this ` +
            "call; a blocking start waits for the caller (a deadlock at every boot)",
        );
      }
    }
  });

  it("the boot unit is a oneshot with a start timeout, started by multi-user.target", () => {
    const unit = bootUnit();
    assert.match(unit, /^Type=oneshot$/m);
    assert.match(unit, /^TimeoutStartSec=\d+(min|s)$/m);
    assert.deepEqual(directive(unit, "WantedBy"), ["multi-user.target"]);
    assert.ok(!directive(unit, "After").includes(AGENT_UNIT), "no ordering loop");
  });
});

const rootfs = process.env.CALICO_SYSTEMD_ROOTFS;
const systemdSkip =
  canRunDockerd() ??
  (rootfs === undefined || !existsSync(`${rootfs}/lib/systemd/systemd`)
    ? "set CALICO_SYSTEMD_ROOTFS to a Debian root with systemd (see the top of this file)"
    : undefined);

describe("a reboot with real systemd as PID 1", { skip: systemdSkip }, () => {
  const name = `chb-${process.pid % 100000}`;
  const image = `chb/systemd:${process.pid % 100000}`;

  async function state(d: Dockerd, seconds: number): Promise<string> {
    let s = "";
    for (let i = 0; i < seconds * 2; i++) {
      s = d.docker(["exec", name, "systemctl", "is-system-running"]).stdout.trim();
      if (s === "running" || s === "degraded") return s;
      await new Promise((r) => setTimeout(r, 500));
    }
    return s;
  }

  it("apply, then a reboot: the boot reaches running, the boot unit and the agent are active", async () => {
    const d = await startDockerd({ prefix: "chb-" });
    try {
      const tar = run("sh", ["-c", `tar -C '${rootfs!}' -c . | docker import - ${image}`], {
        env: d.env,
        maxBuffer: 1 << 24,
      });
      assert.equal(tar.status, 0, tar.output);
      d.dockerOk([
        ...["run", "-d", "--name", name, "--cap-add", "SYS_ADMIN"],
        ...["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"],
        ...["--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp"],
        ...["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host", "--network", "none"],
        ...["--stop-signal", "SIGRTMIN+3", "-e", "container=docker", image, "/lib/systemd/systemd"],
      ]);
      assert.match(await state(d, 30), /running|degraded/, "the first boot");
      const put = (path: string, text: string) =>
        assert.equal(
          run(
            "docker",
            [
              "exec",
              "-i",
              name,
              "sh",
              "-c",
              `mkdir -p "\${0%/*}" && cat >"$0" && chmod 755 "$0"`,
              path,
            ],
            { env: d.env, input: text },
          ).status,
          0,
        );
      put("/opt/calico/bin/calico-host-prepare.sh", hostScript);
      // Stand-ins: the image has no iptables, and /proc/sys is read-only in a container.
      put("/usr/local/sbin/iptables-legacy", "#!/bin/sh\nexit 0\n");
      put("/usr/local/sbin/sysctl", '#!/bin/sh\n[ "$1" = -n ] && echo 1\nexit 0\n');
      const apply = d.docker(["exec", name, "/opt/calico/bin/calico-host-prepare.sh", "apply"]);
      assert.equal(apply.status, 0, apply.output);
      d.dockerOk(["restart", "-t", "10", name]);
      const started = Date.now();
      const after = await state(d, 60);
      const active = (unit: string) =>
        d.docker(["exec", name, "systemctl", "is-active", unit]).stdout.trim();
      const jobs = d.docker(["exec", name, "systemctl", "list-jobs", "--no-legend"]).stdout;
      assert.match(after, /running|degraded/, `the reboot did not finish; jobs:\n${jobs}`);
      assert.equal(active(BOOT_UNIT), "active");
      assert.equal(active(AGENT_UNIT), "active");
      assert.ok(Date.now() - started < 60_000);
    } finally {
      d.docker(["rm", "-f", name]);
      await d.stop();
    }
  });
});
