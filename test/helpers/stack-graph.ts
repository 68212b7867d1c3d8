/**
 * Runs the real program (index.ts) under Pulumi mocks as one stack and prints its GCE
 * graph as JSON on stdout: `node --import tsx test/helpers/stack-graph.ts <stack> <config
 * JSON>`. One process per stack, because the Pulumi runtime holds one stack per process.
 */
import { installMocks, valueOf } from "../program-mocks.js";

const [stack, configJson] = process.argv.slice(2);
if (stack === undefined || configJson === undefined) {
  process.stderr.write("usage: stack-graph.ts <stack> <config JSON>\n");
  process.exit(2);
}
const world = await installMocks(JSON.parse(configJson) as Record<string, unknown>, { stack });
try {
  const program = await import("../../index.js");
  const hosts = await valueOf(program.hosts);
  await world.settle();
  const resources = world.resources
    .filter((r) => r.type.startsWith("gcp:"))
    .map((r) => ({ type: r.type, name: r.name, inputs: r.inputs }));
  process.stdout.write(JSON.stringify({ stack, hosts, resources }));
} finally {
  world.cleanup();
}
