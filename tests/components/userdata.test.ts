import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import * as yaml from "js-yaml";
import { runTool, writeFilesWithCloudInit } from "./tooling";
import {
    BOOTSTRAP_CONFIG_PATH,
    BOOTSTRAP_SCRIPT_PATH,
    BootstrapSettings,
    USER_DATA_LIMIT_BYTES,
    bootstrapScriptFor,
    compactScript,
    readBootstrapScript,
    renderUserData,
} from "../../components/bootstrap/userdata";
import { HA_EXTERNAL_SERVICES } from "../harness/compose-bootstrap";

const settings: BootstrapSettings = {
    difyVersion: "1.14.1",
    publicUrl: "http://198.51.100.23",
    initPassword: "Ab1-_=/&.xyzXYZ789",
    dataDiskId: "d-bp1abcdef",
    registryMirrors: ["https://mirrors-ssl.aliyuncs.com/", "https://abc.mirror.aliyuncs.com"],
    pipMirrorUrl: "https://mirrors.aliyun.com/pypi/simple",
};

/** Default secrets that ship in Dify's .env.example; none may appear in what we hand to the instance. */
const DIFY_DEFAULT_SECRETS = [
    "sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U",
    "difyai123456",
    "lYkiYYT6owG+71oLerGzA7GXCgOT++6ovaezWAjpCjf+Sjc3ZtU+qUEi",
    "QaHbTe77CtuXmsfyhR7+vRjI/+XbV1AaFy691iy+kGDv2Jvy0/eAh8Y1",
    "WVF5YThaHlkYwhGUSmCRgsX3tD5ngdN8pkih",
];

interface CloudConfig {
    write_files: Array<{ path: string; permissions: string; content: string; encoding?: string }>;
    runcmd: string[][];
}

let dir: string;
let userData: string;
let cloudConfig: CloudConfig;

/** What cloud-init writes to filePath: the content, decoded when the entry says gz+b64. */
function fileContent(filePath: string, config: CloudConfig = cloudConfig): string {
    const file = config.write_files.find((f) => f.path === filePath);
    if (!file) {
        throw new Error(`user data writes no ${filePath}`);
    }
    if (file.encoding === "gz+b64") {
        return zlib.gunzipSync(Buffer.from(file.content, "base64")).toString("utf8");
    }
    expect(file.encoding).toBeUndefined();
    return file.content;
}

beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "userdata-"));
    userData = renderUserData(settings);
    fs.writeFileSync(path.join(dir, "user-data.yaml"), userData);
    cloudConfig = yaml.load(userData) as CloudConfig;
    fs.writeFileSync(path.join(dir, "bootstrap.sh"), fileContent(BOOTSTRAP_SCRIPT_PATH));
});

describe("rendered user data", () => {
    it("is a #cloud-config document under 16 KB with the pinned tag", () => {
        expect(userData.startsWith("#cloud-config\n")).toBe(true);
        expect(Buffer.byteLength(userData)).toBeLessThan(USER_DATA_LIMIT_BYTES);
        expect(fileContent(BOOTSTRAP_CONFIG_PATH)).toContain("DIFY_VERSION='1.14.1'\n");
        expect(cloudConfig.runcmd).toEqual([["bash", BOOTSTRAP_SCRIPT_PATH]]);
    });

    it("passes cloud-init's own schema validation", () => {
        const result = runTool("cloud-init", ["schema", "--config-file", path.join(dir, "user-data.yaml")]);
        expect(result.stderr).toBe("");
        expect(result.stdout).toContain("Valid cloud-config");
        expect(result.status).toBe(0);
    });

    it("is written by cloud-init's own write_files as the compacted script (0700) and the settings (0600)", () => {
        const root = fs.mkdtempSync(path.join(dir, "instance-"));
        const result = writeFilesWithCloudInit(path.join(dir, "user-data.yaml"), root);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        const script = path.join(root, BOOTSTRAP_SCRIPT_PATH);
        expect(fs.readFileSync(script, "utf8")).toBe(compactScript(readBootstrapScript()).trimEnd() + "\n");
        expect(fs.statSync(script).mode & 0o777).toBe(0o700);
        const config = path.join(root, BOOTSTRAP_CONFIG_PATH);
        expect(fs.readFileSync(config, "utf8")).toContain("DIFY_VERSION='1.14.1'\n");
        expect(fs.statSync(config).mode & 0o777).toBe(0o600);
    });

    it("renders the same bytes every time (the compressed script must not move the instance)", () => {
        expect(renderUserData(settings)).toBe(userData);
        // No file name and mtime 0 in the gzip header, and the Unix OS byte, whatever machine renders it.
        const gz = Buffer.from(cloudConfig.write_files.find((f) => f.path === BOOTSTRAP_SCRIPT_PATH)!.content, "base64");
        expect([...gz.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    });

    it("has a shell script that passes shellcheck -S warning and bash -n", () => {
        const script = path.join(dir, "bootstrap.sh");
        const check = runTool("shellcheck", ["-S", "warning", "-s", "bash", script]);
        expect(check.stdout + check.stderr).toBe("");
        expect(check.status).toBe(0);
        expect(runTool("bash", ["-n", script]).status).toBe(0);
        // The source file the repo keeps passes too.
        expect(runTool("shellcheck", ["-S", "warning", path.resolve(__dirname, "../../components/bootstrap/bootstrap.sh")]).status).toBe(0);
    });

    it("ships the script's code unchanged: comments and blank lines dropped, indentation as tabs", () => {
        const shipped = fileContent(BOOTSTRAP_SCRIPT_PATH);
        const source = readBootstrapScript();
        const code = (text: string) => text.split("\n").filter((l) => l.trim() !== "" && (!/^\s*#/.test(l) || /shellcheck /.test(l)));
        const untabbed = shipped.replace(/^\t+/gm, (tabs) => "    ".repeat(tabs.length));
        expect(code(untabbed).join("\n").trimEnd()).toBe(code(source).join("\n").trimEnd());
        expect(shipped.startsWith("#!/usr/bin/env bash\n")).toBe(true);
        expect(shipped).toContain("\n\tlocal ");
    });

    it("keeps here-document bodies byte for byte (their indentation is data)", () => {
        const source = "#!/bin/bash\nf() {\n    cat >x <<'YAML'\n    # not a comment here\n\n  key: value\n        deeper: 1\nYAML\n    echo done\n}\n";
        expect(compactScript(source)).toBe("#!/bin/bash\nf() {\n\tcat >x <<'YAML'\n    # not a comment here\n\n  key: value\n        deeper: 1\nYAML\n\techo done\n}");
        // The script's own: the override's YAML parts and nginx's redirect server reach the instance unchanged.
        const bodies = [...readBootstrapScript().matchAll(/<<'([A-Z]+)'\n([\s\S]*?\n)\1\n/g)].map((match) => match[2]);
        expect(bodies.length).toBeGreaterThanOrEqual(3);
        for (const body of bodies) {
            expect(fileContent(BOOTSTRAP_SCRIPT_PATH)).toContain(body);
        }
    });

    it("reads the same in cloud-init's YAML parser (PyYAML) as here", () => {
        const parsed = runTool("python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path.join(dir, "user-data.yaml")]);
        expect(parsed.status, parsed.stderr).toBe(0);
        expect(JSON.parse(parsed.stdout)).toEqual(cloudConfig);
    });

    it("stays under 16 KB with long settings: a domain, an e-mail, mirrors", () => {
        const long = renderUserData({
            ...settings,
            publicUrl: "https://dify-production.platform-team.example-corporation.com.cn",
            domain: "dify-production.platform-team.example-corporation.com.cn",
            certEmail: "platform-operations+dify@example-corporation.com.cn",
            registryMirrors: ["https://abcdefgh12345678.mirror.aliyuncs.com", "https://mirrors-ssl.aliyuncs.com/"],
        });
        expect(Buffer.byteLength(long)).toBeLessThan(USER_DATA_LIMIT_BYTES);
    });

    it("makes no instance metadata request without a session token", () => {
        // The instance requires tokens (DifyHost sets httpTokens "required"): a plain GET would fail.
        for (const line of readBootstrapScript().split("\n").filter((l) => /100\.100\.100\.200/.test(l))) {
            expect(line).toMatch(/X-aliyun-ecs-metadata-token/);
        }
    });

    it("writes the settings file for root only, with values that survive the shell", () => {
        const file = cloudConfig.write_files.find((f) => f.path === BOOTSTRAP_CONFIG_PATH);
        expect(file?.permissions).toBe("0600");
        fs.writeFileSync(path.join(dir, "bootstrap.env"), fileContent(BOOTSTRAP_CONFIG_PATH));
        const printed = runTool("bash", ["--noprofile", "--norc", "-c", `. "${path.join(dir, "bootstrap.env")}"; printf '%s\\n' "$DIFY_INIT_PASSWORD" "$DIFY_REGISTRY_MIRRORS" "$DIFY_DATA_DISK_SERIAL"`]);
        expect(printed.stdout).toBe(`${settings.initPassword}\nhttps://mirrors-ssl.aliyuncs.com/ https://abc.mirror.aliyuncs.com\nbp1abcdef\n`);
    });

    it("contains no default secret, API key or admin password", () => {
        for (const secret of DIFY_DEFAULT_SECRETS) {
            expect(userData).not.toContain(secret);
        }
        expect(userData).not.toMatch(/dashscope|sk-[0-9a-f]{32}|ADMIN_PASSWORD|LTAI/i);
    });

    it("quotes a single quote in a value so the settings file stays valid shell", () => {
        const rendered = renderUserData({ ...settings, initPassword: "it's-a-Pass1" });
        const content = (yaml.load(rendered) as CloudConfig).write_files[0].content;
        fs.writeFileSync(path.join(dir, "quoted.env"), content);
        const printed = runTool("bash", ["--noprofile", "--norc", "-c", `. "${path.join(dir, "quoted.env")}"; printf '%s' "$DIFY_INIT_PASSWORD"`]);
        expect(printed.stdout).toBe("it's-a-Pass1");
    });

    it("refuses an INIT_PASSWORD longer than Dify accepts", () => {
        expect(() => renderUserData({ ...settings, initPassword: "x".repeat(31) })).toThrow(/30 characters/);
    });
});

describe("rendered user data of the ha roles (tests/components/bootstrap-ha.test.ts has the rest)", () => {
    const ha = (role: "app" | "singleton"): BootstrapSettings => ({
        ...settings,
        publicUrl: "https://dify.example.com",
        domain: "dify.example.com",
        dataDiskId: undefined,
        role,
        externalServices: HA_EXTERNAL_SERVICES,
    });

    it.each(["app", "singleton"] as const)("%s: a #cloud-config under 16 KB that says its role, shipping bootstrap.sh with ha-node.sh", (role) => {
        const rendered = renderUserData(ha(role));
        expect(rendered.startsWith(`#cloud-config\n# Dify 1.14.1 bootstrap (${role} node), rendered by dify-mcp-stack.`)).toBe(true);
        expect(Buffer.byteLength(rendered)).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
        const config = yaml.load(rendered) as CloudConfig;
        expect(fileContent(BOOTSTRAP_SCRIPT_PATH, config)).toBe(compactScript(bootstrapScriptFor(role)).trimEnd() + "\n");
        expect(fileContent(BOOTSTRAP_SCRIPT_PATH, config)).toContain("write_ha_compose_override()");
        expect(fileContent(BOOTSTRAP_CONFIG_PATH, config)).toContain(`DIFY_ROLE='${role}'\n`);
        // The settings file is the one secret file: 0600, as for single.
        expect(config.write_files.find((f) => f.path === BOOTSTRAP_CONFIG_PATH)?.permissions).toBe("0600");
    });

    it("keeps single's user data free of the ha overlay and settings", () => {
        expect(fileContent(BOOTSTRAP_SCRIPT_PATH)).not.toContain("write_ha_compose_override");
        expect(fileContent(BOOTSTRAP_CONFIG_PATH)).not.toContain("DIFY_ROLE");
        expect(userData.split("\n")[1]).toBe("# Dify 1.14.1 bootstrap, rendered by dify-mcp-stack. Log: /var/log/dify-bootstrap.log");
    });

    it("refuses an ha role without its external services, with a data disk, or over plain http", () => {
        expect(() => renderUserData({ ...ha("app"), externalServices: undefined })).toThrow(/externalServices is required for the role "app"/);
        expect(() => renderUserData({ ...ha("singleton"), dataDiskId: "d-bp1abcdef" })).toThrow(/dataDiskId is set for the role "singleton"/);
        expect(() => renderUserData({ ...ha("app"), publicUrl: "http://dify.example.com" })).toThrow(/needs https:\/\/<domain>/);
    });
});
