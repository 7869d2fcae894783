// The pack under the real Pulumi engine: `pulumi preview --policy-pack policy` loads it the way the workflows do
// (the policy runtime type-checks policy/*.ts and the project modules it imports with ts-node), runs its
// resource and stack policies, and blocks on a mandatory violation. The program registers a dynamic resource
// under the RAM OAuth app's type token, so nothing needs the alicloud plugin or the network.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { type LocalBackend, createLocalBackend, runPulumi, writeJavaScriptProject } from "../../scripts/pulumi-local-backend";

const root = path.resolve(__dirname, "..", "..");
const PACK = path.join(root, "policy");

const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const config = new pulumi.Config();
// Stands in for dynamic-providers/ram-oauth-app.ts: same type token and checked inputs, no API calls.
const provider = {
    async check(olds, news) { return { inputs: news }; },
    async create(inputs) { return { id: "app-1", outs: inputs }; },
};
new pulumi.dynamic.Resource(provider, "mcp-oauth", {
    appName: "dify-mcp-engine",
    appType: config.require("appType"),
    protocolVersion: "2.1",
    scopes: ["/acs/mcp-server", "openid"],
}, {}, "alibaba", "RamOAuthApplication");
`;

let backend: LocalBackend;
let programDir: string;

function pulumi(...args: string[]) {
    return runPulumi(backend, programDir, args);
}

beforeAll(() => {
    if (!fs.existsSync(path.join(PACK, "node_modules", "@pulumi", "policy"))) {
        throw new Error("policy/node_modules is missing: run `npm ci --prefix policy`");
    }
    backend = createLocalBackend({ passphrase: "policy-pack-engine-test" });
    programDir = path.join(backend.dir, "program");
    writeJavaScriptProject(programDir, "policy-engine", PROGRAM);
    const init = pulumi("stack", "init", "engine", "--secrets-provider", "passphrase");
    expect(init.status, init.stderr).toBe(0);
}, 120_000);

afterAll(() => backend?.cleanup());

describe("pulumi preview --policy-pack policy", () => {
    it("loads the pack and passes a NativeApp", () => {
        expect(pulumi("config", "set", "appType", "NativeApp").status).toBe(0);
        const preview = pulumi("preview", "--policy-pack", PACK);
        const output = preview.stdout + preview.stderr;
        expect(preview.status, output).toBe(0);
        expect(output).toContain("dify-mcp-stack-guardrails");
        expect(output).not.toMatch(/Error validating|can't run policy/);
    }, 180_000);

    it("blocks a ServerApp with the pack's mandatory violation", () => {
        expect(pulumi("config", "set", "appType", "ServerApp").status).toBe(0);
        const preview = pulumi("preview", "--policy-pack", PACK);
        const output = preview.stdout + preview.stderr;
        expect(preview.status, output).not.toBe(0);
        expect(output).toContain("oauth-app-user-sign-in");
        expect(output).toContain('appType is "ServerApp"; must be WebApp or NativeApp');
    }, 180_000);
});
