import { difyReleasePin } from "../../rules/dify-releases";
import { CERTBOT_IMAGE } from "../../rules/certbot";
import { BOOTSTRAP_CONFIG_PATH, HA_SECRET_SETTINGS } from "../../components/bootstrap/userdata";
import { runTool } from "../components/tooling";
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";

const root = path.resolve(__dirname, "..", "..");
const script = path.join(root, "dist", "scripts", "render-userdata.js");

function render(args: string[], projectDir?: string) {
    if (!fs.existsSync(script)) {
        throw new Error(`${script} is missing: run "npm run build" first (npm test does it)`);
    }
    return spawnSync(process.execPath, [script, ...args], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, ...(projectDir ? { DIFY_STACK_PROJECT_DIR: projectDir } : {}) },
    });
}

/**
 * A documented command line, run by bash from the repository root as a user would type it. npm's own settings
 * from an enclosing `npm test` (npm_config_*, e.g. a loglevel) are left out, so the command meets npm's defaults.
 */
function runDocumented(command: string, extraEnv: Record<string, string> = {}) {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
        if (value !== undefined && !/^npm_/i.test(key)) {
            env[key] = value;
        }
    }
    // The user-data stack config is all it reads; the Node 22 this test runs with comes first on PATH.
    env.PATH = `${path.dirname(process.execPath)}:${env.PATH ?? ""}`;
    return spawnSync("bash", ["-c", command], { cwd: root, encoding: "utf8", env: { ...env, ...extraEnv }, timeout: 120_000 });
}

function badStackDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "render-"));
    fs.writeFileSync(
        path.join(dir, "Pulumi.bad.yaml"),
        "config:\n  alicloud:region: cn-hangzhou\n  dify-mcp-stack:difyVersion: 1.7.0\n  dify-mcp-stack:domain: dify.example.com\n",
    );
    return dir;
}

/** A project folder with one Pulumi.<stack>.yaml per entry. */
function stackDir(stacks: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "render-"));
    for (const [stack, text] of Object.entries(stacks)) {
        fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), text);
    }
    return dir;
}

/** stdout is a cloud-config document and nothing else: the first line is `#cloud-config`, and it parses. */
function expectOnlyCloudConfig(stdout: string) {
    expect(stdout.split("\n")[0]).toBe("#cloud-config");
    const document = yaml.load(stdout) as Record<string, unknown>;
    expect(document).toBeTypeOf("object");
    expect(Object.keys(document)).toEqual(expect.arrayContaining(["write_files", "runcmd"]));
}

/** The command lines of the README's "The bootstrap, and how to see it before deploying" code block. */
function documentedCommands(): string[] {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### The bootstrap, and how to see it before deploying"));
    const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    return block.split("\n").filter((line) => line.trim() !== "");
}

/** A topology ha stack file (the smallest config ha accepts), with `extra` config lines. */
function haStack(extra = ""): string {
    return (
        "config:\n  alicloud:region: cn-hangzhou\n  dify-mcp-stack:topology: ha\n  dify-mcp-stack:domain: dify.example.com\n" +
        `  dify-mcp-stack:certificateId: 12345-cn-hangzhou\n${extra}`
    );
}

/** The settings file the user data writes (bootstrap.env), as KEY → value. */
function settingsOf(stdout: string): Map<string, string> {
    const document = yaml.load(stdout) as { write_files: Array<{ path: string; content: string }> };
    const file = document.write_files.find((entry) => entry.path === BOOTSTRAP_CONFIG_PATH);
    expect(file).toBeDefined();
    const settings = new Map<string, string>();
    for (const line of file!.content.split("\n").filter((l) => l !== "")) {
        const match = /^([A-Z0-9_]+)='([^']*)'$/.exec(line);
        expect(match, line).not.toBeNull();
        settings.set(match![1], match![2]);
    }
    return settings;
}

/** cloud-init's own schema validation of user data (Debian's cloud-init, as tests/components does). */
function expectValidCloudConfig(stdout: string) {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "render-schema-")), "user-data.yaml");
    fs.writeFileSync(file, stdout);
    const schema = runTool("cloud-init", ["schema", "--config-file", file]);
    expect(schema.stderr).toBe("");
    expect(schema.stdout).toContain("Valid cloud-config");
    expect(schema.status).toBe(0);
}

/** The second code block of the README section: the topology ha example. */
function documentedHaCommands(): string[] {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const start = readme.indexOf("### The bootstrap, and how to see it before deploying");
    const section = readme.slice(start, readme.indexOf("\n## ", start));
    const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((match) => match[1]);
    return (blocks[1] ?? "").split("\n").filter((line) => line.trim() !== "");
}

describe("the documented render commands (README, \"The bootstrap, and how to see it before deploying\")", () => {
    const commands = documentedCommands();

    it("are the script and npm --silent, each redirected to a file", () => {
        expect(commands).toHaveLength(2);
        expect(commands[0]).toMatch(/^\.\/scripts\/render-userdata\.sh dev .*> user-data\.yaml$/);
        expect(commands[1]).toMatch(/^npm run --silent render:userdata -- dev .*> user-data\.yaml$/);
    });

    describe.each(commands.map((command) => [command]))("%s", (command) => {
        const prefix = command.slice(0, command.indexOf(" dev "));

        it("writes only the user data: the file starts with #cloud-config and parses as YAML", () => {
            const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "render-out-")), "user-data.yaml");
            const result = runDocumented(command.replace("> user-data.yaml", `> ${out}`));
            expect(result.stderr).not.toContain("#cloud-config");
            expect(result.status).toBe(0);
            const written = fs.readFileSync(out, "utf8");
            expectOnlyCloudConfig(written);
            const address = /--public-ip (\S+)/.exec(command)?.[1] ?? "EIP-ADDRESS";
            expect(written).toContain(`DIFY_PUBLIC_URL='https://${address}'`);
        });

        it("sends errors to stderr, nothing to stdout, and exits non-zero", () => {
            const bad = runDocumented(`${prefix} bad`, { DIFY_STACK_PROJECT_DIR: badStackDir() });
            expect(bad.status).not.toBe(0);
            expect(bad.stdout).toBe("");
            expect(bad.stderr).toContain('dify-mcp-stack:difyVersion is "1.7.0"; allowed: 1.8.0 or later');

            const usage = runDocumented(`${prefix} dev --public-ip`);
            expect(usage.status).not.toBe(0);
            expect(usage.stdout).toBe("");
            expect(usage.stderr).toContain("--public-ip needs a value; usage: ./scripts/render-userdata.sh <stack>");
        });
    });
});

describe("the compiled render-userdata script", () => {
    it("prints the dev stack's user data with its settings and the given address", () => {
        const result = render(["dev", "--public-ip", "203.0.113.9"]);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expectOnlyCloudConfig(result.stdout);
        expect(result.stdout).toContain("DIFY_PUBLIC_URL='https://203.0.113.9'");
        expect(result.stdout).toContain(`DIFY_CERTBOT_IMAGE='${CERTBOT_IMAGE}'`);
        expect(result.stdout).toContain("DIFY_REGISTRY_MIRRORS='https://mirrors-ssl.aliyuncs.com/'");
        expect(result.stdout).toContain("DIFY_VERSION='1.14.1'");
        // The same pin the deployed instance gets, so what this shows is what it verifies against.
        expect(result.stdout).toContain(`DIFY_RELEASE_DIGEST='${difyReleasePin("1.14.1")?.digest}'`);
    });

    it("fails with the key and allowed values for a bad stack config", () => {
        const result = render(["bad"], badStackDir());
        expect(result.status).toBe(1);
        expect(result.stderr).toContain('dify-mcp-stack:difyVersion is "1.7.0"; allowed: 1.8.0 or later');
        expect(result.stderr).toContain("dify-mcp-stack:certEmail is not set but domain is");
        expect(result.stdout).toBe("");
    });

    it("shows the mainland image source for a cn-hangzhou stack by default, and Docker Hub for ap-southeast-1", () => {
        const dir = stackDir({
            mainland: "config:\n  alicloud:region: cn-hangzhou\n",
            singapore: "config:\n  alicloud:region: ap-southeast-1\n",
            hongkong: "config:\n  alicloud:region: cn-hongkong\n",
        });
        const mainland = render(["mainland"], dir);
        expect(mainland.stderr).toBe("");
        expect(mainland.status).toBe(0);
        expectOnlyCloudConfig(mainland.stdout);
        expect(mainland.stdout).toContain("DIFY_REGISTRY_MIRRORS='https://mirrors-ssl.aliyuncs.com/'");
        expect(mainland.stdout).toContain("DIFY_IMAGE_REGISTRY=''");
        for (const stack of ["singapore", "hongkong"]) {
            const outside = render([stack], dir);
            expect(outside.stderr).toBe("");
            expect(outside.status).toBe(0);
            expect(outside.stdout).toContain("DIFY_REGISTRY_MIRRORS=''");
            expect(outside.stdout).toContain("DIFY_IMAGE_REGISTRY=''");
            expect(outside.stdout).not.toContain("mirrors-ssl.aliyuncs.com");
        }
    });

    it("with imageSource acr, shows a placeholder registry host (saying so on stderr) or the one given", () => {
        const dir = stackDir({
            acr: "config:\n  alicloud:region: cn-hangzhou\n  dify-mcp-stack:imageSource: acr\n  dify-mcp-stack:acrInstanceId: cri-abc123\n",
        });
        const placeholder = render(["acr"], dir);
        expect(placeholder.status).toBe(0);
        expectOnlyCloudConfig(placeholder.stdout);
        expect(placeholder.stdout).toContain("DIFY_IMAGE_REGISTRY='ACR-INSTANCE-NAME-registry-vpc.cn-hangzhou.cr.aliyuncs.com'");
        expect(placeholder.stdout).toContain("DIFY_REGISTRY_MIRRORS=''");
        expect(placeholder.stderr).toContain("note: imageSource is acr: DIFY_IMAGE_REGISTRY shows the placeholder");
        expect(placeholder.stderr).toContain("--image-registry <host>");

        const given = render(["acr", "--image-registry", "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com"], dir);
        expect(given.stderr).toBe("");
        expect(given.status).toBe(0);
        expect(given.stdout).toContain("DIFY_IMAGE_REGISTRY='dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com'");

        const bad = render(["acr", "--image-registry", "https://x.example.com/path"], dir);
        expect(bad.status).toBe(1);
        expect(bad.stdout).toBe("");
        expect(bad.stderr).toContain("--image-registry is \"https://x.example.com/path\"; allowed: a registry host without scheme or path");

        const notAcr = render(["dev", "--image-registry", "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com"]);
        expect(notAcr.status).toBe(1);
        expect(notAcr.stdout).toBe("");
        expect(notAcr.stderr).toContain("--image-registry applies to imageSource acr only; the stack's imageSource is registry-mirror");
    });

    it("says how to create a missing stack", () => {
        const result = render(["missing-stack"]);
        expect(result.status).toBe(1);
        expect(result.stderr).toMatch(/no stack file .*Pulumi\.missing-stack\.yaml/);
    });
});

describe("the documented topology ha render command (README, the section's second code block)", () => {
    const commands = documentedHaCommands();

    it("is the script with --role, for the stack prod, redirected to a file", () => {
        expect(commands).toHaveLength(1);
        expect(commands[0]).toMatch(/^\.\/scripts\/render-userdata\.sh prod --role (app|singleton) > \S+\.yaml$/);
    });

    it("writes only that role's user data for an ha stack prod", () => {
        const command = commands[0];
        const role = /--role (\S+)/.exec(command)![1];
        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "render-out-")), "user-data.yaml");
        const result = runDocumented(command.replace(/> \S+$/, `> ${out}`), { DIFY_STACK_PROJECT_DIR: stackDir({ prod: haStack() }) });
        expect(result.status).toBe(0);
        expect(result.stderr).not.toContain("#cloud-config");
        const written = fs.readFileSync(out, "utf8");
        expectOnlyCloudConfig(written);
        expect(settingsOf(written).get("DIFY_ROLE")).toBe(role);
    });
});

describe("the compiled render-userdata script with topology ha", () => {
    const dir = stackDir({
        prod: haStack(),
        named: haStack("  dify-mcp-stack:namePrefix: acme-ha\n  dify-mcp-stack:imageSource: acr\n  dify-mcp-stack:acrInstanceId: cri-abc123\n"),
        single: "config:\n  alicloud:region: cn-hangzhou\n",
    });

    it("refuses to render without --role, naming the option and the two roles", () => {
        const result = render(["prod"], dir);
        expect(result.status).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toContain("the stack's topology is ha");
        expect(result.stderr).toContain("--role app");
        expect(result.stderr).toContain("--role singleton");

        const bad = render(["prod", "--role", "worker"], dir);
        expect(bad.status).toBe(1);
        expect(bad.stdout).toBe("");
        expect(bad.stderr).toContain('--role is "worker"; allowed: app or singleton');
    });

    describe.each([["app"], ["singleton"]])("--role %s", (role) => {
        let result: ReturnType<typeof render>;
        beforeAll(() => {
            result = render(["prod", "--role", role], dir);
        });

        it("prints user data that cloud-init's schema accepts, and only that on stdout", () => {
            expect(result.status).toBe(0);
            expectOnlyCloudConfig(result.stdout);
            expectValidCloudConfig(result.stdout);
        });

        it("is the role's node on https://<domain>, with the real plugin daemon URL and the config's values", () => {
            const settings = settingsOf(result.stdout);
            expect(settings.get("DIFY_ROLE")).toBe(role);
            expect(settings.get("DIFY_PUBLIC_URL")).toBe("https://dify.example.com");
            expect(settings.get("DIFY_DOMAIN")).toBe("dify.example.com");
            expect(settings.get("DIFY_DATA_DISK_SERIAL")).toBe("");
            expect(settings.get("DIFY_CERT_EMAIL")).toBe("");
            expect(settings.get("DIFY_PLUGIN_DAEMON_URL")).toBe("http://plugin-daemon.dify-prod.internal:5002");
            expect(settings.get("DIFY_OSS_REGION")).toBe("cn-hangzhou");
            expect(settings.get("DIFY_OSS_ENDPOINT")).toBe("https://oss-cn-hangzhou-internal.aliyuncs.com");
            expect(settings.get("DIFY_DB_DATABASE")).toBe("dify");
            expect(settings.get("DIFY_DB_PLUGIN_DATABASE")).toBe("dify_plugin");
            expect(settings.get("DIFY_DB_USERNAME")).toBe("dify");
            expect(settings.get("DIFY_DB_PORT")).toBe("5432");
            expect(settings.get("DIFY_REDIS_PORT")).toBe("6379");
            expect(settings.get("DIFY_VERSION")).toBe("1.14.1");
            expect(settings.get("DIFY_RELEASE_DIGEST")).toBe(difyReleasePin("1.14.1")?.digest);
        });

        it("holds no real secret: every secret, host and deployment-made name is a placeholder, named on stderr", () => {
            const settings = settingsOf(result.stdout);
            for (const key of ["DIFY_INIT_PASSWORD", ...HA_SECRET_SETTINGS]) {
                expect(["GENERATED-AT-DEPLOY", "CREATEDATDEPLOY"], key).toContain(settings.get(key));
            }
            expect(settings.get("DIFY_OSS_ACCESS_KEY_ID")).toBe("CREATEDATDEPLOY");
            expect(settings.get("DIFY_DB_HOST")).toBe("RDS-PRIVATE-HOST");
            expect(settings.get("DIFY_REDIS_HOST")).toBe("REDIS-PRIVATE-HOST");
            expect(settings.get("DIFY_OSS_BUCKET")).toBe("dify-prod-files-atdeploy");
            expect(result.stderr).toContain(`note: topology ha, role ${role}: values that exist only after deployment are placeholders`);
            for (const key of ["DIFY_DB_HOST", "DIFY_REDIS_HOST", "DIFY_OSS_BUCKET", "DIFY_INIT_PASSWORD", ...HA_SECRET_SETTINGS]) {
                expect(result.stderr).toContain(key);
            }
        });
    });

    it("follows namePrefix in the plugin daemon URL and the bucket, and imageSource acr as single does", () => {
        const result = render(["named", "--role", "app"], dir);
        expect(result.status).toBe(0);
        const settings = settingsOf(result.stdout);
        expect(settings.get("DIFY_PLUGIN_DAEMON_URL")).toBe("http://plugin-daemon.acme-ha.internal:5002");
        expect(settings.get("DIFY_OSS_BUCKET")).toBe("acme-ha-files-atdeploy");
        expect(settings.get("DIFY_IMAGE_REGISTRY")).toBe("ACR-INSTANCE-NAME-registry-vpc.cn-hangzhou.cr.aliyuncs.com");
        expect(result.stderr).toContain("note: imageSource is acr: DIFY_IMAGE_REGISTRY shows the placeholder");

        const given = render(["named", "--role", "singleton", "--image-registry", "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com"], dir);
        expect(given.status).toBe(0);
        expect(settingsOf(given.stdout).get("DIFY_IMAGE_REGISTRY")).toBe("dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com");
    });

    it("refuses --public-ip and --data-disk-id, which ha nodes do not have", () => {
        const ip = render(["prod", "--role", "app", "--public-ip", "203.0.113.9"], dir);
        expect(ip.status).toBe(1);
        expect(ip.stdout).toBe("");
        expect(ip.stderr).toContain("--public-ip applies to topology single only");
        const disk = render(["prod", "--role", "app", "--data-disk-id", "d-0123456789abcdef"], dir);
        expect(disk.status).toBe(1);
        expect(disk.stdout).toBe("");
        expect(disk.stderr).toContain("--data-disk-id applies to topology single only");
    });

    it("refuses --role for a topology single stack", () => {
        for (const stack of ["single", "dev"]) {
            const result = render([stack, "--role", "app"], stack === "dev" ? undefined : dir);
            expect(result.status).toBe(1);
            expect(result.stdout).toBe("");
            expect(result.stderr).toContain("--role applies to topology ha only; the stack's topology is single");
        }
    });
});
