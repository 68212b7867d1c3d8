#!/bin/sh
# fetch_tag.sh REPO TAG COMMIT DEST
#
# Fetches tag TAG of the git repository at REPO (depth 1, no history) into the
# new directory DEST, checks that the tag names commit COMMIT and checks that
# commit out. COMMIT is the full 40-hex hash (an abbreviation could match a
# commit crafted to share its prefix). A tag that was moved, or a repository
# that serves something else under that name, fails the build with both hashes
# in the message.
# On success the full hash is printed on stdout.

set -eu

prog=fetch_tag.sh

die() {
  printf '%s: %s\n' "$prog" "$1" >&2
  exit 1
}

[ "$#" -eq 4 ] || die "usage: $prog REPO TAG COMMIT DEST (got $# arguments)"
repo=$1
tag=$2
commit=$3
dest=$4

case $repo in
  https://* | file://*) ;;
  *) die "REPO must be an https:// or file:// URL, got '$repo'" ;;
esac
case $tag in
  '' | -* | *[!A-Za-z0-9._-]*) die "TAG must be letters, digits, '.', '_' and '-', got '$tag'" ;;
esac
case $commit in
  *[!0-9a-f]*) die "COMMIT must be lower-case hex digits, got '$commit'" ;;
esac
if [ "${#commit}" -ne 40 ]; then
  die "COMMIT must be the full 40 hex digits, got ${#commit}: '$commit'"
fi
[ -n "$dest" ] || die "DEST must not be empty"
[ ! -e "$dest" ] || die "DEST already exists: '$dest'"

git init -q -- "$dest"
git -C "$dest" fetch -q --depth 1 -- "$repo" "refs/tags/$tag:refs/tags/$tag" ||
  die "cannot fetch tag '$tag' from '$repo'"
actual=$(git -C "$dest" rev-parse -q --verify "refs/tags/$tag^{commit}") ||
  die "tag '$tag' of '$repo' does not name a commit"
[ "$actual" = "$commit" ] ||
  die "tag '$tag' of '$repo' is commit $actual, expected $commit"
git -C "$dest" -c advice.detachedHead=false checkout -q "$actual"
printf '%s\n' "$actual"
