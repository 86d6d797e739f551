//! What a room's current state says about a move: its version and creators, who may do
//! what (power levels), how one gets in (join rule), whether the new account's server may
//! take part at all (`m.federate`, the server ACL), whether the room was replaced.

use online::membership::Membership;
use std::collections::BTreeMap;

use online::rooms::StateEvent;
use serde::Serialize;
use serde_json::Value;

/// Room versions where the creators have unlimited power and must not appear in the power
/// levels' `users` (MSC4289). A table, not "version ≥ 12": versions are names.
pub const CREATOR_POWER_VERSIONS: &[&str] = &["12", "org.matrix.hydra.11", "org.matrix.msc4242.12"];

/// A user's power in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "level")]
pub enum Power {
    /// A creator of a room version where creators have unlimited power.
    Creator,
    /// A level.
    Level(i64),
}

impl Power {
    /// The level, a creator's counted as unlimited.
    pub fn at_least(self, level: i64) -> bool {
        match self {
            Power::Creator => true,
            Power::Level(l) => l >= level,
        }
    }
}

impl std::fmt::Display for Power {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Power::Creator => f.write_str("creator"),
            Power::Level(l) => write!(f, "{l}"),
        }
    }
}

/// The facts of one room, read from its current state.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RoomFacts {
    /// The room ID.
    pub room_id: String,
    /// Its name (`m.room.name`, else its canonical alias), control characters removed.
    pub name: Option<String>,
    /// The room version (`"1"` when the create event names none).
    pub version: String,
    /// True in a room version where creators have unlimited power.
    pub creator_power: bool,
    /// The creators (creator-power versions only): the create event's sender and its
    /// `additional_creators`.
    pub creators: Vec<String>,
    /// The server that created it.
    pub origin_server: String,
    /// A space (`type: m.space`).
    pub is_space: bool,
    /// Its rooms, when it is a space (`m.space.child` with a `via`).
    pub children: Vec<String>,
    /// `public`, `invite`, `knock`, `restricted`, `knock_restricted`, `private`.
    pub join_rule: String,
    /// The rooms whose members may join without an invite (restricted rooms).
    pub allow_rooms: Vec<String>,
    /// Encrypted (`m.room.encryption` present).
    pub encrypted: bool,
    /// The history visibility in force now (`shared` when unset).
    pub history_visibility: String,
    /// `m.federate` of the create event (true when unset).
    pub federate: bool,
    /// The replacement room of a tombstoned room.
    pub tombstone: Option<String>,
    /// The server ACL's content, when there is one.
    #[serde(skip)]
    pub server_acl: Option<Value>,
    /// The power-levels content (empty object when the room has none).
    #[serde(skip)]
    pub power_levels: Value,
    /// Members and their membership.
    #[serde(skip)]
    pub members: BTreeMap<String, Membership>,
}

/// A room's state, read by kind.
struct State<'a>(&'a [StateEvent]);

impl<'a> State<'a> {
    /// The state event of `kind` with an empty state key.
    fn find(&self, kind: &str) -> Option<&'a StateEvent> {
        self.0
            .iter()
            .find(|e| e.kind == kind && e.state_key.is_empty())
    }

    /// Its content.
    fn content(&self, kind: &str) -> Option<&'a Value> {
        self.find(kind).map(|e| &e.content)
    }

    /// The room's name, else its canonical alias, cleaned for showing.
    fn name(&self) -> Option<String> {
        text(self.content("m.room.name"), "name")
            .filter(|n| !n.trim().is_empty())
            .or_else(|| text(self.content("m.room.canonical_alias"), "alias"))
            .map(|n| clean(&n))
    }

    /// Members and their membership.
    fn members(&self) -> BTreeMap<String, Membership> {
        self.0
            .iter()
            .filter(|e| e.kind == "m.room.member")
            .filter_map(|e| {
                let m = e.content.get("membership")?.as_str()?;
                Some((e.state_key.clone(), Membership::parse(m)))
            })
            .collect()
    }

    /// A space's rooms: its `m.space.child` events with a `via`.
    fn children(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|e| e.kind == "m.space.child")
            .filter(|e| {
                e.content
                    .get("via")
                    .and_then(Value::as_array)
                    .is_some_and(|v| !v.is_empty())
            })
            .map(|e| e.state_key.clone())
            .collect()
    }
}

/// A text field of some content.
fn text(content: Option<&Value>, field: &str) -> Option<String> {
    content
        .and_then(|c| c.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The creators of a room whose version gives them power (the create event's sender and
/// its `additional_creators`); none in older versions.
fn creators(create: Option<&Value>, sender: &str, creator_power: bool) -> Vec<String> {
    if !creator_power {
        return Vec::new();
    }
    let mut creators = vec![sender.to_owned()];
    if let Some(Value::Array(more)) = create.and_then(|c| c.get("additional_creators")) {
        creators.extend(more.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    creators
}

/// The rooms whose members may join a restricted room.
fn allow_rooms(join_rules: Option<&Value>) -> Vec<String> {
    let Some(allow) = join_rules
        .and_then(|c| c.get("allow"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    allow
        .iter()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("m.room_membership"))
        .filter_map(|a| a.get("room_id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

impl RoomFacts {
    /// Reads the facts from a room's state.
    pub fn from_state(room_id: &str, state: &[StateEvent]) -> Self {
        let st = State(state);
        let create = st.content("m.room.create");
        let version = text(create, "room_version").unwrap_or_else(|| "1".into());
        let creator_power = CREATOR_POWER_VERSIONS.contains(&version.as_str());
        let create_sender = st
            .find("m.room.create")
            .map(|e| e.sender.clone())
            .unwrap_or_default();
        let join_rules = st.content("m.room.join_rules");
        RoomFacts {
            room_id: room_id.to_owned(),
            name: st.name(),
            creator_power,
            creators: creators(create, &create_sender, creator_power),
            origin_server: server_of(&create_sender).to_owned(),
            is_space: text(create, "type").as_deref() == Some("m.space"),
            children: st.children(),
            join_rule: text(join_rules, "join_rule").unwrap_or_else(|| "invite".into()),
            allow_rooms: allow_rooms(join_rules),
            encrypted: st.find("m.room.encryption").is_some(),
            history_visibility: text(
                st.content("m.room.history_visibility"),
                "history_visibility",
            )
            .map(|v| clean(&v))
            .unwrap_or_else(|| "shared".into()),
            federate: create
                .and_then(|c| c.get("m.federate"))
                .and_then(Value::as_bool)
                .unwrap_or(true),
            tombstone: text(st.content("m.room.tombstone"), "replacement_room"),
            server_acl: st.content("m.room.server_acl").cloned(),
            power_levels: st
                .content("m.room.power_levels")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            version,
            members: st.members(),
        }
    }

    fn pl_int(&self, path: &[&str], default: i64) -> i64 {
        let mut v = &self.power_levels;
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return default,
            }
        }
        as_level(v).unwrap_or(default)
    }

    /// A user's power.
    pub fn power_of(&self, user: &str) -> Power {
        if self.creators.iter().any(|c| c == user) {
            return Power::Creator;
        }
        let default = self.pl_int(&["users_default"], 0);
        Power::Level(self.pl_int(&["users", user], default))
    }

    /// The level needed to send a state event of `kind`.
    pub fn needed_for_state(&self, kind: &str) -> i64 {
        let state_default = self.pl_int(&["state_default"], 50);
        self.pl_int(&["events", kind], state_default)
    }

    /// The level needed to invite.
    pub fn needed_to_invite(&self) -> i64 {
        self.pl_int(&["invite"], 0)
    }

    /// The level that stands for a creator's power in `users`: the highest level any user
    /// has or any action needs, and at least 100.
    pub fn highest_level(&self) -> i64 {
        let pl = &self.power_levels;
        let mut top = 100;
        for map in ["users", "events"] {
            if let Some(Value::Object(m)) = pl.get(map) {
                top = m.values().filter_map(as_level).fold(top, i64::max);
            }
        }
        for key in [
            "state_default",
            "events_default",
            "ban",
            "kick",
            "redact",
            "invite",
            "users_default",
        ] {
            if let Some(l) = pl.get(key).and_then(as_level) {
                top = top.max(l);
            }
        }
        top
    }

    /// The level the new account should get for the old account's `power`: the same level,
    /// or for a creator [`RoomFacts::highest_level`]. `None` when there is nothing to give
    /// (no more than the room's default).
    pub fn target_level(&self, power: Power) -> Option<i64> {
        let default = self.pl_int(&["users_default"], 0);
        match power {
            Power::Creator => Some(self.highest_level()),
            Power::Level(l) if l > default => Some(l),
            Power::Level(_) => None,
        }
    }

    /// The membership of `user` in the state read.
    pub fn membership_of(&self, user: &str) -> Option<&Membership> {
        self.members.get(user)
    }

    /// The users joined now.
    pub fn joined(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|(_, m)| **m == Membership::Join)
            .map(|(u, _)| u.as_str())
    }

    /// Up to three servers to join through: `first` (the old account's), then the servers
    /// with the most joined members.
    pub fn via(&self, first: &str) -> Vec<String> {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for u in self.joined() {
            *count.entry(server_of(u)).or_default() += 1;
        }
        let mut servers: Vec<(&str, usize)> = count.into_iter().collect();
        servers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut via = vec![first.to_owned()];
        for (s, _) in servers {
            if via.len() == 3 {
                break;
            }
            if !via.iter().any(|v| v == s) && !s.is_empty() {
                via.push(s.to_owned());
            }
        }
        via
    }

    /// Whether the server ACL lets `server` take part (`true` without an ACL).
    pub fn acl_allows(&self, server: &str) -> bool {
        let Some(acl) = &self.server_acl else {
            return true;
        };
        let host = server_host(server);
        let globs = |field: &str| -> Vec<String> {
            acl.get(field)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let is_ip = host.parse::<std::net::IpAddr>().is_ok()
            || (host.starts_with('[') && host.ends_with(']'));
        if is_ip
            && !acl
                .get("allow_ip_literals")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        {
            return false;
        }
        if globs("deny").iter().any(|g| glob_match(g, host)) {
            return false;
        }
        globs("allow").iter().any(|g| glob_match(g, host))
    }

    /// The other joined member of a two-person room, when there is exactly one.
    pub fn only_other_member(&self, user: &str) -> Option<&str> {
        let mut others = self.joined().filter(|u| *u != user);
        let first = others.next()?;
        others.next().is_none().then_some(first)
    }
}

/// A power level: an integer, or (older rooms) a string holding one.
fn as_level(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The server name of a user ID (`@name:server` → `server`).
pub fn server_of(user: &str) -> &str {
    user.split_once(':').map(|(_, s)| s).unwrap_or("")
}

/// A server name without its port (ACLs match hosts).
fn server_host(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match server.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => server,
    }
}

/// `*` and `?` globs, as server ACLs use them.
fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// Text from a room's state, safe on one line of a terminal or a rooms file.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '#' || matrix_ids::text::is_hidden_format(c) {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, key: &str, sender: &str, content: Value) -> StateEvent {
        serde_json::from_value(
            json!({"type": kind, "state_key": key, "sender": sender, "content": content}),
        )
        .unwrap()
    }

    #[test]
    fn creators_of_v12_have_unlimited_power_and_stand_for_the_highest_level() {
        let state = vec![
            ev(
                "m.room.create",
                "",
                "@a:x",
                json!({"room_version": "12", "additional_creators": ["@b:y"]}),
            ),
            ev(
                "m.room.power_levels",
                "",
                "@a:x",
                json!({"users": {"@c:x": 150}, "events": {"m.room.power_levels": 120}}),
            ),
        ];
        let f = RoomFacts::from_state("!r", &state);
        assert_eq!(f.power_of("@a:x"), Power::Creator);
        assert_eq!(f.power_of("@b:y"), Power::Creator);
        assert_eq!(f.power_of("@c:x"), Power::Level(150));
        assert_eq!(f.power_of("@d:x"), Power::Level(0));
        assert_eq!(f.target_level(Power::Creator), Some(150));
        assert_eq!(f.needed_for_state("m.room.power_levels"), 120);
        assert_eq!(f.needed_for_state("m.room.topic"), 50);
    }

    #[test]
    fn a_v11_creator_is_only_its_level_and_versions_are_names_not_numbers() {
        for v in ["11", "13", "120"] {
            let state = vec![
                ev("m.room.create", "", "@a:x", json!({"room_version": v})),
                ev(
                    "m.room.power_levels",
                    "",
                    "@a:x",
                    json!({"users": {"@a:x": "100"}, "users_default": 0}),
                ),
            ];
            let f = RoomFacts::from_state("!r", &state);
            assert_eq!(f.power_of("@a:x"), Power::Level(100), "version {v}");
        }
        let f = RoomFacts::from_state(
            "!r",
            &[ev(
                "m.room.create",
                "",
                "@a:x",
                json!({"room_version": "org.matrix.hydra.11"}),
            )],
        );
        assert_eq!(f.power_of("@a:x"), Power::Creator);
        assert_eq!(f.target_level(Power::Creator), Some(100));
        assert_eq!(f.target_level(Power::Level(0)), None);
    }

    #[test]
    fn server_acls_match_hosts_with_globs_and_ip_literals() {
        let mk =
            |acl: Value| RoomFacts::from_state("!r", &[ev("m.room.server_acl", "", "@a:x", acl)]);
        let f = mk(json!({"allow": ["*"], "deny": ["*.evil.org", "127.0.0.?"]}));
        assert!(f.acl_allows("good.org"));
        assert!(!f.acl_allows("a.evil.org:8448"));
        assert!(!f.acl_allows("127.0.0.1:45000"));
        assert!(f.acl_allows("127.0.0.10"));
        let f = mk(json!({"allow": ["*"], "allow_ip_literals": false}));
        assert!(!f.acl_allows("127.0.0.1:8448"));
        assert!(!f.acl_allows("[::1]:8448"));
        let f = mk(json!({"allow": ["corp.example"]}));
        assert!(!f.acl_allows("personal.example"));
        assert!(RoomFacts::from_state("!r", &[]).acl_allows("anything"));
    }

    #[test]
    fn defaults_when_the_state_is_sparse() {
        let f = RoomFacts::from_state("!r", &[]);
        assert_eq!(f.join_rule, "invite");
        assert_eq!(f.history_visibility, "shared");
        assert!(f.federate);
        assert_eq!(f.needed_to_invite(), 0);
        assert_eq!(f.needed_for_state("m.room.power_levels"), 50);
        assert_eq!(clean("a\nb#c\u{1b}[2J"), "a b c [2J");
    }
}
