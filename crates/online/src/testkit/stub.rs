//! A scripted homeserver on loopback for tests that need no Synapse: routes by method and
//! path (percent-decoded, query ignored), each answering with a queue of one-time answers
//! and then its standing one; anything unrouted is 404 `M_NOT_FOUND` (as Synapse answers
//! for a state event a room lacks). Every request is recorded. Endpoint helpers say what
//! the server holds (`membership`, `power_levels`) or how it fails (`fail`), as
//! matrix-sdk's `MatrixMockServer` does.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::client::{AccessToken, Client, Homeserver};

/// One request the stub received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The body, as text.
    pub body: String,
}

#[derive(Default)]
struct Route {
    method: String,
    path: String,
    once: VecDeque<(u16, String)>,
    standing: Option<(u16, String)>,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    seen: Vec<Request>,
}

/// The stub server; it runs until the test ends.
pub struct Stub {
    /// Its base URL.
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The client-server API's path prefix.
pub const CLIENT: &str = "/_matrix/client/v3";

impl Stub {
    /// Starts a stub on a free loopback port; it answers `/versions` already.
    pub fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a stub port");
        let url = format!("http://{}", listener.local_addr().expect("stub address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(conn, &state));
            }
        });
        let stub = Stub { url, state };
        stub.on(
            "GET",
            "/_matrix/client/versions",
            200,
            r#"{"versions": ["v1.11"]}"#,
        );
        stub
    }

    fn route(&self, method: &str, path: &str, f: impl FnOnce(&mut Route)) -> &Self {
        let mut state = self.state.lock().expect("stub lock");
        let i = match state
            .routes
            .iter()
            .position(|r| r.method == method && r.path == path)
        {
            Some(i) => i,
            None => {
                state.routes.push(Route {
                    method: method.into(),
                    path: path.into(),
                    ..Route::default()
                });
                state.routes.len() - 1
            }
        };
        f(&mut state.routes[i]);
        self
    }

    /// `method path` answers `status body` from now on (after any one-time answers).
    pub fn on(&self, method: &str, path: &str, status: u16, body: &str) -> &Self {
        self.route(method, path, |r| r.standing = Some((status, body.into())))
    }

    /// `method path` answers `status body` once, before any later one-time answers.
    pub fn once(&self, method: &str, path: &str, status: u16, body: &str) -> &Self {
        self.route(method, path, |r| r.once.push_back((status, body.into())))
    }

    /// The server holds `user`'s membership of `room` (its member state event).
    pub fn membership(
        &self,
        room: &str,
        user: &str,
        membership: crate::rooms::Membership,
    ) -> &Self {
        let path = format!("{CLIENT}/rooms/{room}/state/m.room.member/{user}");
        let body = serde_json::json!({ "membership": membership }).to_string();
        self.on("GET", &path, 200, &body)
    }

    /// The server holds these power levels for `room`.
    pub fn power_levels(&self, room: &str, content: &serde_json::Value) -> &Self {
        let path = format!("{CLIENT}/rooms/{room}/state/m.room.power_levels/");
        self.on("GET", &path, 200, &content.to_string())
    }

    /// `method path` fails with `status` and a Matrix error `errcode` from now on.
    pub fn fail(&self, method: &str, path: &str, status: u16, errcode: &str) -> &Self {
        let body = serde_json::json!({ "errcode": errcode, "error": "stubbed" }).to_string();
        self.on(method, path, status, &body)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("stub lock").seen.clone()
    }

    /// How many requests `method` to a path containing `part` were made.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    }

    /// A client of this stub with a token.
    pub fn client(&self) -> Client {
        let hs = Homeserver::parse(&self.url, false).expect("a loopback URL");
        Client::new(hs, AccessToken::new("stub-token"))
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let Some(request) = read_request(&conn) else {
        return;
    };
    let (status, body) = {
        let mut state = state.lock().expect("stub lock");
        let answer = state
            .routes
            .iter_mut()
            .find(|r| r.method == request.method && r.path == request.path)
            .and_then(|r| r.once.pop_front().or_else(|| r.standing.clone()));
        state.seen.push(request);
        answer.unwrap_or((
            404,
            r#"{"errcode": "M_NOT_FOUND", "error": "not stubbed"}"#.into(),
        ))
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut len = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut words = first.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?;
    let path = target.split('?').next().unwrap_or("");
    let path = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    Some(Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
