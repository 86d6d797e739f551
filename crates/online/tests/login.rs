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
    assert_eq!(
        flows.choose(Method::Auto, true, true).unwrap(),
        Method::OAuth
    );
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
    assert_eq!(flows.choose(Method::Sso, true, true).unwrap(), Method::Sso);
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

/// The codes shown and the phone's threads (the notice must be 'static).
static CODES: Mutex<Vec<login::device::DeviceCode>> = Mutex::new(Vec::new());
static PHONE: Mutex<Vec<std::thread::JoinHandle<u16>>> = Mutex::new(Vec::new());
static LOCALPART: Mutex<String> = Mutex::new(String::new());

/// A device-grant login as on a server with no browser: the code is shown, the tool polls
/// while the person takes a moment to open the address on a phone, then the session keeps
/// its token fresh through an upload that outlasts several token lifetimes (each batch held
/// 1 s by a proxy), and is revoked at the end.
#[test]
fn device_code_login_waits_for_the_phone_then_refreshes_through_a_long_upload() {
    use key_export::testkit::Device;
    use key_export::SessionRef;
    use online::backup::{self, BackupKey};
    use online::testkit::{Action, Hook, Proxy};
    use online::Homeserver;
    use std::sync::Arc;

    let ng = nextgen();
    let localpart = unique("dana");
    let user = format!("@{localpart}:localhost");
    let hook: Hook = Arc::new(|_, method, path| {
        if method == "PUT" && path.contains("/room_keys/keys") {
            std::thread::sleep(Duration::from_secs(1));
        }
        Action::Forward
    });
    let proxy = Proxy::start(&ng.url, Arc::default(), hook);
    *LOCALPART.lock().unwrap() = localpart;
    let hs = Homeserver::parse(&proxy.url, false).unwrap();
    let flows = login::flows(&Client::anonymous(hs.clone())).unwrap();
    assert!(flows.offered().contains(&"device"), "{:?}", flows.offered());
    assert_eq!(
        flows.choose(Method::Auto, true, false).unwrap(),
        Method::Device,
        "no browser here"
    );
    let before = ng.stats();
    let options = SessionOptions {
        expected_user: Some(user.clone()),
        show_code: Some(Box::new(|code: &login::device::DeviceCode| {
            CODES.lock().unwrap().push(code.clone());
            let mut url = code.verification_uri_complete.clone().unwrap();
            // Logged in on the phone as the user (the tests share one fake provider).
            url.query_pairs_mut()
                .append_pair("localpart", LOCALPART.lock().unwrap().as_str());
            // The person reads the code, finds the phone: the tool polls meanwhile.
            PHONE.lock().unwrap().push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2500));
                play_browser(url.as_str()).join().unwrap()
            }));
        })),
        login_timeout: Some(Duration::from_secs(60)),
        ..SessionOptions::default()
    };
    let meta = flows.oauth.unwrap();
    let session = Session::open(hs, Credentials::Device(Box::new(meta)), options).unwrap();
    assert_eq!(PHONE.lock().unwrap().pop().unwrap().join().unwrap(), 200);
    let code = CODES.lock().unwrap().pop().unwrap();
    assert!(
        code.verification_uri.as_str().ends_with("/link"),
        "{code:?}"
    );
    assert!(!code.user_code.is_empty());
    assert_eq!(session.user_id(), user);
    assert!(session.client().refreshable());
    let polled = ng.stats();
    let count = |s: &serde_json::Value, k: &str| s[k].as_u64().unwrap();
    assert!(
        count(&polled, "device_polls") - count(&before, "device_polls") >= 2,
        "pending at least once: {polled}"
    );
    assert_eq!(
        count(&polled, "slow_downs"),
        count(&before, "slow_downs"),
        "polled no faster than the interval: {polled}"
    );

    // Eight batches, each held 1 s: nearly three token lifetimes.
    let client = session.client();
    let (key, _) = BackupKey::generate();
    backup::create_version(client, &key).unwrap();
    let info = backup::current(client).unwrap().unwrap();
    let dev = Device::new();
    let raw: Vec<Box<serde_json::value::RawValue>> = (0..40)
        .map(|_| {
            let s = dev.new_session("!slow:localhost").export_at(0);
            serde_json::value::RawValue::from_string(s.to_json()).unwrap()
        })
        .collect();
    let parsed: Vec<SessionRef<'_>> = raw.iter().map(|r| SessionRef::parse(r)).collect();
    let refs: Vec<&SessionRef<'_>> = parsed.iter().collect();
    let report = backup::upload(client, &info, &key, &refs, 5, &|_| {}).unwrap();
    assert_eq!((report.sent, report.count_after), (40, 40));
    assert!(client.refreshes() >= 2, "{}", client.refreshes());

    let last = token_of(client);
    session.close().unwrap();
    let after = ng.stats();
    assert!(
        count(&after, "revocations") > count(&polled, "revocations"),
        "{after}"
    );
    assert!(Client::new(ng.homeserver(), AccessToken::new(&last))
        .whoami()
        .is_err());
}

/// Refused on the phone, the login fails with that reason and no session is left.
#[test]
fn a_device_code_refused_on_the_phone_fails_the_login() {
    let ng = nextgen();
    let flows = login::flows(&Client::anonymous(ng.homeserver())).unwrap();
    let meta = flows.oauth.unwrap();
    let pending = login::device::start(&Client::anonymous(ng.homeserver()), &meta).unwrap();
    let mut deny = pending.code().verification_uri_complete.clone().unwrap();
    deny.query_pairs_mut().append_pair("deny", "1");
    assert_eq!(play_browser(deny.as_str()).join().unwrap(), 200);
    let Err(e) = pending.finish(Duration::from_secs(30)) else {
        panic!("a refused login went through")
    };
    assert!(e.to_string().contains("refused on the device"), "{e}");
}
