//! Makes an account with a key backup on the test Synapse (scripts/synapse.sh) for
//! benches/backup.sh: writes DIR/token and DIR/recovery-key (mode 0600).

use benches::secret_file;
use online::backup::{self, BackupKey};

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: bench-account DIR"));
    let user = online::testkit::server().register("bench");
    let (key, text) = BackupKey::generate();
    let version = backup::create_version(&user.client, &key).expect("create backup");
    secret_file(&dir.join("token"), &user.token);
    secret_file(&dir.join("recovery-key"), &text);
    eprintln!("{} with backup version {version}", user.user_id);
}
