import { describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

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

describe("npm run render:userdata -- <stack>", () => {
    it("prints the dev stack's user data with its settings and the given address", () => {
        const result = render(["dev", "--public-ip", "203.0.113.9"]);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout.startsWith("#cloud-config\n")).toBe(true);
        expect(result.stdout).toContain("DIFY_PUBLIC_URL='http://203.0.113.9'");
        expect(result.stdout).toContain("DIFY_REGISTRY_MIRRORS='https://mirrors-ssl.aliyuncs.com/'");
        expect(result.stdout).toContain("DIFY_VERSION='1.14.1'");
    });

    it("fails with the key and allowed values for a bad stack config", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "render-"));
        fs.writeFileSync(
            path.join(dir, "Pulumi.bad.yaml"),
            "config:\n  alicloud:region: cn-hangzhou\n  dify-mcp-stack:difyVersion: 1.7.0\n  dify-mcp-stack:domain: dify.example.com\n",
        );
        const result = render(["bad"], dir);
        expect(result.status).toBe(1);
        expect(result.stderr).toContain('dify-mcp-stack:difyVersion is "1.7.0"; allowed: 1.8.0 or later');
        expect(result.stderr).toContain("dify-mcp-stack:certEmail is not set but domain is");
        expect(result.stdout).toBe("");
    });

    it("says how to create a missing stack", () => {
        const result = render(["missing-stack"]);
        expect(result.status).toBe(1);
        expect(result.stderr).toMatch(/no stack file .*Pulumi\.missing-stack\.yaml/);
    });
});
