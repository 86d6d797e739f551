//! The decrypted-JSON layer on arbitrary bytes: splitting, per-entry parsing and checks,
//! and the rewrite that adds a forwarding chain must never panic, and what we write must
//! still be JSON with the same entries.
#![no_main]

use key_export::{entries, ExportedSession, SessionRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = entries::split(data) else { return };
    let sessions = entries::parse_all(&raw);
    // Only valid entries are ever written.
    let valid: Vec<&SessionRef<'_>> = sessions.iter().filter(|s| s.is_valid()).collect();
    let out = entries::write_array(valid.iter().map(|s| s.output_json()));
    let again = entries::split(&out).expect("our output is a JSON array");
    assert_eq!(again.len(), valid.len());
    for (s, r) in valid.iter().zip(&again) {
        let back = SessionRef::parse(r);
        assert_eq!(back.room_id, s.room_id);
        assert_eq!(back.session_id, s.session_id);
        assert!(back.is_valid() && back.has_forwarding_chain, "{:?}", back.problem);
        let _ = serde_json::from_str::<ExportedSession>(r.get());
    }
});
