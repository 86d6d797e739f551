//! The page's guards, each tested over raw HTTP against a real server (`web::serve` on
//! loopback): each test fails if its guard is taken away. (What a browser does with them,
//! the cookie hidden from scripts and the key gone from the address bar, is tested in a
//! real Chromium by the binary's `ui` tests.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

struct Server {
    port: u16,
    launch: String,
    opener: PathBuf,
    // Kept for the server's life (removed when the test ends).
    _folder: tempfile::TempDir,
    ended: JoinHandle<web::Ended>,
}

fn serve(idle: Duration) -> Server {
    let folder = tempfile::tempdir().unwrap();
    let config = web::Config {
        folder: folder.path().join("move"),
        reach: web::login::Reach::default(),
        idle,
        port: 0,
    };
    let (tx, rx) = mpsc::channel();
    let ended = std::thread::spawn(move || {
        web::serve(config, |ready| {
            tx.send((ready.url.to_owned(), ready.opener.to_owned()))
                .unwrap()
        })
        .unwrap()
    });
    let (launch, opener) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let port = launch
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Server {
        port,
        launch,
        opener,
        _folder: folder,
        ended,
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

impl Server {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// One request, every header given by the test (Host included).
    fn raw(&self, method: &str, path: &str, headers: &[(&str, String)], body: &str) -> Answer {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        conn.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        Answer {
            status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
    /// The launch address's path (`/start?k=…`).
    fn launch_path(&self) -> String {
        self.launch.trim_start_matches(&self.origin()).to_owned()
    }
    /// Trades the launch key; the cookie header to send after.
    fn open(&self) -> String {
        let a = self.raw("GET", &self.launch_path(), &[("Host", self.host())], "");
        assert_eq!(a.status, 303, "{}", a.head);
        let set = a.header("Set-Cookie").unwrap();
        set.split(';').next().unwrap().to_owned()
    }
    /// The page's token, read from a screen.
    fn token(&self, cookie: &str) -> String {
        let a = self.raw(
            "GET",
            "/welcome",
            &[("Host", self.host()), ("Cookie", cookie.to_owned())],
            "",
        );
        let at = a.body.find("name=\"token\" value=\"").unwrap() + 20;
        a.body[at..at + 64].to_owned()
    }
    fn quit(self, cookie: &str) -> web::Ended {
        let token = self.token(cookie);
        let a = self.raw(
            "POST",
            "/quit",
            &[
                ("Host", self.host()),
                ("Cookie", cookie.to_owned()),
                ("Origin", self.origin()),
            ],
            &format!("token={token}"),
        );
        assert_eq!(a.status, 200);
        self.ended.join().unwrap()
    }
}

#[test]
fn the_launch_key_is_traded_once_for_a_strict_http_only_cookie_and_leaves_the_address() {
    let s = serve(Duration::from_secs(600));
    let mode = std::fs::metadata(&s.opener).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the opener file holds the key");
    assert!(std::fs::read_to_string(&s.opener)
        .unwrap()
        .contains(&s.launch));
    // A wrong key opens nothing and does not use the key up.
    let wrong = s.raw("GET", "/start?k=00", &[("Host", s.host())], "");
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("Set-Cookie").is_none());
    let a = s.raw("GET", &s.launch_path(), &[("Host", s.host())], "");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("Location").as_deref(), Some("/"));
    let set = a.header("Set-Cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
    assert!(!s.opener.exists(), "the opener goes once the key is used");
    let again = s.raw("GET", &s.launch_path(), &[("Host", s.host())], "");
    assert_eq!(again.status, 403, "the key works once");
    assert!(again.header("Set-Cookie").is_none());
    let cookie = set.split(';').next().unwrap().to_owned();
    // The browser that used it (it has the cookie) goes on to the page.
    let reopened = s.raw(
        "GET",
        &s.launch_path(),
        &[("Host", s.host()), ("Cookie", cookie.clone())],
        "",
    );
    assert_eq!(
        (reopened.status, reopened.header("Location").as_deref()),
        (303, Some("/"))
    );
    assert!(reopened.header("Set-Cookie").is_none());
    let page = s.raw(
        "GET",
        "/",
        &[("Host", s.host()), ("Cookie", cookie.clone())],
        "",
    );
    assert_eq!(page.status, 303);
    assert_eq!(s.quit(&cookie), web::Ended::Quit);
}

#[test]
fn without_the_cookie_nothing_is_shown_not_even_the_assets() {
    let s = serve(Duration::from_secs(600));
    let cookie = s.open();
    for path in ["/", "/welcome", "/rooms", "/assets/app.js", "/events"] {
        let none = s.raw("GET", path, &[("Host", s.host())], "");
        assert_eq!(none.status, 403, "{path} without a cookie");
        let forged = s.raw(
            "GET",
            path,
            &[
                ("Host", s.host()),
                ("Cookie", format!("mt_session={}", "a".repeat(64))),
            ],
            "",
        );
        assert_eq!(forged.status, 403, "{path} with another cookie");
    }
    // A stranger's upload is refused on its head: its body (announced as 2 GB, never
    // sent) is not waited for.
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /keys/export HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nContent-Type: \
         application/octet-stream\r\nContent-Length: 2000000000\r\nConnection: close\r\n\r\n",
        s.host(),
        s.origin()
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 12];
    conn.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 403");
    let ok = s.raw(
        "GET",
        "/welcome",
        &[("Host", s.host()), ("Cookie", cookie.clone())],
        "",
    );
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("What does not move"));
    s.quit(&cookie);
}

#[test]
fn another_host_name_is_refused_even_with_the_cookie_and_the_key() {
    let s = serve(Duration::from_secs(600));
    // DNS rebinding: a page of evil.example, its name pointed at 127.0.0.1, names itself.
    let rebound = s.raw(
        "GET",
        &s.launch_path(),
        &[("Host", format!("evil.example:{}", s.port))],
        "",
    );
    assert_eq!(rebound.status, 421);
    assert!(rebound.header("Set-Cookie").is_none());
    let cookie = s.open();
    for host in [
        format!("evil.example:{}", s.port),
        format!("localhost:{}", s.port),
        String::new(),
    ] {
        let a = s.raw(
            "GET",
            "/welcome",
            &[("Host", host.clone()), ("Cookie", cookie.clone())],
            "",
        );
        assert_eq!(a.status, 421, "Host {host:?}");
    }
    s.quit(&cookie);
}

#[test]
fn a_change_needs_this_origin_and_the_token() {
    let s = serve(Duration::from_secs(600));
    let cookie = s.open();
    let token = s.token(&cookie);
    let base = |origin: Option<String>| {
        let mut h = vec![("Host", s.host()), ("Cookie", cookie.clone())];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        h
    };
    let started = |s: &Server| {
        let a = s.raw("GET", "/", &base(None), "");
        a.header("Location").unwrap() != "/welcome"
    };
    let cases = [
        (None, format!("token={token}"), "no Origin"),
        (
            Some("http://evil.example".to_owned()),
            format!("token={token}"),
            "another Origin",
        ),
        (
            Some("null".to_owned()),
            format!("token={token}"),
            "an opaque Origin",
        ),
        (Some(s.origin()), String::new(), "no token"),
        (
            Some(s.origin()),
            format!("token={}", "0".repeat(64)),
            "a wrong token",
        ),
    ];
    for (origin, body, what) in cases {
        let a = s.raw("POST", "/welcome", &base(origin), &body);
        assert_eq!(a.status, 403, "{what}");
        assert!(!started(&s), "{what}: nothing changed");
    }
    let a = s.raw(
        "POST",
        "/welcome",
        &base(Some(s.origin())),
        &format!("token={token}"),
    );
    assert_eq!(a.status, 303);
    assert!(started(&s));
    s.quit(&cookie);
}

#[test]
fn every_answer_has_the_strict_headers_and_assets_come_from_the_binary() {
    let s = serve(Duration::from_secs(600));
    let cookie = s.open();
    let with = [("Host", s.host()), ("Cookie", cookie.clone())];
    let answers = [
        s.raw("GET", "/welcome", &with, ""),
        s.raw("GET", "/assets/style.css", &with, ""),
        s.raw("GET", "/assets/app.js", &with, ""),
        s.raw("GET", "/welcome", &[("Host", s.host())], ""),
    ];
    for a in &answers {
        let csp = a.header("Content-Security-Policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
        assert_eq!(
            a.header("X-Content-Type-Options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(a.header("Referrer-Policy").as_deref(), Some("same-origin"));
        assert_eq!(a.header("Cache-Control").as_deref(), Some("no-store"));
    }
    assert!(answers[0].body.contains("src=\"/assets/app.js\""));
    assert!(!answers[0].body.contains("<script>"), "no inline script");
    assert!(
        !answers[0].body.contains("http://") && !answers[0].body.contains("https://"),
        "nothing from elsewhere"
    );
    assert!(answers[2].body.contains("EventSource"));
    s.quit(&cookie);
}

#[test]
fn the_server_ends_after_the_idle_time_and_on_quit() {
    let s = serve(Duration::from_secs(1));
    let started = std::time::Instant::now();
    while !s.ended.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still serving 10 s into an idle time of 1 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.ended.join().unwrap(), web::Ended::Idle);
    let s = serve(Duration::from_secs(600));
    let cookie = s.open();
    let port = s.port;
    assert_eq!(s.quit(&cookie), web::Ended::Quit);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after Quit"
    );
}

#[test]
fn a_change_for_a_screen_not_yet_open_does_nothing_and_echoes_nothing() {
    let s = serve(Duration::from_secs(600));
    let cookie = s.open();
    let token = s.token(&cookie);
    let h = [
        ("Host", s.host()),
        ("Cookie", cookie.clone()),
        ("Origin", s.origin()),
    ];
    // Not logged in yet: the keys screen is not open; nothing is done, nothing echoed.
    let typo = "EsTc 8Pbw Xk3Q Zzzz";
    let a = s.raw(
        "POST",
        "/keys",
        &h,
        &format!("token={token}&new_recovery={}", typo.replace(' ', "+")),
    );
    assert_eq!(a.status, 303);
    assert_eq!(a.header("Location").as_deref(), Some("/welcome"));
    let page = s.raw("GET", "/welcome", &h[..2], "");
    assert!(
        !page.body.contains("8Pbw"),
        "a secret never comes back in a page"
    );
    s.quit(&cookie);
}
