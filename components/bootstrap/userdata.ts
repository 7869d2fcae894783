import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { gzipSync } from "fflate";
import { CERTBOT_IMAGE } from "../../rules/certbot";
import { DifyNodeRole, ExternalServices, HA_PLUGIN_DAEMON_PORT, HA_ROLE_SERVICES } from "./external-services";

/** Everything the on-instance bootstrap needs to know. No API key or admin password belongs here. */
export interface BootstrapSettings {
    /** Dify release tag, e.g. "1.14.1". */
    difyVersion: string;
    /**
     * The public base URL Dify's URL settings get: https://<domain>, https://<EIP>, or http://<EIP> (plainHttp). An
     * https URL makes the bootstrap get a Let's Encrypt certificate (for the domain, else for the EIP) and renew it.
     */
    publicUrl: string;
    /** One-time INIT_PASSWORD that gates Dify's first-admin setup (at most 30 characters). */
    initPassword: string;
    /**
     * "single" (default): all of Dify on one instance with its data disk, rendered exactly as before roles existed.
     * "app" or "singleton": a node of the `ha` topology (HA_ROLE_SERVICES), which ships bootstrap.sh with
     * ha-node.sh and gets `externalServices`; its publicUrl is https://<domain> (the load balancer's TLS).
     */
    role?: DifyNodeRole;
    /** The data disk's id ("d-…"); the bootstrap finds the disk by it. Required for "single", refused otherwise. */
    dataDiskId?: string;
    /** The managed services and shared keys of an `ha` node: required for "app" and "singleton", refused for "single". */
    externalServices?: ExternalServices;
    domain?: string;
    certEmail?: string;
    registryMirrors: string[];
    pipMirrorUrl?: string;
    /**
     * A registry holding copies of Dify's Docker Hub images under the same names (an ACR instance's VPC endpoint,
     * e.g. "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com"): the bootstrap pulls them from there. Unset: Docker Hub.
     */
    imageRegistry?: string;
    /**
     * The content digest of the release's docker/ folder (rules/dify-releases.ts): the bootstrap verifies what it
     * fetched against it and refuses a mismatch. Unset: the release is not verified (allowUnpinnedDifyVersion).
     */
    releaseDigest?: string;
    /** The files of docker/ the digest covers (relative to docker/); unset: every file. Needs `releaseDigest`. */
    releaseFiles?: readonly string[];
    /** The commit the release tag points to, when pinned: the bootstrap checks a clone's HEAD against it. */
    releaseCommit?: string;
    /**
     * DIFY_SETTINGS_DIGEST, which the bootstrap writes into its status so that Pulumi knows which settings a run
     * applied: renderBootstrapApplication computes it (renderUserData fills it in itself). Unset: an empty line.
     */
    settingsDigest?: string;
}

/** Where cloud-init writes the two files, and what it runs. */
export const BOOTSTRAP_CONFIG_PATH = "/etc/dify-bootstrap/bootstrap.env";
export const BOOTSTRAP_SCRIPT_PATH = "/usr/local/sbin/dify-bootstrap.sh";
/** Older Alibaba Cloud documents cap user data at 16 KB before base64; stay under the stricter limit. */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** The bootstrap shell script shipped next to this module. */
export function readBootstrapScript(): string {
    return fs.readFileSync(path.join(__dirname, "bootstrap.sh"), "utf8");
}

/** The `ha` roles' overlay (ha-node.sh), shipped next to this module. */
export function readHaOverlay(): string {
    return fs.readFileSync(path.join(__dirname, "ha-node.sh"), "utf8");
}

/** The first line of bootstrap.sh's dispatch block, which the `ha` overlay goes before. */
const DISPATCH_LINE = 'if [ "${DIFY_BOOTSTRAP_SOURCE_ONLY:-0}" != 1 ]; then';

/**
 * bootstrap.sh's functions an `ha` node never runs, left out of its script for the 16 KB cap (the overlay and the
 * external services' settings would not fit beside them): those ha-node.sh defines anew (a later definition wins, so
 * bootstrap.sh's would be dead code), and those of the data disk, the certificate and `single`'s secrets and compose
 * override, which only bootstrap.sh's own `main`, `prepare_dify` and `start_dify` call. Two names stay in the script
 * without their function: certificate_present (configure_dify_env, behind `https_enabled`, false on an ha node) and
 * renew_certificate (the dispatch's `renew-certificate`, which only the renewal timer single installs runs).
 */
export const HA_DROPPED_FUNCTIONS: readonly string[] = [
    // Defined anew by ha-node.sh.
    "https_enabled",
    "console_setup",
    "prepare_dify",
    "start_dify",
    "main",
    // The data disk.
    "find_data_disk",
    "data_disk_present",
    "disk_state",
    "mount_data_disk",
    "install_units",
    "link_volumes_to_data_disk",
    // The certificate (the load balancer terminates TLS).
    "certificate_identifier",
    "is_ip_address",
    "certificate_present",
    "certbot_issue_args",
    "certbot_renew_args",
    "run_certbot",
    "request_certificate",
    "enable_https",
    "renew_certificate",
    // single's own secrets and compose override (write_ha_secrets, write_ha_compose_override).
    "load_or_create_secrets",
    "write_compose_override",
];

/** bootstrap.sh's settings only the left-out functions read (one line each, `NAME=…`). */
export const HA_DROPPED_VARIABLES: readonly string[] = ["DISK_BY_ID_DIR", "ACME_DIRECTORY", "CERTBOT_ARGS"];

/** The script without the one line that sets `name`. */
function withoutVariable(script: string, name: string): string {
    const lines = script.split("\n");
    const at = lines.filter((line) => line.startsWith(`${name}=`));
    if (at.length !== 1) {
        throw new Error(`the bootstrap script sets ${name} on ${at.length} lines, not one, for the ha roles to leave out (HA_DROPPED_VARIABLES)`);
    }
    return lines.filter((line) => !line.startsWith(`${name}=`)).join("\n");
}

/**
 * The script without the definition of `name`: from its `name() {` line to the first line that is only `}`, outside
 * here-documents (write_compose_override's nginx server has a `}` of its own at the start of a line).
 */
function withoutFunction(script: string, name: string): string {
    const lines = script.split("\n");
    const start = lines.indexOf(`${name}() {`);
    let hereDocEnd: string | undefined;
    for (let i = start + 1; start >= 0 && i < lines.length; i++) {
        if (hereDocEnd !== undefined) {
            hereDocEnd = lines[i] === hereDocEnd ? undefined : hereDocEnd;
        } else if (lines[i] === "}") {
            return [...lines.slice(0, start), ...lines.slice(i + 1)].join("\n");
        } else {
            hereDocEnd = /<<-?\s*(['"]?)([A-Za-z_]\w*)\1\s*$/.exec(lines[i])?.[2];
        }
    }
    throw new Error(`the bootstrap script has no function ${name}() for the ha roles to leave out (HA_DROPPED_FUNCTIONS)`);
}

/**
 * The script a node of `role` runs: bootstrap.sh itself for "single"; for "app" and "singleton", bootstrap.sh
 * without HA_DROPPED_FUNCTIONS and HA_DROPPED_VARIABLES, with ha-node.sh inserted before its final dispatch block, so
 * the dispatch runs the overlay's `main` and the overlay's functions are the ones defined. The overlay's own header
 * (its shebang and `# shellcheck shell=` line, which only serve linting it alone) stays out.
 */
export function bootstrapScriptFor(role: DifyNodeRole = "single", script: string = readBootstrapScript(), overlay: string = readHaOverlay()): string {
    if (role === "single") {
        return script;
    }
    const lines = HA_DROPPED_VARIABLES.reduce(withoutVariable, HA_DROPPED_FUNCTIONS.reduce(withoutFunction, script)).split("\n");
    const at = lines.lastIndexOf(DISPATCH_LINE);
    if (at < 0) {
        throw new Error(`the bootstrap script has no dispatch block ("${DISPATCH_LINE}") to put the ha overlay before`);
    }
    const body = overlay.replace(/^(?:#!.*\n|# shellcheck shell=.*\n)+/, "").trimEnd();
    return [...lines.slice(0, at), body, "", ...lines.slice(at)].join("\n");
}

/** Quotes a value for a POSIX shell: single quotes, with embedded single quotes closed and escaped. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Alibaba exposes a disk to the guest with its id minus the "d-" prefix as the serial number. */
export function dataDiskSerial(diskId: string): string {
    return diskId.replace(/^d-/, "");
}

/** The role a settings object is for, checked against what it carries (a data disk for single, services for ha). */
function nodeRole(settings: BootstrapSettings): DifyNodeRole {
    const role = settings.role ?? "single";
    if (role !== "single" && role !== "app" && role !== "singleton") {
        throw new Error(`role is ${JSON.stringify(role)}; allowed: "single", "app" or "singleton"`);
    }
    if (role === "single") {
        if (settings.externalServices !== undefined) {
            throw new Error('externalServices is set for the role "single", which runs its own PostgreSQL, Redis and storage; it is for "app" and "singleton" only');
        }
        if (settings.dataDiskId === undefined) {
            throw new Error('dataDiskId is required for the role "single" (its data disk keeps Dify\'s volumes and secrets)');
        }
        return role;
    }
    if (settings.externalServices === undefined) {
        throw new Error(`externalServices is required for the role "${role}" (its PostgreSQL, Redis, OSS bucket and shared keys)`);
    }
    if (settings.dataDiskId !== undefined) {
        throw new Error(`dataDiskId is set for the role "${role}", which has no data disk (its state is in RDS, Redis and OSS)`);
    }
    return role;
}

/** The settings of an `ha` node that hold a secret: only in the user data, never in renderBootstrapApplication's `config`. */
export const HA_SECRET_SETTINGS: readonly string[] = [
    "DIFY_DB_PASSWORD",
    "DIFY_REDIS_PASSWORD",
    "DIFY_OSS_ACCESS_KEY_ID",
    "DIFY_OSS_ACCESS_KEY_SECRET",
    "DIFY_SECRET_KEY",
    "DIFY_PLUGIN_DAEMON_KEY",
    "DIFY_PLUGIN_INNER_API_KEY",
];

const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/** A DNS name or an IPv4 address (each label 1..63 characters, 253 in all). */
const HOST = `(?=[^:/]{1,253}(?:[:/]|$))${LABEL}(?:\\.${LABEL})*`;

/** How each `ha` value must look: the pattern, and what the error says is allowed. */
const SHAPES = {
    host: { pattern: new RegExp(`^${HOST}$`), allowed: "a host name or IPv4 address" },
    name: { pattern: /^[A-Za-z][A-Za-z0-9_]{0,62}$/, allowed: 'a letter, then letters, digits or "_" (at most 63)' },
    password: { pattern: /^[A-Za-z0-9_.~-]{8,128}$/, allowed: '8 to 128 letters, digits, "-", "_", ".", "~"' },
    key: { pattern: /^[A-Za-z0-9+/=_.~-]{16,256}$/, allowed: '16 to 256 letters, digits, "+", "/", "=", "-", "_", ".", "~"' },
    bucket: { pattern: /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, allowed: 'an OSS bucket name (3 to 63 lowercase letters, digits, "-")' },
    region: { pattern: /^[a-z]{2,}(?:-[a-z0-9]+)+$/, allowed: "a region id such as cn-hangzhou" },
    endpoint: { pattern: new RegExp(`^https?://${HOST}(?::\\d{1,5})?$`), allowed: "http(s)://<host>, no path, e.g. https://oss-cn-hangzhou-internal.aliyuncs.com" },
    accessKeyId: { pattern: /^[A-Za-z0-9]{8,128}$/, allowed: "8 to 128 letters and digits" },
    accessKeySecret: { pattern: /^[A-Za-z0-9+/=_.~-]{8,256}$/, allowed: '8 to 256 letters, digits, "+", "/", "=", "-", "_", ".", "~"' },
    pluginDaemonUrl: {
        pattern: new RegExp(`^http://${HOST}:${HA_PLUGIN_DAEMON_PORT}$`),
        allowed: `http://<host>:${HA_PLUGIN_DAEMON_PORT} (the port the singleton publishes its plugin daemon on), no path`,
    },
} as const;

/**
 * Checks one `ha` value: a secret's error names the setting but never shows the value. A value that is not a
 * string (a port given as a string, say) is refused like a wrong shape.
 */
function checked(setting: string, key: string, value: unknown, shape: keyof typeof SHAPES): string {
    if (typeof value === "string" && /[\u0000-\u001f\u007f]/.test(value)) {
        throw new Error(`externalServices.${setting} (${key}) contains a line break or another control character; the bootstrap settings take one line per value`);
    }
    if (typeof value !== "string" || !SHAPES[shape].pattern.test(value)) {
        const shown = HA_SECRET_SETTINGS.includes(key) ? "is not of the allowed shape" : `is ${JSON.stringify(value)}`;
        throw new Error(`externalServices.${setting} (${key}) ${shown}; allowed: ${SHAPES[shape].allowed}`);
    }
    return value;
}

function checkedPort(setting: string, key: string, value: unknown): string {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
        throw new Error(`externalServices.${setting} (${key}) is ${JSON.stringify(value)}; allowed: an integer port, 1 to 65535`);
    }
    return String(value);
}

/**
 * An `ha` node's settings: its role, the services it runs (HA_ROLE_SERVICES, space-separated) and every value of
 * `externalServices`, checked. The public URL must be https://<domain> (the load balancer's TLS).
 */
function haSettings(role: Exclude<DifyNodeRole, "single">, settings: BootstrapSettings): Array<[string, string]> {
    const services = settings.externalServices!;
    const { database, redis, storage, secrets } = services;
    const domain = /^https:\/\/([^/:]+)$/.exec(settings.publicUrl)?.[1];
    if (domain === undefined || !SHAPES.host.pattern.test(domain) || /^[0-9.]+$/.test(domain)) {
        throw new Error(`DIFY_PUBLIC_URL is ${JSON.stringify(settings.publicUrl)}; an ${role} node needs https://<domain> (the load balancer terminates TLS for the domain)`);
    }
    if (settings.domain !== undefined && settings.domain !== domain) {
        throw new Error(`DIFY_DOMAIN is ${JSON.stringify(settings.domain)}, not the public URL's domain ${JSON.stringify(domain)}`);
    }
    if (settings.certEmail !== undefined) {
        throw new Error(`DIFY_CERT_EMAIL is set for an ${role} node, which gets no certificate (the load balancer terminates TLS)`);
    }
    return [
        ["DIFY_ROLE", role],
        ["DIFY_SERVICES", HA_ROLE_SERVICES[role].join(" ")],
        ["DIFY_DB_HOST", checked("database.host", "DIFY_DB_HOST", database?.host, "host")],
        ["DIFY_DB_PORT", checkedPort("database.port", "DIFY_DB_PORT", database?.port)],
        ["DIFY_DB_USERNAME", checked("database.username", "DIFY_DB_USERNAME", database?.username, "name")],
        ["DIFY_DB_PASSWORD", checked("database.password", "DIFY_DB_PASSWORD", database?.password, "password")],
        ["DIFY_DB_DATABASE", checked("database.database", "DIFY_DB_DATABASE", database?.database, "name")],
        ["DIFY_DB_PLUGIN_DATABASE", checked("database.pluginDatabase", "DIFY_DB_PLUGIN_DATABASE", database?.pluginDatabase, "name")],
        ["DIFY_REDIS_HOST", checked("redis.host", "DIFY_REDIS_HOST", redis?.host, "host")],
        ["DIFY_REDIS_PORT", checkedPort("redis.port", "DIFY_REDIS_PORT", redis?.port)],
        ["DIFY_REDIS_PASSWORD", checked("redis.password", "DIFY_REDIS_PASSWORD", redis?.password, "password")],
        ["DIFY_OSS_BUCKET", checked("storage.bucket", "DIFY_OSS_BUCKET", storage?.bucket, "bucket")],
        ["DIFY_OSS_REGION", checked("storage.region", "DIFY_OSS_REGION", storage?.region, "region")],
        ["DIFY_OSS_ENDPOINT", checked("storage.endpoint", "DIFY_OSS_ENDPOINT", storage?.endpoint, "endpoint")],
        ["DIFY_OSS_ACCESS_KEY_ID", checked("storage.accessKeyId", "DIFY_OSS_ACCESS_KEY_ID", storage?.accessKeyId, "accessKeyId")],
        ["DIFY_OSS_ACCESS_KEY_SECRET", checked("storage.accessKeySecret", "DIFY_OSS_ACCESS_KEY_SECRET", storage?.accessKeySecret, "accessKeySecret")],
        ["DIFY_SECRET_KEY", checked("secrets.secretKey", "DIFY_SECRET_KEY", secrets?.secretKey, "key")],
        ["DIFY_PLUGIN_DAEMON_KEY", checked("secrets.pluginDaemonKey", "DIFY_PLUGIN_DAEMON_KEY", secrets?.pluginDaemonKey, "key")],
        ["DIFY_PLUGIN_INNER_API_KEY", checked("secrets.pluginInnerApiKey", "DIFY_PLUGIN_INNER_API_KEY", secrets?.pluginInnerApiKey, "key")],
        ["DIFY_PLUGIN_DAEMON_URL", checked("pluginDaemonUrl", "DIFY_PLUGIN_DAEMON_URL", services.pluginDaemonUrl, "pluginDaemonUrl")],
    ];
}

/** The sourced settings file, one shell-quoted assignment per line. */
export function renderBootstrapConfig(settings: BootstrapSettings): string {
    if (settings.initPassword.length > 30) {
        throw new Error("INIT_PASSWORD is longer than the 30 characters Dify accepts");
    }
    const role = nodeRole(settings);
    const ha = role !== "single";
    // `single` renders exactly the lines it always had (its user data and settings digest must not move); an `ha`
    // node has no data disk and no certbot, and gets its role and services before the digest line.
    const values: Array<[string, string]> = [
        ["DIFY_VERSION", settings.difyVersion],
        ["DIFY_PUBLIC_URL", settings.publicUrl],
        ["DIFY_INIT_PASSWORD", settings.initPassword],
        ["DIFY_DATA_DISK_SERIAL", ha ? "" : dataDiskSerial(settings.dataDiskId!)],
        ["DIFY_DOMAIN", settings.domain ?? ""],
        ["DIFY_CERT_EMAIL", settings.certEmail ?? ""],
        // The certbot the bootstrap runs for an https publicUrl (one pin for the instance and the tests). None on
        // an `ha` node (the load balancer terminates TLS), so a new certbot pin does not roll the ha nodes.
        ["DIFY_CERTBOT_IMAGE", ha ? "" : CERTBOT_IMAGE],
        ["DIFY_REGISTRY_MIRRORS", settings.registryMirrors.join(" ")],
        ["DIFY_PIP_MIRROR_URL", settings.pipMirrorUrl ?? ""],
        ["DIFY_IMAGE_REGISTRY", settings.imageRegistry ?? ""],
        ["DIFY_RELEASE_DIGEST", settings.releaseDigest ?? ""],
        // Space-separated: the bootstrap reads it with `read -a`.
        ["DIFY_RELEASE_FILES", (settings.releaseFiles ?? []).join(" ")],
        ["DIFY_RELEASE_COMMIT", settings.releaseCommit ?? ""],
        ...(ha ? haSettings(role, settings) : []),
        ["DIFY_SETTINGS_DIGEST", settings.settingsDigest ?? ""],
    ];
    if (settings.releaseDigest !== undefined && !/^[0-9a-f]{64}$/.test(settings.releaseDigest)) {
        throw new Error(`DIFY_RELEASE_DIGEST is ${JSON.stringify(settings.releaseDigest)}; allowed: a SHA-256 in 64 lowercase hex digits`);
    }
    if (settings.releaseCommit !== undefined && !/^[0-9a-f]{40}$/.test(settings.releaseCommit)) {
        throw new Error(`DIFY_RELEASE_COMMIT is ${JSON.stringify(settings.releaseCommit)}; allowed: a commit SHA in 40 lowercase hex digits`);
    }
    if (settings.releaseFiles !== undefined) {
        if (settings.releaseDigest === undefined) {
            throw new Error("DIFY_RELEASE_FILES is set without DIFY_RELEASE_DIGEST; the files only say what the digest covers");
        }
        const bad = settings.releaseFiles.find((file) => !/^[^\s/][^\s]*$/.test(file) || file.split("/").includes(".."));
        if (bad !== undefined || settings.releaseFiles.length === 0) {
            throw new Error(`DIFY_RELEASE_FILES contains ${JSON.stringify(bad ?? "nothing")}; allowed: one or more paths relative to docker/, without spaces or ".."`);
        }
    }
    // One line per value: a line break would survive the shell quoting but not the YAML block (a carriage return
    // becomes a newline there) nor the bootstrap's .env editing. The value is not shown: it may be a secret.
    for (const [key, value] of values) {
        if (/[\u0000-\u001f\u007f]/.test(value)) {
            throw new Error(`${key} contains a line break or another control character; the bootstrap settings take one line per value`);
        }
    }
    return values.map(([key, value]) => `${key}=${shellQuote(value)}\n`).join("");
}

/**
 * The script as shipped in user data, smaller for the 16 KB cap: blank lines and full-line comments dropped
 * (they explain the source; the shebang and shellcheck directives stay, the validators rely on them), and each
 * leading group of four spaces written as a tab. Here-document bodies (`<<WORD` up to the line `WORD`) stay byte
 * for byte, as their indentation is data (write_compose_override's YAML). A multi-line quoted string would lose
 * its indentation: keep data with meaningful leading spaces in here-documents.
 */
export function compactScript(script: string): string {
    const kept: string[] = [];
    let hereDocEnd: string | undefined;
    script.split("\n").forEach((line, index) => {
        if (hereDocEnd !== undefined) {
            kept.push(line);
            if (line === hereDocEnd) {
                hereDocEnd = undefined;
            }
            return;
        }
        if (line.trim() === "" || (index > 0 && /^\s*#/.test(line) && !/^\s*# shellcheck /.test(line))) {
            return;
        }
        hereDocEnd = /<<-?\s*(['"]?)([A-Za-z_]\w*)\1\s*$/.exec(line)?.[2];
        kept.push(line.replace(/^(?: {4})+/, (indent) => "\t".repeat(indent.length / 4)));
    });
    return kept.join("\n");
}

/**
 * The indentation of the settings file's lines: three spaces, the least YAML allows under `  content: |` (one more
 * than the list item's keys).
 */
const BLOCK_INDENT = "   ";

/** Indents text as the body of a YAML literal block scalar. */
function yamlBlock(text: string, indent: string): string {
    return text
        .split("\n")
        .map((line) => (line === "" ? "" : indent + line))
        .join("\n");
}

/**
 * The script for cloud-init's `encoding: gz+b64`: gzip, then base64. fflate, a pure-JS deflate, rather than Node's
 * zlib, whose output changes with the Node build (Chromium's zlib fork, zlib-ng) and the OS byte of the header: the
 * same script must give the same user data on every machine, or a teammate's preview would plan a new instance.
 * No name and mtime 0 in the header, so the bytes depend on the script alone.
 */
export function gzipBase64(text: string): string {
    return Buffer.from(gzipSync(Buffer.from(text, "utf8"), { level: 9, mtime: 0 })).toString("base64");
}

/** What DifyInstanceConfiguration applies to a running instance, and how it knows a run applied it. */
export interface BootstrapApplication {
    /**
     * SHA-256 (hex) over the settings file without its DIFY_INIT_PASSWORD and DIFY_SETTINGS_DIGEST lines, and the
     * shipped script's digest: a change of any setting or of the script changes it. The bootstrap writes it into
     * its status (`settings=`).
     */
    settingsDigest: string;
    /** SHA-256 (hex) of the script as shipped (compactScript's output; for an `ha` node, with ha-node.sh). */
    scriptDigest: string;
    /**
     * The settings file as the user data writes it, without the DIFY_INIT_PASSWORD line (and, for an `ha` node,
     * without the HA_SECRET_SETTINGS lines): no secret may go into a RunCommand, whose content Alibaba keeps in its
     * invocation history. The instance keeps its own lines.
     */
    config: string;
    /** The shipped script, gzip+base64 (`gzipBase64`), byte for byte the user data's. */
    script: string;
}

function sha256Hex(text: string): string {
    return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}

/** Drops the lines of a settings file that set KEY. */
function withoutSetting(config: string, key: string): string {
    return config
        .split("\n")
        .filter((line) => !line.startsWith(`${key}=`))
        .join("\n");
}

/**
 * The settings digest, the settings file without INIT_PASSWORD and the compressed script, from the same rendering as
 * the user data (the INIT_PASSWORD given does not enter any of them). DifyBootstrap and DifyInstanceConfiguration
 * both use it, so the digest the user data carries is the one Pulumi waits for. `script` is bootstrap.sh; an `ha`
 * role ships it with ha-node.sh (bootstrapScriptFor).
 */
export function renderBootstrapApplication(settings: BootstrapSettings, script: string = readBootstrapScript()): BootstrapApplication {
    const role = nodeRole(settings);
    const shipped = compactScript(bootstrapScriptFor(role, script)).trimEnd() + "\n";
    const scriptDigest = sha256Hex(shipped);
    // The digest covers an `ha` node's secrets too (a rotated password must reach the nodes): a SHA-256 over
    // them with every other setting, which gives none of them away.
    const unsigned = withoutSetting(withoutSetting(renderBootstrapConfig({ ...settings, settingsDigest: undefined }), "DIFY_INIT_PASSWORD"), "DIFY_SETTINGS_DIGEST");
    const settingsDigest = sha256Hex(`${unsigned}\nscript=${scriptDigest}\n`);
    let config = withoutSetting(renderBootstrapConfig({ ...settings, settingsDigest }), "DIFY_INIT_PASSWORD");
    for (const key of role === "single" ? [] : HA_SECRET_SETTINGS) {
        config = withoutSetting(config, key);
    }
    return { settingsDigest, scriptDigest, config, script: gzipBase64(shipped) };
}

/**
 * Renders the cloud-init user data: a `#cloud-config` document that writes the settings file (0600, plain text, so
 * `render:userdata` shows what the instance gets) and the bootstrap script (0700, gzip+base64), then runs the
 * script once per instance. The settings carry their digest (renderBootstrapApplication). For an `ha` role the
 * settings file holds the external services' secrets: the user data is then as secret as they are.
 */
export function renderUserData(settings: BootstrapSettings, script: string = readBootstrapScript()): string {
    const application = renderBootstrapApplication(settings, script);
    const config = renderBootstrapConfig({ ...settings, settingsDigest: application.settingsDigest });
    const body = [
        "#cloud-config",
        `# Dify ${settings.difyVersion} bootstrap${(settings.role ?? "single") === "single" ? "" : ` (${settings.role} node)`}, rendered by dify-mcp-stack. Log: /var/log/dify-bootstrap.log`,
        "write_files:",
        `- path: ${BOOTSTRAP_CONFIG_PATH}`,
        "  owner: root:root",
        "  permissions: '0600'",
        "  content: |",
        yamlBlock(config.trimEnd(), BLOCK_INDENT),
        `- path: ${BOOTSTRAP_SCRIPT_PATH}`,
        "  owner: root:root",
        "  permissions: '0700'",
        // Compressed: the script is most of the user data, and gzip leaves room under the 16 KB cap.
        "  encoding: gz+b64",
        `  content: ${application.script}`,
        "runcmd:",
        `- [bash, ${BOOTSTRAP_SCRIPT_PATH}]`,
        "",
    ].join("\n");
    const size = Buffer.byteLength(body, "utf8");
    if (size > USER_DATA_LIMIT_BYTES) {
        throw new Error(`rendered user data is ${size} bytes; ECS accepts at most ${USER_DATA_LIMIT_BYTES}`);
    }
    return body;
}
