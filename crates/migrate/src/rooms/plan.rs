//! What moving each room takes, decided from its state before anything is sent: the steps
//! needed, the blockers (each with its reason and what the user can do), what the new
//! account will and will not be able to do, the history it will never see, and how long
//! the server's rate limits make the whole move take.

use online::membership::{or_none, Membership};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use m_direct::DirectMap;
use online::rooms;
use serde::Serialize;

use super::facts::{server_of, Power, RoomFacts};
use super::history::{self, History};
pub use crate::connect::Pair;
use crate::error::Result;
use crate::events::{stage, Event, Events, Stage};
use crate::rooms::invite_rules::InviteRules;

/// A step of a room's move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The old account invites the new one.
    Invite,
    /// The new account joins through these servers.
    Join {
        /// The servers to join through.
        via: Vec<String>,
    },
    /// The old account gives the new one this power level.
    Power {
        /// The level.
        level: i64,
    },
    /// The old account's tags of the room are copied.
    Tags,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Invite => write!(f, "invite"),
            Step::Join { via } => write!(f, "join via {}", via.join(",")),
            Step::Power { level } => write!(f, "power {level}"),
            Step::Tags => write!(f, "tags"),
        }
    }
}

/// A duration in the unit a person reads best: seconds, minutes, hours.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{:.1} h", secs as f64 / 3600.0),
    }
}

/// What the servers' admins can do when a move would take hours.
pub fn speed_up_advice(old: &str) -> String {
    format!(
        "To go faster: an admin of the old account's server can lift its limits \
         (POST /_synapse/admin/v1/users/{old}/override_ratelimit with messages_per_second 0); \
         the new server's admin can raise rc_invites.per_user and rc_joins.remote."
    )
}

/// Why a room cannot move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    /// The old account is not joined.
    OldNotJoined,
    /// The room was replaced.
    Tombstoned,
    /// The new account is banned.
    NewBanned,
    /// The room does not federate and the new account is on another server.
    NoFederation,
    /// The server ACL denies the new account's server.
    AclDenies,
    /// An invite is needed and the old account may not invite.
    CannotInvite,
    /// An invite is needed and the new account refuses the old account's invites.
    InvitesBlocked,
}

/// A blocker, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Blocker {
    /// What kind.
    pub kind: BlockerKind,
    /// Why, in words.
    pub reason: String,
    /// What the user can do.
    pub advice: String,
}

/// The plan of one room.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RoomPlan {
    /// The facts read.
    pub facts: RoomFacts,
    /// The new account's membership now (`None`: never in it).
    pub new_membership: Option<Membership>,
    /// What the room needs, decided from the facts.
    #[serde(flatten)]
    pub decision: Decision,
    /// The peer, when the room is a DM in the old account's m.direct.
    pub dm_with: Option<String>,
    /// The history the new account will see.
    pub history: History,
    /// [`History::verdict`].
    pub history_verdict: matrix_ids::text::Untrusted,
}

impl RoomPlan {
    /// The room's name as people know it: its name, else "DM with" its peer.
    pub fn display_name(&self) -> Option<String> {
        display_name(self.facts.name.as_deref(), self.dm_with.as_deref())
    }

    /// True when nothing is left to do.
    pub fn done(&self) -> bool {
        self.decision.blockers.is_empty()
            && self.decision.steps.iter().all(|s| *s == Step::Tags)
            && self.new_membership == Some(Membership::Join)
    }
}

/// What [`decide`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Decision {
    /// The old account's power.
    pub old_power: Power,
    /// The steps still needed (none when blocked).
    pub steps: Vec<Step>,
    /// What stops the move.
    pub blockers: Vec<Blocker>,
    /// The level the new account should have.
    pub target: Option<i64>,
    /// Why the power cannot be copied, when it cannot (the room moves partly; the old
    /// account stays in it).
    pub power_not_copied: Option<String>,
    /// What the user should know.
    pub notes: Vec<String>,
}

impl Decision {
    /// What the user must do by hand for this room, as (what is wrong, what to do): each
    /// blocker, and the power the old account cannot give. The plan and the run say the
    /// same.
    pub fn by_hand(&self, new: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .blockers
            .iter()
            .map(|b| (b.reason.clone(), b.advice.clone()))
            .collect();
        if let Some(why) = &self.power_not_copied {
            out.push((why.clone(), power_advice(new, self.target.unwrap_or(100))));
        }
        out
    }
}

/// What to do when the old account cannot give the new one its power.
pub fn power_advice(new: &str, level: i64) -> String {
    format!(
        "ask one of the room's admins to give {new} power {level}; the old account stays in \
         the room until then (run the move again afterwards to leave it)"
    )
}

/// A room's name as people know it: its name, else "DM with" its peer.
pub fn display_name(name: Option<&str>, dm_with: Option<&str>) -> Option<String> {
    match (name, dm_with) {
        (Some(n), _) if !n.trim().is_empty() => Some(n.to_owned()),
        (_, Some(peer)) => Some(format!("DM with {peer}")),
        _ => None,
    }
}

/// Decides a room's steps and blockers from its facts.
pub fn decide(facts: &RoomFacts, old: &str, new: &str, new_joined: &HashSet<String>) -> Decision {
    let old_power = facts.power_of(old);
    let mut blockers = blockers(facts, old, new);
    let mut steps = Vec::new();
    match invite(facts, old_power, new, new_joined) {
        Ok(step) => steps.extend(step),
        Err(b) => blockers.push(b),
    }
    if facts.membership_of(new) != Some(&Membership::Join) {
        steps.push(Step::Join {
            via: facts.via(server_of(old)),
        });
    }
    let target = facts.target_level(old_power);
    let mut notes = Vec::new();
    let mut power_not_copied = None;
    match target.map(|level| power(facts, old_power, new, level)) {
        Some(Ok(step)) => steps.extend(step),
        Some(Err((why, note))) => {
            notes.push(note);
            power_not_copied = Some(why);
        }
        None => {}
    }
    notes.extend(creator_note(facts, old_power, target));
    steps.push(Step::Tags);
    if !blockers.is_empty() {
        steps.clear();
    }
    Decision {
        old_power,
        steps,
        blockers,
        target,
        power_not_copied,
        notes,
    }
}

fn blocker(kind: BlockerKind, reason: String, advice: String) -> Blocker {
    Blocker {
        kind,
        reason,
        advice,
    }
}

/// What stops the room from moving at all, whoever invites.
fn blockers(facts: &RoomFacts, old: &str, new: &str) -> Vec<Blocker> {
    [
        old_not_joined(facts, old),
        replaced(facts),
        banned(facts, new),
        unfederated(facts, new),
        acl_denies(facts, new),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn old_not_joined(facts: &RoomFacts, old: &str) -> Option<Blocker> {
    let membership = facts.membership_of(old);
    (membership != Some(&Membership::Join)).then(|| {
        blocker(
            BlockerKind::OldNotJoined,
            format!(
                "the old account is not in this room (membership: {})",
                or_none(membership)
            ),
            "remove it from the rooms file".into(),
        )
    })
}

fn replaced(facts: &RoomFacts) -> Option<Blocker> {
    facts.tombstone.as_ref().map(|next| {
        blocker(
            BlockerKind::Tombstoned,
            format!("the room was replaced by {next}"),
            format!("move {next} instead: put it in the rooms file in place of this one"),
        )
    })
}

fn banned(facts: &RoomFacts, new: &str) -> Option<Blocker> {
    (facts.membership_of(new) == Some(&Membership::Ban)).then(|| {
        blocker(
            BlockerKind::NewBanned,
            format!("{new} is banned from this room"),
            "ask one of the room's admins to unban the new account, then run again".into(),
        )
    })
}

fn unfederated(facts: &RoomFacts, new: &str) -> Option<Blocker> {
    (!facts.federate && server_of(new) != facts.origin_server).then(|| {
        blocker(
            BlockerKind::NoFederation,
            format!(
                "the room does not federate (m.federate: false): only accounts on {} can join",
                facts.origin_server
            ),
            "it cannot be moved to an account on another server; ask its admins for a new room"
                .into(),
        )
    })
}

fn acl_denies(facts: &RoomFacts, new: &str) -> Option<Blocker> {
    let server = server_of(new);
    (!facts.acl_allows(server)).then(|| {
        blocker(
            BlockerKind::AclDenies,
            format!("the room's server ACL denies {server}"),
            format!("ask the room's admins to allow {server} in m.room.server_acl"),
        )
    })
}

/// The invite the new account needs (none when it is in, invited, or may join by the
/// join rules), or the blocker when the old account cannot send it.
fn invite(
    facts: &RoomFacts,
    old_power: Power,
    new: &str,
    new_joined: &HashSet<String>,
) -> std::result::Result<Option<Step>, Blocker> {
    let already_in = facts
        .membership_of(new)
        .is_some_and(Membership::in_or_invited);
    let open = facts.join_rule == "public"
        || (matches!(facts.join_rule.as_str(), "restricted" | "knock_restricted")
            && facts.allow_rooms.iter().any(|r| new_joined.contains(r)));
    if already_in || open {
        return Ok(None);
    }
    let needed = facts.needed_to_invite();
    if old_power.at_least(needed) {
        return Ok(Some(Step::Invite));
    }
    Err(blocker(
        BlockerKind::CannotInvite,
        format!("the old account cannot invite: needs power {needed}, has {old_power}"),
        format!(
            "ask one of the room's admins to invite {new} (or to give the old account power {needed}), then run again"
        ),
    ))
}

/// The power step towards `level` (none when the new account has it), or why the old
/// account cannot give it and the note that says so.
fn power(
    facts: &RoomFacts,
    old_power: Power,
    new: &str,
    level: i64,
) -> std::result::Result<Option<Step>, (String, String)> {
    if facts.power_of(new).at_least(level) {
        return Ok(None);
    }
    let needed = facts.needed_for_state("m.room.power_levels");
    if old_power.at_least(needed) {
        return Ok(Some(Step::Power { level }));
    }
    let why = format!("power not copied: needs {needed}, has {old_power}");
    let note = format!(
        "{why}; the new account joins, the old account stays in the room (ask an admin to give {new} power {level})"
    );
    Err((why, note))
}

/// A restricted room (members of other rooms may join without an invite) whose new
/// account is in none of those rooms: what it means, with what to do. When one of them
/// moves too, the new account will be a member of it after this run: a room the old
/// account cannot invite into can be joined then, by running again. When none moves, the
/// room is reached by invite alone (as planned), and the new account could not come back by
/// itself after leaving.
pub fn restricted(
    facts: &RoomFacts,
    decision: &mut Decision,
    new_joined: &HashSet<String>,
    moving: &HashSet<String>,
) {
    let restricted = matches!(facts.join_rule.as_str(), "restricted" | "knock_restricted");
    if !restricted
        || facts.allow_rooms.is_empty()
        || facts.allow_rooms.iter().any(|r| new_joined.contains(r))
    {
        return;
    }
    let moving_too: Vec<&str> = facts
        .allow_rooms
        .iter()
        .filter(|r| moving.contains(*r))
        .map(String::as_str)
        .collect();
    let cannot_invite = decision
        .blockers
        .iter_mut()
        .find(|b| b.kind == BlockerKind::CannotInvite);
    match (moving_too.first(), cannot_invite) {
        (Some(room), Some(b)) => {
            b.advice = format!(
                "{}; or, once {room} (which moves too) has moved, run again: its members may \
                 join this room without an invite",
                b.advice
            );
        }
        (Some(room), None) => decision.notes.push(format!(
            "members of {room} may join without an invite; it moves too, so the new account \
             will be one of them"
        )),
        (None, _) => decision.notes.push(format!(
            "only members of {} may join without an invite, and the new account is in none \
             and none moves: it needs an invite now, and again if it ever leaves (add one of \
             them to the rooms file to let it join by itself)",
            facts.allow_rooms.join(", ")
        )),
    }
}

/// What a creator of a v12 room should know: creator status does not pass on.
fn creator_note(facts: &RoomFacts, old_power: Power, target: Option<i64>) -> Option<String> {
    (old_power == Power::Creator).then(|| {
        format!(
            "the old account is a creator of this version {} room, and creator status cannot be \
             passed on: the new account gets power {} (the highest in the room), so it can do \
             everything that level allows, but it cannot demote or kick users at that level, and \
             only upgrading the room with it in additional_creators would make it a creator",
            facts.version,
            target.unwrap_or(100)
        )
    })
}

/// Reads a room as an account in it: its facts, and its history settings over time.
pub fn read_room(client: &online::Client, room: &str) -> Result<(RoomFacts, History)> {
    let state = rooms::state(client, room)?;
    let created = state
        .iter()
        .find(|e| e.kind == "m.room.create")
        .map_or(0, |e| e.origin_server_ts);
    let history = history::read(client, room, created)?;
    Ok((RoomFacts::from_state(room, &state), history))
}

/// Rooms read at once. Synapse does not rate-limit reads, and each room is several round
/// trips (its state, then its history settings page by page), so a few readers side by
/// side keep ahead of the invites, whose limit is the one that binds.
pub const READERS: usize = 4;

/// Reads and plans rooms as the old account, against what is known of the new one.
pub struct Planner<'a> {
    /// The old account's client (each reader forks its own).
    pub old: &'a online::Client,
    /// The old account.
    pub old_user: &'a str,
    /// The new account.
    pub new_user: &'a str,
    /// The rooms that move.
    pub moving: &'a HashSet<String>,
    /// The rooms the new account is in.
    pub new_joined: &'a HashSet<String>,
    /// The old account's m.direct.
    pub old_direct: &'a DirectMap,
    /// What the new account does with the old account's invites.
    pub invite_rules: &'a InviteRules,
}

impl Planner<'_> {
    /// Reads and plans one room through `client` (the old account's).
    pub fn plan_room(&self, client: &online::Client, room: &str) -> Result<RoomPlan> {
        let (facts, history) = read_room(client, room)?;
        let mut decision = decide(&facts, self.old_user, self.new_user, self.new_joined);
        restricted(&facts, &mut decision, self.new_joined, self.moving);
        self.invite_rules
            .apply(&mut decision, self.old_user, self.new_user);
        Ok(RoomPlan {
            new_membership: facts.membership_of(self.new_user).cloned(),
            decision,
            dm_with: dm_peer(self.old_direct, room, self.old_user),
            history_verdict: history.verdict().into(),
            facts,
            history,
        })
    }

    /// Plans every room of `rooms` on [`READERS`] threads, each with its own fork of the old
    /// account's client; `each` gets each room's index and plan as soon as it is read, in
    /// no particular order. No room is taken up once `stop()` is true.
    pub fn plan_all(
        &self,
        rooms: &[String],
        stop: &(dyn Fn() -> bool + Sync),
        each: &(dyn Fn(usize, Result<RoomPlan>) + Sync),
    ) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let readers: Vec<online::Client> = (0..READERS.min(rooms.len()))
            .map(|_| self.old.fork())
            .collect();
        std::thread::scope(|scope| {
            for client in readers {
                let next = &next;
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= rooms.len() || stop() {
                        break;
                    }
                    each(i, self.plan_room(&client, &rooms[i]));
                });
            }
        });
    }
}

/// The peer the old account's m.direct has for `room`.
pub fn dm_peer(direct: &DirectMap, room: &str, old: &str) -> Option<String> {
    direct
        .entries()
        .find(|(key, rooms)| *key != old && rooms.ids().any(|r| r == room))
        .map(|(key, _)| key.to_owned())
}

/// How long the server's limits make a move take: stock Synapse defaults assumed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Estimate {
    /// Invites into the new account.
    pub invites: usize,
    /// Joins by the new account.
    pub joins: usize,
    /// Of those, joins into rooms the new account's server is not in yet.
    pub remote_joins: usize,
    /// State events the old account sends (power levels, leaves, local invites).
    pub old_events: usize,
    /// Seconds each limiter needs (name, seconds), the binding one first.
    pub limiters: Vec<(String, u64)>,
    /// The expected duration: the stages overlap, so the slowest limiter's time.
    pub seconds: u64,
}

/// Seconds a leaky bucket needs for `n` actions (`burst` free, then one per `1/rate` s).
fn bucket(n: usize, rate: f64, burst: usize) -> u64 {
    (n.saturating_sub(burst) as f64 / rate).ceil() as u64
}

/// The estimate for `plans`, with the stock limits of `synapse/config/ratelimiting.py`.
pub fn estimate(plans: &[RoomPlan], old: &str, new: &str, leave: bool) -> Estimate {
    let moving: Vec<&RoomPlan> = plans
        .iter()
        .filter(|p| p.decision.blockers.is_empty())
        .collect();
    let with = |step: fn(&Step) -> bool| -> Vec<&RoomPlan> {
        moving
            .iter()
            .copied()
            .filter(|p| p.decision.steps.iter().any(step))
            .collect()
    };
    let invites = with(|s| matches!(s, Step::Invite)).len();
    let joining = with(|s| matches!(s, Step::Join { .. }));
    let powers = with(|s| matches!(s, Step::Power { .. })).len();
    let new_server = server_of(new);
    let remote_joins = joining
        .iter()
        .filter(|p| !p.facts.joined().any(|u| server_of(u) == new_server))
        .count();
    let local_invites = if server_of(old) == new_server {
        invites
    } else {
        0
    };
    let leaves = if leave { moving.len() } else { 0 };
    let old_events = powers + local_invites + leaves;
    let limiters = limiters(invites, remote_joins, joining.len(), old_events);
    Estimate {
        invites,
        joins: joining.len(),
        remote_joins,
        old_events,
        seconds: limiters[0].1,
        limiters,
    }
}

/// Seconds each of Synapse's stock limiters needs, the binding one first.
fn limiters(
    invites: usize,
    remote_joins: usize,
    joins: usize,
    old_events: usize,
) -> Vec<(String, u64)> {
    let mut limiters = vec![
        ("rc_invites.per_user (invites into the new account: 5, then one per 333 s)".to_owned(), bucket(invites, 0.003, 5)),
        ("rc_joins.remote (the new account's joins of rooms its server is not in: 10, then one per 100 s)".to_owned(), bucket(remote_joins, 0.01, 10)),
        ("rc_joins.local (every join: 10, then one per 10 s)".to_owned(), bucket(joins, 0.1, 10)),
        ("rc_message (the old account's power-level, invite and leave events: 10, then one per 5 s)".to_owned(), bucket(old_events, 0.2, 10)),
    ];
    limiters.sort_by_key(|l| std::cmp::Reverse(l.1));
    limiters
}

/// The plan of a whole move.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// The old account.
    pub old: String,
    /// The new account.
    pub new: String,
    /// Each room, in the rooms file's order.
    pub rooms: Vec<RoomPlan>,
    /// How long it will take.
    pub estimate: Estimate,
    /// Rooms whose image packs the old account enabled (`m.image_pack.rooms`) that the new
    /// account is not in and that do not move: their packs stay behind.
    pub image_packs_left_behind: Vec<String>,
}

/// Plans the move of `rooms` (read-only: nothing is sent but reads).
pub fn plan(pair: &Pair<'_>, rooms: &[String], leave: bool, events: &dyn Events) -> Result<Plan> {
    let rules = InviteRules::read(pair.new.client(), pair.new.user_id(), pair.old.user_id())?;
    plan_with(pair, rooms, leave, &rules, events)
}

/// [`plan`], with the new account's invite rules as given (a move that would open them
/// first plans as they would then be).
pub fn plan_with(
    pair: &Pair<'_>,
    rooms: &[String],
    leave: bool,
    invite_rules: &InviteRules,
    events: &dyn Events,
) -> Result<Plan> {
    pair.distinct()?;
    let new_joined: HashSet<String> = rooms::joined_rooms(pair.new.client())?
        .into_iter()
        .collect();
    let old_direct = online::direct::download(pair.old.client(), pair.old.user_id())?;
    let moving: HashSet<String> = rooms.iter().cloned().collect();
    let planner = Planner {
        old: pair.old.client(),
        old_user: pair.old.user_id(),
        new_user: pair.new.user_id(),
        moving: &moving,
        new_joined: &new_joined,
        old_direct: &old_direct,
        invite_rules,
    };
    let plans = planner.plan_in_order(rooms, events)?;
    let packs = crate::account_data::newer::image_pack_rooms(pair, &moving, true)?;
    Ok(Plan {
        old: pair.old.user_id().to_owned(),
        new: pair.new.user_id().to_owned(),
        estimate: estimate(&plans, pair.old.user_id(), pair.new.user_id(), leave),
        rooms: plans,
        image_packs_left_behind: packs.left_behind,
    })
}

impl Planner<'_> {
    /// Every room planned (readers side by side), in the order of `rooms`.
    fn plan_in_order(&self, rooms: &[String], events: &dyn Events) -> Result<Vec<RoomPlan>> {
        let total = rooms.len() as u64;
        let read: Vec<Mutex<Option<Result<RoomPlan>>>> =
            rooms.iter().map(|_| Mutex::new(None)).collect();
        let done = AtomicU64::new(0);
        stage(events, Stage::ReadRooms, Some(total), || {
            self.plan_all(rooms, &|| false, &|i, plan| {
                *read[i].lock().expect("plan lock") = Some(plan);
                events.emit(Event::Progress {
                    stage: Stage::ReadRooms,
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                });
            })
        });
        read.into_iter()
            .map(|p| {
                p.into_inner()
                    .expect("plan lock")
                    .expect("every room is read")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use online::rooms::StateEvent;
    use serde_json::{json, Value};

    fn room(version: &str, join_rule: &str, pl: Value, members: &[(&str, &str)]) -> RoomFacts {
        let mut state = vec![
            json!({"type": "m.room.create", "state_key": "", "sender": "@old:org", "content": {"room_version": version}}),
            json!({"type": "m.room.join_rules", "state_key": "", "sender": "@old:org", "content": {"join_rule": join_rule}}),
            json!({"type": "m.room.power_levels", "state_key": "", "sender": "@old:org", "content": pl}),
        ];
        for (u, m) in members {
            state.push(json!({"type": "m.room.member", "state_key": u, "sender": u, "content": {"membership": m}}));
        }
        let state: Vec<StateEvent> = state
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        RoomFacts::from_state("!r", &state)
    }

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    #[test]
    fn a_v12_creator_invites_joins_and_gives_the_highest_level() {
        let f = room(
            "12",
            "invite",
            json!({"users": {"@mod:org": 50}}),
            &[("@old:org", "join")],
        );
        let Decision {
            old_power: power,
            steps,
            blockers,
            target,
            power_not_copied: not_copied,
            notes,
        } = decide(&f, "@old:org", "@new:me", &none());
        assert_eq!(power, Power::Creator);
        assert!(blockers.is_empty());
        assert_eq!(target, Some(100));
        assert!(not_copied.is_none());
        assert_eq!(steps[0], Step::Invite);
        assert!(matches!(&steps[1], Step::Join { via } if via == &["org"]));
        assert_eq!(steps[2], Step::Power { level: 100 });
        assert!(
            notes[0].contains("creator status cannot be passed on"),
            "{notes:?}"
        );
    }

    #[test]
    fn public_rooms_need_no_invite_and_a_partial_room_keeps_the_old_account() {
        let f = room(
            "10",
            "public",
            json!({"users": {"@old:org": 50, "@admin:org": 100}, "events": {"m.room.power_levels": 100}}),
            &[("@old:org", "join")],
        );
        let Decision {
            steps,
            blockers,
            target,
            power_not_copied: not_copied,
            notes,
            ..
        } = decide(&f, "@old:org", "@new:me", &none());
        assert!(blockers.is_empty());
        assert_eq!(target, Some(50));
        assert!(!steps.contains(&Step::Invite));
        assert!(!steps.iter().any(|s| matches!(s, Step::Power { .. })));
        assert_eq!(
            not_copied.as_deref(),
            Some("power not copied: needs 100, has 50")
        );
        assert!(notes[0].contains("the old account stays"));
    }

    #[test]
    fn blockers_say_why_and_what_to_do() {
        let f = room(
            "10",
            "invite",
            json!({"invite": 50}),
            &[("@old:org", "join")],
        );
        let Decision {
            steps, blockers, ..
        } = decide(&f, "@old:org", "@new:me", &none());
        assert!(steps.is_empty());
        assert_eq!(blockers[0].kind, BlockerKind::CannotInvite);
        assert_eq!(
            blockers[0].reason,
            "the old account cannot invite: needs power 50, has 0"
        );
        let f = room(
            "10",
            "invite",
            json!({}),
            &[("@old:org", "join"), ("@new:me", "ban")],
        );
        let Decision { blockers, .. } = decide(&f, "@old:org", "@new:me", &none());
        assert_eq!(blockers[0].kind, BlockerKind::NewBanned);
        // Restricted: joinable without an invite when the new account is in an allowed room.
        let mut f = room("10", "restricted", json!({}), &[("@old:org", "join")]);
        f.allow_rooms = vec!["!space".into()];
        let joined: HashSet<String> = ["!space".to_owned()].into();
        let Decision { steps, .. } = decide(&f, "@old:org", "@new:me", &joined);
        assert!(!steps.contains(&Step::Invite));
        let Decision { steps, .. } = decide(&f, "@old:org", "@new:me", &none());
        assert!(steps.contains(&Step::Invite));
        // Already invited: no second invite.
        let f = room(
            "10",
            "invite",
            json!({}),
            &[("@old:org", "join"), ("@new:me", "invite")],
        );
        let Decision { steps, .. } = decide(&f, "@old:org", "@new:me", &none());
        assert!(
            !steps.contains(&Step::Invite) && steps.iter().any(|s| matches!(s, Step::Join { .. }))
        );
    }

    /// A restricted room: a note when the room that lets its members in moves too, advice
    /// to run again when the old account cannot invite, and a warning when it stays.
    #[test]
    fn a_restricted_room_says_what_its_allowed_rooms_mean_for_the_move() {
        let mut f = room("10", "restricted", json!({}), &[("@old:org", "join")]);
        f.allow_rooms = vec!["!space".into(), "!team".into()];
        let plan = |f: &RoomFacts, joined: &HashSet<String>, moving: &[&str]| {
            let mut d = decide(f, "@old:org", "@new:me", joined);
            let moving: HashSet<String> = moving.iter().map(|r| r.to_string()).collect();
            restricted(f, &mut d, joined, &moving);
            d
        };
        let d = plan(&f, &none(), &["!room", "!team"]);
        assert!(d.steps.contains(&Step::Invite), "invited this run");
        assert_eq!(
            d.notes,
            [
                "members of !team may join without an invite; it moves too, so the new account \
              will be one of them"
            ]
        );
        let d = plan(&f, &none(), &["!room"]);
        assert!(d.steps.contains(&Step::Invite));
        assert!(
            d.notes[0].starts_with("only members of !space, !team may join without an invite")
                && d.notes[0].contains("add one of them to the rooms file"),
            "{:?}",
            d.notes
        );
        // Already a member of an allowed room: nothing to say, no invite.
        let d = plan(&f, &["!space".to_owned()].into(), &["!room"]);
        assert!(d.notes.is_empty() && !d.steps.contains(&Step::Invite));
        // The old account cannot invite: blocked, and told it can join after the space.
        let mut f = room(
            "10",
            "restricted",
            json!({"invite": 50}),
            &[("@old:org", "join")],
        );
        f.allow_rooms = vec!["!space".into()];
        let d = plan(&f, &none(), &["!room", "!space"]);
        assert_eq!(d.blockers[0].kind, BlockerKind::CannotInvite);
        assert!(
            d.blockers[0]
                .advice
                .ends_with("or, once !space (which moves too) has moved, run again: its members may join this room without an invite"),
            "{}",
            d.blockers[0].advice
        );
        // Not restricted, or restricted to no room: nothing.
        let mut f = room("10", "restricted", json!({}), &[("@old:org", "join")]);
        f.allow_rooms.clear();
        assert!(plan(&f, &none(), &[]).notes.is_empty());
    }

    #[test]
    fn the_estimate_is_the_slowest_bucket_at_stock_limits() {
        assert_eq!(bucket(5, 0.003, 5), 0);
        assert_eq!(bucket(300, 0.003, 5), 98_334);
        assert_eq!(bucket(300, 0.01, 10), 29_000);
    }
}
