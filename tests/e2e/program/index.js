// The end-to-end test program: the project's own configuration parser and integration wiring
// (dynamic-providers/dify-mcp-integration.ts, the module index.ts calls), against Dify's real API server (through a
// recording proxy) and the local Alibaba-like API server, whose addresses come from stack config
// (tests/e2e/e2e-stack.ts). Only the host differs: there is no ECS instance, so a DifyReadiness stands in for
// DifyHost's wait. Plain JavaScript requiring the compiled modules in dist/, so the engine runs it without compiling
// TypeScript on every step.
// Alibaba credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment of
// `pulumi` (the providers use the default credential chain), never from config.
"use strict";
const pulumi = require("@pulumi/pulumi");
const { parseIntegrationSettings } = require("../../../dist/config/integration-config");
const { createDifyMcpIntegration } = require("../../../dist/dynamic-providers/dify-mcp-integration");
const { DifyReadiness } = require("../../../dist/dynamic-providers/dify/readiness");

const config = new pulumi.Config();
// The local servers speak http, which the stack's endpoint settings refuse: they come from keys of their own.
const alibabaEndpoint = config.require("alibabaEndpoint");
const difyUrl = config.require("difyUrl");
// Short waits: the local servers answer within a second.
const pollSeconds = config.getNumber("pollSeconds") ?? 0.1;

const settings = {
    ...parseIntegrationSettings({ get: (key) => config.get(key) }, { stack: pulumi.getStack() }),
    imsEndpoint: alibabaEndpoint,
    mcpEndpoint: alibabaEndpoint,
};

// Stands in for DifyHost's readiness wait on the ECS instance.
const readiness = new DifyReadiness("dify-ready", {
    difyUrl,
    instanceId: config.get("instanceId") ?? "i-e2e-local",
    timeoutSeconds: 30,
    pollIntervalSeconds: pollSeconds,
});

const { oauthApp, mcpServer, admin, mcpTools, agent } = createDifyMcpIntegration({
    settings,
    difyUrl,
    difyReady: [readiness],
    adminPassword: config.requireSecret("adminPassword"),
    dashscopeApiKey: config.requireSecret("dashscopeApiKey"),
    timing: { readyTimeoutSeconds: 30, readyPollSeconds: pollSeconds, installPollSeconds: pollSeconds },
});

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
