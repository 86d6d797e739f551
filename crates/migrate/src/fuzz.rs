//! The checks of the fuzz targets over what servers and files send (feature `testkit`), as
//! functions: `fuzz/fuzz_targets/*.rs` call them on arbitrary bytes, and the test suite
//! replays the committed seeds (`fuzz/seeds/<target>/`) through them, as
//! `key_export::testkit::fuzz` does for the key file. Each goes through the function the
//! product calls, and checks more than "no panic": what must hold of the result.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::Path;

use m_direct::DirectMap;
use online::backup::BackupKey;
use online::membership::Membership;
use online::rooms::{self, Page};
use zeroize::Zeroizing;

use crate::journal::Entry;
use crate::plan_file::MovePlan;
use crate::rooms::facts::{server_of, Power, RoomFacts, CREATOR_POWER_VERSIONS};
use crate::rooms::history::{self, History};
use crate::rooms::plan::{decide, Step};
use crate::rooms::rooms_file;

/// The recovery key the backup seeds were sealed to (a test key: it opens nothing else).
pub const BACKUP_KEY: &str = "EsT3pB8qbMAornHsoC3SWb1pAD8881Y7tZW25r5ima4UFrXs";

/// A target's check: panics when what must hold does not, and says whether the product read
/// the input or refused it (the replay test wants the recorded answers read, not refused).
pub type Check = fn(&[u8]) -> Verdict;

/// What the product did with a target's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It read the input, and the checks of what it read held.
    Read,
    /// It refused the input (with an error, not a panic).
    Refused,
}

/// Every target, by the name of its folder of seeds and of its fuzz target.
pub const TARGETS: &[(&str, Check)] = &[
    ("room_state", room_state),
    ("messages", messages),
    ("backup_stream", backup_stream),
    ("metadata", metadata),
    ("m_direct", m_direct),
    ("rooms_file", rooms_file),
    ("plan_file", plan_file),
    ("journal", journal),
];

/// A `/state` answer → the room's facts → the plan's decision for the old account (the
/// create event's sender) and the new one (the first other member): never a step the state
/// does not allow, never a join into a room the new account may not enter, a creator only
/// where the room version makes one.
pub fn room_state(data: &[u8]) -> Verdict {
    let Ok(state) = rooms::parse_state(data, "fuzz") else {
        return Verdict::Refused;
    };
    let old = state
        .iter()
        .find(|e| e.kind == "m.room.create")
        .map_or("@old:old.example", |e| e.sender.as_str());
    let new = state
        .iter()
        .find(|e| e.kind == "m.room.member" && e.state_key != old)
        .map_or("@new:new.example", |e| e.state_key.as_str());
    let facts = RoomFacts::from_state("!fuzz:old.example", &state);
    check_decision(&facts, old, new);
    Verdict::Read
}

fn check_decision(facts: &RoomFacts, old: &str, new: &str) {
    let d = decide(facts, old, new, &HashSet::new());
    assert!(
        d.blockers.is_empty() || d.steps.is_empty(),
        "a blocked room has no steps"
    );
    let must_block = facts.membership_of(old) != Some(&Membership::Join)
        || facts.membership_of(new) == Some(&Membership::Ban)
        || !facts.acl_allows(server_of(new))
        || facts.tombstone.is_some();
    assert!(!must_block || !d.blockers.is_empty(), "{d:?}");
    if !facts.creators.is_empty() {
        assert!(CREATOR_POWER_VERSIONS.contains(&facts.version.as_str()));
    }
    let old_power = facts.power_of(old);
    let ceiling = match old_power {
        Power::Creator => facts.highest_level(),
        Power::Level(l) => l,
    };
    for step in &d.steps {
        match step {
            Step::Power { level } => {
                assert!(
                    *level <= ceiling,
                    "power {level} above the old account's {ceiling}"
                );
                assert!(old_power.at_least(facts.needed_for_state("m.room.power_levels")));
            }
            Step::Invite => assert!(old_power.at_least(facts.needed_to_invite())),
            _ => {}
        }
    }
}

/// A `/messages` page of history-visibility changes → the periods and the verdict: at most
/// one period a change (and the implicit one), the last in force, settings shown as
/// printable text, a verdict whose length grows with the periods only.
pub fn messages(data: &[u8]) -> Verdict {
    let Ok(page) = serde_json::from_slice::<Page>(data) else {
        return Verdict::Refused;
    };
    let mut changes: Vec<_> = page.chunk.iter().filter_map(history::change).collect();
    let n = changes.len();
    changes.reverse();
    let created = changes.first().map_or(0, |c| c.0.saturating_sub(1));
    let History { periods } = history::periods_from(created, changes);
    assert!(periods.len() <= n + 1);
    if let Some(last) = periods.last() {
        assert_eq!(last.to_ms, None, "the last period is in force");
    }
    for p in &periods {
        assert!(
            !p.visibility.chars().any(char::is_control),
            "{:?}",
            p.visibility
        );
    }
    let verdict = History {
        periods: periods.clone(),
    }
    .verdict();
    assert!(verdict.len() <= 300 * (periods.len() + 1) + 40 * data.len().min(1 << 20));
    Verdict::Read
}

/// The whole key-backup answer, read as it arrives → the same sessions, rooms and skipped
/// entries whatever the network's chunking (the chunk size comes from the first byte).
pub fn backup_stream(data: &[u8]) -> Verdict {
    let Some((&first, body)) = data.split_first() else {
        return Verdict::Refused;
    };
    let key = BackupKey::parse(BACKUP_KEY).expect("the seeds' key");
    let read = |reader: &mut dyn Read| {
        let mut entries: Vec<Zeroizing<String>> = Vec::new();
        let done = online::backup::download::read_whole(reader, &key, &|_| true, &mut |got| {
            entries.extend(got);
            Ok(())
        });
        done.map(|d| (d, entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()))
            .map_err(|e| e.to_string())
    };
    let whole = read(&mut &body[..]);
    let chunked = read(&mut Chunked::new(body, 1 + usize::from(first % 64)));
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            Verdict::Read
        }
        (Err(_), Err(_)) => Verdict::Refused,
        _ => panic!("chunking changed the verdict: {whole:?} vs {chunked:?}"),
    }
}

/// A reader that hands out at most `size` bytes at a time.
struct Chunked<'a> {
    data: &'a [u8],
    size: usize,
}

impl<'a> Chunked<'a> {
    fn new(data: &'a [u8], size: usize) -> Self {
        Chunked { data, size }
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What a homeserver says of where to log in, for how long, and what it speaks. The first
/// byte picks the input (its low seven bits modulo 4; its top bit puts the homeserver on
/// loopback): OAuth 2.0 metadata taken only when every endpoint is https (plain http only on
/// loopback, for a homeserver on loopback) and of the issuer's origin; a `.well-known` taken
/// only when it names an https homeserver; any `expires_in` a safe lifetime; a `/versions`
/// answer taken only with a version this tool can use, and read as it was written.
pub fn metadata(data: &[u8]) -> Verdict {
    let Some((&kind, body)) = data.split_first() else {
        return Verdict::Refused;
    };
    match (kind & 0x7f) % 4 {
        0 => auth_metadata(body, kind & 0x80 != 0),
        1 => {
            let hs = match online::Homeserver::from_well_known("example.org", body) {
                Ok(hs) => hs,
                Err(e) => return refused_printably(&e),
            };
            assert_eq!(hs.url().scheme(), "https");
            Verdict::Read
        }
        2 => token_lifetime(body),
        _ => versions(body),
    }
}

fn auth_metadata(body: &[u8], loopback: bool) -> Verdict {
    let Ok(meta) = serde_json::from_slice::<online::login::AuthMetadata>(body) else {
        return Verdict::Refused;
    };
    let homeserver = match loopback {
        true => url::Url::parse("http://127.0.0.1:8008/").unwrap(),
        false => url::Url::parse("https://matrix.example.org/").unwrap(),
    };
    if let Err(e) = meta.check(&homeserver) {
        return refused_printably(&e);
    }
    let issuer = url::Url::parse(&meta.issuer).expect("checked");
    let endpoints = [&meta.authorization_endpoint, &meta.token_endpoint];
    for url in endpoints
        .into_iter()
        .chain([&issuer])
        .chain(&meta.registration_endpoint)
    {
        let local = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        assert!(
            url.scheme() == "https" || (url.scheme() == "http" && loopback && local),
            "{url}"
        );
    }
    for url in endpoints {
        assert_eq!(url.origin(), issuer.origin());
    }
    Verdict::Read
}

/// A refusal whose message, server text included, is safe on a terminal as it stands.
fn refused_printably(e: &dyn std::fmt::Display) -> Verdict {
    let message = e.to_string();
    assert_eq!(matrix_ids::text::printable(&message), message, "escaped");
    Verdict::Refused
}

fn token_lifetime(body: &[u8]) -> Verdict {
    #[derive(serde::Deserialize)]
    struct Granted {
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let Ok(g) = serde_json::from_slice::<Granted>(body) else {
        return Verdict::Refused;
    };
    let life = online::auth::lifetime(g.expires_in.map(std::time::Duration::from_secs));
    assert!(life.is_none_or(|l| l <= online::auth::MAX_LIFETIME && !l.is_zero()));
    let _ = online::auth::expiry(life);
    Verdict::Read
}

/// A `/versions` answer: refused printably, or read with a version from v1.1 on; every
/// `vX.Y` it lists is spoken, and every unstable feature is offered exactly when it is `true`.
fn versions(body: &[u8]) -> Verdict {
    use online::versions::{SpecVersion, Versions};
    let read = match Versions::parse(body) {
        Ok(read) => read,
        Err(e) => return refused_printably(&e),
    };
    assert!(read.newest() >= SpecVersion::OLDEST);
    #[derive(serde::Deserialize)]
    struct Raw {
        versions: Vec<String>,
        #[serde(default)]
        unstable_features: BTreeMap<String, serde_json::Value>,
    }
    // Typed as the reader is: fields it ignores may hold what a `Value` refuses.
    let raw: Raw = serde_json::from_slice(body).expect("it parsed");
    for name in &raw.versions {
        if let Some(v) = SpecVersion::parse(name) {
            assert!(read.speaks(v) && v <= read.newest(), "{name}");
            assert_eq!(v.to_string(), *name, "a version name reads back as written");
        }
    }
    for (feature, on) in &raw.unstable_features {
        assert_eq!(
            read.offers(feature),
            on.as_bool() == Some(true),
            "{feature}"
        );
    }
    Verdict::Read
}

/// Two `m.direct` contents (split at the first NUL) → build, merge and check: the outputs
/// are maps that read back as they were written, the merge is commutative and idempotent
/// on the rooms each user gets, and a checked map has nothing left to fix.
pub fn m_direct(data: &[u8]) -> Verdict {
    let mut parts = data.splitn(2, |&b| b == 0);
    let (a, b) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let parse = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| DirectMap::parse(t).ok())
    };
    let (Some(a), Some(b)) = (parse(a), parse(b).or_else(|| Some(DirectMap::new()))) else {
        return Verdict::Refused;
    };
    let (ab, _) = m_direct::merge::merge([&a, &b]);
    let (ba, _) = m_direct::merge::merge([&b, &a]);
    assert_eq!(as_sets(&ab), as_sets(&ba), "merge is commutative");
    let (aa, _) = m_direct::merge::merge([&a, &a]);
    assert_eq!(
        as_sets(&aa),
        as_sets(&m_direct::merge::merge([&a]).0),
        "and idempotent"
    );
    for map in [&ab, &aa] {
        let again = DirectMap::parse(&map.to_pretty_json()).expect("a merged map reads back");
        assert_eq!(&again, map);
    }
    let (_, clean) = m_direct::check::check(&ab, Some("@me:example.org"));
    let (left, _) = m_direct::check::check(&clean, Some("@me:example.org"));
    assert!(!left.iter().any(|f| f.is_fixable()), "{left:?}");
    let accounts = m_direct::build::Accounts {
        old: "@me:example.org".into(),
        new: "@me:new.example".into(),
    };
    let moving: HashSet<String> = ab
        .entries()
        .flat_map(|(_, r)| r.ids().map(str::to_owned))
        .collect();
    let (built, _) = m_direct::build::build(&ab, &moving, &accounts);
    DirectMap::parse(&built.to_pretty_json()).expect("a built map reads back");
    Verdict::Read
}

fn as_sets(map: &DirectMap) -> BTreeMap<String, BTreeSet<String>> {
    map.entries()
        .map(|(user, rooms)| (user.clone(), rooms.ids().map(str::to_owned).collect()))
        .collect()
}

/// The rooms file → the rooms, or an error naming a line of the file; the rooms, written
/// one a line, read back as the same rooms.
pub fn rooms_file(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    match rooms_file::parse(text, "rooms.txt") {
        Ok(rooms) => {
            let written: String = rooms.iter().map(|r| format!("{r}\n")).collect();
            assert_eq!(
                rooms_file::parse(&written, "again").expect("reads back"),
                rooms
            );
            Verdict::Read
        }
        Err(e) => {
            assert!(e.line <= text.lines().count().max(1), "line {}", e.line);
            Verdict::Refused
        }
    }
}

/// The plan file (TOML) → the plan, or an error naming a line of the file; a plan written
/// back as TOML reads as the same plan.
pub fn plan_file(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    let (path, base) = (Path::new("/plans/move.toml"), Path::new("/plans"));
    match MovePlan::parse(text, path, base) {
        Ok(plan) => {
            let written = toml::to_string(&plan).expect("a plan writes as TOML");
            let again = MovePlan::parse(&written, path, base).expect("and reads back");
            assert_eq!(again, plan);
            Verdict::Read
        }
        Err(crate::plan_file::PlanError::Invalid { line, .. }) => {
            assert!(
                (1..=text.lines().count() + 1).contains(&line),
                "line {line}"
            );
            Verdict::Refused
        }
        Err(_) => Verdict::Refused,
    }
}

/// The journal (JSON lines, cut anywhere) → its entries, or an error naming a line; each
/// entry written again reads as the same entry.
pub fn journal(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    match crate::journal::entries(Path::new("fuzz.jsonl"), text) {
        Ok((entries, complete)) => {
            assert!(complete <= text.len());
            for e in entries {
                let line = serde_json::to_string(&e).expect("entries serialise");
                assert_eq!(
                    serde_json::from_str::<Entry>(&line).expect("and read back"),
                    e
                );
            }
            Verdict::Read
        }
        Err(crate::journal::JournalError::Corrupt { line, .. }) => {
            assert!((1..=text.lines().count()).contains(&line), "line {line}");
            Verdict::Refused
        }
        Err(_) => Verdict::Refused,
    }
}
