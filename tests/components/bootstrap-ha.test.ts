// The `ha` roles' user data (app and singleton) and what `single` keeps: the renderer's checks of the role and the
// external services, where their secrets go (the secret user data and the node's root-only files, never the
// settings Pulumi sends through Cloud Assistant, nor the status the readiness reads), the 16 KB cap, the composed
// script (bootstrap.sh with ha-node.sh) through shellcheck and cloud-init's own schema validation and write_files,
// and a pin of the `single` rendering, which must not move.
import { beforeAll, describe, expect, it } from "vitest";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { runBootstrapFunctions, runTool, writeFilesWithCloudInit } from "./tooling";
import { installMocks, valueOf } from "./pulumi-mocks";
import { DOCKER_STUB, HA_EXTERNAL_SERVICES, haSecretValues, readComposeCalls } from "../harness/compose-bootstrap";
import { composeCli } from "../harness/compose";
import { difyReleaseDir } from "../harness/dify-release";
import {
    BOOTSTRAP_CONFIG_PATH,
    BOOTSTRAP_SCRIPT_PATH,
    BootstrapSettings,
    HA_DROPPED_FUNCTIONS,
    HA_SECRET_SETTINGS,
    USER_DATA_LIMIT_BYTES,
    bootstrapScriptFor,
    compactScript,
    readBootstrapScript,
    readHaOverlay,
    renderBootstrapApplication,
    renderBootstrapConfig,
    renderUserData,
} from "../../components/bootstrap/userdata";
import { DifyNodeRole, ExternalServices, HA_ROLE_SERVICES } from "../../components/bootstrap/external-services";
import { DifyBootstrap } from "../../components/dify-bootstrap";
import { BOOTSTRAP_STATUS_SCRIPT } from "../../dynamic-providers/dify/bootstrap-status";
import { releaseVerification } from "../../rules/dify-releases";

type HaRole = Exclude<DifyNodeRole, "single">;
const ROLES: HaRole[] = ["app", "singleton"];
const DOMAIN = "dify.example.com";

function haSettings(role: HaRole, services: ExternalServices = HA_EXTERNAL_SERVICES): BootstrapSettings {
    return {
        difyVersion: "1.14.1",
        publicUrl: `https://${DOMAIN}`,
        initPassword: "Ab1-_=/&.xyzXYZ789",
        role,
        domain: DOMAIN,
        externalServices: services,
        registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"],
        ...releaseVerification("1.14.1"),
    };
}

/** HA_EXTERNAL_SERVICES with one value replaced, by its path ("database.host"). */
function withValue(pathName: string, value: unknown): ExternalServices {
    const copy = structuredClone(HA_EXTERNAL_SERVICES) as unknown as Record<string, Record<string, unknown> | unknown>;
    const [group, key] = pathName.split(".");
    if (key === undefined) {
        copy[group] = value;
    } else {
        (copy[group] as Record<string, unknown>)[key] = value;
    }
    return copy as unknown as ExternalServices;
}

interface CloudConfig {
    write_files: Array<{ path: string; permissions: string; content: string; encoding?: string }>;
    runcmd: string[][];
}

function fileContent(config: CloudConfig, filePath: string): string {
    const file = config.write_files.find((f) => f.path === filePath)!;
    return file.encoding === "gz+b64" ? zlib.gunzipSync(Buffer.from(file.content, "base64")).toString("utf8") : file.content;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

describe("the single role: unchanged", () => {
    // A `single` stack's instance applies the bootstrap again (DifyInstanceConfiguration) whenever the settings digest
    // changes: these values are what HEAD rendered before the ha roles existed.
    const SINGLE: BootstrapSettings = {
        difyVersion: "1.14.1",
        publicUrl: "https://198.51.100.23",
        initPassword: "Ab1-_=/&.xyzXYZ789",
        dataDiskId: "d-bp1abcdef",
        registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"],
        pipMirrorUrl: "https://mirrors.aliyun.com/pypi/simple",
        releaseDigest: "a".repeat(64),
        releaseCommit: "b".repeat(40),
    };
    const MOVED =
        "the single role's rendering moved: changing it re-applies the bootstrap on every existing single stack " +
        "(DifyInstanceConfiguration runs it again, with a data disk snapshot first). If that is intended (bootstrap.sh, " +
        "the certbot pin or the settings file changed on purpose), update the pinned value; the ha roles must never move it";

    it("renders the settings digest, script digest and user data it always did", () => {
        const application = renderBootstrapApplication(SINGLE);
        expect(application.settingsDigest, MOVED).toBe("33e1179d3e3d27c2f5d17125ba6fc42bb6fe93970f7eed5a4cb59b0ddc9af97f");
        expect(application.scriptDigest, MOVED).toBe("b18cf815fc31a8e21aadfec18d1c3e039e2b02cab9774aebe6fdd7067ff59043");
        expect(sha256(renderUserData(SINGLE)), MOVED).toBe("768a6c231b0830372338c3072656f09c1fc7fd3fcc2d3c48ece712bffd3cb125");
        // role "single" said out loud is the same as left out.
        expect(renderUserData({ ...SINGLE, role: "single" })).toBe(renderUserData(SINGLE));
    });

    it("ships bootstrap.sh alone, compacted, and none of the ha overlay or settings", () => {
        expect(bootstrapScriptFor("single")).toBe(readBootstrapScript());
        const config = yaml.load(renderUserData(SINGLE)) as CloudConfig;
        expect(fileContent(config, BOOTSTRAP_SCRIPT_PATH)).toBe(compactScript(readBootstrapScript()).trimEnd() + "\n");
        const settings = fileContent(config, BOOTSTRAP_CONFIG_PATH);
        expect(settings).not.toMatch(/DIFY_ROLE|DIFY_SERVICES|DIFY_DB_|DIFY_REDIS_|DIFY_OSS_/);
        expect(settings).toContain("DIFY_DATA_DISK_SERIAL='bp1abcdef'\n");
        expect(fileContent(config, BOOTSTRAP_SCRIPT_PATH)).not.toContain("write_ha_compose_override");
    });

    it("refuses external services, and requires its data disk", () => {
        expect(() => renderBootstrapConfig({ ...SINGLE, externalServices: HA_EXTERNAL_SERVICES })).toThrow(/externalServices is set for the role "single"/);
        expect(() => renderBootstrapConfig({ ...SINGLE, dataDiskId: undefined })).toThrow(/dataDiskId is required for the role "single"/);
    });
});

describe("the ha roles' settings", () => {
    it("refuses an unknown role, a missing or misplaced setting, a URL that is not https://<domain>", () => {
        const app = haSettings("app");
        expect(() => renderBootstrapConfig({ ...app, role: "worker" as DifyNodeRole })).toThrow('role is "worker"; allowed: "single", "app" or "singleton"');
        expect(() => renderBootstrapConfig({ ...app, externalServices: undefined })).toThrow(/externalServices is required for the role "app"/);
        expect(() => renderBootstrapConfig({ ...app, dataDiskId: "d-bp1abcdef" })).toThrow(/dataDiskId is set for the role "app", which has no data disk/);
        expect(() => renderBootstrapConfig({ ...app, publicUrl: "http://dify.example.com" })).toThrow(/needs https:\/\/<domain>/);
        expect(() => renderBootstrapConfig({ ...app, publicUrl: "https://198.51.100.23", domain: undefined })).toThrow(/needs https:\/\/<domain>/);
        expect(() => renderBootstrapConfig({ ...app, publicUrl: "https://dify.example.com/path" })).toThrow(/needs https:\/\/<domain>/);
        expect(() => renderBootstrapConfig({ ...app, domain: "other.example.com" })).toThrow(/DIFY_DOMAIN is "other.example.com", not the public URL's domain/);
        expect(() => renderBootstrapConfig({ ...app, certEmail: "ops@example.com" })).toThrow(/DIFY_CERT_EMAIL is set for an app node/);
    });

    const BAD: Array<[string, unknown, RegExp]> = [
        ["database.host", "pgm-x.pg.rds.aliyuncs.com; rm -rf /", /externalServices\.database\.host \(DIFY_DB_HOST\) is ".*"; allowed: a host name/],
        ["database.host", "-pgm.example.com", /DIFY_DB_HOST/],
        ["database.port", 0, /externalServices\.database\.port \(DIFY_DB_PORT\) is 0; allowed: an integer port/],
        ["database.port", "5432", /DIFY_DB_PORT\) is "5432"/],
        ["database.username", "dify-app", /externalServices\.database\.username \(DIFY_DB_USERNAME\) is "dify-app"/],
        ["database.database", "dify db", /DIFY_DB_DATABASE/],
        ["database.pluginDatabase", "", /DIFY_DB_PLUGIN_DATABASE/],
        ["redis.host", "r-x.redis.rds.aliyuncs.com:6379", /DIFY_REDIS_HOST/],
        ["redis.port", 70000, /DIFY_REDIS_PORT\) is 70000/],
        ["storage.bucket", "Dify_Files", /externalServices\.storage\.bucket \(DIFY_OSS_BUCKET\) is "Dify_Files"; allowed: an OSS bucket name/],
        ["storage.region", "Hangzhou", /DIFY_OSS_REGION/],
        ["storage.endpoint", "oss-cn-hangzhou-internal.aliyuncs.com", /DIFY_OSS_ENDPOINT\) is .*allowed: http\(s\):\/\/<host>/],
        ["storage.endpoint", "https://oss-cn-hangzhou-internal.aliyuncs.com/bucket", /DIFY_OSS_ENDPOINT/],
        ["pluginDaemonUrl", "http://plugin-daemon.dify.internal:5003", /DIFY_PLUGIN_DAEMON_URL\) is .*allowed: http:\/\/<host>:5002/],
        ["pluginDaemonUrl", "http://plugin-daemon.dify.internal:5002/", /DIFY_PLUGIN_DAEMON_URL/],
        ["database.host", "pgm-x.pg.rds.aliyuncs.com\n", /DIFY_DB_HOST\) contains a line break or another control character/],
    ];
    it.each(BAD)("refuses %s = %j, naming the setting", (setting, value, message) => {
        expect(() => renderBootstrapConfig(haSettings("app", withValue(setting, value)))).toThrow(message);
    });

    const BAD_SECRETS: Array<[string, string, string]> = [
        ["database.password", "DIFY_DB_PASSWORD", "short"],
        ["database.password", "DIFY_DB_PASSWORD", "Pass word with spaces 123"],
        ["redis.password", "DIFY_REDIS_PASSWORD", "RedisPass@word:1234"],
        ["storage.accessKeyId", "DIFY_OSS_ACCESS_KEY_ID", "LTAI5t-with-dashes"],
        ["storage.accessKeySecret", "DIFY_OSS_ACCESS_KEY_SECRET", "Secret$WithDollar12"],
        ["secrets.secretKey", "DIFY_SECRET_KEY", "too-short-key"],
        ["secrets.pluginDaemonKey", "DIFY_PLUGIN_DAEMON_KEY", "Has'AQuote0123456789"],
        ["secrets.pluginInnerApiKey", "DIFY_PLUGIN_INNER_API_KEY", "Line\rBreak0123456789ab"],
    ];
    it.each(BAD_SECRETS)("refuses a bad %s without showing it", (setting, key, value) => {
        let message = "";
        try {
            renderBootstrapConfig(haSettings("singleton", withValue(setting, value)));
        } catch (err) {
            message = (err as Error).message;
        }
        expect(message).toMatch(new RegExp(`^externalServices\\.${setting.replace(".", "\\.")} \\(${key}\\) `));
        expect(message).not.toContain(value);
    });

    it.each(ROLES)("writes the %s role, its services and every external value, one shell-quoted line each", (role) => {
        const config = renderBootstrapConfig(haSettings(role));
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ha-settings-")), "bootstrap.env");
        fs.writeFileSync(file, config);
        const printed = runTool("bash", [
            "--noprofile",
            "--norc",
            "-c",
            '. "$0"; printf "%s\\n" "$DIFY_ROLE" "$DIFY_SERVICES" "$DIFY_DATA_DISK_SERIAL" "$DIFY_CERTBOT_IMAGE" "$DIFY_DB_HOST" "$DIFY_DB_PORT" "$DIFY_SECRET_KEY" "$DIFY_PLUGIN_DAEMON_URL"',
            file,
        ]);
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
        expect(printed.stdout).toBe(
            [role, HA_ROLE_SERVICES[role].join(" "), "", "", HA_EXTERNAL_SERVICES.database.host, "5432", HA_EXTERNAL_SERVICES.secrets.secretKey, HA_EXTERNAL_SERVICES.pluginDaemonUrl, ""].join("\n"),
        );
        expect(config.trimEnd().split("\n").pop()).toBe("DIFY_SETTINGS_DIGEST=''");
    });
});

describe.each(ROLES)("the %s role's user data", (role) => {
    let dir: string;
    let userData: string;
    let cloudConfig: CloudConfig;

    beforeAll(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), `userdata-${role}-`));
        userData = renderUserData(haSettings(role));
        fs.writeFileSync(path.join(dir, "user-data.yaml"), userData);
        cloudConfig = yaml.load(userData) as CloudConfig;
    });

    it("holds the secrets only in the user data: not in the settings for Cloud Assistant, nor in the script", () => {
        const application = renderBootstrapApplication(haSettings(role));
        const settingsFile = fileContent(cloudConfig, BOOTSTRAP_CONFIG_PATH);
        for (const secret of haSecretValues()) {
            expect(settingsFile).toContain(`'${secret}'`);
            expect(application.config).not.toContain(secret);
            expect(fileContent(cloudConfig, BOOTSTRAP_SCRIPT_PATH)).not.toContain(secret);
        }
        for (const key of HA_SECRET_SETTINGS) {
            expect(settingsFile).toContain(`\n${key}=`);
            expect(application.config).not.toContain(`${key}=`);
        }
        // The rest is there, for a reader of the configuration (and the INIT_PASSWORD left out, as for single).
        expect(application.config).toContain(`DIFY_ROLE='${role}'\nDIFY_SERVICES='${HA_ROLE_SERVICES[role].join(" ")}'\nDIFY_DB_HOST='${HA_EXTERNAL_SERVICES.database.host}'\n`);
        expect(application.config).not.toContain("DIFY_INIT_PASSWORD");
        expect(application.config).toContain(`DIFY_SETTINGS_DIGEST='${application.settingsDigest}'`);
    });

    it("changes its settings digest when a secret or the role changes (a rotated key reaches the nodes)", () => {
        const digest = renderBootstrapApplication(haSettings(role)).settingsDigest;
        expect(renderBootstrapApplication(haSettings(role, withValue("redis.password", "Rotated0Redis1Password2"))).settingsDigest).not.toBe(digest);
        expect(renderBootstrapApplication(haSettings(role === "app" ? "singleton" : "app")).settingsDigest).not.toBe(digest);
        expect(renderBootstrapApplication(haSettings(role)).settingsDigest).toBe(digest);
    });

    it("ships bootstrap.sh's functions as they are, with ha-node.sh before the dispatch, so the overlay's functions win", () => {
        const shipped = fileContent(cloudConfig, BOOTSTRAP_SCRIPT_PATH);
        const composed = bootstrapScriptFor(role);
        expect(shipped).toBe(compactScript(composed).trimEnd() + "\n");
        const source = readBootstrapScript();
        const overlay = readHaOverlay();
        const dispatch = source.slice(source.lastIndexOf('if [ "${DIFY_BOOTSTRAP_SOURCE_ONLY:-0}" != 1 ]; then'));
        expect(composed.endsWith(`${overlay.split("\n").slice(2).join("\n").trimEnd()}\n\n${dispatch}`)).toBe(true);
        // Every function of bootstrap.sh byte for byte, but those the ha roles leave out (HA_DROPPED_FUNCTIONS).
        const functions = [...source.matchAll(/^(\w+)\(\) \{\n[\s\S]*?^\}\n/gm)];
        expect(functions.length).toBeGreaterThan(40);
        for (const [definition, name] of functions) {
            expect(composed.includes(definition), name).toBe(!HA_DROPPED_FUNCTIONS.includes(name));
        }
        // A left-out function is defined anew by the overlay, or only named where an ha node never gets: behind
        // https_enabled (false here) and in the dispatch for the renewal timer, which only single installs.
        const named = HA_DROPPED_FUNCTIONS.filter((name) => !new RegExp(`^${name}\\(\\) \\{`, "m").test(overlay)).flatMap((name) =>
            composed.split("\n").filter((line) => !line.trim().startsWith("#") && new RegExp(`\\b${name}\\b`).test(line)).map((line) => `${name}: ${line.trim()}`),
        );
        expect(named).toEqual(["certificate_present: if certificate_present; then", 'renew_certificate: renew-certificate) renew_certificate 2>&1 | tee -a "$LOG_FILE" ;;']);
        expect(() => bootstrapScriptFor(role, source.replace("\nmount_data_disk() {", "\nmount_disk() {"))).toThrow(/no function mount_data_disk\(\)/);
        // Loaded as the instance loads it: the overlay's main, prepare_dify and https_enabled are the ones defined.
        const workDir = fs.mkdtempSync(path.join(dir, "functions-"));
        const result = runBootstrapFunctions(
            'declare -f main | grep -c DIFY_ROLE; declare -f prepare_dify | grep -c write_ha_secrets; https_enabled && echo https || echo no-https',
            { workDir, script: shipped },
        );
        expect(result.stderr).toBe("");
        expect(result.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^[1-9]/), "1", "no-https"]);
    });

    it("passes shellcheck -S warning and bash -n", () => {
        const script = path.join(dir, "bootstrap.sh");
        fs.writeFileSync(script, fileContent(cloudConfig, BOOTSTRAP_SCRIPT_PATH));
        const check = runTool("shellcheck", ["-S", "warning", "-s", "bash", script]);
        expect(check.stdout + check.stderr).toBe("");
        expect(check.status).toBe(0);
        expect(runTool("bash", ["-n", script]).status).toBe(0);
        // The overlay the repo keeps passes alone too.
        const overlay = runTool("shellcheck", ["-S", "warning", path.resolve(__dirname, "../../components/bootstrap/ha-node.sh")]);
        expect(overlay.stdout + overlay.stderr).toBe("");
    });

    it("passes cloud-init's own schema validation, and cloud-init's write_files writes what we rendered", () => {
        const schema = runTool("cloud-init", ["schema", "--config-file", path.join(dir, "user-data.yaml")]);
        expect(schema.stderr).toBe("");
        expect(schema.stdout).toContain("Valid cloud-config");
        expect(schema.status).toBe(0);
        const root = fs.mkdtempSync(path.join(dir, "instance-"));
        const written = writeFilesWithCloudInit(path.join(dir, "user-data.yaml"), root);
        expect(written.stderr).toBe("");
        expect(written.status).toBe(0);
        expect(fs.readFileSync(path.join(root, BOOTSTRAP_SCRIPT_PATH), "utf8")).toBe(compactScript(bootstrapScriptFor(role)).trimEnd() + "\n");
        const settings = path.join(root, BOOTSTRAP_CONFIG_PATH);
        expect(fs.readFileSync(settings, "utf8")).toBe(renderBootstrapConfig({ ...haSettings(role), settingsDigest: renderBootstrapApplication(haSettings(role)).settingsDigest }));
        expect(fs.statSync(settings).mode & 0o777).toBe(0o600);
        expect(cloudConfig.runcmd).toEqual([["bash", BOOTSTRAP_SCRIPT_PATH]]);
    });

    it("stays under 16 KB with long values everywhere", () => {
        const long: ExternalServices = {
            database: {
                host: `pgm-${"a".repeat(40)}.pg.rds.aliyuncs.com`,
                port: 65535,
                username: `u${"x".repeat(62)}`,
                password: "P".repeat(128),
                database: `d${"b".repeat(62)}`,
                pluginDatabase: `p${"l".repeat(62)}`,
            },
            redis: { host: `r-${"b".repeat(40)}.redis.rds.aliyuncs.com`, port: 65535, password: "R".repeat(128) },
            storage: {
                bucket: `b${"u".repeat(61)}c`,
                region: "ap-southeast-1",
                endpoint: "https://oss-ap-southeast-1-internal.aliyuncs.com",
                accessKeyId: "L".repeat(128),
                accessKeySecret: "S".repeat(256),
            },
            secrets: { secretKey: "K".repeat(256), pluginDaemonKey: "D".repeat(256), pluginInnerApiKey: "I".repeat(256) },
            pluginDaemonUrl: `http://plugin-daemon.${"z".repeat(60)}.internal:5002`,
        };
        const domain = "dify-production.platform-team.example-corporation.com.cn";
        const rendered = renderUserData({
            ...haSettings(role, long),
            publicUrl: `https://${domain}`,
            domain,
            registryMirrors: ["https://abcdefgh12345678.mirror.aliyuncs.com", "https://mirrors-ssl.aliyuncs.com/"],
            pipMirrorUrl: "https://mirrors.aliyun.com/pypi/simple/",
            imageRegistry: "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
        });
        expect(Buffer.byteLength(rendered)).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    });
});

describe.each(ROLES)("the %s role's bootstrap, start to finish", (role) => {
    /** The release folder (holding docker/) the stand-in git "clones": the pinned files, so the verification passes. */
    const fixture = path.dirname(difyReleaseDir("1.14.1", "docker"));
    const FAKE_GIT = `
case "$1" in
  clone)
    for target in "$@"; do :; done
    mkdir -p "$target/docker" && cp -r "$FIXTURE/docker/." "$target/docker/" && chmod -R u+w "$target" ;;
esac`;
    // Docker is there (a recent compose); `compose logs api` shows the migration the singleton's api ran; the rest is
    // the compose harness's stand-in, `compose config` being the real Compose.
    const DOCKER = `
case "\${1:-} \${2:-}" in
  "compose version") echo 2.30.0; exit 0 ;;
  "compose logs") echo "api-1  | Database migration successful!"; exit 0 ;;
esac
${DOCKER_STUB}`;

    it("installs Docker's settings, fetches and verifies the release, starts the role's services and waits for its console", () => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `ha-main-${role}-`));
        try {
            const settings = haSettings(role);
            const { settingsDigest } = renderBootstrapApplication(settings);
            fs.writeFileSync(path.join(workDir, "bootstrap.env"), renderBootstrapConfig({ ...settings, settingsDigest }));
            const calls = path.join(workDir, "compose-calls");
            fs.mkdirSync(calls);
            const record = (name: string) => `printf '%s\\n' "$*" >>"${path.join(workDir, name)}.log"`;
            const result = runBootstrapFunctions("main", {
                workDir,
                script: compactScript(bootstrapScriptFor(role)),
                env: { FIXTURE: fixture, COMPOSE_CALLS: calls, COMPOSE_REAL_CLI: composeCli() },
                stubs: {
                    docker: DOCKER,
                    git: FAKE_GIT,
                    chown: record("chown"),
                    systemctl: `${record("systemctl")}; exit 0`,
                    curl: `${record("curl")}; echo '{"step": "not_started"}'`,
                },
            });
            const log = fs.readFileSync(path.join(workDir, "bootstrap.log"), "utf8");
            expect(result.status, log).toBe(0);
            const status = fs.readFileSync(path.join(workDir, "state", "status"), "utf8");
            expect(status).toContain("state=done\nstep=Dify is up\n");
            expect(status).toContain(`detail=Dify 1.14.1 (${role} node) at https://${DOMAIN}\n`);
            expect(status).toContain(`settings=${settingsDigest}\n`);
            expect(log).toContain("verified Dify 1.14.1 from GitHub");
            // No data disk, no certificate: the init-password timer only.
            expect(fs.readdirSync(path.join(workDir, "systemd")).sort()).toEqual(["dify-init-password.service", "dify-init-password.timer"]);
            expect(fs.readFileSync(path.join(workDir, "systemctl.log"), "utf8")).toContain("enable --now dify-init-password.timer\n");
            const ups = readComposeCalls(calls).filter((call) => call.args[0] === "up");
            expect(ups.map((call) => call.args)).toEqual([["up", "-d", ...HA_ROLE_SERVICES[role]]]);
            // pgvector: created once, by the singleton through its api container (psycopg2, the DB_* settings).
            const execs = readComposeCalls(calls).filter((call) => call.args[0] === "exec");
            if (role === "singleton") {
                expect(execs).toHaveLength(1);
                expect(execs[0].args.slice(0, 4)).toEqual(["exec", "-T", "api", "python"]);
                expect(execs[0].args.join(" ")).toContain('execute("CREATE EXTENSION IF NOT EXISTS vector")');
            } else {
                expect(execs).toEqual([]);
            }
            expect(fs.existsSync(path.join(workDir, "certbot-run"))).toBe(false);
            // The console: the singleton's own api on loopback (no nginx there), an app node's nginx on port 80.
            const probed = fs.readFileSync(path.join(workDir, "curl.log"), "utf8").trim().split("\n");
            expect(new Set(probed)).toEqual(new Set([`-fsS --max-time 10 http://${role === "singleton" ? "127.0.0.1:5001" : "127.0.0.1"}/console/api/setup`]));
            expect(log).toContain(role === "singleton" ? "step: migrating the database" : "step: waiting for the console");
            if (role === "app") {
                expect(log).not.toContain("migrating the database");
            }
            // What the node logs holds none of the external secrets.
            for (const secret of haSecretValues()) {
                expect(log).not.toContain(secret);
                expect(result.stdout + result.stderr).not.toContain(secret);
            }
        } finally {
            fs.rmSync(workDir, { recursive: true, force: true });
        }
    });
});

describe("an ha node whose release runs other services than its role", () => {
    it("stops before starting anything, naming what Compose would run and what the role runs", () => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ha-services-"));
        try {
            fs.cpSync(difyReleaseDir("1.14.1", "docker"), path.join(workDir, "opt-dify", "docker"), { recursive: true });
            // A role naming a service this release does not have (as a renamed one would look).
            const config = renderBootstrapConfig(haSettings("app")).replace(/^DIFY_SERVICES=.*$/m, "DIFY_SERVICES='api worker web sandbox ssrf_proxy nginx api_v2'");
            fs.writeFileSync(path.join(workDir, "bootstrap.env"), config);
            const calls = path.join(workDir, "compose-calls");
            fs.mkdirSync(calls);
            const result = runBootstrapFunctions('. "$CONFIG_FILE"; prepare_dify', {
                workDir,
                script: compactScript(bootstrapScriptFor("app")),
                env: { COMPOSE_CALLS: calls, COMPOSE_REAL_CLI: composeCli() },
                stubs: { docker: DOCKER_STUB, chown: "true" },
            });
            expect(result.status).not.toBe(0);
            expect(fs.readFileSync(path.join(workDir, "state", "failed"), "utf8")).toContain(
                'the app node\'s compose project runs "api nginx sandbox ssrf_proxy web worker", not "api api_v2 nginx sandbox ssrf_proxy web worker" (DIFY_SERVICES)',
            );
            expect(readComposeCalls(calls)).toEqual([]);
        } finally {
            fs.rmSync(workDir, { recursive: true, force: true });
        }
    });
});

describe("an ha node's secrets stay out of the status the readiness reads", () => {
    it.each(ROLES)("%s: the status reader redacts every external secret from the status and the log", (role) => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `ha-redact-${role}-`));
        try {
            fs.writeFileSync(path.join(workDir, "bootstrap.env"), renderBootstrapConfig(haSettings(role)));
            const secrets = haSecretValues();
            // A failure whose reason and log carry every secret (as a compose error could quote a URL with one).
            const snippet = `. "$CONFIG_FILE"; write_ha_secrets "$DATA_MOUNT/dify/secrets.env"
                log "compose said: ${secrets.join(" and ")}" >>"$LOG_FILE"
                set_status failed "starting Dify" "redis://:$DIFY_REDIS_PASSWORD@$DIFY_REDIS_HOST:6379/1 $DIFY_SECRET_KEY"`;
            const wrote = runBootstrapFunctions(snippet, { workDir, script: compactScript(bootstrapScriptFor(role)) });
            expect(wrote.stderr).toBe("");
            expect(wrote.status).toBe(0);
            expect(fs.statSync(path.join(workDir, "data", "dify", "secrets.env")).mode & 0o777).toBe(0o600);
            // The reader as Cloud Assistant runs it, with the same path overrides the bootstrap ran with (on an
            // instance neither has any: both read $DATA_MOUNT/dify/secrets.env under /data).
            const read = runTool("bash", ["-c", BOOTSTRAP_STATUS_SCRIPT], {
                env: {
                    PATH: process.env.PATH,
                    DIFY_BOOTSTRAP_STATE_DIR: path.join(workDir, "state"),
                    DIFY_BOOTSTRAP_LOG: path.join(workDir, "bootstrap.log"),
                    DIFY_BOOTSTRAP_CONFIG: path.join(workDir, "bootstrap.env"),
                    DIFY_BOOTSTRAP_DATA_MOUNT: path.join(workDir, "data"),
                },
            });
            expect(read.status, read.stderr).toBe(0);
            expect(read.stdout).toContain("state=failed");
            expect(read.stdout).toContain("[redacted]");
            expect(read.stdout).toContain(HA_EXTERNAL_SERVICES.redis.host);
            for (const secret of secrets) {
                expect(read.stdout).not.toContain(secret);
            }
        } finally {
            fs.rmSync(workDir, { recursive: true, force: true });
        }
    });
});

describe("DifyBootstrap with an ha role", () => {
    const base = { difyVersion: "1.14.1", publicAddress: DOMAIN, registryMirrors: [] };
    beforeAll(() => {
        installMocks();
    });

    it("serves https://<domain>, keeps the user data secret and the shipped settings free of the external secrets", async () => {
        const node = new DifyBootstrap("ha-app", { ...base, role: "app", externalServices: pulumi.secret(HA_EXTERNAL_SERVICES), domain: DOMAIN });
        expect(await valueOf(node.publicUrl)).toBe(`https://${DOMAIN}`);
        expect(await pulumi.isSecret(node.userData)).toBe(true);
        const userData = await valueOf(node.userData);
        expect(userData).toContain("DIFY_ROLE='app'");
        expect(userData).toContain(`DIFY_DB_PASSWORD='${HA_EXTERNAL_SERVICES.database.password}'`);
        const config = await valueOf(node.bootstrapConfig);
        expect(await pulumi.isSecret(node.bootstrapConfig)).toBe(false);
        for (const secret of haSecretValues()) {
            expect(config).not.toContain(secret);
        }
        expect(await valueOf(node.settingsDigest)).toBe(renderBootstrapApplication({ ...haSettings("app"), registryMirrors: [] }).settingsDigest);
        expect(await pulumi.isSecret(node.settingsDigest)).toBe(true);
    });

    it("refuses what a role cannot use, naming the argument", () => {
        const services = HA_EXTERNAL_SERVICES;
        expect(() => new DifyBootstrap("a", { ...base, role: "app" })).toThrow('DifyBootstrap: externalServices is required for the role "app"');
        expect(() => new DifyBootstrap("b", { ...base, role: "singleton", externalServices: services, dataDiskId: "d-bp1abc" })).toThrow(
            'DifyBootstrap: dataDiskId is set for the role "singleton"',
        );
        expect(() => new DifyBootstrap("c", { ...base, role: "app", externalServices: services, plainHttp: true })).toThrow('plainHttp is set for the role "app"');
        expect(() => new DifyBootstrap("d", { ...base, role: "app", externalServices: services, certEmail: "ops@example.com" })).toThrow('certEmail is set for the role "app"');
        expect(() => new DifyBootstrap("e", { ...base, publicAddress: "198.51.100.23", externalServices: services, dataDiskId: "d-bp1abc" })).toThrow(
            "DifyBootstrap: externalServices is for the roles",
        );
        expect(() => new DifyBootstrap("f", { ...base, publicAddress: "198.51.100.23" })).toThrow('DifyBootstrap: dataDiskId is required for the role "single"');
    });
});
