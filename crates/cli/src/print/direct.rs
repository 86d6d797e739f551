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

/// The report of `direct merge`.
pub fn merged(maps: usize, users: usize, report: &m_direct::merge::MergeReport, output: &str) {
    crate::note!("merged {maps} maps: {users} users -> {output}");
    for k in &report.replaced_non_lists {
        crate::note!(
            "  {k:?}: a value that was not a list was replaced by the list from another file"
        );
    }
}

/// The ending of `direct check`: what was written, or the problems found (exit 5).
pub fn checked(
    file: &std::path::Path,
    users: usize,
    (fixable, clean_users): (usize, usize),
    written: Option<&crate::files::Output>,
) -> crate::exit::Outcome {
    use crate::exit::{Exit, Failure};
    match written {
        Some(output) => {
            crate::note!(
                "{fixable} problems fixed; cleaned map ({clean_users} users) written to {}",
                output.describe()
            );
            Ok(())
        }
        None if fixable > 0 => Err(Failure::new(
            Exit::Invalid,
            format!(
                "{}: {fixable} problems found (use --fix -o OUT to write a cleaned copy)",
                file.display()
            ),
        )),
        None => {
            crate::note!("{}: no problems found ({users} users)", file.display());
            Ok(())
        }
    }
}

/// The report of `upload direct`.
pub fn uploaded(done: &migrate::direct::Uploaded, file: &std::path::Path, dry_run: bool) {
    for (user, room) in &done.added {
        crate::note!("  + {user}: {room}");
    }
    let me = &done.user_id;
    if done.added.is_empty() {
        crate::note!(
            "m.direct of {me} already holds everything in {}: nothing to do",
            file.display()
        );
    } else if dry_run {
        crate::note!(
            "dry run: {} entries would be added to the m.direct of {me} (nothing was written)",
            done.added.len()
        );
    } else {
        crate::note!(
            "added {} entries to the m.direct of {me} ({} users now; read back and verified{})",
            done.added.len(),
            done.users_after,
            if done.writes > 1 {
                ", after merging again with a change another client made meanwhile"
            } else {
                ""
            }
        );
    }
}
