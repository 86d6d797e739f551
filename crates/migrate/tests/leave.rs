//! The one step a user cannot undo: the old account's leave. Against the two federating
//! test Synapses (scripts/test-all; these tests FAIL, never skip, without them), with the
//! room changed at the worst moment — between the phases, after every room was moved and
//! checked, right before the rename and the leaves — as a room admin, a moderation bot or
//! the user can do during a move that takes hours.

use std::time::Duration;

use migrate::journal::Journal;
use migrate::rooms::moving::{self, MoveOptions, MoveReport, RoomOutcome, Status};
use migrate::rooms::plan::{self, Pair};
use migrate::Silent;
use online::rooms;
use online::testkit::{server_named, TestUser};
use online::Session;
use serde_json::json;

struct Two {
    old: TestUser,
    new: TestUser,
    carol: TestUser,
    old_session: Session,
    new_session: Session,
    dir: tempfile::TempDir,
}

fn two() -> Two {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let new = personal.register("new");
    let carol = org.register("carol");
    Two {
        old_session: old.session(&org.url),
        new_session: new.session(&personal.url),
        old,
        new,
        carol,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Two {
    fn pair(&self) -> Pair<'_> {
        Pair {
            old: &self.old_session,
            new: &self.new_session,
        }
    }
    fn options(&self) -> MoveOptions {
        let mut options = MoveOptions::new(self.dir.path().join("journal.jsonl"));
        options.leave = true;
        options.federation_wait = Duration::from_secs(10);
        options
    }
    /// Moves `rooms` phase by phase, doing `meanwhile` once every room moved and the DMs
    /// were merged, before the rename and the leaves.
    fn moved(&self, rooms: &[String], meanwhile: &dyn Fn()) -> MoveReport {
        let (pair, options) = (self.pair(), self.options());
        let journal = Journal::open(&options.journal, &self.old.user_id, &self.new.user_id);
        let journal = std::sync::Mutex::new(journal.unwrap());
        let mut report = moving::run_in(&pair, rooms, &options, &journal, &Silent).unwrap();
        moving::merge_dms(&pair, &options, &journal, &Silent, &mut report).unwrap();
        meanwhile();
        moving::rename_and_leave(&pair, &options, &journal, &Silent, &mut report).unwrap();
        report
    }
    /// The old account's membership as its own server sees the room (a member who left
    /// can still read the state as it was when it left).
    fn old_membership(&self, room: &str) -> Option<String> {
        rooms::membership(&self.old.client, room, &self.old.user_id)
            .unwrap()
            .map(|m| m.as_str().to_owned())
    }
}

fn outcome<'a>(report: &'a MoveReport, room: &str) -> &'a RoomOutcome {
    report.rooms.iter().find(|o| o.room_id == room).unwrap()
}

/// An invite-only room of carol's where the old account has power `level` and carol 100.
fn carols_room(t: &Two, level: i64) -> String {
    let room = t.carol.create_room_with(json!({"name": "Carol's", "preset": "private_chat",
        "room_version": "10", "invite": [t.old.user_id],
        "power_level_content_override": {"users": {t.carol.user_id.clone(): 100, t.old.user_id.clone(): level}}}));
    t.old.join(&room, &[t.old.server_name().to_owned()]);
    room
}

/// C1: one account as old and new is refused by the library, whatever the front end,
/// before anything is sent (it used to leave every room, exit 0).
#[test]
fn the_same_account_twice_is_refused_before_anything_is_sent() {
    let org = server_named("ORG");
    let a = org.register("same");
    let room = a.create_room("Only me");
    let (s1, s2) = (a.session(&org.url), a.session(&org.url));
    let pair = Pair { old: &s1, new: &s2 };
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("j.jsonl"));
    options.leave = true;
    let rooms = vec![room.clone()];
    for e in [
        moving::run(&pair, &rooms, &options, &Silent).unwrap_err(),
        plan::plan(&pair, &rooms, true, &Silent).unwrap_err(),
    ] {
        assert!(matches!(e, migrate::Error::SameAccount { .. }), "{e}");
    }
    assert_eq!(
        rooms::membership(&a.client, &room, &a.user_id)
            .unwrap()
            .as_ref()
            .map(online::rooms::Membership::as_str),
        Some("join")
    );
    assert!(!dir.path().join("j.jsonl").exists(), "no journal either");
}

/// H1: the new account kicked, or banned, after its join and power were checked: the old
/// account stays, and the report says why.
#[test]
fn a_new_account_kicked_or_banned_before_the_leave_keeps_the_old_one_in() {
    let t = two();
    let kicked = t.old.create_room("Kicked");
    let banned = t.old.create_room("Banned");
    let fine = t.old.create_room("Fine");
    let report = t.moved(&[kicked.clone(), banned.clone(), fine.clone()], &|| {
        t.old.set_state(
            &kicked,
            "m.room.member",
            &t.new.user_id,
            json!({"membership": "leave"}),
        );
        t.old.set_state(
            &banned,
            "m.room.member",
            &t.new.user_id,
            json!({"membership": "ban"}),
        );
    });
    for room in [&kicked, &banned] {
        let o = outcome(&report, room);
        assert!(!o.left, "{o:?}");
        assert_eq!(o.status, Status::Failed, "{o:?}");
        assert!(
            o.stayed
                .as_deref()
                .unwrap()
                .contains("the new account is not joined"),
            "{o:?}"
        );
        assert_eq!(t.old_membership(room).as_deref(), Some("join"));
    }
    assert!(outcome(&report, &fine).left, "the others still move");
    assert_eq!(t.old_membership(&fine).as_deref(), Some("leave"));
}

/// H1: the new account demoted (or the old one promoted) after the power step: it stays.
#[test]
fn a_new_account_demoted_before_the_leave_keeps_the_old_one_in() {
    let t = two();
    let room = t.old.create_room("Demoted");
    let report = t.moved(std::slice::from_ref(&room), &|| {
        let mut pl = rooms::state_content(&t.old.client, &room, "m.room.power_levels", "")
            .unwrap()
            .unwrap();
        pl["users"][&t.new.user_id] = json!(50);
        t.old.set_state(&room, "m.room.power_levels", "", pl);
    });
    let o = outcome(&report, &room);
    assert!(!o.left, "{o:?}");
    assert!(
        o.stayed.as_deref().unwrap().contains("the new account 50"),
        "{o:?}"
    );
    assert_eq!(t.old_membership(&room).as_deref(), Some("join"));
}

/// H1: a room replaced during the move is not left.
#[test]
fn a_room_replaced_before_the_leave_keeps_the_old_one_in() {
    let t = two();
    let room = t.old.create_room("Replaced");
    let report = t.moved(std::slice::from_ref(&room), &|| {
        t.old.set_state(
            &room,
            "m.room.tombstone",
            "",
            json!({"body": "moved", "replacement_room": "!next:example.org"}),
        );
    });
    let o = outcome(&report, &room);
    assert!(
        !o.left && o.stayed.as_deref().unwrap().contains("replaced by !next"),
        "{o:?}"
    );
}

/// H2: a rerun after the old account was promoted owes the new account the higher level,
/// whatever the first run's journal says.
#[test]
fn a_promotion_between_runs_gives_the_new_account_the_higher_level() {
    let t = two();
    let room = carols_room(&t, 50);
    let rooms = vec![room.clone()];
    let first = t.moved(&rooms, &|| {});
    assert_eq!(outcome(&first, &room).status, Status::Partial);
    assert_eq!(t.old_membership(&room).as_deref(), Some("join"));
    // The user has carol promote the old account, so that the tool can do the rest.
    let mut pl = rooms::state_content(&t.carol.client, &room, "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    pl["users"][&t.old.user_id] = json!(100);
    t.carol.set_state(&room, "m.room.power_levels", "", pl);
    let second = t.moved(&rooms, &|| {});
    let pl = rooms::state_content(&t.carol.client, &room, "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    assert_eq!(pl["users"][&t.new.user_id], json!(100), "{second:?}");
    let o = outcome(&second, &room);
    assert!(o.left, "{o:?}");
}

/// L7: the rename is the old account's member event in the moved rooms only (the rooms it
/// keeps do not learn the new account), never doubled by a rerun; the leave says why.
#[test]
fn the_rename_reaches_the_moved_rooms_only_and_the_leave_says_why() {
    let t = two();
    rooms::set_displayname(&t.old.client, &t.old.user_id, "Ann").unwrap();
    let moving = t.old.create_room("Moving");
    let keeping = t.old.create_room("Keeping");
    let mut options = t.options();
    options.rename_old = Some("(moved)".into());
    options.leave = false;
    let rooms = vec![moving.clone()];
    for _ in 0..2 {
        moving::run(&t.pair(), &rooms, &options, &Silent).unwrap();
    }
    let name_in = |room: &str| {
        rooms::state_content(&t.old.client, room, "m.room.member", &t.old.user_id)
            .unwrap()
            .unwrap()["displayname"]
            .clone()
    };
    assert_eq!(name_in(&moving), json!("Ann (moved)"));
    assert_eq!(name_in(&keeping), json!("Ann"));
    assert_eq!(
        rooms::displayname(&t.old.client, &t.old.user_id)
            .unwrap()
            .as_deref(),
        Some("Ann"),
        "the global profile is not changed"
    );
    options.leave = true;
    let report = moving::run(&t.pair(), &rooms, &options, &Silent).unwrap();
    assert!(outcome(&report, &moving).left, "{report:?}");
    let leave = rooms::messages(
        &t.old.client,
        &moving,
        None,
        rooms::Direction::Backwards,
        &["m.room.member"],
        50,
    )
    .unwrap()
    .chunk
    .into_iter()
    .find(|e| {
        e.state_key.as_deref() == Some(t.old.user_id.as_str()) && e.content["membership"] == "leave"
    })
    .expect("the old account's leave");
    assert_eq!(
        leave.content["reason"],
        json!(format!("moved to {}", t.new.user_id))
    );
}
