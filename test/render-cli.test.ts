/**
 * `npm run render` as a subprocess: the dev stack writes both hosts' files; bad stacks exit
 * 1 naming the key path; stale files of a previous render go.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { run } from "./helpers/tools.js";

const ROOT = resolve(import.meta.dirname, "..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
/** The manifest file a render leaves in --out (scripts/render.ts). */
const MANIFEST = ".rendered-files.json";
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

  it("renders the existing-example stack, which holds no SSH key, with a stand-in for it", () => {
    assert.doesNotMatch(
      readFileSync(join(ROOT, "Pulumi.existing-example.yaml"), "utf8"),
      /sshPrivateKey:/,
    );
    const out = join(scratch, "existing-example");
    const r = render("--stack", "existing-example", "--out", out);
    assert.equal(r.status, 0, r.output);
    for (const f of ["node-a/bird.conf", "node-c/felix.cfg", "node-a/plugin-data/database.txt"]) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
    }
    assert.match(r.stdout, /sets no sshPrivateKey; rendering needs none, deploying needs it/);
    // A stack that sets the key gets no such note.
    stackFile("keyed", existing());
    const k = render("--stack", "keyed", "--dir", scratch, "--out", join(scratch, "keyed-out"));
    assert.equal(k.status, 0, k.output);
    assert.doesNotMatch(k.stdout, /sets no sshPrivateKey/);
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

/** A folder outside every --out, with one file the render must never touch. */
function victim(name: string): { dir: string; file: string } {
  const dir = join(scratch, `victim-${name}`);
  mkdirSync(dir);
  const file = join(dir, "felix.cfg");
  writeFileSync(file, "precious\n");
  return { dir, file };
}

/** Render the existing-hosts stack into a fresh folder; return the folder. */
function renderedOnce(name: string, raw = existing()): string {
  const out = join(scratch, `${name}-out`);
  stackFile(name, raw);
  const r = render("--stack", name, "--dir", scratch, "--out", out);
  assert.equal(r.status, 0, r.output);
  return out;
}

function assertRefused(r: ReturnType<typeof render>, message: RegExp): void {
  assert.equal(r.status, 1, r.output);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

describe("npm run render never follows a symlink inside --out", () => {
  it("a folder of the previous render swapped for a link: nothing outside is deleted or written", () => {
    const out = renderedOnce("swapdir");
    const v = victim("swapdir");
    cpSync(join(out, "beta"), v.dir, { recursive: true });
    writeFileSync(v.file, "precious\n");
    rmSync(join(out, "beta"), { recursive: true });
    symlinkSync(v.dir, join(out, "beta"));
    const r = render("--stack", "swapdir", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${join(out, "beta")}.* symbolic link`));
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
    assert.ok(
      existsSync(join(v.dir, "bird.conf")),
      "a stale manifest entry deleted through the link",
    );
    assert.ok(
      lstatSync(join(out, "beta")).isSymbolicLink(),
      "the link itself is left for the user",
    );
  });

  it("a stale manifest entry under a planted link deletes nothing outside", () => {
    const out = renderedOnce("stalelink");
    const v = victim("stalelink");
    symlinkSync(v.dir, join(out, "planted"));
    const manifest = JSON.parse(readFileSync(join(out, MANIFEST), "utf8")) as string[];
    writeFileSync(join(out, MANIFEST), JSON.stringify([...manifest, "planted/felix.cfg"]));
    const r = render("--stack", "stalelink", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${join(out, "planted")}.* symbolic link`));
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
    // Refused before anything was removed: the previous render is intact.
    assert.ok(existsSync(join(out, "alpha/felix.cfg")));
  });

  it("a manifest entry that leads outside --out is refused", () => {
    const out = renderedOnce("escape");
    const v = victim("escape");
    const rel = join("..", `victim-escape`, "felix.cfg");
    writeFileSync(join(out, MANIFEST), JSON.stringify([rel]));
    const r = render("--stack", "escape", "--dir", scratch, "--out", out);
    assertRefused(r, /\.rendered-files\.json.*outside/);
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
  });

  it("a planted link where a file will be written is not written through", () => {
    const out = renderedOnce("plantfile");
    const v = victim("plantfile");
    // The next render adds an endpoint on beta: its script is a new file.
    const target = join(out, "beta/endpoint-192_168_7_3.sh");
    symlinkSync(v.file, target);
    const raw = existing();
    raw.endpoints.push({ host: "beta", ip: "192.168.7.3", group: "g" });
    stackFile("plantfile", raw);
    const r = render("--stack", "plantfile", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${target}.* symbolic link`));
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
    assert.equal(readlinkSync(target), v.file);
  });

  it("a file of the previous render replaced by a link is not written through", () => {
    const out = renderedOnce("swapfile");
    const v = victim("swapfile");
    rmSync(join(out, "alpha/felix.cfg"));
    symlinkSync(v.file, join(out, "alpha/felix.cfg"));
    const r = render("--stack", "swapfile", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${join(out, "alpha/felix.cfg")}.* symbolic link`));
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
  });

  it("a hard link planted where a file will be written is replaced, not written into", () => {
    const out = renderedOnce("hardlink");
    const v = victim("hardlink");
    const target = join(out, "beta/endpoint-192_168_7_3.sh");
    run("ln", [v.file, target]);
    const raw = existing();
    raw.endpoints.push({ host: "beta", ip: "192.168.7.3", group: "g" });
    stackFile("hardlink", raw);
    const r = render("--stack", "hardlink", "--dir", scratch, "--out", out);
    assert.equal(r.status, 0, r.output);
    assert.equal(readFileSync(v.file, "utf8"), "precious\n");
    assert.match(readFileSync(target, "utf8"), /^#!/);
    assert.equal(statSync(target).nlink, 1);
  });
});

describe("npm run render on a broken stack file, manifest or --out: one message, exit 1, no trace", () => {
  const cases: [string, string, string, RegExp][] = [
    [
      "duplicate keys",
      "dup",
      "config:\n  calico-docker:platform: existing\n  calico-docker:platform: gce\n",
      /, line 3, column 3: Map keys must be unique/,
    ],
    [
      "tab indentation",
      "tab",
      "config:\n\tcalico-docker:platform: existing\n",
      /, line 2, column 1: Tabs are not allowed as indentation/,
    ],
    [
      "a syntax error",
      "syntax",
      "config:\n  calico-docker:hosts: [ { name: a,\n",
      /, line \d+, column \d+: \S/,
    ],
    [
      "config: a list",
      "list",
      "config:\n  - calico-docker:platform\n",
      /, line 2, column 3: `config:` must be a mapping/,
    ],
    [
      "config: a number",
      "number",
      "config: 3\n",
      /, line 1, column 9: `config:` must be a mapping/,
    ],
    ["a document that is a list", "doc", "- config\n", /, line 1, column 1: .*must be a mapping/],
  ];
  for (const [what, name, text, message] of cases) {
    it(`a stack file with ${what}`, () => {
      const file = join(scratch, `Pulumi.yaml-${name}.yaml`);
      writeFileSync(file, text);
      const out = join(scratch, `yaml-${name}-out`);
      const r = render("--stack", `yaml-${name}`, "--dir", scratch, "--out", out);
      assertRefused(r, message);
      assert.ok(r.stderr.startsWith(`render: ${file}, line `), r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.ok(!existsSync(out), "nothing written");
    });
  }

  it("a manifest that is not JSON", () => {
    const out = renderedOnce("badjson");
    writeFileSync(join(out, MANIFEST), '["alpha/felix.cfg",');
    const r = render("--stack", "badjson", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${join(out, MANIFEST)}: is not valid JSON`));
    assert.ok(existsSync(join(out, "alpha/felix.cfg")), "nothing removed");
  });

  it("a manifest that is not a list of file names", () => {
    const out = renderedOnce("badlist");
    writeFileSync(join(out, MANIFEST), '{"alpha/felix.cfg": 1}');
    const r = render("--stack", "badlist", "--dir", scratch, "--out", out);
    assertRefused(r, new RegExp(`${join(out, MANIFEST)}: is not a list of file names`));
  });

  it("--out pointing at a file", () => {
    stackFile("outfile", existing());
    const file = join(scratch, "a-file");
    writeFileSync(file, "mine");
    const r = render("--stack", "outfile", "--dir", scratch, "--out", file);
    assertRefused(r, new RegExp(`--out ${file}: is not a directory`));
    assert.equal(readFileSync(file, "utf8"), "mine");
  });

  it("--out inside a file", () => {
    stackFile("outunder", existing());
    const file = join(scratch, "b-file");
    writeFileSync(file, "mine");
    const r = render("--stack", "outunder", "--dir", scratch, "--out", join(file, "x"));
    assertRefused(r, new RegExp(`--out ${join(file, "x")}: `));
    assert.equal(readFileSync(file, "utf8"), "mine");
  });
});
