//! The accounts and rooms of benches/rooms.sh, on the ORG and PERSONAL Synapses that
//! scripts/synapse.sh's `synapse_pair_start` runs, and the naive move it is compared with.
//!
//! - `bench-rooms setup N DIR`: an old account on ORG with N rooms (invite only, a message
//!   each), two new accounts on PERSONAL (one per move); writes DIR/{old,new,naive}.token,
//!   DIR/{old,new,naive}.user and DIR/rooms.txt.
//! - `bench-rooms naive DIR`: moves the rooms into the second new account the way the
//!   tools that exist do: per room in series invite → join → power level, each request
//!   waiting out its 429 as told.

use std::path::Path;

use online::rooms;
use online::testkit::server_named;
use online::{AccessToken, Client, Homeserver};
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .expect("read")
        .trim()
        .to_owned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("setup") => setup(args[2].parse().expect("N"), Path::new(&args[3])),
        Some("naive") => naive(Path::new(&args[2])),
        _ => panic!("usage: bench-rooms setup N DIR | bench-rooms naive DIR"),
    }
}

fn setup(n: usize, dir: &Path) {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let mut rooms = Vec::new();
    for i in 0..n {
        let room = old.create_room(&format!("room {i}"));
        old.say(&room, "hello");
        rooms.push(room);
    }
    for (name, user) in [
        ("old", &old),
        ("new", &personal.register("new")),
        ("naive", &personal.register("naive")),
    ] {
        benches::secret_file(&dir.join(format!("{name}.token")), &user.token);
        write(dir, &format!("{name}.user"), &user.user_id);
    }
    write(dir, "rooms.txt", &(rooms.join("\n") + "\n"));
}

fn naive(dir: &Path) {
    let client = |url: &str, who: &str| {
        let mut c = Client::new(
            Homeserver::parse(url, false).unwrap(),
            AccessToken::new(&read(dir, &format!("{who}.token"))),
        );
        c.set_rate_limits(online::client::RateLimits {
            max_retries: 1000,
            max_single_wait: std::time::Duration::from_secs(1200),
            budget: std::time::Duration::from_secs(48 * 3600),
            ..Default::default()
        });
        c
    };
    let old = client(&server_named("ORG").url, "old");
    let new = client(&server_named("PERSONAL").url, "naive");
    let (old_user, new_user) = (read(dir, "old.user"), read(dir, "naive.user"));
    let via = vec![old_user.split_once(':').unwrap().1.to_owned()];
    for room in read(dir, "rooms.txt").lines() {
        rooms::invite(&old, room, &new_user).expect("invite");
        rooms::join(&new, room, &via).expect("join");
        let mut pl: Value = rooms::state_content(&old, room, "m.room.power_levels", "")
            .unwrap()
            .unwrap();
        pl["users"][&new_user] = json!(150);
        rooms::put_state(&old, room, "m.room.power_levels", "", &pl).expect("power");
    }
}
