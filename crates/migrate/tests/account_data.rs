//! Copying the ignore list, push rules, profile (fields too), recent emoji and image-pack
//! rooms from an account on the "organisation" Synapse to one on the "personal" Synapse, checked from the new account's side. These
//! tests FAIL, never skip, when the servers are not running.

use std::collections::HashSet;

use migrate::account_data::{self, AccountDataToCopy};
use migrate::rooms::plan::Pair;
use online::account;
use online::rooms;
use online::testkit::server_named;
use serde_json::json;

#[test]
fn ignore_list_push_rules_and_profile_are_merged_into_the_new_account_once() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let (old_user, new_user) = (org.register("old"), personal.register("new"));
    let (old_c, new_c) = (&old_user.client, &new_user.client);
    let moving = old_user.create_room("moving");
    let staying = old_user.create_room("staying");
    // The old account's settings.
    account::put_account_data(
        old_c,
        &old_user.user_id,
        "m.ignored_user_list",
        &json!({"ignored_users": {"@spam:example.org": {}}}),
    )
    .unwrap();
    account::put_push_rule(
        old_c,
        "content",
        "deploys",
        &json!({"pattern": "deploy", "actions": ["notify", {"set_tweak": "highlight"}]}),
    )
    .unwrap();
    account::put_push_rule(old_c, "room", &moving, &json!({"actions": []})).unwrap();
    account::put_push_rule(old_c, "room", &staying, &json!({"actions": []})).unwrap();
    account::set_push_rule_enabled(old_c, "underride", ".m.rule.message", false).unwrap();
    rooms::set_displayname(old_c, &old_user.user_id, "Alice Example").unwrap();
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
    let mxc = old_c.upload_media("image/png", "a.png", png).unwrap();
    account::set_avatar_url(old_c, &old_user.user_id, &mxc).unwrap();
    // What newer clients keep (spec v1.16-v1.19).
    account::set_profile_field(old_c, &old_user.user_id, "m.tz", &json!("Europe/Berlin")).unwrap();
    let pronouns = "org.example.pronouns";
    account::set_profile_field(old_c, &old_user.user_id, pronouns, &json!("she/her")).unwrap();
    account::set_profile_field(old_c, &old_user.user_id, "org.example.team", &json!("ops"))
        .unwrap();
    account::put_account_data(
        old_c,
        &old_user.user_id,
        "m.recent_emoji",
        &json!({"recent_emoji": [{"emoji": "👍", "total": 84}, {"emoji": "😅", "total": 7}]}),
    )
    .unwrap();
    account::put_account_data(
        old_c,
        &old_user.user_id,
        "m.image_pack.rooms",
        &json!({"rooms": {moving.clone(): {"": {}}, staying.clone(): {"stickers": {}}}}),
    )
    .unwrap();
    // What the new account has already.
    account::set_profile_field(new_c, &new_user.user_id, pronouns, &json!("they/them")).unwrap();
    account::put_account_data(
        new_c,
        &new_user.user_id,
        "m.recent_emoji",
        &json!({"recent_emoji": [{"emoji": "👍", "total": 2}]}),
    )
    .unwrap();
    account::put_account_data(
        new_c,
        &new_user.user_id,
        "m.ignored_user_list",
        &json!({"ignored_users": {"@troll:example.org": {}}}),
    )
    .unwrap();

    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let moving_rooms: HashSet<String> = [moving.clone()].into();
    let all = AccountDataToCopy {
        ignored: true,
        push_rules: true,
        profile: true,
        time_zone: true,
        profile_fields: true,
        recent_emoji: true,
        image_packs: true,
    };
    let rules_before = account::push_rules(new_c).unwrap();

    // A dry run reads only.
    let dry = account_data::copy(&pair, &moving_rooms, all, true).unwrap();
    assert_eq!(dry.ignored_added, ["@spam:example.org"]);
    assert_eq!(dry.rules.changes.len(), 3, "{:?}", dry.rules);
    assert_eq!(dry.displayname.as_deref(), Some("Alice Example"));
    assert_eq!(dry.profile_fields, ["m.tz", "org.example.team"]);
    assert_eq!(
        (
            dry.recent_emoji.added.clone(),
            dry.recent_emoji.raised.clone()
        ),
        (vec!["😅".to_owned()], vec!["👍".to_owned()])
    );
    assert_eq!(dry.image_packs.added, std::slice::from_ref(&moving));
    assert_eq!(dry.image_packs.left_behind, std::slice::from_ref(&staying));
    // The rooms plan names the packs that stay behind, before anything moves...
    let plan = |rooms: &[String]| {
        migrate::rooms::plan::plan(&pair, rooms, false, &migrate::Silent)
            .unwrap()
            .image_packs_left_behind
    };
    assert_eq!(
        plan(std::slice::from_ref(&moving)),
        std::slice::from_ref(&staying)
    );
    // ...and none when their room moves too.
    assert!(plan(&[moving.clone(), staying.clone()]).is_empty());
    assert_eq!(account::push_rules(new_c).unwrap(), rules_before);
    assert!(!account::profile(new_c, &new_user.user_id)
        .unwrap()
        .contains_key("m.tz"));
    assert_eq!(
        account::account_data(new_c, &new_user.user_id, "m.ignored_user_list").unwrap(),
        Some(json!({"ignored_users": {"@troll:example.org": {}}}))
    );

    let done = account_data::copy(&pair, &moving_rooms, all, false).unwrap();
    assert_eq!(done.rules, dry.rules);
    assert_eq!(
        (&done.profile_fields, &done.recent_emoji, &done.image_packs),
        (&dry.profile_fields, &dry.recent_emoji, &dry.image_packs)
    );
    let profile = account::profile(new_c, &new_user.user_id).unwrap();
    assert_eq!(profile["m.tz"], json!("Europe/Berlin"));
    assert_eq!(profile["org.example.team"], json!("ops"));
    assert_eq!(
        profile[pronouns],
        json!("they/them"),
        "the new account's own field stays"
    );
    assert_eq!(
        account::account_data(new_c, &new_user.user_id, "m.recent_emoji").unwrap(),
        Some(json!({"recent_emoji": [{"emoji": "👍", "total": 84}, {"emoji": "😅", "total": 7}]}))
    );
    assert_eq!(
        account::account_data(new_c, &new_user.user_id, "m.image_pack.rooms").unwrap(),
        Some(json!({"rooms": {moving.clone(): {"": {}}}})),
        "no dangling reference to a room that stays"
    );
    // Checked as the new account.
    assert_eq!(
        account::account_data(new_c, &new_user.user_id, "m.ignored_user_list").unwrap(),
        Some(json!({"ignored_users": {"@troll:example.org": {}, "@spam:example.org": {}}}))
    );
    let rules = account::push_rules(new_c).unwrap();
    let keyword = account::find_rule(&rules, "content", "deploys").unwrap();
    assert_eq!(keyword["pattern"], json!("deploy"));
    assert_eq!(keyword["enabled"], json!(true));
    assert!(account::find_rule(&rules, "room", &moving).is_some());
    assert!(
        account::find_rule(&rules, "room", &staying).is_none(),
        "only the moving room's rule"
    );
    assert_eq!(
        account::find_rule(&rules, "underride", ".m.rule.message").unwrap()["enabled"],
        json!(false)
    );
    assert_eq!(
        rooms::displayname(new_c, &new_user.user_id)
            .unwrap()
            .as_deref(),
        Some("Alice Example")
    );
    let avatar = account::avatar_url(new_c, &new_user.user_id)
        .unwrap()
        .unwrap();
    assert!(
        avatar.starts_with(&format!("mxc://{}/", new_user.server_name())),
        "{avatar}"
    );
    assert_eq!(new_c.download_media(&avatar, 1 << 20).unwrap().0, png);

    // A rerun changes nothing.
    let again = account_data::copy(&pair, &moving_rooms, all, false).unwrap();
    assert!(again.ignored_added.is_empty());
    assert!(again.rules.changes.is_empty(), "{:?}", again.rules);
    assert!(again.displayname.is_none() && again.avatar.is_none());
    assert!(again.profile_fields.is_empty());
    assert_eq!(again.recent_emoji, account_data::EmojiMerge::default());
    assert!(again.image_packs.added.is_empty());
    assert_eq!(account::push_rules(new_c).unwrap(), rules);
}
