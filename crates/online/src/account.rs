//! An account's own settings: global account data (`m.ignored_user_list`), push rules
//! (`/pushrules`), and its profile (the avatar, every field). One function per request.

use serde_json::{Map, Value};

use crate::client::{parse_value, Body, Client, Method};
use crate::error::{Error, Result};
use crate::wire::{found, printable};

/// The push rule kinds, highest priority first.
pub const RULE_KINDS: [&str; 5] = ["override", "content", "room", "sender", "underride"];

/// Global account data of `kind` (`None` when the account has none).
pub fn account_data(client: &Client, user: &str, kind: &str) -> Result<Option<Value>> {
    let what = format!("read the account data {kind}");
    found(client.call(
        &what,
        Method::Get,
        &["v3", "user", user, "account_data", kind],
        &[],
        Body::None,
    ))?
    .map(|bytes| parse_value(&bytes, &what))
    .transpose()
}

/// Writes global account data of `kind` (replacing it: read and merge first).
pub fn put_account_data(client: &Client, user: &str, kind: &str, content: &Value) -> Result<()> {
    let body = content.to_string();
    client.call(
        &format!("write the account data {kind}"),
        Method::Put,
        &["v3", "user", user, "account_data", kind],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}

/// The account's push rules: the `global` ruleset (an object of the five kinds, each a list
/// of rules, highest priority first).
pub fn push_rules(client: &Client) -> Result<Value> {
    let what = "read the push rules";
    let all = parse_value(
        &client.call(what, Method::Get, &["v3", "pushrules", ""], &[], Body::None)?,
        what,
    )?;
    Ok(all.get("global").cloned().unwrap_or(Value::Null))
}

/// The rule `id` of `kind` in a ruleset as [`push_rules`] returns it.
pub fn find_rule<'a>(rules: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    rules
        .get(kind)?
        .as_array()?
        .iter()
        .find(|r| r.get("rule_id").and_then(Value::as_str) == Some(id))
}

/// Adds the user rule `id` of `kind` with `body` (`actions`, and `conditions` or `pattern`
/// as the kind needs), at the top of its kind.
pub fn put_push_rule(client: &Client, kind: &str, id: &str, body: &Value) -> Result<()> {
    let text = body.to_string();
    client.call(
        &format!("add the {kind} push rule {id}"),
        Method::Put,
        &["v3", "pushrules", "global", kind, id],
        &[],
        Body::Json(text.as_bytes()),
    )?;
    Ok(())
}

/// Enables or disables the rule `id` of `kind`.
pub fn set_push_rule_enabled(client: &Client, kind: &str, id: &str, enabled: bool) -> Result<()> {
    let text = serde_json::json!({ "enabled": enabled }).to_string();
    client.call(
        &format!("enable the {kind} push rule {id}"),
        Method::Put,
        &["v3", "pushrules", "global", kind, id, "enabled"],
        &[],
        Body::Json(text.as_bytes()),
    )?;
    Ok(())
}

/// Sets the actions of the rule `id` of `kind`.
pub fn set_push_rule_actions(client: &Client, kind: &str, id: &str, actions: &Value) -> Result<()> {
    let text = serde_json::json!({ "actions": actions }).to_string();
    client.call(
        &format!("set the actions of the {kind} push rule {id}"),
        Method::Put,
        &["v3", "pushrules", "global", kind, id, "actions"],
        &[],
        Body::Json(text.as_bytes()),
    )?;
    Ok(())
}

/// The user's avatar (`mxc://` URI), when it has one.
pub fn avatar_url(client: &Client, user: &str) -> Result<Option<String>> {
    let what = format!("read the avatar of {user}");
    let Some(bytes) = found(client.call(
        &what,
        Method::Get,
        &["v3", "profile", user, "avatar_url"],
        &[],
        Body::None,
    ))?
    else {
        return Ok(None);
    };
    Ok(parse_value(&bytes, &what)?
        .get("avatar_url")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

/// Sets the user's avatar to `mxc`.
pub fn set_avatar_url(client: &Client, user: &str, mxc: &str) -> Result<()> {
    let body = serde_json::json!({ "avatar_url": mxc }).to_string();
    client.call(
        &format!("set the avatar of {user}"),
        Method::Put,
        &["v3", "profile", user, "avatar_url"],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}

/// Every field of the user's profile (`GET /profile/{user}`: the display name, the avatar
/// and, since spec v1.16, `m.tz` and custom fields); empty when the server has none.
pub fn profile(client: &Client, user: &str) -> Result<Map<String, Value>> {
    let what = format!("read the profile of {user}");
    let Some(bytes) = found(client.call(
        &what,
        Method::Get,
        &["v3", "profile", user],
        &[],
        Body::None,
    ))?
    else {
        return Ok(Map::new());
    };
    match parse_value(&bytes, &what)? {
        Value::Object(fields) => Ok(fields),
        _ => Err(Error::BadResponse {
            what,
            reason: "the profile is not a JSON object".into(),
        }),
    }
}

/// Sets one profile field (spec v1.16: `PUT /profile/{user}/{field}` with `{field: value}`).
pub fn set_profile_field(client: &Client, user: &str, field: &str, value: &Value) -> Result<()> {
    let body = serde_json::json!({ field: value }).to_string();
    client.call(
        &format!("set the profile field {} of {user}", printable(field)),
        Method::Put,
        &["v3", "profile", user, field],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}
