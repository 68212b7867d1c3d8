/**
 * The policy pack under Pulumi's own policy runner, started the way the Pulumi CLI starts it
 * (`node …/run-policy-pack/index.js <engine> policy`, plain node: no tsx, no build step).
 * The pack must load, print the port it serves on, and answer the analyzer's gRPC calls with
 * our policies and their verdicts.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
const RUNNER = join(
  ROOT,
  "node_modules",
  "@pulumi",
  "pulumi",
  "cmd",
  "run-policy-pack",
  "index.js",
);

// The analyzer's gRPC client and messages, from the same copies @pulumi/pulumi uses.
const pulumiRequire = createRequire(join(ROOT, "node_modules", "@pulumi", "pulumi", "index.js"));
const grpc = pulumiRequire("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const analyzerGrpc = pulumiRequire(
  "./proto/analyzer_grpc_pb.js",
) as typeof import("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const analyzerPb = pulumiRequire(
  "./proto/analyzer_pb.js",
) as typeof import("@pulumi/pulumi/proto/analyzer_pb.js");
const { Struct } = pulumiRequire(
  "google-protobuf/google/protobuf/struct_pb.js",
) as typeof import("google-protobuf/google/protobuf/struct_pb.js");
const { Empty } = pulumiRequire(
  "google-protobuf/google/protobuf/empty_pb.js",
) as typeof import("google-protobuf/google/protobuf/empty_pb.js");

type Client = InstanceType<typeof analyzerGrpc.AnalyzerClient>;
type AnalyzeResponse = import("@pulumi/pulumi/proto/analyzer_pb.js").AnalyzeResponse;
type AnalyzerInfo = import("@pulumi/pulumi/proto/analyzer_pb.js").AnalyzerInfo;

/** Start the runner; resolve with the port it prints, reject with its output if it exits. */
function startRunner(): Promise<{ child: ChildProcess; port: number }> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // exactly what the CLI runs: no loader from our test runner
  const child = spawn(process.execPath, [RUNNER, "127.0.0.1:1", "policy"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no port within 60 s:\n${output}`));
    }, 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
      const m = /^(\d+)\s*$/m.exec(output);
      if (m) {
        clearTimeout(timer);
        resolvePort({ child, port: Number(m[1]) });
      }
    });
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the policy runner exited (${code ?? signal}) without serving:\n${output}`));
    });
  });
}

/** One unary gRPC call as a promise. */
function unary<Res>(
  start: (done: (err: import("@grpc/grpc-js").ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((ok, fail) => start((err, res) => (err ? fail(err) : ok(res))));
}

/** The policy names and messages the pack reports for one resource. */
async function analyze(client: Client, type: string, props: Record<string, unknown>) {
  const req = new analyzerPb.AnalyzeRequest();
  req.setType(type);
  req.setName("r");
  req.setUrn(`urn:pulumi:test::calico-docker::${type}::r`);
  req.setProperties(Struct.fromJavaScript(props as Parameters<typeof Struct.fromJavaScript>[0]));
  req.setOptions(new analyzerPb.AnalyzerResourceOptions()); // the CLI always sends options
  const res = await unary<AnalyzeResponse>((done) => client.analyze(req, done));
  return res
    .getDiagnosticsList()
    .map((d) => ({ policy: d.getPolicyname(), message: d.getMessage() }));
}

describe("the policy pack under Pulumi's policy runner", () => {
  let child: ChildProcess | undefined;
  let client: Client;
  before(async () => {
    const started = await startRunner();
    child = started.child;
    client = new analyzerGrpc.AnalyzerClient(
      `127.0.0.1:${started.port}`,
      grpc.credentials.createInsecure(),
    );
  });
  after(() => {
    client?.close();
    child?.kill("SIGKILL");
  });

  it("loads the pack and serves its policies", async () => {
    const info = await unary<AnalyzerInfo>((done) => client.getAnalyzerInfo(new Empty(), done));
    assert.equal(info.getName(), "calico-docker");
    assert.deepEqual(
      info
        .getPoliciesList()
        .map((p) => p.getName())
        .sort(),
      [
        "docker-over-ssh-only",
        "instances-forward-ip",
        "no-world-ingress-but-icmp",
        "ssh-from-listed-ranges",
        "workload-endpoints-confined",
      ],
    );
  });

  it("reports a privileged endpoint container on the host's network; passes a confined one", async () => {
    const labels = [{ label: "calico-docker.role", value: "endpoint" }];
    const bad = await analyze(client, "docker:index/container:Container", {
      labels,
      privileged: true,
      networkMode: "host",
    });
    assert.deepEqual(
      bad.map((d) => d.policy),
      ["workload-endpoints-confined", "workload-endpoints-confined"],
      JSON.stringify(bad),
    );
    const good = await analyze(client, "docker:index/container:Container", {
      labels,
      privileged: false,
      networkMode: "none",
    });
    assert.deepEqual(good, []);
  });

  it("reports SSH open to the world and passes SSH from one office range", async () => {
    const open = await analyze(client, "gcp:compute/firewall:Firewall", {
      direction: "INGRESS",
      sourceRanges: ["0.0.0.0/0"],
      allows: [{ protocol: "tcp", ports: ["22"] }],
    });
    assert.ok(
      open.some(
        (d) => d.policy === "ssh-from-listed-ranges" && /open to 0\.0\.0\.0\/0/.test(d.message),
      ),
      JSON.stringify(open),
    );
    const office = await analyze(client, "gcp:compute/firewall:Firewall", {
      direction: "INGRESS",
      sourceRanges: ["203.0.113.0/24"],
      allows: [{ protocol: "tcp", ports: ["22"] }],
    });
    assert.deepEqual(office, []);
  });

  it("reports SSH open to the world in two halves", async () => {
    const halves = await analyze(client, "gcp:compute/firewall:Firewall", {
      direction: "INGRESS",
      sourceRanges: ["0.0.0.0/1", "128.0.0.0/1"],
      allows: [{ protocol: "tcp", ports: ["22"] }],
    });
    assert.ok(
      ["0", "128"].every((half) =>
        halves.some(
          (d) =>
            d.policy === "ssh-from-listed-ranges" &&
            new RegExp(`from ${half}\\.0\\.0\\.0/1 is wider than /16`).test(d.message),
        ),
      ),
      JSON.stringify(halves),
    );
  });
});
