#!/usr/bin/env bash
# Upload throughput into server-side key backup: the 100k-session export (made by
# benches/compare.sh) into a local Synapse, with `matrix-transplant upload keys`.
# Usage: benches/upload.sh [SESSIONS]   (default 100000; the corpus must exist: run compare.sh first)
set -euo pipefail
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/target/bench-corpus/$n"
[ -f "$dir/a.txt" ] || { echo "no corpus in $dir: run benches/compare.sh $n first" >&2; exit 1; }
cargo build --release -q -p matrix-transplant -p benches --bins
source scripts/synapse.sh
synapse_install
synapse_start
trap synapse_stop EXIT
acct=$(mktemp -d)
target/release/bench-account "$acct"
export MATRIX_TRANSPLANT_PASSPHRASE="bench passphrase"
/usr/bin/time -f 'wall %e s, peak RSS %M KB' target/release/matrix-transplant upload keys "$dir/a.txt" \
  --homeserver "$MATRIX_TRANSPLANT_TEST_HOMESERVER" --access-token-file "$acct/token" \
  --recovery-key-file "$acct/recovery-key"
rm -rf "$acct"
