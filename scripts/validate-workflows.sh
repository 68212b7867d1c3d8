#!/usr/bin/env bash
# Validates GitHub Actions workflow and action files against their published
# JSON schemas with action-validator (the @action-validator/cli devDependency;
# works offline).
#
# Usage: scripts/validate-workflows.sh [FILE|DIR ...]
#   With no argument: every workflow in .github/workflows and every local
#   action in .github/actions. A DIR is searched for *.yml and *.yaml.
# Exits 0 when every file is valid, 1 when any file is invalid or no file was
# found, 2 when action-validator cannot be run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$#" -eq 0 ]; then
  set -- "$root/.github/workflows"
  if [ -d "$root/.github/actions" ]; then
    set -- "$@" "$root/.github/actions"
  fi
fi

files=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r -d '' f; do
      files+=("$f")
    done < <(find "$arg" -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 | sort -z)
  elif [ -f "$arg" ]; then
    files+=("$arg")
  else
    echo "validate-workflows: no such file or directory: $arg" >&2
    exit 1
  fi
done

if [ "${#files[@]}" -eq 0 ]; then
  echo "validate-workflows: no workflow files found in: $*" >&2
  exit 1
fi

# Use this repository's install (npx --no never downloads), so that a missing
# install is reported as such rather than as an invalid file.
if [ ! -x "$root/node_modules/.bin/action-validator" ]; then
  echo "validate-workflows: action-validator is not installed (npm ci installs @action-validator/cli)" >&2
  exit 2
fi

failed=0
for f in "${files[@]}"; do
  # action-validator reads one file; it treats action.yml/action.yaml as an
  # action and anything else as a workflow.
  abs=$(realpath -- "$f")
  if out=$(cd "$root" && npx --no -- action-validator "$abs" 2>&1); then
    echo "ok      $f"
  else
    echo "INVALID $f" >&2
    printf '%s\n' "$out" >&2
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "validate-workflows: some files are invalid" >&2
  exit 1
fi
echo "validate-workflows: ${#files[@]} file(s) valid"
