// The code Element Web writes and reads key files with (matrix-react-sdk 3.114.0,
// lib/utils/MegolmExportEncryption.js, fetched by install.sh and checked against its
// SHA-256), loaded as it is: its three UI imports (a logger, translations, the brand name)
// are stubbed, and `window` is Node's own Web Crypto. So a key file here is byte for byte
// what "Export E2E room keys" in Element writes.

import Module, { createRequire } from "node:module";

globalThis.window ??= globalThis;
const stubs = {
    "@babel/runtime/helpers/interopRequireDefault": (m) => (m && m.__esModule ? m : { default: m }),
    "matrix-js-sdk/src/logger": { logger: { log() {}, warn() {}, error() {} } },
    "../languageHandler": { _t: (key) => key },
    "../SdkConfig": { __esModule: true, default: { get: () => ({ brand: "Element" }) } },
};
const load = Module._load;
Module._load = function (request, ...rest) {
    return Object.hasOwn(stubs, request) ? stubs[request] : load.call(this, request, ...rest);
};
const element = createRequire(import.meta.url)("./.element/MegolmExportEncryption.cjs");
Module._load = load;

/** Element's "Export E2E room keys": the JSON of the sessions, sealed with `passphrase`. */
export async function encryptKeyFile(json, passphrase) {
    return new Uint8Array(await element.encryptMegolmKeyFile(json, passphrase));
}

/** Element's "Import E2E room keys": the JSON inside a key file. */
export async function decryptKeyFile(bytes, passphrase) {
    return await element.decryptMegolmKeyFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), passphrase);
}
