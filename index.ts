import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DifyNetwork } from "./components/network";
import { DifySecurityGroup } from "./components/security-group";
import { DifyHost } from "./components/dify-host";
import { AcrImageMirror } from "./components/acr-image-mirror";
import { AgentSmokeTest } from "./components/agent-smoke-test";
import { resolveHaZones, resolveImageId, resolvePlacement } from "./config/placement";
import { DifyHa } from "./components/ha/dify-ha";
import { StackConfigError, parseStackSettings } from "./config/stack-config";
import { parseIntegrationSettings } from "./config/integration-config";
import { createDifyMcpIntegration } from "./dynamic-providers/dify-mcp-integration";

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

/** What the integration and the stack outputs take from either topology; the rest is one topology's own. */
interface Deployment {
    difyUrl: pulumi.Output<string>;
    difyReady: pulumi.Resource[];
    initPassword: pulumi.Output<string>;
    mcpOAuthCallbackUrl: pulumi.Output<string>;
    /** single: the host; ha: the singleton. */
    instanceId: pulumi.Output<string>;
    instanceType: pulumi.Output<string>;
    acrSubscriptionRuleIds?: pulumi.Output<string[]>;
    publicIp?: pulumi.Output<string>;
    zoneId?: pulumi.Output<string>;
    dataDiskId?: pulumi.Output<string>;
    zoneIds?: pulumi.Output<[string, string]>;
    albDnsName?: pulumi.Output<string>;
    dnsInstructions?: pulumi.Output<string>;
    scalingGroupIds?: pulumi.Output<[string, string]>;
    rdsInstanceId?: pulumi.Output<string>;
    redisInstanceId?: pulumi.Output<string>;
    bucketName?: pulumi.Output<string>;
    natEipAddress?: pulumi.Output<string>;
}

/** Today's stack: one ECS instance running all of Dify (the default; its resources keep their URNs). */
function deploySingle(): Deployment {
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
        // HTTPS unless plainHttp: 443, and 80 for the redirect and Let's Encrypt's HTTP challenge.
        httpsEnabled: !settings.plainHttp,
        tags,
    });

    // imageSource acr: copies of the release's images in the existing ACR instance, reachable from the VPC.
    const imageMirror =
        settings.imageSource === "acr" && settings.acrInstanceId !== undefined
            ? new AcrImageMirror("dify", {
                  instanceId: settings.acrInstanceId,
                  region: settings.region,
                  difyVersion: settings.difyVersion,
                  vpcId: network.vpcId,
                  vswitchId: network.vswitchId,
                  platform: settings.cpuArchitecture === "arm64" ? "linux/arm64" : "linux/amd64",
              })
            : undefined;

    const host = new DifyHost("dify", {
        settings,
        network: { zoneId: network.zoneId, vswitchId: network.vswitchId, securityGroupId: securityGroup.securityGroupId },
        instance: {
            instanceType: placement.instanceType,
            cpuCores: placement.cpuCoreCount,
            memoryGib: placement.memorySize,
            imageId: resolveImageId(settings, placement.instanceType),
            imageFromLookup: settings.imageId === undefined,
        },
        tags,
        imageRegistry: imageMirror?.registryHost,
    });
    return {
        difyUrl: host.difyUrl,
        // Dify answers (readiness) and runs the stack's settings (configuration: an upgrade finishes first).
        difyReady: [host.readiness, host.configuration],
        initPassword: host.initPassword,
        mcpOAuthCallbackUrl: host.mcpOAuthCallbackUrl,
        publicIp: host.publicIp,
        instanceId: host.instanceId,
        instanceType: placement.instanceType,
        zoneId: network.zoneId,
        dataDiskId: host.dataDiskId,
        acrSubscriptionRuleIds: imageMirror?.subscriptionRuleIds,
    };
}

/** topology ha: RDS, Redis, OSS, app nodes in two zones behind an ALB, and the singleton (components/ha). */
function deployHa(): Deployment {
    const placement = resolveHaZones(settings);
    const ha = new DifyHa("dify", {
        settings,
        placement,
        imageId: resolveImageId(settings, placement.instanceType),
        tags,
    });
    return {
        difyUrl: ha.difyUrl,
        // The singleton is up and has migrated (its readiness waits for the app nodes' attachments too), and the app
        // nodes find its plugin daemon (the tongyi install goes through it).
        difyReady: ha.ready,
        initPassword: ha.initPassword,
        mcpOAuthCallbackUrl: ha.mcpOAuthCallbackUrl,
        instanceId: ha.appTier.singletonInstanceId,
        instanceType: placement.instanceType,
        zoneIds: ha.zoneIds,
        albDnsName: ha.albDnsName,
        dnsInstructions: ha.dnsInstructions,
        scalingGroupIds: ha.appTier.scalingGroupIds,
        rdsInstanceId: ha.dataTier.rdsInstanceId,
        redisInstanceId: ha.dataTier.redisInstanceId,
        bucketName: ha.dataTier.bucketName,
        natEipAddress: ha.network.natEipAddress,
        acrSubscriptionRuleIds: ha.imageMirror?.subscriptionRuleIds,
    };
}

const deployment: Deployment = settings.topology === "ha" ? deployHa() : deploySingle();

// --- The integration: RAM OAuth app, OpenAPI MCP server, and Dify's admin, models, MCP registration and agent ----
// Secret in either case (a RandomPassword's result is, through its provider; said here so it never depends on that).
const adminPassword = pulumi.secret(
    config.getSecret("adminPassword") ??
        new random.RandomPassword("dify-admin-password", { length: 24, special: false, minUpper: 2, minLower: 2, minNumeric: 2 }).result,
);

const { oauthApp, mcpServer, admin, mcpTools, agent } = createDifyMcpIntegration({
    settings: integration,
    difyUrl: deployment.difyUrl,
    difyReady: deployment.difyReady,
    adminPassword,
    initPassword: deployment.initPassword,
    dashscopeApiKey,
});

// Opt-in (smokeTestOnUp): the agent must answer through an MCP tool call before `up` succeeds.
if (integration.smokeTestOnUp) {
    new AgentSmokeTest("dify-smoke", {
        difyUrl: deployment.difyUrl,
        adminEmail: admin.email,
        adminPassword: admin.password,
        agentAppId: agent.appId,
        mcpAuthorized: mcpTools.authorized,
        authorizationUrl: mcpTools.authorizationUrl,
        extraTriggers: [mcpTools.toolNames, mcpServer.serverId, deployment.instanceId],
    });
}

export const difyUrl = deployment.difyUrl;
export const difyConsoleUrl = pulumi.interpolate`${deployment.difyUrl}/apps`;
export const publicIp = deployment.publicIp;
export const instanceId = deployment.instanceId;
export const instanceType = deployment.instanceType;
export const zoneId = deployment.zoneId;
export const dataDiskId = deployment.dataDiskId;
export const mcpOAuthCallbackUrl = deployment.mcpOAuthCallbackUrl;
// topology ha only (undefined, so not exported, for single).
export const zoneIds = deployment.zoneIds;
export const albDnsName = deployment.albDnsName;
export const dnsInstructions = deployment.dnsInstructions;
export const scalingGroupIds = deployment.scalingGroupIds;
export const rdsInstanceId = deployment.rdsInstanceId;
export const redisInstanceId = deployment.redisInstanceId;
export const bucketName = deployment.bucketName;
export const natEipAddress = deployment.natEipAddress;
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
export const acrSubscriptionRuleIds = deployment.acrSubscriptionRuleIds;
