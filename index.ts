import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DifyNetwork } from "./components/network";
import { DifySecurityGroup } from "./components/security-group";
import { DifyHost } from "./components/dify-host";
import { resolveImageId, resolvePlacement } from "./config/placement";
import { StackConfigError, parseStackSettings } from "./config/stack-config";
import { parseIntegrationSettings } from "./config/integration-config";
import { RamOAuthApplication } from "./dynamic-providers/alibaba/ram-oauth-app";
import { OpenApiMcpServer } from "./dynamic-providers/alibaba/openapi-mcp-server";
import { DifyAdmin } from "./dynamic-providers/dify/admin";
import { DifyModelProvider } from "./dynamic-providers/dify/model-provider";
import { DifyMcpToolProvider } from "./dynamic-providers/dify/mcp-tool-provider";
import { DifyAgentApp } from "./dynamic-providers/dify/agent-app";

// Read and validate every setting first, so a bad value fails `pulumi preview` before anything is planned.
// All problems are reported together, as a RunError: just the message (each problem naming its key), no trace.
const config = new pulumi.Config();
const configProblems: string[] = [];
function collected<T>(parse: () => T): T | undefined {
    try {
        return parse();
    } catch (error) {
        if (error instanceof StackConfigError) {
            configProblems.push(...error.problems);
            return undefined;
        }
        throw error;
    }
}
const parsedStack = collected(() =>
    parseStackSettings(
        { get: (key) => config.get(key) },
        { stack: pulumi.getStack(), region: new pulumi.Config("alicloud").get("region") ?? process.env.ALICLOUD_REGION },
    ),
);
const parsedIntegration = collected(() => parseIntegrationSettings({ get: (key) => config.get(key) }, { stack: pulumi.getStack() }));
if (parsedStack === undefined || parsedIntegration === undefined) {
    throw new pulumi.RunError(new StackConfigError(configProblems).message);
}
const { settings, warnings } = parsedStack;
const integration = parsedIntegration;
const dashscopeApiKey = config.requireSecret("dashscopeApiKey");
for (const warning of warnings) {
    pulumi.log.warn(warning);
}

// The stack's own tags last: a user tag never replaces them (the config parser refuses those keys too).
const tags = { ...settings.tags, "managed-by": "pulumi", project: pulumi.getProject(), stack: pulumi.getStack() };

const placement = resolvePlacement(settings);

const network = new DifyNetwork("dify", {
    namePrefix: settings.namePrefix,
    vpcCidr: settings.vpcCidr,
    vswitchCidr: settings.vswitchCidr,
    zoneId: placement.zoneId,
    tags,
});

const securityGroup = new DifySecurityGroup("dify", {
    namePrefix: settings.namePrefix,
    vpcId: network.vpcId,
    allowedCidrs: settings.allowedCidrs,
    adminCidr: settings.adminCidr,
    httpsEnabled: settings.domain !== undefined,
    tags,
});

const host = new DifyHost("dify", {
    namePrefix: settings.namePrefix,
    zoneId: network.zoneId,
    vswitchId: network.vswitchId,
    securityGroupId: securityGroup.securityGroupId,
    instanceType: placement.instanceType,
    instanceCpuCores: placement.cpuCoreCount,
    instanceMemoryGib: placement.memorySize,
    imageId: resolveImageId(settings, placement.instanceType),
    imageFromLookup: settings.imageId === undefined,
    instanceChargeType: settings.instanceChargeType,
    systemDiskCategory: settings.systemDiskCategory,
    systemDiskSize: settings.systemDiskSize,
    dataDiskCategory: settings.dataDiskCategory,
    dataDiskSize: settings.dataDiskSize,
    dataDiskSnapshotRetentionDays: settings.dataDiskSnapshotRetentionDays,
    protectDataDisk: settings.protectDataDisk,
    encryptDataDisk: settings.encryptDataDisk,
    dataDiskKmsKeyId: settings.dataDiskKmsKeyId,
    requireMetadataTokens: settings.requireMetadataTokens,
    eipBandwidthMbps: settings.eipBandwidthMbps,
    sshPublicKey: settings.sshPublicKey,
    difyVersion: settings.difyVersion,
    domain: settings.domain,
    certEmail: settings.certEmail,
    registryMirrors: settings.registryMirrors,
    pipMirrorUrl: settings.pipMirrorUrl,
    readinessTimeoutMinutes: settings.readinessTimeoutMinutes,
    tags,
});

// --- Alibaba Cloud: the RAM OAuth 2.1 app Dify signs in with, and the OpenAPI MCP server it protects -------
const oauthApp = new RamOAuthApplication("mcp-oauth", {
    appName: integration.oauthAppName,
    appType: integration.oauthAppType,
    accessTokenValidity: integration.oauthAccessTokenValidity,
    refreshTokenValidity: integration.oauthRefreshTokenValidity,
    // The redirect URI defaults to Dify's <CONSOLE_API_URL>/console/api/mcp/oauth/callback.
    consoleApiUrl: host.difyUrl,
    endpoint: integration.imsEndpoint,
});

const mcpServer = new OpenApiMcpServer("openapi-mcp", {
    name: integration.mcpServerName,
    apis: integration.mcpApis,
    oauthClientId: oauthApp.appId,
    site: integration.mcpSite,
    endpoint: integration.mcpEndpoint,
});

// --- Dify: first admin, Qwen models, the MCP server registration and the agent that uses it --------------
const adminPassword =
    config.getSecret("adminPassword") ??
    new random.RandomPassword("dify-admin-password", { length: 24, special: false, minUpper: 2, minLower: 2, minNumeric: 2 }).result;

const admin = new DifyAdmin(
    "dify-admin",
    {
        difyUrl: host.difyUrl,
        email: integration.adminEmail,
        name: integration.adminName,
        password: adminPassword,
        initPassword: host.initPassword,
    },
    { dependsOn: [host.readiness] },
);
const connection = { difyUrl: admin.difyUrl, adminEmail: admin.email, adminPassword: admin.password };

const qwen = new DifyModelProvider("qwen", {
    ...connection,
    dashscopeApiKey,
    useInternationalEndpoint: integration.dashscopeInternational,
    llmModel: integration.llmModel,
    embeddingModel: integration.embeddingModel,
    pluginPackagePath: integration.tongyiPluginPackage,
});

// Registered after the models so its 5-minute authorization URL is issued near the end of the run.
const mcpTools = new DifyMcpToolProvider(
    "openapi-mcp",
    {
        ...connection,
        name: integration.mcpProviderName,
        serverIdentifier: integration.mcpServerIdentifier,
        serverUrl: mcpServer.mcpUrl,
        oauthClientId: oauthApp.appId,
        oauthClientSecret: oauthApp.clientSecret.apply((secret) => secret ?? ""),
        waitForAuthorization: integration.waitForAuthorization,
        authorizationTimeoutSeconds: integration.authorizationTimeoutSeconds,
    },
    { dependsOn: [qwen] },
);

const agent = new DifyAgentApp(
    "ops-agent",
    {
        ...connection,
        name: integration.agentAppName,
        systemPrompt: integration.agentSystemPrompt,
        model: qwen.llmModel,
        mcpServerIdentifier: mcpTools.serverIdentifier,
        // Empty until a person approves the OAuth consent; `pulumi up --refresh` then attaches the tools.
        mcpToolNames: mcpTools.toolNames,
    },
    { dependsOn: [qwen] },
);

export const difyUrl = host.difyUrl;
export const difyConsoleUrl = pulumi.interpolate`${host.difyUrl}/apps`;
export const publicIp = host.publicIp;
export const instanceId = host.instanceId;
export const instanceType = placement.instanceType;
export const zoneId = network.zoneId;
export const dataDiskId = host.dataDiskId;
export const mcpOAuthCallbackUrl = host.mcpOAuthCallbackUrl;
export const oauthAppId = oauthApp.appId;
export const mcpServerId = mcpServer.serverId;
export const mcpServerUrl = mcpServer.mcpUrl;
export const difyAdminEmail = admin.email;
// Secret already (the resource lists it in additionalSecretOutputs); wrapped again so the export never depends on it.
export const difyAdminPassword = pulumi.secret(admin.password);
export const mcpAuthorizationUrl = mcpTools.authorizationUrl;
export const mcpAuthorized = mcpTools.authorized;
export const mcpToolNames = mcpTools.toolNames;
export const agentAppId = agent.appId;
export const agentAppConsoleUrl = agent.consoleUrl;
