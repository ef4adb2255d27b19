#!/usr/bin/env bash
# Versions the core and every nested module together. The tree's nested go.mod files
# always require the core (and each other) at the version of the next release, with a
# relative replace that local builds outside the workspace use and a user's build ignores;
# go.work ties the tree together for development.
#
#   scripts/release.sh set VERSION   # make every nested go.mod require VERSION (no commit)
#   scripts/release.sh tag VERSION   # check, commit, and tag VERSION on the core and
#                                    # <dir>/VERSION on each nested module
#
# tag refuses a dirty tree or a tree whose go.mod files require another version, runs
# scripts/rehearse-go-get.sh (a user's go get of each module, offline), and prints the
# git push that publishes the tags; it pushes nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}; version=${2:-}
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || [[ "$cmd" != set && "$cmd" != tag ]]; then
  echo "usage: scripts/release.sh set|tag vMAJOR.MINOR.PATCH"; exit 2
fi
nested=$(git ls-files '*/go.mod')
case $cmd in
set)
  for mod in $nested; do
    dir=$(dirname "$mod")
    for req in $(sed -n 's#^\s*\(github.com/ae30fb47/eventbus[^ ]*\) v[^ ]*.*#\1#p' "$mod" | sort -u); do
      (cd "$dir" && go mod edit -require="$req@$version")
    done
    (cd "$dir" && GOWORK=off go mod tidy)
    echo "$mod: requires this tree's modules at $version"
  done
  ;;
tag)
  [ -z "$(git status --porcelain)" ] || { echo "the tree has uncommitted changes"; exit 1; }
  scripts/rehearse-go-get.sh
  for mod in $nested; do
    if grep -q "github.com/ae30fb47/eventbus[^ ]* v" "$mod" && grep "github.com/ae30fb47/eventbus[^ ]* v" "$mod" | grep -vq " $version"; then
      echo "$mod requires another version than $version: run scripts/release.sh set $version and commit"; exit 1
    fi
  done
  tags=("$version")
  for mod in $nested; do
    tags+=("$(dirname "$mod")/$version")
  done
  for tag in "${tags[@]}"; do
    git tag -a "$tag" -m "eventbus $version"
  done
  echo "tagged: ${tags[*]}"
  echo "publish with: git push origin ${tags[*]}"
  ;;
esac
