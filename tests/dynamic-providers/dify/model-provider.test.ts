import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import {
    checkDifyModelProvider,
    diffDifyModelProvider,
    DifyModelProviderInputs,
    DifyModelProviderOutputs,
    KEY_CHANGED_OUTSIDE_PULUMI,
    TONGYI_PROVIDER,
} from "../../../dynamic-providers/dify/model-provider";
import type { PluginTaskStep } from "../../servers/dify-console-server";
import { DIFY_ADMIN as ADMIN, difyAdminConnection, useDifyProviderHost, useDifyServer } from "../../servers/dify-provider-fixture";

const KEY = "sk-test-dashscope-key-original";
const ROTATED_KEY = "sk-test-dashscope-key-rotated";
const CREDENTIALS = "/workspaces/current/model-providers/<path>/credentials";

const host = useDifyProviderHost<DifyModelProviderInputs>("model-provider", "difyModelProviderProvider");
const { checked } = host;

function desired(url: string, overrides: Partial<DifyModelProviderInputs> = {}): DifyModelProviderInputs {
    return {
        ...difyAdminConnection(url),
        dashscopeApiKey: KEY,
        installPollSeconds: 0.01,
        ...overrides,
    };
}

describe("DifyModelProvider check and diff", () => {
    it("fills defaults, names bad fields, and replaces only for another Dify", () => {
        const inputs = checkDifyModelProvider(desired("http://127.0.0.1:1")).inputs as DifyModelProviderInputs;
        expect(inputs).toMatchObject({ llmModel: "qwen-plus", embeddingModel: "text-embedding-v4", useInternationalEndpoint: false, credentialName: "pulumi" });
        const bad = checkDifyModelProvider(desired("http://127.0.0.1:1", { dashscopeApiKey: "", pluginPackagePath: "/nonexistent/tongyi.difypkg", credentialName: "x".repeat(31) }));
        expect(bad.failures?.map((f) => f.property).sort()).toEqual(["credentialName", "dashscopeApiKey", "pluginPackagePath"]);
        const olds = { ...inputs, credentialId: "c1" } as DifyModelProviderOutputs;
        expect(diffDifyModelProvider(olds, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        expect(diffDifyModelProvider(olds, { ...inputs, dashscopeApiKey: ROTATED_KEY }).replaces).toEqual([]);
        expect(diffDifyModelProvider(olds, { ...inputs, difyUrl: "http://127.0.0.1:2" }).replaces).toEqual(["difyUrl"]);
    });
});

describe.each(["1.8.0", "1.9.2", "1.14.1"])("DifyModelProvider against Dify %s", (version) => {
    const server = useDifyServer({ version, pluginInstallPolls: 2 });
    let inputs: DifyModelProviderInputs;
    let outs: DifyModelProviderOutputs;
    let id: string;

    it("installs tongyi from the marketplace, saves the key, sets the defaults; read equals create; a no-op diff is empty", async () => {
        inputs = await checked(desired(server.url));
        ({ id, outs } = await host.call<{ id: string; outs: DifyModelProviderOutputs }>("create", inputs));
        expect(id).toBe(TONGYI_PROVIDER);
        expect(outs).toMatchObject({ pluginInstalledByPulumi: true, llmModel: "qwen-plus", embeddingModel: "text-embedding-v4", difyVersion: version });
        expect(server.count({ route: "POST /workspaces/current/plugin/install/marketplace" })).toBe(1);
        expect(server.count({ route: "GET /workspaces/current/plugin/tasks/<id>" })).toBe(3); // running, running, success
        const credentials = server.modelCredentials.get(TONGYI_PROVIDER);
        expect(credentials?.items.map((c) => [c.id, c.name, c.credentials])).toEqual([
            [outs.credentialId, "pulumi", { dashscope_api_key: KEY, use_international_endpoint: "false" }],
        ]);
        expect(credentials?.currentId).toBe(outs.credentialId);
        expect(Object.fromEntries(server.defaultModels)).toEqual({
            llm: { provider: TONGYI_PROVIDER, model: "qwen-plus" },
            "text-embedding": { provider: TONGYI_PROVIDER, model: "text-embedding-v4" },
        });

        const read = await host.call<{ id: string; props: DifyModelProviderOutputs }>("read", id, outs);
        expect(read).toEqual({ id, props: outs });
        expect(await host.call("diff", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("rotates the key in place with one write and no second credential", async () => {
        server.resetCalls();
        const rotated = await checked(desired(server.url, { dashscopeApiKey: ROTATED_KEY }));
        outs = (await host.call<{ outs: DifyModelProviderOutputs }>("update", id, outs, rotated)).outs;
        expect(server.count({ kind: "write" })).toBe(1);
        expect(server.count({ route: `PUT ${CREDENTIALS}` })).toBe(1);
        const items = server.modelCredentials.get(TONGYI_PROVIDER)?.items ?? [];
        expect(items.map((c) => c.credentials.dashscope_api_key)).toEqual([ROTATED_KEY]);
        inputs = rotated;
    });

    it("changes the default LLM with one write, and refuses one that cannot call tools", async () => {
        server.resetCalls();
        const next = await checked(desired(server.url, { dashscopeApiKey: ROTATED_KEY, llmModel: "qwen3-max" }));
        outs = (await host.call<{ outs: DifyModelProviderOutputs }>("update", id, outs, next)).outs;
        expect(server.count({ kind: "write" })).toBe(1);
        expect(server.defaultModels.get("llm")?.model).toBe("qwen3-max");
        inputs = next;

        server.resetCalls();
        const vision = await checked(desired(server.url, { dashscopeApiKey: ROTATED_KEY, llmModel: "qwen-vl-plus" }));
        const error = await host.call("update", id, outs, vision).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/qwen-vl-plus does not support tool calling.*choose one of: qwen3-max, qwen-max, qwen-plus, qwen-turbo/);
        expect(server.count({ kind: "write" })).toBe(0);
    });

    it("reports a key changed outside Pulumi, and the provider gone once the plugin was removed; delete is idempotent", async () => {
        const [credential] = server.modelCredentials.get(TONGYI_PROVIDER)?.items ?? [];
        credential.credentials.dashscope_api_key = "sk-someone-elses-key-000000000000";
        const drifted = await host.call<{ props: DifyModelProviderOutputs }>("read", id, outs);
        expect(drifted.props.dashscopeApiKey).toBe(KEY_CHANGED_OUTSIDE_PULUMI);
        expect(diffDifyModelProvider(drifted.props, inputs).changes).toBe(true);

        server.plugins.clear();
        expect((await host.call<{ id?: string }>("read", id, outs)).id ?? "").toBe("");
        await host.call("delete", id, outs);
        await host.call("delete", id, outs);
    });

    it("adopts an installed plugin and its active credential (updated in place), and leaves the plugin on delete", async () => {
        server.modelCredentials.clear();
        server.defaultModels.clear();
        server.seedTongyi("sk-seeded-by-hand-0000000000");
        server.resetCalls();
        const adopted = await host.call<{ id: string; outs: DifyModelProviderOutputs }>("create", await checked(desired(server.url)));
        expect(adopted.outs.pluginInstalledByPulumi).toBe(false);
        expect(server.count({ route: "POST /workspaces/current/plugin/install/marketplace" })).toBe(0);
        expect(server.count({ route: `POST ${CREDENTIALS}` })).toBe(0);
        expect(server.modelCredentials.get(TONGYI_PROVIDER)?.items.map((c) => c.credentials.dashscope_api_key)).toEqual([KEY]);

        await host.call("delete", adopted.id, adopted.outs);
        expect(server.modelCredentials.get(TONGYI_PROVIDER)?.items).toEqual([]);
        expect(server.plugins.size).toBe(1);
    });

    it("makes one login attempt with a wrong admin password, and keeps passwords and keys out of errors and output", async () => {
        server.resetCalls();
        const wrong = "Wr0ng-Admin-Passw0rd";
        const error = await host.call("create", await checked(desired(server.url, { adminPassword: wrong }))).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/HTTP 401 authentication_failed.*Not retried/);
        expect(server.count({ route: "POST /login" })).toBe(1);
        expect(server.count({ kind: "write" })).toBe(0);
        for (const secret of [wrong, ADMIN.password, KEY, ROTATED_KEY]) {
            expect((error as Error).message).not.toContain(secret);
            expect(host.output()).not.toContain(secret);
            expect(host.serializedText).not.toContain(secret);
        }
    });
});

describe("DifyModelProvider when the plugin daemon's install task misbehaves (Dify 1.14.1)", () => {
    // Task states as plugin daemon 0.6.0 reports them (see PluginTaskStep in the fake console).
    const server = useDifyServer({ version: "1.14.1" });
    const INSTALL = "POST /workspaces/current/plugin/install/marketplace";
    const NOT_TERMINATED = "Task timed out but not properly terminated";
    const DEPENDENCIES = "failed to launch plugin: failed to install dependencies: failed to install dependencies: signal: killed, output: DEBUG uv 0.8.9";

    function scriptInstalls(...scripts: PluginTaskStep[][]): void {
        server.plugins.clear();
        server.modelCredentials.clear();
        server.defaultModels.clear();
        server.options.pluginInstallScripts = scripts;
        server.resetCalls();
    }

    async function createFails(overrides: Partial<DifyModelProviderInputs> = {}): Promise<string> {
        const error = await host.call("create", await checked(desired(server.url, overrides))).catch((e: Error) => e);
        expect(error).toBeInstanceOf(Error);
        return (error as Error).message;
    }

    it("names the plugin and the daemon's reason (head and tail of a long message, no secrets), says what to check, and does not retry", async () => {
        const uvOutput = Array.from({ length: 60 }, (_, i) => `DEBUG Downloading https://mirror-user:${KEY}@pypi.example.cn/simple/pkg${i}/`).join("\n");
        scriptInstalls([{ status: "running", message: "starting" }, { status: "failed", message: `failed to launch plugin: HEAD-OF-REASON ${uvOutput}\ninit process exited due to no activity for 600 seconds` }]);
        const message = await createFails();
        expect(message).toMatch(/^Dify's plugin daemon failed to install langgenius\/tongyi: "failed to launch plugin: HEAD-OF-REASON DEBUG/);
        expect(message).toContain("no activity for 600 seconds\"");
        expect(message).toContain(" … ");
        const quoted = /"(.*)"/.exec(message)?.[1] ?? "";
        expect(quoted.length).toBeLessThanOrEqual(1003);
        expect(message).not.toContain(KEY);
        expect(message).not.toContain("mirror-user");
        expect(message).toMatch(/uv sync --frozen.*PLUGIN_IGNORE_UV_LOCK=true/);
        expect(message).toMatch(/dify-mcp-stack:pipMirrorUrl/);
        expect(message).toMatch(/PLUGIN_PYTHON_ENV_INIT_TIMEOUT=600/);
        expect(message).toMatch(/Running `pulumi up` again retries the install, and the wheels downloaded so far stay cached\.$/);
        expect(host.output()).not.toContain(KEY);
        expect(server.count({ route: INSTALL })).toBe(1);
        expect(server.plugins.size).toBe(0);
    });

    it("keeps waiting through \"Task timed out but not properly terminated\", which the daemon later turns into success", async () => {
        scriptInstalls([{ status: "running" }, { status: "failed", message: NOT_TERMINATED }, { status: "failed", message: NOT_TERMINATED }, { status: "success" }]);
        const { outs } = await host.call<{ outs: DifyModelProviderOutputs }>("create", await checked(desired(server.url)));
        expect(outs.pluginInstalledByPulumi).toBe(true);
        expect(server.count({ route: "GET /workspaces/current/plugin/tasks/<id>" })).toBe(4);
        expect(server.count({ route: INSTALL })).toBe(1);
        expect(server.defaultModels.get("llm")?.model).toBe("qwen-plus");
    });

    it("succeeds when the task is gone (Dify deleted it after success) and the plugin is installed", async () => {
        scriptInstalls([{ status: "running" }, { status: "gone" }]);
        const { outs } = await host.call<{ outs: DifyModelProviderOutputs }>("create", await checked(desired(server.url)));
        expect(outs.pluginInstalledByPulumi).toBe(true);
        expect(server.count({ route: "GET /workspaces/current/plugin/tasks/<id>" })).toBe(2);
        expect(server.plugins.has("langgenius/tongyi")).toBe(true);
    });

    it("at the deadline, says the install did not finish and quotes the task's last message", async () => {
        scriptInstalls([{ status: "running", message: "starting" }, { status: "failed", message: NOT_TERMINATED }]);
        const message = await createFails({ installTimeoutSeconds: 0.3 });
        expect(message).toContain(`installing langgenius/tongyi in Dify's plugin daemon did not finish within 0.3 s (the task is failed; its last message: "${NOT_TERMINATED}")`);
        expect(message).toMatch(/dify-mcp-stack:pipMirrorUrl/);
        expect(server.count({ route: INSTALL })).toBe(1);
    });

    it("retries once after \"failed to install dependencies\" (the uv cache makes the second attempt get further) and succeeds", async () => {
        scriptInstalls([{ status: "running" }, { status: "failed", message: DEPENDENCIES }], [{ status: "running" }, { status: "success" }]);
        const { outs } = await host.call<{ outs: DifyModelProviderOutputs }>("create", await checked(desired(server.url)));
        expect(outs.pluginInstalledByPulumi).toBe(true);
        expect(server.count({ route: INSTALL })).toBe(2);
        expect(host.output()).not.toMatch(/retr/i); // no noise in the provider's output
    });

    it("reports both attempts' messages when the dependencies fail twice", async () => {
        scriptInstalls([{ status: "failed", message: `${DEPENDENCIES} first-try` }], [{ status: "failed", message: `${DEPENDENCIES} second-try` }]);
        const message = await createFails();
        expect(message).toMatch(/^Dify's plugin daemon failed to install langgenius\/tongyi twice \(a dependency failure is retried once\): first attempt: "[^"]*first-try"; second attempt: "[^"]*second-try"\./);
        expect(message).toMatch(/dify-mcp-stack:pipMirrorUrl/);
        expect(server.count({ route: INSTALL })).toBe(2);
        expect(server.plugins.size).toBe(0);
    });
});

describe("DifyModelProvider without marketplace access (Dify 1.14.1)", () => {
    const server = useDifyServer({ version: "1.14.1", marketplace: false });

    it("explains a rejected DashScope key without echoing it, then installs from an uploaded package", async () => {
        // Dify answers latest-versions with 200 {"versions": {}} when it cannot reach the marketplace (it swallows
        // the error), the same as when the marketplace does not list the plugin: the message names both causes.
        // (The old assertion matched the fake's former 400 "plugin_error", which real Dify never sends here.)
        const error = await host.call("create", await checked(desired(server.url, { dashscopeApiKey: "bad-key-123456789" }))).catch((e: Error) => e);
        const message = (error as Error).message;
        expect(message).toMatch(/lists no langgenius\/tongyi/);
        expect(message).toMatch(/cannot reach the plugin marketplace \(common in mainland China regions; check MARKETPLACE_API_URL/);
        expect(message).toMatch(/or the marketplace does not list the plugin\. Give a \.difypkg file/);
        expect(message).not.toMatch(/\.\./);
        expect(message).toMatch(/[^.]\.$/);
        expect(server.count({ route: "POST /workspaces/current/plugin/install/marketplace" })).toBe(0);

        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tongyi-")), "langgenius-tongyi_0.1.13.difypkg");
        fs.writeFileSync(file, Buffer.from("PK\u0003\u0004 tongyi plugin package"));
        const badKey = await host.call("create", await checked(desired(server.url, { dashscopeApiKey: "bad-key-123456789", pluginPackagePath: file }))).catch((e: Error) => e);
        expect((badKey as Error).message).toMatch(/HTTP 400 invalid_param\): Invalid API-key provided/);
        expect((badKey as Error).message).not.toContain("bad-key-123456789");
        expect(server.count({ route: "POST /workspaces/current/plugin/upload/pkg" })).toBe(1);

        // The plugin is installed now; the next attempt (what `up` does after the init failure) finishes the job.
        const created = await host.call<{ outs: DifyModelProviderOutputs }>("create", await checked(desired(server.url, { pluginPackagePath: file })));
        expect(created.outs.pluginUniqueIdentifier).toMatch(/^langgenius\/tongyi:0\.1\.13-local@[0-9a-f]{64}$/);
        expect(server.count({ route: "POST /workspaces/current/plugin/upload/pkg" })).toBe(1);
        expect(server.defaultModels.get("llm")?.model).toBe("qwen-plus");
    });
});
