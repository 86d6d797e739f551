#!/usr/bin/env bash
# Whole-process comparison, in ONE run on the same files: matrix-transplant against
# matrix-sdk-crypto's decrypt_room_key_export + encrypt_room_key_export (benches/src/bin/sdk-job.rs).
# Usage: benches/compare.sh [SESSIONS]   (default 100000; 415000 for the largest real exports)
#        BIN=DIR benches/compare.sh ...   (use the binaries in DIR, e.g. a saved build, instead
#                                          of building this checkout)
# Prints wall time, peak RSS and the ratio for decrypt, filter (10% of rooms), merge (2 files, 5%
# overlap, all rooms) and merge10 (the same two files, 10% of rooms).
# Our outputs are fsync'ed before the rename (durability); the baseline's are not.
set -euo pipefail
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/bench-corpus/$n"
mkdir -p "$dir"
cd "$root"
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release -q -p matrix-transplant -p benches --bins
  bin=target/release
fi
printf 'bench passphrase\n' > "$dir/pass"
chmod 600 "$dir/pass"
if [ ! -f "$dir/a.txt" ] || [ ! -f "$dir/b.txt" ]; then
  echo "generating $n-session exports (500000 rounds, real vodozemac sessions)..."
  "$bin/gen-corpus" --sessions "$n" --rooms 300 --overlap-share 0.05 --rounds 500000 \
    --passphrase-file "$dir/pass" --out "$dir/a.txt" --out-b "$dir/b.txt" \
    --rooms-out "$dir/rooms.txt" --rooms-share 0.1
fi
ls -l "$dir"/a.txt "$dir"/b.txt | awk '{printf "%s %.1f MB\n", $9, $5/1e6}'
out="$dir/out"; mkdir -p "$out"
export MATRIX_TRANSPLANT_PASSPHRASE="bench passphrase"

measure() { # label, command... → prints "label wall_s rss_mb"
  local label=$1; shift
  rm -f "$out"/*
  /usr/bin/time -f '%e %M' -o "$out/.time" "$@" > /dev/null 2> "$out/.stderr" || { cat "$out/.stderr"; exit 1; }
  read -r wall rss < "$out/.time"
  printf '%s %s %s\n' "$label" "$wall" "$((rss / 1024))"
}

results=$(
  measure "ours:decrypt" "$bin/matrix-transplant" keys decrypt "$dir/a.txt" -o "$out/a.json"
  measure "sdk:decrypt"  "$bin/sdk-job" decrypt "$dir/a.txt" "$dir/pass" "$out/a.json"
  measure "ours:filter"  "$bin/matrix-transplant" keys filter "$dir/a.txt" --rooms-file "$dir/rooms.txt" -o "$out/f.txt"
  measure "sdk:filter"   "$bin/sdk-job" filter "$dir/a.txt" "$dir/pass" "$dir/rooms.txt" "$out/f.txt"
  measure "ours:merge"   "$bin/matrix-transplant" keys merge "$dir/a.txt" "$dir/b.txt" -o "$out/m.txt"
  measure "sdk:merge"    "$bin/sdk-job" merge "$dir/a.txt" "$dir/b.txt" "$dir/pass" "$out/m.txt"
  measure "ours:merge10" "$bin/matrix-transplant" keys merge "$dir/a.txt" "$dir/b.txt" --rooms-file "$dir/rooms.txt" -o "$out/m.txt"
  measure "sdk:merge10"  "$bin/sdk-job" merge "$dir/a.txt" "$dir/b.txt" "$dir/pass" "$out/m.txt" "$dir/rooms.txt"
)
echo
printf '%-8s %12s %12s %8s %14s %14s\n' job "ours (s)" "sdk (s)" ratio "ours RSS MB" "sdk RSS MB"
for job in decrypt filter merge merge10; do
  o=$(grep "^ours:$job " <<<"$results"); s=$(grep "^sdk:$job " <<<"$results")
  ow=$(cut -d' ' -f2 <<<"$o"); sw=$(cut -d' ' -f2 <<<"$s")
  orss=$(cut -d' ' -f3 <<<"$o"); srss=$(cut -d' ' -f3 <<<"$s")
  printf '%-8s %12s %12s %7.1fx %14s %14s\n' "$job" "$ow" "$sw" "$(awk -v a="$sw" -v b="$ow" 'BEGIN{print a/b}')" "$orss" "$srss"
done
