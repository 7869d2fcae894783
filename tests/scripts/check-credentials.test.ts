// scripts/check-credentials.ts, run as up.sh runs it (node dist/scripts/check-credentials.js <stack>) in a child
// process with a temporary HOME, so that only the credentials each test gives exist. The ECS metadata address is
// disabled (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true) except in the probe tests, where a preload sends it to a
// local stand-in.
import { afterEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { runAsync, RunResult as Run } from "./run-async";

const root = path.resolve(__dirname, "..", "..");
const script = path.join(root, "dist", "scripts", "check-credentials.js");
const preload = path.join(__dirname, "metadata-preload.cjs");

const KEY_ID = "LTAI_TEST_ENV_KEY_01";
const SECRET = "EnvSecretValue-do-not-print-0001";
const PROFILE_KEY_ID = "LTAI_TEST_PROFILE_77";
const PROFILE_SECRET = "ProfileSecret-do-not-print-0077";

function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs the checker for `stack` with only `env` (plus PATH and a HOME) and, by default, the metadata address off. */
function check(env: Record<string, string | undefined>, options: { stack?: string; preload?: boolean } = {}): Promise<Run> {
    if (!fs.existsSync(script)) {
        throw new Error(`${script} is missing: run "npm run build" first (npm test does it)`);
    }
    const childEnv: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: tempDir("home-"), ALIBABA_CLOUD_ECS_METADATA_DISABLED: "true" };
    for (const [key, value] of Object.entries(env)) {
        if (value === undefined) {
            delete childEnv[key];
        } else {
            childEnv[key] = value;
        }
    }
    const args = [...(options.preload ? ["--require", preload] : []), script, options.stack ?? "dev"];
    return runAsync(process.execPath, args, { env: childEnv });
}

function expectNoSecrets(result: Run, ...secrets: string[]) {
    for (const secret of secrets) {
        expect(result.stdout + result.stderr).not.toContain(secret);
    }
}

/** A HOME with ~/.aliyun/config.json holding one AK profile, the file's current one. */
function homeWithCliProfile(name = "work"): string {
    const home = tempDir("home-");
    fs.mkdirSync(path.join(home, ".aliyun"));
    fs.writeFileSync(
        path.join(home, ".aliyun", "config.json"),
        JSON.stringify({
            current: name,
            profiles: [{ name, mode: "AK", access_key_id: PROFILE_KEY_ID, access_key_secret: PROFILE_SECRET, region_id: "cn-hangzhou" }],
        }),
    );
    return home;
}

const WAYS = [
    "environment: export ALIBABA_CLOUD_ACCESS_KEY_ID=<id> ALIBABA_CLOUD_ACCESS_KEY_SECRET=<secret>",
    "aliyun CLI profile: aliyun configure --profile <name>, then export ALIBABA_CLOUD_PROFILE=<name>",
    "OIDC in CI:",
    "ECS RAM role: on an ECS instance with a RAM role attached, export ALIBABA_CLOUD_ECS_METADATA=<role name>",
];

describe("check-credentials without credentials", () => {
    it("exits non-zero, says nothing was found for either provider, where it looked in order, and the ways to provide some", async () => {
        const result = await check({});
        expect(result.status).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toContain("no Alibaba Cloud credentials found for the OAuth app and MCP server providers");
        expect(result.stderr).toContain("no Alibaba Cloud credentials found for the alicloud provider");
        const chainOrder = ["1. environment ALIBABA_CLOUD_ACCESS_KEY_ID", "2. OIDC", "3. aliyun CLI profile", "4. credentials file", "5. ECS RAM role", "6. credentials URI"];
        const positions = chainOrder.map((step) => result.stderr.indexOf(step));
        expect(positions.every((p) => p >= 0)).toBe(true);
        expect([...positions].sort((a, b) => a - b)).toEqual(positions);
        expect(result.stderr).toContain("not probed, ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
        for (const way of WAYS) {
            expect(result.stderr).toContain(way);
        }
    });

    it("says a key id without its secret is not enough", async () => {
        const result = await check({ ALIBABA_CLOUD_ACCESS_KEY_ID: KEY_ID });
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("ALIBABA_CLOUD_ACCESS_KEY_ID is set, ALIBABA_CLOUD_ACCESS_KEY_SECRET is not");
        expect(result.stderr).toContain("ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET: no secret");
    });

    it("refuses arguments it does not know, and a stack without a file", async () => {
        expect((await check({}, { stack: "--help" })).status).toBe(2);
        const missing = await check({}, { stack: "no-such-stack" });
        expect(missing.status).toBe(2);
        expect(missing.stderr).toMatch(/no stack file .*Pulumi\.no-such-stack\.yaml/);
    });
});

describe("check-credentials with environment credentials", () => {
    it("names the environment for both providers and shows only the key id's first 4 and last 2 characters", async () => {
        const result = await check({ ALIBABA_CLOUD_ACCESS_KEY_ID: KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout).toContain(
            "OAuth app and MCP server providers (@alicloud/credentials default chain): environment (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET), access key LTAI...01",
        );
        expect(result.stdout).toContain("alicloud provider (VPC, ECS, disks, EIP, ...): environment (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET), access key LTAI...01");
        expectNoSecrets(result, SECRET, KEY_ID);
    });

    it("names an STS token, and the alicloud provider's own variables, which both providers read", async () => {
        const sts = await check({ ALIBABA_CLOUD_ACCESS_KEY_ID: KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET, ALIBABA_CLOUD_SECURITY_TOKEN: "token-do-not-print" });
        expect(sts.status).toBe(0);
        expect(sts.stdout).toContain("environment (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN)");
        expectNoSecrets(sts, SECRET, "token-do-not-print");

        const alicloud = await check({ ALICLOUD_ACCESS_KEY: KEY_ID, ALICLOUD_SECRET_KEY: SECRET });
        expect(alicloud.status).toBe(0);
        expect(alicloud.stdout.match(/environment \(ALICLOUD_ACCESS_KEY, ALICLOUD_SECRET_KEY\), access key LTAI\.\.\.01/g)).toHaveLength(2);
        expectNoSecrets(alicloud, SECRET, KEY_ID);
    });

    it("warns when the two providers would sign as different identities", async () => {
        const result = await check({
            ALIBABA_CLOUD_ACCESS_KEY_ID: KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET,
            ALICLOUD_ACCESS_KEY: PROFILE_KEY_ID,
            ALICLOUD_SECRET_KEY: PROFILE_SECRET,
        });
        expect(result.status).toBe(0);
        expect(result.stdout).toContain("warning: the two sign as different identities (LTAI...01 and LTAI...77)");
        expectNoSecrets(result, SECRET, PROFILE_SECRET);
    });
});

describe("check-credentials with a profile", () => {
    it("names the aliyun CLI profile the chain takes (the file's current one), and stops because the alicloud provider needs it named", async () => {
        const home = homeWithCliProfile("work");
        const result = await check({ HOME: home });
        expect(result.status).toBe(1);
        expect(result.stdout).toContain(`aliyun CLI profile "work" in ${path.join(home, ".aliyun", "config.json")} (mode AK), access key LTAI...77`);
        expect(result.stderr).toContain("no Alibaba Cloud credentials found for the alicloud provider");
        expect(result.stderr).toContain("aliyun CLI profile, read only when named (alicloud:profile, ALICLOUD_PROFILE, ALIBABA_CLOUD_PROFILE): none named");
        expect(result.stderr).toContain("Fix: export ALIBABA_CLOUD_PROFILE=work so that the alicloud provider reads the profile the chain found.");
        expectNoSecrets(result, PROFILE_SECRET, PROFILE_KEY_ID);
    });

    it("passes when the profile is named, for both providers", async () => {
        const home = homeWithCliProfile("work");
        const result = await check({ HOME: home, ALIBABA_CLOUD_PROFILE: "work" });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout).toContain(`alicloud provider (VPC, ECS, disks, EIP, ...): aliyun CLI profile "work" in ${path.join(home, ".aliyun", "config.json")} (mode AK, named by ALIBABA_CLOUD_PROFILE), access key LTAI...77`);
        expectNoSecrets(result, PROFILE_SECRET, PROFILE_KEY_ID);
    });

    it("reads the alicloud provider's profile name from the stack config", async () => {
        const home = homeWithCliProfile("work");
        const project = tempDir("project-");
        fs.writeFileSync(path.join(project, "Pulumi.staging.yaml"), "config:\n  alicloud:region: cn-hangzhou\n  alicloud:profile: work\n");
        const result = await check({ HOME: home, DIFY_STACK_PROJECT_DIR: project }, { stack: "staging" });
        expect(result.status).toBe(0);
        expect(result.stdout).toContain("for stack staging");
        expect(result.stdout).toContain('(mode AK, named by alicloud:profile), access key LTAI...77');
    });

    it("names a credentials file given by ALIBABA_CLOUD_CREDENTIALS_FILE, which the alicloud provider does not read", async () => {
        const file = path.join(tempDir("ini-"), "credentials");
        fs.writeFileSync(file, `[default]\ntype = access_key\naccess_key_id = ${PROFILE_KEY_ID}\naccess_key_secret = ${PROFILE_SECRET}\n`);
        const result = await check({ ALIBABA_CLOUD_CREDENTIALS_FILE: file });
        expect(result.status).toBe(1);
        expect(result.stdout).toContain(`credentials file ${file}, profile [default] (type access_key), access key LTAI...77`);
        expect(result.stderr).toContain("Fix: the alicloud provider does not read the credentials file");
        expectNoSecrets(result, PROFILE_SECRET, PROFILE_KEY_ID);
    });

    it("keeps the chain's order: the environment before OIDC before the CLI profile", async () => {
        const home = homeWithCliProfile("work");
        const both = await check({ HOME: home, ALIBABA_CLOUD_PROFILE: "work", ALIBABA_CLOUD_ACCESS_KEY_ID: KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET: SECRET });
        expect(both.stdout).toContain("OAuth app and MCP server providers (@alicloud/credentials default chain): environment (ALIBABA_CLOUD_ACCESS_KEY_ID");

        const tokenFile = path.join(tempDir("oidc-"), "token");
        fs.writeFileSync(tokenFile, "header.payload.signature");
        const oidc = {
            HOME: home,
            ALIBABA_CLOUD_ROLE_ARN: "acs:ram::123456789012:role/deployer",
            ALIBABA_CLOUD_OIDC_PROVIDER_ARN: "acs:ram::123456789012:oidc-provider/github",
            ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile,
        };
        const viaOidc = await check(oidc);
        expect(viaOidc.stdout).toContain(`OIDC: role acs:ram::123456789012:role/deployer, token file ${tokenFile} (exchanged with STS when the providers run)`);
        expect(viaOidc.stderr).toContain("Fix: set the stack config alicloud:assumeRoleWithOidc");
        expect(viaOidc.stdout + viaOidc.stderr).not.toContain("header.payload.signature");

        // An unreadable token file: the chain moves on to the profile, as the library does.
        const fallsThrough = await check({ ...oidc, ALIBABA_CLOUD_OIDC_TOKEN_FILE: path.join(tempDir("oidc-"), "missing") });
        expect(fallsThrough.stdout).toContain('OAuth app and MCP server providers (@alicloud/credentials default chain): aliyun CLI profile "work"');
    });
});

describe("check-credentials and the ECS metadata address", () => {
    let server: http.Server | undefined;
    afterEach(async () => {
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        server = undefined;
    });

    /** A metadata stand-in on 127.0.0.1; `role` undefined answers 404 everywhere (not an ECS instance). */
    async function metadata(role: string | undefined, requests: string[]): Promise<number> {
        server = http.createServer((req, res) => {
            requests.push(`${req.method} ${req.url}`);
            if (role && req.method === "PUT" && req.url === "/latest/api/token") {
                res.end("metadata-token");
            } else if (role && req.url === "/latest/meta-data/ram/security-credentials/") {
                res.end(role);
            } else if (role && req.url === `/latest/meta-data/ram/security-credentials/${role}`) {
                res.end(JSON.stringify({
                    Code: "Success",
                    AccessKeyId: "STS.NRoleKeyIdXyz42",
                    AccessKeySecret: "RoleSecret-do-not-print",
                    SecurityToken: "RoleToken-do-not-print",
                    Expiration: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, "Z"),
                }));
            } else {
                res.statusCode = 404;
                res.end();
            }
        });
        await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", () => resolve()));
        return (server!.address() as AddressInfo).port;
    }

    it("probes it only when ALIBABA_CLOUD_ECS_METADATA_DISABLED is unset, and says that it did", async () => {
        const requests: string[] = [];
        const port = await metadata("dify-deployer", requests);
        const env = { ALIBABA_CLOUD_ECS_METADATA_DISABLED: undefined, TEST_METADATA_PORT: String(port) };
        const result = await check(env, { preload: true });
        expect(requests).toContain("GET /latest/meta-data/ram/security-credentials/dify-deployer");
        expect(result.stdout).toContain("OAuth app and MCP server providers (@alicloud/credentials default chain): ECS RAM role (instance metadata, probed now), access key STS....42");
        expect(result.stdout).toContain("note: probed the ECS instance metadata address 100.100.100.200 for a RAM role: found one");
        // The alicloud provider uses a role only when it is named.
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("Fix: export ALIBABA_CLOUD_ECS_METADATA=<the instance's RAM role name>");
        expectNoSecrets(result, "RoleSecret-do-not-print", "RoleToken-do-not-print");

        const named = await check({ ...env, ALIBABA_CLOUD_ECS_METADATA: "dify-deployer" }, { preload: true });
        expect(named.status).toBe(0);
        expect(named.stdout).toContain('ECS RAM role "dify-deployer" (instance metadata, probed now)');
        expect(named.stdout).toContain('alicloud provider (VPC, ECS, disks, EIP, ...): ECS RAM role "dify-deployer" (ALIBABA_CLOUD_ECS_METADATA; from instance metadata when the provider runs)');
    });

    it("says it probed when no role answered", async () => {
        const requests: string[] = [];
        const port = await metadata(undefined, requests);
        const result = await check({ ALIBABA_CLOUD_ECS_METADATA_DISABLED: undefined, TEST_METADATA_PORT: String(port) }, { preload: true });
        expect(requests.length).toBeGreaterThan(0);
        expect(result.status).toBe(1);
        expect(result.stderr).toContain("5. ECS RAM role: probed the instance metadata address 100.100.100.200, no role");
    });

    it("does not probe when the variable is set to anything, and says only \"true\" disables it for the providers", async () => {
        const requests: string[] = [];
        const port = await metadata("dify-deployer", requests);
        const result = await check({ ALIBABA_CLOUD_ECS_METADATA_DISABLED: "1", TEST_METADATA_PORT: String(port) }, { preload: true });
        expect(requests).toEqual([]);
        expect(result.stderr).toContain('not probed because ALIBABA_CLOUD_ECS_METADATA_DISABLED is set ("1"); only "true" disables it');
    });
});
