//! Logins against real Synapses: OAuth 2.0 through the NEXTGEN server's fake Matrix
//! Authentication Service (the test plays the browser), with access tokens that expire
//! every 3 s. These tests FAIL, never skip, when the servers are not running.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use online::login::{self, Method};
use online::testkit::{nextgen, play_browser, token_of, unique};
use online::{AccessToken, Client, Credentials, Error, Session, SessionOptions};

#[test]
fn oauth_login_stays_fresh_for_several_token_lifetimes_and_is_revoked_at_the_end() {
    let ng = nextgen();
    let user = ng.next_login(&unique("alice"));
    let flows = login::flows(&Client::anonymous(ng.homeserver())).unwrap();
    assert!(!flows.password, "a delegating server takes no passwords");
    assert_eq!(flows.choose(Method::Auto, true).unwrap(), Method::OAuth);
    let meta = flows.oauth.unwrap();
    // The person at the browser: follows the URL the tool shows, on another thread.
    let options = SessionOptions {
        expected_user: Some(user.clone()),
        show_url: Some(Box::new(|address: &login::LoginAddress| {
            // The browser is opened on the start address, which redirects to the login.
            BROWSER
                .lock()
                .unwrap()
                .push(play_browser(address.start.as_str()));
            SHOWN.lock().unwrap().push(address.url.to_string());
        })),
        login_timeout: Some(Duration::from_secs(30)),
        ..SessionOptions::default()
    };
    let session =
        Session::open(ng.homeserver(), Credentials::OAuth(Box::new(meta)), options).unwrap();
    let status = BROWSER.lock().unwrap().pop().unwrap().join().unwrap();
    assert_eq!(status, 200, "the tool's listener answered the browser");
    let url = SHOWN.lock().unwrap().pop().unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("urn%3Amatrix%3Aclient%3Aapi%3A*"), "{url}");
    assert_eq!(session.user_id(), user);
    assert!(session.client().refreshable());

    // Requests for three token lifetimes: every one succeeds, the token renewed meanwhile.
    let first = token_of(session.client());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(9) {
        assert_eq!(session.client().whoami().unwrap().user_id, user);
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        session.client().refreshes() >= 2,
        "{}",
        session.client().refreshes()
    );
    assert_ne!(token_of(session.client()), first);
    let before = ng.stats();
    assert!(before["refreshes"].as_u64().unwrap() >= 2, "{before}");

    // Closed: revoked at the provider, the device deleted, the token dead at once.
    let last = token_of(session.client());
    session.close().unwrap();
    let after = ng.stats();
    assert!(
        after["revocations"].as_u64().unwrap() > before["revocations"].as_u64().unwrap(),
        "{after}"
    );
    let dead = Client::new(ng.homeserver(), AccessToken::new(&last)).whoami();
    let Err(Error::TokenRejected { cause, .. }) = &dead else {
        panic!("{dead:?}")
    };
    assert!(
        matches!(&**cause, Error::Api { status: 401, .. }),
        "{cause:?}"
    );
}

/// The browser threads and the URLs shown (the notice must be 'static).
static BROWSER: Mutex<Vec<std::thread::JoinHandle<u16>>> = Mutex::new(Vec::new());
static SHOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[test]
fn sso_login_through_the_chosen_identity_provider_then_logout() {
    let hs = online::testkit::server();
    let username = unique("sso");
    let user = online::testkit::next_sso_login(&username);
    let flows = login::flows(&Client::anonymous(hs.homeserver())).unwrap();
    let ids: Vec<&str> = flows
        .sso
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(ids, ["oidc-fake", "oidc-other"]);
    assert_eq!(flows.choose(Method::Sso, true).unwrap(), Method::Sso);
    let options = SessionOptions {
        expected_user: Some(user.clone()),
        show_url: Some(Box::new(|address: &login::LoginAddress| {
            SSO_BROWSER
                .lock()
                .unwrap()
                .push(play_browser(address.start.as_str()));
        })),
        login_timeout: Some(Duration::from_secs(30)),
        ..SessionOptions::default()
    };
    let session = Session::open(
        hs.homeserver(),
        Credentials::Sso {
            idp: Some("oidc-fake".into()),
        },
        options,
    )
    .unwrap();
    let status = SSO_BROWSER.lock().unwrap().pop().unwrap().join().unwrap();
    assert_eq!(status, 200, "the tool's listener answered the browser");
    assert_eq!(session.user_id(), user);
    assert!(
        session.client().refreshable(),
        "a refresh token was asked for"
    );
    let token = token_of(session.client());
    session.close().unwrap();
    let dead = Client::new(hs.homeserver(), AccessToken::new(&token)).whoami();
    assert!(matches!(dead, Err(Error::TokenRejected { .. })), "{dead:?}");
}

static SSO_BROWSER: Mutex<Vec<std::thread::JoinHandle<u16>>> = Mutex::new(Vec::new());
