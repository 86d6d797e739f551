//! Text that came from outside (a homeserver, a room's state, a file someone else wrote) on
//! its way to a terminal or a page. An escape sequence in it could rewrite what the user
//! sees (clear the screen, retitle the window, write the clipboard, hide a link), and a
//! bidirectional control could reorder a line on screen ("Trojan source"). So such text is
//! shown with control characters, bidirectional controls and invisible format characters
//! escaped, and a type, [`Untrusted`], carries it so that no print site can forget.

use std::fmt;

/// True for the format characters that change how text around them is shown: the
/// bidirectional marks, embeddings, overrides and isolates, invisible operators and the
/// byte order mark. (Zero-width joiners and tag characters, which emoji need, are kept.)
pub fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_hidden_format(c)
}

/// `text` with its control characters, bidirectional controls and hidden format characters
/// shown escaped (`\u{1b}`, `\u{202e}`): safe on a terminal.
pub fn printable(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if needs_escape(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Text from outside: its [`Display`](fmt::Display) is [`printable`], so it cannot reach a
/// terminal raw; [`Untrusted::as_str`] gives the text as it came (for requests, JSON, and
/// comparisons). Serialised as the plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Untrusted(String);

impl Untrusted {
    /// Wraps text from outside.
    pub fn new(text: impl Into<String>) -> Self {
        Untrusted(text.into())
    }

    /// The text as it came.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(&self.0))
    }
}

impl fmt::Debug for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<String> for Untrusted {
    fn from(s: String) -> Self {
        Untrusted(s)
    }
}

impl From<&str> for Untrusted {
    fn from(s: &str) -> Self {
        Untrusted(s.to_owned())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Untrusted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Untrusted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Untrusted)
    }
}

/// Implements `schemars::JsonSchema` for a type that is serialised as a plain string (its
/// schema is a string's, inline): for types whose `Serialize` writes their words.
#[cfg(feature = "schemars")]
#[macro_export]
macro_rules! string_schema {
    ($t:ty) => {
        impl ::schemars::JsonSchema for $t {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                "string".into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(generator: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                <String as ::schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}

#[cfg(feature = "schemars")]
string_schema!(Untrusted);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_rewrite_a_terminal_line_and_keeps_the_rest() {
        assert_eq!(printable("plain ünïcode 👩‍👩‍👧"), "plain ünïcode 👩‍👩‍👧");
        assert_eq!(
            printable("joined\u{1b}]0;PWNED\u{7}\u{1b}[2J"),
            "joined\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J"
        );
        assert_eq!(
            printable("!room\u{202e}txt.exe\u{2066}"),
            "!room\\u{202e}txt.exe\\u{2066}"
        );
        assert_eq!(format!("{}", Untrusted::new("a\u{9b}b")), "a\\u{9b}b");
        assert_eq!(Untrusted::new("a\u{9b}b").as_str(), "a\u{9b}b");
    }
}
