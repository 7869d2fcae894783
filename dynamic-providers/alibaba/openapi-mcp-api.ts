// Typed calls of the OpenAPI MCP server API (product OpenAPIExplorer, version 2024-11-30, ROA style, JSON,
// camelCase fields), following `openapiexplorer-20241130/src/client.ts` of aliyun/alibabacloud-typescript-sdk
// (that package is not on npm). Signing, retries and errors are handled by `AlibabaApiClient`.
import { AlibabaApiClient, ApiResponse, HttpMethod, QueryValue } from "./client";
import type { AlibabaCloudSite, McpApiSelection } from "../../rules/openapi-mcp";

const OPENAPI_MCP_VERSION = "2024-11-30";

/** The SDK's endpoint map: cn-hangzhou for China-site accounts, ap-southeast-1 for International-site ones. */
export const OPENAPI_MCP_ENDPOINTS: Readonly<Record<AlibabaCloudSite, string>> = {
    china: "openapi-mcp.cn-hangzhou.aliyuncs.com",
    international: "openapi-mcp.ap-southeast-1.aliyuncs.com",
};

export type McpLanguage = "ZH_CN" | "EN_US";
export type McpPublicAccess = "on" | "off" | "follow";

/** Fields of CreateApiMcpServer / UpdateApiMcpServer this project manages (the API has more). */
export interface McpServerSettings {
    apis: McpApiSelection[];
    description?: string;
    language?: McpLanguage;
    instructions?: string;
    systemTools?: string[];
    /** Newer API field (TF validation: on|off|follow); not in every SDK version. */
    publicAccess?: McpPublicAccess;
    /** RAM OAuth application id ("Custom OAuth"); left out = Alibaba Cloud's official OAuth app. */
    oauthClientId?: string;
}

export interface McpServerUrls {
    mcp?: string;
    sse?: string;
    vpcMcp?: string;
    vpcSse?: string;
}

/** GetApiMcpServer response (subset). */
export interface McpServerDescription extends McpServerSettings {
    requestId?: string;
    id: string;
    name: string;
    sourceType?: string;
    createTime?: string;
    updateTime?: string;
    urls?: McpServerUrls;
}

/** Error code for a server id that does not exist. */
export const MCP_SERVER_NOT_FOUND = "InvalidApiMcpServer.NotFound";

function roa<T>(
    client: AlibabaApiClient,
    action: string,
    method: HttpMethod,
    pathname: string,
    query?: Record<string, QueryValue>,
    body?: Record<string, unknown>,
): Promise<ApiResponse<T>> {
    return client.call<T>({ product: "OpenAPIExplorer", action, version: OPENAPI_MCP_VERSION, style: "ROA", method, pathname, query, body });
}

/** OpenAPIExplorer MCP server calls bound to one client. */
export function openApiMcpApi(client: AlibabaApiClient) {
    return {
        /** `clientToken` makes retries of the same create idempotent (valid for 3 days, ≤64 ASCII chars). */
        createApiMcpServer: async (name: string, settings: McpServerSettings, clientToken: string) =>
            (
                await roa<{ requestId?: string; id: string; urls?: McpServerUrls }>(client, "CreateApiMcpServer", "POST", "/apimcpserver", undefined, {
                    name,
                    ...settings,
                    clientToken,
                })
            ).body,
        getApiMcpServer: async (id: string) =>
            (await roa<McpServerDescription>(client, "GetApiMcpServer", "GET", "/apimcpserver", { id })).body,
        /** Sends the full desired settings: whether PATCH merges or replaces is UNCONFIRMED. */
        updateApiMcpServer: async (id: string, settings: Partial<McpServerSettings>, clientToken: string): Promise<void> => {
            await roa(client, "UpdateApiMcpServer", "PATCH", "/apimcpserver", { id, clientToken }, { ...settings });
        },
        deleteApiMcpServer: async (id: string, clientToken: string): Promise<void> => {
            await roa(client, "DeleteApiMcpServer", "DELETE", "/apimcpserver", { id, clientToken });
        },
    };
}

export type OpenApiMcpApi = ReturnType<typeof openApiMcpApi>;
