//! Opening a backup with what a user has, against a real Synapse (started by
//! scripts/test-all; these tests FAIL, never skip, when it is not running): the recovery key
//! or security phrase opens secret storage, whose `m.megolm_backup.v1` secret is the backup's
//! key (Element's layout since 2020), or the recovery key is the backup's own key (the
//! older layout). Every way it can go wrong is its own error.
//!
//! Secret storage here is written with matrix-sdk-crypto's own `SecretStorageKey` (the code
//! Element X runs, and compiled to wasm, Element Web); the real-client test
//! (`crates/cli/tests/cli/real_client.rs`) checks the same against accounts Element's engine set up.

use matrix_sdk_crypto::secret_storage::SecretStorageKey;
use matrix_sdk_crypto::store::types::BackupDecryptionKey;
use online::backup::{self, BackupKey, Recovery, Via};
use online::testkit::{server, TestUser};
use online::{account, Error};
use ruma::events::secret::request::SecretName;
use serde_json::json;
use zeroize::Zeroizing;

/// A new backup with its own random key, as Element makes one; returns the key's base64.
fn new_backup(user: &TestUser) -> (BackupKey, Zeroizing<String>) {
    let key = BackupDecryptionKey::new();
    let ours = BackupKey::parse(&Zeroizing::new(key.to_base58())).unwrap();
    backup::create_version(&user.client, &ours).unwrap();
    (ours, Zeroizing::new(key.to_base64()))
}

/// Secret storage as Element writes it: the key's description, the default key, and the
/// backup key as the secret `m.megolm_backup.v1`.
fn secret_storage(user: &TestUser, storage: &SecretStorageKey, backup_base64: Option<&str>) {
    let put = |kind: &str, content: serde_json::Value| {
        account::put_account_data(&user.client, &user.user_id, kind, &content).unwrap()
    };
    put(
        &format!("m.secret_storage.key.{}", storage.key_id()),
        serde_json::to_value(storage.event_content()).unwrap(),
    );
    put(
        "m.secret_storage.default_key",
        json!({"key": storage.key_id()}),
    );
    if let Some(secret) = backup_base64 {
        let encrypted = storage.encrypt(
            secret.as_bytes().to_vec(),
            &SecretName::from("m.megolm_backup.v1"),
        );
        put(
            "m.megolm_backup.v1",
            json!({"encrypted": {storage.key_id(): encrypted}}),
        );
    }
}

fn key_of(storage: &SecretStorageKey) -> Recovery {
    Recovery::key(&Zeroizing::new(storage.to_base58())).unwrap()
}

#[test]
fn the_recovery_key_element_shows_opens_the_backup_through_secret_storage() {
    let hs = server();
    let user = hs.register("ssss");
    let (backup_key, secret) = new_backup(&user);
    let storage = SecretStorageKey::new();
    secret_storage(&user, &storage, Some(&secret));
    let opened = backup::open(&user.client, &user.user_id, &key_of(&storage)).unwrap();
    assert_eq!(opened.via, Via::SecretStorage);
    assert_eq!(opened.key.public_key(), backup_key.public_key());

    // A padded secret (some clients write one) opens it too.
    let padded = format!("{}=", secret.as_str());
    secret_storage(&user, &storage, Some(&padded));
    assert!(backup::open(&user.client, &user.user_id, &key_of(&storage)).is_ok());

    // Another key opens neither secret storage nor the backup.
    let other = key_of(&SecretStorageKey::new());
    let e = backup::open(&user.client, &user.user_id, &other).unwrap_err();
    assert!(
        matches!(&e, Error::RecoveryMismatch { user: u, given: "recovery key", .. } if *u == user.user_id),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was read or written"), "{e}");
    assert!(!e.to_string().contains("uploaded"), "{e}");
}

#[test]
fn a_security_phrase_opens_secret_storage_and_a_phrase_less_setup_says_so() {
    let hs = server();
    let user = hs.register("phrase");
    let (backup_key, secret) = new_backup(&user);
    let storage = SecretStorageKey::new_from_passphrase("a phrase the user chose");
    secret_storage(&user, &storage, Some(&secret));
    let phrase = Recovery::phrase("a phrase the user chose\n").unwrap();
    let opened = backup::open(&user.client, &user.user_id, &phrase).unwrap();
    assert_eq!(opened.via, Via::SecretStorage);
    assert_eq!(opened.key.public_key(), backup_key.public_key());
    // Its recovery key opens it as well.
    assert!(backup::open(&user.client, &user.user_id, &key_of(&storage)).is_ok());
    // A wrong phrase.
    let wrong = Recovery::phrase("another phrase").unwrap();
    assert!(matches!(
        backup::open(&user.client, &user.user_id, &wrong),
        Err(Error::RecoveryMismatch {
            given: "security phrase",
            ..
        })
    ));

    let plain = hs.register("nophrase");
    let (_, secret) = new_backup(&plain);
    secret_storage(&plain, &SecretStorageKey::new(), Some(&secret));
    assert!(matches!(
        backup::open(&plain.client, &plain.user_id, &phrase),
        Err(Error::NoPhrase { .. })
    ));
}

#[test]
fn the_older_layout_still_opens_with_its_key_or_its_phrase() {
    let hs = server();
    let user = hs.register("legacy");
    let (key, text) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let opened = backup::open(&user.client, &user.user_id, &Recovery::key(&text).unwrap()).unwrap();
    assert_eq!(opened.via, Via::BackupKey);

    // A backup whose key came from a phrase (auth_data.private_key_salt), as early Element
    // made them: PBKDF2-SHA-512 of the phrase.
    let phrased = hs.register("legacyphrase");
    let mut bytes = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(b"old words", b"salty", 1000, &mut bytes);
    let derived = BackupDecryptionKey::from_bytes(&bytes);
    let body = json!({"algorithm": backup::ALGORITHM, "auth_data": {
        "public_key": derived.megolm_v1_public_key().to_base64(),
        "private_key_salt": "salty", "private_key_iterations": 1000}});
    let url = phrased.client.url(&["v3", "room_keys", "version"], &[]);
    ureq::post(url.as_str())
        .set("Authorization", &format!("Bearer {}", phrased.token))
        .send_string(&body.to_string())
        .unwrap();
    let opened = backup::open(
        &phrased.client,
        &phrased.user_id,
        &Recovery::phrase("old words").unwrap(),
    )
    .unwrap();
    assert_eq!(opened.via, Via::BackupPhrase);
    assert!(matches!(
        backup::open(
            &phrased.client,
            &phrased.user_id,
            &Recovery::phrase("other words").unwrap()
        ),
        Err(Error::RecoveryNotSetUp { .. })
    ));
}

#[test]
fn each_missing_piece_of_recovery_is_named() {
    let hs = server();
    // No backup at all.
    let bare = hs.register("bare");
    let key = key_of(&SecretStorageKey::new());
    let e = backup::open(&bare.client, &bare.user_id, &key).unwrap_err();
    assert!(
        matches!(&e, Error::NoBackup { user } if *user == bare.user_id),
        "{e}"
    );
    assert!(e.to_string().contains("Settings → Encryption"), "{e}");

    // A backup, no secret storage, and a key that is not the backup's own.
    let no_storage = hs.register("nostorage");
    new_backup(&no_storage);
    let e = backup::open(&no_storage.client, &no_storage.user_id, &key).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::RecoveryNotSetUp {
                missing: online::error::Missing::SecretStorage,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("set up recovery"), "{e}");

    // Secret storage without the backup's key in it.
    let no_secret = hs.register("nosecret");
    new_backup(&no_secret);
    let storage = SecretStorageKey::new();
    secret_storage(&no_secret, &storage, None);
    assert!(matches!(
        backup::open(&no_secret.client, &no_secret.user_id, &key_of(&storage)),
        Err(Error::RecoveryNotSetUp {
            missing: online::error::Missing::BackupSecret,
            ..
        })
    ));

    // The default key names a description that is not there.
    let dangling = hs.register("dangling");
    new_backup(&dangling);
    account::put_account_data(
        &dangling.client,
        &dangling.user_id,
        "m.secret_storage.default_key",
        &json!({"key": "nowhere"}),
    )
    .unwrap();
    assert!(matches!(
        backup::open(&dangling.client, &dangling.user_id, &key),
        Err(Error::RecoveryNotSetUp {
            missing: online::error::Missing::KeyDescription,
            ..
        })
    ));
}

#[test]
fn a_stale_or_damaged_secret_and_a_switched_off_backup_are_refused() {
    let hs = server();
    // Secret storage holds the key of a backup that was replaced since.
    let user = hs.register("stale");
    let (_, first) = new_backup(&user);
    let storage = SecretStorageKey::new();
    secret_storage(&user, &storage, Some(&first));
    new_backup(&user);
    let e = backup::open(&user.client, &user.user_id, &key_of(&storage)).unwrap_err();
    assert!(
        matches!(&e, Error::StaleBackupSecret { version, .. } if version == "2"),
        "{e}"
    );

    // A secret whose MAC does not match.
    let damaged = hs.register("damaged");
    let (_, secret) = new_backup(&damaged);
    let storage = SecretStorageKey::new();
    secret_storage(&damaged, &storage, Some(&secret));
    let mut content =
        account::account_data(&damaged.client, &damaged.user_id, "m.megolm_backup.v1")
            .unwrap()
            .unwrap();
    content["encrypted"][storage.key_id()]["ciphertext"] = json!("AAAA");
    account::put_account_data(
        &damaged.client,
        &damaged.user_id,
        "m.megolm_backup.v1",
        &content,
    )
    .unwrap();
    assert!(matches!(
        backup::open(&damaged.client, &damaged.user_id, &key_of(&storage)),
        Err(Error::SecretDamaged { .. })
    ));

    // Key storage switched off (m.key_backup, spec v1.19): readable, never a target.
    let off = hs.register("off");
    let (_, secret) = new_backup(&off);
    let storage = SecretStorageKey::new();
    secret_storage(&off, &storage, Some(&secret));
    account::put_account_data(
        &off.client,
        &off.user_id,
        "m.key_backup",
        &json!({"enabled": false}),
    )
    .unwrap();
    assert!(backup::open(&off.client, &off.user_id, &key_of(&storage)).is_ok());
    let e = backup::open_for_upload(&off.client, &off.user_id, &key_of(&storage)).unwrap_err();
    assert!(matches!(&e, Error::BackupDisabled { .. }), "{e}");
    assert!(e.to_string().contains("Allow key storage"), "{e}");
}
