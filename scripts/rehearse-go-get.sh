#!/usr/bin/env bash
# Rehearses what a user does once this tree is released: `go get` of the core and of each
# nested library module, then a build that uses it, from a file-based module proxy made
# from the tree (scripts/modproxy) at the version the nested go.mod files require of the
# core, outside the workspace (GOWORK=off), with no network: other modules come from this
# machine's module cache, served as a second file proxy. Fails if any step fails.
#
#   scripts/rehearse-go-get.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's#^\s*github.com/ae30fb47/eventbus \(v[^ ]*\).*#\1#p' bridge/nats/go.mod | head -1)
[ -n "$version" ] || { echo "bridge/nats/go.mod requires no version of the core"; exit 1; }
# A released module can require only a version that a tag gives: a pseudo-version such as
# v0.0.0-00010101000000-000000000000 names no commit, and a user's go get of it fails.
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "the nested modules require the core at $version, which no tag can give: set it with scripts/release.sh"; exit 1
fi
for mod in $(git ls-files '*/go.mod'); do
  for req in $(sed -n 's#^\s*\(github.com/ae30fb47/eventbus[^ ]*\) \(v[^ ]*\).*#\1@\2#p' "$mod"); do
    [ "${req#*@}" = "$version" ] || { echo "$mod requires $req; every module of the tree must require $version"; exit 1; }
  done
done
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
go run scripts/modproxy/main.go -out "$work/proxy" -version "$version" > /dev/null
export GOWORK=off GOFLAGS=-mod=mod GOSUMDB=off GONOSUMDB='*' GOTOOLCHAIN=local
export GOPROXY="file://$work/proxy,file://$(go env GOMODCACHE)/cache/download"
export GOMODCACHE="$work/modcache"

# Each library module, with a program of a user's that imports it.
rehearse() { # module, import path, Go statement using the package as pkg
  local mod=$1 imp=$2 use=$3 app="$work/app-$(basename "$1")"
  mkdir -p "$app" && cd "$app"
  go mod init example.com/app > /dev/null 2>&1
  printf 'package main\n\nimport pkg "%s"\n\nfunc main() { %s }\n' "$imp" "$use" > main.go
  if ! go get "$mod@$version" > get.log 2>&1 || ! go build ./... >> get.log 2>&1; then
    echo "-- go get $mod@$version: FAILED"; cat get.log; exit 1
  fi
  echo "-- go get $mod@$version: ok"
  cd - > /dev/null
}
rehearse github.com/ae30fb47/eventbus github.com/ae30fb47/eventbus '_ = pkg.New'
rehearse github.com/ae30fb47/eventbus/bridge/nats github.com/ae30fb47/eventbus/bridge/nats '_ = pkg.Connect'
rehearse github.com/ae30fb47/eventbus/bridge/watermill github.com/ae30fb47/eventbus/bridge/watermill '_ = pkg.New'
rehearse github.com/ae30fb47/eventbus/otel github.com/ae30fb47/eventbus/otel '_ = pkg.NewMetrics'
