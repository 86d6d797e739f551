//! Which request does what. Every request but the launch address passes the guard first:
//! reads need this server's Host and the session cookie; changes (POST) also need this
//! origin and the page's token. The screens are GETs; each change is a POST answered with a
//! redirect to the screen that shows its result. A GET changes nothing and starts nothing
//! (a browser may fetch a link ahead of a click).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{Reply, Req};
use crate::jobs::Kind;
use crate::{pages, work, App};

/// The stylesheet, compiled in.
const STYLE: &str = include_str!("../assets/style.css");
/// The script, compiled in.
const SCRIPT: &str = include_str!("../assets/app.js");

/// Answers one request.
pub fn handle(app: &Arc<App>, mut request: tiny_http::Request) {
    let mut req = Req::head(&request);
    if req.method == "GET" && req.path == "/start" {
        return start(app, &req).send(request);
    }
    if req.method != "GET" && req.method != "POST" {
        return Reply::text(405, "Only GET and POST.").send(request);
    }
    // Host and cookie first: a stranger's body is never read.
    if let Err(refusal) = app.guard.read(&req.seen()) {
        return Reply::html(refusal.status(), pages::refused(refusal.text())).send(request);
    }
    if req.method == "POST" {
        if !req.read_body(&mut request) {
            return Reply::text(413, "The request is too large or could not be read.")
                .send(request);
        }
        if let Err(refusal) = app.guard.change(&req.seen()) {
            return Reply::html(refusal.status(), pages::refused(refusal.text())).send(request);
        }
    }
    if req.method == "GET" && req.path == "/events" {
        return stream(app, request);
    }
    let reply = match req.method.as_str() {
        "GET" => get(app, &req),
        _ => post(app, &mut req),
    };
    reply.send(request);
}

/// The launch address: its key traded for the session cookie, then on to the page without
/// it in the address bar.
fn start(app: &App, req: &Req) -> Reply {
    if let Err(refusal) = app.guard.host(&req.seen()) {
        return Reply::html(refusal.status(), pages::refused(refusal.text()));
    }
    let key = req.query.get("k").map_or("", String::as_str);
    match app.guard.trade(key) {
        Ok(cookie) => {
            app.launched();
            let mut reply = Reply::see("/");
            reply.extra.push(("Set-Cookie", cookie));
            reply
        }
        // The browser that used the key already holds the cookie: it goes on to the page.
        Err(_) if app.guard.read(&req.seen()).is_ok() => Reply::see("/"),
        Err(refusal) => Reply::html(refusal.status(), pages::refused(refusal.text())),
    }
}

/// The screen of each job, as a step's index.
fn step_of(kind: Kind) -> usize {
    match kind {
        Kind::Login(true) => 1,
        Kind::Login(false) => 2,
        Kind::Rooms => 3,
        Kind::DryRun => 5,
        Kind::Move => 6,
    }
}

fn get(app: &Arc<App>, req: &Req) -> Reply {
    match req.path.as_str() {
        "/assets/style.css" => asset("text/css; charset=utf-8", STYLE),
        "/assets/app.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        _ => screen(app, &req.path),
    }
}

fn asset(content_type: &'static str, text: &str) -> Reply {
    let mut reply = Reply::text(200, text);
    reply.content_type = content_type;
    reply
}

/// A screen: the running job's while one runs, else the one asked for (or the first one
/// whose needs are not met).
fn screen(app: &Arc<App>, path: &str) -> Reply {
    let token = app.guard.token().to_owned();
    let progress = app.jobs.now().clone();
    if progress.running {
        let kind = progress.kind.expect("a running job has a kind");
        let body = pages::working(&progress);
        return page(app, step_of(kind), true, body);
    }
    let w = app.wizard();
    let Some(at) = allowed(&w, path) else {
        return Reply::see(first_open(&w));
    };
    let body = match at {
        0 => pages::welcome(&w, &token),
        1 => pages::account(true, &w.old, w.plan.is_some(), &token),
        2 => pages::account(false, &w.new, w.plan.is_some(), &token),
        3 => match &w.listing {
            Some(l) => pages::rooms(&l.rows, w.rooms.as_deref(), w.rooms_fixed(), &token),
            None => pages::rooms_unread(&token),
        },
        4 => pages::keys(&w.keys, w.keys_done, &token),
        5 => match &w.dry_run {
            Some(r) => {
                let plan = w.plan.as_ref().expect("a dry run has a plan");
                pages::plan(r, plan.leave, plan.rename_old.as_deref(), &token)
            }
            None => return Reply::see("/keys"),
        },
        6 => return Reply::see("/report"),
        _ => match &w.report {
            Some(r) => pages::report(r, &token),
            None => return Reply::see("/plan"),
        },
    };
    drop(w);
    page(app, at, false, body)
}

fn page(app: &App, step: usize, stream: bool, body: maud::Markup) -> Reply {
    let flash = app.take_flash();
    Reply::html(
        200,
        pages::layout(step, app.guard.token(), stream, flash.as_deref(), body),
    )
}

/// The screen `path` names, if what it needs is there.
fn allowed(w: &crate::state::Wizard, path: &str) -> Option<usize> {
    let at = pages::STEPS.iter().position(|(_, p)| *p == path)?;
    (at <= open_up_to(w)).then_some(at)
}

/// The furthest screen whose needs are met (the moving screen is the running move's).
fn open_up_to(w: &crate::state::Wizard) -> usize {
    if w.report.is_some() {
        return 7;
    }
    let needs = [
        w.welcomed,
        w.old.session.is_some(),
        w.new.session.is_some(),
        w.plan.is_some() && w.rooms.is_some(),
        w.dry_run.is_some(),
    ];
    needs.iter().take_while(|met| **met).count()
}

fn first_open(w: &crate::state::Wizard) -> &'static str {
    pages::STEPS[open_up_to(w)].1
}

/// The screen a change belongs to: it is refused until that screen is open.
fn screen_of(path: &str) -> usize {
    match path {
        p if p.starts_with("/old/") => 1,
        p if p.starts_with("/new/") => 2,
        "/rooms" | "/rooms/read" => 3,
        p if p.starts_with("/keys") => 4,
        "/move" => 5,
        _ => 0,
    }
}

fn post(app: &Arc<App>, req: &mut Req) -> Reply {
    {
        let w = app.wizard();
        if screen_of(&req.path) > open_up_to(&w) || (app.jobs.running() && req.path != "/quit") {
            return Reply::see(first_open(&w));
        }
    }
    if req.path == "/keys/export" {
        // The upload's bytes are taken, not copied (an export can be 300 MB).
        let body = req.body.take();
        return work::add_export(app, req, body);
    }
    let f = &req.form;
    match req.path.as_str() {
        "/welcome" => {
            app.wizard().welcomed = true;
            Reply::see("/old")
        }
        "/old/find" | "/new/find" => {
            work::find(app, side(req), f.text("user"), f.text("homeserver"))
        }
        "/old/login" | "/new/login" => work::log_in(app, side(req), f),
        "/old/logout" | "/new/logout" => work::log_out(app, side(req)),
        "/rooms/read" => {
            work::read_rooms(app);
            Reply::see("/rooms")
        }
        "/rooms" => {
            let chosen: HashSet<String> = f.all("room").into_iter().collect();
            work::choose_rooms(app, chosen, f.ticked("leave"), f.text("rename_old"))
        }
        "/keys" => work::keys_given(app, f.text("old_recovery"), f.text("new_recovery")),
        "/move" => work::start_move(app, f.ticked("allow_invites")),
        "/quit" => {
            work::quit(app);
            Reply::html(200, pages::ended())
        }
        _ => Reply::text(404, "No such action."),
    }
}

fn side(req: &Req) -> bool {
    req.path.starts_with("/old/")
}

/// The event stream: the progress as HTML, each time it changes, and where to go when the
/// job ends.
fn stream(app: &Arc<App>, request: tiny_http::Request) {
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut version = 0;
    loop {
        let p = app.jobs.wait_change(version, Duration::from_secs(15));
        let message = if p.version == version {
            ": still here\n\n".to_owned()
        } else if !p.running {
            let next = match (p.kind, &p.error) {
                (Some(kind), None) => kind.next(),
                (Some(kind), Some(_)) => kind.back(),
                (None, _) => "/",
            };
            format!("event: done\ndata: {next}\n\n")
        } else {
            let html = pages::progress(&p).into_string().replace(['\n', '\r'], " ");
            format!("data: {html}\n\n")
        };
        version = p.version;
        if out
            .write_all(message.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
            || !p.running
        {
            return;
        }
    }
}
