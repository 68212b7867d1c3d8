/**
 * Stack secrets: which config keys name which secret (an endpoint's `secretEnv`, a
 * registry's `passwordSecret`), and that every secret named is set, and set as a secret.
 * Only whether a secret is stored as one reaches the config, never its value. Pure.
 */
import type { Report } from "./issues.js";
import { RESERVED_SECRET_NAMES, type Parsed } from "./schema.js";

/** Secret key -> the config paths that name it, in the order they were met. */
export class SecretUses {
  private readonly uses = new Map<string, (string | number)[][]>();

  add(path: (string | number)[], key: string): void {
    this.uses.set(key, [...(this.uses.get(key) ?? []), path]);
  }

  entries(): IterableIterator<[string, (string | number)[][]]> {
    return this.uses.entries();
  }

  /** Every secret key named, sorted. */
  keys(): string[] {
    return [...this.uses.keys()].sort();
  }
}

/** Registries: a password secret of its own each, one entry per address. */
export function checkRegistries(c: Parsed, bad: Report, secrets: SecretUses): void {
  c.registries.forEach((r, i) => {
    if (RESERVED_SECRET_NAMES.has(r.passwordSecret)) {
      bad(
        ["registries", i, "passwordSecret"],
        "names a calico-docker setting; choose another name",
      );
    }
    secrets.add(["registries", i, "passwordSecret"], r.passwordSecret);
    if (c.registries.findIndex((o) => o.address === r.address) < i) {
      bad(["registries", i, "address"], "duplicates another registry's address");
    }
  });
}

/** Every stack secret named is set, and set as a secret. */
export function checkStackSecrets(c: Parsed, bad: Report, secrets: SecretUses): void {
  for (const [key, uses] of secrets.entries()) {
    // Own keys only: a secret called `constructor` or `toString` is not Object's method.
    const stored = Object.hasOwn(c.stackSecrets, key) ? c.stackSecrets[key] : undefined;
    if (stored === undefined) {
      for (const path of uses) {
        bad(
          path,
          `names the stack secret ${key}, which is not set (pulumi config set --secret ${key} <value>)`,
        );
      }
    } else if (!stored.secret) {
      bad(
        [key],
        `is stored in plain text; it holds a secret (pulumi config set --secret ${key} <value>)`,
        "(value not shown)",
      );
    }
  }
}
