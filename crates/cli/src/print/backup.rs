//! The reports of `upload` and `download`: the key backup and the DM list.

use super::safe;

/// How a backup was opened, in words.
pub fn opened_via(via: online::backup::Via) -> &'static str {
    match via {
        online::backup::Via::SecretStorage => "its key read from secret storage",
        online::backup::Via::BackupKey => "the recovery key is the backup's own key",
        online::backup::Via::BackupPhrase => "the phrase gives the backup's own key",
    }
}

/// The report of `download keys`.
pub fn download_keys(report: &migrate::keys::DownloadKeysReport, output: &str) {
    use migrate::account_move::report::count;
    crate::note!(
        "downloaded {} of {} from backup version {} ({}) -> {output}",
        count(report.sessions, "session", "sessions"),
        count(report.rooms, "room", "rooms"),
        safe(&report.version),
        opened_via(report.opened_via),
    );
    if !report.skipped.is_empty() {
        crate::note!("left out {} backup entries:", report.skipped.len());
    }
    for s in report.skipped.iter().take(20) {
        crate::note!(
            "  {} {}: {}",
            safe(&s.room_id),
            safe(&s.session_id),
            safe(&s.reason.to_string())
        );
    }
    crate::note!(
        "note: keys from a server-side backup are not authenticated (anyone with the account's \
         access token can add entries); each is marked as such, and `keys merge` prefers a \
         device export's copy of a session over it"
    );
}

/// The report of `upload keys`.
pub fn uploaded(report: &migrate::keys::UploadKeysReport) {
    let u = &report.upload;
    let secs = report.upload_seconds;
    crate::note!(
        "uploaded {} sessions to backup version {} in {secs:.1} s ({:.0} sessions/s); the backup held {} sessions before and {} after ({} new)",
        u.sent,
        super::safe(&u.version),
        u.sent as f64 / secs.max(1e-9),
        u.count_before,
        u.count_after,
        u.count_after.saturating_sub(u.count_before)
    );
    let s = &report.merged.summary;
    if s.conflicts > 0 || s.invalid > 0 {
        crate::note!(
            "({} conflicting copies kept as first seen, {} invalid entries left out)",
            s.conflicts,
            s.invalid
        );
    }
}
