//! Writes the two `m.direct` maps of the merge benchmark as JSON files, for a whole-process
//! timing of `matrix-transplant direct merge` (any version):
//! `direct-maps N A.json B.json`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let (a, b) = benches::direct_maps(n);
    for (map, path) in [(a, &args[2]), (b, &args[3])] {
        std::fs::write(path, map.to_pretty_json()).expect("write the map");
    }
}
