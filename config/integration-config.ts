/**
 * Settings of the Alibaba Cloud and Dify side of the stack: the RAM OAuth app, the OpenAPI MCP server, Dify's
 * admin, model provider, MCP registration and agent app. Secrets (the DashScope key, an adopted admin password)
 * are read by index.ts with `config.requireSecret`/`getSecret` so they stay Pulumi secrets.
 */
import { DIFY_ACCOUNT_NAME_RULE, isDifyAccountName } from "../rules/dify-account";
import { ConfigReader, ConfigSource, StackConfigError } from "./stack-config";
import { SPECIAL_CHARACTERS_TEXT, httpsEndpointProblem, shownUrl } from "../rules/input-rules";
import { EMAIL_RULE, isEmailAddress } from "../rules/email";
import {
    ACCESS_TOKEN_VALIDITY_RANGE,
    DEFAULT_RAM_OAUTH_APP_TYPE,
    RAM_OAUTH_APP_TYPES,
    REFRESH_TOKEN_VALIDITY_RANGE,
    RamOAuthAppType,
} from "../rules/ram-oauth-app";
import { ALIBABA_CLOUD_SITES, AlibabaCloudSite, DEFAULT_ALIBABA_CLOUD_SITE, McpApiSelection } from "../rules/openapi-mcp";
import {
    DIFY_MCP_SERVER_IDENTIFIER_PATTERN,
    DIFY_MCP_SERVER_IDENTIFIER_RULE,
    MCP_SERVER_NAME_PATTERN,
    MCP_SERVER_NAME_RULE,
} from "../rules/mcp-names";

export interface IntegrationSettings {
    oauthAppName: string;
    oauthAppType: RamOAuthAppType;
    oauthAccessTokenValidity: number;
    oauthRefreshTokenValidity?: number;
    imsEndpoint?: string;
    mcpServerName: string;
    /** Unset: the provider's default (ECS DescribeRegions, DescribeInstances, DescribeInstanceStatus). */
    mcpApis?: McpApiSelection[];
    mcpSite: AlibabaCloudSite;
    mcpEndpoint?: string;
    adminEmail: string;
    adminName: string;
    llmModel: string;
    embeddingModel: string;
    dashscopeInternational: boolean;
    tongyiPluginPackage?: string;
    mcpProviderName: string;
    mcpServerIdentifier: string;
    waitForAuthorization: boolean;
    authorizationTimeoutSeconds: number;
    agentAppName: string;
    agentSystemPrompt: string;
    /**
     * Run the smoke test (`npm run smoke`: the agent answers a question through an MCP tool call) at the end of
     * every `pulumi up` that changes the agent's wiring, and fail the `up` when it fails. Default false. Needs the
     * MCP authorization done (`mcpAuthorized`), and the `command` provider plugin where `up` runs.
     */
    smokeTestOnUp: boolean;
}

export const INTEGRATION_DEFAULTS = {
    oauthAppType: DEFAULT_RAM_OAUTH_APP_TYPE,
    oauthAccessTokenValidity: ACCESS_TOKEN_VALIDITY_RANGE.standard,
    mcpSite: DEFAULT_ALIBABA_CLOUD_SITE,
    adminName: "Admin",
    llmModel: "qwen-plus",
    embeddingModel: "text-embedding-v4",
    dashscopeInternational: false,
    mcpProviderName: "Alibaba Cloud OpenAPI",
    mcpServerIdentifier: "aliyun-openapi",
    waitForAuthorization: false,
    authorizationTimeoutSeconds: 600,
    smokeTestOnUp: false,
    agentAppName: "Alibaba Cloud Ops Agent",
    agentSystemPrompt:
        "You are an Alibaba Cloud operations assistant. Use the Alibaba Cloud OpenAPI tools to answer questions about the user's resources and say which region you queried.",
} as const;

/** A local plugin package: an absolute path of letters, digits and ._+@- segments, ending in ".difypkg". */
const PLUGIN_PACKAGE_PATTERN = /^(?:\/[A-Za-z0-9._+@-]+)+\.difypkg$/;

/** A per-stack default name that fits the MCP server's name rule (MCP_SERVER_NAME_RULE), kept short: 16 characters at most. */
function defaultMcpServerName(stack: string): string {
    const slug = `dify-${stack}`.toLowerCase().replace(/[^a-z0-9_-]/g, "-");
    return slug.slice(0, 16).replace(/-+$/, "");
}

function mcpApisFrom(r: ConfigReader): McpApiSelection[] | undefined {
    const raw = r.raw("mcpApis");
    if (raw === undefined) {
        return undefined;
    }
    try {
        const parsed: unknown = JSON.parse(raw);
        if (
            Array.isArray(parsed) &&
            parsed.every(
                (api) =>
                    api !== null &&
                    typeof api === "object" &&
                    typeof (api as McpApiSelection).product === "string" &&
                    typeof (api as McpApiSelection).apiVersion === "string" &&
                    Array.isArray((api as McpApiSelection).selectors),
            )
        ) {
            return parsed as McpApiSelection[];
        }
    } catch {
        // reported below
    }
    r.problem("mcpApis", "must be a list of {product, apiVersion, selectors} objects, e.g. [{product: Ecs, apiVersion: '2014-05-26', selectors: [DescribeInstances]}]");
    return undefined;
}

/** Reads and validates the integration settings; throws `StackConfigError` listing every problem. */
export function parseIntegrationSettings(source: ConfigSource, context: { stack: string }): IntegrationSettings {
    const r = new ConfigReader(source);
    const d = INTEGRATION_DEFAULTS;

    const adminEmail = r.string("adminEmail");
    if (adminEmail === undefined) {
        r.problem("adminEmail", 'is not set; it is the first Dify admin\'s login, e.g. "pulumi config set adminEmail ops@example.com"');
    } else if (!isEmailAddress(adminEmail)) {
        r.problem("adminEmail", `is ${JSON.stringify(adminEmail)}; allowed: ${EMAIL_RULE}`);
    }
    const adminName = r.string("adminName", d.adminName);
    if (!isDifyAccountName(adminName)) {
        r.problem("adminName", `is "${adminName}"; allowed: ${DIFY_ACCOUNT_NAME_RULE}`);
    }
    const mcpServerIdentifier = r.string("mcpServerIdentifier", d.mcpServerIdentifier);
    if (!DIFY_MCP_SERVER_IDENTIFIER_PATTERN.test(mcpServerIdentifier)) {
        r.problem("mcpServerIdentifier", `is "${mcpServerIdentifier}"; allowed: ${DIFY_MCP_SERVER_IDENTIFIER_RULE}`);
    }
    const mcpServerName = r.string("mcpServerName", defaultMcpServerName(context.stack));
    if (!MCP_SERVER_NAME_PATTERN.test(mcpServerName)) {
        r.problem("mcpServerName", `is "${mcpServerName}"; allowed: ${MCP_SERVER_NAME_RULE}`);
    }

    // 0 (the declared default) means the API's default for the app type.
    const { min: refreshMin, max: refreshMax } = REFRESH_TOKEN_VALIDITY_RANGE;
    const refreshTokenValidity = r.integer("oauthRefreshTokenValidity", 0, 0, refreshMax);
    if (refreshTokenValidity > 0 && refreshTokenValidity < refreshMin) {
        r.problem("oauthRefreshTokenValidity", `is "${refreshTokenValidity}"; allowed: a whole number from ${refreshMin} to ${refreshMax}, or 0 for the default`);
    }

    // Alibaba Cloud API endpoints: https only (the providers also take http, for tests against local servers).
    const endpoints: Record<"imsEndpoint" | "mcpEndpoint", string | undefined> = { imsEndpoint: undefined, mcpEndpoint: undefined };
    for (const [key, example] of [["imsEndpoint", "ims.aliyuncs.com"], ["mcpEndpoint", "openapi-mcp.cn-hangzhou.aliyuncs.com"]] as const) {
        const endpoint = r.string(key);
        const problem = endpoint === undefined ? undefined : httpsEndpointProblem(endpoint);
        if (endpoint !== undefined && problem !== undefined) {
            r.problem(
                key,
                `is ${shownUrl(endpoint)}, which ${problem}; allowed: an https endpoint, a host such as ${example} or https://${example}, without credentials, path, query or fragment`,
            );
        }
        endpoints[key] = endpoint;
    }

    const tongyiPluginPackage = r.string("tongyiPluginPackage");
    if (tongyiPluginPackage !== undefined && !PLUGIN_PACKAGE_PATTERN.test(tongyiPluginPackage)) {
        r.problem(
            "tongyiPluginPackage",
            `is ${JSON.stringify(tongyiPluginPackage)}; allowed: the absolute path of a .difypkg file, e.g. /srv/plugins/langgenius-tongyi.difypkg, of letters, digits and ._+@- between the "/" (no ${SPECIAL_CHARACTERS_TEXT}, no "~")`,
        );
    }

    const settings: IntegrationSettings = {
        oauthAppName: r.string("oauthAppName", `dify-mcp-${context.stack}`),
        oauthAppType: r.oneOf("oauthAppType", RAM_OAUTH_APP_TYPES, d.oauthAppType),
        oauthAccessTokenValidity: r.integer("oauthAccessTokenValidity", d.oauthAccessTokenValidity, ACCESS_TOKEN_VALIDITY_RANGE.min, ACCESS_TOKEN_VALIDITY_RANGE.max),
        oauthRefreshTokenValidity: refreshTokenValidity > 0 ? refreshTokenValidity : undefined,
        imsEndpoint: endpoints.imsEndpoint,
        mcpServerName,
        mcpApis: mcpApisFrom(r),
        mcpSite: r.oneOf("mcpSite", ALIBABA_CLOUD_SITES, d.mcpSite),
        mcpEndpoint: endpoints.mcpEndpoint,
        adminEmail: adminEmail ?? "",
        adminName,
        llmModel: r.string("llmModel", d.llmModel),
        embeddingModel: r.string("embeddingModel", d.embeddingModel),
        dashscopeInternational: r.boolean("dashscopeInternational", d.dashscopeInternational),
        tongyiPluginPackage,
        mcpProviderName: r.string("mcpProviderName", d.mcpProviderName),
        mcpServerIdentifier,
        waitForAuthorization: r.boolean("waitForAuthorization", d.waitForAuthorization),
        smokeTestOnUp: r.boolean("smokeTestOnUp", d.smokeTestOnUp),
        authorizationTimeoutSeconds: r.integer("authorizationTimeoutSeconds", d.authorizationTimeoutSeconds, 60, 3600),
        agentAppName: r.string("agentAppName", d.agentAppName),
        agentSystemPrompt: r.string("agentSystemPrompt", d.agentSystemPrompt),
    };
    if (r.problems.length > 0) {
        throw new StackConfigError(r.problems);
    }
    return settings;
}
