// A GCE instance's user-data (Ignition) is replaced-on-change, delete before replace: any
// change to it deletes and recreates the VM (on dev the controller, so the whole cluster).
// The real program runs under mocks once per variant of the dev stack (one process each,
// see helpers/stack-graph.ts); endpoint-level changes, attached ones included, which also
// change the host agent's text, must leave every instance's user-data as it was.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { renderAgentScript } from "../components/render/index.js";
import { hostOf, modelOf } from "./helpers/stacks.js";
import { stackFileConfig, T } from "./program-mocks.js";

interface Graph {
  resources: { type: string; name: string; inputs: Record<string, unknown> }[];
}

const helper = fileURLToPath(new URL("./helpers/stack-graph.ts", import.meta.url));
const base = stackFileConfig("dev");
const endpoints = base["calico-docker:endpoints"] as Record<string, unknown>[];

function graph(config: Record<string, unknown>): Graph {
  const res = spawnSync(
    process.execPath,
    ["--import", "tsx", helper, "dev", JSON.stringify(config)],
    {
      encoding: "utf8",
    },
  );
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout) as Graph;
}

/**
 * Instance name -> user-data, the SSH public key masked: the mocks make a fresh key in each
 * process, while a real stack keeps its key in the state.
 */
function userData(g: Graph): Map<string, string> {
  return new Map(
    g.resources
      .filter((r) => r.type === T.instance)
      .map((r) => [
        r.name,
        (r.inputs.metadata as Record<string, string>)["user-data"]!.replace(
          /"ssh-ed25519 [^"]+"/g,
          '"<the stack key>"',
        ),
      ]),
  );
}

/** The host agent host-1 gets with these endpoints (what host preparation installs). */
function agentOf(list: Record<string, unknown>[]): string {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...base, "calico-docker:endpoints": list })) {
    raw[k.replace(/^calico-docker:/, "")] = v;
  }
  const model = modelOf(raw);
  return renderAgentScript(model, hostOf(model, "host-1"));
}

const variants: [string, Record<string, unknown>[]][] = [
  ["an endpoint added", [...endpoints, { host: "host-1", ip: "192.168.1.9", group: "web" }]],
  ["an endpoint removed", endpoints.slice(0, 2)],
  [
    "an attached endpoint added (attach: true)",
    [
      ...endpoints,
      { name: "ext-1", host: "host-1", ip: "192.168.1.10", group: "web", attach: true },
    ],
  ],
];

describe("instance user-data does not follow endpoints or the host agent", () => {
  const before = userData(graph(base));

  it("the dev stack has instances with user-data", () => {
    assert.equal(before.size, 2);
    for (const text of before.values()) {
      assert.match(text, /"ignition"/);
      assert.match(text, /"<the stack key>"/);
    }
  });

  for (const [what, list] of variants) {
    it(`${what}: every instance's user-data is unchanged`, () => {
      const after = userData(graph({ ...base, "calico-docker:endpoints": list }));
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
      for (const [name, text] of after) assert.equal(text, before.get(name), `${name}: ${what}`);
    });
  }

  it("the attached endpoint did change the host agent (so the check above means something)", () => {
    assert.notEqual(agentOf(variants[2]![1]), agentOf(endpoints));
  });
});
