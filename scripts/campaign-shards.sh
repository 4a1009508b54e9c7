#!/usr/bin/env bash
# Runs a big campaign as N shards on this machine, resumably, then merges them.
#
#   bash scripts/campaign-shards.sh SEEDS SHARDS DIR [partyline campaign options...]
#   bash scripts/campaign-shards.sh 1000000 100 target/campaign-1e6
#
# Each shard runs `partyline campaign --seeds SEEDS --shard I/SHARDS --json DIR/shard-I.json`
# with the options given (every core: the campaign's own workers). A shard already written is
# skipped, so the script can be stopped and run again; several copies may run side by side (a
# shard is claimed with mkdir). The binary is copied into DIR once and reused, so every shard
# runs the same build (the merge refuses shards of another image). When every shard is there,
# `partyline campaign merge` prints the table of the whole run (DIR/merged.txt, DIR/merged.json).
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
seeds=$1 shards=$2 dir=$3
shift 3
case "$seeds$shards" in *[!0-9]*) echo "SEEDS and SHARDS are numbers" >&2; exit 2 ;; esac
mkdir -p "$dir"
if [ ! -x "$dir/partyline" ]; then
  cargo build --release --locked -p partyline-cli
  cp "${CARGO_TARGET_DIR:-target}/release/partyline" "$dir/partyline"
  git rev-parse --short HEAD > "$dir/COMMIT" 2>/dev/null || true
fi
for i in $(seq 1 "$shards"); do
  [ -f "$dir/shard-$i.json" ] && continue
  mkdir "$dir/shard-$i.lock" 2>/dev/null || continue
  start=$(date +%s)
  rc=0
  "$dir/partyline" campaign --seeds "$seeds" --shard "$i/$shards" --json "$dir/shard-$i.tmp" "$@" \
    > "$dir/shard-$i.out" 2>&1 || rc=$?
  [ -f "$dir/shard-$i.tmp" ] && mv "$dir/shard-$i.tmp" "$dir/shard-$i.json"
  rmdir "$dir/shard-$i.lock"
  echo "shard $i/$shards: exit $rc, $(( $(date +%s) - start )) s" | tee -a "$dir/run.log"
done
missing=0
for i in $(seq 1 "$shards"); do [ -f "$dir/shard-$i.json" ] || missing=$((missing + 1)); done
if [ "$missing" -gt 0 ]; then
  echo "$missing shard(s) still running or missing; run this again to finish them" >&2
  exit 1
fi
"$dir/partyline" campaign merge "$dir"/shard-*.json --json "$dir/merged.json" | tee "$dir/merged.txt"
