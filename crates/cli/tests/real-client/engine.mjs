// Element Web's client engine (matrix-js-sdk 37.5.0 with its Rust crypto, the wasm build of
// matrix-sdk-crypto) as a test peer: log in, sync, send, set up Secure Backup, restore.
// Used by history.mjs (what a user did before the move) and read.mjs (what a fresh device
// of the new account sees after it). Nothing here talks to anything but the loopback
// Synapses the test names.

import fs from "node:fs";
import { inspect } from "node:util";

import * as sdk from "matrix-js-sdk";
import { decodeRecoveryKey, deriveRecoveryKeyFromPassphrase } from "matrix-js-sdk/lib/crypto-api/index.js";

/** Everything the engine logs goes to `file` (it is chatty), not to the test's output. */
export function quiet(file) {
    const log = fs.createWriteStream(file, { flags: "a" });
    const write = (level) => (...args) =>
        log.write(`${new Date().toISOString()} ${level} ${args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 3 }))).join(" ")}\n`);
    for (const level of ["log", "debug", "info", "warn", "error", "trace"]) {
        console[level] = write(level);
    }
    return (...args) => write("step")(...args);
}

/** Waits until `check()` is truthy (polled), or fails naming `what`. */
export async function until(what, check, timeoutMs = 60000) {
    const started = Date.now();
    for (;;) {
        const value = await check();
        if (value) {
            return value;
        }
        if (Date.now() - started > timeoutMs) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        }
        await new Promise((r) => setTimeout(r, 200));
    }
}

/**
 * The secret-storage key a client hands back when its engine asks (Element asks the user
 * for the recovery key or the security phrase at that moment).
 */
class KeyHolder {
    constructor() {
        this.key = null;
    }
    callbacks() {
        return {
            getSecretStorageKey: async ({ keys }) => {
                const id = Object.keys(keys).find((k) => this.key && (this.key.keyId === undefined || this.key.keyId === k));
                if (!id) {
                    throw new Error("no secret-storage key to give");
                }
                const bytes = this.key.bytes ?? (await this.key.derive(keys[id]));
                return [id, bytes];
            },
            cacheSecretStorageKey: (keyId, _info, bytes) => {
                this.key = { keyId, bytes };
            },
        };
    }
}

/** A logged-in device with its crypto running and its first sync done. */
export class Device {
    static async login({ homeserver, user_id, password }, deviceName) {
        const anonymous = sdk.createClient({ baseUrl: homeserver });
        const r = await anonymous.loginRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: user_id },
            password,
            initial_device_display_name: deviceName,
        });
        const holder = new KeyHolder();
        const client = sdk.createClient({
            baseUrl: homeserver,
            userId: r.user_id,
            accessToken: r.access_token,
            deviceId: r.device_id,
            cryptoCallbacks: holder.callbacks(),
        });
        await client.initRustCrypto({ useIndexedDB: false });
        const device = new Device(client, holder, password);
        return device;
    }

    constructor(client, holder, password) {
        this.client = client;
        this.holder = holder;
        this.password = password;
        this.userId = client.getUserId();
        this.deviceId = client.getDeviceId();
        this.crypto = client.getCrypto();
    }

    async start() {
        const ready = new Promise((resolve, reject) => {
            const onSync = (state, _prev, data) => {
                if (state === "PREPARED" || state === "SYNCING") {
                    this.client.off(sdk.ClientEvent.Sync, onSync);
                    resolve();
                } else if (state === "ERROR") {
                    reject(new Error(`sync failed for ${this.userId}: ${data?.error}`));
                }
            };
            this.client.on(sdk.ClientEvent.Sync, onSync);
        });
        await this.client.startClient({ initialSyncLimit: 100, lazyLoadMembers: false });
        await ready;
        return this;
    }

    stop() {
        this.client.stopClient();
    }

    /**
     * Secure Backup set up the way Element sets it up: cross-signing, a new secret-storage
     * key (random, or from a security phrase), a new key backup whose own random key is
     * stored in secret storage. Returns what Element shows the user: the recovery key.
     */
    async setUpSecureBackup(phrase) {
        const recovery = await this.crypto.createRecoveryKeyFromPassphrase(phrase);
        const password = this.password;
        const userId = this.userId;
        await this.crypto.bootstrapCrossSigning({
            authUploadDeviceSigningKeys: async (makeRequest) => {
                try {
                    await makeRequest(null);
                } catch (e) {
                    await makeRequest({
                        type: "m.login.password",
                        identifier: { type: "m.id.user", user: userId },
                        password,
                        session: e?.data?.session,
                    });
                }
            },
        });
        this.holder.key = { bytes: recovery.privateKey };
        await this.crypto.bootstrapSecretStorage({
            createSecretStorageKey: async () => recovery,
            setupNewSecretStorage: true,
            setupNewKeyBackup: true,
        });
        await until("the new key backup to be active", () => this.crypto.getActiveSessionBackupVersion());
        return recovery.encodedPrivateKey;
    }

    /** Restores the account's key backup as Element does on a new device. */
    async restoreFromRecovery({ recovery_key, security_phrase }) {
        if (security_phrase) {
            this.holder.key = {
                derive: (info) => deriveRecoveryKeyFromPassphrase(security_phrase, info.passphrase.salt, info.passphrase.iterations),
            };
        } else {
            this.holder.key = { bytes: decodeRecoveryKey(recovery_key) };
        }
        await this.crypto.loadSessionBackupPrivateKeyFromSecretStorage();
        const check = await this.crypto.checkKeyBackupAndEnable();
        if (!check) {
            throw new Error("the account has no key backup");
        }
        return await this.crypto.restoreKeyBackup();
    }

    /** How many sessions the account's current backup holds, as the server says. */
    async backupCount() {
        const info = await this.client.http.authedRequest(sdk.Method.Get, "/room_keys/version");
        return info?.count ?? 0;
    }

    /** Until this device has backed up every session it holds. */
    async backedUp() {
        const sessions = (await this.crypto.exportRoomKeys()).length;
        await until(`${this.userId}'s backup to hold its ${sessions} sessions`, async () => (await this.backupCount()) >= sessions, 120000);
        return sessions;
    }

    room(roomId) {
        return this.client.getRoom(roomId);
    }

    /** Until this device sees `userId`'s membership in `roomId` as `membership`. */
    async sees(roomId, userId, membership = "join") {
        await until(`${this.userId} to see ${userId} ${membership} ${roomId}`, () => this.room(roomId)?.getMember(userId)?.membership === membership);
    }

    /** Until this device's crypto knows each of `devices` (user ID -> device IDs). */
    async knows(devices) {
        const users = Object.keys(devices);
        await until(`${this.userId} to know the devices ${JSON.stringify(devices)}`, async () => {
            const map = await this.crypto.getUserDeviceInfo(users, true);
            return users.every((u) => devices[u].every((d) => map.get(u)?.has(d)));
        });
    }

    /** Until this device's crypto knows exactly `devices` of `userId` (a logout seen). */
    async knowsOnly(userId, devices) {
        await until(`${this.userId} to know only the devices ${devices} of ${userId}`, async () => {
            const map = await this.crypto.getUserDeviceInfo([userId], true);
            const known = [...(map.get(userId)?.keys() ?? [])].sort();
            return JSON.stringify(known) === JSON.stringify([...devices].sort());
        });
    }

    async say(roomId, text) {
        const r = await this.client.sendTextMessage(roomId, text);
        return r.event_id;
    }

    async join(roomId, via) {
        await this.client.joinRoom(roomId, { viaServers: via });
        await until(`${this.userId} to be joined to ${roomId}`, () => this.room(roomId)?.getMyMembership() === "join");
    }

    /**
     * Every message of `roomId` this device can see, from the room's start: each with its
     * sender, its text when it decrypts, or why it does not.
     */
    async readRoom(roomId) {
        const room = await until(`${this.userId} to have ${roomId}`, () => this.room(roomId));
        const timeline = room.getLiveTimeline();
        while (await this.client.paginateEventTimeline(timeline, { backwards: true, limit: 100 })) {
            // to the room's start
        }
        const out = [];
        for (const event of timeline.getEvents()) {
            const type = event.getWireType();
            if (type !== "m.room.message" && type !== "m.room.encrypted") {
                continue;
            }
            await this.client.decryptEventIfNeeded(event);
            if (event.isDecryptionFailure()) {
                out.push({ sender: event.getSender(), event_id: event.getId(), failure: event.decryptionFailureReason ?? "failed" });
            } else {
                out.push({ sender: event.getSender(), event_id: event.getId(), text: event.getContent().body, encrypted: event.isEncrypted() });
            }
        }
        return out;
    }
}
