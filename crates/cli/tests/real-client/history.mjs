// The old account's history, made the way a user of Element makes it, before the move:
//
//   node history.mjs INPUT.json OUT_DIR
//
// INPUT names four registered users (old, org_friend, personal_friend, new: each
// homeserver, user_id, password), the servers' names, the passphrase of the key file and
// the new account's security phrase. It writes into OUT_DIR:
//   history.json      the rooms by role, every message sent (room, sender, text, era),
//                     the sessions each key source holds;
//   phone-keys.txt    the old phone's keys, exported exactly as Element exports them;
//   old-recovery.key  the recovery key Element showed when Secure Backup was set up on the
//                     old account (a random key, as Element Web and Element X make);
//   new-recovery.key  the new account's, whose Secure Backup was set up with a security
//                     phrase (the phrase is in INPUT);
//   engine.log        what the engine logged.
//
// The story: the old account's phone (device B) is its only device at first; it creates
// DMs with a friend on each server, a private group, a public room, a room whose history
// is "joined" and one "shared", and a room that will stay behind. Everybody talks (era 1).
// Then the laptop (device A) logs in and sets up Secure Backup as Element does; everybody
// talks again (era 2); the phone exports its keys and goes quiet; the last messages (era
// 3) reach the laptop only. So era 1's keys are only in the phone's key file and era 3's
// only in the old backup: a move must merge both. The new account has a room of its own,
// its keys in its own backup (set up with a security phrase), before the move.

import fs from "node:fs";
import path from "node:path";

import { Device, quiet } from "./engine.mjs";
import { encryptKeyFile } from "./element-export.mjs";

const [input, outDir] = process.argv.slice(2);
const world = JSON.parse(fs.readFileSync(input, "utf8"));
const step = quiet(path.join(outDir, "engine.log"));

const ENCRYPTED = { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } };
const visibility = (v) => ({ type: "m.room.history_visibility", state_key: "", content: { history_visibility: v } });

const messages = [];
let counter = 0;

async function say(device, role, roomId, era) {
    counter += 1;
    const who = device.label;
    const text = `${role} #${counter}: ${who} says hello in era ${era}`;
    const event_id = await device.say(roomId, text);
    messages.push({ room: role, room_id: roomId, sender: device.userId, device: who, text, era, event_id });
}

async function main() {
    const phone = await Device.login(world.old, "Phone");
    phone.label = "old phone";
    const orgFriend = await Device.login(world.org_friend, "Friend's laptop");
    orgFriend.label = "org friend";
    const personalFriend = await Device.login(world.personal_friend, "Friend's phone");
    personalFriend.label = "personal friend";
    const newAccount = await Device.login(world.new, "New account's laptop");
    newAccount.label = "new account";
    for (const d of [phone, orgFriend, personalFriend, newAccount]) {
        await d.start();
    }
    step("logged in");

    const o = orgFriend.userId;
    const p = personalFriend.userId;
    const create = async (options) => (await phone.client.createRoom(options)).room_id;
    const rooms = {
        dm_org: await create({ preset: "trusted_private_chat", is_direct: true, invite: [o], initial_state: [ENCRYPTED] }),
        dm_personal: await create({ preset: "trusted_private_chat", is_direct: true, invite: [p], initial_state: [ENCRYPTED] }),
        group: await create({ name: "Project group", preset: "private_chat", invite: [o, p], initial_state: [ENCRYPTED] }),
        public: await create({ name: "Open lounge", preset: "public_chat", visibility: "private" }),
        joined: await create({ name: "Joined only", preset: "private_chat", invite: [o], initial_state: [ENCRYPTED, visibility("joined")] }),
        shared: await create({ name: "Shared history", preset: "private_chat", invite: [p], initial_state: [ENCRYPTED, visibility("shared")] }),
        staying: await create({ name: "Work only", preset: "private_chat", invite: [o], initial_state: [ENCRYPTED] }),
    };
    // Element records a new DM in m.direct itself.
    await phone.client.setAccountData("m.direct", { [o]: [rooms.dm_org], [p]: [rooms.dm_personal] });
    const members = {
        dm_org: [orgFriend],
        dm_personal: [personalFriend],
        group: [orgFriend, personalFriend],
        public: [orgFriend, personalFriend],
        joined: [orgFriend],
        shared: [personalFriend],
        staying: [orgFriend],
    };
    for (const [role, friends] of Object.entries(members)) {
        for (const f of friends) {
            await f.join(rooms[role], [world.org_server_name]);
            await phone.sees(rooms[role], f.userId);
        }
    }
    step("rooms made", rooms);

    // Settings newer clients keep, written through the engine as a client writes them: the
    // profile's time zone (m.tz, spec v1.16) and recently used emoji (m.recent_emoji, v1.18)
    // on the old account; the new account has used an emoji already. (matrix-js-sdk 37.5's
    // setExtendedProfileProperty insists on the unstable MSC4133 flag, which Synapse no
    // longer advertises since the spec made it stable: the stable endpoint, through the
    // engine's own HTTP.)
    await phone.client.http.authedRequest("PUT", `/profile/${encodeURIComponent(phone.userId)}/m.tz`, undefined, { "m.tz": "Europe/Berlin" });
    await phone.client.setAccountData("m.recent_emoji", { recent_emoji: [{ emoji: "🎉", total: 5 }, { emoji: "👍", total: 9 }] });
    await newAccount.client.setAccountData("m.recent_emoji", { recent_emoji: [{ emoji: "👍", total: 2 }] });

    // The new account's own room, and its Secure Backup (with a security phrase).
    const notes = (await newAccount.client.createRoom({ name: "New notes", preset: "private_chat", invite: [p], initial_state: [ENCRYPTED] })).room_id;
    await personalFriend.join(notes, [world.personal_server_name]);
    await newAccount.sees(notes, p);
    const newRecoveryKey = await newAccount.setUpSecureBackup(world.new_security_phrase);
    fs.writeFileSync(path.join(outDir, "new-recovery.key"), newRecoveryKey + "\n", { mode: 0o600 });

    const talk = async (era, devices) => {
        for (const [role, friends] of Object.entries(members)) {
            for (const d of devices) {
                await say(d, role, rooms[role], era);
            }
            for (const f of friends) {
                await say(f, role, rooms[role], era);
            }
        }
    };
    for (const d of [phone, orgFriend, personalFriend]) {
        await d.knows({ [phone.userId]: [phone.deviceId], [o]: [orgFriend.deviceId], [p]: [personalFriend.deviceId] });
    }
    await talk(1, [phone]);
    step("era 1");

    const laptop = await Device.login(world.old, "Laptop");
    laptop.label = "old laptop";
    await laptop.start();
    const oldRecoveryKey = await laptop.setUpSecureBackup();
    fs.writeFileSync(path.join(outDir, "old-recovery.key"), oldRecoveryKey + "\n", { mode: 0o600 });
    const oldDevices = { [phone.userId]: [phone.deviceId, laptop.deviceId] };
    for (const d of [phone, orgFriend, personalFriend, laptop]) {
        await d.knows(oldDevices);
    }
    await talk(2, [laptop, phone]);
    step("era 2");

    // The phone exports its keys the way Element does, then is logged out: every sender
    // starts new sessions, which only the laptop (and so the old backup) receives.
    const exported = await phone.crypto.exportRoomKeysAsJson();
    const phoneSessions = JSON.parse(exported).map((s) => s.session_id);
    fs.writeFileSync(path.join(outDir, "phone-keys.txt"), await encryptKeyFile(exported, world.export_passphrase), { mode: 0o600 });
    await phone.client.logout(true);
    for (const d of [orgFriend, personalFriend, laptop]) {
        await d.knowsOnly(phone.userId, [laptop.deviceId]);
    }
    await talk(3, [laptop]);
    step("era 3");

    // New account's own messages, after its backup exists.
    for (let i = 1; i <= 2; i++) {
        for (const d of [newAccount, personalFriend]) {
            counter += 1;
            const text = `notes #${counter}: ${d.label} writes before the move`;
            const event_id = await d.say(notes, text);
            messages.push({ room: "notes", room_id: notes, sender: d.userId, device: d.label, text, era: 0, event_id });
        }
    }
    rooms.notes = notes;

    // Every key the laptop and the new account hold is in their backups (Element backs up
    // in the background; a user who moves waits for "all keys backed up").
    await laptop.crypto.checkKeyBackupAndEnable();
    const laptopSessions = (await laptop.crypto.exportRoomKeys()).map((s) => s.session_id);
    await laptop.backedUp();
    await newAccount.backedUp();
    step("backed up");

    const history = {
        rooms,
        messages,
        sessions: { phone_export: phoneSessions, old_backup: laptopSessions },
        devices: { phone: phone.deviceId, laptop: laptop.deviceId, new_account: newAccount.deviceId },
    };
    fs.writeFileSync(path.join(outDir, "history.json"), JSON.stringify(history, null, 2));
    for (const d of [laptop, orgFriend, personalFriend, newAccount]) {
        d.stop();
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        process.stderr.write(`history.mjs failed: ${e?.stack ?? e}\n`);
        process.exit(1);
    },
);
