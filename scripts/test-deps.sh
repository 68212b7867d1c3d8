#!/usr/bin/env bash
# Installs, with apt, the Debian tools that the tests use and that are missing, so that
# `npm test` (its pretest step) and `.ci/run` run every suite with nothing skipped.
# One list, used by both. Each entry is "command-to-look-for:debian-package".
# Not root, or no apt-get: it names what is missing and leaves the rest to the tests.
set -euo pipefail

TOOLS=(
  bird:bird               # BIRD 1.x: parse checks, real sessions in the lab
  ip:iproute2             # namespaces, veths, routes
  iptables:iptables       # SNAT and chains in test namespaces
  ipset:ipset
  shellcheck:shellcheck   # every rendered script
  ping:iputils-ping
  fping:fping             # the lab's ping matrix
  nsenter:util-linux
  setpriv:util-linux      # the lab's seeding copy dies with its `up`
  pgrep:procps
  git:git                 # the felix fetch script's test
  dockerd:docker.io       # real Docker endpoints in the lab and the host agent's tests
  busybox:busybox-static  # the lab's util image, made without a registry
  sshd:openssh-server     # the lab's hosts answer SSH for `npm run status -- --lab`
  ssh:openssh-client
  python3:python3         # the felix image's health check; check's batch prober
  mmdebstrap:mmdebstrap   # the lab's Python 2.7 bullseye bases; the boot test's root
)

missing=()
for entry in "${TOOLS[@]}"; do
  cmd=${entry%%:*}
  pkg=${entry#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$cmd" && ! -x "/sbin/$cmd" && ! -x "/bin/$cmd" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "[test-deps] all test tools present"
  exit 0
fi

# Unique, in order.
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[test-deps] missing (install them, or run as root with apt): ${packages[*]}" >&2
  echo "[test-deps] the suites that need them will fail or skip" >&2
  exit 0
fi

echo "[test-deps] installing with apt-get: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "[test-deps] installed: ${packages[*]}"
