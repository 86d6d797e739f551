// What a fresh device of the new account sees after the move, as Element Web's engine
// shows it:
//
//   node read.mjs INPUT.json OUT.json
//
// INPUT: the new account (homeserver, user_id, password), its recovery key or security
// phrase (recovery_key | security_phrase), the rooms to read. The device logs in, restores
// the key backup the way Element does on a new device (secret storage opened with the
// recovery key or phrase -> the backup's key -> every session), syncs, and reads each
// room from its start. OUT: per room every message it can see (sender, text or the
// decryption failure), the rooms it is joined to, and its m.direct (which rooms it shows
// as DMs, with whom), and the settings newer clients keep as the client reads them: the
// profile's time zone (m.tz) and the recently used emoji (m.recent_emoji).

import fs from "node:fs";
import path from "node:path";

import { Device, quiet } from "./engine.mjs";

const [input, output] = process.argv.slice(2);
const request = JSON.parse(fs.readFileSync(input, "utf8"));
quiet(path.join(path.dirname(output), "read-engine.log"));

async function main() {
    const device = await Device.login(request.account, "Fresh device after the move");
    const restored = await device.restoreFromRecovery(request);
    await device.start();
    const rooms = {};
    for (const roomId of request.rooms) {
        rooms[roomId] = await device.readRoom(roomId);
    }
    const direct = device.client.getAccountData("m.direct")?.getContent() ?? {};
    const joined = device.client
        .getRooms()
        .filter((r) => r.getMyMembership() === "join")
        .map((r) => r.roomId);
    const settings = {
        tz: (await device.client.getProfileInfo(device.userId))["m.tz"] ?? null,
        recent_emoji: device.client.getAccountData("m.recent_emoji")?.getContent() ?? null,
    };
    fs.writeFileSync(output, JSON.stringify({ restored, rooms, direct, joined, settings }, null, 2));
    device.stop();
}

main().then(
    () => process.exit(0),
    (e) => {
        process.stderr.write(`read.mjs failed: ${e?.stack ?? e}\n`);
        process.exit(1);
    },
);
