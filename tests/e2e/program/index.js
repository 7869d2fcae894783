// The end-to-end test program: the project's real dynamic resources, wired as the deployment wires them, against
// Dify's real API server (through a recording proxy) and the local Alibaba-like API server, whose addresses come
// from stack config (tests/e2e/e2e-stack.ts). Plain JavaScript requiring the compiled classes in dist/, so the
// engine runs it without compiling TypeScript on every step.
// Alibaba credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment of
// `pulumi` (the providers use the default credential chain), never from config.
"use strict";
const pulumi = require("@pulumi/pulumi");
const { RamOAuthApplication } = require("../../../dist/dynamic-providers/alibaba/ram-oauth-app");
const { OpenApiMcpServer } = require("../../../dist/dynamic-providers/alibaba/openapi-mcp-server");
const { DifyReadiness } = require("../../../dist/dynamic-providers/dify/readiness");
const { DifyAdmin } = require("../../../dist/dynamic-providers/dify/admin");
const { DifyMcpToolProvider } = require("../../../dist/dynamic-providers/dify/mcp-tool-provider");
const { DifyModelProvider } = require("../../../dist/dynamic-providers/dify/model-provider");
const { DifyAgentApp } = require("../../../dist/dynamic-providers/dify/agent-app");

const config = new pulumi.Config();
const alibabaEndpoint = config.require("alibabaEndpoint");
const difyUrl = config.require("difyUrl");
// Short waits: the local servers answer within a second.
const pollSeconds = config.getNumber("pollSeconds") ?? 0.1;

// Stands in for DifyHost's readiness wait on the ECS instance (there is no instance here).
const readiness = new DifyReadiness("dify-ready", {
    difyUrl,
    instanceId: config.get("instanceId") ?? "i-e2e-local",
    timeoutSeconds: 30,
    pollIntervalSeconds: pollSeconds,
});

// From here on, the same resources and wiring as index.ts.
const oauthApp = new RamOAuthApplication("mcp-oauth", {
    appName: config.get("oauthAppName") ?? "dify-mcp-e2e",
    // WebApp: the app gets a client secret, which must stay a secret all the way into Dify.
    appType: config.get("oauthAppType") ?? "WebApp",
    accessTokenValidity: config.getNumber("accessTokenValidity") ?? 3600,
    consoleApiUrl: difyUrl,
    endpoint: alibabaEndpoint,
});

const mcpServer = new OpenApiMcpServer("openapi-mcp", {
    name: config.get("mcpServerName") ?? "e2e-mcp",
    description: config.get("mcpServerDescription") ?? "ECS read-only tools for the Dify agent",
    oauthClientId: oauthApp.appId,
    endpoint: alibabaEndpoint,
});

const admin = new DifyAdmin(
    "dify-admin",
    {
        difyUrl,
        email: config.get("adminEmail") ?? "admin@example.com",
        name: config.get("adminName") ?? "Pulumi E2E",
        password: config.requireSecret("adminPassword"),
        readyTimeoutSeconds: 30,
        readyPollSeconds: pollSeconds,
    },
    { dependsOn: [readiness] },
);
const connection = { difyUrl: admin.difyUrl, adminEmail: admin.email, adminPassword: admin.password };

const qwen = new DifyModelProvider("qwen", {
    ...connection,
    dashscopeApiKey: config.requireSecret("dashscopeApiKey"),
    llmModel: config.get("llmModel") ?? "qwen-plus",
    installPollSeconds: pollSeconds,
});

const mcpTools = new DifyMcpToolProvider(
    "openapi-mcp",
    {
        ...connection,
        name: config.get("mcpProviderName") ?? "Alibaba Cloud OpenAPI",
        serverIdentifier: "alibaba-openapi",
        serverUrl: mcpServer.mcpUrl,
        oauthClientId: oauthApp.appId,
        oauthClientSecret: oauthApp.clientSecret.apply((secret) => secret ?? ""),
    },
    { dependsOn: [qwen] },
);

const agent = new DifyAgentApp(
    "ops-agent",
    {
        ...connection,
        name: config.get("agentName") ?? "ECS assistant",
        systemPrompt: config.get("agentPrompt") ?? "Answer questions about the user's ECS instances with the Alibaba Cloud tools.",
        model: qwen.llmModel,
        mcpServerIdentifier: mcpTools.serverIdentifier,
        mcpToolNames: mcpTools.toolNames,
    },
    { dependsOn: [qwen] },
);

module.exports = {
    // What the smoke test (scripts/smoke.ts) reads: difyUrl, difyAdminEmail, difyAdminPassword, agentAppId.
    difyUrl: admin.difyUrl,
    difyAdminEmail: admin.email,
    oauthAppId: oauthApp.appId,
    mcpServerId: mcpServer.serverId,
    mcpServerUrl: mcpServer.mcpUrl,
    difyVersion: admin.difyVersion,
    difyAdminPassword: pulumi.secret(admin.password),
    mcpAuthorizationUrl: mcpTools.authorizationUrl,
    mcpToolNames: mcpTools.toolNames,
    agentAppId: agent.appId,
    agentAppConsoleUrl: agent.consoleUrl,
};
