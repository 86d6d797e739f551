#!/usr/bin/env bash
# The key backup against its floor, on a local Synapse: `upload keys` of the N-session export
# (made by benches/compare.sh N) into an empty backup, and `download keys` of that backup into
# a new export, each beside the time the server itself needs for the same requests
# (target/release/backup-floor: the same bodies, the same batches, one request at a time,
# replayed by a client that does nothing else; the whole answer of GET /room_keys/keys read
# and thrown away). RUNS rounds, alternating; medians; whole-process wall time and peak RSS
# for the tool, and the ratio of each to its floor.
# Usage: benches/backup.sh [SESSIONS [RUNS]]   (default 100000 3)
set -euo pipefail
n=${1:-100000}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/target/bench-corpus/$n"
[ -f "$dir/a.txt" ] || { echo "no corpus in $dir: run benches/compare.sh $n first" >&2; exit 1; }
cargo build --release -q -p matrix-transplant -p benches --bins
source scripts/synapse.sh
synapse_install
synapse_start
work=$(mktemp -d)
trap 'synapse_stop; rm -rf "$work"' EXIT
export MATRIX_TRANSPLANT_PASSPHRASE="bench passphrase"
export MATRIX_TRANSPLANT_OUT_PASSPHRASE="bench passphrase"
results="$work/results"
: >"$results"
account() { # a fresh account with an empty backup, in directory $1
  mkdir -p "$1" && target/release/bench-account "$1" 2>/dev/null
}
tool() { # what, account dir, args...: appends "what wall rss"
  local what=$1 acct=$2; shift 2
  local t
  t=$( { /usr/bin/time -f '%e %M' target/release/matrix-transplant "$@" \
    --homeserver "$MATRIX_TRANSPLANT_TEST_HOMESERVER" --access-token-file "$acct/token" \
    --recovery-key-file "$acct/recovery-key" 2>&1 >/dev/null; } | tail -1)
  echo "$what $t" >>"$results"
}
for i in $(seq "$runs"); do
  account "$work/tool$i"
  account "$work/floor$i"
  tool upload "$work/tool$i" upload keys "$dir/a.txt"
  echo "upload-floor $(target/release/backup-floor upload "$work/floor$i" "$dir/a.txt" | cut -d' ' -f1) 0" >>"$results"
  tool download "$work/tool$i" download keys --rounds 500000 -o "$work/back$i.txt" --force
  echo "download-floor $(target/release/backup-floor download "$work/tool$i" | cut -d' ' -f1) 0" >>"$results"
done
bytes=$(target/release/backup-floor download "$work/tool1" | cut -d' ' -f3)
python3 - "$results" "$n" "$runs" "$bytes" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = lambda what, col: statistics.median(float(r[col]) for r in rows if r[0] == what)
n, runs, size = sys.argv[2], sys.argv[3], int(sys.argv[4]) / 1e6
print(f"{n} sessions, {runs} rounds, medians; the server's answer to GET /room_keys/keys: {size:.0f} MB")
for job in ["upload", "download"]:
    wall, rss, floor = med(job, 1), med(job, 2) / 1024, med(job + "-floor", 1)
    print(f"{job} keys  {wall:7.2f} s  {rss:6.0f} MiB peak RSS | the server's floor {floor:7.2f} s | {wall / floor:.2f}x the floor")
PY
