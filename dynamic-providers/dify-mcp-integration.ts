// The integration half of the program, written once: the RAM OAuth app and the OpenAPI MCP server on Alibaba
// Cloud, then Dify's admin, Qwen models, MCP registration and agent app. index.ts calls it with DifyHost's outputs;
// the real-engine e2e program (tests/e2e/program) calls the compiled module with local servers' addresses, so the
// suite runs the program's own wiring.
//
// Resources are created without a parent, under the names they always had: their URNs are those of the stacks
// deployed before this module existed.
//
// Dependents are wired to values that stay known while they cannot change. During a preview the engine does not
// know the outputs of a dynamic resource that is being updated (the dynamic-provider host cannot report stable
// outputs); inputs it echoes and its id stay known. So the OAuth client id is the app's id (its AppId), and values
// that are fixed for a known key travel with that key (see `pinned` in engine/diff.ts): a one-key change then
// previews as one update.
import * as pulumi from "@pulumi/pulumi";
import type { IntegrationSettings } from "../config/integration-config";
import { OpenApiMcpServer } from "./alibaba/openapi-mcp-server";
import { RamOAuthApplication } from "./alibaba/ram-oauth-app";
import { DifyAdmin } from "./dify/admin";
import { DifyAgentApp } from "./dify/agent-app";
import { DifyMcpToolProvider } from "./dify/mcp-tool-provider";
import { DifyModelProvider } from "./dify/model-provider";

export interface DifyMcpIntegrationArgs {
    /** The parsed integration settings (config/integration-config.ts). Each resource's Args say what a change does. */
    settings: IntegrationSettings;
    /** Dify's public URL (`DifyHost.difyUrl`); also the RAM app's redirect URI base. Changing it updates every Dify resource. */
    difyUrl: pulumi.Input<string>;
    /**
     * What the Dify admin waits for before its first call: `DifyHost.readiness` (Dify answers) and
     * `DifyHost.configuration` (it runs the stack's settings; an upgrade in place finishes first).
     */
    difyReady: pulumi.Resource[];
    /** The first admin's password: a Pulumi secret. Changing it changes the admin's password in Dify. */
    adminPassword: pulumi.Input<string>;
    /** Dify's INIT_PASSWORD (`DifyHost.initPassword`), a Pulumi secret; unset when Dify needs none. */
    initPassword?: pulumi.Input<string>;
    /** The DashScope API key, a Pulumi secret. Changing it updates the Qwen credential in place. */
    dashscopeApiKey: pulumi.Input<string>;
    /**
     * Waits and polling of the Dify resources. Default: each resource's own (minutes, for a fresh ECS instance);
     * the e2e program shortens them against local servers.
     */
    timing?: {
        readyTimeoutSeconds?: number;
        readyPollSeconds?: number;
        installPollSeconds?: number;
    };
}

/** The resources of the integration, for the program's stack outputs. */
export interface DifyMcpIntegration {
    readonly oauthApp: RamOAuthApplication;
    readonly mcpServer: OpenApiMcpServer;
    readonly admin: DifyAdmin;
    readonly models: DifyModelProvider;
    readonly mcpTools: DifyMcpToolProvider;
    readonly agent: DifyAgentApp;
}

export function createDifyMcpIntegration(args: DifyMcpIntegrationArgs): DifyMcpIntegration {
    const { settings, timing } = args;

    // --- Alibaba Cloud: the RAM OAuth 2.1 app Dify signs in with, and the OpenAPI MCP server it protects --------
    const oauthApp = new RamOAuthApplication("mcp-oauth", {
        appName: settings.oauthAppName,
        appType: settings.oauthAppType,
        accessTokenValidity: settings.oauthAccessTokenValidity,
        refreshTokenValidity: settings.oauthRefreshTokenValidity,
        // The redirect URI defaults to Dify's <CONSOLE_API_URL>/console/api/mcp/oauth/callback.
        consoleApiUrl: args.difyUrl,
        endpoint: settings.imsEndpoint,
    });
    // The resource id is the AppId, the OAuth client id: known even while the app is being updated.
    const oauthClientId = oauthApp.id;

    const mcpServer = new OpenApiMcpServer("openapi-mcp", {
        name: settings.mcpServerName,
        apis: settings.mcpApis,
        oauthClientId,
        site: settings.mcpSite,
        endpoint: settings.mcpEndpoint,
    });

    // --- Dify: first admin, Qwen models, the MCP server registration and the agent that uses it ---------------
    const admin = new DifyAdmin(
        "dify-admin",
        {
            difyUrl: args.difyUrl,
            email: settings.adminEmail,
            name: settings.adminName,
            password: args.adminPassword,
            initPassword: args.initPassword,
            readyTimeoutSeconds: timing?.readyTimeoutSeconds,
            readyPollSeconds: timing?.readyPollSeconds,
        },
        { dependsOn: args.difyReady },
    );
    // Inputs the admin echoes: known through its updates.
    const connection = { difyUrl: admin.difyUrl, adminEmail: admin.email, adminPassword: admin.password };

    const models = new DifyModelProvider("qwen", {
        ...connection,
        dashscopeApiKey: args.dashscopeApiKey,
        useInternationalEndpoint: settings.dashscopeInternational,
        llmModel: settings.llmModel,
        embeddingModel: settings.embeddingModel,
        pluginPackagePath: settings.tongyiPluginPackage,
        installPollSeconds: timing?.installPollSeconds,
    });

    // Registered after the models so its 5-minute authorization URL is issued near the end of the run.
    const mcpTools = new DifyMcpToolProvider(
        "openapi-mcp",
        {
            ...connection,
            name: settings.mcpProviderName,
            serverIdentifier: settings.mcpServerIdentifier,
            // Fixed for the server's id (Alibaba puts the id in the URL, and an update keeps it).
            serverUrl: mcpServer.mcpUrl,
            mcpServerId: mcpServer.id,
            oauthClientId,
            // Fixed for the client id: the app's secret is issued with it.
            oauthClientSecret: oauthApp.clientSecret.apply((secret) => secret ?? ""),
            waitForAuthorization: settings.waitForAuthorization,
            authorizationTimeoutSeconds: settings.authorizationTimeoutSeconds,
        },
        { dependsOn: [models] },
    );

    const agent = new DifyAgentApp(
        "ops-agent",
        {
            ...connection,
            name: settings.agentAppName,
            systemPrompt: settings.agentSystemPrompt,
            model: models.llmModel,
            mcpServerIdentifier: mcpTools.serverIdentifier,
            // Empty until a person approves the OAuth consent; `pulumi up --refresh` then attaches the tools.
            mcpToolNames: mcpTools.toolNames,
            // What the tool list is fixed for: the registration, the server it points to and the client it signs in as.
            mcpToolsSource: pulumi.interpolate`${mcpTools.id} ${mcpTools.serverUrl} ${mcpTools.oauthClientId}`,
        },
        { dependsOn: [models] },
    );

    return { oauthApp, mcpServer, admin, models, mcpTools, agent };
}
