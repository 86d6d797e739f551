//! The test homeserver (feature `testkit`): `scripts/test-all` starts a real Synapse on
//! loopback and exports its URL and registration secret; tests register fresh users
//! through the shared-secret admin API. A test that needs the server FAILS when it is
//! absent: it never skips.

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
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let username = format!(
            "{prefix}{}x{}x{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
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
                "POST",
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
        let body = serde_json::json!({"msgtype": "m.text", "body": text}).to_string();
        let s: Sent = self
            .client
            .call_json(
                "send a message",
                "PUT",
                &["v3", "rooms", room, "send", "m.room.message", &txn],
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
