// Pebble, Let's Encrypt's ACME test server (github.com/letsencrypt/pebble/v2), for running the bootstrap's real
// certbot commands against a real ACME server on loopback. pebble-env.sh builds it from the Go module proxy into
// .cache/pebble/<version>/ once (about a minute cold; later calls cost a stat); startPebble runs one on free
// loopback ports with the given profiles, its HTTP-01 checks sent to `httpPort` (where the test serves the
// webroot). Asynchronous throughout: the webroot server runs in the test's own process.
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";

/** The Pebble release the tests run (its go.mod needs Go 1.25). */
export const PEBBLE_VERSION = "v2.10.3";

const ENV_SCRIPT = path.join(PROJECT_ROOT, "tests", "harness", "pebble-env.sh");

export interface PebbleBuild {
    binary: string;
    /** The root that signed Pebble's listener certificate: what an ACME client must trust to talk to Pebble. */
    listenerCa: string;
    certDir: string;
    built: boolean;
    seconds: number;
}

function tail(text: string, lines = 25): string {
    return text.trim().split("\n").slice(-lines).join("\n");
}

/** Builds Pebble when it is not cached. Throws, saying why, when it cannot be built. */
export function ensurePebble(): Promise<PebbleBuild> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        execFile("bash", [ENV_SCRIPT, PEBBLE_VERSION], { timeout: 600_000, maxBuffer: 16 << 20, encoding: "utf8" }, (error, stdout, stderr) => {
            if (error) {
                reject(
                    new Error(
                        `could not build Pebble ${PEBBLE_VERSION} (${ENV_SCRIPT}; it needs Go 1.25+ and the Go module proxy): ${tail(stderr) || error.message}`,
                    ),
                );
                return;
            }
            const [binary, certDir, how] = stdout.trim().split("\n");
            resolve({
                binary,
                certDir,
                listenerCa: path.join(certDir, "pebble.minica.pem"),
                built: how === "built",
                seconds: (Date.now() - started) / 1000,
            });
        });
    });
}

/** One ACME profile: Pebble issues certificates valid for `validityPeriod` seconds under it. */
export interface PebbleProfile {
    description: string;
    validityPeriod: number;
}

export interface PebbleOptions {
    /** The port Pebble's validation authority fetches http://<identifier>:<port>/.well-known/acme-challenge/ on. */
    httpPort: number;
    profiles: Record<string, PebbleProfile>;
}

export interface RunningPebble {
    /** The ACME directory URL (https, with the listener certificate of `build.listenerCa`). */
    directoryUrl: string;
    managementUrl: string;
    /** Pebble's issuing root, made anew at each start: what a client must trust to verify an issued certificate. */
    issuingRoot(): Promise<string>;
    /** Everything Pebble printed so far. */
    output(): string;
    stop(): Promise<void>;
}

/** A port that was free a moment ago (Pebble takes its ports from its config file, not from the kernel). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** GET over https, trusting only `ca`. */
export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        // ACME servers refuse requests without a User-Agent (RFC 8555 §6.1), Node sends none.
        const request = https.get(url, { ca, timeout: 10_000, headers: { "user-agent": "dify-mcp-stack-tests" } }, (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk) => (body += chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        });
        request.on("timeout", () => request.destroy(new Error(`GET ${url} timed out`)));
        request.on("error", reject);
    });
}

/**
 * Starts Pebble on 127.0.0.1 with free ports, the given profiles and no surprises: no validation delay
 * (PEBBLE_VA_NOSLEEP) and no deliberately rejected nonces (PEBBLE_WFE_NONCEREJECT=0; the default rejects 5%, and
 * the acme library retries a bad nonce once). Validation is real (no PEBBLE_VA_ALWAYS_VALID). Resolves once the
 * directory answers.
 */
export async function startPebble(build: PebbleBuild, options: PebbleOptions): Promise<RunningPebble> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pebble-"));
    const [acmePort, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
    const config = {
        pebble: {
            listenAddress: `127.0.0.1:${acmePort}`,
            managementListenAddress: `127.0.0.1:${managementPort}`,
            certificate: path.join(build.certDir, "localhost", "cert.pem"),
            privateKey: path.join(build.certDir, "localhost", "key.pem"),
            httpPort: options.httpPort,
            tlsPort,
            ocspResponderURL: "",
            externalAccountBindingRequired: false,
            profiles: options.profiles,
        },
    };
    const configFile = path.join(dir, "pebble-config.json");
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
    let printed = "";
    const child: ChildProcess = spawn(build.binary, ["-config", configFile], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
        stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk) => (printed += chunk));
    child.stderr?.on("data", (chunk) => (printed += chunk));
    let exited: number | null | undefined;
    const ended = new Promise<void>((resolve) => child.on("exit", (code) => ((exited = code), resolve())));

    const ca = fs.readFileSync(build.listenerCa, "utf8");
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const managementUrl = `https://127.0.0.1:${managementPort}`;
    const stop = async () => {
        if (exited === undefined) {
            child.kill("SIGTERM");
            await ended;
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 30_000;
    for (;;) {
        if (exited !== undefined) {
            await stop();
            throw new Error(`Pebble exited (${exited}) at start: ${tail(printed)}`);
        }
        try {
            if ((await httpsGet(directoryUrl, ca)).status === 200) {
                break;
            }
        } catch {
            // not listening yet
        }
        if (Date.now() > deadline) {
            await stop();
            throw new Error(`Pebble did not answer on ${directoryUrl} within 30 s: ${tail(printed)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
        directoryUrl,
        managementUrl,
        issuingRoot: async () => {
            const root = await httpsGet(`${managementUrl}/roots/0`, ca);
            if (root.status !== 200 || !root.body.includes("BEGIN CERTIFICATE")) {
                throw new Error(`Pebble's /roots/0 answered ${root.status}: ${root.body.slice(0, 200)}`);
            }
            return root.body;
        },
        output: () => printed,
        stop,
    };
}
