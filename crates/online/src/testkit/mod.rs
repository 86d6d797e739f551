//! The test homeserver (feature `testkit`): `scripts/test-all` starts a real Synapse on
//! loopback and exports its URL and registration secret; tests register fresh users
//! through the shared-secret admin API. A test that needs the server FAILS when it is
//! absent: it never skips.

pub mod stub;

use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use crate::client::{AccessToken, Body, Client, Homeserver};

/// Environment variable with the test homeserver's URL.
pub const URL_ENV: &str = "MATRIX_TRANSPLANT_TEST_HOMESERVER";
/// Environment variable with its `registration_shared_secret`.
pub const SECRET_ENV: &str = "MATRIX_TRANSPLANT_TEST_REGISTRATION_SECRET";

/// The running test homeserver.
pub struct TestServer {
    /// Its base URL.
    pub url: String,
    secret: String,
}

/// A registered user.
pub struct TestUser {
    /// `@name:localhost`.
    pub user_id: String,
    /// Its password.
    pub password: String,
    /// Its access token (text, for the binary's environment).
    pub token: String,
    /// A client with that token.
    pub client: Client,
}

/// A user name no other test (of this run or another) has: `prefix`, the process, a
/// counter, the clock.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test homeserver, or a panic that says how to get one.
pub fn server() -> TestServer {
    match (std::env::var(URL_ENV), std::env::var(SECRET_ENV)) {
        (Ok(url), Ok(secret)) => TestServer { url, secret },
        _ => panic!(
            "these tests need a real Synapse and none is running: run scripts/test-all \
             (it installs and starts one), or start one and set {URL_ENV} and {SECRET_ENV}"
        ),
    }
}

/// One of the other test homeservers `scripts/test-all` starts: `"ORG"` and `"PERSONAL"`
/// (two servers that federate with each other), `"LIMITED"` (stock-shaped rate limits,
/// scaled). A panic that says how to get it when it is not running.
pub fn server_named(label: &str) -> TestServer {
    let url_env = format!("MATRIX_TRANSPLANT_TEST_{label}_HOMESERVER");
    let secret_env = format!("MATRIX_TRANSPLANT_TEST_{label}_REGISTRATION_SECRET");
    match (std::env::var(&url_env), std::env::var(&secret_env)) {
        (Ok(url), Ok(secret)) => TestServer { url, secret },
        _ => panic!(
            "these tests need the {label} Synapse and it is not running: run scripts/test-all \
             (it installs and starts every test server), or start them with \
             scripts/synapse.sh's synapse_start and export {url_env} and {secret_env}"
        ),
    }
}

impl TestServer {
    /// The server's [`Homeserver`].
    pub fn homeserver(&self) -> Homeserver {
        Homeserver::parse(&self.url, false).expect("the test server is on loopback")
    }

    /// Registers a fresh user whose name starts with `prefix`.
    pub fn register(&self, prefix: &str) -> TestUser {
        let username = unique(prefix);
        let password = format!("pw-{username}");
        let agent = ureq::agent();
        let url = format!(
            "{}/_synapse/admin/v1/register",
            self.url.trim_end_matches('/')
        );
        #[derive(Deserialize)]
        struct Nonce {
            nonce: String,
        }
        let nonce: Nonce =
            serde_json::from_reader(agent.get(&url).call().expect("nonce").into_reader())
                .expect("nonce JSON");
        let mut mac = Hmac::<Sha1>::new_from_slice(self.secret.as_bytes()).expect("any key length");
        mac.update(format!("{}\0{username}\0{password}\0notadmin", nonce.nonce).as_bytes());
        let body = serde_json::json!({
            "nonce": nonce.nonce, "username": username, "password": password, "admin": false,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        #[derive(Deserialize)]
        struct Registered {
            user_id: String,
            access_token: String,
        }
        let r: Registered = serde_json::from_reader(
            agent
                .post(&url)
                .send_string(&body.to_string())
                .expect("register")
                .into_reader(),
        )
        .expect("register JSON");
        let client = Client::new(self.homeserver(), AccessToken::new(&r.access_token));
        TestUser {
            user_id: r.user_id,
            password,
            token: r.access_token,
            client,
        }
    }
}

impl TestUser {
    /// A session with this user's token at `url` (the server, or a proxy in front of it),
    /// `whoami` checked.
    pub fn session(&self, url: &str) -> crate::Session {
        crate::Session::open(
            Homeserver::parse(url, false).expect("a loopback URL"),
            crate::Credentials::Token(AccessToken::new(&self.token)),
            crate::SessionOptions {
                expected_user: Some(self.user_id.clone()),
                ..crate::SessionOptions::default()
            },
        )
        .expect("a session with the test user's token")
    }

    /// Creates a room (the server's default room version) and returns its ID.
    pub fn create_room(&self, name: &str) -> String {
        self.create_room_with(serde_json::json!({"name": name, "preset": "private_chat"}))
    }

    /// Creates a room from a `createRoom` body and returns its ID.
    pub fn create_room_with(&self, body: serde_json::Value) -> String {
        #[derive(Deserialize)]
        struct Created {
            room_id: String,
        }
        let body = body.to_string();
        let c: Created = self
            .client
            .call_json(
                "create a room",
                crate::client::Method::Post,
                &["v3", "createRoom"],
                &[],
                Body::Json(body.as_bytes()),
                true,
            )
            .expect("create room");
        c.room_id
    }

    /// Sends a text message; returns its event ID.
    pub fn say(&self, room: &str, text: &str) -> String {
        self.send(
            room,
            "m.room.message",
            serde_json::json!({"msgtype": "m.text", "body": text}),
        )
    }

    /// Sends a message event of any type (e.g. an `m.room.encrypted` made by a test
    /// device); returns its event ID.
    pub fn send(&self, room: &str, kind: &str, content: serde_json::Value) -> String {
        #[derive(Deserialize)]
        struct Sent {
            event_id: String,
        }
        static TXN: AtomicUsize = AtomicUsize::new(0);
        let txn = format!(
            "t{}x{}",
            std::process::id(),
            TXN.fetch_add(1, Ordering::Relaxed)
        );
        let body = content.to_string();
        let s: Sent = self
            .client
            .call_json(
                "send a message",
                crate::client::Method::Put,
                &["v3", "rooms", room, "send", kind, &txn],
                &[],
                Body::Json(body.as_bytes()),
                true,
            )
            .expect("send a message");
        s.event_id
    }

    /// Sends a state event; returns its event ID.
    pub fn set_state(
        &self,
        room: &str,
        kind: &str,
        key: &str,
        content: serde_json::Value,
    ) -> String {
        crate::rooms::put_state(&self.client, room, kind, key, &content).expect("send state")
    }

    /// Joins a room through `via`.
    pub fn join(&self, room: &str, via: &[String]) {
        crate::rooms::join(&self.client, room, via).expect("join");
    }

    /// Invites `user` into a room.
    pub fn invite(&self, room: &str, user: &str) {
        crate::rooms::invite(&self.client, room, user).expect("invite");
    }

    /// The server name part of the user ID.
    pub fn server_name(&self) -> &str {
        self.user_id.split_once(':').expect("a user ID").1
    }
}

/// What a [`Proxy`] does with one request.
pub enum Action {
    /// Forward it to the homeserver.
    Forward,
    /// Answer it with this status and JSON body instead.
    Answer(u16, String),
    /// Close the connection without an answer.
    Drop,
}

/// Decides each request's fate: called with its number (from 1, counted across every proxy
/// sharing the hook), method and path.
pub type Hook = std::sync::Arc<dyn Fn(usize, &str, &str) -> Action + Send + Sync>;

/// A hook that SIGKILLs the process whose ID is in `pid` at the request `kill_now` picks
/// (that request is dropped unanswered), and forwards every other: to test that a run
/// killed at any moment resumes.
pub fn killer(
    pid: std::sync::Arc<std::sync::Mutex<Option<u32>>>,
    kill_now: impl Fn(usize, &str, &str) -> bool + Send + Sync + 'static,
) -> Hook {
    std::sync::Arc::new(move |n, method, path| {
        if !kill_now(n, method, path) {
            return Action::Forward;
        }
        if let Some(pid) = *pid.lock().expect("pid lock") {
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .expect("kill(1)");
        }
        Action::Drop
    })
}

/// A loopback HTTP proxy in front of a homeserver that counts requests and can fail or
/// drop any of them: to test what the tool does when a server answers 502 or the process
/// dies at request N. One request per connection (answers carry `Connection: close`).
pub struct Proxy {
    /// Its base URL.
    pub url: String,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`), numbering requests in
    /// `count` and asking `hook` what to do with each.
    pub fn start(upstream: &str, count: std::sync::Arc<AtomicUsize>, hook: Hook) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, count, hook) = (upstream.clone(), count.clone(), hook.clone());
                std::thread::spawn(move || proxy_one(conn, &upstream, &count, &*hook));
            }
        });
        Proxy { url }
    }
}

fn proxy_one(
    conn: std::net::TcpStream,
    upstream: &str,
    count: &AtomicUsize,
    hook: &(dyn Fn(usize, &str, &str) -> Action + Send + Sync),
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let Ok(clone) = conn.try_clone() else { return };
    let mut reader = BufReader::new(clone);
    let mut conn = conn;
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if first.is_empty() {
            first = line.clone();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
    match hook(n, method, path) {
        Action::Drop => {}
        Action::Answer(status, json) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {status} Proxy\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
        Action::Forward => {
            let Ok(mut up) = std::net::TcpStream::connect(upstream) else {
                return;
            };
            let mut answer = Vec::new();
            if up.write_all(&head).is_err()
                || up.write_all(&body).is_err()
                || up.read_to_end(&mut answer).is_err()
            {
                return;
            }
            let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head: String = String::from_utf8_lossy(&answer[..split])
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                .map(|l| format!("{l}\r\n"))
                .collect();
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(b"Connection: close\r\n");
            let _ = conn.write_all(&answer[split + 2..]);
        }
    }
}

/// The server that delegates authentication to the fake Matrix Authentication Service
/// (`scripts/fake-mas.py`): OAuth 2.0 logins only, access tokens that live 3 s.
pub struct NextGen {
    /// The homeserver's URL.
    pub url: String,
    /// The provider's URL.
    pub mas: String,
}

/// The NEXTGEN server, or a panic that says how to get it.
pub fn nextgen() -> NextGen {
    match (
        std::env::var("MATRIX_TRANSPLANT_TEST_NEXTGEN_HOMESERVER"),
        std::env::var("MATRIX_TRANSPLANT_TEST_NEXTGEN_MAS"),
    ) {
        (Ok(url), Ok(mas)) => NextGen { url, mas },
        _ => panic!(
            "these tests need the NEXTGEN Synapse and its fake MAS, and they are not running: \
             run scripts/test-all, or start them with scripts/synapse.sh's synapse_start"
        ),
    }
}

impl NextGen {
    /// The homeserver.
    pub fn homeserver(&self) -> Homeserver {
        Homeserver::parse(&self.url, false).expect("the test server is on loopback")
    }

    /// Creates `localpart` (through the provider) and makes it the one who logs in at the
    /// next authorization: the test plays the person at the browser.
    pub fn next_login(&self, localpart: &str) -> String {
        ureq::post(&format!("{}/_test/next", self.mas))
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({ "localpart": localpart }).to_string())
            .expect("the fake MAS provisions the user");
        format!("@{localpart}:localhost")
    }

    /// The provider's counters: `refreshes`, `revocations`, `refused_refreshes`,
    /// `live_sessions`.
    pub fn stats(&self) -> serde_json::Value {
        let text = ureq::get(&format!("{}/_test/stats", self.mas))
            .call()
            .expect("the fake MAS answers")
            .into_string()
            .expect("text");
        serde_json::from_str(&text).expect("JSON")
    }
}

/// Makes `username` the one who signs on at the fake identity provider next (Synapse
/// creates `@username:localhost` at its first sign-on).
pub fn next_sso_login(username: &str) -> String {
    let idp = std::env::var("MATRIX_TRANSPLANT_TEST_IDP").unwrap_or_else(|_| {
        panic!("these tests need the fake identity provider: run scripts/test-all")
    });
    ureq::post(&format!("{idp}/_test/next"))
        .set("Content-Type", "application/json")
        .send_string(&serde_json::json!({ "username": username }).to_string())
        .expect("the fake identity provider answers");
    format!("@{username}:localhost")
}

/// Plays the browser of a login: follows `url` and its redirects (at most 10, each checked
/// to stay on loopback), carrying the cookies the servers set (Synapse's SSO session
/// cookie is `Secure`, which a browser would not send over http: the test sends it), on
/// another thread; the handle gives the last answer's status.
pub fn play_browser(url: &str) -> std::thread::JoinHandle<u16> {
    let mut next = url.to_owned();
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut cookies: Vec<String> = Vec::new();
        for _ in 0..10 {
            let parsed = url::Url::parse(&next).expect("a URL");
            assert_eq!(
                parsed.host_str(),
                Some("127.0.0.1"),
                "the login stays on loopback"
            );
            let mut req = agent.get(&next);
            if !cookies.is_empty() {
                req = req.set("Cookie", &cookies.join("; "));
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => panic!("the browser cannot reach {next}: {e}"),
            };
            for set in resp.all("Set-Cookie") {
                let pair = set.split(';').next().unwrap_or("").trim().to_owned();
                let name = pair.split('=').next().unwrap_or("").to_owned();
                cookies.retain(|c| c.split('=').next() != Some(name.as_str()));
                cookies.push(pair);
            }
            match resp.header("Location") {
                Some(loc) if (300..400).contains(&resp.status()) => {
                    next = parsed.join(loc).expect("a location").to_string()
                }
                _ => return resp.status(),
            }
        }
        panic!("more than 10 redirects")
    })
}

/// The access token a client holds now (to check it is dead after the session ends).
pub fn token_of(client: &Client) -> String {
    client.token().expose().to_owned()
}
