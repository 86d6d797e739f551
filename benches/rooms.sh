#!/usr/bin/env bash
# A 60-room move between two federating Synapses whose rate limits have the stock SHAPE
# (synapse/config/ratelimiting.py), every rate scaled so that the binding limit, invites
# into the new account (rc_invites.per_user: 5, then one per 333 s at stock), needs about
# 30 s: `rooms move` against that floor, and the naive move (per room in series: invite →
# join → power level, as the existing tools do) in the same run, into a second account.
# Usage: benches/rooms.sh [ROOMS] [FLOOR_SECONDS]   (default 60 30)
set -euo pipefail
n=${1:-60}
floor_target=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p matrix-transplant -p benches --bins
source scripts/synapse.sh
synapse_install
# per_user rate r with burst 5: (n - 5) / r = floor  =>  scale = r / 0.003
scale=$(python3 -c "print(($n - 5) / $floor_target / 0.003)")
synapse_pair_start "$(scaled_stock_limits "$scale")"
trap synapse_stop EXIT
dir=$(mktemp -d)
target/release/bench-rooms setup "$n" "$dir"
floor=$(python3 -c "r = 0.003 * $scale; print(round(($n - 5) / r, 1))")
start=$(date +%s.%N)
MATRIX_OLD_ACCESS_TOKEN=$(cat "$dir/old.token") MATRIX_NEW_ACCESS_TOKEN=$(cat "$dir/new.token") \
  target/release/matrix-transplant rooms move --rooms-file "$dir/rooms.txt" --state "$dir/journal" \
  --old-user "$(cat "$dir/old.user")" --old-homeserver "$MATRIX_TRANSPLANT_TEST_ORG_HOMESERVER" \
  --new-user "$(cat "$dir/new.user")" --new-homeserver "$MATRIX_TRANSPLANT_TEST_PERSONAL_HOMESERVER" \
  --json > "$dir/report.json" 2> "$dir/stderr.log"
ours=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 1))")
moved=$(python3 -c "import json; print(sum(r['status'] == 'moved' for r in json.load(open('$dir/report.json'))['rooms']))")
start=$(date +%s.%N)
target/release/bench-rooms naive "$dir"
naive=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 1))")
echo "rooms: $n (moved: $moved); limits: stock shape, rates x$(printf %.0f "$scale")"
echo "floor (invites into one account): $floor s"
echo "rooms move: $ours s  ratio to the floor: $(python3 -c "print(round($ours / $floor, 2))")"
echo "naive (invite -> join -> power, room by room): $naive s  ratio: $(python3 -c "print(round($naive / $floor, 2))")"
rm -rf "$dir"
