//! The rooms file: one room a line (`!id  # what it is`), `#` comments. `rooms list` and
//! `move init` write it ([`render`]); the user deletes the lines of the rooms that stay; the
//! same file then drives `keys filter`, `direct build`, `rooms plan`, `rooms move` and
//! `move run` ([`parse`], the grammar `key-export` reads too: text, or a JSON list).

use super::facts::{clean, Power};
use super::history::{utc, History};
use super::list::{ListedRoom, RoomList, Unreadable};

pub use key_export::select::{parse_rooms_file as parse, BadRoomId};

/// The whole file for `list`: a header saying what it is and what to do with it, a line per
/// room (spaces first, their rooms indented under them), then the rooms that could not be
/// read, as comments.
pub fn render(list: &RoomList) -> String {
    let mut s = format!(
        "# Rooms of {} (matrix-transplant rooms list).\n# Delete the lines of the rooms that stay; \
         this file then drives keys filter, direct build, rooms plan and rooms move.\n",
        list.user_id
    );
    for r in &list.rooms {
        s.push_str(&line(r));
        s.push('\n');
    }
    if !list.unreadable.is_empty() {
        s.push_str(
            "# Rooms that could not be read (they do not move as long as they are comments):\n",
        );
        for u in &list.unreadable {
            s.push_str(&unreadable_line(u));
            s.push('\n');
        }
    }
    s
}

/// A room's line: `!id  # name — DM with @bob:x — encrypted — v12 — invite only — your
/// power 100 (creator) — history: shared since creation`.
pub fn line(room: &ListedRoom) -> String {
    let f = &room.facts;
    let name = f.name.clone().unwrap_or_else(|| "(no name)".into());
    let mut parts = vec![if f.is_space {
        format!("[space] {name}")
    } else {
        name
    }];
    if let Some(peer) = &room.dm_with {
        parts.push(format!("DM with {peer}"));
    }
    if f.encrypted {
        parts.push("encrypted".into());
    }
    parts.push(format!("v{}", f.version));
    parts.push(join_rule(&f.join_rule).into());
    parts.push(match room.power {
        Power::Creator => format!("your power {} (creator)", room.level),
        Power::Level(l) => format!("your power {l}"),
    });
    if f.tombstone.is_some() {
        parts.push("replaced (tombstone)".into());
    }
    parts.push(format!("history: {}", short_history(&room.history)));
    format!(
        "{}{}  # {}",
        "  ".repeat(room.depth),
        f.room_id,
        clean(&parts.join(" — "))
    )
}

/// A room that could not be read: a comment, escaped.
pub fn unreadable_line(u: &Unreadable) -> String {
    format!("# {}  # cannot be read: {}", u.room_id, clean(&u.why))
}

fn join_rule(rule: &str) -> &'static str {
    match rule {
        "public" => "public",
        "invite" => "invite only",
        "knock" => "knock",
        "restricted" => "space members may join",
        "knock_restricted" => "knock, or space members may join",
        "private" => "private",
        _ => "unusual join rule",
    }
}

/// A few words on the history a new member sees.
fn short_history(h: &History) -> String {
    let hidden: Vec<_> = h.hidden().collect();
    match (hidden.as_slice(), h.periods.len()) {
        ([], 1) => format!("{} since creation", h.periods[0].visibility),
        ([], _) => "visible throughout".into(),
        ([only], _) if only.to_ms.is_none() => {
            format!(
                "'{}' since {} (hidden from a new member)",
                only.visibility,
                utc(only.from_ms)
            )
        }
        (many, _) => format!("{} period(s) hidden from a new member", many.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_that_cannot_be_read_is_a_comment_that_reads_back_as_nothing() {
        let u = Unreadable {
            room_id: "!evil\u{1b}]0;x\u{7}:example.org".into(),
            why: "the answer is larger than 4194304 bytes\nsecond line".into(),
        };
        let text = unreadable_line(&u);
        assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text:?}");
        assert!(parse(&text, "rooms.txt").unwrap().is_empty());
    }
}
