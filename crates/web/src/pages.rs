//! The screens, as HTML built at compile time (maud escapes every value it is given: room
//! names, user IDs and errors from servers reach the page as text). Each screen is a form
//! that posts to this server; the only script is `/assets/app.js` (live progress, the room
//! search, the file upload), and every screen works without it but the upload.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use migrate::account_move::Report;
use migrate::Stage;

use crate::jobs::{Kind, Progress};
use crate::rooms::Row;
use crate::state::{Account, Keys, Wizard};

/// The screens in order, with their paths.
pub const STEPS: [(&str, &str); 8] = [
    ("Welcome", "/welcome"),
    ("Old account", "/old"),
    ("New account", "/new"),
    ("Rooms", "/rooms"),
    ("Keys", "/keys"),
    ("Plan", "/plan"),
    ("Moving", "/moving"),
    ("Report", "/report"),
];

/// A whole page: the steps, the screen, the Quit button.
pub fn layout(step: usize, token: &str, stream: bool, flash: Option<&str>, body: Markup) -> String {
    let (title, _) = STEPS[step];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — matrix-transplant" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
                @if stream { noscript { meta http-equiv="refresh" content="3"; } }
            }
            body data-stream=[stream.then_some("/events")] {
                header {
                    p.brand { "matrix-transplant" }
                    nav aria-label="Steps" {
                        ol.steps {
                            @for (i, (name, _)) in STEPS.iter().enumerate() {
                                li aria-current=[(i == step).then_some("step")] {
                                    span.n { (i + 1) } " " (name)
                                }
                            }
                        }
                    }
                    form method="post" action="/quit" {
                        input type="hidden" name="token" value=(token);
                        button.quiet type="submit" { "Quit" }
                    }
                }
                main {
                    h1 { "Step " (step + 1) " of " (STEPS.len()) ": " (title) }
                    @if let Some(f) = flash { p.error role="alert" { strong { "Problem: " } (f) } }
                    (body)
                }
            }
        }
    }
    .into_string()
}

fn token_field(token: &str) -> Markup {
    html! { input type="hidden" name="token" value=(token); }
}

fn back(path: &str) -> Markup {
    html! { a.back href=(path) { "← Back" } }
}

/// The welcome screen.
pub fn welcome(w: &Wizard, token: &str) -> Markup {
    html! {
        p.lead { "This page moves your Matrix account into a new one, from this computer. \
                  Nothing leaves it but what goes to your two homeservers." }
        h2 { "What moves" }
        ul {
            li { "The rooms you pick: the new account is invited, joins, and gets the same power, tags and settings." }
            li { "Your direct messages stay direct messages in the new account." }
            li { "The keys of the encrypted messages of those rooms, into the new account's key backup (the only place Element X reads old history from)." }
            li { "Your ignore list, notification rules and a few settings." }
        }
        h2 { "What does not move" }
        ul {
            li { "Messages themselves stay where they are: the new account reads the history each room lets new members read. The plan says, room by room, what it will not see." }
            li { "Rooms you cannot invite into, or that do not allow your new server: the plan names them, with what to do." }
            li { "Your old account is left in place. Leaving the rooms with it is a choice, made last, only for what verifiably moved." }
        }
        p { "Work folder: " code { (w.folder.display().to_string()) } ". The plan, the rooms list and the journal are kept there; passwords, tokens and keys never are." }
        @if let Some(plan) = &w.plan {
            p.notice role="status" {
                "A move from " strong { (plan.old.user) } " to " strong { (plan.new.user) }
                @if w.started { " was started in this folder. Log in to both accounts again and it goes on where it stopped." }
                @else { " is planned in this folder. Log in to both accounts to go on." }
            }
        }
        form method="post" action="/welcome" {
            (token_field(token))
            button type="submit" { "Start" }
        }
    }
}

/// An account screen: the user ID, then the ways its server offers, then who is logged in.
pub fn account(old: bool, a: &Account, fixed: bool, token: &str) -> Markup {
    let side = if old { "old" } else { "new" };
    let whose = if old {
        "old account (the one you leave)"
    } else {
        "new account (the one you move to)"
    };
    html! {
        (back(if old { "/welcome" } else { "/old" }))
        p.lead { "Your " (whose) "." }
        @if let Some(e) = &a.error { p.error role="alert" { strong { "Problem: " } (e) } }
        @if let Some(s) = &a.session {
            p.ok role="status" { "Logged in as " strong { (s.user_id()) } " on " code { (s.client().homeserver().url().as_str()) } "." }
            @if old {
                a.button href="/new" { "Continue" }
            } @else {
                // Reading the rooms is work: a POST (a browser may fetch a link ahead).
                form.inline method="post" action="/rooms/read" {
                    (token_field(token))
                    button type="submit" { "Continue" }
                }
            }
            form.inline method="post" action={"/" (side) "/logout"} {
                (token_field(token))
                button.quiet type="submit" { "Use another account" }
            }
        } @else {
            form method="post" action={"/" (side) "/find"} {
                (token_field(token))
                label for="user" { "User ID" }
                input #user name="user" type="text" autocomplete="username" placeholder="@you:example.org"
                    value=[a.user.as_deref()] readonly[fixed] required;
                details {
                    summary { "Homeserver address (only if it is not found from the user ID)" }
                    label for="homeserver" { "Homeserver URL" }
                    input #homeserver name="homeserver" type="url" value=[a.homeserver.as_deref()];
                }
                button type="submit" { "Find my server" }
            }
            @if let Some(o) = &a.offered {
                h2 { "Log in" }
                p { "Server: " code { (o.url) } @if let Some(f) = &o.found { " (" (f) ")" } }
                @if o.oauth {
                    form method="post" action={"/" (side) "/login"} {
                        (token_field(token))
                        input type="hidden" name="how" value="oauth";
                        button type="submit" { "Log in in the browser" }
                    }
                }
                @if let Some(providers) = &o.sso {
                    @if providers.is_empty() {
                        form method="post" action={"/" (side) "/login"} {
                            (token_field(token))
                            input type="hidden" name="how" value="sso";
                            button type="submit" { "Log in with single sign-on" }
                        }
                    }
                    @for (id, name) in providers {
                        form method="post" action={"/" (side) "/login"} {
                            (token_field(token))
                            input type="hidden" name="how" value="sso";
                            input type="hidden" name="idp" value=(id);
                            button type="submit" { "Log in with " (name) }
                        }
                    }
                }
                @if o.password {
                    form method="post" action={"/" (side) "/login"} {
                        (token_field(token))
                        input type="hidden" name="how" value="password";
                        label for="password" { "Password" }
                        input #password name="password" type="password" autocomplete="current-password" required;
                        button type="submit" { "Log in with the password" }
                    }
                }
                details {
                    summary { "Use an access token instead" }
                    form method="post" action={"/" (side) "/login"} {
                        (token_field(token))
                        input type="hidden" name="how" value="token";
                        label for="access-token" { "Access token" }
                        input #access-token name="access_token" type="password" autocomplete="off" required;
                        button type="submit" { "Use the token" }
                    }
                }
            }
        }
    }
}

/// A job at work: its progress, streamed.
pub fn working(p: &Progress) -> Markup {
    html! {
        p.lead { (p.kind.map_or("Working", Kind::title)) "…" }
        div #progress aria-live="polite" { (progress(p)) }
        p.small { "This page follows the work as it goes. You may close it and open the address again: the work goes on here." }
    }
}

/// The progress itself (also what the event stream sends).
pub fn progress(p: &Progress) -> Markup {
    html! {
        @if let Some(a) = &p.login_address {
            p.notice { "Log in at your server in a new tab: " a href=(a) target="_blank" rel="noopener" #login-link { "open the login page" } ". This page goes on by itself once you are in." }
        }
        @if let Some((code, uri)) = &p.login_code {
            p.notice { "Enter the code " strong.code { (code) } " at " code { (uri) } "." }
        }
        @for n in &p.notices { p.small { (n) } }
        @if !p.stages.is_empty() {
            ul.stages {
                @for s in &p.stages {
                    li {
                        (stage_name(s.stage)) ": "
                        @if s.finished { "done" }
                        @else if let Some(t) = s.total {
                            (s.done) " of " (t) " "
                            progress max=(t.max(1)) value=(s.done) aria-label=(stage_name(s.stage)) {}
                        } @else { "working" }
                    }
                }
            }
        }
        @if let Some((stage, cause, until)) = &p.waiting {
            p.wait role="status" { "Waiting (" (stage_name(*stage)) "): " (cause) ", until " (migrate::rooms::history::utc_seconds(*until)) ". Servers limit how fast invites and joins may go; the move goes on by itself." }
        }
        @if !p.items.is_empty() {
            h2 { "Rooms so far" }
            ol.items reversed {
                @for (stage, item, outcome) in p.items.iter().rev().take(12) {
                    li { code { (item) } " — " (stage_name(*stage)) ": " (outcome) }
                }
            }
        }
        @if let Some(e) = &p.error { p.error role="alert" { strong { "Problem: " } (e) } }
    }
}

/// A stage in words.
pub fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::CheckBackup => "checking the backup key",
        Stage::ReadExports => "reading the key exports",
        Stage::Upload => "uploading keys to the new backup",
        Stage::Download => "reading the old backup",
        Stage::WriteExport => "writing an export",
        Stage::ReadRooms => "reading the rooms",
        Stage::Invite => "invites",
        Stage::Join => "joins",
        Stage::Power => "power",
        Stage::Direct => "direct messages",
        Stage::History => "checking the history",
        Stage::AccountData => "settings",
        Stage::Verify => "checking the result",
        Stage::Rename => "renaming the old account",
        Stage::Leave => "leaving with the old account",
    }
}

/// The rooms screen.
pub fn rooms(rows: &[Row], chosen: Option<&[String]>, fixed: bool, token: &str) -> Markup {
    let is_chosen = |r: &Row| match chosen {
        Some(c) => c.contains(&r.room_id),
        None => r.blockers.is_empty(),
    };
    html! {
        (back("/new"))
        p.lead { "Pick the rooms that move. Rooms with a problem say what it is and what to do; they are not picked unless you pick them." }
        @if fixed { p.notice { "This move's plan is in the work folder: its rooms are those of its rooms file (rooms.txt), which this page does not change. Edit that file to change them." } }
        form method="post" action="/rooms" {
            (token_field(token))
            div.tools hidden #room-tools {
                label for="room-search" { "Search" }
                input #room-search type="search" aria-controls="room-table";
                button.quiet type="button" #select-all { "Select all shown" }
                button.quiet type="button" #select-none { "Select none" }
            }
            div.table-scroll { table #room-table {
                caption { (rows.len()) " rooms" }
                thead { tr { th scope="col" { "Move" } th scope="col" { "Room" } th scope="col" { "Kind" } th scope="col" { "Your power" } th scope="col" { "History the new account sees" } th scope="col" { "Problems" } } }
                tbody {
                    @for (i, r) in rows.iter().enumerate() {
                        tr.room data-text=(format!("{} {} {}", r.name.as_deref().unwrap_or(""), r.room_id, r.dm_with.as_deref().unwrap_or("")).to_lowercase()) {
                            td { input type="checkbox" name="room" value=(r.room_id) id={"room-" (i)} checked[is_chosen(r)] disabled[fixed]; }
                            td { label for={"room-" (i)} { (r.name.as_deref().unwrap_or("(no name)")) } br; code.small { (r.room_id) } }
                            td data-label="Kind" { (r.kind) @if r.encrypted { ", encrypted" } }
                            td data-label="Your power" { (r.power) }
                            td data-label="History the new account sees" { (r.history) }
                            td data-label="Problems" {
                                @if r.blockers.is_empty() && r.notes.is_empty() { "none" }
                                @for (why, what) in &r.blockers { p.blocker { strong { "Blocked: " } (why) " " em { "What to do: " } (what) } }
                                @for n in &r.notes { p.small { "Note: " (n) } }
                            }
                        }
                    }
                }
            } }
            fieldset {
                legend { "At the end (cannot be undone)" }
                input #leave type="checkbox" name="leave" disabled[fixed];
                label for="leave" { "Leave the moved rooms with the old account, once each has verifiably moved" }
                br;
                label for="rename" { "Rename the old account in those rooms: add to its name" }
                input #rename name="rename_old" type="text" placeholder=" (old account)" disabled[fixed];
            }
            button type="submit" { "Continue" }
        }
    }
}

/// The rooms screen before the rooms are read.
pub fn rooms_unread(token: &str) -> Markup {
    html! {
        (back("/new"))
        p.lead { "Your old account's rooms are read next (nothing is changed)." }
        form method="post" action="/rooms/read" {
            (token_field(token))
            button type="submit" { "Read my rooms" }
        }
    }
}

/// The keys screen.
pub fn keys(k: &Keys, keys_done: bool, token: &str) -> Markup {
    html! {
        (back("/rooms"))
        @if keys_done {
            p.ok role="status" { "The keys of this move are already in the new account's backup (an earlier run did it). Nothing to give here." }
        } @else {
            p.lead { "The keys that open the old messages. They stay in this page's memory and are never written to disk." }
            h2 { "Key exports of the old account (optional)" }
            p.small { "Element: Settings → Security & Privacy → Export E2E room keys, one file per device." }
            @if !k.exports.is_empty() {
                ul { @for e in &k.exports { li { (e.name) ": " (e.sessions) " sessions" } } }
            }
            form #export-form method="post" action="/keys/export" {
                (token_field(token))
                label for="export-file" { "Key export file" }
                input #export-file type="file" required;
                label for="export-passphrase" { "Its passphrase" }
                input #export-passphrase type="password" autocomplete="off" required;
                button type="submit" { "Add this export" }
                noscript { p.small { "Adding a file needs JavaScript in this page." } }
            }
        }
        form method="post" action="/keys" {
            (token_field(token))
            @if !keys_done {
                h2 { "Recovery keys" }
                p.small { "The recovery key Element shows (Settings → Encryption → Recovery): 48 characters in groups of four; or the security phrase, if recovery was set up with one." }
                label for="old-recovery" { "Old account's recovery key (optional: its key backup is read too)" }
                input #old-recovery name="old_recovery" type="password" autocomplete="off" placeholder=(if k.old_recovery.is_some() { "given" } else { "" });
                label for="new-recovery" { "New account's recovery key (needed to put keys into its backup)" }
                input #new-recovery name="new_recovery" type="password" autocomplete="off" placeholder=(if k.new_recovery.is_some() { "given" } else { "" });
            }
            button type="submit" { "Plan the move" }
            p.small { "Planning reads everything and changes nothing." }
        }
    }
}

/// The plan screen: the dry run, and the confirmation.
pub fn plan(report: &Report, leave: bool, rename: Option<&str>, token: &str) -> Markup {
    html! {
        (back("/keys"))
        p.lead { "This is what the move will do. Nothing has been changed yet." }
        div.report { (PreEscaped(crate::markdown::html(&report.markdown()))) }
        form method="post" action="/move" {
            (token_field(token))
            @if leave || rename.is_some() {
                fieldset {
                    legend { "Steps that cannot be undone (done last, only for rooms that verifiably moved)" }
                    ul {
                        @if let Some(r) = rename { li { "The old account's name gets “" (r) "” added in the moved rooms." } }
                        @if leave { li { "The old account leaves the moved rooms." } }
                    }
                    input #understood type="checkbox" name="understood" required;
                    label for="understood" { "I understand these cannot be undone" }
                }
            }
            button type="submit" { "Start the move" }
        }
    }
}

/// The report screen.
pub fn report(report: &Report, token: &str) -> Markup {
    html! {
        div.report { (PreEscaped(crate::markdown::html(&report.markdown()))) }
        h2 { "The one step left, in Element X" }
        p { "Add the new account in Element X (or log in to it), then open Settings → Encryption → Recovery and enter the new account's recovery key: the old messages of the moved rooms then open. Keep the old account until this report says everything is done." }
        form method="post" action="/quit" {
            (token_field(token))
            button type="submit" { "Quit" }
        }
    }
}

/// The page shown after Quit.
pub fn ended() -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "matrix-transplant has stopped" } link rel="stylesheet" href="/assets/style.css"; }
            body { main { h1 { "matrix-transplant has stopped" } p { "You can close this tab. Run " code { "matrix-transplant ui" } " again to go on: the move folder keeps where it stands." } } }
        }
    }
    .into_string()
}

/// A refusal (the guard's), as a page.
pub fn refused(text: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Refused — matrix-transplant" } }
            body { main { h1 { "Refused" } p { (text) } } }
        }
    }
    .into_string()
}
