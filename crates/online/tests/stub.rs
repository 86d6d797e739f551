//! The client against a stub homeserver on loopback that answers from a script: how rate
//! limits are waited out (the server's `retry_after_ms`, the `Retry-After` header, the
//! default wait), the retry cap, and what an unreachable server gives. No Synapse needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use online::auth::{Refresh, Tokens};
use online::client::{RateLimits, Wait, WaitCause};
use online::{AccessToken, Client, Credentials, Error, Homeserver, Session, SessionOptions};

/// One scripted answer.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        headers: vec![],
        body: body.to_owned(),
    }
}

/// A stub that serves `script` in order, one connection per request, and records each
/// request line.
struct Stub {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

fn read_request(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    first.trim().to_owned()
}

impl Stub {
    fn start(script: Vec<Answer>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            for a in script {
                let (mut stream, _) = listener.accept().unwrap();
                log.lock().unwrap().push(read_request(&stream));
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    a.status,
                    a.body.len()
                );
                for (k, v) in &a.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(a.body.as_bytes()).unwrap();
            }
        });
        Stub {
            url,
            seen,
            thread: Some(thread),
        }
    }

    /// A client of this stub that records every rate-limit wait it announces.
    fn client(&self, limits: RateLimits) -> (Client, Arc<Mutex<Vec<Wait>>>) {
        let hs = Homeserver::parse(&self.url, false).unwrap();
        let mut c = Client::new(hs, AccessToken::new("token"));
        c.set_rate_limits(limits);
        let waits = Arc::new(Mutex::new(Vec::new()));
        let w = waits.clone();
        c.on_rate_limit(Box::new(move |d| w.lock().unwrap().push(d.clone())));
        (c, waits)
    }

    /// Waits for the script to be served; returns the request lines seen.
    fn finish(mut self) -> Vec<String> {
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

const LIMITED: &str = r#"{"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}"#;
const WHOAMI: &str = r#"{"user_id": "@me:example.org"}"#;

fn fast() -> RateLimits {
    RateLimits {
        max_retries: 3,
        default_wait: Duration::from_millis(3),
        max_single_wait: Duration::from_secs(2),
        budget: Duration::from_secs(10),
        server_error_retries: 2,
        backoff: Duration::from_millis(2),
    }
}

fn durations(waits: &Mutex<Vec<Wait>>) -> Vec<Duration> {
    waits.lock().unwrap().iter().map(|w| w.duration).collect()
}

#[test]
fn the_retry_after_header_is_obeyed_when_the_body_names_no_wait() {
    let mut limited = answer(429, LIMITED);
    limited.headers.push(("Retry-After", "1".into()));
    let stub = Stub::start(vec![limited, answer(200, WHOAMI)]);
    let (client, waits) = stub.client(fast());
    assert_eq!(client.whoami().unwrap().user_id, "@me:example.org");
    assert_eq!(durations(&waits), [Duration::from_secs(1)]);
    assert_eq!(client.rate_limit_waits(), 1);
    assert_eq!(stub.finish().len(), 2);
}

#[test]
fn retry_after_ms_in_the_body_wins_over_the_header() {
    let mut limited = answer(
        429,
        r#"{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 20}"#,
    );
    limited.headers.push(("Retry-After", "7".into()));
    let stub = Stub::start(vec![limited, answer(200, WHOAMI)]);
    let (client, waits) = stub.client(fast());
    client.whoami().unwrap();
    assert_eq!(durations(&waits), [Duration::from_millis(20)]);
    stub.finish();
}

#[test]
fn the_default_wait_applies_when_the_server_names_none() {
    let stub = Stub::start(vec![answer(429, LIMITED), answer(200, WHOAMI)]);
    let (client, waits) = stub.client(fast());
    client.whoami().unwrap();
    assert_eq!(durations(&waits), [Duration::from_millis(3)]);
    stub.finish();
    assert_eq!(RateLimits::default().default_wait, Duration::from_secs(5));
}

#[test]
fn a_request_is_retried_at_most_max_retries_times() {
    let script = (0..4).map(|_| answer(429, LIMITED)).collect();
    let stub = Stub::start(script);
    let (client, waits) = stub.client(fast());
    match client.whoami() {
        Err(Error::Api {
            status, errcode, ..
        }) => assert_eq!((status, errcode.as_str()), (429, "M_LIMIT_EXCEEDED")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        waits.lock().unwrap().len(),
        3,
        "a wait per retry, none after the last try"
    );
    let seen = stub.finish();
    assert_eq!(seen.len(), 4, "the first try and 3 retries");
    assert!(seen
        .iter()
        .all(|l| l.starts_with("GET /_matrix/client/v3/account/whoami")));
}

#[test]
fn errors_carry_the_servers_errcode_and_an_unreachable_server_is_a_transport_error() {
    let stub = Stub::start(vec![answer(
        401,
        r#"{"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid token"}"#,
    )]);
    let (client, _) = stub.client(fast());
    let e = client.whoami().unwrap_err();
    // A token the user gave cannot be renewed: the error says so and what to do.
    let Error::TokenRejected { cause, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(&**cause, Error::Api { status: 401, errcode, .. } if errcode == "M_UNKNOWN_TOKEN"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("let the tool log in itself (OAuth 2.0, single sign-on or password)"),
        "{e}"
    );
    stub.finish();
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hs = Homeserver::parse(&format!("http://{closed}"), false).unwrap();
    let e = Client::new(hs, AccessToken::new("t")).whoami().unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

#[test]
fn a_long_wait_is_clamped_and_all_waits_fit_in_the_budget() {
    let ten_minutes = r#"{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 600000}"#;
    let stub = Stub::start(vec![answer(429, ten_minutes), answer(200, WHOAMI)]);
    let limits = RateLimits {
        max_single_wait: Duration::from_millis(5),
        ..fast()
    };
    let (client, waits) = stub.client(limits);
    client.whoami().unwrap();
    assert_eq!(
        *waits.lock().unwrap(),
        [Wait {
            duration: Duration::from_millis(5),
            cause: WaitCause::RateLimited {
                asked: Some(Duration::from_secs(600))
            }
        }]
    );
    stub.finish();
    // The budget: two waits of 8 ms do not fit in 10 ms; the second is not taken.
    let eight = r#"{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 8}"#;
    let stub = Stub::start(vec![answer(429, eight), answer(429, eight)]);
    let limits = RateLimits {
        budget: Duration::from_millis(10),
        ..fast()
    };
    let (client, waits) = stub.client(limits);
    let e = client.whoami().unwrap_err();
    assert!(matches!(e, Error::WaitBudget { .. }), "{e:?}");
    assert_eq!(durations(&waits), [Duration::from_millis(8)]);
    assert_eq!(stub.finish().len(), 2);
}

#[test]
fn idempotent_requests_are_retried_after_server_errors_and_posts_are_not() {
    let stub = Stub::start(vec![
        answer(502, "Bad Gateway"),
        answer(503, "{}"),
        answer(200, "{}"),
    ]);
    let (client, waits) = stub.client(fast());
    client
        .call(
            "write",
            online::client::Method::Put,
            &["v3", "x"],
            &[],
            online::client::Body::Json(b"{}"),
        )
        .unwrap();
    let causes: Vec<WaitCause> = waits
        .lock()
        .unwrap()
        .iter()
        .map(|w| w.cause.clone())
        .collect();
    assert_eq!(
        causes,
        [
            WaitCause::ServerError(Some(502)),
            WaitCause::ServerError(Some(503))
        ]
    );
    assert_eq!(
        durations(&waits),
        [Duration::from_millis(2), Duration::from_millis(4)],
        "backoff doubles"
    );
    stub.finish();
    let stub = Stub::start(vec![answer(502, "Bad Gateway")]);
    let (client, _) = stub.client(fast());
    let e = client
        .call(
            "log out",
            online::client::Method::Post,
            &["v3", "logout"],
            &[],
            online::client::Body::Json(b"{}"),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Api { status: 502, .. }), "{e:?}");
    assert_eq!(stub.finish().len(), 1, "a POST is sent once");
    // The retries are bounded too.
    let stub = Stub::start((0..3).map(|_| answer(500, "{}")).collect());
    let (client, _) = stub.client(fast());
    assert!(client.whoami().is_err());
    assert_eq!(stub.finish().len(), 3, "the first try and 2 retries");
}

#[test]
fn redirects_are_refused_not_followed() {
    let mut moved = answer(302, "");
    moved.headers.push((
        "Location",
        "http://127.0.0.1:9/_matrix/client/v3/account/whoami".into(),
    ));
    let stub = Stub::start(vec![moved]);
    let (client, _) = stub.client(fast());
    let e = client.whoami().unwrap_err();
    assert!(
        matches!(&e, Error::Redirect { status: 302, location, .. } if location.contains("127.0.0.1:9")),
        "{e:?}"
    );
    assert_eq!(stub.finish().len(), 1);
}

#[test]
fn answers_are_bounded_and_server_text_cannot_drive_the_terminal() {
    let huge = format!(
        "{{\"user_id\": \"@me:x\", \"pad\": \"{}\"}}",
        "x".repeat(online::client::MAX_BODY)
    );
    let stub = Stub::start(vec![answer(200, &huge)]);
    let (client, _) = stub.client(fast());
    let e = client.whoami().unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    stub.finish();
    let stub = Stub::start(vec![answer(
        403,
        r#"{"errcode": "M_FORBIDDEN", "error": "no \u001b]0;pwned\u0007 way"}"#,
    )]);
    let (client, _) = stub.client(fast());
    let e = client.whoami().unwrap_err().to_string();
    assert!(!e.contains('\u{1b}') && !e.contains('\u{7}'), "{e:?}");
    assert!(e.contains("pwned"), "{e}");
    stub.finish();
}

#[test]
fn a_session_checks_the_server_first_and_the_tokens_account() {
    let versions = r#"{"versions": ["v1.11"]}"#;
    let stub = Stub::start(vec![
        answer(200, versions),
        answer(200, r#"{"user_id": "@other:example.org"}"#),
    ]);
    let hs = Homeserver::parse(&stub.url, false).unwrap();
    let options = SessionOptions {
        expected_user: Some("@me:example.org".into()),
        limits: fast(),
        ..SessionOptions::default()
    };
    let e = Session::open(hs, Credentials::Token(AccessToken::new("t")), options).unwrap_err();
    assert!(
        matches!(&e, Error::WrongAccount { expected, actual } if expected == "@me:example.org" && actual == "@other:example.org"),
        "{e:?}"
    );
    let seen = stub.finish();
    assert!(
        seen[0].starts_with("GET /_matrix/client/versions"),
        "{seen:?}"
    );
    // Not a Matrix server: no password is sent.
    let stub = Stub::start(vec![answer(404, "<html>not here</html>")]);
    let hs = Homeserver::parse(&stub.url, false).unwrap();
    let password = Credentials::Password {
        user_id: "@me:example.org".into(),
        password: zeroize::Zeroizing::new("secret".into()),
    };
    assert!(Session::open(
        hs,
        password,
        SessionOptions {
            limits: fast(),
            ..Default::default()
        }
    )
    .is_err());
    assert_eq!(stub.finish().len(), 1, "only /versions was asked");
}

#[test]
fn m_direct_is_read_back_after_writing_and_merged_again_when_another_client_wrote() {
    let new = m_direct::DirectMap::parse(r#"{"@peer:x": ["!dm:x"]}"#).unwrap();
    let kept = r#"{"@peer:x": ["!dm:x"], "@other:x": ["!o:x"]}"#;
    let stub = Stub::start(vec![
        answer(200, "{}"),                        // read
        answer(200, "{}"),                        // write
        answer(200, r#"{"@other:x": ["!o:x"]}"#), // read back: another client replaced it
        answer(200, "{}"),                        // write the merge with what is there now
        answer(200, kept),                        // read back: everything is there
    ]);
    let (client, _) = stub.client(fast());
    let done = online::direct::merge_into(&client, "@me:x", &new).unwrap();
    assert_eq!(done.writes, 2);
    assert_eq!(done.added, [("@peer:x".to_owned(), "!dm:x".to_owned())]);
    assert_eq!(done.users_after, 2);
    let seen = stub.finish();
    assert_eq!(
        seen.iter().map(|l| &l[..3]).collect::<Vec<_>>(),
        ["GET", "PUT", "GET", "PUT", "GET"]
    );
    // Lost twice: a clear error, no third write.
    let stub = Stub::start(vec![
        answer(200, "{}"),
        answer(200, "{}"),
        answer(200, "{}"),
        answer(200, "{}"),
        answer(200, "{}"),
    ]);
    let (client, _) = stub.client(fast());
    let e = online::direct::merge_into(&client, "@me:x", &new).unwrap_err();
    assert!(matches!(e, Error::DirectNotKept { missing: 1 }), "{e:?}");
    assert_eq!(stub.finish().len(), 5);
    // A write must be answered with an object.
    let stub = Stub::start(vec![answer(200, "{}"), answer(200, "[]")]);
    let (client, _) = stub.client(fast());
    let e = online::direct::merge_into(&client, "@me:x", &new).unwrap_err();
    assert!(matches!(e, Error::BadResponse { .. }), "{e:?}");
    stub.finish();
}

/// Backup version "1" of `key`, holding `count` sessions.
fn backup_info(key: &online::backup::BackupKey, count: u64) -> online::backup::BackupInfo {
    online::backup::BackupInfo {
        algorithm: online::backup::ALGORITHM.into(),
        auth_data: serde_json::json!({"public_key": key.public_key()}),
        count,
        etag: String::new(),
        version: "1".into(),
    }
}

/// A backup of two rooms, encrypted to `key`: (the answer's JSON, each room's session IDs).
fn backup_of(key: &online::backup::BackupKey) -> (serde_json::Value, Vec<(String, String)>) {
    use online::backup::Encryptor;
    let enc = Encryptor::new(&backup_info(key, 3), key).unwrap();
    let device = key_export::testkit::Device::new();
    let mut rooms = serde_json::Map::new();
    let mut ids = Vec::new();
    for (room, n) in [("!a:x", 2), ("!b:x", 1)] {
        let mut sessions = serde_json::Map::new();
        for i in 0..n {
            let s = device.new_session(room).export_at(i);
            let raw = serde_json::value::RawValue::from_string(s.to_json()).unwrap();
            let data = enc.encrypt(&key_export::SessionRef::parse(&raw)).unwrap();
            sessions.insert(s.session_id.clone(), serde_json::to_value(&data).unwrap());
            ids.push((room.to_owned(), s.session_id));
        }
        rooms.insert(room.into(), serde_json::json!({ "sessions": sessions }));
    }
    (
        serde_json::json!({"rooms": rooms, "x.unknown": [1, 2]}),
        ids,
    )
}

#[test]
fn the_whole_backup_is_read_room_by_room_and_listed_rooms_one_get_each() {
    use online::backup::{self, BackupKey, Rooms};
    let (key, _) = BackupKey::generate();
    let info = backup_info(&key, 3);
    let (whole, ids) = backup_of(&key);
    // Everything but !b: one GET, !b's sessions skipped unread, the rest handed on per room.
    let stub = Stub::start(vec![answer(200, &whole.to_string())]);
    let (client, _) = stub.client(fast());
    let mut handed = Vec::new();
    let keep = |room: &str| room != "!b:x";
    let done = backup::download_each(&client, &info, &key, Rooms::Matching(&keep), &mut |room| {
        handed.push(room.len());
        Ok(())
    })
    .unwrap();
    assert_eq!((done.sessions, done.rooms, handed), (2, 1, vec![2]));
    assert!(done.skipped.is_empty());
    let seen = stub.finish();
    assert!(
        seen[0].starts_with("GET /_matrix/client/v3/room_keys/keys?version=1"),
        "{seen:?}"
    );
    // Listed rooms: one GET per room, the answers being those rooms' sessions.
    let room_b = whole["rooms"]["!b:x"].to_string();
    let stub = Stub::start(vec![
        answer(200, &room_b),
        answer(404, r#"{"errcode": "M_NOT_FOUND"}"#),
    ]);
    let (client, _) = stub.client(fast());
    let listed = ["!b:x".to_owned(), "!none:x".to_owned()];
    let mut entries = Vec::new();
    let done = backup::download_each(&client, &info, &key, Rooms::Listed(&listed), &mut |room| {
        entries.extend(room);
        Ok(())
    })
    .unwrap();
    assert_eq!((done.sessions, done.rooms), (1, 1));
    let entry: serde_json::Value = serde_json::from_str(&entries[0]).unwrap();
    assert_eq!(entry["session_id"], ids[2].1.as_str());
    let seen = stub.finish();
    assert!(
        seen[0].starts_with("GET /_matrix/client/v3/room_keys/keys/!b:x?version=1"),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with("GET /_matrix/client/v3/room_keys/keys/!none:x"),
        "{seen:?}"
    );
    // A sink that fails stops the download with its error.
    let stub = Stub::start(vec![answer(200, &whole.to_string())]);
    let (client, _) = stub.client(fast());
    let e = backup::download_each(
        &client,
        &info,
        &key,
        Rooms::Matching(&|_| true),
        &mut |_| Err(Error::Tls("the disk is full".into())),
    )
    .unwrap_err();
    assert!(e.to_string().contains("the disk is full"), "{e}");
    stub.finish();
}

/// An upload is done only when the server answers with the spec's `{count, etag}`.
#[test]
fn an_upload_answered_without_a_count_is_an_error() {
    use online::backup::{self, BackupKey};
    let (key, _) = BackupKey::generate();
    let info = backup_info(&key, 0);
    let s = key_export::testkit::Device::new()
        .new_session("!a:x")
        .export_at(0);
    let raw = serde_json::value::RawValue::from_string(s.to_json()).unwrap();
    let parsed = key_export::SessionRef::parse(&raw);
    let stub = Stub::start(vec![answer(200, "{}")]);
    let (client, _) = stub.client(fast());
    let e = backup::upload(&client, &info, &key, &[&parsed], 10, &|_| {}).unwrap_err();
    assert!(matches!(e, Error::BadResponse { .. }), "{e:?}");
    stub.finish();
    let stub = Stub::start(vec![answer(200, r#"{"count": 1, "etag": "e1"}"#)]);
    let (client, _) = stub.client(fast());
    let done = backup::upload(&client, &info, &key, &[&parsed], 10, &|_| {}).unwrap();
    assert_eq!((done.sent, done.count_after), (1, 1));
    stub.finish();
}

fn refreshable(stub: &Stub, expires_in: Option<Duration>) -> Client {
    let hs = Homeserver::parse(&stub.url, false).unwrap();
    Client::with_tokens(
        hs,
        Tokens {
            access: AccessToken::new("first"),
            refresh: Some(Refresh::Matrix {
                url: url::Url::parse(&format!("{}/_matrix/client/v3/refresh", stub.url)).unwrap(),
                token: zeroize::Zeroizing::new("r1".into()),
            }),
            expires_in,
        },
    )
}

#[test]
fn a_rejected_token_is_renewed_once_and_the_request_sent_again() {
    let stub = Stub::start(vec![
        answer(
            401,
            r#"{"errcode": "M_UNKNOWN_TOKEN", "soft_logout": true}"#,
        ),
        answer(
            200,
            r#"{"access_token": "second", "refresh_token": "r2", "expires_in_ms": 600000}"#,
        ),
        answer(200, WHOAMI),
        // The renewed token rejected too: renewed again only for a new request.
        answer(
            401,
            r#"{"errcode": "M_UNKNOWN_TOKEN", "soft_logout": false}"#,
        ),
        answer(
            400,
            r#"{"errcode": "M_UNKNOWN_TOKEN", "error": "refresh token already used"}"#,
        ),
    ]);
    let client = refreshable(&stub, None);
    client.whoami().unwrap();
    assert_eq!(client.refreshes(), 1);
    let e = client.whoami().unwrap_err();
    assert!(matches!(e, Error::SessionEnded { .. }), "{e:?}");
    assert!(e.to_string().contains("log in again"), "{e}");
    let seen = stub.finish();
    assert_eq!(
        seen,
        [
            "GET /_matrix/client/v3/account/whoami HTTP/1.1",
            "POST /_matrix/client/v3/refresh HTTP/1.1",
            "GET /_matrix/client/v3/account/whoami HTTP/1.1",
            "GET /_matrix/client/v3/account/whoami HTTP/1.1",
            "POST /_matrix/client/v3/refresh HTTP/1.1",
        ]
    );
}

#[test]
fn a_token_about_to_expire_is_renewed_before_the_request() {
    let stub = Stub::start(vec![
        answer(
            200,
            r#"{"access_token": "second", "refresh_token": "r2", "expires_in_ms": 600000}"#,
        ),
        answer(200, WHOAMI),
        answer(200, WHOAMI),
    ]);
    // Expired already (a lifetime of 0 means "not said", so 1 ms, then waited out): renewed
    // before the first request goes out.
    let client = refreshable(&stub, Some(Duration::from_millis(1)));
    std::thread::sleep(Duration::from_millis(5));
    client.whoami().unwrap();
    // Ten minutes now: not renewed again.
    client.whoami().unwrap();
    assert_eq!(client.refreshes(), 1);
    let seen = stub.finish();
    assert_eq!(seen[0], "POST /_matrix/client/v3/refresh HTTP/1.1");
    assert_eq!(seen.len(), 3);
}

#[test]
fn forks_share_one_renewal() {
    let stub = Stub::start(vec![
        answer(401, r#"{"errcode": "M_UNKNOWN_TOKEN"}"#),
        answer(200, r#"{"access_token": "second", "refresh_token": "r2"}"#),
        answer(200, WHOAMI),
        answer(200, WHOAMI),
    ]);
    let client = refreshable(&stub, None);
    let fork = client.fork();
    client.whoami().unwrap();
    // The fork uses the renewed token at once: no 401, no second refresh.
    fork.whoami().unwrap();
    assert_eq!(fork.refreshes(), 1);
    assert_eq!(stub.finish().len(), 4);
}
