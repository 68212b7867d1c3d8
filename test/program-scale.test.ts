// The real program with a 10-host, 500-endpoint stack under mocks: the graph builds, with
// the expected number of each resource. The time it takes is printed, not asserted
// (`npm run bench:program` measures the growth).
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { installMocks, syntheticStack, T, valueOf } from "./program-mocks.js";

// The Pulumi SDK captures a stack trace for every output property of every resource; with
// tsx's source maps on, formatting those traces is most of the time (about 3x). They are
// off here so the suite stays quick; the graph is the same.
process.setSourceMapsEnabled(false);

const HOSTS = 10;
const ENDPOINTS = 500;
const world = await installMocks(syntheticStack(HOSTS, ENDPOINTS), { stack: "scale" });
after(() => world.cleanup());
const start = performance.now();
const program = await import("../index.js");
const endpoints = await valueOf(program.endpoints);
await world.settle();
const ms = performance.now() - start;
console.log(
  `${HOSTS} hosts, ${ENDPOINTS} endpoints: ${world.resources.length} resources registered in ${ms.toFixed(0)} ms (including ~100 ms of settling)`,
);

describe(`a ${HOSTS}-host, ${ENDPOINTS}-endpoint stack`, () => {
  it("builds every resource", () => {
    const count = (type: string) => world.ofType(type).length;
    assert.equal(endpoints.length, ENDPOINTS);
    assert.equal(new Set(endpoints.map((e) => e.containerId)).size, ENDPOINTS);
    assert.equal(count(T.instance), HOSTS);
    assert.equal(count(T.route), ENDPOINTS);
    assert.equal(count(T.dockerProvider), HOSTS);
    // felix per host, aclmgr and two plugin processes on the controller, one per endpoint
    assert.equal(count(T.container), HOSTS + 3 + ENDPOINTS);
    // ready, prepare, felix.cfg per host; acl_manager.cfg and felix.txt; wiring + data per endpoint
    // ... and the image builds: felix and util on every host, the plugin on the controller
    assert.equal(count(T.command), HOSTS * 3 + 2 + ENDPOINTS * 2 + HOSTS * 2 + 1);
  });
  it("names every route and container uniquely", () => {
    const names = world.resources.map((r) => `${r.type}/${r.name}`);
    assert.equal(new Set(names).size, names.length);
  });
});
