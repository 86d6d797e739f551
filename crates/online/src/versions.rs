//! What a homeserver says it speaks: `GET /_matrix/client/versions`, read once when a
//! session starts. The tool calls the `/v3` endpoints, which came with spec v1.1, so a
//! server that names no version from v1.1 on is refused before anything else is asked of
//! it; later steps ask [`Versions::speaks`] and [`Versions::offers`] before they use what
//! a newer spec or an unstable feature added.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::wire::printable;

/// A stable version of the client-server spec, `vMAJOR.MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion {
    /// The major version (1 since 2021).
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl SpecVersion {
    /// The oldest version this tool works with: the one that brought the `/v3` endpoints.
    pub const OLDEST: SpecVersion = SpecVersion { major: 1, minor: 1 };

    /// `vMAJOR.MINOR` with plain decimal numbers (no sign, no leading zeros but "0", nothing
    /// after); the legacy `r0.x.y` names and anything else are `None`.
    pub fn parse(name: &str) -> Option<SpecVersion> {
        let (major, minor) = name.strip_prefix('v')?.split_once('.')?;
        Some(SpecVersion {
            major: decimal(major)?,
            minor: decimal(minor)?,
        })
    }
}

fn decimal(digits: &str) -> Option<u32> {
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    plain.then(|| digits.parse().ok()).flatten()
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// The versions and unstable features a homeserver announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    stable: BTreeSet<SpecVersion>,
    unstable: BTreeMap<String, bool>,
}

/// How many of a refused answer's version names an error shows.
const SHOWN: usize = 8;

impl Versions {
    /// Reads a `/versions` answer: a `versions` list of strings and an optional
    /// `unstable_features` map of booleans. Names this tool does not know are kept out of
    /// [`Versions::speaks`]; an answer without any version from [`SpecVersion::OLDEST`] on
    /// is refused with [`Error::UnsupportedServer`].
    pub fn parse(answer: &[u8]) -> Result<Versions> {
        #[derive(Deserialize)]
        struct Answer {
            versions: Vec<String>,
            #[serde(default)]
            unstable_features: BTreeMap<String, bool>,
        }
        let answer: Answer = serde_json::from_slice(answer).map_err(|e| Error::BadResponse {
            what: "list the API versions it speaks".into(),
            reason: e.to_string(),
        })?;
        let stable: BTreeSet<_> = answer
            .versions
            .iter()
            .filter_map(|name| SpecVersion::parse(name))
            .collect();
        if stable
            .last()
            .is_none_or(|newest| *newest < SpecVersion::OLDEST)
        {
            return Err(Error::UnsupportedServer {
                oldest: SpecVersion::OLDEST.to_string(),
                said: said(&answer.versions),
            });
        }
        Ok(Versions {
            stable,
            unstable: answer.unstable_features,
        })
    }

    /// Whether the server speaks `version` (names it in `versions`).
    pub fn speaks(&self, version: SpecVersion) -> bool {
        self.stable.contains(&version)
    }

    /// The newest version the server names.
    pub fn newest(&self) -> SpecVersion {
        *self
            .stable
            .last()
            .expect("parse refuses an answer without one")
    }

    /// Whether the server turns `feature` on in `unstable_features` (absent or `false`: no).
    pub fn offers(&self, feature: &str) -> bool {
        self.unstable.get(feature).copied().unwrap_or(false)
    }
}

/// The first few names a server gave, escaped, for an error.
fn said(names: &[String]) -> String {
    if names.is_empty() {
        return "no versions at all".into();
    }
    let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| printable(n)).collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32) -> SpecVersion {
        SpecVersion { major, minor }
    }

    #[test]
    fn version_names_are_read_exactly() {
        assert_eq!(SpecVersion::parse("v1.11"), Some(v(1, 11)));
        assert_eq!(SpecVersion::parse("v1.0"), Some(v(1, 0)));
        assert_eq!(SpecVersion::parse("v10.02"), None);
        for name in [
            "r0.6.1", "v1", "v1.", "v.1", "v+1.2", "v1.2.3", "1.2", "v1.2 ", "V1.2",
        ] {
            assert_eq!(SpecVersion::parse(name), None, "{name}");
        }
        assert_eq!(SpecVersion::parse("v1.99999999999"), None);
        assert!(v(1, 2) < v(1, 10) && v(1, 10) < v(2, 0));
        assert_eq!(v(1, 18).to_string(), "v1.18");
    }

    #[test]
    fn a_synapse_answer_is_read() {
        let answer = br#"{"versions":["r0.0.1","r0.6.1","v1.1","v1.2","v1.11","v1.12"],
            "unstable_features":{"org.matrix.msc3266":true,"org.matrix.msc2666":false}}"#;
        let versions = Versions::parse(answer).unwrap();
        assert!(versions.speaks(v(1, 11)) && !versions.speaks(v(1, 3)));
        assert_eq!(versions.newest(), v(1, 12));
        assert!(versions.offers("org.matrix.msc3266"));
        assert!(!versions.offers("org.matrix.msc2666"));
        assert!(!versions.offers("org.matrix.msc4155"));
    }

    #[test]
    fn a_server_without_v1_1_is_refused_by_name() {
        for (answer, said) in [
            (&br#"{"versions":["r0.6.1","v1.0"]}"#[..], "r0.6.1, v1.0"),
            (br#"{"versions":[]}"#, "no versions at all"),
            (br#"{"versions":["\u001b[2Jv9"]}"#, "\\u{1b}[2Jv9"),
        ] {
            match Versions::parse(answer) {
                Err(Error::UnsupportedServer { said: s, oldest }) => {
                    assert_eq!((s.as_str(), oldest.as_str()), (said, "v1.1"));
                }
                other => panic!("{other:?}"),
            }
        }
        let many: Vec<String> = (0..20).map(|i| format!("r0.{i}.0")).collect();
        let answer = serde_json::to_vec(&serde_json::json!({ "versions": many })).unwrap();
        let Err(Error::UnsupportedServer { said, .. }) = Versions::parse(&answer) else {
            panic!("read");
        };
        assert!(said.ends_with("r0.7.0, and 12 more"), "{said}");
    }

    #[test]
    fn a_malformed_answer_is_a_bad_response() {
        for answer in [
            &br#"{"versions":"v1.1"}"#[..],
            br#"{"versions":["v1.1"],"unstable_features":{"x":"yes"}}"#,
            br#"{}"#,
            b"<html>",
        ] {
            assert!(
                matches!(Versions::parse(answer), Err(Error::BadResponse { .. })),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
