// The project's real dynamic resources under the real Pulumi engine: one stack of tests/e2e/program on a local
// file backend, driven with the CLI through preview, up, no-op up, updates and replacements, refresh after
// out-of-band deletions, a secrets check of everything the CLI wrote, and destroy. Each step is asserted on the
// engine's own summary (--json) and on the state and call counts of the local Alibaba-like and Dify-like servers.
// Needs the CLI (`bash scripts/pulumi-cli.sh`) and the compiled providers (`npm run build`; `npm test` does it).
import * as fs from "fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOAuthApp, isOAuthApp } from "../../policy/rules";
import {
    assertSucceeded,
    changedInputKeys,
    changedPropertiesInDiffText,
    createE2eStack,
    E2E_RESOURCES,
    E2E_SECRETS,
    E2eServers,
    E2eStack,
    EngineSummary,
    operationsByResource,
    resourceKey,
    startE2eServers,
    StepResult,
    stepsOf,
} from "./e2e-stack";

const TONGYI = "langgenius/tongyi/tongyi";
const MCP_ROUTE = "/workspaces/current/tool-provider/mcp";
const ALL_RESOURCES = Object.values(E2E_RESOURCES).sort();
const STEP_TIMEOUT = 180_000;
const ROTATED_DASHSCOPE_KEY = "sk-e2e-rotated-dashscope-key-93d1";

let servers: E2eServers;
let stack: E2eStack;
/** The OAuth client secret the Alibaba server issued at creation: it must never appear in plain text. */
let issuedClientSecret = "";

beforeAll(async () => {
    servers = await startE2eServers();
    stack = await createE2eStack(servers);
}, STEP_TIMEOUT);

afterAll(async () => {
    stack?.cleanup();
    await servers?.close();
});

function summaryOf(result: StepResult): EngineSummary {
    assertSucceeded(result);
    expect(result.summary, `no --json summary from pulumi ${result.args.join(" ")}`).toBeDefined();
    return result.summary as EngineSummary;
}

/**
 * The operations on the program's resources, leaving out "same" (a preview without --show-sames lists only the
 * resources it would change), e.g. { "AgentApp.ops-agent": ["update"] }.
 */
function changedOperations(summary: EngineSummary): Record<string, string[]> {
    return Object.fromEntries(
        Object.entries(operationsByResource(summary))
            .map(([key, ops]) => [key, ops.filter((op) => op !== "same")] as const)
            .filter(([, ops]) => ops.length > 0),
    );
}

/** Asserts the operations per resource; resources not named must be unchanged. */
function expectOperations(summary: EngineSummary, expected: Record<string, string | string[]>): void {
    const normalized = Object.fromEntries(Object.entries(expected).map(([key, op]) => [key, Array.isArray(op) ? op : [op]]));
    expect(changedOperations(summary)).toEqual(normalized);
}

function onlyStep(summary: EngineSummary, key: string, op: string) {
    const steps = stepsOf(summary, key).filter((step) => step.op === op);
    expect(steps, `${key}: expected one ${op} step`).toHaveLength(1);
    return steps[0];
}

function mcpProvider() {
    const providers = [...servers.dify.mcpProviders.values()];
    expect(providers).toHaveLength(1);
    return providers[0];
}

function agentApp() {
    const apps = [...servers.dify.apps.values()];
    expect(apps).toHaveLength(1);
    return apps[0];
}

describe("the e2e stack under the real Pulumi engine", () => {
    it("1. preview of the empty stack plans every resource as a create, calls no write API, and passes the policy pack", async () => {
        const preview = await stack.preview();
        const summary = summaryOf(preview);
        expectOperations(summary, Object.fromEntries(ALL_RESOURCES.map((key) => [key, "create"])));
        expect(summary.changeSummary).toEqual({ create: ALL_RESOURCES.length + 1 }); // + the stack
        expect(preview.calls.writes, preview.writesDescribed).toBe(0);
        expect(servers.alibaba.applications()).toEqual([]);
        expect(servers.dify.isSetUp()).toBe(false);

        const guarded = await stack.previewWithPolicies();
        const policySummary = summaryOf(guarded);
        expect(guarded.calls.writes, guarded.writesDescribed).toBe(0);
        expect(policySummary.policyViolations).toEqual([]);
        expect(policySummary.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
        // The pack ran on every resource of the program, and the OAuth-app policy among the ones passed.
        const analysed = new Set(policySummary.policyAnalyses?.map((analysis) => resourceKey(analysis.urn)));
        for (const key of ALL_RESOURCES) {
            expect(analysed.has(key), `policy pack did not analyse ${key}`).toBe(true);
        }
        const appAnalysis = policySummary.policyAnalyses?.find((analysis) => resourceKey(analysis.urn) === E2E_RESOURCES.oauthApp);
        expect(appAnalysis?.passed).toContain("oauth-app-mcp-ready");
        expect(appAnalysis?.failed).toEqual([]);
        // …and the policy recognises the app as the engine registers it (type token and checked inputs).
        const appStep = onlyStep(summary, E2E_RESOURCES.oauthApp, "create");
        const appType = appStep.newState?.type ?? "";
        expect(appType).toBe("pulumi-nodejs:dynamic/alibaba:RamOAuthApplication");
        expect(isOAuthApp(appType, appStep.newState?.inputs ?? {})).toBe(true);
        expect(checkOAuthApp(appStep.newState?.inputs ?? {})).toBeUndefined();
    }, STEP_TIMEOUT);

    it("2. up creates every resource once; the servers hold exactly the expected objects", async () => {
        const up = await stack.up();
        const summary = summaryOf(up);
        expectOperations(summary, Object.fromEntries(ALL_RESOURCES.map((key) => [key, "create"])));
        expect(up.calls.alibabaByAction).toEqual({ CreateApplication: 1, CreateAppSecret: 1, CreateApiMcpServer: 1 });
        for (const route of ["POST /setup", `POST ${MCP_ROUTE}`, "POST /apps", "POST /apps/<id>/model-config", "POST /workspaces/current/model-providers/<path>/credentials"]) {
            expect(up.calls.difyByRoute[route], route).toBe(1);
        }

        const outputs = await stack.outputs();
        const [app] = servers.alibaba.applications();
        expect(servers.alibaba.applications()).toHaveLength(1);
        expect(app).toMatchObject({
            AppId: outputs.oauthAppId,
            AppName: "dify-mcp-e2e",
            AppType: "WebApp",
            ProtocolVersion: "2.1",
            AccessTokenValidity: 3600,
            RedirectUris: [`${servers.dify.url}/console/api/mcp/oauth/callback`],
        });
        expect([...app.PredefinedScopes].sort()).toEqual(["/acs/mcp-server", "openid"]);
        const secrets = servers.alibaba.appSecrets(app.AppId);
        expect(secrets).toHaveLength(1);
        issuedClientSecret = secrets[0].AppSecretValue;

        const [mcpServer] = servers.alibaba.mcpServers();
        expect(servers.alibaba.mcpServers()).toHaveLength(1);
        expect(mcpServer).toMatchObject({ id: outputs.mcpServerId, name: "e2e-mcp", oauthClientId: app.AppId });
        expect(outputs.mcpServerUrl).toMatch(new RegExp(`/custom/e2e-mcp/id/${mcpServer.id}/mcp$`));

        expect(servers.dify.accounts.map((account) => account.email)).toEqual(["admin@example.com"]);
        expect(mcpProvider()).toMatchObject({
            serverIdentifier: "alibaba-openapi",
            serverUrl: outputs.mcpServerUrl,
            // Dify 1.14 with the app as preset OAuth client, secret included.
            clientId: app.AppId,
            clientSecret: issuedClientSecret,
        });
        expect([...servers.dify.plugins.values()].map((plugin) => plugin.pluginId)).toEqual(["langgenius/tongyi"]);
        const credentials = servers.dify.modelCredentials.get(TONGYI)?.items ?? [];
        expect(credentials.map((credential) => credential.credentials.dashscope_api_key)).toEqual([E2E_SECRETS.dashscopeApiKey]);
        expect(servers.dify.defaultModels.get("llm")).toEqual({ provider: TONGYI, model: "qwen-plus" });
        expect(agentApp()).toMatchObject({ id: outputs.agentAppId, name: "ECS assistant", mode: "agent-chat" });
        expect(outputs.difyAdminPassword).toBe("[secret]");
    }, STEP_TIMEOUT);

    it("3. a second up changes nothing and calls no write API, and a preview plans nothing", async () => {
        const up = await stack.up();
        const summary = summaryOf(up);
        expectOperations(summary, {});
        expect(summary.changeSummary).toEqual({ same: ALL_RESOURCES.length + 1 });
        expect(Object.keys(operationsByResource(summary)).sort()).toEqual(ALL_RESOURCES);
        expect(up.calls.writes, up.writesDescribed).toBe(0);
        const [latest] = await stack.history();
        expect(latest).toMatchObject({ kind: "update", result: "succeeded", resourceChanges: { same: ALL_RESOURCES.length + 1 } });
        // What a pull request's preview shows for an unchanged stack: nothing.
        const preview = await stack.preview();
        expect(summaryOf(preview).changeSummary).toEqual({ same: ALL_RESOURCES.length + 1 });
        expect(preview.calls.writes).toBe(0);
    }, STEP_TIMEOUT);

    it("4a. an updatable setting shows exactly that property in preview --diff, and up updates it in place", async () => {
        const appId = agentApp().id;
        await stack.setConfig({ agentPrompt: "List the user's ECS instances in Hangzhou first." });

        const preview = await stack.preview(["--diff"]);
        const summary = summaryOf(preview);
        expectOperations(summary, { [E2E_RESOURCES.agent]: "update" });
        expect(changedInputKeys(onlyStep(summary, E2E_RESOURCES.agent, "update"))).toEqual(["systemPrompt"]);
        const text = assertSucceeded(await stack.run(["preview", "--diff"]));
        expect(changedPropertiesInDiffText(text.stdout)).toEqual(["systemPrompt"]);
        expect(preview.calls.writes + text.calls.writes).toBe(0);

        const up = await stack.up();
        expectOperations(summaryOf(up), { [E2E_RESOURCES.agent]: "update" });
        expect(up.writesDescribed).toBe("POST /apps/<id>/model-config×1");
        expect(agentApp()).toMatchObject({ id: appId });
        expect(agentApp().modelConfig.pre_prompt).toBe("List the user's ECS instances in Hangzhou first.");
    }, STEP_TIMEOUT);

    it("4b. an update of a resource others depend on is one API call; only its own step names the property", async () => {
        const appId = servers.alibaba.applications()[0].AppId;
        await stack.setConfig({ accessTokenValidity: 7200 });

        const preview = summaryOf(await stack.preview(["--diff"]));
        // Dynamic providers cannot preview an update's outputs, so the engine shows the dependents' inputs that
        // come from the app as unknown (planned as updates); `up` then finds nothing to change there.
        expect(changedInputKeys(onlyStep(preview, E2E_RESOURCES.oauthApp, "update"))).toEqual(["accessTokenValidity"]);

        const up = await stack.up();
        expectOperations(summaryOf(up), { [E2E_RESOURCES.oauthApp]: "update" });
        expect(up.writesDescribed).toBe("UpdateApplication×1");
        expect(servers.alibaba.applications()).toEqual([expect.objectContaining({ AppId: appId, AccessTokenValidity: 7200 })]);
    }, STEP_TIMEOUT);

    it("4c. renaming the MCP server shows a replace, and up creates the new server before deleting the old one", async () => {
        const oldServerId = servers.alibaba.mcpServers()[0].id;
        const providerId = mcpProvider().id;
        await stack.setConfig({ mcpServerName: "e2e-mcp-v2" });

        const preview = await stack.preview();
        const replace = onlyStep(summaryOf(preview), E2E_RESOURCES.mcpServer, "replace");
        expect(replace.replaceReasons).toEqual(["name"]);
        expect(preview.calls.writes).toBe(0);

        const up = await stack.up();
        const summary = summaryOf(up);
        expectOperations(summary, {
            [E2E_RESOURCES.mcpServer]: ["create-replacement", "replace", "delete-replaced"],
            [E2E_RESOURCES.mcpTools]: "update",
        });
        expect(up.calls.alibabaByAction).toEqual({ CreateApiMcpServer: 1, DeleteApiMcpServer: 1 });
        const [server] = servers.alibaba.mcpServers();
        expect(servers.alibaba.mcpServers()).toHaveLength(1);
        expect(server.name).toBe("e2e-mcp-v2");
        expect(server.id).not.toBe(oldServerId);
        // The Dify registration follows the new URL in place.
        expect(mcpProvider()).toMatchObject({ id: providerId, serverUrl: (await stack.outputs()).mcpServerUrl });
        expect(String(mcpProvider().serverUrl)).toContain("/custom/e2e-mcp-v2/");
    }, STEP_TIMEOUT);

    it("4d. changing the OAuth app type replaces it, deleting the old app first (names are unique)", async () => {
        const oldAppId = servers.alibaba.applications()[0].AppId;
        const serverId = servers.alibaba.mcpServers()[0].id;
        await stack.setConfig({ oauthAppType: "NativeApp" });

        const preview = await stack.preview();
        expect(onlyStep(summaryOf(preview), E2E_RESOURCES.oauthApp, "replace").replaceReasons).toEqual(["appType"]);

        const up = await stack.up();
        const summary = summaryOf(up);
        expect(operationsByResource(summary)[E2E_RESOURCES.oauthApp]).toEqual(["delete-replaced", "replace", "create-replacement"]);
        expect(operationsByResource(summary)[E2E_RESOURCES.mcpServer]).toEqual(["update"]);
        expect(up.calls.alibabaByAction).toEqual({ DeleteApplication: 1, CreateApplication: 1, UpdateApiMcpServer: 1 });
        const [app] = servers.alibaba.applications();
        expect(servers.alibaba.applications()).toHaveLength(1);
        expect(app).toMatchObject({ AppName: "dify-mcp-e2e", AppType: "NativeApp" });
        expect(app.AppId).not.toBe(oldAppId);
        expect(servers.alibaba.appSecrets(app.AppId)).toEqual([]);
        expect(servers.alibaba.mcpServers()).toEqual([expect.objectContaining({ id: serverId, oauthClientId: app.AppId })]);
        expect(mcpProvider()).toMatchObject({ clientId: app.AppId, clientSecret: "" });
        // A NativeApp has no client secret; a preview must still see every output as known and plan nothing.
        expect(summaryOf(await stack.preview()).changeSummary).toEqual({ same: ALL_RESOURCES.length + 1 });
    }, STEP_TIMEOUT);

    it("4e. rotating the DashScope key (a secret) updates the Dify credential in place", async () => {
        const [credential] = servers.dify.modelCredentials.get(TONGYI)?.items ?? [];
        assertSucceeded(await stack.run(["config", "set", "--secret", "dashscopeApiKey", ROTATED_DASHSCOPE_KEY]));

        // The engine masks both values, so the plan names the resource but cannot show the property.
        const preview = await stack.preview();
        expectOperations(summaryOf(preview), { [E2E_RESOURCES.models]: "update" });
        expect(preview.calls.writes).toBe(0);

        const up = await stack.up();
        expectOperations(summaryOf(up), { [E2E_RESOURCES.models]: "update" });
        expect(up.writesDescribed).toBe("PUT /workspaces/current/model-providers/<path>/credentials×1");
        expect(servers.dify.modelCredentials.get(TONGYI)?.items).toEqual([
            { id: credential.id, name: credential.name, credentials: { ...credential.credentials, dashscope_api_key: ROTATED_DASHSCOPE_KEY } },
        ]);
    }, STEP_TIMEOUT);

    it("5. objects deleted out of band show up in refresh as deletions and the next up re-creates them", async () => {
        const [server] = servers.alibaba.mcpServers();
        const app = agentApp();
        servers.alibaba.deleteMcpServerOutOfBand(server.id);
        servers.dify.apps.delete(app.id);

        const refresh = await stack.refresh();
        const refreshed = summaryOf(refresh);
        expectOperations(refreshed, { [E2E_RESOURCES.mcpServer]: "delete", [E2E_RESOURCES.agent]: "delete" });
        expect(refresh.calls.writes, refresh.writesDescribed).toBe(0);

        const up = await stack.up();
        expectOperations(summaryOf(up), {
            [E2E_RESOURCES.mcpServer]: "create",
            [E2E_RESOURCES.mcpTools]: "update",
            [E2E_RESOURCES.agent]: "create",
        });
        const [recreated] = servers.alibaba.mcpServers();
        expect(servers.alibaba.mcpServers()).toHaveLength(1);
        expect(recreated).toMatchObject({ name: "e2e-mcp-v2", oauthClientId: servers.alibaba.applications()[0].AppId });
        expect(recreated.id).not.toBe(server.id);
        expect(mcpProvider().serverUrl).toContain(`/id/${recreated.id}/`);
        expect(agentApp().id).not.toBe(app.id);

        const again = await stack.up();
        expectOperations(summaryOf(again), {});
        expect(again.calls.writes, again.writesDescribed).toBe(0);
    }, STEP_TIMEOUT);

    it("6. no secret appears in plain text in the exported state or in anything else the CLI wrote", async () => {
        expect(issuedClientSecret).not.toBe("");
        const secrets = {
            "OAuth client secret": issuedClientSecret,
            "DashScope API key": E2E_SECRETS.dashscopeApiKey,
            "rotated DashScope API key": ROTATED_DASHSCOPE_KEY,
            "Dify admin password": E2E_SECRETS.adminPassword,
            "Alibaba AccessKey secret": E2E_SECRETS.accessKeySecret,
        };
        const exported = await stack.exportState();
        for (const [name, value] of Object.entries(secrets)) {
            expect(exported.includes(value), `${name} in stack export`).toBe(false);
        }
        // State, checkpoints of every update (including those from before the app became a NativeApp), backups,
        // logs and the stack's config file.
        const files = stack.writtenFiles();
        expect(files.some((file) => file.includes(".checkpoint.json"))).toBe(true);
        for (const file of files) {
            const content = fs.readFileSync(file, "utf8");
            for (const [name, value] of Object.entries(secrets)) {
                expect(content.includes(value), `${name} in ${file}`).toBe(false);
            }
        }
        // The secrets are in the state, encrypted: Pulumi's secret envelopes carry a ciphertext.
        const deployment = JSON.parse(exported) as { deployment: { resources: { urn: string; outputs?: Record<string, unknown> }[] } };
        const outputsOf = (key: string) => deployment.deployment.resources.find((resource) => resourceKey(resource.urn) === key)?.outputs ?? {};
        const isEncrypted = (value: unknown) => typeof value === "object" && value !== null && "ciphertext" in value;
        expect(isEncrypted(outputsOf(E2E_RESOURCES.admin).password)).toBe(true);
        expect(isEncrypted(outputsOf(E2E_RESOURCES.models).dashscopeApiKey)).toBe(true);
        expect(isEncrypted(outputsOf(E2E_RESOURCES.mcpTools).adminPassword)).toBe(true);
        expect(isEncrypted(outputsOf(E2E_RESOURCES.mcpTools).oauthClientSecret)).toBe(true);
    }, STEP_TIMEOUT);

    it("7. destroy removes every object from the servers, and a second destroy does nothing", async () => {
        const destroy = await stack.destroy();
        const summary = summaryOf(destroy);
        expectOperations(summary, Object.fromEntries(ALL_RESOURCES.map((key) => [key, "delete"])));
        expect(servers.alibaba.applications()).toEqual([]);
        expect(servers.alibaba.mcpServers()).toEqual([]);
        expect(servers.dify.mcpProviders.size).toBe(0);
        expect(servers.dify.apps.size).toBe(0);
        expect(servers.dify.plugins.size).toBe(0);
        expect(servers.dify.modelCredentials.get(TONGYI)?.items ?? []).toEqual([]);
        // Dify has no route that undoes its setup: the admin account stays (DifyAdmin's delete is a no-op).
        expect(servers.dify.accounts).toHaveLength(1);

        const again = await stack.destroy();
        const second = summaryOf(again);
        expect(second.steps).toEqual([]);
        expect(second.changeSummary).toEqual({});
        expect(again.calls.reads + again.calls.writes + again.calls.difyAuth).toBe(0);
        const state = JSON.parse(await stack.exportState()) as { deployment: { resources?: unknown[] } };
        expect(state.deployment.resources ?? []).toEqual([]);
    }, STEP_TIMEOUT);
});
