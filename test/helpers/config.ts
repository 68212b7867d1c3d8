/**
 * Asking `loadConfig` what it refuses, for the config tests: the issues it reports, and one
 * assertion that an issue names the key path, says why, and shows the bad value (in the
 * issue and in the thrown text the operator reads).
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig, type ConfigIssue } from "../../components/config.js";

/** A small valid `existing` stack (two own hosts, one endpoint); tests break one thing. */
export function existingStack(): Record<string, unknown> {
  return {
    platform: "existing",
    sshPrivateKey: { secret: true },
    ssh: { user: "ops" },
    hosts: [
      { name: "alpha", address: "10.0.0.11" },
      { name: "beta", address: "10.0.0.12" },
    ],
    endpoints: [{ host: "alpha", ip: "192.168.7.1", group: "g" }],
  };
}

/** The issues `loadConfig` reports for `raw`, or none when it accepts it. */
export function configIssues(raw: unknown): ConfigIssue[] {
  try {
    loadConfig(raw);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
}

/** The issues `loadConfig` reports for `raw`; fails the test if it does not throw. */
export function issuesOf(raw: unknown): ConfigIssue[] {
  try {
    loadConfig(raw);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail("expected the config to be rejected");
}

/** Asserts one issue at `path` whose message matches and that shows the bad value. */
export function assertRejects(raw: unknown, path: string, message: RegExp, value: unknown) {
  const issues = issuesOf(raw);
  const hit = issues.find((i) => i.path === path);
  assert.ok(hit, `no issue at ${path}; got ${JSON.stringify(issues)}`);
  assert.match(hit.message, message);
  assert.deepEqual(hit.value, value);
  // The thrown message names the path and the value too, for the operator.
  try {
    loadConfig(raw);
  } catch (error) {
    const text = (error as Error).message;
    assert.ok(text.includes(`${path}: `), text);
    const shown = value === undefined ? "got nothing" : JSON.stringify(value);
    assert.ok(text.includes(shown), text);
  }
}
