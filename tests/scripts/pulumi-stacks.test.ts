// Stack discovery for the GitOps workflows: which stacks preview.yml previews and deploy.yml deploys.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { autoDeployStacks, listStacks } from "../../scripts/pulumi-stacks";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-stacks-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(file: string, text: string): void {
    fs.writeFileSync(path.join(dir, file), text);
}

write("Pulumi.yaml", "name: dify-mcp-stack\nruntime: nodejs\n");
write("Pulumi.dev.yaml", "config:\n  alicloud:region: cn-hangzhou\n");
write("Pulumi.staging.yaml", 'config:\n  dify-mcp-stack:autoDeploy: "true"\n');
write("Pulumi.prod.yaml", "config:\n  dify-mcp-stack:autoDeploy: true\n  dify-mcp-stack:difyVersion: 1.9.1\n");
write("Pulumi.sandbox.yaml", "config:\n  dify-mcp-stack:autoDeploy: false\n  other-project:autoDeploy: true\n");
write("Pulumi.yaml.bak", "not a stack");

describe("pulumi-stacks", () => {
    it("lists every Pulumi.<stack>.yaml", () => {
        expect(listStacks(dir)).toEqual(["dev", "prod", "sandbox", "staging"]);
    });

    it("selects the stacks whose <project>:autoDeploy is true (boolean or string)", () => {
        expect(autoDeployStacks(dir)).toEqual(["prod", "staging"]);
    });

    it("rejects a stack file name that is unsafe in a shell or a concurrency group", () => {
        const bad = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-stacks-bad-"));
        fs.writeFileSync(path.join(bad, "Pulumi.a b.yaml"), "config: {}\n");
        expect(() => listStacks(bad)).toThrow('Pulumi.a b.yaml: stack names may only use letters, digits, ".", "_" and "-"');
        fs.rmSync(bad, { recursive: true, force: true });
    });

    it("prints JSON for the workflows (compiled script, as the workflows run it)", () => {
        const script = path.resolve(__dirname, "../../dist/scripts/pulumi-stacks.js");
        expect(fs.existsSync(script), "compile first: npx tsc -p tsconfig.build.json").toBe(true);
        const all = execFileSync(process.execPath, [script, `--root=${dir}`], { encoding: "utf8" });
        expect(JSON.parse(all)).toEqual(["dev", "prod", "sandbox", "staging"]);
        const auto = execFileSync(process.execPath, [script, "--auto-deploy", `--root=${dir}`], { encoding: "utf8" });
        expect(JSON.parse(auto)).toEqual(["prod", "staging"]);
    });
});
