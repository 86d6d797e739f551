//! The reports of the `direct` commands.

use m_direct::build::BuildReport;

use super::safe;

/// The report of `direct build`.
pub fn direct_build(report: &BuildReport, moving: usize, output: &str) {
    crate::note!(
        "{} of the {} moving rooms are DMs: {} entries written to {output}",
        report.dm_rooms,
        moving,
        report.entries,
    );
    for a in &report.ambiguous {
        crate::note!(
            "  ambiguous: {} is listed under {} (kept under each)",
            safe(&a.room),
            safe(&a.peers.join(", "))
        );
    }
    for (k, r) in &report.self_entries {
        crate::note!(
            "  left out: {} under the account itself ({}); Element would re-guess the peer",
            safe(r),
            safe(k)
        );
    }
    for k in &report.third_party {
        crate::note!("  kept: {k:?} is a third-party identifier (an invite by email)");
    }
    for k in &report.odd_keys {
        crate::note!("  kept as found: {k:?} is not a user ID");
    }
    for k in &report.not_lists {
        crate::note!("  ignored: {k:?} holds something that is not a list of rooms");
    }
}
