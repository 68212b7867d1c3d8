// `npm run render -- --out` where another user could write: refused before anything is
// removed or written, and a second user who swaps a folder of --out for a link while renders
// run gets nothing outside --out deleted. The second user is a uid with no account (no
// user is created); its process is started with that uid by spawn. Root only.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { run } from "./helpers/tools.js";

const ROOT = resolve(import.meta.dirname, "..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const isRoot = process.getuid?.() === 0;

/** A uid (and gid) that no account, group or file of this machine uses. */
function strangerId(): number {
  const taken = new Set(
    ["/etc/passwd", "/etc/group"].flatMap((f) =>
      readFileSync(f, "utf8")
        .split("\n")
        .map((line) => Number(line.split(":")[2])),
    ),
  );
  for (let id = 47_000 + (process.pid % 1000); ; id++) if (!taken.has(id)) return id;
}

describe("npm run render into an --out another user could change", { skip: !isRoot }, () => {
  const scratch = mkdtempSync(join(tmpdir(), "cdcfg-out-"));
  chmodSync(scratch, 0o755); // the second user may pass through, not write
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const stranger = strangerId();
  writeFileSync(
    join(scratch, "Pulumi.shared.yaml"),
    stringify({
      config: {
        "calico-docker:platform": "existing",
        "calico-docker:sshPrivateKey": { secure: "v1:x" },
        "calico-docker:ssh": { user: "ops" },
        "calico-docker:hosts": [
          { name: "alpha", address: "10.0.0.11" },
          { name: "beta", address: "10.0.0.12" },
        ],
        "calico-docker:endpoints": [
          { host: "alpha", ip: "192.168.7.1", group: "g" },
          { host: "beta", ip: "192.168.7.2", group: "g" },
        ],
      },
    }),
  );
  const render = (out: string) =>
    run(
      TSX,
      [join(ROOT, "scripts", "render.ts"), "--stack", "shared", "--dir", scratch, "--out", out],
      {
        cwd: ROOT,
      },
    );
  const refused = (out: string, message: RegExp) => {
    const r = render(out);
    assert.equal(r.status, 1, r.output);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /no other user can swap a folder for a link/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  };
  const rendered = (name: string, parent = scratch): string => {
    const out = join(parent, name);
    const r = render(out);
    assert.equal(r.status, 0, r.output);
    return out;
  };
  const intact = (out: string) =>
    assert.ok(existsSync(join(out, "beta/felix.cfg")), "the previous render is untouched");

  it("refuses an --out, a folder in it or above it that the other user owns or may write", () => {
    const out = rendered("owned");
    chownSync(out, stranger, stranger);
    refused(
      out,
      new RegExp(`--out ${out}: ${out} belongs to uid ${stranger}, not to this user \\(uid 0\\)`),
    );
    chownSync(out, 0, 0);
    for (const [mode, who] of [
      [0o777, "other users \\(mode 777\\)"],
      [0o775, "the users of its group \\(mode 775\\)"],
      [0o1777, "other users \\(mode 1777\\)"], // sticky is not enough inside --out
    ] as const) {
      chmodSync(out, mode);
      refused(out, new RegExp(`--out ${out}: ${out} can be written by ${who}`));
      intact(out);
    }
    chmodSync(out, 0o755);
    chmodSync(join(out, "beta"), 0o777);
    refused(out, new RegExp(`--out ${out}: ${join(out, "beta")} can be written by other users`));
    intact(out);
    chmodSync(join(out, "beta"), 0o755);
    assert.equal(render(out).status, 0, "this user's own folders render again");

    // Above --out: a folder others may write lets them rename --out itself; a sticky one
    // (like /tmp) does not.
    const shared = join(scratch, "shared");
    mkdirSync(shared);
    const below = rendered("out", shared);
    chmodSync(shared, 0o777);
    refused(below, new RegExp(`--out ${below}: ${shared} can be written by other users`));
    refused(join(shared, "new"), new RegExp(`${shared} can be written by other users`));
    assert.ok(!existsSync(join(shared, "new")), "nothing made");
    chmodSync(shared, 0o1777);
    assert.equal(render(below).status, 0, "a sticky folder above --out is fine");
  });

  it("a second user swapping a folder for a link during renders deletes nothing outside", async () => {
    const out = rendered("raced");
    const victim = join(scratch, "victim");
    cpSync(join(out, "beta"), victim, { recursive: true });
    const before = readdirSync(victim).sort();
    chmodSync(out, 0o777);
    const stop = join(scratch, "stop");
    // The other user: swap beta for a link to the victim and back, as fast as it can.
    const attacker = spawn(
      process.execPath,
      [
        "-e",
        `const fs = require("fs");
         const [out, victim, stop] = process.argv.slice(1);
         let swaps = 0;
         const end = Date.now() + 120000;
         while (!fs.existsSync(stop) && Date.now() < end) {
           try {
             fs.renameSync(out + "/beta", out + "/.beta-away");
             fs.symlinkSync(victim, out + "/beta");
             swaps++;
             fs.unlinkSync(out + "/beta");
             fs.renameSync(out + "/.beta-away", out + "/beta");
           } catch {}
         }
         process.stdout.write(String(swaps));`,
        out,
        victim,
        stop,
      ],
      { uid: stranger, gid: stranger, cwd: "/", stdio: ["ignore", "pipe", "inherit"] },
    );
    let swaps = "";
    attacker.stdout.on("data", (d: Buffer) => (swaps += d.toString()));
    const exited = new Promise((done) => attacker.on("exit", done));
    try {
      for (let i = 0; i < 4; i++) {
        refused(out, new RegExp(`--out ${out}: ${out} can be written by other users`));
      }
    } finally {
      writeFileSync(stop, "");
      await exited;
    }
    assert.ok(Number(swaps) > 0, `the other user did swap folders (${swaps})`);
    assert.deepEqual(readdirSync(victim).sort(), before, "nothing outside --out removed");
    for (const f of before) {
      assert.equal(
        readFileSync(join(victim, f), "utf8"),
        readFileSync(join(out, "beta", f), "utf8"),
      );
    }
  });
});
