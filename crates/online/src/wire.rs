//! The wire: one request sent and its answer classified ([`send`]), used by the client, the
//! token refresh and the OAuth endpoints alike; request bodies, answer bodies read within a
//! cap, the logs of each exchange (never a header or a body), and the small helpers every
//! endpoint uses.

use std::io::Read;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An HTTP method, and whether a request with it may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// True when sending it twice does no more than sending it once: it may be retried
    /// after a 5xx or a broken connection.
    pub fn idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

/// The most a successful answer may hold, unless the call says otherwise.
pub const MAX_BODY: usize = 4 << 20;
/// The longest one ordinary request may take, its whole answer included (a server that
/// sends a byte now and then cannot hold a request for ever; streamed answers, read as
/// they come, have only per-read timeouts).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5 * 60);
/// The most an error answer may hold (only its errcode and message are read).
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;

/// A request body.
pub enum Body<'a> {
    /// No body.
    None,
    /// JSON text.
    Json(&'a [u8]),
    /// Other bytes (media), of this content type.
    Bytes {
        /// The `Content-Type`.
        content_type: &'a str,
        /// The bytes.
        data: &'a [u8],
    },
}

/// The error body of a Matrix API error.
#[derive(Deserialize, Default)]
pub(crate) struct MatrixError {
    #[serde(default)]
    pub(crate) errcode: String,
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) retry_after_ms: Option<u64>,
}

/// What one attempt came to.
pub(crate) enum Attempt {
    /// A 2xx answer, its body unread.
    Done(ureq::Response),
    /// HTTP 429, with the wait the server asked for.
    RateLimited {
        asked: Option<Duration>,
        error: Error,
    },
    /// A 5xx answer or a broken connection: worth a retry when the request is idempotent.
    Retryable { status: Option<u16>, error: Error },
    /// HTTP 401 `M_UNKNOWN_TOKEN`: the token expired or was logged out.
    Unauthorized(Error),
    /// Anything else.
    Failed(Error),
}

/// Sends one request through `agent` and classifies its answer: `what` names the operation in errors.
pub(crate) fn send(
    agent: &ureq::Agent,
    what: &str,
    method: Method,
    url: &Url,
    body: &Body<'_>,
    bearer: Option<&str>,
    deadline: Option<Duration>,
) -> Attempt {
    let mut req = agent.request_url(method.as_str(), url);
    if let Some(deadline) = deadline {
        req = req.timeout(deadline);
    }
    if let Some(bearer) = bearer {
        req = req.set("Authorization", bearer);
    }
    let started = Instant::now();
    let result = match body {
        Body::None => req.call(),
        Body::Json(bytes) => req
            .set("Content-Type", "application/json")
            .send_bytes(bytes),
        Body::Bytes { content_type, data } => {
            req.set("Content-Type", content_type).send_bytes(data)
        }
    };
    log_exchange(method.as_str(), url, body, &result, started.elapsed());
    match result {
        Ok(resp) if (200..300).contains(&resp.status()) => Attempt::Done(resp),
        // Redirects are not followed (see `agent`): any other status is an error.
        Ok(resp) => Attempt::Failed(Error::Redirect {
            what: what.into(),
            status: resp.status(),
            location: resp.header("Location").unwrap_or("").to_owned(),
        }),
        Err(ureq::Error::Status(status, resp)) => {
            let header_wait = resp
                .header("Retry-After")
                .and_then(|s| s.trim().parse::<u64>().ok());
            let bytes = read_body(resp, what, MAX_ERROR_BODY).unwrap_or_default();
            let err: MatrixError = serde_json::from_slice(&bytes).unwrap_or_default();
            let asked = err
                .retry_after_ms
                .map(Duration::from_millis)
                .or(header_wait.map(Duration::from_secs));
            let error = Error::Api {
                what: what.into(),
                status,
                errcode: if err.errcode.is_empty() {
                    "(no errcode)".into()
                } else {
                    printable(&err.errcode)
                },
                message: printable(&err.error),
            };
            match status {
                401 if err.errcode == "M_UNKNOWN_TOKEN" => Attempt::Unauthorized(error),
                429 => Attempt::RateLimited { asked, error },
                500 | 502 | 503 | 504 => Attempt::Retryable {
                    status: Some(status),
                    error,
                },
                _ => Attempt::Failed(error),
            }
        }
        Err(ureq::Error::Transport(t)) => {
            let mut shown = url.clone();
            shown.set_query(None);
            let broken = t.kind() == ureq::ErrorKind::Io;
            let error = Error::Transport {
                url: shown.to_string(),
                reason: t.to_string(),
            };
            if broken {
                Attempt::Retryable {
                    status: None,
                    error,
                }
            } else {
                Attempt::Failed(error)
            }
        }
    }
}

/// `value` as JSON, written straight into a wiped buffer large enough for any escaping of
/// what it holds, so no copy of a secret in it is left behind (no JSON value, no
/// reallocation).
pub(crate) fn secret_json<T: serde::Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let mut size = 0;
    {
        // Count the bytes first (a writer that keeps nothing).
        struct Count<'a>(&'a mut usize);
        impl std::io::Write for Count<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                *self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = serde_json::to_writer(Count(&mut size), value);
    }
    let mut body = Zeroizing::new(Vec::with_capacity(size));
    serde_json::to_writer(&mut *body, value).expect("a struct of strings serialises");
    body
}

/// A URL as the logs show it: the path with its IDs, the names of the query's parameters but
/// not their values (a login's query can carry a token).
pub(crate) fn shown(url: &Url) -> String {
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let mut text = format!(
        "{}{}",
        url.host_str().map_or(String::new(), |h| match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        }),
        url.path()
    );
    if !keys.is_empty() {
        text.push('?');
        text.push_str(&keys.join("&"));
    }
    printable(&text)
}

/// Logs one request and its answer (`-v`: method, URL, status, time; `-vv`: the size of
/// the body sent; the answer's is logged as it is read). Never a header or a body: they carry the tokens and keys.
pub(crate) fn log_exchange(
    method: &str,
    url: &Url,
    body: &Body<'_>,
    result: &std::result::Result<ureq::Response, ureq::Error>,
    took: Duration,
) {
    let status = match result {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp.status().to_string(),
        Err(ureq::Error::Transport(t)) => format!("no answer ({})", t.kind()),
    };
    tracing::info!(
        "{method} {} -> {status} in {} ms",
        shown(url),
        took.as_millis()
    );
    let sent = match body {
        Body::None => 0,
        Body::Json(b) => b.len(),
        Body::Bytes { data, .. } => data.len(),
    };
    tracing::debug!("  sent {sent} bytes");
}

/// A server's text with its control characters (and the bidirectional and hidden format
/// characters) escaped: it ends up on a terminal, where an escape sequence could rewrite
/// what the user sees. See [`matrix_ids::text`].
pub fn printable(text: &str) -> String {
    matrix_ids::text::printable(text)
}

/// A body reader that fails, instead of stopping short, past its limit.
pub(crate) struct Capped<R> {
    pub(crate) inner: R,
    pub(crate) left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed means the answer is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other("the answer is larger than allowed")),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads an answer's body, refusing one larger than `limit` bytes.
pub(crate) fn read_body(resp: ureq::Response, what: &str, limit: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.into_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::BadResponse {
            what: what.into(),
            reason: e.to_string(),
        })?;
    if buf.len() > limit {
        return Err(Error::BadResponse {
            what: what.into(),
            reason: format!("the answer is larger than {limit} bytes"),
        });
    }
    tracing::debug!("  received {} bytes", buf.len());
    Ok(buf)
}

/// True when `e` is the server saying "not found" (e.g. no m.direct yet, no backup).
pub fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Api { status: 404, .. })
}

/// True when `e` is the server saying it does not offer an endpoint (404 or 405 with no
/// errcode of its own, or `M_UNRECOGNIZED`).
pub fn is_unsupported(e: &Error) -> bool {
    matches!(
        e,
        Error::Api {
            status: 404 | 405,
            ..
        }
    ) || matches!(e, Error::Api { errcode, .. } if errcode == "M_UNRECOGNIZED")
}

/// The answer, or `None` when the server says "not found" (an endpoint whose 404 means
/// "nothing there yet").
pub fn found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses a JSON value from an answer.
pub fn parse_value(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadResponse {
        what: what.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_is_the_json_and_needs_no_reallocation() {
        #[derive(serde::Serialize)]
        struct Login<'a> {
            password: &'a str,
        }
        let body = secret_json(&Login {
            password: "p\"w\u{1}é",
        });
        assert_eq!(&body[..], r#"{"password":"p\"w\u0001é"}"#.as_bytes());
        assert_eq!(
            body.capacity(),
            body.len(),
            "sized exactly: never grown and copied"
        );
    }
}
