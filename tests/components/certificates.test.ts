// HTTPS for the Dify host, with the shipped bootstrap's own functions and a real ACME server: Pebble
// (github.com/letsencrypt/pebble/v2 at PEBBLE_VERSION, built from the Go module proxy) on loopback, and certbot
// at the version the instance runs (rules/certbot.ts, from PyPI), standing in for the certbot/certbot image
// through DIFY_BOOTSTRAP_CERTBOT. Validation is real: Pebble fetches the HTTP-01 token from a server in this
// process that serves the certbot webroot as Dify's nginx does (`location /.well-known/acme-challenge/ { root
// /var/www/html; }`). The issued IP certificate for 127.0.0.1 is then checked by a TLS handshake against Pebble's
// issuing root, renewed by the real renewal entry point once its short validity ran out, and checked again.
// Docker is a stand-in that records what it is asked; the same argument lists must reach the certbot image.
//
// Needs Go 1.25+ with the module proxy, and Python 3.12 with PyPI; without either the tests fail, saying how.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { parseEnv, requireTool, runBootstrapFunctions, runBootstrapFunctionsAsync, runTool } from "./tooling";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";
import { CERTBOT_IMAGE, CERTBOT_VERSION, LETS_ENCRYPT_DIRECTORY } from "../../rules/certbot";
import { PebbleBuild, RunningPebble, ensurePebble, startPebble } from "../harness/pebble";
import { CertbotInstall, ensureCertbot } from "../harness/certbot";

const script = compactScript(readBootstrapScript());
/** The test's `shortlived` profile: long enough for issuance and a handshake, short enough to wait out. */
const SHORTLIVED_SECONDS = 20;
const scratch: string[] = [];

function scratchDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    scratch.push(dir);
    return dir;
}

/** The release's certbot volumes in a test's work directory, as the bootstrap lays them out. */
function volumes(workDir: string) {
    const root = path.join(workDir, "opt-dify", "docker", "volumes", "certbot");
    return { root, conf: path.join(root, "conf"), work: path.join(root, "work"), logs: path.join(root, "logs"), www: path.join(root, "www") };
}

/** The issuance command, exactly: what the bootstrap must hand certbot (the directories as certbot sees them). */
function issueArgs(o: { name: string; server: string; email?: string; dirs: { conf: string; work: string; logs: string; www: string } }): string[] {
    const ip = /^[0-9.]+$/.test(o.name);
    return [
        "certonly",
        "--webroot",
        "-w",
        o.dirs.www,
        "--cert-name",
        "dify",
        ...(ip ? ["--ip-address", o.name, "--preferred-profile", "shortlived"] : ["-d", o.name]),
        "--server",
        o.server,
        "-n",
        "--agree-tos",
        ...(o.email ? ["-m", o.email, "--no-eff-email"] : ["--register-unsafely-without-email"]),
        "--config-dir",
        o.dirs.conf,
        "--work-dir",
        o.dirs.work,
        "--logs-dir",
        o.dirs.logs,
    ];
}

function renewArgs(dirs: { conf: string; work: string; logs: string }): string[] {
    return ["renew", "--cert-name", "dify", "-n", "--no-random-sleep-on-renew", "--config-dir", dirs.conf, "--work-dir", dirs.work, "--logs-dir", dirs.logs];
}

/** Argument lists recorded NUL-separated, one file per call, in call order. */
function recordedCalls(dir: string): string[][] {
    if (!fs.existsSync(dir)) {
        return [];
    }
    return fs
        .readdirSync(dir)
        .sort()
        .map((name) => fs.readFileSync(path.join(dir, name), "utf8").split("\0").slice(0, -1));
}

/** A command that records its arguments into $1's folder, then runs $2 with them (or succeeds). */
function recorder(recordDir: string, then = "exit 0"): string {
    return `
mkdir -p "${recordDir}"
n=$(find "${recordDir}" -mindepth 1 -maxdepth 1 | wc -l)
printf '%s\\0' "$@" >"${recordDir}/$(printf '%03d' "$n")"
${then}`;
}

/** A docker stand-in: records every call (with the directory) and succeeds. */
function dockerStub(workDir: string): string {
    return `echo "docker $* (in $PWD)" >> "${path.join(workDir, "docker.log")}"`;
}

function dockerLog(workDir: string): string {
    const file = path.join(workDir, "docker.log");
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
}

/** The leaf certificate certbot keeps in live/dify/ (a link into archive/). */
function liveCertificate(workDir: string): crypto.X509Certificate {
    return new crypto.X509Certificate(fs.readFileSync(path.join(volumes(workDir).conf, "live", "dify", "cert.pem")));
}

function lifetimeSeconds(cert: crypto.X509Certificate): number {
    return (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
}

interface Handshake {
    authorized: boolean;
    error?: string;
    subjectaltname?: string;
}

/**
 * Serves live/dify/'s certificate and key with a local https server (as nginx serves them) and shakes hands with
 * it from tls.connect, trusting `ca` only; `servername` is the name the client asks for (default: the IP itself).
 */
async function handshake(workDir: string, ca: string, servername?: string): Promise<Handshake> {
    const live = path.join(volumes(workDir).conf, "live", "dify");
    const server = https.createServer(
        { cert: fs.readFileSync(path.join(live, "fullchain.pem")), key: fs.readFileSync(path.join(live, "privkey.pem")) },
        (_req, res) => res.end("ok"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
        return await new Promise<Handshake>((resolve) => {
            const socket = tls.connect({ host: "127.0.0.1", port, ca, servername, rejectUnauthorized: true }, () => {
                resolve({ authorized: socket.authorized, subjectaltname: socket.getPeerCertificate().subjectaltname });
                socket.end();
            });
            socket.on("error", (error: NodeJS.ErrnoException) => resolve({ authorized: false, error: error.code ?? error.message }));
        });
    } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
    }
}

describe("the certbot command lines (no ACME server)", () => {
    it("runs the pinned certbot image with the release's certbot volumes, and the same arguments", () => {
        const workDir = scratchDir("certbot-docker-");
        const calls = path.join(workDir, "docker-calls");
        const result = runBootstrapFunctions(`run_certbot issue && run_certbot renew`, {
            workDir,
            script,
            stubs: { docker: recorder(calls) },
            env: { DIFY_PUBLIC_URL: "https://203.0.113.9", DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE },
        });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        const vol = volumes(workDir);
        const inContainer = { conf: "/etc/letsencrypt", work: "/var/lib/letsencrypt", logs: "/var/log/letsencrypt", www: "/var/www/html" };
        // Where the release's docker-compose.yaml mounts them into nginx: nginx serves what certbot writes.
        const run = ["run", "--rm", "--pull", "never", "-v", `${vol.conf}:/etc/letsencrypt`, "-v", `${vol.www}:/var/www/html`, "-v", `${vol.logs}:/var/log/letsencrypt`, CERTBOT_IMAGE];
        expect(recordedCalls(calls)).toEqual([
            ["image", "inspect", CERTBOT_IMAGE],
            [...run, ...issueArgs({ name: "203.0.113.9", server: LETS_ENCRYPT_DIRECTORY, dirs: inContainer })],
            ["image", "inspect", CERTBOT_IMAGE],
            [...run, ...renewArgs(inContainer)],
        ]);
        expect(CERTBOT_IMAGE).toBe(`certbot/certbot:v${CERTBOT_VERSION}`);
    });

    it("with a domain: -d, the CA's default profile, the e-mail; DIFY_ACME_SERVER replaces Let's Encrypt", () => {
        const workDir = scratchDir("certbot-domain-args-");
        const calls = path.join(workDir, "certbot-calls");
        const env = {
            DIFY_PUBLIC_URL: "https://dify.example.com",
            DIFY_DOMAIN: "dify.example.com",
            DIFY_CERT_EMAIL: "ops+dify@example.com",
            DIFY_ACME_SERVER: "https://acme-staging-v02.api.letsencrypt.org/directory",
            DIFY_BOOTSTRAP_CERTBOT: path.join(workDir, "stub-bin", "certbot"),
        };
        const result = runBootstrapFunctions(`run_certbot issue`, { workDir, script, stubs: { certbot: recorder(calls) }, env });
        expect(result.status, result.stderr).toBe(0);
        expect(recordedCalls(calls)).toEqual([
            issueArgs({ name: "dify.example.com", server: env.DIFY_ACME_SERVER, email: env.DIFY_CERT_EMAIL, dirs: volumes(workDir) }),
        ]);
    });

    it("pulls the image again through the image source when it is gone (a renewal months later)", () => {
        const workDir = scratchDir("certbot-pull-");
        const result = runBootstrapFunctions(`run_certbot renew`, {
            workDir,
            script,
            stubs: { docker: `echo "docker $*" >> "${path.join(workDir, "docker.log")}"; [ "$1 $2" != "image inspect" ]` },
            env: { DIFY_PUBLIC_URL: "https://203.0.113.9", DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE, DIFY_IMAGE_REGISTRY: "r-vpc.cn-hangzhou.cr.aliyuncs.com" },
        });
        expect(result.status, result.stdout + result.stderr).toBe(0);
        expect(dockerLog(workDir).split("\n").slice(0, 3)).toEqual([
            `docker image inspect ${CERTBOT_IMAGE}`,
            `docker pull -q r-vpc.cn-hangzhou.cr.aliyuncs.com/${CERTBOT_IMAGE}`,
            `docker tag r-vpc.cn-hangzhou.cr.aliyuncs.com/${CERTBOT_IMAGE} ${CERTBOT_IMAGE}`,
        ]);
    });

    it("does nothing on renewal without HTTPS or before the first certificate", () => {
        for (const url of ["http://203.0.113.9", "https://203.0.113.9"]) {
            const workDir = scratchDir("certbot-none-");
            fs.writeFileSync(path.join(workDir, "bootstrap.env"), `DIFY_PUBLIC_URL='${url}'\n`);
            const result = runBootstrapFunctions(`renew_certificate`, { workDir, script, stubs: { docker: dockerStub(workDir) } });
            expect(result.status, result.stderr).toBe(0);
            expect(result.stdout).toContain("no certificate to renew");
            expect(dockerLog(workDir)).toBe("");
        }
    });
});

describe("dify-certificate-renewal: the systemd units", () => {
    const SBIN = `${process.env.PATH}:/usr/sbin:/sbin`;

    function installUnits(publicUrl: string) {
        const workDir = scratchDir("certbot-units-");
        const result = runBootstrapFunctions(`install_units 0f3c1f8e-6f1c-4f43-9a0e-6a3b2f1e9c7d`, {
            workDir,
            script,
            stubs: { systemctl: `echo "systemctl $*" >> "${path.join(workDir, "systemctl.log")}"`, mountpoint: "exit 0" },
            env: { DIFY_PUBLIC_URL: publicUrl },
        });
        expect(result.status, result.stdout + result.stderr).toBe(0);
        return { dir: path.join(workDir, "systemd"), systemctl: fs.readFileSync(path.join(workDir, "systemctl.log"), "utf8"), script: path.join(workDir, "bootstrap.sh") };
    }

    beforeAll(() => {
        requireTool("systemd-analyze");
        requireTool("systemd-escape");
    });

    it("runs `renew-certificate` of the shipped script twice a day, spread over an hour, and passes systemd-analyze verify", () => {
        const { dir, systemctl, script: shipped } = installUnits("https://203.0.113.9");
        expect(fs.readFileSync(path.join(dir, "dify-certificate-renewal.service"), "utf8")).toBe(
            `[Unit]\nAfter=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/bash ${shipped} renew-certificate\n`,
        );
        expect(fs.readFileSync(path.join(dir, "dify-certificate-renewal.timer"), "utf8")).toBe(
            "[Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n[Install]\nWantedBy=timers.target\n",
        );
        expect(systemctl).toContain("systemctl enable --now dify-certificate-renewal.timer\n");
        fs.writeFileSync(path.join(dir, "docker.service"), "[Unit]\nDescription=stand-in for Docker\n[Service]\nExecStart=/bin/true\n");
        const units = ["docker.service", "dify-certificate-renewal.service", "dify-certificate-renewal.timer"].map((u) => path.join(dir, u));
        const verify = runTool("systemd-analyze", ["verify", "--man=no", ...units], { env: { PATH: SBIN, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_COLOR: "0" } });
        expect(verify.stderr).toBe("");
        expect(verify.stdout).toBe("");
        expect(verify.status).toBe(0);
        // Twice a day: the calendar expression as systemd reads it.
        const calendar = runTool("systemd-analyze", ["calendar", "--iterations=3", "*-*-* 00,12:00:00"], { env: { PATH: SBIN, SYSTEMD_LOG_COLOR: "0" } });
        expect(calendar.status, calendar.stderr).toBe(0);
        expect(calendar.stdout).toContain("Normalized form: *-*-* 00,12:00:00");
    });

    it("installs no renewal with plain HTTP", () => {
        const { dir, systemctl } = installUnits("http://203.0.113.9");
        expect(fs.existsSync(path.join(dir, "dify-certificate-renewal.timer"))).toBe(false);
        expect(systemctl).not.toContain("dify-certificate-renewal");
    });
});

describe(`the bootstrap's issuance and renewal against Pebble, with certbot ${CERTBOT_VERSION}`, () => {
    let build: PebbleBuild;
    let certbot: CertbotInstall;
    let pebble: RunningPebble | undefined;
    let webrootServer: http.Server | undefined;
    /** The webroot the challenge server serves now (each test's volumes/certbot/www). */
    let webroot = "";
    /** What Pebble fetched: "<Host header> <path>" per challenge request answered. */
    const challenges: string[] = [];

    beforeAll(async () => {
        [build, certbot] = await Promise.all([ensurePebble(), ensureCertbot()]);
        webrootServer = http.createServer((req, res) => {
            const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "")?.[1];
            const file = token && path.join(webroot, ".well-known", "acme-challenge", token);
            if (!file || !fs.existsSync(file)) {
                res.writeHead(404).end();
                return;
            }
            challenges.push(`${req.headers.host} ${req.url}`);
            res.writeHead(200, { "content-type": "text/plain" }).end(fs.readFileSync(file));
        });
        await new Promise<void>((resolve) => webrootServer!.listen(0, "127.0.0.1", resolve));
        pebble = await startPebble(build, {
            httpPort: (webrootServer.address() as { port: number }).port,
            profiles: {
                shortlived: { description: `Let's Encrypt's shortlived, in ${SHORTLIVED_SECONDS} s`, validityPeriod: SHORTLIVED_SECONDS },
                classic: { description: "90 days", validityPeriod: 90 * 86400 },
            },
        });
    }, 600_000);

    afterAll(async () => {
        await pebble?.stop();
        if (webrootServer) {
            await new Promise((resolve) => webrootServer!.close(resolve));
        }
        for (const dir of scratch) {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    /** The environment of a run against Pebble: the real certbot behind a recorder, trusting Pebble's listener. */
    function acmeEnv(workDir: string, settings: Record<string, string>): Record<string, string> {
        webroot = volumes(workDir).www;
        return {
            ...settings,
            DIFY_BOOTSTRAP_CERTBOT: path.join(workDir, "stub-bin", "certbot"),
            DIFY_ACME_SERVER: pebble!.directoryUrl,
            REQUESTS_CA_BUNDLE: build.listenerCa,
        };
    }

    function stubs(workDir: string) {
        return { certbot: recorder(path.join(workDir, "certbot-calls"), `exec "${certbot.certbot}" "$@"`), docker: dockerStub(workDir) };
    }

    /** A docker/ folder as prepare_dify leaves it over HTTP: .env without HTTPS yet. */
    function dockerDir(workDir: string): string {
        const dir = path.join(workDir, "opt-dify", "docker");
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, ".env"), "NGINX_HTTPS_ENABLED=false\nNGINX_ENABLE_CERTBOT_CHALLENGE=true\nEXPOSE_PLUGIN_DEBUGGING_PORT=5003\n");
        return dir;
    }

    const ipWork = scratchDir("certbot-pebble-ip-");
    const IP_SETTINGS = { DIFY_PUBLIC_URL: "https://127.0.0.1" };
    let issued: crypto.X509Certificate | undefined;

    it("enable_https gets an IP certificate for 127.0.0.1 (profile shortlived) through the webroot, and turns HTTPS on", async () => {
        const docker = dockerDir(ipWork);
        const result = await runBootstrapFunctionsAsync(`enable_https && cat "$DIFY_BOOTSTRAP_STATE_DIR/status"`, {
            workDir: ipWork,
            script,
            stubs: stubs(ipWork),
            env: acmeEnv(ipWork, IP_SETTINGS),
        });
        expect(result.status, `${result.stdout}\n${result.stderr}\n${pebble!.output().slice(-3000)}`).toBe(0);
        // The readiness output shows the step; the status ends at the switch to HTTPS.
        expect(result.stdout).toContain("step: requesting a certificate for 127.0.0.1");
        expect(result.stdout).toContain("state=running\nstep=switching nginx to HTTPS\n");

        // The exact command, run once (first try), with the host's directories.
        const vol = volumes(ipWork);
        expect(recordedCalls(path.join(ipWork, "certbot-calls"))).toEqual([issueArgs({ name: "127.0.0.1", server: pebble!.directoryUrl, dirs: vol })]);
        // Pebble really fetched the token from the webroot, on the IP.
        expect(challenges.some((c) => c.startsWith("127.0.0.1:") && c.includes(" /.well-known/acme-challenge/"))).toBe(true);

        issued = liveCertificate(ipWork);
        expect(issued.subjectAltName).toBe("IP Address:127.0.0.1");
        // The shortlived profile's validity (Pebble's classic one would be 90 days).
        expect(lifetimeSeconds(issued)).toBeGreaterThan(SHORTLIVED_SECONDS - 3);
        expect(lifetimeSeconds(issued)).toBeLessThanOrEqual(SHORTLIVED_SECONDS);
        const renewal = fs.readFileSync(path.join(vol.conf, "renewal", "dify.conf"), "utf8");
        expect(renewal).toContain("preferred_profile = shortlived\n");
        expect(renewal).toContain(`server = ${pebble!.directoryUrl}\n`);
        expect(renewal).toContain("authenticator = webroot\n");

        // HTTPS on: .env, the override with port 80's redirect, and nginx recreated to read the certificate.
        expect(parseEnv(fs.readFileSync(path.join(docker, ".env"), "utf8")).get("NGINX_HTTPS_ENABLED")).toBe("true");
        expect(fs.readFileSync(path.join(docker, "docker-compose.override.yaml"), "utf8")).toContain('      - "${EXPOSE_NGINX_PORT:-80}:8080"\n');
        expect(fs.readFileSync(path.join(docker, "nginx-https-redirect.conf"), "utf8")).toContain("return 301 https://$host$request_uri;");
        expect(dockerLog(ipWork)).toBe(`docker compose up -d --no-deps --force-recreate nginx (in ${docker})\n`);
    }, 180_000);

    it("serves a certificate that a TLS client verifies for IP 127.0.0.1 against Pebble's issuing root, and nothing else", async () => {
        expect(issued, "the issuance test ran first").toBeDefined();
        const root = await pebble!.issuingRoot();
        expect(await handshake(ipWork, root)).toEqual({ authorized: true, subjectaltname: "IP Address:127.0.0.1" });
        // Not vacuous: another name, or another root, fails the handshake.
        expect((await handshake(ipWork, root, "localhost")).error).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
        expect((await handshake(ipWork, fs.readFileSync(build.listenerCa, "utf8"))).error).toBe("UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
    }, 60_000);

    it("renews it with `dify-bootstrap.sh renew-certificate` once the short validity ran out, and reloads nginx", async () => {
        expect(issued, "the issuance test ran first").toBeDefined();
        const wait = Date.parse(issued!.validTo) + 1500 - Date.now();
        if (wait > 0) {
            await new Promise((resolve) => setTimeout(resolve, wait));
        }
        const docker = path.join(ipWork, "opt-dify", "docker");
        fs.rmSync(path.join(ipWork, "docker.log"), { force: true });
        fs.rmSync(path.join(ipWork, "certbot-calls"), { recursive: true, force: true });
        // As dify-certificate-renewal.service runs it: the shipped script, its settings from the settings file.
        fs.writeFileSync(path.join(ipWork, "bootstrap.env"), `DIFY_PUBLIC_URL='https://127.0.0.1'\nDIFY_CERTBOT_IMAGE='${CERTBOT_IMAGE}'\n`);
        const env = acmeEnv(ipWork, {});
        delete env.DIFY_ACME_SERVER; // the renewal configuration names the server
        const result = await runBootstrapFunctionsAsync(`DIFY_BOOTSTRAP_SOURCE_ONLY=0 bash "$0" renew-certificate`, {
            workDir: ipWork,
            script,
            stubs: stubs(ipWork),
            env,
        });
        expect(result.status, `${result.stdout}\n${result.stderr}\n${pebble!.output().slice(-3000)}`).toBe(0);
        expect(recordedCalls(path.join(ipWork, "certbot-calls"))).toEqual([renewArgs(volumes(ipWork))]);

        const renewed = liveCertificate(ipWork);
        expect(renewed.serialNumber).not.toBe(issued!.serialNumber);
        expect(Date.parse(renewed.validFrom)).toBeGreaterThan(Date.parse(issued!.validFrom));
        expect(renewed.subjectAltName).toBe("IP Address:127.0.0.1");
        expect(lifetimeSeconds(renewed)).toBeLessThanOrEqual(SHORTLIVED_SECONDS);
        expect(fs.readlinkSync(path.join(volumes(ipWork).conf, "live", "dify", "fullchain.pem"))).toBe("../../archive/dify/fullchain2.pem");
        expect(dockerLog(ipWork)).toBe(`docker compose exec -T nginx nginx -s reload (in ${docker})\n`);
        expect(fs.readFileSync(path.join(ipWork, "bootstrap.log"), "utf8")).toContain("renewed the certificate for 127.0.0.1");
        expect(await handshake(ipWork, await pebble!.issuingRoot())).toEqual({ authorized: true, subjectaltname: "IP Address:127.0.0.1" });
    }, 120_000);

    it("with a domain, gets a certificate for the name (-d, with the e-mail), which verifies for that name", async () => {
        const workDir = scratchDir("certbot-pebble-domain-");
        dockerDir(workDir);
        const settings = { DIFY_PUBLIC_URL: "https://localhost", DIFY_DOMAIN: "localhost", DIFY_CERT_EMAIL: "ops@example.com" };
        const result = await runBootstrapFunctionsAsync(`request_certificate`, { workDir, script, stubs: stubs(workDir), env: acmeEnv(workDir, settings) });
        expect(result.status, `${result.stdout}\n${result.stderr}\n${pebble!.output().slice(-3000)}`).toBe(0);
        expect(recordedCalls(path.join(workDir, "certbot-calls"))).toEqual([
            issueArgs({ name: "localhost", server: pebble!.directoryUrl, email: "ops@example.com", dirs: volumes(workDir) }),
        ]);
        expect(liveCertificate(workDir).subjectAltName).toBe("DNS:localhost");
        const root = await pebble!.issuingRoot();
        expect(await handshake(workDir, root, "localhost")).toEqual({ authorized: true, subjectaltname: "DNS:localhost" });
    }, 180_000);
});
