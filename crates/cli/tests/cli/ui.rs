//! `matrix-transplant ui` in a real browser (Debian's Chromium, driven over the DevTools
//! protocol): a whole move through the page against the test Synapses, checked from the
//! servers' side; the server killed mid-move and started again resumes from the journal; a
//! move begun in the page finished by `move run` in the terminal; OAuth logins through the
//! fake auth server. A screenshot of every screen is saved (into docs/ui/ with
//! UPDATE_SCREENSHOTS=1: the README's). These tests FAIL, never skip, when Chromium or the
//! servers are missing (`scripts/test-all` installs and starts them).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::types::Bounds;
use headless_chrome::{Browser, LaunchOptions, Tab};
use online::backup::{self, BackupKey};
use online::testkit::{killer, nextgen, play_browser, server_named, unique, Proxy, TestUser};
use online::{rooms, Credentials, Session, SessionOptions};
use serde_json::json;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Debian's Chromium, headless, with nothing that reaches the network by itself.
fn browser() -> Browser {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's chromium at {CHROMIUM}: run scripts/test-all, which \
         installs it (apt-get install chromium)"
    );
    let args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
    ]
    .map(std::ffi::OsStr::new)
    .to_vec();
    Browser::new(LaunchOptions {
        headless: true,
        sandbox: false,
        path: Some(CHROMIUM.into()),
        window_size: Some((1200, 1000)),
        args,
        idle_browser_timeout: Duration::from_secs(600),
        ..LaunchOptions::default()
    })
    .expect("Chromium starts")
}

/// `matrix-transplant ui FOLDER` running, and the address it printed.
struct Ui {
    child: Child,
    url: String,
}

impl Ui {
    fn start(s: &Scratch, folder: &str) -> Ui {
        let mut child = s
            .cmd(&format!("ui %{folder} --no-browser"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("ui prints its address").unwrap();
            if let Some(at) = line.find("http://127.0.0.1:") {
                break line[at..].trim().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ui { child, url }
    }
}

impl Drop for Ui {
    /// A failed test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page in a tab, with the steps a person takes.
struct Page {
    tab: Arc<Tab>,
    shots: PathBuf,
}

impl Page {
    fn open(browser: &Browser, url: &str, shots: &Path) -> Page {
        let tab = browser.new_tab().unwrap();
        tab.set_default_timeout(Duration::from_secs(60));
        tab.navigate_to(url)
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        Page {
            tab,
            shots: shots.to_owned(),
        }
    }
    fn text(&self) -> String {
        self.tab
            .evaluate("document.body.innerText", false)
            .unwrap()
            .value
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
    /// Waits until the page shows `text` (the live progress changes it by itself).
    fn wait_for(&self, text: &str) {
        let start = Instant::now();
        loop {
            let now = self.text();
            if now.contains(text) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the page never showed {text:?}; at {} it shows:\n{now}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    fn click(&self, selector: &str) {
        let clicked = self
            .tab
            .wait_for_element(selector)
            .and_then(|e| e.click().map(drop));
        if let Err(e) = clicked {
            panic!(
                "cannot click {selector}: {e}; the page shows:\n{}",
                self.text()
            );
        }
    }
    /// Clicks the button whose text is `label`.
    fn press(&self, label: &str) {
        let xpath =
            format!("//button[normalize-space()='{label}'] | //a[normalize-space()='{label}']");
        let clicked = self
            .tab
            .wait_for_xpath(&xpath)
            .and_then(|e| e.click().map(drop));
        if let Err(e) = clicked {
            panic!(
                "cannot press {label:?}: {e}; the page shows:\n{}",
                self.text()
            );
        }
    }
    fn fill(&self, selector: &str, text: &str) {
        let e = self.tab.wait_for_element(selector).unwrap();
        e.click().unwrap();
        e.call_js_fn(
            "function() { this.value = ''; this.dispatchEvent(new Event('input')); }",
            vec![],
            false,
        )
        .unwrap();
        e.type_into(text).unwrap();
    }
    fn url(&self) -> String {
        self.tab.get_url()
    }
    /// The value of `js` (passed through JSON: arrays and objects too).
    fn eval(&self, js: &str) -> serde_json::Value {
        let text = self
            .tab
            .evaluate(&format!("JSON.stringify(({js}) ?? null)"), false)
            .unwrap()
            .value
            .unwrap_or_default();
        serde_json::from_str(text.as_str().unwrap_or("null")).unwrap()
    }
    /// A screenshot of the whole page, named for the screen; first, the checks every
    /// screen passes: each field has a label, nothing but this server's is loaded.
    fn shot(&self, name: &str) {
        let unlabelled = self.eval(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
             .filter(i => i.labels.length === 0 && !i.getAttribute('aria-label')).map(i => i.id || i.name)",
        );
        assert_eq!(unlabelled, json!([]), "{name}: fields without a label");
        let foreign = self.eval(
            "performance.getEntriesByType('resource').map(e => e.name)\
             .filter(n => !n.startsWith(location.origin))",
        );
        assert_eq!(foreign, json!([]), "{name}: loaded from elsewhere");
        self.eval("window.scrollTo(0, 0)");
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        std::fs::create_dir_all(&self.shots).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
    /// The screen as it reflows at 200% zoom (a window half as wide, in CSS pixels):
    /// nothing wider than the window but inside a table's own scroll box.
    fn at_200_percent(&self, name: &str) {
        let bounds = |width: f64| Bounds::Normal {
            left: None,
            top: None,
            width: Some(width),
            height: Some(1000.0),
        };
        self.tab.set_bounds(bounds(600.0)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let width = self.eval("window.innerWidth").as_f64().unwrap();
        assert!(width <= 620.0, "the window did not narrow: {width}");
        let wide = self.eval(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.table-scroll, .report')\
             && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(e => e.tagName)",
        );
        assert_eq!(wide, json!([]), "{name}: wider than the window at 200%");
        self.shot(&format!("{name}-200-percent"));
        self.tab.set_bounds(bounds(1200.0)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    /// Logs in an account from its screen with a password (`homeserver`: typed under the
    /// advanced field).
    fn password_login(&self, user: &str, homeserver: Option<&str>, password: &str) {
        if self.tab.find_element("#user[readonly]").is_err() {
            self.fill("#user", user);
        }
        if let Some(hs) = homeserver {
            self.click("details summary");
            self.fill("#homeserver", hs);
        }
        self.press("Find my server");
        self.fill("#password", password);
        self.press("Log in with the password");
        self.wait_for(&format!("Logged in as {user}"));
    }
}

/// Where the screenshots go: the README's with UPDATE_SCREENSHOTS=1, else target/.
fn shots_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("UPDATE_SCREENSHOTS") {
        Some(_) => root.join("docs/ui"),
        None => root.join("target/ui-screenshots"),
    }
}

/// An old account on ORG with a DM, an encrypted room, a room whose name is markup, a
/// room it cannot invite into, and a room that stays; a new account on PERSONAL; a key
/// export and both backups.
struct World {
    old: TestUser,
    new: TestUser,
    bob: TestUser,
    dm: String,
    private: String,
    markup: String,
    blocked: String,
    staying: String,
    new_key: BackupKey,
    new_text: String,
    old_text: String,
    /// (room, session) → the index the new backup must end with.
    keys: BTreeSet<(String, String, u32)>,
    s: Scratch,
}

const MARKUP_NAME: &str = "<img src=x onerror=alert(1)> & <b>team</b>";

fn world() -> World {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let (old, bob, carol) = (
        org.register("old"),
        org.register("bob"),
        org.register("carol"),
    );
    let new = personal.register("new");
    let dm = element_dm(&old, &bob);
    let private = old.create_room_with(json!({"name": "Private", "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}));
    let markup = old.create_room_with(json!({"name": MARKUP_NAME, "preset": "private_chat"}));
    let blocked = room_old_cannot_invite(&carol, &old);
    let staying = old.create_room("Staying");
    let device = key_export::testkit::Device::new();
    let (mut dm_s, mut priv_s) = (device.new_session(&dm), device.new_session(&private));
    let s = Scratch::new();
    s.write(
        "laptop.txt",
        export(&[priv_s.export_at(0), dm_s.export_at(3)], "laptop pass"),
    );
    let (old_key, old_text) = BackupKey::generate();
    back_up(&old, &old_key, &[dm_s.export_at(1)]);
    let (new_key, new_text) = BackupKey::generate();
    backup::create_version(&new.client, &new_key).unwrap();
    let keys = [(&dm, &dm_s, 1), (&private, &priv_s, 0)]
        .iter()
        .map(|(r, t, i)| ((*r).clone(), t.session_id().to_owned(), *i))
        .collect();
    World {
        old,
        new,
        bob,
        dm,
        private,
        markup,
        blocked,
        staying,
        new_key,
        new_text: new_text.to_string(),
        old_text: old_text.to_string(),
        keys,
        s,
    }
}

impl World {
    fn moved(&self) -> Vec<&str> {
        vec![&self.dm, &self.private, &self.markup]
    }
    fn backup(&self) -> BTreeSet<(String, String, u32)> {
        let info = backup::current(&self.new.client).unwrap().unwrap();
        let got = backup::download(&self.new.client, &info, &self.new_key, &|_| true).unwrap();
        got.entries
            .iter()
            .map(|e| {
                let raw = serde_json::value::RawValue::from_string(e.to_string()).unwrap();
                let s = key_export::SessionRef::parse(&raw);
                (
                    s.room_id.to_string(),
                    s.session_id.to_string(),
                    s.first_known_index,
                )
            })
            .collect()
    }
    /// The end state, from the servers' side: joined where it moved, not elsewhere; the
    /// DM a DM; the keys in the new backup; the old account gone from what moved (when it
    /// left), one invite per room.
    fn assert_moved(&self, left: bool) {
        let joined: BTreeSet<String> = rooms::joined_rooms(&self.new.client)
            .unwrap()
            .into_iter()
            .collect();
        for r in self.moved() {
            assert!(joined.contains(r), "the new account is in {r}");
        }
        assert!(!joined.contains(&self.blocked) && !joined.contains(&self.staying));
        let direct = online::direct::download(&self.new.client, &self.new.user_id).unwrap();
        assert_eq!(
            direct.to_value(),
            json!({ self.bob.user_id.clone(): [self.dm] })
        );
        assert_eq!(self.backup(), self.keys, "the new backup");
        let old_joined: BTreeSet<String> = rooms::joined_rooms(&self.old.client)
            .unwrap()
            .into_iter()
            .collect();
        for r in self.moved() {
            assert_eq!(!old_joined.contains(r), left, "the old account in {r}");
        }
        assert!(old_joined.contains(&self.staying));
        for r in self.moved() {
            let page = rooms::messages(
                &self.old.client,
                r,
                None,
                rooms::Direction::Backwards,
                &["m.room.member"],
                100,
            )
            .unwrap();
            let invites = page.chunk.iter().filter(|e| {
                e.state_key.as_deref() == Some(self.new.user_id.as_str())
                    && e.content["membership"] == json!("invite")
            });
            assert!(invites.count() <= 1, "one invite at most in {r}");
        }
    }
}

/// A proxy in front of PERSONAL that SIGKILLs the process in `pid` at the `nth` join.
fn killing_proxy(pid: &Arc<Mutex<Option<u32>>>, nth: usize) -> Proxy {
    let seen = AtomicUsize::new(0);
    let hook = killer(pid.clone(), move |_, method, path| {
        method == "POST" && path.contains("/join") && seen.fetch_add(1, Ordering::SeqCst) + 1 == nth
    });
    Proxy::start(
        &server_named("PERSONAL").url,
        Arc::new(AtomicUsize::new(0)),
        hook,
    )
}

/// The page from the welcome screen to the started move: both logins by password (the
/// new account through `new_url`), the rooms picked (not the one that stays), the key
/// export and both recovery keys, the dry run, the confirmation.
fn page_up_to_the_move(p: &Page, w: &World, new_url: &str, shots: bool) {
    let shot = |name: &str| {
        if shots {
            p.shot(name)
        }
    };
    p.wait_for("What does not move");
    shot("1-welcome");
    p.press("Start");
    p.wait_for("the one you leave");
    p.fill("#user", &w.old.user_id);
    // The test servers are named by their address: not found from the user ID, given.
    p.click("details summary");
    p.fill("#homeserver", &server_named("ORG").url);
    p.press("Find my server");
    p.wait_for("Log in with the password");
    shot("2-old-account");
    p.fill("#password", &w.old.password);
    p.press("Log in with the password");
    p.wait_for(&format!("Logged in as {}", w.old.user_id));
    p.press("Continue");
    p.password_login(&w.new.user_id, Some(new_url), &w.new.password);
    shot("3-new-account");
    p.press("Continue");
    p.wait_for("Pick the rooms that move");
    // The room whose name is markup shows as that text; no element is made of it.
    p.wait_for(MARKUP_NAME);
    assert_eq!(
        p.eval("document.querySelectorAll('main img, main b').length"),
        json!(0)
    );
    p.wait_for("Blocked: ");
    let checked = |room: &str| {
        p.eval(&format!(
            "document.querySelector('input[value=\"{room}\"]').checked"
        ))
    };
    assert_eq!(
        checked(&w.blocked),
        json!(false),
        "a blocked room is not picked"
    );
    assert_eq!(checked(&w.staying), json!(true));
    // The search finds a room; select none, then pick the three that move.
    p.fill("#room-search", "private");
    assert_eq!(
        p.eval("document.querySelectorAll('tr.room:not(.hidden)').length"),
        json!(1)
    );
    p.fill("#room-search", "");
    p.click("#select-none");
    for r in w.moved() {
        p.click(&format!("input[value=\"{r}\"]"));
    }
    p.click("#leave");
    shot("4-rooms");
    if shots {
        p.at_200_percent("4-rooms");
    }
    p.press("Continue");
    p.wait_for("Key exports of the old account");
    let file = w.s.path("laptop.txt");
    // A wrong passphrase is said at once, and not shown back.
    p.tab
        .wait_for_element("#export-file")
        .unwrap()
        .set_input_files(&[file.to_str().unwrap()])
        .unwrap();
    p.fill("#export-passphrase", "not the passphrase");
    p.press("Add this export");
    p.wait_for("Check the file and its passphrase");
    assert!(!p.text().contains("not the passphrase") && !p.text().contains("sessions"));
    p.tab
        .wait_for_element("#export-file")
        .unwrap()
        .set_input_files(&[file.to_str().unwrap()])
        .unwrap();
    p.fill("#export-passphrase", "laptop pass");
    p.press("Add this export");
    p.wait_for("laptop.txt: 2 sessions");
    p.fill("#old-recovery", &w.old_text);
    p.fill("#new-recovery", &w.new_text);
    shot("5-keys");
    if shots {
        p.at_200_percent("5-keys");
    }
    p.press("Plan the move");
    p.wait_for("Start the move");
    p.wait_for("cannot be undone");
    shot("6-plan");
    p.click("#understood");
    p.press("Start the move");
}

#[test]
fn a_whole_move_through_the_page_killed_mid_move_resumes_from_the_journal() {
    let w = world();
    let shots = shots_dir();
    let pid: Arc<Mutex<Option<u32>>> = Arc::default();
    let proxy = killing_proxy(&pid, 2);
    let mut ui = Ui::start(&w.s, "move");
    *pid.lock().unwrap() = Some(ui.child.id());
    let browser = browser();
    let p = Page::open(&browser, &ui.url, &shots);
    // The launch key is gone from the address bar, and the cookie from scripts.
    assert!(!p.url().contains("k="), "{}", p.url());
    assert_eq!(p.eval("document.cookie"), json!(""));
    page_up_to_the_move(&p, &w, &proxy.url, true);
    p.wait_for("Moving…");
    p.shot("7-moving");
    // Killed at the second join: nothing the page can do; the journal keeps the move.
    let status = ui.child.wait().unwrap();
    assert!(!status.success(), "the server was killed");
    let journal = std::fs::read_to_string(w.s.path("move/move.journal.jsonl")).unwrap();
    assert!(!journal.is_empty());
    for secret in [
        w.old.password.as_str(),
        &w.new.password,
        &w.new_text,
        &w.old_text,
        "laptop pass",
    ] {
        for f in ["move.toml", "rooms.txt", "move.journal.jsonl"] {
            let text = std::fs::read_to_string(w.s.path(&format!("move/{f}"))).unwrap();
            assert!(!text.contains(secret), "a secret in {f}");
        }
    }

    // Started again on the same folder: it says a move was started, logs in again, and the
    // move goes on from the journal (the keys are not needed again).
    let mut ui = Ui::start(&w.s, "move");
    let p = Page::open(&browser, &ui.url, &shots);
    p.wait_for("was started in this folder");
    p.press("Start");
    p.password_login(&w.old.user_id, None, &w.old.password);
    p.press("Continue");
    p.password_login(&w.new.user_id, None, &w.new.password);
    p.press("Continue");
    p.wait_for("which this page does not change");
    p.press("Continue");
    p.wait_for("already in the new account's backup");
    p.press("Plan the move");
    p.wait_for("Start the move");
    p.click("#understood");
    p.press("Start the move");
    p.wait_for("The one step left, in Element X");
    p.wait_for("Checking the result");
    p.wait_for("no key source was given to this run");
    p.shot("8-report");
    w.assert_moved(true);
    assert!(w.s.path("move/move.report.md").exists());
    p.press("Quit");
    p.wait_for("has stopped");
    assert!(ui.child.wait().unwrap().success());
    drop(proxy);
}

#[test]
fn a_move_begun_in_the_page_is_finished_by_move_run_in_the_terminal() {
    let w = world();
    let pid: Arc<Mutex<Option<u32>>> = Arc::default();
    let proxy = killing_proxy(&pid, 1);
    let mut ui = Ui::start(&w.s, "move");
    *pid.lock().unwrap() = Some(ui.child.id());
    let browser = browser();
    let p = Page::open(&browser, &ui.url, &shots_dir());
    page_up_to_the_move(&p, &w, &proxy.url, false);
    assert!(
        !ui.child.wait().unwrap().success(),
        "killed at the first join"
    );
    // The same plan, run from a terminal: it logs in with the passwords the plan's login
    // asks for, and finishes the move.
    let (code, screen) = w.s.run_answering(
        "move run %move/move.toml",
        &[
            (&format!("Password for {}", w.old.user_id), &w.old.password),
            (&format!("Password for {}", w.new.user_id), &w.new.password),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    w.assert_moved(true);
    let status = w.s.run("move status %move/move.toml");
    assert!(status.status.success());
    drop(proxy);
}

/// An account of the NEXTGEN server, logged in by OAuth as the test (the test plays the
/// browser), to make its rooms.
fn oauth_user(localpart: &str) -> (String, Session) {
    let ng = nextgen();
    let user = ng.next_login(localpart);
    let flows = online::login::flows(&online::Client::anonymous(ng.homeserver())).unwrap();
    let options = SessionOptions {
        expected_user: Some(user.clone()),
        show_url: Some(Box::new(|a: &online::login::LoginAddress| {
            play_browser(a.start.as_str());
        })),
        login_timeout: Some(Duration::from_secs(30)),
        ..SessionOptions::default()
    };
    let session = Session::open(
        ng.homeserver(),
        Credentials::OAuth(Box::new(flows.oauth.unwrap())),
        options,
    )
    .unwrap();
    (user, session)
}

#[test]
fn oauth_logins_in_the_page_through_the_auth_server_and_a_move() {
    let ng = nextgen();
    let (old_local, new_local) = (unique("uiold"), unique("uinew"));
    let (old_user, old) = oauth_user(&old_local);
    let room = {
        let body = json!({"name": "Team", "preset": "private_chat"}).to_string();
        let created: serde_json::Value = old
            .client()
            .call_json(
                "create a room",
                online::wire::Method::Post,
                &["v3", "createRoom"],
                &[],
                online::wire::Body::Json(body.as_bytes()),
                true,
            )
            .unwrap();
        created["room_id"].as_str().unwrap().to_owned()
    };
    let s = Scratch::new();
    let mut ui = Ui::start(&s, "move");
    let browser = browser();
    let p = Page::open(&browser, &ui.url, &shots_dir());
    p.press("Start");
    for (user, local, continue_to) in [
        (&old_user, &old_local, "the one you move to"),
        (
            &format!("@{new_local}:localhost"),
            &new_local,
            "Pick the rooms",
        ),
    ] {
        p.fill("#user", user);
        p.click("details summary");
        p.fill("#homeserver", &ng.url);
        p.press("Find my server");
        p.wait_for("Log in in the browser");
        assert!(
            !p.text().contains("Log in with the password"),
            "the server takes no password"
        );
        ng.next_login(local);
        p.press("Log in in the browser");
        // The page shows the login page's address; the person opens it (a new tab).
        let link = p.tab.wait_for_element("#login-link").unwrap();
        let href = link.get_attribute_value("href").unwrap().unwrap();
        assert!(href.starts_with("http://127.0.0.1:"), "{href}");
        let login = browser.new_tab().unwrap();
        login.navigate_to(&href).unwrap();
        p.wait_for(&format!("Logged in as {user}"));
        login.close(false).unwrap();
        p.press("Continue");
        p.wait_for(continue_to);
    }
    p.click("#select-none");
    p.click(&format!("input[value=\"{room}\"]"));
    p.press("Continue");
    p.press("Plan the move");
    p.wait_for("Start the move");
    p.press("Start the move");
    p.wait_for("The one step left, in Element X");
    let plan = std::fs::read_to_string(s.path("move/move.toml")).unwrap();
    assert!(plan.contains("login = \"oauth\""), "{plan}");
    let new_user = format!("@{new_local}:localhost");
    let membership = rooms::membership(old.client(), &room, &new_user).unwrap();
    assert_eq!(membership, Some(online::membership::Membership::Join));
    p.press("Quit");
    assert!(ui.child.wait().unwrap().success());
    old.close().unwrap();
}
