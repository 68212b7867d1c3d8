/**
 * The readiness gate a host passes before anything else happens on it: SSH answers, `docker
 * info` works for the SSH user, and (for a non-root user) sudo works without a password.
 * Pure.
 */
import type { HostModel } from "../model.js";
import { shQuote } from "./text.js";

/** How long the readiness gate waits for Docker, in 5 s steps (10 minutes). */
const READY_ATTEMPTS = 120;

/** The readiness gate: SSH answers, `docker info` works for the user, and root is reachable. */
export function readinessScript(host: HostModel): string {
  const who = `${host.sshUser}@${host.name}`;
  const rootCheck =
    host.sshUser === "root"
      ? ""
      : [
          "if ! sudo -n true 2>/dev/null; then",
          `  echo ${shQuote(`calico-docker: ${who} cannot run sudo without a password; host preparation needs root`)} >&2`,
          "  exit 1",
          "fi",
        ].join("\n");
  return [
    "set -u",
    "i=0",
    "until docker info >/dev/null 2>&1; do",
    "  i=$((i + 1))",
    `  if [ "$i" -ge ${READY_ATTEMPTS} ]; then`,
    `    echo ${shQuote(`calico-docker: ${who}: docker is not usable after ${(READY_ATTEMPTS * 5) / 60} minutes (daemon not running, or the user not in the docker group?); docker info says:`)} >&2`,
    "    docker info >&2 || true",
    "    exit 1",
    "  fi",
    "  sleep 5",
    "done",
    rootCheck,
    `echo "ready: $(hostname) docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)"`,
  ]
    .filter((line) => line !== "")
    .join("\n");
}
