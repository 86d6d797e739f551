//! A homeserver behind a private certificate authority, on loopback: reached with the CA
//! file, refused without it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use online::{AccessToken, Client, Error, Homeserver, Trust};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA, and a certificate for `localhost` it signed (both DER), with the leaf's key.
fn private_ca() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca.pem(), leaf.der().clone(), key)
}

/// Serves `/versions` over TLS to each of `n` connections (a failed handshake counts).
fn tls_server(
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    n: usize,
) -> (u16, std::thread::JoinHandle<()>) {
    tls_server_answering(leaf, key, n, r#"{"versions": ["v1.11"]}"#)
}

/// Answers `body` over TLS to each of `n` connections.
fn tls_server_answering(
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    n: usize,
    body: &'static str,
) -> (u16, std::thread::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for _ in 0..n {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut line = String::new();
            if BufReader::new(&mut tls).read_line(&mut line).is_err() {
                continue; // the client refused the certificate
            }
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
        }
    });
    (port, thread)
}

#[test]
fn a_private_ca_is_trusted_only_when_given() {
    let (ca_pem, leaf, key) = private_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let (port, server) = tls_server(leaf, key, 2);
    let url = format!("https://localhost:{port}");
    let client = |trust: Trust| {
        Client::new(
            Homeserver::parse(&url, false).unwrap().trusting(trust),
            AccessToken::new("t"),
        )
    };
    client(Trust::new(Some(&ca_file)).unwrap())
        .check_versions()
        .expect("the private CA is trusted");
    let e = client(Trust::new(None).unwrap())
        .check_versions()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { reason, .. } if reason.contains("UnknownIssuer") || reason.contains("certificate")),
        "{e:?}"
    );
    server.join().unwrap();
    // A CA file without a certificate is an error that names it.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = Trust::new(Some(&empty)).unwrap_err();
    assert!(e.to_string().contains("empty.pem"), "{e}");
}

/// Discovery is https all the way: a .well-known (served over https by the private-CA
/// server) that names a plain-http homeserver is refused, loopback or not.
#[test]
fn discovery_refuses_a_homeserver_that_is_not_https() {
    let (ca_pem, leaf, key) = private_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let well_known = r#"{"m.homeserver": {"base_url": "http://127.0.0.1:8008"}}"#;
    let (port, server) = tls_server_answering(leaf, key, 1, well_known);
    let trust = Trust::new(Some(&ca_file)).unwrap();
    let e = Homeserver::discover(&format!("@me:localhost:{port}"), Some(&trust)).unwrap_err();
    assert!(
        matches!(&e, Error::Discovery { reason, .. } if reason.contains("not https")),
        "{e:?}"
    );
    server.join().unwrap();
}
