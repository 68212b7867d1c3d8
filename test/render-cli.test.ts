/**
 * `npm run render` as a subprocess: the dev stack writes both hosts' files; bad stacks exit
 * 1 naming the key path; stale files of a previous render go.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { run } from "./helpers/tools.js";

const ROOT = resolve(import.meta.dirname, "..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const scratch = mkdtempSync(join(tmpdir(), "cdr-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function render(...args: string[]) {
  return run(TSX, [join(ROOT, "scripts", "render.ts"), ...args], { cwd: ROOT });
}

/** Write Pulumi.<name>.yaml into the scratch dir from a raw config (keys get the prefix). */
function stackFile(name: string, raw: Record<string, unknown>): void {
  const config = Object.fromEntries(Object.entries(raw).map(([k, v]) => [`calico-docker:${k}`, v]));
  writeFileSync(join(scratch, `Pulumi.${name}.yaml`), stringify({ config }));
}

const existing = () => ({
  platform: "existing",
  sshPrivateKey: "secure-value-not-shown",
  ssh: { user: "ops" },
  hosts: [
    { name: "alpha", address: "10.0.0.11" },
    { name: "beta", address: "10.0.0.12" },
  ],
  endpoints: [
    { host: "alpha", ip: "192.168.7.1", group: "g" },
    { host: "beta", ip: "192.168.7.2", group: "g" },
  ],
});

describe("npm run render", () => {
  it("writes every file of the dev stack for both hosts and prints a summary", () => {
    const out = join(scratch, "dev");
    const r = render("--stack", "dev", "--out", out);
    assert.equal(r.status, 0, r.output);
    for (const f of [
      "host-1/felix.cfg",
      "host-1/acl_manager.cfg",
      "host-1/calico-host-prepare.sh",
      "host-1/calico-agent.sh",
      "host-1/endpoint-192_168_1_1.sh",
      "host-1/ignition.json",
      "host-1/plugin-data/felix.txt",
      "host-1/plugin-data/192_168_1_3.txt",
      "host-1/plugin-data/groups.txt",
      "host-2/felix.cfg",
      "host-2/calico-agent.sh",
      "host-2/endpoint-192_168_1_3.sh",
      "host-2/ignition.json",
    ]) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
    }
    assert.ok(!existsSync(join(out, "host-1/bird.conf")), "BGP is off on the dev stack");
    assert.equal(statSync(join(out, "host-2/endpoint-192_168_1_3.sh")).mode & 0o777, 0o755);
    assert.equal(statSync(join(out, "host-2/felix.cfg")).mode & 0o777, 0o644);
    assert.match(r.stdout, /hosts \(2\):/);
    assert.match(r.stdout, /GCE routes: 3 \(endpoint\)/);
    assert.match(r.stdout, /files: 17 written/);
    assert.match(r.stdout, /stand-in SSH key/);
  });

  it("removes the files of a previous render that the new one does not write", () => {
    const out = join(scratch, "stale");
    stackFile("stale", {
      ...existing(),
      endpoints: [...existing().endpoints, { host: "beta", ip: "192.168.7.3", group: "g" }],
    });
    assert.equal(render("--stack", "stale", "--dir", scratch, "--out", out).status, 0);
    assert.ok(existsSync(join(out, "beta/endpoint-192_168_7_3.sh")));
    stackFile("stale", existing());
    const r = render("--stack", "stale", "--dir", scratch, "--out", out);
    assert.equal(r.status, 0, r.output);
    assert.ok(!existsSync(join(out, "beta/endpoint-192_168_7_3.sh")));
    assert.ok(!existsSync(join(out, "alpha/plugin-data/192_168_7_3.txt")));
    assert.ok(existsSync(join(out, "beta/bird.conf")));
    assert.match(r.stdout, /from the previous render removed/);
    assert.match(r.stdout, /BGP: AS 64511, full-mesh, multihop, 1 session/);
    // The secret's value never reaches the output.
    assert.doesNotMatch(r.output, /secure-value-not-shown/);
    for (const f of ["alpha/felix.cfg", "beta/bird.conf"]) {
      assert.doesNotMatch(readFileSync(join(out, f), "utf8"), /secure-value-not-shown/);
    }
  });

  it("refuses to empty a folder it did not write", () => {
    const out = mkdtempSync(join(scratch, "foreign-"));
    writeFileSync(join(out, "keep.txt"), "mine");
    stackFile("ok", existing());
    const r = render("--stack", "ok", "--dir", scratch, "--out", out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not written by npm run render/);
    assert.equal(readFileSync(join(out, "keep.txt"), "utf8"), "mine");
  });

  const bad: [string, (raw: ReturnType<typeof existing>) => void, RegExp][] = [
    [
      "an endpoint outside the pool",
      (raw) => (raw.endpoints[0]!.ip = "10.9.9.9"),
      /endpoints\[0\]\.ip: is outside endpointPool/,
    ],
    [
      "a duplicate IP",
      (raw) => (raw.endpoints[1]!.ip = "192.168.7.1"),
      /endpoints\[1\]\.ip: duplicates endpoints\[0\]\.ip/,
    ],
    ["a host named a;b", (raw) => (raw.hosts[1]!.name = "a;b"), /hosts\[1\]\.name: .*"a;b"/],
  ];
  for (const [what, breakIt, message] of bad) {
    it(`exits 1 on ${what}, naming the key path, without a stack trace`, () => {
      const raw = existing();
      breakIt(raw);
      stackFile("bad", raw);
      const r = render("--stack", "bad", "--dir", scratch, "--out", join(scratch, "bad-out"));
      assert.equal(r.status, 1, r.output);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.ok(!existsSync(join(scratch, "bad-out")), "nothing written");
    });
  }

  it("exits 1 on an unknown stack and on a bad stack name", () => {
    const r = render("--stack", "nope", "--dir", scratch);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no stack file .*Pulumi\.nope\.yaml/);
    const s = render("--stack", "../etc", "--dir", scratch);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /stack name "\.\.\/etc"/);
  });
});
