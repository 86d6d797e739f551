//! The client against a stub homeserver on loopback that answers from a script: how rate
//! limits are waited out (the server's `retry_after_ms`, the `Retry-After` header, the
//! default wait), the retry cap, and what an unreachable server gives. No Synapse needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use online::client::RateLimits;
use online::{AccessToken, Client, Error, Homeserver};

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
    fn client(&self, limits: RateLimits) -> (Client, Arc<Mutex<Vec<Duration>>>) {
        let hs = Homeserver::parse(&self.url, false).unwrap();
        let mut c = Client::new(hs, AccessToken::new("token"));
        c.set_rate_limits(limits);
        let waits = Arc::new(Mutex::new(Vec::new()));
        let w = waits.clone();
        c.on_rate_limit(Box::new(move |d| w.lock().unwrap().push(d)));
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
    }
}

#[test]
fn the_retry_after_header_is_obeyed_when_the_body_names_no_wait() {
    let mut limited = answer(429, LIMITED);
    limited.headers.push(("Retry-After", "1".into()));
    let stub = Stub::start(vec![limited, answer(200, WHOAMI)]);
    let (client, waits) = stub.client(fast());
    assert_eq!(client.whoami().unwrap().user_id, "@me:example.org");
    assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(1)]);
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
    assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(20)]);
    stub.finish();
}

#[test]
fn the_default_wait_applies_when_the_server_names_none() {
    let stub = Stub::start(vec![answer(429, LIMITED), answer(200, WHOAMI)]);
    let (client, waits) = stub.client(fast());
    client.whoami().unwrap();
    assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(3)]);
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
    assert!(
        matches!(&e, Error::Api { status: 401, errcode, .. } if errcode == "M_UNKNOWN_TOKEN"),
        "{e:?}"
    );
    assert!(e.to_string().contains("log in again"), "{e}");
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
