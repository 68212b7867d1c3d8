// Where the docker providers' SSH key lives: under the user's home, in 0700 directories,
// written so that nothing another user planted is followed, and named in the providers'
// settings as `~/...`, which the real `ssh` resolves on whichever machine runs refresh.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { dockerSshOpts, sshDirFor, writePrivateKey } from "../components/ssh.js";
import { valueOf } from "./program-mocks.js";

const scratch = mkdtempSync(join(tmpdir(), "calico-ssh-key-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const pem = (): string =>
  generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

/** A fresh private home directory (mkdtemp makes it 0700). */
function home(): string {
  return mkdtempSync(join(scratch, "home-"));
}

describe("the key's place", () => {
  it("is under the home directory, and the providers name it with ~", () => {
    const dir = sshDirFor("calico-docker", "dev", "/home/alice");
    assert.equal(dir.local, "/home/alice/.calico-docker/ssh/calico-docker/dev");
    assert.equal(dir.forSsh, "~/.calico-docker/ssh/calico-docker/dev");
    assert.equal(sshDirFor("p", "s").local.startsWith(userInfo().homedir), true);
  });
  it("refuses project or stack names that are not one plain path segment", () => {
    for (const bad of ["..", "../x", "a/b", ".hidden", "", "-x"]) {
      assert.throws(() => sshDirFor("p", bad, "/h"), /cannot name a directory/, bad);
      assert.throws(() => sshDirFor(bad, "s", "/h"), /cannot name a directory/, bad);
    }
  });
});

describe("writePrivateKey", () => {
  it("writes the key 0600 in 0700 directories and returns the ~ path", () => {
    const h = home();
    const dir = sshDirFor("p", "s", h);
    const key = pem();
    assert.equal(writePrivateKey(key, dir, h), "~/.calico-docker/ssh/p/s/id_key");
    const file = join(dir.local, "id_key");
    assert.equal(readFileSync(file, "utf8"), key);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    for (const d of [
      ".calico-docker",
      ".calico-docker/ssh",
      ".calico-docker/ssh/p",
      ".calico-docker/ssh/p/s",
    ])
      assert.equal(statSync(join(h, d)).mode & 0o777, 0o700, d);
  });
  it("replaces a changed key whole, and leaves no temp file behind", () => {
    const h = home();
    const dir = sshDirFor("p", "s", h);
    writePrivateKey(pem(), dir, h);
    const second = pem();
    writePrivateKey(second, dir, h);
    assert.equal(readFileSync(join(dir.local, "id_key"), "utf8"), second);
    const left = spawnSync("ls", ["-A", dir.local], { encoding: "utf8" }).stdout.trim().split("\n");
    assert.deepEqual(left, ["id_key"]);
  });
  it("refuses a symbolic link planted at the key's place, and writes nothing through it", () => {
    const h = home();
    const dir = sshDirFor("p", "s", h);
    mkdirSync(dir.local, { recursive: true, mode: 0o700 });
    const target = join(scratch, `stolen-${process.pid}`);
    symlinkSync(target, join(dir.local, "id_key"));
    assert.throws(() => writePrivateKey(pem(), dir, h), /id_key: it is a symbolic link/);
    assert.equal(existsSync(target), false, "nothing was written through the link");
    assert.equal(lstatSync(join(dir.local, "id_key")).isSymbolicLink(), true);
  });
  it("refuses a symbolic link planted for one of its directories", () => {
    const h = home();
    const elsewhere = mkdtempSync(join(scratch, "elsewhere-"));
    symlinkSync(elsewhere, join(h, ".calico-docker"));
    assert.throws(
      () => writePrivateKey(pem(), sshDirFor("p", "s", h), h),
      /\.calico-docker: it is a symbolic link/,
    );
    assert.deepEqual(spawnSync("ls", ["-A", elsewhere], { encoding: "utf8" }).stdout, "");
  });
  it("refuses a directory others can reach, and a home others can write", () => {
    const h = home();
    mkdirSync(join(h, ".calico-docker"), { mode: 0o755 });
    chmodSync(join(h, ".calico-docker"), 0o755);
    assert.throws(() => writePrivateKey(pem(), sshDirFor("p", "s", h), h), /mode is 755/);
    const open = home();
    chmodSync(open, 0o777);
    assert.throws(
      () => writePrivateKey(pem(), sshDirFor("p", "s", open), open),
      /other users can write to it/,
    );
  });
  it("refuses a home its group can write, naming the home and its mode", () => {
    const shared = home();
    chmodSync(shared, 0o770);
    assert.throws(
      () => writePrivateKey(pem(), sshDirFor("p", "s", shared), shared),
      new RegExp(`under ${shared}: the users of its group can write to it \\(mode 770`),
    );
    assert.ok(!existsSync(join(shared, ".calico-docker")), "nothing made under it");
  });
  it("refuses a key place that is not a regular file", () => {
    const h = home();
    const dir = sshDirFor("p", "s", h);
    mkdirSync(join(dir.local, "id_key"), { recursive: true, mode: 0o700 });
    assert.throws(() => writePrivateKey(pem(), dir, h), /not a regular file/);
  });
});

describe("ssh resolves the providers' ~ paths under the passwd home, whatever $HOME says", () => {
  it("ssh -G expands -i and UserKnownHostsFile to this user's home", async () => {
    const stack = `ssh-key-test-${process.pid}`;
    const dir = sshDirFor("calico-docker", stack);
    try {
      const keyPath = writePrivateKey(pem(), dir);
      const opts = await valueOf(dockerSshOpts(keyPath, `${dir.forSsh}/known_hosts-h-1`));
      const res = spawnSync("ssh", ["-G", ...opts, "core@192.0.2.1"], {
        encoding: "utf8",
        env: { ...process.env, HOME: "/nonexistent" },
      });
      assert.equal(res.status, 0, res.stderr);
      const lines = res.stdout.split("\n");
      assert.ok(lines.includes(`identityfile ${join(dir.local, "id_key")}`), res.stdout);
      assert.ok(lines.includes(`userknownhostsfile ${join(dir.local, "known_hosts-h-1")}`));
      assert.ok(lines.includes("identitiesonly yes"));
      assert.ok(!opts.some((o) => o.includes(tmpdir())), "no temp dir in the stored options");
    } finally {
      rmSync(dir.local, { recursive: true, force: true });
    }
  });
});

describe("npm run ssh-key (a fresh machine, before refresh or destroy)", () => {
  const run = (args: string[], input: string) =>
    spawnSync(process.execPath, ["--import", "tsx", "scripts/ssh-key.ts", ...args], {
      encoding: "utf8",
      input,
      cwd: new URL("..", import.meta.url).pathname,
    });
  it("puts the key from stdin at the stack's place, and refuses what is no key", () => {
    const stack = `ssh-key-cli-${process.pid}`;
    const dir = sshDirFor("calico-docker", stack);
    try {
      const key = pem();
      const ok = run(["--stack", stack], key);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, "", "the key is never printed");
      assert.ok(!ok.stderr.includes("PRIVATE KEY"));
      assert.equal(readFileSync(join(dir.local, "id_key"), "utf8"), key);
      const bad = run(["--stack", stack], "not a key\n");
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /not one PEM or OpenSSH private key/);
      // Two keys pasted one after the other: refused, the key in place kept, none printed.
      const [first, second] = [pem(), pem()];
      const two = run(["--stack", stack], first + second);
      assert.equal(two.status, 2, two.stderr);
      assert.match(
        two.stderr,
        /the input \(stdin\) holds 2 PEM blocks \(PRIVATE KEY, PRIVATE KEY\)/,
      );
      for (const k of [first, second]) {
        assert.ok(!two.stderr.includes(k.split("\n")[1]!), "no key material in the message");
      }
      assert.equal(readFileSync(join(dir.local, "id_key"), "utf8"), key);
    } finally {
      rmSync(dir.local, { recursive: true, force: true });
    }
  });
  it("with --from-stack-output reads `pulumi stack output`, and --optional accepts a new stack", () => {
    const stack = `ssh-key-out-${process.pid}`;
    const dir = sshDirFor("calico-docker", stack);
    const bin = mkdtempSync(join(scratch, "bin-"));
    const key = pem();
    writeFileSync(join(bin, "key.pem"), key);
    // A stand-in pulumi: prints the key for our stack, and fails like a new stack otherwise.
    writeFileSync(
      join(bin, "pulumi"),
      [
        "#!/bin/sh",
        `if [ "$*" = "stack output sshPrivateKey --show-secrets --non-interactive --stack ${stack}" ]; then`,
        `  cat '${join(bin, "key.pem")}'; exit 0`,
        "fi",
        "echo 'error: current stack does not have output property sshPrivateKey' >&2; exit 255",
      ].join("\n"),
      { mode: 0o755 },
    );
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const go = (args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", "scripts/ssh-key.ts", ...args], {
        encoding: "utf8",
        env,
        cwd: new URL("..", import.meta.url).pathname,
      });
    try {
      const ok = go(["--stack", stack, "--from-stack-output"]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(readFileSync(join(dir.local, "id_key"), "utf8"), key);
      const fresh = go(["--stack", "never-deployed", "--from-stack-output", "--optional"]);
      assert.equal(fresh.status, 0, fresh.stderr);
      assert.match(fresh.stderr, /no sshPrivateKey output yet/);
      const required = go(["--stack", "never-deployed", "--from-stack-output"]);
      assert.equal(required.status, 2);
    } finally {
      rmSync(dir.local, { recursive: true, force: true });
    }
  });
});
