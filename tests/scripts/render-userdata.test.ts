import { difyReleasePin } from "../../rules/dify-releases";
import { CERTBOT_IMAGE } from "../../rules/certbot";
import { describe, expect, it } from "vitest";
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
