#!/usr/bin/env bash
# npm test: every suite, in two lanes side by side (docs/testing.md).
#   lab lane:  the suites that bring a lab up with the real Felix (the conformance suite,
#              test/lab-*.test.ts, test/status-lab.test.ts; Node's runner takes them in path
#              order; those without the real Felix first), one file at a time: a Docker
#              endpoint's namespace link is a machine-wide name.
#   unit lane: every other suite, one file at a time. None of them makes anything a lab names
#              (a lab's names carry its cl<hash> prefix or its state folder), and each lab
#              test counts as its leftovers only what its own labs name.
# Half of a lab test's time is waiting (probe timeouts, Felix's health checks); the unit lane
# fills it. Each line is prefixed with its lane; each lane ends with its own totals.
#   bash scripts/test.sh [FILE...]   given files run in one lane, in the order given.
#   bash scripts/test.sh --list      each lane's files, one per line ("lab FILE", "unit FILE").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

lane() {
  local name="$1"
  shift
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@" 2>&1 |
    sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}

if [ "$#" -gt 0 ] && [ "$1" != --list ]; then
  lane test "$@"
  exit $?
fi

mapfile -t all < <(find test plugin/test -name '*.test.ts' | sort)
labs=()
units=()
for f in "${all[@]}"; do
  case "$f" in
  test/lab-*.test.ts | test/status-lab.test.ts) labs+=("$f") ;;
  *) units+=("$f") ;;
  esac
done
labs+=(test/conformance/*.conformance.ts)
# The lab suites that run the real Felix (they say "real") come second: on a machine whose felix
# image is still being built (.ci/run builds it in the background), the others run meanwhile.
standin=()
felix=()
for f in "${labs[@]}"; do
  if grep -q '"real"' "$f"; then felix+=("$f"); else standin+=("$f"); fi
done
if [ "${1:-}" = --list ]; then
  printf 'lab %s\n' "${standin[@]}" "${felix[@]}"
  printf 'unit %s\n' "${units[@]}"
  exit 0
fi

lab_lane() {
  local rc=0
  lane lab "${standin[@]}" || rc=1
  lane lab "${felix[@]}" || rc=1
  return "$rc"
}

t0=$SECONDS
lab_lane &
lab_pid=$!
lane unit "${units[@]}"
unit_rc=$?
echo "[unit] lane done in $((SECONDS - t0)) s (exit $unit_rc)"
wait "$lab_pid"
lab_rc=$?
echo "[lab] lane done in $((SECONDS - t0)) s (exit $lab_rc)"
[ "$unit_rc" -eq 0 ] && [ "$lab_rc" -eq 0 ]
