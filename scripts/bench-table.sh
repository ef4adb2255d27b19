#!/usr/bin/env bash
# Prints the README's benchmark table: medians of COUNT runs (default 5) of the in-package
# end-to-end benchmarks in steady state (2 s per run), with the Go version and CPU. Usage: scripts/bench-table.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-5}"
out=$(go test -run '^$' -bench . -benchtime 2s -count "$count" .)
cpu=$(echo "$out" | sed -n 's/^cpu: *//p' | head -1 | sed 's/ *$//')
echo "Go $(go env GOVERSION), $cpu, GOMAXPROCS $(nproc); medians of $count runs of \`scripts/bench-table.sh\`."
echo
echo "| benchmark | ns/event | events/s | allocs/event | B/event |"
echo "|---|---:|---:|---:|---:|"
echo "$out" | awk '
  /^Benchmark/ {
    name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
    for (i = 3; i < NF; i++) {
      if ($(i+1) == "ns/event") ns[name] = ns[name] " " $i
      if ($(i+1) == "allocs/op") al[name] = al[name] " " $i
      if ($(i+1) == "B/op") by[name] = by[name] " " $i
      if ($(i+1) == "p50-ns") p50[name] = p50[name] " " $i
      if ($(i+1) == "p99-ns") p99[name] = p99[name] " " $i
    }
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
  }
  function median(list,   a, k, i, j, t) {
    k = split(list, a, " ")
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    for (i = 1; i <= n; i++) {
      if (!(order[i] in ns)) continue
      m = median(ns[order[i]])
      printf "| %s | %.0f | %.1fM | %s | %s |\n", order[i], m, 1000 / m, median(al[order[i]]), median(by[order[i]])
    }
    for (i = 1; i <= n; i++) {
      if (!(order[i] in p50)) continue
      printf "\n%s: publish one event, wait until handled, repeat: p50 %s ns, p99 %s ns (medians over runs).\n", order[i], median(p50[order[i]]), median(p99[order[i]])
    }
  }'
