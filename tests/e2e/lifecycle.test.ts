// The project's real dynamic resources under the real Pulumi engine, against Dify's real API server (1.14.1, with
// PostgreSQL, Redis and the plugin-daemon stand-in, tests/harness/real-dify.ts) behind a recording proxy, the
// Alibaba-like API server and a loopback MCP server that requires OAuth like Alibaba's: one stack of
// tests/e2e/program on a local file backend, driven with the CLI through preview, up, the MCP authorization a
// person approves, the smoke test (a real MCP tool call through Dify with the OAuth token), no-op up, updates and
// replacements, refresh after out-of-band deletions, a secrets check of everything the CLI wrote, and destroy.
// Each step is asserted on the engine's own summary (--json), on the call counts (Dify's through the proxy,
// counted as the fake Dify counted them) and on the servers' state: Dify's read through its console API and its
// database, plugins through the daemon stand-in.
// Needs the CLI (`bash scripts/pulumi-cli.sh`), the compiled providers (`npm run build`; `npm test` does it) and
// PostgreSQL and Redis (scripts/test.sh installs them).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import { checkOAuthApp, isOAuthApp } from "../../policy/rules";
import { maskDifyCredential, obfuscateDashscopeKey } from "../../dynamic-providers/dify/masks";
import {
    approveMcpAuthorization,
    assertSucceeded,
    changedInputKeys,
    changedPropertiesInDiffText,
    createE2eStack,
    DifyState,
    difyState,
    E2E_ADMIN_EMAIL,
    E2E_RESOURCES,
    E2E_SECRETS,
    E2E_SMOKE_TOOL,
    E2eServers,
    E2eStack,
    EngineSummary,
    operationsByResource,
    resourceKey,
    runSmoke,
    startE2eServers,
    StepResult,
    stepsOf,
    urlHash,
} from "./e2e-stack";
import { E2E_CONFIG } from "./e2e-stack";

const TONGYI = "langgenius/tongyi/tongyi";
const MCP_ROUTE = "/workspaces/current/tool-provider/mcp";
const ALL_RESOURCES = Object.values(E2E_RESOURCES).sort();
const STEP_TIMEOUT = 240_000;
const ROTATED_DASHSCOPE_KEY = "sk-e2e-rotated-dashscope-key-93d1";
const MCP_TOOLS = ["Ecs-DescribeInstances", "Ecs-DescribeRegions"];
const SERVER_IDENTIFIER = E2E_CONFIG.mcpServerIdentifier;

let servers: E2eServers;
let stack: E2eStack;
let dify: DifyState;
/** The OAuth client secret the Alibaba server issued at creation: it must never appear in plain text. */
let issuedClientSecret = "";

beforeAll(async () => {
    // Dify's real API server: 20-50 s to start here, minutes when its caches are cold.
    servers = await startE2eServers();
    stack = await createE2eStack(servers);
    dify = difyState(servers);
}, 600_000);

afterAll(async () => {
    stack?.cleanup();
    await servers?.close();
}, 120_000);

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
            .map(([key, ops]) => [key, ops.filter((op) => op !== "same" && op !== "refresh")] as const)
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

async function mcpProvider() {
    const providers = await dify.mcpProviders();
    expect(providers).toHaveLength(1);
    return providers[0];
}

async function agentApp() {
    const apps = await dify.agentApps();
    expect(apps).toHaveLength(1);
    return apps[0];
}

/** The outputs the state holds for one resource (secrets stay encrypted). */
async function stateOutputs(key: string): Promise<Record<string, unknown>> {
    const deployment = JSON.parse(await stack.exportState()) as { deployment: { resources: { urn: string; outputs?: Record<string, unknown> }[] } };
    return deployment.deployment.resources.find((resource) => resourceKey(resource.urn) === key)?.outputs ?? {};
}

/** Calls of the plugin daemon stand-in that validated tongyi credentials with `key`. */
async function keyValidations(key: string): Promise<number> {
    const calls = await servers.dify.pluginDaemon!.calls();
    return calls.filter(
        (call) =>
            call.route?.endsWith("/dispatch/model/validate_provider_credentials") &&
            call.credentials_valid === true &&
            (call.body as { data?: { credentials?: Record<string, string> } } | undefined)?.data?.credentials?.dashscope_api_key === key,
    ).length;
}

/** Dify's consent URL for the workspace: the MCP server's authorization endpoint, for `clientId`, back to Dify's callback. */
function expectAuthorizationUrl(url: unknown, clientId: string): void {
    expect(typeof url).toBe("string");
    const parsed = new URL(url as string);
    expect(`${parsed.origin}${parsed.pathname}`).toBe(servers.mcp.authorizationEndpoint);
    expect(Object.fromEntries(parsed.searchParams)).toMatchObject({
        response_type: "code",
        client_id: clientId,
        code_challenge_method: "S256",
        redirect_uri: `${servers.difyUrl}/console/api/mcp/oauth/callback`,
    });
}

/**
 * What a person does after `up` printed the authorization URL: approve it on the MCP server's consent page (the
 * browser then lands on Dify's callback, which exchanges the code at the token endpoint); `pulumi refresh` then
 * reads the provider as authorized with its tools (the engine shows no change: only outputs differ), and the next
 * `up` attaches the tools to the agent: one write.
 */
async function approveRefreshAndUp(): Promise<void> {
    const url = (await stack.outputs()).mcpAuthorizationUrl as string;
    const mark = servers.mcp.mark();
    const approval = await approveMcpAuthorization(servers, url);
    // Dify exchanged the code and sends the browser back to its console.
    expect(approval).toMatchObject({ status: 302, location: `${servers.difyUrl}/oauth-callback` });
    expect(servers.mcp.callsSince(mark).map((call) => `${call.kind} ${call.status} ${call.grantType ?? ""}`.trim())).toEqual([
        "authorize 200",
        "token 200 authorization_code",
    ]);
    expect((await mcpProvider()).authed).toBe(true);

    const refresh = await stack.refresh();
    expectOperations(summaryOf(refresh), {});
    expect(refresh.calls.writes, refresh.writesDescribed).toBe(0);
    // Dify listed the tools with its new token: one MCP session (initialize ... tools/list), every request authorized.
    const session = servers.mcp.callsSince(mark).filter((call) => call.kind === "mcp");
    expect(session.map((call) => call.rpcMethod).filter(Boolean)).toEqual(["initialize", "notifications/initialized", "tools/list"]);
    expect(session.every((call) => call.bearer === "valid")).toBe(true);
    expect(await stateOutputs(E2E_RESOURCES.mcpTools)).toMatchObject({ authorized: true, authorizationUrl: "", toolNames: MCP_TOOLS });
    expect((await mcpProvider()).toolNames).toEqual(MCP_TOOLS);

    const up = await stack.up();
    expectOperations(summaryOf(up), { [E2E_RESOURCES.agent]: "update" });
    expect(up.writesDescribed).toBe("POST /apps/<id>/model-config×1");
    expect((await stack.outputs()).mcpToolNames).toEqual(MCP_TOOLS);
    expect((await agentApp()).mcpTools).toEqual(MCP_TOOLS.map((tool) => `${SERVER_IDENTIFIER}/${tool}`));
}

/** `npm run smoke -- e2e` against the stack: the agent makes one MCP tool call through Dify, with the OAuth token. */
async function expectSmokePasses(): Promise<void> {
    const mark = servers.mcp.mark();
    const invocations = servers.mcp.toolInvocations.length;
    const smoke = await runSmoke(stack);
    expect(smoke.code, `${smoke.stdout}\n${smoke.stderr}`).toBe(0);
    expect(smoke.stdout).toContain(`2 MCP tools attached (${MCP_TOOLS.join(", ")})`);
    expect(smoke.stdout).toContain(`→ tool call: ${E2E_SMOKE_TOOL}`);
    expect(smoke.stdout).toMatch(/PASS: 1 MCP tool call\(s\)\n/);
    // The call reached the MCP server with a valid token, and the answer quotes what the tool returned.
    expect(servers.mcp.toolInvocations.slice(invocations)).toEqual([{ name: E2E_SMOKE_TOOL, arguments: { RegionId: "cn-hangzhou" }, outcome: "success" }]);
    const toolCalls = servers.mcp.callsSince(mark).filter((call) => call.rpcMethod === "tools/call");
    expect(toolCalls.map((call) => `${call.status} ${call.bearer}`)).toEqual(["200 valid"]);
    expect(smoke.stdout).toMatch(/Answer: Here is what the tool returned: .*"TotalCount": 2/);
}

describe("the e2e stack under the real Pulumi engine, against Dify's real API server", () => {
    it("1. preview of the empty stack plans every resource as a create, calls no write API, and passes the policy pack", async () => {
        const preview = await stack.preview();
        const summary = summaryOf(preview);
        expectOperations(summary, Object.fromEntries(ALL_RESOURCES.map((key) => [key, "create"])));
        expect(summary.changeSummary).toEqual({ create: ALL_RESOURCES.length + 1 }); // + the stack
        expect(preview.calls.writes, preview.writesDescribed).toBe(0);
        expect(servers.alibaba.applications()).toEqual([]);
        expect(await dify.isSetUp()).toBe(false);

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
        // The redirect URI registered from difyUrl is the one Dify sends (CONSOLE_API_URL is the proxy's too).
        const callback = `${servers.difyUrl}/console/api/mcp/oauth/callback`;
        expect(servers.dify.env.CONSOLE_API_URL).toBe(servers.difyUrl);
        expect(app).toMatchObject({
            AppId: outputs.oauthAppId,
            AppName: "dify-mcp-e2e",
            AppType: "WebApp",
            ProtocolVersion: "2.1",
            AccessTokenValidity: 3600,
            RedirectUris: [callback],
        });
        expect([...app.PredefinedScopes].sort()).toEqual(["/acs/mcp-server", "openid"]);
        const secrets = servers.alibaba.appSecrets(app.AppId);
        expect(secrets).toHaveLength(1);
        issuedClientSecret = secrets[0].AppSecretValue;

        const [mcpServer] = servers.alibaba.mcpServers();
        expect(servers.alibaba.mcpServers()).toHaveLength(1);
        expect(mcpServer).toMatchObject({ id: outputs.mcpServerId, name: "e2e-mcp", oauthClientId: app.AppId });
        expect(outputs.mcpServerUrl).toBe(`${servers.mcp.url}/accounts/${servers.alibaba.accountId}/custom/e2e-mcp/id/${mcpServer.id}/mcp`);

        expect(await dify.accountEmails()).toEqual([E2E_ADMIN_EMAIL]);
        // Dify 1.14 with the app as preset OAuth client, secret included (shown masked; the token exchange in 2b
        // proves the secret itself).
        expect(await mcpProvider()).toMatchObject({
            serverIdentifier: SERVER_IDENTIFIER,
            serverUrlHash: urlHash(outputs.mcpServerUrl as string),
            maskedClientId: maskDifyCredential(app.AppId),
            maskedClientSecret: maskDifyCredential(issuedClientSecret),
            isDynamicRegistration: false,
            authed: false,
            toolNames: [],
        });
        // Dify really went to the MCP server: refused without a token, it discovered the authorization server.
        expect(up.calls.mcpByKind).toMatchObject({ mcp: expect.any(Number), "protected-resource-metadata": 1, "authorization-server-metadata": 1 });
        expectAuthorizationUrl(outputs.mcpAuthorizationUrl, app.AppId);
        expect(outputs.mcpToolNames).toEqual([]);

        expect(await dify.plugins()).toEqual(["langgenius/tongyi"]);
        const credentials = await dify.tongyiCredentials();
        expect(credentials).toEqual([{ id: expect.any(String), name: "pulumi", shownKey: obfuscateDashscopeKey(E2E_SECRETS.dashscopeApiKey) }]);
        // Dify had the daemon validate the key itself.
        expect(await keyValidations(E2E_SECRETS.dashscopeApiKey)).toBe(1);
        expect(await dify.defaultModel("llm")).toEqual({ provider: TONGYI, model: "qwen-plus" });
        // Without the authorization the agent starts with no tools (waitForAuthorization is off).
        expect(await agentApp()).toMatchObject({ id: outputs.agentAppId, name: "ECS assistant", mode: "agent-chat", mcpTools: [] });
        expect(outputs.difyAdminPassword).toBe("[secret]");
    }, STEP_TIMEOUT);

    it("2b. once a person approves the MCP authorization, refresh reads the tools, up attaches them, and the smoke test passes", async () => {
        await approveRefreshAndUp();
        // The WebApp is a confidential client: Dify sent its secret, and the MCP server checked it against the app's.
        expect(servers.mcp.calls.filter((call) => call.kind === "token" && call.status === 200)).toHaveLength(1);
        await expectSmokePasses();
        // The stand-in qwen-plus was offered both tools and called the one the question needs.
        const llm = (await servers.dify.pluginDaemon!.calls()).filter((call) => call.llm?.answered === "tool_call").map((call) => call.llm);
        expect(llm).toEqual([expect.objectContaining({ tools: MCP_TOOLS, tool_name: E2E_SMOKE_TOOL })]);
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

    it("3b. a one-key change previews as an update of that key's resource only, for each updatable setting", async () => {
        // What a reviewer sees on a pull request. Each resource's dependents take values that stay known while it
        // is updated (its id, inputs it echoes, values pinned to them), so nothing downstream shows as [unknown].
        const cases: { key: keyof typeof E2E_CONFIG | "oauthAccessTokenValidity" | "oauthRefreshTokenValidity" | "llmModel" | "mcpProviderName" | "mcpApis"; value: string; changes: Record<string, string>; property: string }[] = [
            { key: "oauthAccessTokenValidity", value: "5400", changes: { [E2E_RESOURCES.oauthApp]: "update" }, property: "accessTokenValidity" },
            { key: "oauthRefreshTokenValidity", value: "86400", changes: { [E2E_RESOURCES.oauthApp]: "update" }, property: "refreshTokenValidity" },
            {
                key: "mcpApis",
                value: JSON.stringify([{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions", "DescribeInstances"] }]),
                changes: { [E2E_RESOURCES.mcpServer]: "update" },
                property: "apis",
            },
            { key: "adminName", value: "Pulumi E2E Ops", changes: { [E2E_RESOURCES.admin]: "update" }, property: "name" },
            { key: "mcpProviderName", value: "Alibaba Cloud Ops", changes: { [E2E_RESOURCES.mcpTools]: "update" }, property: "name" },
            { key: "agentAppName", value: "ECS helper", changes: { [E2E_RESOURCES.agent]: "update" }, property: "name" },
            { key: "agentSystemPrompt", value: "Say which region you queried.", changes: { [E2E_RESOURCES.agent]: "update" }, property: "systemPrompt" },
            // The model is also the agent's: both change, and nothing else.
            { key: "llmModel", value: "qwen-max", changes: { [E2E_RESOURCES.models]: "update", [E2E_RESOURCES.agent]: "update" }, property: "llmModel" },
        ];
        for (const { key, value, changes, property } of cases) {
            assertSucceeded(await stack.run(["config", "set", key, value]));
            const preview = await stack.preview(["--diff"]);
            const summary = summaryOf(preview);
            expect({ key, operations: changedOperations(summary) }).toEqual({ key, operations: Object.fromEntries(Object.entries(changes).map(([k, op]) => [k, [op]])) });
            const [first] = Object.keys(changes);
            expect({ key, changed: changedInputKeys(onlyStep(summary, first, "update")) }).toEqual({ key, changed: [property] });
            expect(preview.calls.writes).toBe(0);
            const original = (E2E_CONFIG as Record<string, string>)[key];
            assertSucceeded(await stack.run(original === undefined ? ["config", "rm", key] : ["config", "set", key, original]));
        }
        expect(summaryOf(await stack.preview()).changeSummary).toEqual({ same: ALL_RESOURCES.length + 1 });
    }, STEP_TIMEOUT * 2);

    it("4a. an updatable setting shows exactly that property in preview --diff, and up updates it in place", async () => {
        const appId = (await agentApp()).id;
        await stack.setConfig({ agentSystemPrompt: "List the user's ECS instances in Hangzhou first." });

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
        // Dify replaces the whole config: the prompt changed, the tools stayed.
        expect(await agentApp()).toMatchObject({
            id: appId,
            prePrompt: "List the user's ECS instances in Hangzhou first.",
            mcpTools: MCP_TOOLS.map((tool) => `${SERVER_IDENTIFIER}/${tool}`),
        });
    }, STEP_TIMEOUT);

    it("4b. an update of a resource others depend on is one API call; only its own step names the property", async () => {
        const appId = servers.alibaba.applications()[0].AppId;
        await stack.setConfig({ oauthAccessTokenValidity: 7200 });

        const preview = summaryOf(await stack.preview(["--diff"]));
        // The MCP server and Dify take the app's id and values pinned to it: the preview plans the app alone.
        expectOperations(preview, { [E2E_RESOURCES.oauthApp]: "update" });
        expect(changedInputKeys(onlyStep(preview, E2E_RESOURCES.oauthApp, "update"))).toEqual(["accessTokenValidity"]);

        const up = await stack.up();
        expectOperations(summaryOf(up), { [E2E_RESOURCES.oauthApp]: "update" });
        expect(up.writesDescribed).toBe("UpdateApplication×1");
        expect(servers.alibaba.applications()).toEqual([expect.objectContaining({ AppId: appId, AccessTokenValidity: 7200 })]);
        // Dify's authorization is untouched.
        expect(await mcpProvider()).toMatchObject({ authed: true, toolNames: MCP_TOOLS });
    }, STEP_TIMEOUT);

    it("4c. renaming the MCP server shows a replace; up creates the new server before deleting the old one, and Dify must be authorized anew", async () => {
        const oldServerId = servers.alibaba.mcpServers()[0].id;
        const { id: providerId, maskedClientId } = await mcpProvider();
        const appId = servers.alibaba.applications()[0].AppId;
        await stack.setConfig({ mcpServerName: "e2e-mcp-v2" });

        const preview = await stack.preview();
        const replace = onlyStep(summaryOf(preview), E2E_RESOURCES.mcpServer, "replace");
        expect(replace.replaceReasons).toEqual(["name"]);
        expect(preview.calls.writes).toBe(0);

        const up = await stack.up();
        const summary = summaryOf(up);
        // A new URL: Dify drops the tokens (the preset client goes along in the same PUT), so the provider reads as
        // unauthorized with no tools, and the agent loses its tools until the new consent.
        expectOperations(summary, {
            [E2E_RESOURCES.mcpServer]: ["create-replacement", "replace", "delete-replaced"],
            [E2E_RESOURCES.mcpTools]: "update",
            [E2E_RESOURCES.agent]: "update",
        });
        expect(up.calls.alibabaByAction).toEqual({ CreateApiMcpServer: 1, DeleteApiMcpServer: 1 });
        expect(up.writesDescribed).toBe(`CreateApiMcpServer×1, DeleteApiMcpServer×1, PUT ${MCP_ROUTE}×1, POST ${MCP_ROUTE}/auth×1, POST /apps/<id>/model-config×1`);
        const [server] = servers.alibaba.mcpServers();
        expect(servers.alibaba.mcpServers()).toHaveLength(1);
        expect(server.name).toBe("e2e-mcp-v2");
        expect(server.id).not.toBe(oldServerId);
        // The Dify registration follows the new URL in place, keeping its preset client.
        const outputs = await stack.outputs();
        expect(await mcpProvider()).toMatchObject({
            id: providerId,
            serverUrlHash: urlHash(outputs.mcpServerUrl as string),
            maskedClientId,
            authed: false,
            toolNames: [],
        });
        expect(String(outputs.mcpServerUrl)).toContain("/custom/e2e-mcp-v2/");
        expectAuthorizationUrl(outputs.mcpAuthorizationUrl, appId);
        expect(outputs.mcpToolNames).toEqual([]);
        expect((await agentApp()).mcpTools).toEqual([]);
    }, STEP_TIMEOUT);

    it("4d. changing the OAuth app type replaces it, deleting the old app first (names are unique)", async () => {
        const oldAppId = servers.alibaba.applications()[0].AppId;
        const serverId = servers.alibaba.mcpServers()[0].id;
        const providerId = (await mcpProvider()).id;
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
        // Dify holds the new client, with no secret, and asks for consent for it.
        expect(await mcpProvider()).toMatchObject({ id: providerId, maskedClientId: maskDifyCredential(app.AppId), maskedClientSecret: "", isDynamicRegistration: false });
        expectAuthorizationUrl((await stack.outputs()).mcpAuthorizationUrl, app.AppId);
        // A NativeApp has no client secret; a preview must still see every output as known and plan nothing.
        expect(summaryOf(await stack.preview()).changeSummary).toEqual({ same: ALL_RESOURCES.length + 1 });
    }, STEP_TIMEOUT);

    it("4e. rotating the DashScope key (a secret) updates the Dify credential in place", async () => {
        const [credential] = await dify.tongyiCredentials();
        assertSucceeded(await stack.run(["config", "set", "--secret", "dashscopeApiKey", ROTATED_DASHSCOPE_KEY]));

        // The engine masks both values, so the plan names the resource but cannot show the property.
        const preview = await stack.preview();
        expectOperations(summaryOf(preview), { [E2E_RESOURCES.models]: "update" });
        expect(preview.calls.writes).toBe(0);

        const up = await stack.up();
        expectOperations(summaryOf(up), { [E2E_RESOURCES.models]: "update" });
        expect(up.writesDescribed).toBe("PUT /workspaces/current/model-providers/<path>/credentials×1");
        expect(await dify.tongyiCredentials()).toEqual([{ id: credential.id, name: credential.name, shownKey: obfuscateDashscopeKey(ROTATED_DASHSCOPE_KEY) }]);
        expect(await keyValidations(ROTATED_DASHSCOPE_KEY)).toBe(1);
    }, STEP_TIMEOUT);

    it("5. objects deleted out of band show up in refresh as deletions and the next up re-creates them", async () => {
        const [server] = servers.alibaba.mcpServers();
        const app = await agentApp();
        servers.alibaba.deleteMcpServerOutOfBand(server.id);
        // As a person in Dify's console would.
        await dify.deleteApp(app.id);

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
        const outputs = await stack.outputs();
        expect(outputs.mcpServerUrl).toContain(`/id/${recreated.id}/`);
        expect((await mcpProvider()).serverUrlHash).toBe(urlHash(outputs.mcpServerUrl as string));
        expect((await agentApp()).id).not.toBe(app.id);

        const again = await stack.up();
        expectOperations(summaryOf(again), {});
        expect(again.calls.writes, again.writesDescribed).toBe(0);
    }, STEP_TIMEOUT);

    it("5b. approving again for the NativeApp (a public client: PKCE, no secret) gives the agent its tools back, and the smoke passes", async () => {
        const tokenCalls = servers.mcp.calls.filter((call) => call.kind === "token").length;
        await approveRefreshAndUp();
        // Dify sent no client secret for the public client (the MCP server refuses one from a public client).
        expect(servers.mcp.calls.filter((call) => call.kind === "token").length).toBe(tokenCalls + 1);
        await expectSmokePasses();
    }, STEP_TIMEOUT);

    it("5c. refresh of an authorized provider whose MCP server was deleted out of band plans the server's re-creation", async () => {
        const [server] = servers.alibaba.mcpServers();
        servers.alibaba.deleteMcpServerOutOfBand(server.id);

        const refresh = await stack.refresh();
        // Dify answers the tool listing with 400 "Failed to connect to MCP server: ... 404 Not Found": that is
        // the MCP server's answer, not a sign that Dify's provider is gone (this failed the refresh once).
        expect(refresh.status, `${refresh.stdout}\n${refresh.stderr}`).toBe(0);
        const refreshed = summaryOf(refresh);
        expectOperations(refreshed, { [E2E_RESOURCES.mcpServer]: "delete" });
        expect(refresh.calls.writes, refresh.writesDescribed).toBe(0);
        // The provider could not list its tools, which says nothing about the tokens: it stays authorized.
        // (The provider's console.warn reaches the engine's event stream as provider output, not as a warning.)
        expect(refresh.stdout).toContain("listing the tools of MCP server");
        expect(await stateOutputs(E2E_RESOURCES.mcpTools)).toMatchObject({ authorized: true, toolNames: MCP_TOOLS });
    }, STEP_TIMEOUT);

    it("5d. up re-creates the MCP server; Dify follows the new URL and needs a new consent", async () => {
        expect(servers.alibaba.mcpServers()).toEqual([]);
        const up = await stack.up();
        expectOperations(summaryOf(up), {
            [E2E_RESOURCES.mcpServer]: "create",
            [E2E_RESOURCES.mcpTools]: "update",
            [E2E_RESOURCES.agent]: "update",
        });
        const outputs = await stack.outputs();
        expect(servers.alibaba.mcpServers()).toEqual([expect.objectContaining({ id: outputs.mcpServerId, name: "e2e-mcp-v2" })]);
        expect(await mcpProvider()).toMatchObject({ serverUrlHash: urlHash(outputs.mcpServerUrl as string), authed: false, toolNames: [] });
        expectAuthorizationUrl(outputs.mcpAuthorizationUrl, servers.alibaba.applications()[0].AppId);
        expect((await agentApp()).mcpTools).toEqual([]);
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
        expect(await dify.mcpProviders()).toEqual([]);
        expect(await dify.agentApps()).toEqual([]);
        expect(await dify.plugins()).toEqual([]);
        expect(await dify.tongyiCredentials()).toEqual([]);
        // Dify has no route that undoes its setup: the admin account stays (DifyAdmin's delete is a no-op).
        expect(await dify.accountEmails()).toEqual([E2E_ADMIN_EMAIL]);

        const again = await stack.destroy();
        const second = summaryOf(again);
        expect(second.steps).toEqual([]);
        expect(second.changeSummary).toEqual({});
        expect(again.calls.reads + again.calls.writes + again.calls.difyAuth).toBe(0);
        const state = JSON.parse(await stack.exportState()) as { deployment: { resources?: unknown[] } };
        expect(state.deployment.resources ?? []).toEqual([]);
        // Nothing in Dify's processes tried to reach beyond 127.0.0.1 in the whole run (tests/harness/real-dify).
        expect(servers.dify.refusedConnections()).toEqual([]);
    }, STEP_TIMEOUT);
});
