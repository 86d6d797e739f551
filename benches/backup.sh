#!/usr/bin/env bash
# Key backup in and out of a local Synapse, side by side: `upload keys` of the N-session
# export (made by benches/compare.sh N), then `download keys` of the whole backup into a new
# export, with wall time and peak RSS of each, and the size of the server's JSON answer to
# GET /room_keys/keys (the download never holds it whole).
# Usage: benches/backup.sh [SESSIONS]   (default 100000)
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
export MATRIX_TRANSPLANT_OUT_PASSPHRASE="bench passphrase"
common=(--homeserver "$MATRIX_TRANSPLANT_TEST_HOMESERVER" --access-token-file "$acct/token"
  --recovery-key-file "$acct/recovery-key")
up=$( { /usr/bin/time -f '%e %M' target/release/matrix-transplant upload keys "$dir/a.txt" "${common[@]}" 2>&1 >/dev/null; } | tail -1)
down=$( { /usr/bin/time -f '%e %M' target/release/matrix-transplant download keys "${common[@]}" \
  --rounds 500000 -o "$acct/back.txt" 2>&1 >/dev/null; } | tail -1)
version=$(curl -s -H "Authorization: Bearer $(cat "$acct/token")" \
  "$MATRIX_TRANSPLANT_TEST_HOMESERVER/_matrix/client/v3/room_keys/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
bytes=$(curl -s -H "Authorization: Bearer $(cat "$acct/token")" \
  "$MATRIX_TRANSPLANT_TEST_HOMESERVER/_matrix/client/v3/room_keys/keys?version=$version" | wc -c)
read -r uw ur <<<"$up"
read -r dw dr <<<"$down"
printf '%s sessions; the server answer to GET /room_keys/keys: %.0f MB\n' "$n" "$(awk -v b="$bytes" 'BEGIN{print b/1e6}')"
printf 'upload keys    %8.2f s  %6d MB peak RSS\n' "$uw" "$((ur / 1024))"
printf 'download keys  %8.2f s  %6d MB peak RSS  (%.2fx the upload time)\n' "$dw" "$((dr / 1024))" "$(awk -v a="$dw" -v b="$uw" 'BEGIN{print a/b}')"
rm -rf "$acct"
