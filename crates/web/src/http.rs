//! Requests and responses: what a handler reads of a request (path, query, form, the
//! headers the guard checks), and every response sent with the same strict headers.

use std::collections::HashMap;
use std::io::Read;

use zeroize::Zeroizing;

use crate::guard::Seen;

/// The most a form may hold (an export upload has its own limit).
const FORM_LIMIT: u64 = 1 << 20;
/// The most an uploaded key export may hold (the largest seen are about 300 MB).
pub const UPLOAD_LIMIT: u64 = 1 << 30;

/// Every response's security headers: nothing but this server's own scripts, styles and
/// images; no framing; no referrer; nothing cached.
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    // Not no-referrer: with it, a browser sends `Origin: null` on form posts, and the
    // guard needs the real one. Same-origin sends nothing to any other site.
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

/// A request, read.
pub struct Req {
    /// GET or POST (anything else is refused).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's fields.
    pub query: HashMap<String, String>,
    /// The headers the handlers and the guard read, lower-case names.
    pub headers: HashMap<String, String>,
    /// A form's fields (POST with a form body); values wiped when dropped.
    pub form: Form,
    /// A raw body (an uploaded file), when the request is not a form.
    pub body: Option<Zeroizing<Vec<u8>>>,
}

/// A form's fields, each name with its values in order.
#[derive(Default)]
pub struct Form(Vec<(String, Zeroizing<String>)>);

impl Form {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, when not empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn parse(bytes: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
                .collect(),
        )
    }
}

impl Req {
    /// Reads `request`'s head (the body is read by [`Req::read_body`], once the guard has
    /// passed the head: a stranger's request never gets its body read).
    pub fn head(request: &tiny_http::Request) -> Req {
        let method = request.method().as_str().to_owned();
        let (path, query) = match request.url().split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (request.url().to_owned(), String::new()),
        };
        let query = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let headers: HashMap<String, String> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect();
        Req {
            method,
            path,
            query,
            headers,
            form: Form::default(),
            body: None,
        }
    }

    /// Reads the body: a form, or a raw upload of at most [`UPLOAD_LIMIT`] bytes; false
    /// when it is too large or unreadable.
    pub fn read_body(&mut self, request: &mut tiny_http::Request) -> bool {
        let is_form = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let limit = if is_form { FORM_LIMIT } else { UPLOAD_LIMIT };
        let mut bytes = Zeroizing::new(Vec::new());
        let read = request.as_reader().take(limit + 1).read_to_end(&mut bytes);
        if !read.is_ok_and(|n| n as u64 <= limit) {
            return false;
        }
        match is_form {
            true => self.form = Form::parse(&bytes),
            false => self.body = Some(bytes),
        }
        true
    }

    /// What the guard checks.
    pub fn seen(&self) -> Seen<'_> {
        Seen {
            host: self.header("host"),
            origin: self.header("origin"),
            cookie: self.header("cookie"),
            token: self
                .form
                .get(crate::guard::TOKEN_FIELD)
                .or_else(|| self.header("x-token")),
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A response to send.
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// More headers (Location, Set-Cookie).
    pub extra: Vec<(&'static str, String)>,
}

impl Reply {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Self {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            extra: Vec::new(),
        }
    }

    /// A redirect (303: the next request is a GET) to a path of this server.
    pub fn see(path: &str) -> Self {
        Reply {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            extra: vec![("Location", path.to_owned())],
        }
    }

    /// Plain text (the answer to a script's request).
    pub fn text(status: u16, text: &str) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            extra: Vec::new(),
        }
    }

    /// Sends it.
    pub fn send(self, request: tiny_http::Request) {
        let mut response = tiny_http::Response::from_data(self.body)
            .with_status_code(self.status)
            .with_header(header("Content-Type", self.content_type));
        for (name, value) in SECURITY_HEADERS {
            response.add_header(header(name, value));
        }
        for (name, value) in &self.extra {
            response.add_header(header(name, value));
        }
        // The browser may have gone: nothing to tell it.
        let _ = request.respond(response);
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}
