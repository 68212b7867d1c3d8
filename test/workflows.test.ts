// The GitHub Actions workflows, checked for real: parsed with `yaml`, validated
// by the real action-validator (through scripts/validate-workflows.sh), their
// shell run by shellcheck, and the settings check executed with bash.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const workflowsDir = path.join(root, ".github", "workflows");
const actionsDir = path.join(root, ".github", "actions");
const validateScript = path.join(root, "scripts", "validate-workflows.sh");

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function mapping(value: unknown, where: string): Mapping {
  assert.ok(isMapping(value), `${where} must be a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

interface YamlFile {
  /** Path relative to the repository root. */
  rel: string;
  text: string;
  data: Mapping;
}

async function loadYaml(abs: string): Promise<YamlFile> {
  const text = await readFile(abs, "utf8");
  const rel = path.relative(root, abs);
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  assert.deepEqual(
    doc.errors.map((e) => e.message),
    [],
    `${rel} is not valid YAML`,
  );
  return { rel, text, data: mapping(doc.toJS(), rel) };
}

async function yamlFilesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.ya?ml$/.test(entry.name))
      out.push(path.join(entry.parentPath, entry.name));
  }
  return out.sort();
}

const workflows: YamlFile[] = await Promise.all((await yamlFilesIn(workflowsDir)).map(loadYaml));
const actions: YamlFile[] = existsSync(actionsDir)
  ? await Promise.all((await yamlFilesIn(actionsDir)).map(loadYaml))
  : [];
const packageJson = mapping(
  JSON.parse(await readFile(path.join(root, "package.json"), "utf8")),
  "package.json",
);
const packageScripts = mapping(packageJson.scripts, "package.json scripts");
const lock = mapping(
  JSON.parse(await readFile(path.join(root, "package-lock.json"), "utf8")),
  "package-lock.json",
);

function workflow(name: string): YamlFile {
  const found = workflows.find((w) => path.basename(w.rel) === name);
  assert.ok(found, `.github/workflows/${name} must exist`);
  return found;
}

function jobsOf(file: YamlFile): [string, Mapping][] {
  const jobs = mapping(file.data.jobs, `${file.rel} jobs`);
  return Object.entries(jobs).map(([id, job]) => [id, mapping(job, `${file.rel} jobs.${id}`)]);
}

function stepsOf(where: string, steps: unknown): Mapping[] {
  if (steps === undefined) return [];
  assert.ok(Array.isArray(steps), `${where}.steps must be a list`);
  return steps.map((s: unknown, i) => mapping(s, `${where}.steps[${i}]`));
}

/** The steps a job runs: its own, or those of the local reusable workflow it calls. */
function jobSteps(file: YamlFile, id: string, job: Mapping): Mapping[] {
  const uses = optionalString(job.uses);
  if (uses === undefined) return stepsOf(`${file.rel} jobs.${id}`, job.steps);
  assert.ok(
    uses.startsWith("./"),
    `${file.rel} jobs.${id} calls a remote workflow (${uses}): only local ones are expected`,
  );
  const called = workflows.find((w) => w.rel === path.normalize(uses.slice(2)));
  assert.ok(called, `${file.rel} jobs.${id} calls ${uses}, which is not in .github/workflows`);
  return jobsOf(called).flatMap(([cid, cjob]) => jobSteps(called, cid, cjob));
}

function actionName(step: Mapping): string | undefined {
  return optionalString(step.uses)?.split("@")[0];
}

function withOf(step: Mapping): Mapping {
  return step.with === undefined ? {} : mapping(step.with, `with of ${String(step.uses)}`);
}

function pulumiCommand(step: Mapping): string | undefined {
  return actionName(step) === "pulumi/actions" ? optionalString(withOf(step).command) : undefined;
}

/** Every job of every workflow with its (resolved) steps. */
function allJobs(): { file: YamlFile; id: string; job: Mapping; steps: Mapping[] }[] {
  return workflows.flatMap((file) =>
    jobsOf(file).map(([id, job]) => ({ file, id, job, steps: jobSteps(file, id, job) })),
  );
}

function jobRunning(command: string): {
  file: YamlFile;
  id: string;
  job: Mapping;
  steps: Mapping[];
} {
  const found = allJobs().filter((j) => j.steps.some((s) => pulumiCommand(s) === command));
  assert.equal(
    found.length,
    1,
    `exactly one job must run pulumi ${command}, found ${found.map((j) => j.id).join(", ")}`,
  );
  return found[0]!;
}

/** Every shell script in the workflows and the composite actions, with where it is. */
function runScripts(): { where: string; script: string }[] {
  const out: { where: string; script: string }[] = [];
  for (const file of workflows) {
    for (const [id, job] of jobsOf(file)) {
      stepsOf(`${file.rel} jobs.${id}`, job.steps).forEach((step, i) => {
        const run = optionalString(step.run);
        if (run !== undefined)
          out.push({ where: `${file.rel} jobs.${id}.steps[${i}]`, script: run });
      });
    }
  }
  for (const file of actions) {
    const runs = mapping(file.data.runs, `${file.rel} runs`);
    stepsOf(`${file.rel} runs`, runs.steps).forEach((step, i) => {
      const run = optionalString(step.run);
      if (run !== undefined) out.push({ where: `${file.rel} runs.steps[${i}]`, script: run });
    });
  }
  return out;
}

/** A step that makes Pulumi dial the hosts with the stored provider settings. */
function refreshesOrDestroys(step: Mapping): boolean {
  const command = pulumiCommand(step);
  if (command === "refresh" || command === "destroy") return true;
  if (command !== undefined && withOf(step).refresh === true) return true;
  const run = optionalString(step.run) ?? "";
  return /\bpulumi\s+(refresh|destroy)\b|\bpulumi\s+up\b[^\n]*--refresh/.test(run);
}

/** The steps that refresh or destroy before any step put the stack's key in place. */
function withoutAccess(steps: Mapping[]): string[] {
  let prepared = false;
  const out: string[] = [];
  steps.forEach((step, i) => {
    if (/\bnpm run ssh-key\b/.test(optionalString(step.run) ?? "")) prepared = true;
    else if (refreshesOrDestroys(step) && !prepared)
      out.push(`steps[${i}] (${pulumiCommand(step) ?? "run"})`);
  });
  return out;
}

/** The package.json scripts a shell command line runs through npm. */
function npmScriptsCalled(script: string): string[] {
  const names: string[] = [];
  for (const m of script.matchAll(/\bnpm\s+(?:run|run-script|rum|urn)\s+([\w:.-]+)/g))
    names.push(m[1]!);
  for (const m of script.matchAll(/\bnpm\s+(test|t|start|stop|restart)\b/g))
    names.push(m[1] === "t" ? "test" : m[1]!);
  return names;
}

/** Everything wrong with a job's permissions, given the steps it runs. */
function permissionProblems(where: string, permissions: unknown, steps: Mapping[]): string[] {
  if (!isMapping(permissions))
    return [
      `${where}: permissions must be an explicit mapping, got ${JSON.stringify(permissions)}`,
    ];
  const problems: string[] = [];
  const usesAuth = steps.some((s) => actionName(s) === "google-github-actions/auth");
  const commentsOnPr = steps.some(
    (s) => pulumiCommand(s) !== undefined && String(withOf(s)["comment-on-pr"]) === "true",
  );
  for (const [scope, level] of Object.entries(permissions)) {
    if (level !== "read" && level !== "write" && level !== "none") {
      problems.push(`${where}: permissions.${scope} has an unknown level ${JSON.stringify(level)}`);
    } else if (level === "write") {
      if (scope === "id-token" && !usesAuth)
        problems.push(`${where}: id-token: write without google-github-actions/auth`);
      else if (scope === "pull-requests" && !commentsOnPr)
        problems.push(`${where}: pull-requests: write without a PR comment`);
      else if (scope !== "id-token" && scope !== "pull-requests")
        problems.push(`${where}: ${scope}: write is never needed`);
    }
  }
  if (usesAuth && permissions["id-token"] !== "write")
    problems.push(`${where}: uses google-github-actions/auth without id-token: write`);
  if (commentsOnPr && permissions["pull-requests"] !== "write")
    problems.push(`${where}: comments on the PR without pull-requests: write`);
  if (permissions.contents !== "read")
    problems.push(`${where}: contents must be read, got ${JSON.stringify(permissions.contents)}`);
  return problems;
}

/** Places where a secret could reach the log: echoed, or expanded inside a script. */
function secretLeaks(where: string, text: string): string[] {
  const problems: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (/\b(echo|printf|cat|tee)\b.*\$\{\{\s*secrets\./.test(line))
      problems.push(`${where}:${i + 1}: a secret is echoed: ${line.trim()}`);
  });
  return problems;
}

function normalise(expr: string): string {
  return expr
    .replace(/\$\{\{|\}\}/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? root,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "workflows-test-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The inputs of pulumi/actions v7.0.0 (action.yml at 8e5e406f4007fca908480587cb9893c07090f58d). */
const PULUMI_ACTION_INPUTS = new Set([
  "command",
  "stack-name",
  "pulumi-version",
  "pulumi-version-file",
  "work-dir",
  "comment-on-pr",
  "comment-on-pr-number",
  "comment-on-summary",
  "github-token",
  "cloud-url",
  "secrets-provider",
  "parallel",
  "message",
  "config-map",
  "expect-no-changes",
  "diff",
  "replace",
  "exclude",
  "exclude-dependents",
  "target",
  "target-dependents",
  "policyPacks",
  "policyPackConfigs",
  "refresh",
  "upsert",
  "remove",
  "edit-pr-comment",
  "color",
  "exclude-protected",
  "plan",
  "suppress-outputs",
  "suppress-progress",
  "always-include-summary",
  "continue-on-error",
  "log-verbosity",
  "log-flow",
  "debug",
]);

/** The inputs of google-github-actions/auth v3 (action.yml). */
const GCP_AUTH_INPUTS = new Set([
  "project_id",
  "workload_identity_provider",
  "service_account",
  "audience",
  "credentials_json",
  "create_credentials_file",
  "export_environment_variables",
  "token_format",
  "delegates",
  "cleanup_credentials",
  "access_token_lifetime",
  "access_token_scopes",
  "access_token_subject",
  "retries",
  "backoff",
  "backoff_limit",
  "id_token_audience",
  "id_token_include_email",
]);

const RUNNER_LABEL = "${{ vars.PULUMI_RUNNER || 'ubuntu-latest' }}";
const FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository";

/**
 * The Node.js line CI runs and the plugin image ships: the Active LTS line (26 since
 * 2026-10-28; 24 went to maintenance on 2026-10-20, 20 reached its end on 2026-04-30).
 */
const NODE_LTS = "26";

describe("Node.js version", () => {
  it(`every workflow that sets up Node uses ${NODE_LTS}, the line the plugin image runs`, async () => {
    const setups = allJobs().flatMap(({ file, id, steps }) =>
      steps
        .filter((s) => actionName(s) === "actions/setup-node")
        .map((s) => ({
          where: `${file.rel} jobs.${id}`,
          version: String(withOf(s)["node-version"]),
        })),
    );
    assert.ok(setups.length >= 3, JSON.stringify(setups));
    for (const { where, version } of setups) assert.equal(version, NODE_LTS, where);
    const dockerfile = await readFile(path.join(root, "images", "plugin", "Dockerfile"), "utf8");
    const bases = [...dockerfile.matchAll(/^FROM node:(\S+)/gm)].map((m) => m[1]!);
    assert.equal(bases.length, 2, "build and runtime stages");
    for (const base of bases) assert.match(base, new RegExp(`^${NODE_LTS}-`), base);
  });
});

describe("workflow files", () => {
  it("the pull-request, deploy and test workflows exist and parse", () => {
    const names = workflows.map((w) => path.basename(w.rel));
    for (const name of ["pull-request.yml", "deploy.yml", "test.yml"])
      assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
  });

  it("every `npm run <script>` they call exists in package.json", () => {
    const called = runScripts().flatMap(({ where, script }) =>
      npmScriptsCalled(script).map((name) => ({ where, name })),
    );
    for (const { where, name } of called) {
      assert.ok(
        Object.hasOwn(packageScripts, name),
        `${where} runs npm script "${name}", which package.json does not define`,
      );
    }
    const names = new Set(called.map((c) => c.name));
    for (const needed of ["typecheck", "lint", "test", "render"])
      assert.ok(names.has(needed), `no workflow runs npm ${needed}`);
  });

  it("the npm script finder sees `npm test`, `npm run x` and ignores `npm ci`", () => {
    assert.deepEqual(npmScriptsCalled('sudo -E env "PATH=$PATH" npm test'), ["test"]);
    assert.deepEqual(npmScriptsCalled("npm ci --ignore-scripts && npm run render -- --stack dev"), [
      "render",
    ]);
    assert.deepEqual(npmScriptsCalled("npm run-script no-such-script"), ["no-such-script"]);
    assert.ok(!Object.hasOwn(packageScripts, "no-such-script"));
  });

  it("dependencies are installed with `npm ci --ignore-scripts`, never `npm install`", () => {
    const scripts = runScripts();
    const installs = scripts.filter(({ script }) => /\bnpm\s+(ci|install|i)\b/.test(script));
    assert.ok(installs.length >= 3, "each job that runs the program installs its dependencies");
    for (const { where, script } of installs) {
      assert.match(script, /\bnpm ci --ignore-scripts\b/, `${where}`);
      assert.doesNotMatch(script, /\bnpm\s+(install|i)\b/, `${where}`);
    }
  });

  it("no workflow runs on pull_request_target (which would hand secrets to fork code)", () => {
    for (const file of workflows) {
      assert.ok(
        !Object.hasOwn(mapping(file.data.on, `${file.rel} on`), "pull_request_target"),
        file.rel,
      );
    }
  });
});

describe("permissions", () => {
  it("every workflow sets contents: read at the top and nothing else", () => {
    for (const file of workflows)
      assert.deepEqual(file.data.permissions, { contents: "read" }, file.rel);
  });

  it("no file grants write-all or read-all", () => {
    for (const file of [...workflows, ...actions])
      assert.doesNotMatch(file.text, /\b(write|read)-all\b/, file.rel);
  });

  it("every job is minimal: id-token only with auth, pull-requests only for the PR comment", () => {
    const problems = allJobs().flatMap(({ file, id, job, steps }) =>
      permissionProblems(`${file.rel} jobs.${id}`, job.permissions, steps),
    );
    assert.deepEqual(problems, []);
  });

  it("id-token: write is granted exactly where Google auth is used", () => {
    const withToken = allJobs().filter(
      ({ job }) => isMapping(job.permissions) && job.permissions["id-token"] === "write",
    );
    assert.deepEqual(withToken.map(({ id }) => id).sort(), ["preview", "up"]);
    for (const { steps, id } of withToken)
      assert.ok(
        steps.some((s) => actionName(s) === "google-github-actions/auth"),
        id,
      );
  });

  it("the permission check rejects what it should", () => {
    const auth: Mapping = { uses: "google-github-actions/auth@x" };
    const comment: Mapping = {
      uses: "pulumi/actions@x",
      with: { command: "preview", "comment-on-pr": true },
    };
    assert.deepEqual(permissionProblems("j", { contents: "read", "id-token": "write" }, []), [
      "j: id-token: write without google-github-actions/auth",
    ]);
    assert.deepEqual(
      permissionProblems("j", { contents: "read", "pull-requests": "write" }, [auth]),
      [
        "j: pull-requests: write without a PR comment",
        "j: uses google-github-actions/auth without id-token: write",
      ],
    );
    assert.deepEqual(
      permissionProblems("j", { contents: "read", "id-token": "write" }, [auth, comment]),
      ["j: comments on the PR without pull-requests: write"],
    );
    assert.deepEqual(permissionProblems("j", { contents: "write" }, []), [
      "j: contents: write is never needed",
      'j: contents must be read, got "write"',
    ]);
    assert.deepEqual(permissionProblems("j", "write-all", []), [
      'j: permissions must be an explicit mapping, got "write-all"',
    ]);
    assert.deepEqual(
      permissionProblems("j", { contents: "read", "id-token": "write", "pull-requests": "write" }, [
        auth,
        comment,
      ]),
      [],
    );
  });
});

describe("pull request preview", () => {
  const pr = workflow("pull-request.yml");

  it("runs on pull_request", () => {
    assert.ok(Object.hasOwn(mapping(pr.data.on, "on"), "pull_request"));
  });

  it("the test job runs the shared tests; preview needs it and is skipped for forks", () => {
    const jobs = Object.fromEntries(jobsOf(pr));
    assert.equal(jobs.test?.uses, "./.github/workflows/test.yml");
    const { id, job } = jobRunning("preview");
    assert.equal(id, "preview");
    assert.ok(([] as unknown[]).concat(job.needs).includes("test"), "preview needs test");
    const condition = normalise(String(job.if));
    assert.equal(
      condition,
      FORK_GUARD,
      "the preview condition is exactly the fork guard (no `||` escape)",
    );
  });

  it("every job of the PR workflow that gets cloud credentials is skipped for forks", () => {
    for (const [id, job] of jobsOf(pr)) {
      const perms = isMapping(job.permissions) ? job.permissions : {};
      if (perms["id-token"] === "write" || perms["pull-requests"] === "write") {
        assert.ok(
          normalise(String(job.if)).includes(FORK_GUARD),
          `${id} must be skipped for forks`,
        );
      }
    }
  });

  it("previews with a diff, one PR comment edited in place, the GCS backend and the passphrase secret", () => {
    const { job, steps } = jobRunning("preview");
    const step = steps.find((s) => pulumiCommand(s) === "preview")!;
    const w = withOf(step);
    assert.equal(w.diff, true);
    assert.equal(w["comment-on-pr"], true);
    assert.equal(w["edit-pr-comment"], true);
    assert.equal(w["cloud-url"], "${{ vars.PULUMI_BACKEND_URL }}");
    assert.equal(w["stack-name"], "${{ vars.PULUMI_STACK || 'dev' }}");
    assert.equal(
      mapping(step.env, "preview env").PULUMI_CONFIG_PASSPHRASE,
      "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
    );
    assert.ok(
      w.refresh === undefined || w.refresh === false,
      "a preview must not refresh (it would dial hosts that may not exist)",
    );
    assert.equal(job["runs-on"], RUNNER_LABEL);
  });

  it("preview is serialised per stack and pull request, apart from `pulumi up`", () => {
    const preview = jobRunning("preview").job;
    const up = jobRunning("up").job;
    const previewGroup = String(mapping(preview.concurrency, "preview concurrency").group);
    const upGroup = String(mapping(up.concurrency, "up concurrency").group);
    assert.ok(
      previewGroup.startsWith(`${upGroup}-preview-`),
      `${previewGroup} is the stack's group plus the PR`,
    );
    assert.ok(previewGroup.includes("github.event.pull_request.number"), previewGroup);
    assert.notEqual(previewGroup, upGroup);
  });
});

describe("deploy", () => {
  const deploy = workflow("deploy.yml");

  it("runs on pushes to main and by hand", () => {
    const on = mapping(deploy.data.on, "on");
    assert.deepEqual(mapping(on.push, "on.push").branches, ["main"]);
    assert.ok(Object.hasOwn(on, "workflow_dispatch"));
  });

  it("pulumi up needs the tests, runs only on main, behind the production environment", () => {
    const { file, id, job } = jobRunning("up");
    assert.equal(file.rel, path.join(".github", "workflows", "deploy.yml"));
    assert.ok(([] as unknown[]).concat(job.needs).includes("test"), `${id} needs test`);
    assert.equal(Object.fromEntries(jobsOf(deploy)).test?.uses, "./.github/workflows/test.yml");
    assert.equal(normalise(String(job.if)), "github.ref == 'refs/heads/main'");
    const environment = job.environment;
    const name = isMapping(environment) ? environment.name : environment;
    assert.equal(name, "production");
    assert.equal(job["runs-on"], RUNNER_LABEL);
  });

  it("one update per stack at a time, never cancelled", () => {
    const { job, steps } = jobRunning("up");
    const concurrency = mapping(job.concurrency, "up concurrency");
    const stack = String(withOf(steps.find((s) => pulumiCommand(s) === "up")!)["stack-name"]);
    assert.equal(concurrency.group, `pulumi-${stack}`);
    assert.equal(concurrency["cancel-in-progress"], false);
  });

  it("writes the SSH key only through `npm run ssh-key`, from the stack's state", () => {
    for (const { where, script } of runScripts()) {
      assert.doesNotMatch(
        script,
        /id_rsa|id_ed25519|id_key|ssh-add|PRIVATE KEY/,
        `${where} handles a private key`,
      );
      if (/\bssh-key\b/.test(script))
        assert.match(script, /npm run ssh-key -- --stack "\$STACK" --from-stack-output/, where);
    }
  });

  it("every job prepares SSH access before a refresh or destroy", () => {
    let refreshes = 0;
    for (const { file, id, steps } of allJobs()) {
      assert.deepEqual(withoutAccess(steps), [], `${file.rel} jobs.${id}`);
      refreshes += steps.filter(refreshesOrDestroys).length;
    }
    assert.ok(refreshes >= 1, "pulumi up in deploy.yml refreshes first");
  });

  it("the access check catches a refresh or destroy with no key put in place first", () => {
    const up = { uses: "pulumi/actions@x", with: { command: "up", refresh: true } };
    const destroy = { uses: "pulumi/actions@x", with: { command: "destroy" } };
    const prepare = { run: 'npm run ssh-key -- --stack "$STACK" --from-stack-output' };
    assert.deepEqual(withoutAccess([up]), ["steps[0] (up)"]);
    assert.deepEqual(withoutAccess([{ run: "pulumi refresh --yes" }]), ["steps[0] (run)"]);
    assert.deepEqual(withoutAccess([destroy, prepare]), ["steps[0] (destroy)"]);
    assert.deepEqual(withoutAccess([prepare, up, destroy]), []);
    assert.deepEqual(
      withoutAccess([{ uses: "pulumi/actions@x", with: { command: "preview" } }]),
      [],
    );
  });
});

describe("secrets and actions", () => {
  it("no secret is echoed, and no script expands a secret", () => {
    const leaks = [...workflows, ...actions].flatMap((f) => secretLeaks(f.rel, f.text));
    assert.deepEqual(leaks, []);
    for (const { where, script } of runScripts())
      assert.doesNotMatch(script, /\$\{\{\s*secrets\./, `${where} expands a secret in a script`);
  });

  it("the leak check catches an echoed secret", () => {
    assert.equal(secretLeaks("x", "run: echo ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}").length, 1);
    assert.equal(secretLeaks("x", 'run: printf "%s" "${{secrets.KEY}}" > key').length, 1);
    assert.equal(
      secretLeaks("x", "PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}").length,
      0,
    );
  });

  it("secrets reach only the steps that need them, never a whole job or workflow", () => {
    for (const file of workflows) {
      assert.doesNotMatch(JSON.stringify(file.data.env ?? {}), /secrets\./, `${file.rel} env`);
      for (const [id, job] of jobsOf(file))
        assert.doesNotMatch(
          JSON.stringify(job.env ?? {}),
          /secrets\./,
          `${file.rel} jobs.${id}.env`,
        );
    }
  });

  it("pulumi/actions and google-github-actions/auth get only inputs their action.yml declares", () => {
    let seen = 0;
    for (const { file, id, steps } of allJobs()) {
      for (const step of steps) {
        const known =
          actionName(step) === "pulumi/actions"
            ? PULUMI_ACTION_INPUTS
            : actionName(step) === "google-github-actions/auth"
              ? GCP_AUTH_INPUTS
              : undefined;
        if (known === undefined) continue;
        seen++;
        for (const input of Object.keys(withOf(step)))
          assert.ok(
            known.has(input),
            `${file.rel} jobs.${id}: ${actionName(step)} has no input "${input}"`,
          );
      }
    }
    assert.ok(seen >= 6, `expected auth, install and run steps in both jobs, saw ${seen}`);
  });

  it("Workload Identity settings come from repository variables", () => {
    for (const { steps } of [jobRunning("preview"), jobRunning("up")]) {
      const auth = withOf(steps.find((s) => actionName(s) === "google-github-actions/auth")!);
      assert.equal(auth.workload_identity_provider, "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}");
      assert.match(String(auth.service_account), /^\$\{\{ vars\.GCP_\w*SERVICE_ACCOUNT\b/);
      assert.equal(auth.credentials_json, undefined, "no long-lived key");
    }
  });

  it("every remote action is pinned to a full commit SHA with its version in a comment, the same SHA everywhere", () => {
    const pins = new Map<string, string>();
    let count = 0;
    for (const file of [...workflows, ...actions]) {
      file.text.split("\n").forEach((line, i) => {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
        if (!m) return;
        const ref = m[1]!;
        const where = `${file.rel}:${i + 1}`;
        if (ref.startsWith("./")) {
          const local = path.join(root, ref);
          assert.ok(
            existsSync(local.endsWith(".yml") ? local : path.join(local, "action.yml")),
            `${where}: ${ref} does not exist`,
          );
          return;
        }
        count++;
        const pinned = /^([\w.-]+\/[\w.-]+)@([0-9a-f]{40})$/.exec(ref);
        assert.ok(pinned, `${where}: ${ref} is not pinned to a 40-character commit SHA`);
        assert.match(
          m[2]!,
          /^\s+# v\d+(\.\d+)*\s*$/,
          `${where}: the pin needs a "# vX.Y.Z" comment`,
        );
        const previous = pins.get(pinned[1]!);
        assert.ok(
          previous === undefined || previous === pinned[2],
          `${where}: ${pinned[1]} pinned to two SHAs`,
        );
        pins.set(pinned[1]!, pinned[2]!);
      });
    }
    assert.ok(count >= 10, `expected the workflows to use remote actions, found ${count}`);
  });

  it("the Pulumi CLI is the version of @pulumi/pulumi in package-lock.json", () => {
    const packages = mapping(lock.packages, "package-lock.json packages");
    const sdk = mapping(
      packages["node_modules/@pulumi/pulumi"],
      "@pulumi/pulumi in the lock file",
    ).version;
    for (const name of ["pull-request.yml", "deploy.yml"]) {
      assert.equal(mapping(workflow(name).data.env, `${name} env`).PULUMI_VERSION, sdk, name);
    }
    for (const { file, id, steps } of allJobs()) {
      for (const step of steps.filter((s) => actionName(s) === "pulumi/actions")) {
        assert.equal(
          withOf(step)["pulumi-version"],
          "${{ env.PULUMI_VERSION }}",
          `${file.rel} jobs.${id}`,
        );
      }
    }
  });
});

describe("test job", () => {
  const test = workflow("test.yml");
  const [[, job]] = jobsOf(test) as [[string, Mapping]];
  const steps = stepsOf("test.yml jobs.test", job.steps);
  const script = steps.map((s) => optionalString(s.run) ?? "").join("\n");

  it("is a reusable workflow on a GitHub-hosted runner (sudo for the lab; never fork code on our runner)", () => {
    assert.ok(Object.hasOwn(mapping(test.data.on, "on"), "workflow_call"));
    assert.equal(job["runs-on"], "ubuntu-latest");
  });

  it(`sets up Node ${NODE_LTS} with the npm cache and installs the lab's packages`, () => {
    const node = withOf(steps.find((s) => actionName(s) === "actions/setup-node")!);
    assert.equal(String(node["node-version"]), NODE_LTS);
    assert.equal(node.cache, "npm");
    const apt = /apt-get install\b([^\n]*)/.exec(script);
    assert.ok(apt, "apt-get install");
    for (const pkg of ["bird", "iproute2", "iptables", "ipset", "shellcheck"])
      assert.match(apt[1]!, new RegExp(`(^|\\s)${pkg}(\\s|$)`), pkg);
  });

  it("runs typecheck, lint, render and the tests as root, and uploads out/", () => {
    assert.match(script, /^npm run typecheck$/m);
    assert.match(script, /^npm run lint$/m);
    assert.match(script, /^sudo -E env "PATH=\$PATH" npm test$/m);
    assert.match(script, /npm run render -- --stack "\$STACK"/);
    const upload = steps.find((s) => actionName(s) === "actions/upload-artifact");
    assert.ok(upload, "upload-artifact step");
    assert.equal(withOf(upload).path, "out/");
  });
});

describe("shell", () => {
  /** GitHub substitutes ${{ }} before bash runs; shellcheck sees a plain word instead. */
  async function shellcheck(dir: string, name: string, script: string): Promise<Result> {
    const file = path.join(dir, name);
    await writeFile(
      file,
      `#!/usr/bin/env bash\n${script.replace(/\$\{\{[^}]*\}\}/g, "GHA_EXPRESSION")}\n`,
    );
    return run("shellcheck", ["--shell=bash", "--severity=style", file]);
  }

  it("every run: script of the workflows and actions passes shellcheck", async () => {
    const scripts = runScripts();
    assert.ok(scripts.length >= 8, `found ${scripts.length} scripts`);
    await withTempDir(async (dir) => {
      for (const [i, { where, script }] of scripts.entries()) {
        const r = await shellcheck(dir, `step${i}.sh`, script);
        assert.equal(r.code, 0, `${where}:\n${r.stdout}${r.stderr}`);
      }
      // shellcheck is really running: an unquoted expansion is reported.
      const bad = await shellcheck(dir, "bad.sh", "rm -rf $DIR/out");
      assert.notEqual(bad.code, 0);
      assert.match(bad.stdout, /SC2086/);
    });
  });

  it("scripts/validate-workflows.sh passes shellcheck", async () => {
    const r = await run("shellcheck", [validateScript]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe("action-validator", () => {
  it("accepts every workflow and action file", async () => {
    const r = await run("bash", [validateScript]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const file of [...workflows, ...actions]) {
      assert.ok(
        r.stdout.includes(`ok      ${path.join(root, file.rel)}`),
        `${file.rel} was not validated:\n${r.stdout}`,
      );
    }
  });

  it("rejects broken copies written to a temp dir, and says which file and why", async () => {
    await withTempDir(async (dir) => {
      const pr = workflow("pull-request.yml");
      // A valid copy next to the broken ones: the temp dir is not the reason for failure.
      await writeFile(path.join(dir, "valid.yml"), pr.text);
      // A schema error: a misspelt key in the preview job.
      const misspelt = parseDocument(pr.text);
      const preview = misspelt.getIn(["jobs", "preview"]);
      assert.ok(preview !== undefined);
      misspelt.setIn(
        ["jobs", "preview", "runs-onn"],
        misspelt.getIn(["jobs", "preview", "runs-on"]),
      );
      misspelt.deleteIn(["jobs", "preview", "runs-on"]);
      await writeFile(path.join(dir, "misspelt.yml"), misspelt.toString());
      // A YAML syntax error.
      await writeFile(
        path.join(dir, "syntax.yml"),
        pr.text.replace("jobs:\n", "jobs:\n  [unclosed\n"),
      );
      // A composite action without `runs`.
      const action = parseDocument(
        actions[0]?.text ?? "name: x\ndescription: y\nruns:\n  using: composite\n  steps: []\n",
      );
      action.delete("runs");
      await mkdir(path.join(dir, "broken-action"));
      await writeFile(path.join(dir, "broken-action", "action.yml"), action.toString());

      const r = await run("bash", [validateScript, dir]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok {6}.*valid\.yml$/m);
      assert.match(r.stderr, /^INVALID .*misspelt\.yml$/m);
      assert.match(r.stderr, /Additional property 'runs-onn' is not allowed/);
      assert.match(r.stderr, /^INVALID .*syntax\.yml$/m);
      assert.match(r.stderr, /Parse Error/);
      assert.match(r.stderr, /^INVALID .*broken-action\/action\.yml$/m);
      assert.match(r.stderr, /runs/);
    });
  });

  it("fails when there is nothing to validate or a path does not exist", async () => {
    await withTempDir(async (dir) => {
      const empty = await run("bash", [validateScript, dir]);
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /no workflow files found/);
      const missing = await run("bash", [validateScript, path.join(dir, "nope")]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no such file or directory: .*nope/);
    });
  });
});

describe("settings check (.github/actions/check-pulumi-settings)", () => {
  const file = actions.find(
    (a) => a.rel === path.join(".github", "actions", "check-pulumi-settings", "action.yml"),
  );
  const step = file ? stepsOf(file.rel, mapping(file.data.runs, "runs").steps)[0] : undefined;
  const script = optionalString(step?.run) ?? "";

  const good = {
    STACK: "dev",
    BACKEND: "gs://calico-docker-state",
    PROVIDER:
      "projects/123456789/locations/global/workloadIdentityPools/github/providers/calico-docker",
    ACCOUNT: "calico-docker-deploy@my-project.iam.gserviceaccount.com",
    HAS_PASSPHRASE: "true",
  };

  /** A stack file as `pulumi stack init` leaves it with the passphrase provider. */
  const plainStack = "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\nconfig: {}\n";

  /** Runs the check in a temp dir that holds Pulumi.dev.yaml and no other stack file. */
  async function check(env: Partial<typeof good>, stackFile = plainStack): Promise<Result> {
    return withTempDir(async (dir) => {
      await writeFile(path.join(dir, "Pulumi.dev.yaml"), stackFile);
      const scriptFile = path.join(dir, "check.sh");
      await writeFile(scriptFile, script);
      await chmod(scriptFile, 0o700);
      return run("bash", ["-e", scriptFile], {
        cwd: dir,
        env: { PATH: process.env.PATH, ...good, ...env },
      });
    });
  }

  it("takes its inputs from the environment only (no expression inside the script)", () => {
    assert.ok(script.length > 0, "the action has a run step");
    assert.doesNotMatch(script, /\$\{\{/);
    for (const name of ["pull-request.yml", "deploy.yml"]) {
      const job = jobRunning(name === "deploy.yml" ? "up" : "preview");
      const used = job.steps.find((s) => s.uses === "./.github/actions/check-pulumi-settings");
      assert.ok(used, `${name} checks the settings`);
      const auth = withOf(job.steps.find((s) => actionName(s) === "google-github-actions/auth")!);
      assert.equal(
        withOf(used)["service-account"],
        auth.service_account,
        `${name} checks the account it uses`,
      );
    }
  });

  it("accepts good settings, and a gcpkms stack without a passphrase", async () => {
    const ok = await check({});
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const kms = await check(
      { HAS_PASSPHRASE: "false" },
      "secretsprovider: gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k\nconfig: {}\n",
    );
    assert.equal(kms.code, 0, kms.stdout + kms.stderr);
  });

  it("names the setting and the value it rejects", async () => {
    const cases: [Partial<typeof good>, string, RegExp][] = [
      [{ BACKEND: "" }, plainStack, /vars\.PULUMI_BACKEND_URL must be gs:\/\/<bucket>, got ''/],
      [{ BACKEND: "s3://bucket" }, plainStack, /PULUMI_BACKEND_URL.*got 's3:\/\/bucket'/],
      [
        { STACK: "dev; rm -rf /" },
        plainStack,
        /vars\.PULUMI_STACK is not a stack name: 'dev; rm -rf \/'/,
      ],
      [
        { STACK: "prod" },
        plainStack,
        /vars\.PULUMI_STACK='prod' but Pulumi\.prod\.yaml is not in the repository/,
      ],
      [
        {},
        "config: {}\n",
        /Pulumi\.dev\.yaml has no encryptionsalt or secretsprovider: run 'pulumi stack init dev'/,
      ],
      [
        { HAS_PASSPHRASE: "false" },
        plainStack,
        /PULUMI_CONFIG_PASSPHRASE is not set and Pulumi\.dev\.yaml has no gcpkms/,
      ],
      [
        { PROVIDER: "projects/x/pools/y" },
        plainStack,
        /GCP_WORKLOAD_IDENTITY_PROVIDER must be .*got 'projects\/x\/pools\/y'/,
      ],
      [
        { ACCOUNT: "someone@gmail.com" },
        plainStack,
        /service account must be .*got 'someone@gmail\.com'/,
      ],
    ];
    for (const [env, stackFile, expected] of cases) {
      const r = await check(env, stackFile);
      assert.equal(r.code, 1, `${JSON.stringify(env)} must be rejected:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^::error title=Pulumi CI settings::/m);
      assert.match(r.stdout, expected);
    }
  });

  it("reports every bad setting at once", async () => {
    const r = await check({ BACKEND: "", ACCOUNT: "" });
    assert.equal(r.code, 1);
    assert.equal(r.stdout.match(/::error/g)?.length, 2, r.stdout);
  });
});
