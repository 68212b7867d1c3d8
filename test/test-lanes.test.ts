// `npm test` runs the lab suites beside the others (scripts/test.sh). That is safe only while
// every suite that brings a lab up is in the lab lane (one lab at a time: the endpoints'
// namespace links are machine-wide names) and each lab suite counts as its leftovers only
// what its labs name (test/helpers/lab.ts, madeByLabs).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { labPrefix } from "../lab/plan.js";
import { madeByLabs, stackWith } from "./helpers/lab.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function lanes(): Map<string, string> {
  const out = execFileSync("bash", ["scripts/test.sh", "--list"], { cwd: root, encoding: "utf8" });
  const lane = new Map<string, string>();
  for (const line of out.trim().split("\n")) {
    const [name, file] = line.split(" ");
    assert.ok(!lane.has(file!), `${file} is in two lanes`);
    lane.set(file!, name!);
  }
  return lane;
}

describe("npm test's lanes", () => {
  it("every suite runs once, and every suite that brings a lab up runs in the lab lane", () => {
    const lane = lanes();
    const files = execFileSync(
      "bash",
      ["-c", "find test plugin/test -name '*.test.ts'; ls test/conformance/*.conformance.ts"],
      { cwd: root, encoding: "utf8" },
    )
      .trim()
      .split("\n");
    assert.deepEqual([...lane.keys()].sort(), files.sort());
    const bringsUp = files.filter((f) =>
      /\blabUp\(/.test(readFileSync(path.join(root, f), "utf8")),
    );
    assert.ok(bringsUp.length >= 7, bringsUp.join(" "));
    for (const f of bringsUp) assert.equal(lane.get(f), "lab", f);
    assert.equal(lane.get("test/render.test.ts"), "unit");
  });

  it("shellcheck passes scripts/test.sh", () => {
    execFileSync("shellcheck", [path.join(root, "scripts/test.sh")]);
  });
});

describe("madeByLabs: what a lab suite may count as its own", () => {
  const stateRoot = "/tmp/lab-policy-AbC123";
  const made = madeByLabs(stateRoot, [stackWith("dev")]);
  const prefix = labPrefix("t-pol-4242");

  it("takes the lab's prefixed names, its state folder's paths, its endpoints' links", () => {
    for (const x of [
      `${prefix}-fabric`,
      `/run/netns/${prefix}-h-host-1`,
      `77 /usr/bin/containerd-shim-runc-v2 -namespace ${prefix}-lab -id 24dc`,
      `88 dockerd --data-root ${stateRoot}/t-pol-4242/docker`,
      "calico-192_168_1_3",
      "/run/netns/calico-192_168_1_1",
    ]) {
      assert.equal(made(x), true, x);
    }
  });

  it("leaves what other suites make: their own links, daemons and namespaces", () => {
    for (const x of [
      "calico-cdr-dk-1a2b",
      "calico-192_168_1_4",
      "cda-d-ns1",
      "fwt-e1",
      "99 dockerd --data-root /tmp/cd-dockerd-XyZ/data",
      "/run/netns/chb-boot",
      "12 bird -c /tmp/render-bird-1/bird.conf",
    ]) {
      assert.equal(made(x), false, x);
    }
  });
});
