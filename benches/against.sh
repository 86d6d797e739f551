#!/usr/bin/env bash
# This checkout against an older commit, side by side on the same files: `keys filter` (10% of
# rooms) and `keys merge` (two files, all rooms) of the N-session corpus (benches/compare.sh N
# makes it), the two builds alternating, RUNS rounds; prints the medians of wall time, user
# CPU and peak RSS, and the ratios. The older commit is built once into target/against/REV.
# Usage: benches/against.sh REV [SESSIONS [RUNS]]   (e.g. fef1542 100000 7)
set -euo pipefail
rev=${1:?usage: benches/against.sh REV [SESSIONS [RUNS]]}
n=${2:-100000}
runs=${3:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/target/bench-corpus/$n"
[ -f "$dir/a.txt" ] || { echo "no corpus in $dir: run benches/compare.sh $n first" >&2; exit 1; }
commit=$(git rev-parse --short "$rev^{commit}")
old="$root/target/against/$commit/matrix-transplant"
if [ ! -x "$old" ]; then
  tree=$(mktemp -d)
  git worktree add -q --detach "$tree" "$commit"
  (cd "$tree" && CARGO_TARGET_DIR="$root/target/against/build" cargo build --release -q -p matrix-transplant)
  git worktree remove --force "$tree"
  mkdir -p "$(dirname "$old")"
  cp "$root/target/against/build/release/matrix-transplant" "$old"
fi
cargo build --release -q -p matrix-transplant
new="$root/target/release/matrix-transplant"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export MATRIX_TRANSPLANT_PASSPHRASE="bench passphrase"
for i in $(seq "$runs"); do
  for who in old new; do
    bin=${!who}
    /usr/bin/time -a -o "$out/times" -f "$who filter %e %U %M" "$bin" keys filter "$dir/a.txt" \
      --rooms-file "$dir/rooms.txt" -o "$out/f.txt" --force >/dev/null 2>&1
    /usr/bin/time -a -o "$out/times" -f "$who merge %e %U %M" "$bin" keys merge "$dir/a.txt" \
      "$dir/b.txt" -o "$out/m.txt" --force >/dev/null 2>&1
  done
done
head=$(git rev-parse --short HEAD)
python3 - "$out/times" "$commit" "$head" "$n" "$runs" "$(stat -c %s "$dir/a.txt")" <<'PY'
import statistics, sys
path, old, new, n, runs, size = sys.argv[1:]
rows = [l.split() for l in open(path) if l.strip()]
mib = int(size) / 2**20
print(f"{n} sessions (each file {mib:.1f} MiB), {runs} rounds alternating, medians: {old} vs {new}")
for job in ["filter", "merge"]:
    m = {}
    for who in ["old", "new"]:
        xs = [r for r in rows if r[0] == who and r[1] == job]
        m[who] = [statistics.median(float(r[c]) for r in xs) for c in (2, 3, 4)]
    (ow, ou, orss), (nw, nu, nrss) = m["old"], m["new"]
    inputs = mib * (2 if job == "merge" else 1)
    print(f"{job:6}  wall {ow:.2f} -> {nw:.2f} s ({nw / ow:.2f}x)  user {ou:.2f} -> {nu:.2f} s "
          f"({nu / ou:.2f}x)  peak RSS {orss / 1024:.1f} -> {nrss / 1024:.1f} MiB "
          f"({nrss / 1024 / inputs:.2f}x the input)")
PY
