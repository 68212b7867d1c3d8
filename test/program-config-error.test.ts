// A bad stack config stops the real program before any resource exists, with a Pulumi
// RunError (printed without a stack trace) that names every bad key and its value.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, stackFileConfig } from "./program-mocks.js";

const entries = {
  ...stackFileConfig("dev"),
  "calico-docker:endpoints": [
    { host: "host-1", ip: "10.9.9.9", group: "web" },
    { host: "host-9", ip: "192.168.1.2", group: "db" },
  ],
  "calico-docker:gce": { sshSourceRanges: ["0.0.0.0/0"] },
};
const world = await installMocks(entries, { stack: "bad" });
after(() => world.cleanup());
let failure: unknown;
try {
  await import("../index.js");
} catch (err) {
  failure = err;
}
await world.settle();

describe("a bad stack config", () => {
  it("fails the program with a RunError", () => {
    assert.ok(pulumi.RunError.isInstance(failure), `got ${String(failure)}`);
  });
  it("names every bad key and value in one message", () => {
    const message = (failure as Error).message;
    assert.match(message, /invalid stack config \(3 problems\)/);
    assert.match(
      message,
      /endpoints\[0\]\.ip: is outside endpointPool 192\.168\.0\.0\/16 \(got "10\.9\.9\.9"\)/,
    );
    assert.match(message, /endpoints\[1\]\.host: is not the name of a host \(got "host-9"\)/);
    assert.match(message, /gce\.sshSourceRanges\[0\]: must not open SSH to the whole internet/);
  });
  it("creates no resource at all", () => {
    assert.deepEqual(
      world.resources.map((r) => r.type),
      [],
    );
  });
});
