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
        #[derive(Deserialize)]
        struct Created {
            room_id: String,
        }
        let body = serde_json::json!({"name": name, "preset": "private_chat"}).to_string();
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
}
