// The container images felix, bird and util, checked without a registry or a
// Docker engine: every Dockerfile is parsed into instructions and its rules
// checked (pinned bases, the pinned sources of the felix image and how each is
// built, the tools and entry points each image must carry, apt hygiene, files it
// copies exist), the shell of every RUN and every shell script under images/ goes
// through the real shellcheck, fetch_tag.sh and fetch_sources.sh run against real
// git repositories and tarballs, and run_bird
// runs the real BIRD: parse checks, and a real start in a network namespace of
// its own.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const imagesDir = path.join(root, "images");
const runBird = path.join(imagesDir, "bird", "run_bird");
const fetchTag = path.join(imagesDir, "felix", "fetch_tag.sh");
const fetchSources = path.join(imagesDir, "felix", "fetch_sources.sh");

/** The images this file owns; images/plugin is checked by the plugin's tests. */
const IMAGES = ["felix", "bird", "util"] as const;
type ImageName = (typeof IMAGES)[number];

/** Tag 0.10.2 of projectcalico/felix and the full commit it must resolve to. */
const FELIX_TAG = "0.10.2";
const FELIX_COMMIT = "61f8e598a53dc464fe63bd5cde806ec4594b0231";

// ---------------------------------------------------------------------------
// A small Dockerfile parser: parser directives, comments, line continuations,
// exec (JSON) form. It follows the rules of Docker's own parser for the subset
// these Dockerfiles use, and refuses what it does not understand (heredocs,
// unknown instructions) instead of guessing.

const KEYWORDS = new Set([
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "MAINTAINER",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
]);

export interface Instruction {
  /** Upper-case instruction name. */
  keyword: string;
  /** Everything after the keyword, continuation lines joined as Docker joins them, trimmed. */
  args: string;
  /** The same text with its line breaks kept (escape + newline), for shellcheck. */
  text: string;
  /** 1-based line where the instruction starts. */
  line: number;
}

export function parseDockerfile(text: string, file = "Dockerfile"): Instruction[] {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  let escape = "\\";
  let i = 0;
  // Parser directives: "# name=value" lines before anything else.
  for (; i < lines.length; i++) {
    const m = /^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$/.exec(lines[i] ?? "");
    if (!m) break;
    const [, name = "", value = ""] = m;
    if (name.toLowerCase() === "escape") {
      if (value !== "\\" && value !== "`") {
        throw new Error(`${file}:${i + 1}: escape directive must be \\ or \`, got ${value}`);
      }
      escape = value;
    }
  }
  const out: Instruction[] = [];
  let current: { parts: string[]; line: number } | undefined;
  for (; i < lines.length; i++) {
    const raw = lines[i] ?? "";
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue; // also inside a continuation
    const continues = raw.trimEnd().endsWith(escape);
    const body = continues ? raw.trimEnd().slice(0, -1) : raw;
    if (current) {
      current.parts.push(body);
    } else {
      current = { parts: [body], line: i + 1 };
    }
    if (continues) continue;
    out.push(finish(current.parts, escape, current.line, file));
    current = undefined;
  }
  if (current) {
    throw new Error(
      `${file}:${current.line}: the instruction ends with a line continuation at end of file`,
    );
  }
  return out;
}

function finish(parts: string[], escape: string, line: number, file: string): Instruction {
  const joined = parts.join("");
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(joined);
  if (!m) throw new Error(`${file}:${line}: cannot parse instruction: ${joined.trim()}`);
  const keyword = (m[1] ?? "").toUpperCase();
  const args = (m[2] ?? "").trim();
  const text = parts
    .join(`${escape}\n`)
    .replace(/^\s*[A-Za-z]+\s*/, "")
    .trim();
  if (!KEYWORDS.has(keyword)) throw new Error(`${file}:${line}: unknown instruction "${m[1]}"`);
  if (args === "") throw new Error(`${file}:${line}: ${keyword} has no arguments`);
  if (/^(RUN|COPY|ADD)$/.test(keyword) && /(^|\s)<<-?["']?[A-Za-z_]/.test(args)) {
    throw new Error(`${file}:${line}: heredocs are not supported by this parser`);
  }
  return { keyword, args, text, line };
}

/** Exec (JSON array) form of CMD/ENTRYPOINT/RUN/HEALTHCHECK CMD, or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === "string")) {
    throw new Error(`exec form must be a JSON array of strings: ${args}`);
  }
  return parsed;
}

/** Leading --flag=value options of COPY/ADD/FROM/RUN, and the rest. */
function splitFlags(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (!m) break;
    flags.set(m[1] ?? "", m[2] ?? "");
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

interface ImageRef {
  name: string;
  tag?: string;
  digest?: string;
}

function parseImageRef(ref: string): ImageRef {
  const [nameTag = "", digest] = ref.split("@", 2);
  const slash = nameTag.lastIndexOf("/");
  const colon = nameTag.lastIndexOf(":");
  if (colon > slash) {
    return {
      name: nameTag.slice(0, colon),
      tag: nameTag.slice(colon + 1),
      ...(digest ? { digest } : {}),
    };
  }
  return { name: nameTag, ...(digest ? { digest } : {}) };
}

/**
 * Defaults of the ARGs before the first FROM: the only ones a FROM line can use. A default
 * may name an earlier one (`ARG B=${A}`), which Docker expands, as here.
 */
function globalArgs(instructions: Instruction[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const ins of instructions) {
    if (ins.keyword === "FROM") break;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args);
    if (m?.[2] !== undefined) out.set(m[1] ?? "", expandFrom(m[2], out, ins.line));
  }
  return out;
}

/** A FROM reference with its `${NAME}` / `$NAME` replaced by the global ARG defaults. */
function expandFrom(ref: string, globals: Map<string, string>, line: number): string {
  return ref.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
    const v = globals.get(name);
    assert.ok(v !== undefined, `line ${line}: FROM uses $${name}, which has no global ARG default`);
    return v;
  });
}

interface Stage {
  from: Instruction;
  /** The image as written (may name a build argument). */
  ref: string;
  /** The image with build arguments at their defaults. */
  image: string;
  alias?: string;
  instructions: Instruction[];
}

function stages(instructions: Instruction[]): Stage[] {
  const out: Stage[] = [];
  const globals = globalArgs(instructions);
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const { rest } = splitFlags(ins.args);
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(m, `line ${ins.line}: FROM must be "image [AS name]", got "${ins.args}"`);
      out.push({
        from: ins,
        ref: m[1] ?? "",
        image: expandFrom(m[1] ?? "", globals, ins.line),
        ...(m[2] ? { alias: m[2] } : {}),
        instructions: [],
      });
    } else if (out.length === 0) {
      assert.equal(ins.keyword, "ARG", `line ${ins.line}: only ARG may come before the first FROM`);
    } else {
      out[out.length - 1]?.instructions.push(ins);
    }
  }
  return out;
}

const DEBIAN_CODENAMES = ["buster", "bullseye", "bookworm", "trixie"];

/** Why a base image reference is not pinned, or undefined when it is. */
function unpinnedReason(ref: string): string | undefined {
  const { tag, digest } = parseImageRef(ref);
  if (digest !== undefined) {
    return /^sha256:[0-9a-f]{64}$/.test(digest) ? undefined : `bad digest "${digest}"`;
  }
  if (tag === undefined) return "no tag (that means :latest)";
  if (tag === "latest") return "the tag is latest";
  if (/\d/.test(tag)) return undefined;
  if (DEBIAN_CODENAMES.some((c) => tag === c || tag.startsWith(`${c}-`))) return undefined;
  return `the tag "${tag}" names no version or release`;
}

// ---------------------------------------------------------------------------
// Helpers

interface Dockerfile {
  name: ImageName;
  dir: string;
  text: string;
  instructions: Instruction[];
  stages: Stage[];
}

async function loadDockerfile(name: ImageName): Promise<Dockerfile> {
  const dir = path.join(imagesDir, name);
  const file = path.join(dir, "Dockerfile");
  const text = await readFile(file, "utf8");
  const instructions = parseDockerfile(text, path.relative(root, file));
  return { name, dir, text, instructions, stages: stages(instructions) };
}

function all(df: Dockerfile | Stage, keyword: string): Instruction[] {
  return df.instructions.filter((i) => i.keyword === keyword);
}

function last(df: Dockerfile | Stage, keyword: string): Instruction {
  const found = all(df, keyword);
  const ins = found[found.length - 1];
  assert.ok(ins, `no ${keyword} instruction`);
  return ins;
}

function argDefault(df: Dockerfile | Stage, name: string): string | undefined {
  for (const ins of all(df, "ARG")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args);
    if (m?.[1] === name) return m[2];
  }
  return undefined;
}

/** Packages named by every `apt-get install` in a RUN's shell text. */
function aptInstalled(run: string): string[] {
  const out: string[] = [];
  for (const m of run.matchAll(/apt-get\s+install\s+([^&;|]*)/g)) {
    for (const word of (m[1] ?? "").split(/\s+/)) {
      if (word !== "" && !word.startsWith("-")) out.push(word);
    }
  }
  return out;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const res = spawnSync(cmd, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  if (res.error) throw res.error;
  return res;
}

function which(cmd: string): string | undefined {
  const res = spawnSync("sh", ["-c", 'command -v -- "$1"', "sh", cmd], { encoding: "utf8" });
  const out = res.stdout.trim();
  return res.status === 0 && out !== "" ? out : undefined;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === "node_modules" || entry.name === ".git") continue;
      out.push(...(await listFiles(full)));
    } else if (entry.isFile()) {
      out.push(full);
    }
  }
  return out;
}

function requireShellcheck(): void {
  assert.ok(
    which("shellcheck"),
    "shellcheck is needed for these tests (apt-get install shellcheck)",
  );
}

/** Shell scripts: a *.sh name, or a #! line that runs sh, bash or dash. */
async function shellScripts(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const file of await listFiles(dir)) {
    if (file.endsWith(".sh")) {
      out.push(file);
      continue;
    }
    const head = (await readFile(file, "utf8")).slice(0, 200);
    if (/^#!\s*\S*\/(env\s+)?(sh|bash|dash)\b/.test(head)) out.push(file);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------

describe("the Dockerfile parser", () => {
  it("joins continuation lines, skips comments inside them, reads directives", () => {
    const text = [
      "# syntax=docker/dockerfile:1",
      "# a comment",
      "FROM debian:bookworm-slim AS base",
      "RUN apt-get update \\",
      "  # a comment inside the continuation",
      " && apt-get install -y curl",
      "",
      'CMD ["sleep", "infinity"]',
    ].join("\n");
    const ins = parseDockerfile(text);
    assert.deepEqual(
      ins.map((i) => [i.keyword, i.args, i.line]),
      [
        ["FROM", "debian:bookworm-slim AS base", 3],
        ["RUN", "apt-get update  && apt-get install -y curl", 4],
        ["CMD", '["sleep", "infinity"]', 8],
      ],
    );
    assert.deepEqual(execForm(ins[2]?.args ?? ""), ["sleep", "infinity"]);
    assert.equal(execForm("sleep infinity"), undefined);
  });

  it("honours the escape directive", () => {
    const ins = parseDockerfile("# escape=`\nFROM x:1\nRUN a `\n  b\n");
    assert.deepEqual(ins[1], { keyword: "RUN", args: "a   b", text: "a `\n  b", line: 3 });
  });

  it("rejects unknown instructions, dangling continuations, empty ones and heredocs, naming the line", () => {
    assert.throws(
      () => parseDockerfile("FROM x:1\nFROBNICATE y\n", "D"),
      /D:2: unknown instruction "FROBNICATE"/,
    );
    assert.throws(
      () => parseDockerfile("FROM x:1\nRUN a \\\n", "D"),
      /D:2: .*continuation at end of file/,
    );
    assert.throws(
      () => parseDockerfile("FROM x:1\nWORKDIR\n", "D"),
      /D:2: WORKDIR has no arguments/,
    );
    assert.throws(() => parseDockerfile("FROM x:1\nRUN <<EOF\necho\nEOF\n", "D"), /D:2: heredocs/);
    assert.throws(() => execForm('["a", 1]'), /JSON array of strings/);
  });

  it("checks a FROM that names a build argument at the argument's default", () => {
    const ins = parseDockerfile("ARG B=debian:bullseye-slim\nFROM ${B} AS build\nFROM $B\n");
    assert.deepEqual(
      stages(ins).map((st) => [st.ref, st.image, st.alias]),
      [
        ["${B}", "debian:bullseye-slim", "build"],
        ["$B", "debian:bullseye-slim", undefined],
      ],
    );
    assert.throws(
      () => stages(parseDockerfile("ARG B\nFROM ${B}\n")),
      /line 2: FROM uses \$B, which has no global ARG default/,
    );
  });

  it("tells pinned base images from floating ones", () => {
    assert.equal(unpinnedReason("python:2.7.18-slim-buster"), undefined);
    assert.equal(unpinnedReason("debian:bookworm-slim"), undefined);
    assert.equal(unpinnedReason(`debian@sha256:${"a".repeat(64)}`), undefined);
    assert.match(unpinnedReason("debian") ?? "", /no tag/);
    assert.match(unpinnedReason("debian:latest") ?? "", /latest/);
    assert.match(unpinnedReason("debian:stable-slim") ?? "", /names no version/);
    assert.match(unpinnedReason("registry:5000/debian") ?? "", /no tag/);
  });
});

describe("every image's Dockerfile", () => {
  for (const name of IMAGES) {
    describe(`images/${name}`, () => {
      it("parses, and every FROM is a pinned image or an earlier stage", async () => {
        const df = await loadDockerfile(name);
        assert.ok(df.stages.length >= 1, "no FROM");
        const aliases = new Set<string>();
        for (const stage of df.stages) {
          if (!aliases.has(stage.image)) {
            const why = unpinnedReason(stage.image);
            assert.equal(
              why,
              undefined,
              `line ${stage.from.line}: FROM ${stage.image} is not pinned: ${why}`,
            );
          }
          if (stage.alias) aliases.add(stage.alias);
        }
      });

      it("installs with apt-get hygienically: update in the same RUN, no recommends, cache and lists removed", async () => {
        const df = await loadDockerfile(name);
        const installs = all(df, "RUN").filter((r) => /apt-get\s+install/.test(r.args));
        assert.ok(installs.length > 0, "no apt-get install at all");
        for (const r of installs) {
          assert.match(
            r.args,
            /apt-get\s+update/,
            `line ${r.line}: apt-get install without apt-get update in the same RUN`,
          );
          for (const m of r.args.matchAll(/apt-get\s+install[^&;|]*/g)) {
            assert.match(m[0], /\s-y\b/, `line ${r.line}: apt-get install without -y`);
            assert.match(
              m[0],
              /--no-install-recommends/,
              `line ${r.line}: apt-get install without --no-install-recommends`,
            );
          }
          assert.match(
            r.args,
            /rm -rf \/var\/lib\/apt\/lists\/\*/,
            `line ${r.line}: apt lists not removed in the same RUN`,
          );
          // Official Debian images clean the package cache by themselves; other bases do not.
          assert.match(r.args, /apt-get clean/, `line ${r.line}: no apt-get clean in the same RUN`);
        }
      });

      it("copies only files that exist in its build context", async () => {
        const df = await loadDockerfile(name);
        for (const ins of [...all(df, "COPY"), ...all(df, "ADD")]) {
          const { flags, rest } = splitFlags(ins.args);
          if (flags.has("from")) continue;
          const words = execForm(rest) ?? rest.split(/\s+/);
          const sources = words.slice(0, -1);
          assert.ok(
            sources.length > 0,
            `line ${ins.line}: ${ins.keyword} needs a source and a destination`,
          );
          for (const src of sources) {
            assert.ok(
              !/^https?:/.test(src),
              `line ${ins.line}: remote ${ins.keyword} source ${src} is not pinned`,
            );
            assert.ok(
              existsSync(path.join(df.dir, src)),
              `line ${ins.line}: ${src} is not in images/${name}/`,
            );
          }
        }
      });

      it("bakes no host configuration into /etc/calico or /etc/bird", async () => {
        const df = await loadDockerfile(name);
        for (const ins of [...all(df, "COPY"), ...all(df, "ADD")]) {
          const { rest } = splitFlags(ins.args);
          const words = execForm(rest) ?? rest.split(/\s+/);
          const dest = words[words.length - 1] ?? "";
          assert.ok(!/^\/etc\/(calico|bird)\b/.test(dest), `line ${ins.line}: copies into ${dest}`);
        }
      });

      it("has RUN shell that passes shellcheck (as /bin/sh)", async () => {
        requireShellcheck();
        const df = await loadDockerfile(name);
        const dir = await mkdtemp(path.join(tmpdir(), `images-${name}-`));
        try {
          for (const r of all(df, "RUN")) {
            if (execForm(r.args)) continue;
            const file = path.join(dir, `run-line-${r.line}.sh`);
            await writeFile(file, `#!/bin/sh\n${r.text}\n`);
            const res = run("shellcheck", ["-s", "sh", file]);
            assert.equal(
              res.status,
              0,
              `images/${name}/Dockerfile line ${r.line}:\n${res.stdout}${res.stderr}`,
            );
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    });
  }
});

/** Pins every felix image source must have (images/felix/sources.lock, the shared mirror's README). */
const PINNED_SOURCES = [
  ["felix", "0.10.2", "https://github.com/projectcalico/felix.git", FELIX_TAG, FELIX_COMMIT],
  [
    "pyzmq",
    "19.0.2",
    "https://github.com/zeromq/pyzmq.git",
    "v19.0.2",
    "8fb0f0f6e8fb7b0a0cfaf8d32d22960f70d3d4fa",
  ],
  [
    "cython",
    "0.29.37",
    "https://github.com/cython/cython.git",
    "0.29.37",
    "1586ba7dc53549c30b8beeb16bef38942bff5569",
  ],
  [
    "python-iptables",
    "1.2.0",
    "https://github.com/ldx/python-iptables.git",
    "v1.2.0",
    "2703efb3063f4b62282722f85a1a7f584d9d64c1",
  ],
];

/** Lines of a file without blank lines and # comments, split on blanks. */
async function lockLines(file: string): Promise<string[][]> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(/\s+/));
}

/**
 * Packages a RUN installs: those named to `apt-get install`, and, where it installs "$@",
 * those of the `for p in ...; do` list that collects the missing ones.
 */
function packagesOf(run: string): string[] {
  const named = aptInstalled(run).filter((p) => p !== '"$@"');
  if (!/apt-get\s+install[^&;|]*"\$@"/.test(run)) return named;
  const list = /for p in ([^;]*);\s*do/.exec(run)?.[1] ?? "";
  return [...named, ...list.split(/\s+/).filter(Boolean)];
}

describe("images/felix", () => {
  it("pins each source (felix 0.10.2, pyzmq 19.0.2, Cython 0.29.37, python-iptables 1.2.0) to a full commit and a SHA-256", async () => {
    const lines = await lockLines(path.join(imagesDir, "felix", "sources.lock"));
    assert.deepEqual(
      lines.map((l) => l.slice(0, 5)),
      PINNED_SOURCES,
    );
    for (const l of lines) {
      assert.equal(l.length, 6, `sources.lock: ${l.join(" ")}`);
      assert.match(l[5] ?? "", /^[0-9a-f]{64}$/, `${l[0]}: the SHA-256 of its tarball`);
    }
  });

  it("takes its base and the origin of its sources as build arguments, upstream and Debian 11 by default", async () => {
    const df = await loadDockerfile("felix");
    assert.equal(df.stages.length, 2, "a build stage and a runtime stage");
    const globals = globalArgs(df.instructions);
    assert.equal(globals.get("BASE_IMAGE"), "debian:bullseye-slim");
    assert.equal(globals.get("BUILD_BASE_IMAGE"), "debian:bullseye-slim", "BASE_IMAGE's default");
    assert.deepEqual(
      df.stages.map((s) => s.ref),
      ["${BUILD_BASE_IMAGE}", "${BASE_IMAGE}"],
      "each stage FROM its base argument",
    );
    const build = df.stages[0]!;
    assert.equal(argDefault(build, "SOURCES"), "upstream");
    const fetch = all(build, "RUN").find((r) => r.args.includes("fetch_sources.sh"));
    assert.ok(fetch, "no RUN calls fetch_sources.sh");
    assert.match(
      fetch.args,
      /fetch_sources\.sh "\$SOURCES" \/usr\/local\/src\/calico\/sources\.lock\s+\/usr\/local\/src\/calico\/mirror \/src$/,
    );
    const copies = all(build, "COPY").map((c) => c.args);
    assert.ok(copies.includes("sources.lock fetch_sources.sh fetch_tag.sh /usr/local/src/calico/"));
    assert.ok(copies.includes("mirror/ /usr/local/src/calico/mirror/"), "the mirror folder");
    // Buster's archive and its apt tricks are gone with the buster base.
    assert.doesNotMatch(df.text, /buster|archive\.debian\.org/);
  });

  it("installs only the Debian packages its base lacks (a base holding them all needs no network)", async () => {
    const df = await loadDockerfile("felix");
    for (const stage of df.stages) {
      const installs = all(stage, "RUN").filter((r) => /apt-get\s+install/.test(r.args));
      assert.equal(installs.length, 1, `line ${stage.from.line}: one apt-get install per stage`);
      const r = installs[0]!;
      assert.match(
        r.args,
        /dpkg-query -W -f='\$\{db:Status-Status\}' "\$p" 2> \/dev\/null \| grep -qx installed\s+\|\| set -- "\$@" "\$p"/,
      );
      assert.match(r.args, /if \[ "\$#" -gt 0 \]; then\s+apt-get update/);
    }
    const build = packagesOf(all(df.stages[0]!, "RUN")[0]!.args);
    for (const p of ["python2.7", "python2-dev", "python-setuptools", "gcc", "libzmq3-dev"]) {
      assert.ok(build.includes(p), `the build stage does not install ${p}`);
    }
    for (const p of ["libxtables-dev", "libip4tc-dev", "git", "ca-certificates"]) {
      assert.ok(build.includes(p), `the build stage does not install ${p}`);
    }
  });

  it("builds the sources without pip: Cython, pyzmq against Debian's libzmq, python-iptables unzipped, Felix without its setup.py", async () => {
    const df = await loadDockerfile("felix");
    const build = df.stages[0]!;
    assert.doesNotMatch(df.text, /pip install|requirements\.txt/);
    // Whitespace as one space: continuation lines leave runs of blanks.
    const runs = all(build, "RUN").map((r) => r.args.replace(/\s+/g, " "));
    const compile = runs.find((r) => r.includes("cython-0.29.37"));
    assert.ok(compile, "Cython is not built");
    assert.match(
      compile,
      /cd \/src\/cython-0\.29\.37 && python2\.7 setup\.py -q install --no-cython-compile/,
    );
    assert.match(
      compile,
      /cd \/src\/pyzmq-19\.0\.2 && python2\.7 setup\.py -q build_ext --zmq=\/usr install --root=\/install --prefix=\/usr\/local/,
    );
    // A zipped egg cannot load python-iptables' libxtwrapper.
    assert.match(
      compile,
      /cd \/src\/python-iptables-1\.2\.0 && python2\.7 setup\.py -q install --root=\/install --prefix=\/usr\/local\s+--single-version-externally-managed --record=\S+$/,
    );
    const felix = runs.find((r) => r.includes("felix-0.10.2/calico"));
    assert.ok(felix, "the calico package is not installed");
    // Its setup.py hands setuptools 44 a set of requirements, which it refuses.
    assert.doesNotMatch(felix, /felix-0\.10\.2[^&]*setup\.py/);
    assert.match(felix, /cp -R \/src\/felix-0\.10\.2\/calico "\$site\/calico"/);
    for (const [script, module] of [
      ["calico-felix", "calico.felix.felix"],
      ["calico-acl-manager", "calico.acl_manager.acl_manager"],
    ]) {
      assert.match(
        felix,
        new RegExp(
          `printf '#!/usr/bin/python2\\.7\\\\nimport sys\\\\nfrom %s import main\\\\nsys\\.exit\\(main\\(\\)\\)\\\\n'\\s+${module} > /install/usr/local/bin/${script}`,
        ),
        `${script} is not written as ${module}:main`,
      );
    }
    assert.match(
      felix,
      /cp \/src\/felix\.commit \/install\/usr\/local\/share\/calico\/felix\.commit/,
    );
  });

  it("carries the tools Felix runs, both entry points, and starts Felix by default", async () => {
    const df = await loadDockerfile("felix");
    const runtime = df.stages[df.stages.length - 1];
    assert.ok(runtime);
    const pkgs = all(runtime, "RUN").flatMap((r) => packagesOf(r.args));
    for (const p of ["python2.7", "libzmq5", "ipset", "iptables", "net-tools", "iproute2"]) {
      assert.ok(pkgs.includes(p), `runtime stage does not install ${p}`);
    }
    for (const p of ["gcc", "python2-dev", "libzmq3-dev", "git"]) {
      assert.ok(!pkgs.includes(p), `the runtime stage carries the build's ${p}`);
    }
    const copy = all(runtime, "COPY").find(
      (c) => c.args === "--from=build /install/usr/local /usr/local",
    );
    assert.ok(copy, "the runtime stage does not copy the built install tree");
    const legacy = all(runtime, "RUN").find((r) => r.args.includes("update-alternatives"));
    assert.ok(legacy, "iptables is not switched");
    assert.match(legacy.args, /--set iptables \/usr\/sbin\/iptables-legacy/);
    assert.match(legacy.args, /--set ip6tables \/usr\/sbin\/ip6tables-legacy/);
    assert.equal(
      all(runtime, "ENV").find((e) => e.args.startsWith("XTABLES_LIBDIR="))?.args,
      "XTABLES_LIBDIR=/usr/lib/xtables",
    );
    const check = all(runtime, "RUN").find((r) => r.args.includes("command -v"));
    assert.ok(check, "no build-time check of the commands on PATH");
    const checked = /for c in ([^;]*);/.exec(check.args)?.[1]?.split(/\s+/) ?? [];
    for (const c of ["calico-felix", "calico-acl-manager", "ip", "arp", "ipset", "iptables"]) {
      assert.ok(checked.includes(c), `${c} is not checked on PATH at build time`);
    }
    assert.match(
      check.args,
      /python2\.7 -c 'import pkgutil, zmq, iptc, calico\.acl_manager\.acl_manager; assert pkgutil\.find_loader\("calico\.felix\.felix"\);/,
    );
    assert.deepEqual(execForm(last(runtime, "CMD").args), [
      "calico-felix",
      "--config-file=/etc/calico/felix.cfg",
    ]);
    assert.equal(
      all(df, "ENTRYPOINT").length,
      0,
      "an ENTRYPOINT would break `calico:felix calico-acl-manager ...`",
    );
  });

  it("has a health check that asks the process itself (calico-health, tested in health.test.ts)", async () => {
    const df = await loadDockerfile("felix");
    const runtime = df.stages[df.stages.length - 1]!;
    assert.ok(
      all(runtime, "COPY").some((c) => c.args === "calico_health.py /usr/local/bin/calico-health"),
      "calico-health is installed",
    );
    assert.ok(
      statSync(path.join(imagesDir, "felix", "calico_health.py")).mode & 0o100,
      "executable",
    );
    // Bullseye has no `python` command: the shebang names the image's Python.
    const shebang = (
      await readFile(path.join(imagesDir, "felix", "calico_health.py"), "utf8")
    ).split("\n")[0];
    assert.equal(shebang, "#!/usr/bin/env python2.7");
    const hc = last(runtime, "HEALTHCHECK").args;
    const cmd = /^(.*?)\s*CMD\s+(\[.*\])$/s.exec(hc);
    assert.ok(cmd, hc);
    assert.deepEqual(execForm(cmd[2]!), ["calico-health"]);
    const opts = Object.fromEntries(
      cmd[1]!
        .split(/\s+/)
        .map((o) => /^--([a-z-]+)=(\S+)$/.exec(o)!.slice(1, 3) as [string, string]),
    );
    // Its own timeouts (10 s for Felix, 45 s for the ACL Manager) fit inside Docker's.
    assert.deepEqual(opts, {
      interval: "30s",
      timeout: "50s",
      "start-period": "60s",
      retries: "3",
    });
  });
});

describe("images/bird", () => {
  it("installs Debian's BIRD 1.x and runs it through run_bird with a control socket directory", async () => {
    const df = await loadDockerfile("bird");
    const pkgs = all(df, "RUN").flatMap((r) => aptInstalled(r.args));
    assert.ok(pkgs.includes("bird"), "bird is not installed");
    assert.ok(!pkgs.includes("bird2"), "bird2 is BIRD 2.x");
    assert.ok(
      all(df, "RUN").some((r) => /mkdir -p [^&]*\/var\/run\/bird\b/.test(r.args)),
      "/var/run/bird is not created",
    );
    assert.ok(
      all(df, "COPY").some((c) => c.args === "run_bird /usr/local/bin/run_bird"),
      "run_bird is not copied",
    );
    assert.equal(
      all(df, "ENV").find((e) => e.args.startsWith("BIRD_CTL="))?.args,
      "BIRD_CTL=/var/run/bird/bird.ctl",
    );
    assert.deepEqual(execForm(last(df, "CMD").args), ["run_bird", "/etc/bird/bird.conf"]);
    const mode = statSync(runBird).mode;
    assert.ok((mode & 0o111) !== 0, "run_bird is not executable in the repository");
  });
});

describe("images/util", () => {
  it("carries ping, wget, telnet, traceroute, curl, iperf, tcpdump and ip, and stays alive", async () => {
    const df = await loadDockerfile("util");
    const pkgs = all(df, "RUN").flatMap((r) => aptInstalled(r.args));
    const needed: Record<string, string> = {
      ping: "iputils-ping",
      wget: "wget",
      telnet: "telnet",
      traceroute: "traceroute",
      curl: "curl",
      iperf3: "iperf3",
      iperf: "iperf",
      tcpdump: "tcpdump",
      ip: "iproute2",
    };
    for (const [tool, pkg] of Object.entries(needed)) {
      assert.ok(pkgs.includes(pkg), `${tool}: package ${pkg} is not installed`);
    }
    assert.deepEqual(execForm(last(df, "CMD").args), ["sleep", "infinity"]);
    assert.equal(all(df, "ENTRYPOINT").length, 0);
  });
});

describe("shell scripts under images/", () => {
  it("all pass shellcheck", async () => {
    requireShellcheck();
    const scripts = await shellScripts(imagesDir);
    assert.ok(scripts.includes(runBird), "run_bird was not found as a shell script");
    assert.ok(scripts.includes(fetchTag), "fetch_tag.sh was not found as a shell script");
    assert.ok(scripts.includes(fetchSources), "fetch_sources.sh was not found as a shell script");
    for (const file of scripts) {
      const res = run("shellcheck", [file]);
      assert.equal(res.status, 0, `${path.relative(root, file)}:\n${res.stdout}${res.stderr}`);
    }
  });
});

describe("fetch_tag.sh against a real git repository", () => {
  const git = (cwd: string, ...args: string[]): string => {
    const res = spawnSync(
      "git",
      [
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "init.defaultBranch=main",
        ...args,
      ],
      { cwd, encoding: "utf8" },
    );
    assert.equal(res.status, 0, `git ${args.join(" ")}: ${res.stderr}`);
    return res.stdout.trim();
  };

  it("checks out the tag when it names the pinned commit, and refuses a moved tag or bad input", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fetch-tag-"));
    try {
      const upstream = path.join(dir, "upstream");
      await mkdir(upstream);
      git(upstream, "init", "-q");
      await writeFile(path.join(upstream, "setup.py"), "# first\n");
      git(upstream, "add", "setup.py");
      git(upstream, "commit", "-q", "-m", "first");
      const first = git(upstream, "rev-parse", "HEAD");
      await writeFile(path.join(upstream, "setup.py"), "# 0.10.2\n");
      git(upstream, "commit", "-q", "-am", "release");
      git(upstream, "tag", "-a", FELIX_TAG, "-m", "release");
      const tagged = git(upstream, "rev-parse", "HEAD");
      const url = `file://${upstream}`;

      const ok = run(fetchTag, [url, FELIX_TAG, tagged, path.join(dir, "ok")]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), tagged);
      assert.equal(await readFile(path.join(dir, "ok", "setup.py"), "utf8"), "# 0.10.2\n");
      assert.equal(git(path.join(dir, "ok"), "rev-parse", "HEAD"), tagged);

      // An abbreviation is not a pin: only the full hash is taken.
      const short = run(fetchTag, [url, FELIX_TAG, tagged.slice(0, 12), path.join(dir, "short")]);
      assert.notEqual(short.status, 0);
      assert.match(short.stderr, /COMMIT must be the full 40 hex digits, got 12/);

      // The tag now names another commit: the build must stop, naming both.
      git(upstream, "tag", "-f", "-a", FELIX_TAG, first, "-m", "moved");
      const moved = run(fetchTag, [url, FELIX_TAG, tagged, path.join(dir, "moved")]);
      assert.notEqual(moved.status, 0);
      assert.match(moved.stderr, new RegExp(`is commit ${first}, expected ${tagged}`));

      const missing = run(fetchTag, [url, "0.99.0", tagged, path.join(dir, "missing")]);
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr, /cannot fetch tag '0\.99\.0'/);

      const cases: [string[], RegExp][] = [
        [
          [upstream, FELIX_TAG, tagged, path.join(dir, "a")],
          /REPO must be an https:\/\/ or file:\/\/ URL, got '\//,
        ],
        [[url, "0.10.2;rm", tagged, path.join(dir, "b")], /TAG must be .*got '0\.10\.2;rm'/],
        [
          [url, FELIX_TAG, "61F8E598A53D", path.join(dir, "c")],
          /COMMIT must be lower-case hex digits, got '61F8E598A53D'/,
        ],
        [
          [url, FELIX_TAG, "61f8e59", path.join(dir, "d")],
          /COMMIT must be the full 40 hex digits, got 7: '61f8e59'/,
        ],
        [[url, FELIX_TAG, tagged, path.join(dir, "ok")], /DEST already exists/],
        [[url, FELIX_TAG, tagged], /usage: .* \(got 3 arguments\)/],
      ];
      for (const [args, message] of cases) {
        const res = run(fetchTag, args);
        assert.notEqual(res.status, 0, `accepted ${JSON.stringify(args)}`);
        assert.match(res.stderr, message);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("fetch_sources.sh against real tarballs and a real git repository", () => {
  const git = (cwd: string, ...args: string[]): string => {
    const res = spawnSync(
      "git",
      ["-c", "user.name=test", "-c", "user.email=test@example.invalid", ...args],
      { cwd, encoding: "utf8" },
    );
    assert.equal(res.status, 0, `git ${args.join(" ")}: ${res.stderr}`);
    return res.stdout.trim();
  };
  const sha256 = (file: string): string => run("sha256sum", [file]).stdout.split(" ")[0] ?? "";

  it("unpacks a mirror's tarballs with the pinned hashes, fetches pinned tags upstream, and names a file whose hash differs", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fetch-sources-"));
    try {
      const repo = path.join(dir, "repo");
      await mkdir(repo);
      git(repo, "init", "-q");
      await writeFile(path.join(repo, "setup.py"), "# demo 1.0\n");
      git(repo, "add", "setup.py");
      git(repo, "commit", "-q", "-m", "release");
      git(repo, "tag", "-a", "v1.0", "-m", "release");
      const commit = git(repo, "rev-parse", "HEAD");
      const mirror = path.join(dir, "mirror");
      await mkdir(mirror);
      const tarball = path.join(mirror, "demo-1.0.tar.gz");
      git(repo, "archive", "--format=tar.gz", "--prefix=demo-1.0/", "-o", tarball, commit);
      const lock = path.join(dir, "sources.lock");
      const pin = (hash: string) =>
        writeFile(lock, `# a comment\n\ndemo 1.0 file://${repo} v1.0 ${commit} ${hash}\n`);
      await pin(sha256(tarball));

      const fromMirror = run(fetchSources, ["mirror", lock, mirror, path.join(dir, "m")]);
      assert.equal(fromMirror.status, 0, fromMirror.stderr);
      assert.match(fromMirror.stdout, new RegExp(`demo 1\\.0 from mirror \\(commit ${commit}\\)`));
      assert.equal(
        await readFile(path.join(dir, "m", "demo-1.0", "setup.py"), "utf8"),
        "# demo 1.0\n",
      );
      assert.equal(await readFile(path.join(dir, "m", "demo.commit"), "utf8"), `${commit}\n`);

      const fromUpstream = run(fetchSources, ["upstream", lock, mirror, path.join(dir, "u")]);
      assert.equal(fromUpstream.status, 0, fromUpstream.stderr);
      assert.equal(
        await readFile(path.join(dir, "u", "demo-1.0", "setup.py"), "utf8"),
        "# demo 1.0\n",
      );
      assert.ok(!existsSync(path.join(dir, "u", "demo-1.0", ".git")), "the .git folder is left");

      const wrong = "0".repeat(64);
      await pin(wrong);
      const bad = run(fetchSources, ["mirror", lock, mirror, path.join(dir, "bad")]);
      assert.notEqual(bad.status, 0);
      assert.match(
        bad.stderr,
        new RegExp(`demo: ${tarball} has SHA-256 ${sha256(tarball)}, expected ${wrong}`),
      );
      await rm(tarball);
      const missing = run(fetchSources, ["mirror", lock, mirror, path.join(dir, "gone")]);
      assert.match(missing.stderr, /demo: .*demo-1\.0\.tar\.gz is missing from the source mirror/);
      const mode = run(fetchSources, ["pip", lock, mirror, path.join(dir, "x")]);
      assert.match(mode.stderr, /MODE must be upstream or mirror, got 'pip'/);
      await writeFile(lock, `demo 1.0 file://${repo} v1.0 ${commit}\n`);
      const short = run(fetchSources, ["mirror", lock, mirror, path.join(dir, "y")]);
      assert.match(short.stderr, /a line must be 'name version repository tag commit sha256'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------
// run_bird with the real BIRD.

const birdBin = process.env.BIRD_BIN ?? which("bird") ?? "/usr/sbin/bird";
const birdc = which("birdc") ?? "/usr/sbin/birdc";

const GOOD_CONF = `router id 192.0.2.1;
protocol kernel { persist; scan time 20; export all; }
protocol device { scan time 10; }
protocol direct { interface "*"; }
`;

describe("run_bird with the real BIRD", () => {
  let dir = "";
  const setup = async (): Promise<string> => {
    assert.ok(
      existsSync(birdBin),
      `BIRD is needed for these tests (apt-get install bird); not found at ${birdBin}`,
    );
    dir = await mkdtemp(path.join(tmpdir(), "run-bird-"));
    return dir;
  };
  const cleanup = async (): Promise<void> => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  const runBirdSync = (args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> =>
    run(runBird, args, {
      BIRD_BIN: birdBin,
      BIRD_CONF_DIR: dir,
      BIRD_CTL: path.join(dir, "run", "bird.ctl"),
      ...env,
    });

  it("--check accepts a good config by path or by bare name in BIRD_CONF_DIR", async () => {
    await setup();
    try {
      const conf = path.join(dir, "bird.conf");
      await writeFile(conf, GOOD_CONF);
      const byPath = runBirdSync(["--check", conf]);
      assert.equal(byPath.status, 0, byPath.stderr);
      assert.equal(byPath.stdout.trim(), `run_bird: configuration OK: ${conf}`);
      await writeFile(path.join(dir, "bird1.conf"), GOOD_CONF);
      const byName = runBirdSync(["--check", "bird1.conf"]);
      assert.equal(byName.status, 0, byName.stderr);
      assert.match(byName.stdout, new RegExp(`configuration OK: ${path.join(dir, "bird1.conf")}`));
      const byDefault = runBirdSync(["--check"]);
      assert.equal(byDefault.status, 0, byDefault.stderr);
      assert.match(byDefault.stdout, new RegExp(`configuration OK: ${conf}`));
      // The parse check needs no control socket: nothing was created.
      assert.ok(!existsSync(path.join(dir, "run")));
    } finally {
      await cleanup();
    }
  });

  it("refuses a bad config with BIRD's own message, and does not start BIRD", async () => {
    await setup();
    try {
      const conf = path.join(dir, "bad.conf");
      await writeFile(
        conf,
        "router id 192.0.2.1;\nprotocol bgp peer1 { neighbor 192.0.2.2 as; }\n",
      );
      for (const args of [["--check", conf], [conf]]) {
        const res = runBirdSync(args);
        assert.equal(res.status, 1, `exit status for ${args.join(" ")}`);
        assert.match(res.stderr, new RegExp(`bird: ${conf}:2:\\d+ syntax error`));
        assert.match(res.stderr, new RegExp(`run_bird: configuration rejected by BIRD: '${conf}'`));
        assert.doesNotMatch(res.stderr, /exec /);
      }
    } finally {
      await cleanup();
    }
  });

  it("checks the log file path of the config: a missing directory fails, an existing one passes", async () => {
    await setup();
    try {
      const conf = path.join(dir, "log.conf");
      const logDir = path.join(dir, "log");
      await writeFile(conf, `log "${logDir}/bird.log" all;\n${GOOD_CONF}`);
      const missing = runBirdSync(["--check", conf]);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, new RegExp(`Unable to open log file .${logDir}/bird.log`));
      await mkdir(logDir);
      const present = runBirdSync(["--check", conf]);
      assert.equal(present.status, 0, present.stderr);
    } finally {
      await cleanup();
    }
  });

  it("names the bad input: missing config, directory, options, BIRD_BIN, BIRD_CTL, BIRD_USER", async () => {
    await setup();
    try {
      const conf = path.join(dir, "bird.conf");
      await writeFile(conf, GOOD_CONF);
      await mkdir(path.join(dir, "adir"));
      const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
        [["--check", path.join(dir, "nope.conf")], {}, 1, /CONFIG not found: '.*\/nope\.conf'/],
        [["--check", "nope.conf"], {}, 1, new RegExp(`CONFIG not found: '${dir}/nope\\.conf'`)],
        [["--check", path.join(dir, "adir")], {}, 1, /CONFIG is not a regular file: '.*\/adir'/],
        [["--bogus"], {}, 2, /unknown option: '--bogus'/],
        [["--check", conf, conf], {}, 2, /only one CONFIG may be given/],
        [
          ["--check", conf],
          { BIRD_BIN: path.join(dir, "no-bird") },
          1,
          /BIRD_BIN is not an executable file: '.*no-bird'/,
        ],
        [
          ["--check", conf],
          { BIRD_BIN: "no-such-bird-binary" },
          1,
          /BIRD_BIN is not an executable file: 'no-such-bird-binary'/,
        ],
        [
          ["--check", conf],
          { BIRD_CTL: "relative/bird.ctl" },
          1,
          /BIRD_CTL must be an absolute path, got 'relative\/bird\.ctl'/,
        ],
        [
          ["--check", conf],
          { BIRD_USER: "bird; rm -rf /" },
          1,
          /BIRD_USER is not a valid user name: 'bird; rm -rf \/'/,
        ],
        [
          ["--check", conf],
          { BIRD_USER: "no-such-user-xyz" },
          1,
          /BIRD_USER: no such user: 'no-such-user-xyz'/,
        ],
      ];
      for (const [args, env, status, message] of cases) {
        const res = runBirdSync(args, env);
        assert.equal(res.status, status, `${args.join(" ")} ${JSON.stringify(env)}: ${res.stderr}`);
        assert.match(res.stderr, message);
      }
      const help = runBirdSync(["--help"]);
      assert.equal(help.status, 0);
      assert.match(help.stdout, /^usage: run_bird \[--check\] \[CONFIG\]/);
    } finally {
      await cleanup();
    }
  });

  const canUnshare = process.getuid?.() === 0 && which("unshare") !== undefined;
  for (const variant of [
    {
      title: "without a log statement: -d, BIRD's default log on stderr",
      conf: GOOD_CONF,
      flag: "-d",
      started: /^bird: Started$/m,
    },
    {
      title: "with `log stderr all;`: -f, logging as configured",
      conf: `log stderr all;\n${GOOD_CONF}`,
      flag: "-f",
      started: /<INFO> Started$/m,
    },
  ]) {
    it(
      `really starts BIRD in the foreground in its own network namespace ${variant.title}`,
      { skip: !canUnshare && "needs root and unshare for a network namespace" },
      async () => {
        await setup();
        const conf = path.join(dir, "bird.conf");
        const ctl = path.join(dir, "run", "bird.ctl");
        await writeFile(conf, variant.conf);
        // unshare execs run_bird, which execs BIRD: the child is BIRD itself, alone
        // in a new network namespace that disappears with it.
        const child = spawn("unshare", ["--net", "--", runBird, conf], {
          env: { ...process.env, BIRD_BIN: birdBin, BIRD_CTL: ctl },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        const exited = new Promise<number | null>((resolve) =>
          child.on("exit", (code) => resolve(code)),
        );
        try {
          const deadline = Date.now() + 10_000;
          while (!variant.started.test(stderr) || !existsSync(ctl)) {
            assert.ok(Date.now() < deadline, `BIRD did not start within 10 s; stderr:\n${stderr}`);
            assert.equal(child.exitCode, null, `BIRD exited early:\n${stderr}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.match(
            stderr,
            new RegExp(`run_bird: exec ${birdBin} ${variant.flag} -c ${conf} -s ${ctl}$`, "m"),
          );
          const status = run(birdc, ["-s", ctl, "show", "status"]);
          assert.equal(status.status, 0, status.stdout + status.stderr);
          assert.match(status.stdout, /Router ID is 192\.0\.2\.1/);
          assert.match(status.stdout, /Daemon is up and running/);
          assert.ok(child.kill("SIGTERM"));
          const code = await Promise.race([
            exited,
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error("BIRD ignored SIGTERM")), 10_000),
            ),
          ]);
          assert.equal(code, 0, stderr);
          assert.match(stderr, /Shutdown completed/);
          assert.ok(!existsSync(ctl), "the control socket was left behind");
        } finally {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGKILL");
            await exited;
          }
          await cleanup();
        }
      },
    );
  }
});
