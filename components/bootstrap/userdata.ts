import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { gzipSync } from "fflate";
import { CERTBOT_IMAGE } from "../../rules/certbot";

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
    /** The data disk's id ("d-…"); the bootstrap finds the disk by it. */
    dataDiskId: string;
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

/** Quotes a value for a POSIX shell: single quotes, with embedded single quotes closed and escaped. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Alibaba exposes a disk to the guest with its id minus the "d-" prefix as the serial number. */
export function dataDiskSerial(diskId: string): string {
    return diskId.replace(/^d-/, "");
}

/** The sourced settings file, one shell-quoted assignment per line. */
export function renderBootstrapConfig(settings: BootstrapSettings): string {
    if (settings.initPassword.length > 30) {
        throw new Error("INIT_PASSWORD is longer than the 30 characters Dify accepts");
    }
    const values: Array<[string, string]> = [
        ["DIFY_VERSION", settings.difyVersion],
        ["DIFY_PUBLIC_URL", settings.publicUrl],
        ["DIFY_INIT_PASSWORD", settings.initPassword],
        ["DIFY_DATA_DISK_SERIAL", dataDiskSerial(settings.dataDiskId)],
        ["DIFY_DOMAIN", settings.domain ?? ""],
        ["DIFY_CERT_EMAIL", settings.certEmail ?? ""],
        // The certbot the bootstrap runs for an https publicUrl (one pin for the instance and the tests).
        ["DIFY_CERTBOT_IMAGE", CERTBOT_IMAGE],
        ["DIFY_REGISTRY_MIRRORS", settings.registryMirrors.join(" ")],
        ["DIFY_PIP_MIRROR_URL", settings.pipMirrorUrl ?? ""],
        ["DIFY_IMAGE_REGISTRY", settings.imageRegistry ?? ""],
        ["DIFY_RELEASE_DIGEST", settings.releaseDigest ?? ""],
        // Space-separated: the bootstrap reads it with `read -a`.
        ["DIFY_RELEASE_FILES", (settings.releaseFiles ?? []).join(" ")],
        ["DIFY_RELEASE_COMMIT", settings.releaseCommit ?? ""],
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
    /** SHA-256 (hex) of the script as shipped (compactScript's output). */
    scriptDigest: string;
    /**
     * The settings file as the user data writes it, without the DIFY_INIT_PASSWORD line: no secret may go into a
     * RunCommand, whose content Alibaba keeps in its invocation history. The instance keeps its own line.
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
 * both use it, so the digest the user data carries is the one Pulumi waits for.
 */
export function renderBootstrapApplication(settings: BootstrapSettings, script: string = readBootstrapScript()): BootstrapApplication {
    const shipped = compactScript(script).trimEnd() + "\n";
    const scriptDigest = sha256Hex(shipped);
    const unsigned = withoutSetting(withoutSetting(renderBootstrapConfig({ ...settings, settingsDigest: undefined }), "DIFY_INIT_PASSWORD"), "DIFY_SETTINGS_DIGEST");
    const settingsDigest = sha256Hex(`${unsigned}\nscript=${scriptDigest}\n`);
    return {
        settingsDigest,
        scriptDigest,
        config: withoutSetting(renderBootstrapConfig({ ...settings, settingsDigest }), "DIFY_INIT_PASSWORD"),
        script: gzipBase64(shipped),
    };
}

/**
 * Renders the cloud-init user data: a `#cloud-config` document that writes the settings file (0600, plain text, so
 * `render:userdata` shows what the instance gets) and the bootstrap script (0700, gzip+base64), then runs the
 * script once per instance. The settings carry their digest (renderBootstrapApplication).
 */
export function renderUserData(settings: BootstrapSettings, script: string = readBootstrapScript()): string {
    const application = renderBootstrapApplication(settings, script);
    const config = renderBootstrapConfig({ ...settings, settingsDigest: application.settingsDigest });
    const body = [
        "#cloud-config",
        `# Dify ${settings.difyVersion} bootstrap, rendered by dify-mcp-stack. Log: /var/log/dify-bootstrap.log`,
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
