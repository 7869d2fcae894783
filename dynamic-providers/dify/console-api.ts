// Typed calls of Dify's console API (below /console/api) that the Dify resources make: the routes and the wire
// types of their bodies and answers in one place, one function per call. Field names are Dify's. Login, token
// refresh, retries and errors are handled by the session (session.ts).
// Facts: ../shared/reference/dify-console-api.md sections 2 to 4 and 7.
import type { DifyConsole } from "./session";

const MCP_ROUTE = "/workspaces/current/tool-provider/mcp";
/** Lists providers with their UUIDs (`for_list=True`); GET /workspaces/current/tools/mcp gives server identifiers as ids. */
const TOOL_PROVIDERS_ROUTE = "/workspaces/current/tool-providers";
const PLUGIN_ROUTE = "/workspaces/current/plugin";
const MODEL_PROVIDERS_ROUTE = "/workspaces/current/model-providers";
const DEFAULT_MODEL_ROUTE = "/workspaces/current/default-model";
const APPS_ROUTE = "/apps";

/** The credentials of one model provider, e.g. langgenius/tongyi/tongyi. */
function modelCredentialsRoute(provider: string): string {
    return `${MODEL_PROVIDERS_ROUTE}/${provider}/credentials`;
}

// ------------------------------------------------------------------------------------------------------
// Account.

export interface AccountProfile {
    name?: string;
    email?: string;
}

export interface PasswordChange {
    password: string;
    new_password: string;
    repeat_new_password: string;
}

// ------------------------------------------------------------------------------------------------------
// MCP tool providers.

/** What Dify answers for an MCP provider (create, GET .../tools/<id>, GET .../update/<id>, the provider list). */
export interface McpProviderEntity {
    id: string;
    name?: string;
    server_url?: string;
    server_identifier?: string;
    is_team_authorization?: boolean;
    tools?: { name?: string }[];
    icon?: string | { content?: string; background?: string };
    timeout?: number;
    sse_read_timeout?: number;
    configuration?: { timeout?: number; sse_read_timeout?: number };
    /** 1.10+: the masked preset/registered client, null when Dify holds none. */
    authentication?: { client_id?: string; client_secret?: string | null } | null;
    /** 1.10+: false only for a preset client (core/entities/mcp_provider.py to_api_response). */
    is_dynamic_registration?: boolean;
}

/** The create/update body; unknown keys are ignored by every version. */
export interface McpProviderBody {
    server_url: string;
    name: string;
    icon: string;
    icon_type: "emoji";
    icon_background: string;
    server_identifier: string;
    /** Before 1.10; from 1.10 the timeouts live in `configuration`. */
    timeout: number;
    sse_read_timeout: number;
    /** 1.9+. */
    headers?: Record<string, string>;
    /** 1.10+. */
    configuration?: { timeout: number; sse_read_timeout: number };
    /** 1.10+: the preset OAuth client. */
    authentication?: { client_id: string; client_secret: string };
}

/** Dify keeps the stored URL when an update carries this placeholder. */
export const UNCHANGED_MCP_SERVER_URL = "[__HIDDEN__]";

// ------------------------------------------------------------------------------------------------------
// Plugins, model providers and default models.

export interface PluginListEntry {
    plugin_id: string;
    plugin_unique_identifier: string;
    installation_id: string;
}

export interface PluginInstallTask {
    status: string;
    plugins?: { plugin_id?: string; status?: string; message?: string }[];
}

export interface PluginInstallAnswer {
    all_installed?: boolean;
    task_id?: string;
}

export interface ModelProviderEntry {
    provider: string;
    custom_configuration?: {
        status?: string;
        current_credential_id?: string | null;
        available_credentials?: { credential_id: string; credential_name: string }[];
    };
}

export interface ModelTypeEntry {
    provider: string;
    models?: { model: string; features?: string[] | null; status?: string }[];
}

export type ModelType = "llm" | "text-embedding";

export interface DefaultModelSetting {
    model_type: ModelType;
    provider: string;
    model: string;
}

export interface DefaultModel {
    model?: string;
    provider?: { provider?: string };
}

// ------------------------------------------------------------------------------------------------------
// Apps.

export interface AgentMode {
    strategy?: string;
    max_iteration?: number;
    tools?: { provider_type?: string; provider_id?: string; tool_name?: string; enabled?: boolean }[];
}

/** GET /apps/<id>; older versions return `model` and `agent_mode` as JSON text. */
export interface AppDetail {
    id: string;
    name?: string;
    mode?: string;
    description?: string;
    icon?: string;
    icon_background?: string;
    use_icon_as_answer_icon?: boolean | null;
    max_active_requests?: number | null;
    model_config?: {
        model?: { provider?: string; name?: string; completion_params?: Record<string, number | string | boolean> } | string;
        pre_prompt?: string;
        opening_statement?: string;
        agent_mode?: AgentMode | string;
    } | null;
}

export interface AppBody {
    name: string;
    description: string;
    icon_type: "emoji";
    icon: string;
    icon_background: string;
}

/** PUT /apps/<id>: every field the route declares. */
export interface AppUpdateBody extends AppBody {
    use_icon_as_answer_icon: boolean;
    max_active_requests: number | null;
}

export interface AppListQuery {
    page: number;
    limit: number;
    mode: "agent-chat";
    name: string;
}

/** POST /apps/<id>/model-config: the whole config of an agent-chat app (Dify replaces it). */
export interface AgentModelConfig {
    model: { provider: string; name: string; mode: "chat"; completion_params: Record<string, number | string | boolean> };
    pre_prompt: string;
    prompt_type: "simple";
    user_input_form: unknown[];
    opening_statement: string;
    suggested_questions: string[];
    agent_mode: {
        enabled: boolean;
        strategy: string;
        max_iteration: number;
        tools: {
            provider_type: "mcp";
            provider_id: string;
            provider_name: string;
            tool_name: string;
            tool_label: string;
            tool_parameters: Record<string, unknown>;
            enabled: boolean;
        }[];
    };
}

// ------------------------------------------------------------------------------------------------------
// The calls.

/** Console calls bound to one logged-in session. */
export function difyConsoleApi(session: DifyConsole) {
    return {
        /** The Dify version the session logged in to. */
        version: session.version,

        getProfile: () => session.get<AccountProfile>("/account/profile"),
        renameAccount: (name: string) => session.post("/account/name", { name }),
        changePassword: (change: PasswordChange) => session.post("/account/password", change),

        listMcpProviders: async () => {
            const providers = await session.get<McpProviderEntity[]>(TOOL_PROVIDERS_ROUTE, { type: "mcp" });
            return Array.isArray(providers) ? providers : [];
        },
        createMcpProvider: (body: McpProviderBody) => session.post<McpProviderEntity>(MCP_ROUTE, body),
        updateMcpProvider: (providerId: string, body: McpProviderBody) => session.put(MCP_ROUTE, { ...body, provider_id: providerId }),
        deleteMcpProvider: (providerId: string) => session.delete(MCP_ROUTE, { provider_id: providerId }),
        getMcpProvider: (providerId: string) => session.get<McpProviderEntity>(`${MCP_ROUTE}/tools/${providerId}`),
        /** Dify opens an MCP session to the server (initialize + tools/list with the stored tokens) and stores the tools. */
        refreshMcpTools: (providerId: string) => session.get<McpProviderEntity>(`${MCP_ROUTE}/update/${providerId}`),
        /** The consent URL, or no URL when Dify already holds a working authorization. */
        authorizeMcpProvider: (providerId: string) =>
            session.post<{ authorization_url?: string; result?: string }>(`${MCP_ROUTE}/auth`, { provider_id: providerId }),

        listPlugins: async () =>
            (await session.get<{ plugins?: PluginListEntry[] }>(`${PLUGIN_ROUTE}/list`, { page: 1, page_size: 256 })).plugins ?? [],
        getPluginTask: async (taskId: string) => (await session.get<{ task: PluginInstallTask }>(`${PLUGIN_ROUTE}/tasks/${taskId}`)).task,
        uploadPluginPackage: (fileName: string, content: Uint8Array) =>
            session.upload<{ unique_identifier: string }>(`${PLUGIN_ROUTE}/upload/pkg`, "pkg", fileName, content),
        installPluginPackages: (uniqueIdentifiers: string[]) =>
            session.post<PluginInstallAnswer>(`${PLUGIN_ROUTE}/install/pkg`, { plugin_unique_identifiers: uniqueIdentifiers }),
        /** Swallows marketplace failures: an unreachable marketplace answers 200 {"versions": {}}. */
        latestPluginVersions: async (pluginIds: string[]) =>
            (await session.post<{ versions?: Record<string, { unique_identifier?: string } | null> }>(`${PLUGIN_ROUTE}/list/latest-versions`, { plugin_ids: pluginIds }))
                .versions ?? {},
        installMarketplacePlugins: (uniqueIdentifiers: string[]) =>
            session.post<PluginInstallAnswer>(`${PLUGIN_ROUTE}/install/marketplace`, { plugin_unique_identifiers: uniqueIdentifiers }),
        uninstallPlugin: (installationId: string) => session.post(`${PLUGIN_ROUTE}/uninstall`, { plugin_installation_id: installationId }),

        listModelProviders: async () => (await session.get<{ data?: ModelProviderEntry[] }>(MODEL_PROVIDERS_ROUTE)).data ?? [],
        /** The credential's fields as Dify shows them (secrets obfuscated). */
        getModelCredential: async (provider: string, credentialId: string) =>
            (await session.get<{ credentials?: Record<string, string> }>(modelCredentialsRoute(provider), { credential_id: credentialId })).credentials,
        createModelCredential: (provider: string, name: string, credentials: Record<string, string>) =>
            session.post(modelCredentialsRoute(provider), { credentials, name }),
        updateModelCredential: (provider: string, credentialId: string, name: string, credentials: Record<string, string>) =>
            session.put(modelCredentialsRoute(provider), { credential_id: credentialId, credentials, name }),
        deleteModelCredential: (provider: string, credentialId: string) =>
            session.delete(modelCredentialsRoute(provider), { credential_id: credentialId }),
        listModels: async (type: ModelType) => (await session.get<{ data?: ModelTypeEntry[] }>(`/workspaces/current/models/model-types/${type}`)).data ?? [],
        setDefaultModels: (settings: DefaultModelSetting[]) => session.post(DEFAULT_MODEL_ROUTE, { model_settings: settings }),
        getDefaultModel: async (type: ModelType) =>
            (await session.get<{ data?: DefaultModel | null }>(DEFAULT_MODEL_ROUTE, { model_type: type })).data,

        listAgentApps: (query: AppListQuery) => session.get<{ data?: AppDetail[]; has_more?: boolean }>(APPS_ROUTE, { ...query }),
        createAgentApp: (body: AppBody) => session.post<{ id: string }>(APPS_ROUTE, { ...body, mode: "agent-chat" }),
        getApp: (appId: string) => session.get<AppDetail>(`${APPS_ROUTE}/${appId}`),
        updateApp: (appId: string, body: AppUpdateBody) => session.put(`${APPS_ROUTE}/${appId}`, body),
        deleteApp: (appId: string) => session.delete(`${APPS_ROUTE}/${appId}`),
        saveModelConfig: (appId: string, config: AgentModelConfig) => session.post(`${APPS_ROUTE}/${appId}/model-config`, config),
    };
}

export type DifyConsoleApi = ReturnType<typeof difyConsoleApi>;
