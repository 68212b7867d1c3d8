#!/bin/sh
# fetch_sources.sh MODE LOCK MIRROR DEST
#
# Puts every source pinned in the file LOCK (lines "name version repository tag commit
# sha256"; blank lines and # comments skipped) into DEST/<name>-<version>/, and writes
# DEST/<name>.commit holding its commit.
#   MODE=upstream  fetches the tag from the repository with fetch_tag.sh (beside this
#                  script), which stops unless the tag names the pinned commit.
#   MODE=mirror    takes MIRROR/<name>-<version>.tar.gz, which must have the pinned
#                  SHA-256 (a different file stops the build, naming it and both hashes),
#                  and unpacks it.
set -eu

prog=fetch_sources.sh

die() {
  printf '%s: %s\n' "$prog" "$1" >&2
  exit 1
}

[ "$#" -eq 4 ] || die "usage: $prog upstream|mirror LOCK MIRROR DEST (got $# arguments)"
mode=$1
lock=$2
mirror=$3
dest=$4
here=$(dirname "$0")

case $mode in
  upstream | mirror) ;;
  *) die "MODE must be upstream or mirror, got '$mode'" ;;
esac
[ -f "$lock" ] || die "LOCK is not a file: '$lock'"
mkdir -p -- "$dest"

count=0
while read -r name version repo tag commit sha256 rest; do
  case $name in '' | '#'*) continue ;; esac
  if [ -z "$sha256" ] || [ -n "$rest" ]; then
    die "$lock: a line must be 'name version repository tag commit sha256', got '$name $version ...'"
  fi
  case $name$version in
    *[!A-Za-z0-9._-]*) die "$lock: bad name or version '$name' '$version'" ;;
  esac
  case $sha256 in
    *[!0-9a-f]*) die "$lock: $name: sha256 must be lower-case hex, got '$sha256'" ;;
  esac
  [ "${#sha256}" -eq 64 ] || die "$lock: $name: sha256 must be 64 hex digits, got ${#sha256}"
  tree=$dest/$name-$version
  if [ "$mode" = upstream ]; then
    sh "$here/fetch_tag.sh" "$repo" "$tag" "$commit" "$tree" > /dev/null
    rm -rf -- "$tree/.git"
  else
    file=$mirror/$name-$version.tar.gz
    [ -f "$file" ] || die "$name: $file is missing from the source mirror"
    actual=$(sha256sum < "$file" | cut -d ' ' -f 1)
    [ "$actual" = "$sha256" ] ||
      die "$name: $file has SHA-256 $actual, expected $sha256 (pinned in $lock)"
    tar -xzf "$file" -C "$dest"
    [ -d "$tree" ] || die "$name: $file does not hold $name-$version/"
  fi
  printf '%s\n' "$commit" > "$dest/$name.commit"
  printf '%s: %s %s from %s (commit %s)\n' "$prog" "$name" "$version" "$mode" "$commit"
  count=$((count + 1))
done < "$lock"
[ "$count" -gt 0 ] || die "$lock pins no source"
