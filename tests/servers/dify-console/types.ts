// The fake Dify console's public types: the records tests inspect, the options it starts with, and the server handle
// startDifyConsoleServer answers (re-exported by ../dify-console-server.ts).

export type CallKind = "auth" | "read" | "write";

export interface RecordedCall {
    method: string;
    /** Route template, e.g. "PUT /workspaces/current/tool-provider/mcp". */
    route: string;
    path: string;
    status: number;
    kind: CallKind;
}

export interface DifyAccount {
    id: string;
    email: string;
    name: string;
    password: string;
}

export interface McpProviderRecord {
    id: string;
    name: string;
    serverUrl: string;
    serverIdentifier: string;
    icon: string;
    iconType: string;
    iconBackground: string;
    timeout: number;
    sseReadTimeout: number;
    headers: Record<string, string>;
    clientId: string;
    clientSecret: string;
    isDynamicRegistration: boolean;
    authed: boolean;
    /** OAuth tokens Dify holds for the workspace; a preset client_id on update wipes them (authed stays true). */
    hasTokens: boolean;
    /**
     * What the MCP server's token endpoint answers for the refresh token once it revoked the grant
     * (revokeMcpTokens); "" while the tokens work.
     */
    revokedTokenError: string;
    /** What the remote MCP server would list once authorized. */
    remoteTools: string[];
    /** What Dify stored (filled by mcp/update). */
    tools: string[];
    updatedAt: number;
}

export interface CredentialRecord {
    id: string;
    name: string;
    credentials: Record<string, string>;
}

export interface AppRecord {
    id: string;
    name: string;
    mode: string;
    description: string;
    iconType: string;
    icon: string | null;
    iconBackground: string | null;
    useIconAsAnswerIcon: boolean;
    maxActiveRequests: number | null;
    modelConfig: Record<string, unknown>;
    createdAt: number;
    /** Creation order, to break ties between apps created within one second. */
    sequence: number;
}

export interface InstalledPlugin {
    pluginId: string;
    uniqueIdentifier: string;
    installationId: string;
    version: string;
}

/**
 * One answer of a scripted install task: "running" or "failed" with the plugin's message (the daemon's words),
 * "success" (installs the plugins), or "gone": the task succeeded (the plugins are installed) and Dify already
 * deleted it, as it does 60-120 s after success; fetching it then answers HTTP 500 (the daemon's "record not
 * found" is a PluginDaemonInternalServerError, which the task route does not catch).
 */
export type PluginTaskStep = { status: "running" | "failed"; message?: string } | { status: "success" | "gone" };

/**
 * "tool-call": one MCP call that works; "tool-error": the call fails the way Dify reports it (an observation
 * `{"<tool>": "tool invoke error: ..."}`, no error event) and the agent answers anyway; "no-tool-call";
 * "error": an error event; or literal events.
 */
export type ChatScript = "tool-call" | "tool-error" | "no-tool-call" | "error" | Record<string, unknown>[];

export interface DifyConsoleServerOptions {
    /** Dify version to behave like ("1.8.0", "1.9.2", "1.14.1", ...). */
    version: string;
    /** INIT_PASSWORD, when the instance has one. */
    initPassword?: string;
    /** An already set-up instance with this admin. */
    admin?: { email: string; name: string; password: string };
    /** Simulates CONSOLE_WEB_URL/CONSOLE_API_URL on https: Secure cookies with `__Host-` names. */
    secureCookies?: boolean;
    /** COOKIE_DOMAIN (1.10+): with it, secure cookies keep their plain names. */
    cookieDomain?: string;
    /** Whether the MCP server's authorization server supports dynamic client registration (default true). */
    dynamicClientRegistration?: boolean;
    /**
     * Whether connecting to the MCP server works at all (default true); false answers mcp/auth with 400 (and
     * clears the credentials), mcp/update with 400, and a PUT with a new server_url with 400.
     */
    mcpServerReachable?: boolean;
    /** Whether Dify can reach the plugin marketplace (default true). */
    marketplace?: boolean;
    /** How many task polls answer "running" before an install finishes (default 1). */
    pluginInstallPolls?: number;
    /** Make plugin installs fail. */
    pluginInstallFails?: boolean;
    /**
     * Scripted install tasks, taken one per install call in order (installs after the last behave as without
     * it): poll n of the task answers step n, the last step repeating. Tests may assign it while the server runs.
     */
    pluginInstallScripts?: PluginTaskStep[][];
    chatScript?: ChatScript;
    /** Answer POST /login for unknown emails with 200 {"result":"fail"} (ALLOW_REGISTER) instead of 400. */
    allowRegister?: boolean;
}

export interface DifyConsoleServer {
    /** The Dify web address, e.g. http://127.0.0.1:12345 (console API below /console/api). */
    readonly url: string;
    readonly options: DifyConsoleServerOptions;
    readonly accounts: DifyAccount[];
    readonly mcpProviders: Map<string, McpProviderRecord>;
    readonly apps: Map<string, AppRecord>;
    readonly plugins: Map<string, InstalledPlugin>;
    /** Credentials per model provider, and which one is active. */
    readonly modelCredentials: Map<string, { items: CredentialRecord[]; currentId: string | null }>;
    readonly defaultModels: Map<string, { provider: string; model: string }>;
    readonly calls: RecordedCall[];
    /** Request bodies per route template, in order. */
    readonly bodies: Map<string, unknown[]>;
    /** Failed logins per email. */
    readonly loginFailures: Map<string, number>;
    isSetUp(): boolean;
    /** Counts calls; `route` is a template like "POST /login", `kind` filters reads/writes/auth. */
    count(filter?: { route?: string; kind?: CallKind; method?: string }): number;
    resetCalls(): void;
    /** Test hook: the person approved the consent page; `tools` is what the MCP server lists. */
    authorizeMcpProvider(idOrIdentifier: string, tools: string[]): void;
    /** Test hook: access tokens and CSRF tokens expire (the next call gets 401 and must refresh). */
    expireAccessTokens(): void;
    setChatScript(script: ChatScript): void;
    /** Test hook: the tongyi plugin is installed with an active credential and default models (for app tests). */
    seedTongyi(apiKey?: string): void;
    /** Test hook: the Dify database was reset (no admin, not set up). */
    resetSetup(): void;
    /** Test hook: change whether the MCP server answers (see the option of that name). */
    setMcpServerReachable(reachable: boolean): void;
    /**
     * Test hook: the MCP server revoked the grant (access and refresh tokens), as deleting the RAM app's
     * authorization would. `tokenError` is what its token endpoint answers to Dify's refresh (default: what
     * tests/servers/mcp-oauth-server.ts answers). Authorizing again (authorizeMcpProvider) clears it.
     */
    revokeMcpTokens(idOrIdentifier: string, tokenError?: string): void;
    /**
     * Fault hook: the next write (a POST/PUT/DELETE route of kind "write"; only `route`, a template such as
     * "POST /apps", when given) is applied, then the connection is reset without an answer (ECONNRESET).
     */
    resetAfterNextWrite(route?: string): void;
    /**
     * Fault hook: the next `count` requests (only those to `route` when given) are answered with `status`
     * (default 502) by the proxy in front of Dify, as nginx does while the api container restarts: nothing
     * reaches Dify. Recorded in `calls` with that status.
     */
    failNextRequests(count: number, options?: { status?: 502 | 503 | 504; route?: string }): void;
    close(): Promise<void>;
}
