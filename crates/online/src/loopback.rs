//! The loopback redirect listener of a browser login (RFC 8252 §7.3): bound to 127.0.0.1 on
//! a random port BEFORE the login URL is shown, it serves exactly one request that carries
//! the expected `state`, then closes. A request from anywhere but loopback is dropped
//! unanswered; one with another path or a wrong `state` is answered 400 and the listener
//! goes on waiting (so a stray request cannot end the login, and cannot finish it either).
//!
//! It also serves `/start` once, with a redirect to the login URL: that is the address a
//! browser is opened on, so the login's `state` never appears in another program's
//! arguments (which every local user can read). A second `/start` means someone else is
//! racing the browser: the login stops. Each connection is served on its own thread and
//! must send its request head within [`HEAD_DEADLINE`], so a slow local connection cannot
//! hold the real browser back.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How long a person has to finish logging in, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long one connection may take to send its request line and headers.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);

/// The path a browser is opened on: it redirects to the login URL.
const START: &str = "/start";

/// What one connection was.
enum Served {
    /// `/start`, answered with the redirect.
    Start,
    /// The login's redirect, with the right `state`.
    Callback(Callback),
    /// Anything else (answered, or dropped).
    Other,
}

/// A bound listener, waiting for the browser to come back.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    path: String,
    /// How long [`Listener::wait`] waits.
    pub timeout: Duration,
}

/// The query of the one request accepted (its values may be secrets: wiped on drop).
pub struct Callback {
    params: Vec<(String, Zeroizing<String>)>,
}

impl Callback {
    /// The value of `key`, when present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback(<redacted>)")
    }
}

impl Listener {
    /// Binds 127.0.0.1 on a free port; the browser is sent back to `path` (e.g. "/callback").
    pub fn bind(path: &str) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::Login {
            reason: format!("cannot listen on 127.0.0.1 for the browser to come back: {e}"),
        })?;
        let addr = listener.local_addr().map_err(|e| Error::Login {
            reason: format!("cannot read the listener's port: {e}"),
        })?;
        listener.set_nonblocking(true).map_err(|e| Error::Login {
            reason: format!("cannot set up the listener: {e}"),
        })?;
        Ok(Listener {
            listener,
            addr,
            path: path.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Where the browser must be sent back: `http://127.0.0.1:PORT/path`.
    pub fn redirect_uri(&self) -> Url {
        Url::parse(&format!("http://{}{}", self.addr, self.path)).expect("a valid URL")
    }

    /// The address to open a browser on: `http://127.0.0.1:PORT/start`, which redirects
    /// to the login URL (so no argument of another program holds the login's `state`).
    pub fn start_url(&self) -> Url {
        Url::parse(&format!("http://{}{START}", self.addr)).expect("a valid URL")
    }

    /// Waits for the one request to `path` whose `state` equals `state`; answers it with a
    /// page saying the login went on in the terminal, and closes. Meanwhile `/start` is
    /// answered once with a redirect to `login`.
    pub fn wait(self, state: &str, login: &Url) -> Result<Callback> {
        let end = Instant::now() + self.timeout;
        let (tx, rx) = std::sync::mpsc::channel::<Served>();
        let mut started = false;
        loop {
            while let Ok(served) = rx.try_recv() {
                match served {
                    Served::Callback(callback) => return Ok(callback),
                    Served::Start if started => {
                        return Err(Error::Login {
                            reason: "the login's start address was opened twice: another \
                                     program on this computer may be trying to take the login \
                                     over; run the command again"
                                .into(),
                        })
                    }
                    Served::Start => started = true,
                    Served::Other => {}
                }
            }
            if Instant::now() >= end {
                return Err(Error::Login {
                    reason: format!(
                        "the browser did not come back within {} minutes: run the command again",
                        self.timeout.as_secs() / 60
                    ),
                });
            }
            let (conn, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) => {
                    return Err(Error::Login {
                        reason: format!("the login listener failed: {e}"),
                    })
                }
            };
            if !peer.ip().is_loopback() {
                continue; // Dropped unanswered.
            }
            let (tx, state, login) = (tx.clone(), Zeroizing::new(state.to_owned()), login.clone());
            let (addr, path) = (self.addr, self.path.clone());
            std::thread::spawn(move || {
                let served = serve(conn, addr, &path, &state, &login);
                let _ = tx.send(served);
            });
        }
    }
}

/// Reads one request (its head within [`HEAD_DEADLINE`]) and answers it.
fn serve(mut conn: TcpStream, addr: SocketAddr, path: &str, state: &str, login: &Url) -> Served {
    let Some(target) = request_target(&conn) else {
        return Served::Other;
    };
    let Some(target) = target else {
        answer(&mut conn, 405, "Only the login's redirect is served here.");
        return Served::Other;
    };
    let Ok(url) = Url::parse(&format!("http://{addr}{target}")) else {
        return Served::Other;
    };
    if url.path() == START {
        redirect(&mut conn, login);
        return Served::Start;
    }
    if url.path() != path {
        answer(&mut conn, 404, "Not the login's redirect.");
        return Served::Other;
    }
    let params: Vec<(String, Zeroizing<String>)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
        .collect();
    let callback = Callback { params };
    let given = callback.get("state").unwrap_or("");
    if !constant_time_eq(given.as_bytes(), state.as_bytes()) {
        answer(
            &mut conn,
            400,
            "This is not the login matrix-transplant started (its state does not match).",
        );
        return Served::Other;
    }
    if let Some(error) = callback.get("error") {
        let text = format!(
            "The login was refused: {}. Go back to the terminal.",
            crate::client::printable(error)
        );
        answer(&mut conn, 200, &text);
    } else {
        answer(
            &mut conn,
            200,
            "You are logged in: matrix-transplant goes on in the terminal. You can close this tab.",
        );
    }
    Served::Callback(callback)
}

/// The target of a `GET` request (`Some(None)` for another method); `None` when the head
/// does not come within [`HEAD_DEADLINE`] or is over 64 KiB.
fn request_target(conn: &TcpStream) -> Option<Option<String>> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let _ = conn.set_nonblocking(false);
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let (mut line, mut first, mut read) = (String::new(), String::new(), 0);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        line.clear();
        let n = (&mut reader).take(16 << 10).read_line(&mut line).ok()?;
        read += n;
        if n == 0 || read > 64 << 10 {
            return None;
        }
        if first.is_empty() {
            first = line.clone();
        } else if line == "\r\n" || line == "\n" {
            break;
        }
    }
    Some(match first.split_whitespace().collect::<Vec<_>>()[..] {
        ["GET", target, _] => Some(target.to_owned()),
        _ => None,
    })
}

fn redirect(conn: &mut TcpStream, to: &Url) {
    let _ = write!(
        conn,
        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
    );
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(conn: &mut TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>matrix-transplant</title><p>{}</p>\n",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A random URL-safe string of `bytes` random bytes (for `state`, PKCE, device IDs).
pub(crate) fn random_token(bytes: usize) -> Zeroizing<String> {
    use base64::Engine as _;
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    getrandom::getrandom(&mut buf).expect("the operating system's random source");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn login() -> Url {
        Url::parse("https://auth.example/authorize?state=s3cret").unwrap()
    }

    fn get(url: &str) -> (u16, String) {
        let url = Url::parse(url).unwrap();
        let mut s = TcpStream::connect(format!(
            "{}:{}",
            url.host_str().unwrap(),
            url.port().unwrap()
        ))
        .unwrap();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        (status, text)
    }

    #[test]
    fn a_wrong_state_is_refused_then_the_right_one_is_served_once() {
        let l = Listener::bind("/callback").unwrap();
        let uri = l.redirect_uri();
        assert_eq!(uri.host_str(), Some("127.0.0.1"));
        let base = uri.to_string();
        let waiter = std::thread::spawn(move || l.wait("s3cret", &login()));
        assert_eq!(get(&format!("{base}?code=evil&state=other")).0, 400);
        assert_eq!(get(&format!("{base}?code=evil")).0, 400);
        assert_eq!(
            get(&format!(
                "{}?code=c&state=s3cret",
                base.replace("/callback", "/other")
            ))
            .0,
            404
        );
        let (status, page) = get(&format!("{base}?code=abc&state=s3cret"));
        assert_eq!(status, 200, "{page}");
        let cb = waiter.join().unwrap().unwrap();
        assert_eq!(cb.get("code"), Some("abc"));
        // Closed after one request: a second cannot even connect.
        let port = uri.port().unwrap();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    /// A connection from another address of this machine (not loopback) reaches the
    /// listener's port, but is dropped unanswered even with the right `state`.
    #[test]
    fn a_connection_from_a_non_loopback_address_is_dropped() {
        let l = Listener::bind("/callback").unwrap();
        let uri = l.redirect_uri();
        let port = uri.port().unwrap().to_string();
        let waiter = std::thread::spawn(move || l.wait("right", &login()));
        let script = r#"
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect(("10.255.255.255", 1))
ip = u.getsockname()[0]
assert not ip.startswith("127."), ip
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5, source_address=(ip, 0))
c.sendall(b"GET /callback?code=evil&state=right HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    print(ip, "answered" if c.recv(100) else "closed")
except ConnectionResetError:
    print(ip, "closed")
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, &port])
            .output()
            .expect("python3 (the test setup installs Synapse with it)");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.trim_end().ends_with("closed"),
            "closed without an answer: {said}"
        );
        assert!(!waiter.is_finished(), "still waiting for the real browser");
        let (status, _) = get(&format!("{uri}?code=good&state=right"));
        assert_eq!(status, 200);
        assert_eq!(waiter.join().unwrap().unwrap().get("code"), Some("good"));
    }

    #[test]
    fn it_gives_up_after_its_timeout() {
        let mut l = Listener::bind("/cb").unwrap();
        l.timeout = Duration::from_millis(200);
        assert!(matches!(l.wait("x", &login()), Err(Error::Login { .. })));
    }

    /// M3: a browser is opened on /start, which redirects (once) to the login URL.
    #[test]
    fn start_redirects_to_the_login_once_and_a_second_start_stops_the_login() {
        let l = Listener::bind("/callback").unwrap();
        let start = l.start_url();
        assert_eq!(start.path(), "/start");
        assert!(
            start.query().is_none(),
            "no state in the address handed out"
        );
        let uri = l.redirect_uri();
        let waiter = std::thread::spawn(move || l.wait("s3cret", &login()));
        let (status, head) = get(start.as_str());
        assert_eq!(status, 302);
        assert!(
            head.contains("Location: https://auth.example/authorize?state=s3cret"),
            "{head}"
        );
        assert_eq!(get(start.as_str()).0, 302);
        let e = waiter.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("opened twice"), "{e}");
        assert!(TcpStream::connect(("127.0.0.1", uri.port().unwrap())).is_err());
    }

    /// L5: a local connection that sends its request slowly does not hold the browser back.
    #[test]
    fn a_slow_local_connection_does_not_block_the_browser() {
        let l = Listener::bind("/callback").unwrap();
        let uri = l.redirect_uri();
        let waiter = std::thread::spawn(move || l.wait("right", &login()));
        let mut slow = TcpStream::connect(("127.0.0.1", uri.port().unwrap())).unwrap();
        slow.write_all(b"GET /callb").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let (status, _) = get(&format!("{uri}?code=good&state=right"));
        assert_eq!(status, 200);
        assert!(started.elapsed() < HEAD_DEADLINE, "{:?}", started.elapsed());
        assert_eq!(waiter.join().unwrap().unwrap().get("code"), Some("good"));
        drop(slow);
    }

    #[test]
    fn random_tokens_differ_and_are_url_safe() {
        let (a, b) = (random_token(32), random_token(32));
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
