// A local stand-in for Dify's console API (`/console/api`), for every route the Dify providers and the smoke
// test use, parameterized by Dify version. It follows ../shared/reference/dify-console-api.md:
// - 1.8.0–1.9.1: login returns tokens in the JSON body, requests carry `Authorization: Bearer`;
// - 1.9.2+: login sets access_token/refresh_token/csrf_token cookies (`__Host-` names when secure), every
//   login_required request (GET included) needs the X-CSRF-Token header equal to the csrf cookie;
// - 1.11.2+: the login password must be base64(utf8); anything else fails ("Invalid encrypted data");
// - errors are `{code,message,status}`; ValueErrors (duplicates, not found) are 400 `invalid_param`; /setup and
//   /init are FastOpenAPI routes from 1.12.0: `{error:{type,message,status}}` with only the status kept (401
//   "Unauthorized", 403 "Forbidden", 422 for any invalid payload), never Dify's own code;
// - more than 5 failed logins lock the email (429); from 1.14.1 an unknown email fails like a wrong password;
// - MCP providers: masked server_url, OAuth `authorization_url` from mcp/auth, DCR before 1.10, preset client
//   from 1.10 (sending a client_id wipes the stored tokens, `authed` stays); a new server_url resets the
//   credentials (client included) unless the same PUT carries `authentication`; mcp/update lists tools only
//   with working tokens; once the MCP server revoked the grant (revokeMcpTokens), mcp/auth clears every
//   credential (services/tools/mcp_tools_manage_service.py, core/mcp/auth_client.py, controllers/console/
//   workspace/tool_providers.py ToolMCPAuthApi);
// - apps: /apps/<uuid:app_id> routes (any other id matches no route: werkzeug's HTML 404), a new agent-chat app
//   starts from the template (agent_mode disabled), listed newest first;
// - the agent chat stream has the shape of FunctionCallAgentRunner's (see the chat-messages route);
// - Dify 1.14.1 answers are checked against the real server by dify-console-server.agreement.test.ts: keep that
//   test passing when changing what this server answers for "1.14.1";
// - PUT /apps/<id> before 1.11 writes None for absent fields (use_icon_as_answer_icon is NOT NULL: HTTP 500);
// - an unreachable marketplace makes latest-versions answer 200 {"versions": {}} (Dify swallows the error);
// - every response carries X-Version. Every call is counted (reads, writes, auth) per route.
// - fault injection for lost answers: resetAfterNextWrite (applied, then the connection is reset) and
//   failNextRequests (a proxy's 502/503/504, nothing reaches Dify).
import * as crypto from "crypto";
import * as http from "http";
import { AddressInfo } from "net";
// The mask is pinned to Dify's own masked_server_url by tests/dynamic-providers/real-dify.test.ts.
import { difyMaskedServerUrl } from "../../dynamic-providers/dify/client";

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
 * "tool-call": one MCP call that works; "tool-error": the call fails the way Dify reports it (an observation
 * `{"<tool>": "tool invoke error: ..."}`, no error event) and the agent answers anyway; "no-tool-call";
 * "error": an error event; or literal events.
 */
export type ChatScript = "tool-call" | "tool-error" | "no-tool-call" | "error" | Record<string, unknown>[];

/** What the "tool-error" script puts in the observation (ToolEngine.agent_invoke around a ToolInvokeError). */
export const TOOL_INVOKE_ERROR_TEXT = "tool invoke error: Failed to connect to MCP server: Authentication failed - no token received";

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

// ---------------------------------------------------------------------------------------------------------

function versionCore(version: string): number[] {
    const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
    if (!match) {
        throw new Error(`unparsable Dify version ${version}`);
    }
    return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

function atLeast(version: string, minimum: string): boolean {
    const a = versionCore(version);
    const b = versionCore(minimum);
    for (let i = 0; i < 3; i++) {
        if (a[i] !== b[i]) {
            return a[i] > b[i];
        }
    }
    return true;
}

/** An error Dify would answer; on a FastOpenAPI route only its status survives (see fastOpenApiErrorBody). */
class HttpError extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
        readonly extra: Record<string, unknown> = {},
        /** Set-Cookie headers the error answer still carries (Flask saves a modified session on any answer). */
        readonly setCookies?: string[],
    ) {
        super(message);
    }
}

/**
 * The body FastOpenAPI (the router of /setup, /init from 1.12) answers for an error raised by the route:
 * format_exception_response keeps the status and, for Dify's BaseHTTPException (a werkzeug HTTPException
 * without `message`), werkzeug's `name` ("Unauthorized", "Forbidden"); Dify's code and description are lost.
 * A payload that fails pydantic validation is 422 with a fixed text (fastopenapi/base_router.py,
 * error_handler.py; confirmed against Dify 1.14.1 by dify-console-server.agreement.test.ts).
 */
function fastOpenApiErrorBody(status: number): Record<string, unknown> {
    if (status === 422) {
        const message = "Validation error for parameter 'payload'";
        return { error: { type: "validation_error", message, status, details: message } };
    }
    const types: Record<number, string> = {
        400: "bad_request",
        401: "authentication_error",
        403: "authorization_error",
        404: "resource_not_found",
        409: "resource_conflict",
        500: "internal_server_error",
        503: "service_unavailable",
    };
    const names: Record<number, string> = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        500: "Internal Server Error",
        503: "Service Unavailable",
    };
    return { error: { type: types[status] ?? "internal_server_error", message: names[status] ?? "Internal Server Error", status } };
}

const invalidParam = (message: string) => new HttpError(400, "invalid_param", message);

/** str() of a pydantic (2.12, Dify 1.14.1) ValidationError with one error, which Dify answers as the message. */
function pydanticError(model: string, field: string, problem: string, type: string, input: string): string {
    return (
        `1 validation error for ${model}\n${field}\n  ${problem} [type=${type}, input_value='${input}', input_type=str]\n` +
        `    For further information visit https://errors.pydantic.dev/2.12/v/${type}`
    );
}

const PASSWORD_RULE = /^(?=.*[a-zA-Z])(?=.*\d).{8,}$/;
const TONGYI_PROVIDER = "langgenius/tongyi/tongyi";
const TONGYI_PLUGIN = "langgenius/tongyi";
const TONGYI_MARKETPLACE_VERSION = "0.1.13";
const HIDDEN = "[__HIDDEN__]";
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

interface ModelDefinition {
    model: string;
    type: "llm" | "text-embedding";
    features: string[];
}

const TONGYI_MODELS: ModelDefinition[] = [
    { model: "qwen3-max", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-max", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-plus", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-turbo", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-vl-plus", type: "llm", features: ["vision", "agent-thought"] },
    { model: "text-embedding-v3", type: "text-embedding", features: [] },
    { model: "text-embedding-v4", type: "text-embedding", features: [] },
];

/** MCPProviderEntity._mask_value: longer than MIN_UNMASK_LENGTH (6) keeps 2 characters at each end. */
function maskSecret(value: string): string {
    if (!value) {
        return "";
    }
    return value.length > 6 ? value.slice(0, 2) + "*".repeat(value.length - 4) + value.slice(-2) : "*".repeat(value.length);
}

/** Dify's encrypter.obfuscated_token. */
function obfuscateToken(token: string): string {
    if (!token) {
        return token;
    }
    return token.length <= 8 ? "*".repeat(20) : token.slice(0, 6) + "*".repeat(12) + token.slice(-2);
}

function parseCookies(header: string | undefined): Map<string, string> {
    const cookies = new Map<string, string>();
    for (const part of (header ?? "").split(";")) {
        const eq = part.indexOf("=");
        if (eq > 0) {
            cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
        }
    }
    return cookies;
}

/**
 * Python's base64.b64decode without validate (binascii.a2b_base64, non-strict): characters outside the alphabet
 * are skipped, decoding stops at complete padding, and leftover data characters fail ("Incorrect padding").
 * Undefined when Python would raise.
 */
function pythonBase64Decode(text: string): Buffer | undefined {
    let data = "";
    let quadPos = 0;
    let pads = 0;
    for (const char of text) {
        if (char === "=") {
            if (quadPos >= 2 && quadPos + ++pads >= 4) {
                return Buffer.from(data, "base64");
            }
            continue;
        }
        if (!/^[A-Za-z0-9+/]$/.test(char)) {
            continue;
        }
        data += char;
        pads = 0;
        quadPos = (quadPos + 1) & 3;
    }
    return quadPos === 0 ? Buffer.from(data, "base64") : undefined;
}

function parseMultipart(body: Buffer, contentType: string): Map<string, { fileName?: string; content: Buffer }> {
    const parts = new Map<string, { fileName?: string; content: Buffer }>();
    const boundaryMatch = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!boundaryMatch) {
        return parts;
    }
    const boundary = Buffer.from(`--${boundaryMatch[1] ?? boundaryMatch[2]}`);
    let start = body.indexOf(boundary);
    while (start >= 0) {
        const next = body.indexOf(boundary, start + boundary.length);
        if (next < 0) {
            break;
        }
        const part = body.subarray(start + boundary.length + 2, next - 2); // skip CRLF after boundary and before next
        const headerEnd = part.indexOf("\r\n\r\n");
        if (headerEnd >= 0) {
            const headers = part.subarray(0, headerEnd).toString("utf8");
            const name = /name="([^"]*)"/i.exec(headers)?.[1];
            const fileName = /filename="([^"]*)"/i.exec(headers)?.[1];
            if (name) {
                parts.set(name, { fileName, content: part.subarray(headerEnd + 4) });
            }
        }
        start = next;
    }
    return parts;
}

interface Request {
    method: string;
    path: string;
    query: URLSearchParams;
    headers: http.IncomingHttpHeaders;
    raw: Buffer;
    json: Record<string, unknown>;
    params: string[];
    account?: DifyAccount;
}

interface Reply {
    status?: number;
    body?: unknown;
    setCookies?: string[];
    /** Server-sent events, each written as `data: {...}\n\n` (Dify adds `event: ping` every 10 s while a run lasts: none here). */
    events?: Record<string, unknown>[];
}

interface Route {
    method: string;
    pattern: RegExp;
    route: string;
    kind: CallKind;
    login: boolean;
    /** FastOpenAPI error shape from 1.12.0. */
    fastOpenApi?: boolean;
    handle(req: Request): Reply | Promise<Reply>;
}

export async function startDifyConsoleServer(options: DifyConsoleServerOptions): Promise<DifyConsoleServer> {
    const version = options.version;
    versionCore(version);
    const cookieMode = atLeast(version, "1.9.2");
    const hostPrefix =
        options.secureCookies && (!atLeast(version, "1.10.0") || !options.cookieDomain) ? "__Host-" : "";
    const cookieNames = {
        access: `${hostPrefix}access_token`,
        refresh: `${hostPrefix}refresh_token`,
        csrf: `${hostPrefix}csrf_token`,
    };

    const accounts: DifyAccount[] = [];
    let setupAt: string | undefined;
    if (options.admin) {
        accounts.push({ id: crypto.randomUUID(), ...options.admin });
        setupAt = new Date().toISOString();
    }
    const initValidatedSessions = new Set<string>();
    const loginFailures = new Map<string, number>();
    const accessTokens = new Map<string, { accountId: string; expired: boolean }>();
    const refreshTokens = new Map<string, string>();
    const csrfTokens = new Map<string, { accountId: string; expired: boolean }>();
    const mcpProviders = new Map<string, McpProviderRecord>();
    const oauthStates = new Map<string, { providerId: string; createdAt: number }>();
    const apps = new Map<string, AppRecord>();
    let appSequence = 0;
    const plugins = new Map<string, InstalledPlugin>();
    const uploads = new Map<string, { pluginId: string; version: string }>();
    const tasks = new Map<string, { pollsLeft: number; uniqueIdentifiers: string[]; status: string; fromMarketplace: boolean }>();
    const modelCredentials = new Map<string, { items: CredentialRecord[]; currentId: string | null }>();
    const defaultModels = new Map<string, { provider: string; model: string }>();
    const calls: RecordedCall[] = [];
    const bodies = new Map<string, unknown[]>();
    const createdAt = Math.floor(Date.now() / 1000);
    let chatScript: ChatScript = options.chatScript ?? "tool-call";
    let baseUrl = "";
    const resetFaults: { route?: string }[] = [];
    const proxyFaults: { status: number; route?: string; left: number }[] = [];

    // ---- helpers -----------------------------------------------------------------------------------

    /** Whether this request's Flask `session` cookie passed POST /init. */
    const initValidated = (req: Request): boolean => {
        const session = parseCookies(req.headers.cookie).get("session");
        return session !== undefined && initValidatedSessions.has(session);
    };

    const findAccount = (email: string): DifyAccount | undefined =>
        accounts.find((a) => (atLeast(version, "1.11.3") ? a.email.toLowerCase() === email.toLowerCase() : a.email === email));

    const issueTokens = (account: DifyAccount): { access: string; refresh: string; csrf: string } => {
        const access = `at-${crypto.randomBytes(16).toString("hex")}`;
        const refresh = `rt-${crypto.randomBytes(16).toString("hex")}`;
        const csrf = `csrf-${crypto.randomBytes(16).toString("hex")}`;
        accessTokens.set(access, { accountId: account.id, expired: false });
        refreshTokens.set(refresh, account.id);
        csrfTokens.set(csrf, { accountId: account.id, expired: false });
        return { access, refresh, csrf };
    };

    const tokenCookies = (tokens: { access: string; refresh: string; csrf: string }): string[] => {
        const secure = options.secureCookies ? "; Secure" : "";
        return [
            `${cookieNames.access}=${tokens.access}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax${secure}`,
            `${cookieNames.refresh}=${tokens.refresh}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax${secure}`,
            `${cookieNames.csrf}=${tokens.csrf}; Path=/; Max-Age=3600; SameSite=Lax${secure}`,
        ];
    };

    // ext_login.load_user_from_request, then (1.9.2+) check_csrf_token: "Invalid Authorization token." without a
    // token, PassportService.verify's "Invalid token." / "Token has expired." for a bad one (1.14.1 texts; the
    // older versions keep "Unauthorized.", unverified).
    const authenticate = (req: Request): DifyAccount => {
        const verified = atLeast(version, "1.14.1");
        const unauthorized = (message: string) => new HttpError(401, "unauthorized", verified ? message : "Unauthorized.");
        const cookies = parseCookies(req.headers.cookie);
        const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""))?.[1];
        const token = cookieMode ? (cookies.get(cookieNames.access) ?? bearer) : (bearer ?? req.query.get("_token") ?? undefined);
        if (!token) {
            throw unauthorized("Invalid Authorization token.");
        }
        const record = accessTokens.get(token);
        if (!record) {
            throw unauthorized("Invalid token.");
        }
        if (record.expired) {
            throw unauthorized("Token has expired.");
        }
        if (cookieMode) {
            const csrfCookie = cookies.get(cookieNames.csrf);
            const csrfHeader = req.headers["x-csrf-token"];
            const csrf = csrfCookie ? csrfTokens.get(csrfCookie) : undefined;
            if (!csrfCookie || csrfHeader !== csrfCookie || !csrf || csrf.expired || csrf.accountId !== record.accountId) {
                throw new HttpError(401, "unauthorized", "CSRF token is missing or invalid.");
            }
        }
        const account = accounts.find((a) => a.id === record.accountId);
        if (!account) {
            throw unauthorized("Invalid Authorization token.");
        }
        return account;
    };

    const requireString = (req: Request, field: string): string => {
        const value = req.json[field];
        if (typeof value !== "string" || value === "") {
            throw new HttpError(400, "invalid_param", `Missing required parameter in the JSON body: ${field}`, {
                params: field,
            });
        }
        return value;
    };

    /**
     * An MCP provider as Dify answers it. "detail" (create, mcp/tools/<id>, mcp/update/<id>) is
     * jsonable_encoder(ToolProviderApiEntity): every field, `authentication: null` without a client. "list"
     * (GET /workspaces/current/tools/mcp) and "providers" (GET /workspaces/current/tool-providers) go through
     * ToolProviderApiEntity.to_dict, which drops falsy optional fields; "list" skips the sensitive parts
     * (include_sensitive=False: is_dynamic_registration true, no headers) and uses the server identifier as id.
     */
    const mcpEntity = (record: McpProviderRecord, view: "detail" | "list" | "providers"): Record<string, unknown> => {
        const entity: Record<string, unknown> = {
            id: view === "list" ? record.serverIdentifier : record.id,
            author: accounts[0]?.name ?? "Anonymous",
            name: record.name,
            description: { en_US: "", zh_Hans: "" },
            icon: record.iconType === "emoji" ? { content: record.icon, background: record.iconBackground } : record.icon,
            label: { en_US: record.name, zh_Hans: record.name },
            type: "mcp",
            team_credentials: {},
            is_team_authorization: record.authed,
            allow_delete: true,
            tools: record.tools.map((name) => ({
                author: accounts[0]?.name ?? "Anonymous",
                name,
                label: { en_US: name, zh_Hans: name },
                description: { en_US: `${name} tool`, zh_Hans: `${name} tool` },
                parameters: [],
                labels: [],
            })),
            labels: [],
            server_url: difyMaskedServerUrl(record.serverUrl),
            updated_at: record.updatedAt,
            server_identifier: record.serverIdentifier,
        };
        if (atLeast(version, "1.10.0")) {
            const maskedHeaders = Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, maskSecret(v)]));
            // masked_credentials(): client_id, and client_secret only when one is stored (a DCR client has none).
            const authentication = record.clientId
                ? { client_id: maskSecret(record.clientId), client_secret: record.isDynamicRegistration && !record.clientSecret ? null : maskSecret(record.clientSecret) }
                : null;
            entity.configuration = { timeout: record.timeout, sse_read_timeout: record.sseReadTimeout };
            if (view === "detail") {
                entity.masked_headers = maskedHeaders;
                entity.authentication = authentication;
                entity.is_dynamic_registration = record.isDynamicRegistration;
            } else if (view === "list") {
                entity.is_dynamic_registration = true;
            } else {
                if (Object.keys(maskedHeaders).length > 0) {
                    entity.masked_headers = maskedHeaders;
                }
                if (authentication) {
                    entity.authentication = authentication;
                }
                if (record.isDynamicRegistration) {
                    entity.is_dynamic_registration = true;
                }
            }
        } else {
            entity.timeout = record.timeout;
            entity.sse_read_timeout = record.sseReadTimeout;
            if (atLeast(version, "1.9.0")) {
                entity.masked_headers = Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, maskSecret(v)]));
            }
        }
        return entity;
    };

    /** clear_provider_credentials, and what a reconnect to a server that wants OAuth leaves: nothing. */
    const resetMcpCredentials = (record: McpProviderRecord) => {
        record.clientId = "";
        record.clientSecret = "";
        record.isDynamicRegistration = true; // the default of an empty client_information
        record.hasTokens = false;
        record.revokedTokenError = "";
        record.authed = false;
        record.tools = [];
    };

    const findMcp = (id: unknown): McpProviderRecord => {
        if (typeof id === "string" && !UUID.test(id)) {
            // get_provider compares the uuid column with it: PostgreSQL refuses the cast (DataError, a plain 500).
            throw new HttpError(500, "unknown", "Internal Server Error");
        }
        const record = typeof id === "string" ? mcpProviders.get(id) : undefined;
        if (!record) {
            throw invalidParam("MCP tool not found");
        }
        return record;
    };

    const checkMcpUniqueness = (name: string, url: string, identifier: string, exceptId?: string) => {
        for (const other of mcpProviders.values()) {
            if (other.id === exceptId) {
                continue;
            }
            if (other.name === name) {
                throw invalidParam(`MCP tool ${name} already exists`);
            }
            if (other.serverUrl === url) {
                throw invalidParam(atLeast(version, "1.10.0") ? "MCP tool with this server URL already exists" : `MCP tool ${url} already exists`);
            }
            if (other.serverIdentifier === identifier) {
                throw invalidParam(`MCP tool ${identifier} already exists`);
            }
        }
    };

    const validateServerUrl = (url: string) => {
        try {
            const parsed = new URL(url);
            if ((parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.host) {
                return;
            }
        } catch {
            // fall through
        }
        throw invalidParam("Server URL is not valid.");
    };

    const readTimeouts = (json: Record<string, unknown>, current?: { timeout: number; sseReadTimeout: number }) => {
        if (atLeast(version, "1.10.0")) {
            // Top-level timeout/sse_read_timeout are dropped from 1.10; configuration defaults to 30/300.
            const configuration = (json.configuration ?? {}) as Record<string, unknown>;
            return {
                timeout: Number(configuration.timeout ?? 30),
                sseReadTimeout: Number(configuration.sse_read_timeout ?? 300),
            };
        }
        return {
            timeout: json.timeout === undefined || json.timeout === null ? (current?.timeout ?? 30) : Number(json.timeout),
            sseReadTimeout:
                json.sse_read_timeout === undefined || json.sse_read_timeout === null
                    ? (current?.sseReadTimeout ?? 300)
                    : Number(json.sse_read_timeout),
        };
    };

    const tongyiInstalled = () => plugins.has(TONGYI_PLUGIN);
    const tongyiActive = () => {
        const creds = modelCredentials.get(TONGYI_PROVIDER);
        return tongyiInstalled() && !!creds?.currentId;
    };

    const validateTongyiCredentials = (credentials: Record<string, unknown>) => {
        for (const field of ["dashscope_api_key", "use_international_endpoint"]) {
            if (credentials[field] === undefined || credentials[field] === null || credentials[field] === "") {
                throw invalidParam(`Variable ${field} is required`);
            }
        }
        if (!String(credentials.dashscope_api_key).startsWith("sk-")) {
            // What DashScope answers for a bad key (the plugin validates by calling it).
            throw invalidParam("Invalid API-key provided.");
        }
    };

    const modelProviderPayload = () => {
        const creds = modelCredentials.get(TONGYI_PROVIDER) ?? { items: [], currentId: null };
        const current = creds.items.find((c) => c.id === creds.currentId);
        return {
            provider: TONGYI_PROVIDER,
            label: { en_US: "TONGYI", zh_Hans: "通义千问" },
            supported_model_types: ["llm", "text-embedding"],
            preferred_provider_type: "custom",
            custom_configuration: {
                status: current ? "active" : "no-configure",
                current_credential_id: current?.id ?? null,
                current_credential_name: current?.name ?? null,
                available_credentials: creds.items.map((c) => ({ credential_id: c.id, credential_name: c.name })),
            },
            system_configuration: { enabled: false, current_quota_type: null, quota_configurations: [] },
        };
    };

    // ModelProviderService.get_models_by_model_type lists active providers only (get_models(only_active=True)).
    const modelsOfType = (type: string) => {
        if (!tongyiActive()) {
            return [];
        }
        const status = tongyiActive() ? "active" : "no-configure";
        const models = TONGYI_MODELS.filter((m) => m.type === type);
        if (models.length === 0) {
            return [];
        }
        return [
            {
                provider: TONGYI_PROVIDER,
                label: { en_US: "TONGYI", zh_Hans: "通义千问" },
                status,
                models: models.map((m) => ({
                    model: m.model,
                    label: { en_US: m.model, zh_Hans: m.model },
                    model_type: m.type,
                    features: m.features,
                    fetch_from: "predefined-model",
                    model_properties: m.type === "llm" ? { mode: "chat", context_size: 131072 } : { context_size: 8192 },
                    deprecated: false,
                    status,
                    load_balancing_enabled: false,
                })),
            },
        ];
    };

    const defaultModelPayload = (type: string) => {
        if (!tongyiInstalled()) {
            // The record stays, but without the plugin its provider is gone: get_default_model answers nothing.
            return { data: null };
        }
        let current = defaultModels.get(type);
        if (!current) {
            // Dify's GET auto-picks and persists the first active model when there is no default.
            const first = tongyiActive() ? TONGYI_MODELS.find((m) => m.type === type) : undefined;
            if (!first) {
                return { data: null };
            }
            current = { provider: TONGYI_PROVIDER, model: first.model };
            defaultModels.set(type, current);
        }
        return {
            data: {
                model: current.model,
                model_type: type,
                provider: {
                    tenant_id: "tenant",
                    provider: current.provider,
                    label: { en_US: "TONGYI" },
                    supported_model_types: ["llm", "text-embedding"],
                },
            },
        };
    };

    /** AppDetailWithSite (GET and PUT /apps/<id>); POST /apps answers AppDetail, without icon_type, max_active_requests and site. */
    const appDetail = (app: AppRecord, withSite = true) => ({
        id: app.id,
        name: app.name,
        description: app.description,
        mode: app.mode,
        ...(withSite ? { icon_type: app.iconType } : {}),
        icon: app.icon,
        icon_background: app.iconBackground,
        use_icon_as_answer_icon: app.useIconAsAnswerIcon,
        ...(withSite ? { max_active_requests: app.maxActiveRequests } : {}),
        enable_site: true,
        enable_api: true,
        model_config: app.modelConfig,
        created_at: app.createdAt,
        ...(withSite ? { site: { access_token: "site", code: "site" } } : {}),
    });

    /**
     * get_app_model's AppNotFoundError. flask-restx appends "did you mean" to a 404's message when a URL rule is close
     * to the path (difflib, Api._help_on_404): `rule` names it for the routes where Dify 1.14.1 does that.
     */
    const findApp = (id: string, request?: { path: string; rule: string }): AppRecord => {
        const app = apps.get(id);
        if (!app) {
            const help = request ? ` You have requested this URI [${request.path}] but did you mean ${request.rule} ?` : "";
            throw new HttpError(404, "app_not_found", `App not found.${help}`);
        }
        return app;
    };

    const startTask = (uniqueIdentifiers: string[], fromMarketplace: boolean) => {
        const id = crypto.randomUUID();
        tasks.set(id, { pollsLeft: options.pluginInstallPolls ?? 1, uniqueIdentifiers, status: "running", fromMarketplace });
        return id;
    };

    const pluginIdOf = (uniqueIdentifier: string) => uniqueIdentifier.split(":")[0];

    // ---- routes ------------------------------------------------------------------------------------

    const routes: Route[] = [];
    const route = (
        method: string,
        path: string,
        kind: CallKind,
        login: boolean,
        handle: Route["handle"],
        extra: { fastOpenApi?: boolean; uuid?: boolean } = {},
    ) => {
        // `uuid`: Flask's <uuid:...> converter (the /apps/<uuid:app_id> routes): any other segment matches no route.
        const id = extra.uuid ? "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})" : "([^/]+)";
        const pattern = new RegExp("^" + path.replace(/<path>/g, "(.+)").replace(/<id>/g, id) + "$");
        routes.push({ method, pattern, route: `${method} ${path}`, kind, login, handle, fastOpenApi: extra.fastOpenApi });
    };
    const fastOpenApi = atLeast(version, "1.12.0");

    // From 1.12 the answer is SetupStatusResponse: setup_at is null before the setup.
    route("GET", "/setup", "auth", false, () => ({
        body: setupAt ? { step: "finished", setup_at: setupAt } : fastOpenApi ? { step: "not_started", setup_at: null } : { step: "not_started" },
    }), { fastOpenApi });

    // From 1.12 the payload is validated (pydantic, 422) before anything else, and only the status survives of
    // Dify's own errors (see the FastOpenAPI error body below).
    route("POST", "/setup", "write", false, (req) => {
        const validate = () => {
            const email = requireString(req, "email");
            const name = requireString(req, "name");
            const password = requireString(req, "password");
            if (name.length > 30) {
                throw new HttpError(fastOpenApi ? 422 : 400, "invalid_param", "name must be at most 30 characters");
            }
            if (!PASSWORD_RULE.test(password)) {
                throw new HttpError(fastOpenApi ? 422 : 400, "invalid_param", "Password must contain letters and numbers, and the length must be greater than 8.");
            }
            return { email, name, password };
        };
        const payload = fastOpenApi ? validate() : undefined;
        if (setupAt || accounts.length > 0) {
            throw new HttpError(403, "already_setup", "Dify has been successfully installed. Please refresh the page or return to the dashboard homepage.");
        }
        if (options.initPassword && !initValidated(req)) {
            throw new HttpError(401, "not_init_validated", "Init validation has not been completed yet. Please proceed with the init validation process first.");
        }
        const { email, name, password } = payload ?? validate();
        accounts.push({ id: crypto.randomUUID(), email: atLeast(version, "1.11.3") ? email.toLowerCase() : email, name, password });
        setupAt = new Date().toISOString();
        return { status: 201, body: { result: "success" } };
    }, { fastOpenApi });

    // get_init_validate_status: validated in this (Flask) session, or set up already.
    route("GET", "/init", "auth", false, (req) => ({
        body: { status: setupAt || !options.initPassword || initValidated(req) ? "finished" : "not_started" },
    }), { fastOpenApi });

    route("POST", "/init", "write", false, (req) => {
        const password = fastOpenApi ? requireString(req, "password") : "";
        if (fastOpenApi && password.length > 30) {
            throw new HttpError(422, "invalid_param", "password: String should have at most 30 characters");
        }
        if (setupAt) {
            throw new HttpError(403, "already_setup", "Dify has been successfully installed.");
        }
        const sent = fastOpenApi ? password : requireString(req, "password");
        // Either way Flask's session cookie records the outcome (session["is_init_validated"] = True/False).
        const session = crypto.randomBytes(16).toString("hex");
        const cookie = `session=${session}; HttpOnly; Path=/`;
        if (sent.length > 30 || sent !== options.initPassword) {
            throw new HttpError(401, "init_validate_failed", "Init validation failed. Please check the password and try again.", {}, [cookie]);
        }
        initValidatedSessions.add(session);
        return { status: 201, body: { result: "success" }, setCookies: [cookie] };
    }, { fastOpenApi });

    // LoginApi.post: @decrypt_password_field runs first (1.11.2+: undecodable passwords fail without counting), then
    // the lockout check (login_error_rate_limit:<lower-cased email>), then authenticate, where an unknown email is
    // an AccountPasswordError like a wrong password from 1.14.1 (counted, 401 "Invalid email or password.").
    route("POST", "/login", "auth", false, (req) => {
        const email = requireString(req, "email");
        const sent = requireString(req, "password");
        let password = sent;
        if (atLeast(version, "1.11.2")) {
            // FieldEncryption.decrypt_field: base64.b64decode(...).decode("utf-8"), None (this error) when either fails.
            const undecodable = new HttpError(401, "authentication_failed", "Invalid encrypted data");
            const decoded = pythonBase64Decode(sent);
            if (!decoded) {
                throw undecodable;
            }
            try {
                password = new TextDecoder("utf-8", { fatal: true }).decode(decoded);
            } catch {
                throw undecodable;
            }
        }
        const failureKey = atLeast(version, "1.14.1") ? email.toLowerCase() : email;
        const failures = loginFailures.get(failureKey) ?? 0;
        if (failures > 5) {
            throw new HttpError(429, "email_code_login_limit", "Too many incorrect password attempts. Please try again later.");
        }
        const fail = () => {
            loginFailures.set(failureKey, failures + 1);
            return new HttpError(401, "authentication_failed", "Invalid email or password.");
        };
        const account = findAccount(email);
        if (!account && atLeast(version, "1.14.1")) {
            throw fail();
        }
        if (!account) {
            if (options.allowRegister) {
                return { body: { result: "fail", data: "register-token", code: "account_not_found" } };
            }
            throw new HttpError(400, "account_not_found", "Account not found.");
        }
        if (account.password !== password) {
            throw fail();
        }
        loginFailures.delete(failureKey);
        const tokens = issueTokens(account);
        if (cookieMode) {
            return { body: { result: "success" }, setCookies: tokenCookies(tokens) };
        }
        return { body: { result: "success", data: { access_token: tokens.access, refresh_token: tokens.refresh } } };
    });

    route("POST", "/refresh-token", "auth", false, (req) => {
        const token = cookieMode
            ? parseCookies(req.headers.cookie).get(cookieNames.refresh)
            : (req.json.refresh_token as string | undefined);
        if (!token && cookieMode) {
            return { status: 401, body: { result: "fail", message: "No refresh token provided" } };
        }
        const accountId = token ? refreshTokens.get(token) : undefined;
        const account = accounts.find((a) => a.id === accountId);
        if (!account) {
            return { status: 401, body: { result: "fail", message: "Invalid refresh token" } };
        }
        refreshTokens.delete(token as string);
        const tokens = issueTokens(account);
        if (cookieMode) {
            return { body: { result: "success" }, setCookies: tokenCookies(tokens) };
        }
        return { body: { result: "success", data: { access_token: tokens.access, refresh_token: tokens.refresh } } };
    });

    route(cookieMode ? "POST" : "GET", "/logout", "auth", true, () => ({ body: { result: "success" } }));

    route("GET", "/account/profile", "read", true, (req) => ({
        body: { id: req.account?.id, name: req.account?.name, email: req.account?.email },
    }));

    route("POST", "/account/name", "write", true, (req) => {
        const name = requireString(req, "name");
        if (name.length < 3 || name.length > 30) {
            throw invalidParam("name must be 3 to 30 characters");
        }
        (req.account as DifyAccount).name = name;
        return { body: { id: req.account?.id, name, email: req.account?.email } };
    });

    route("POST", "/account/password", "write", true, (req) => {
        const account = req.account as DifyAccount;
        const current = req.json.password;
        const next = requireString(req, "new_password");
        if (next !== req.json.repeat_new_password) {
            throw new HttpError(400, "repeat_password_not_match", "New password and repeat password does not match.");
        }
        if (current !== account.password) {
            throw new HttpError(400, "current_password_incorrect", "Current password is incorrect.");
        }
        if (!PASSWORD_RULE.test(next)) {
            throw invalidParam("Password must contain letters and numbers, and the length must be greater than 8.");
        }
        account.password = next;
        return { body: { id: account.id, name: account.name, email: account.email } };
    });

    // TenantService.create_owner_tenant_if_not_exist names the workspace after the first admin.
    route("GET", "/workspaces", "read", true, () => ({
        body: {
            workspaces: [{ id: "tenant", name: `${accounts[0]?.name ?? "workspace"}'s Workspace`, plan: "sandbox", status: "normal", created_at: createdAt, current: true }],
        },
    }));

    // MCP tool providers.
    const MCP = "/workspaces/current/tool-provider/mcp";
    route("POST", MCP, "write", true, (req) => {
        const serverUrl = requireString(req, "server_url");
        const name = requireString(req, "name");
        requireString(req, "icon");
        requireString(req, "icon_type");
        const identifier = requireString(req, "server_identifier");
        validateServerUrl(serverUrl);
        checkMcpUniqueness(name, serverUrl, identifier);
        const authentication = (req.json.authentication ?? {}) as Record<string, string>;
        const preset = atLeast(version, "1.10.0") && !!authentication.client_id;
        const record: McpProviderRecord = {
            id: crypto.randomUUID(),
            name,
            serverUrl,
            serverIdentifier: identifier,
            icon: String(req.json.icon),
            iconType: String(req.json.icon_type),
            iconBackground: String(req.json.icon_background ?? ""),
            ...readTimeouts(req.json),
            headers: atLeast(version, "1.9.0") ? ((req.json.headers ?? {}) as Record<string, string>) : {},
            clientId: preset ? authentication.client_id : "",
            clientSecret: preset ? (authentication.client_secret ?? "") : "",
            isDynamicRegistration: !preset,
            authed: false,
            hasTokens: false,
            revokedTokenError: "",
            remoteTools: [],
            tools: [],
            updatedAt: Math.floor(Date.now() / 1000),
        };
        mcpProviders.set(record.id, record);
        return { body: mcpEntity(record, "detail") };
    });

    // ToolProviderMCPApi.put: validate_server_url_standalone (a new URL reconnects first), then update_provider.
    route("PUT", MCP, "write", true, (req) => {
        const record = findMcp(req.json.provider_id);
        const serverUrl = requireString(req, "server_url");
        const name = requireString(req, "name");
        const identifier = requireString(req, "server_identifier");
        const keepUrl = serverUrl.includes(HIDDEN);
        if (!keepUrl) {
            validateServerUrl(serverUrl);
        }
        const urlChanged = !keepUrl && serverUrl !== record.serverUrl; // compared by sha256 hash in Dify
        if (urlChanged && options.mcpServerReachable === false) {
            throw invalidParam("Failed to re-connect MCP server: connection refused");
        }
        if (name !== record.name && [...mcpProviders.values()].some((o) => o.id !== record.id && o.name === name)) {
            throw invalidParam(`MCP tool ${name} already exists`);
        }
        for (const other of mcpProviders.values()) {
            // The unique constraints (_handle_integrity_error).
            if (other.id !== record.id && urlChanged && other.serverUrl === serverUrl) {
                throw invalidParam(`MCP tool ${serverUrl} already exists`);
            }
            if (other.id !== record.id && other.serverIdentifier === identifier) {
                throw invalidParam(`MCP tool ${identifier} already exists`);
            }
        }
        if (urlChanged) {
            // The reconnect without credentials meets the server's OAuth (MCPAuthError): ReconnectResult(authed=False,
            // tools="[]", encrypted_credentials="{}") replaces what Dify held, a preset client included.
            record.serverUrl = serverUrl;
            resetMcpCredentials(record);
        }
        record.name = name;
        record.serverIdentifier = identifier;
        record.icon = String(req.json.icon ?? record.icon);
        record.iconType = String(req.json.icon_type ?? record.iconType);
        record.iconBackground = String(req.json.icon_background ?? record.iconBackground);
        Object.assign(record, readTimeouts(req.json, record));
        if (atLeast(version, "1.9.0")) {
            record.headers = (req.json.headers ?? {}) as Record<string, string>; // always replaced
        }
        const authentication = req.json.authentication as Record<string, string | null> | undefined;
        if (atLeast(version, "1.10.0") && authentication?.client_id) {
            // _process_credentials: encrypted_credentials becomes only the client information, so the tokens are gone
            // while `authed` stays as it is. Masked values equal to what is shown were meant to keep the stored
            // originals, but in 1.14.1 _merge_credentials_with_masked looks them up at the top level of the
            // credentials while they sit below `client_information`: the masked values are stored as sent (an
            // authorization then names the masked client id). Earlier versions keep the originals (unverified).
            const keepOriginals = !atLeast(version, "1.14.1");
            const clientId =
                keepOriginals && record.clientId && authentication.client_id === maskSecret(record.clientId) ? record.clientId : authentication.client_id;
            const sentSecret = authentication.client_secret ?? "";
            const clientSecret =
                keepOriginals && record.clientSecret && sentSecret === maskSecret(record.clientSecret) ? record.clientSecret : sentSecret;
            record.clientId = clientId;
            record.clientSecret = clientSecret;
            record.isDynamicRegistration = false;
            record.hasTokens = false;
            record.revokedTokenError = "";
        }
        record.updatedAt = Math.floor(Date.now() / 1000);
        return { body: { result: "success" } };
    });

    route("DELETE", MCP, "write", true, (req) => {
        const record = findMcp(req.json.provider_id);
        mcpProviders.delete(record.id);
        return { body: { result: "success" } };
    });

    route("POST", `${MCP}/auth`, "write", true, (req) => {
        const record = findMcp(req.json.provider_id);
        if (req.json.authorization_code && atLeast(version, "1.10.0")) {
            throw invalidParam("State parameter is required for OAuth authorization");
        }
        if (options.mcpServerReachable === false) {
            // A non-auth connection failure clears every credential, a preset client included (ToolMCPAuthApi).
            resetMcpCredentials(record);
            throw invalidParam("Failed to connect to MCP server: connection refused");
        }
        if (record.hasTokens && record.revokedTokenError) {
            // The stored access token is refused, auth() refreshes, the token endpoint refuses too
            // (MCPRefreshTokenError): ToolMCPAuthApi clears every credential, the preset client included.
            const answer = record.revokedTokenError;
            resetMcpCredentials(record);
            throw invalidParam(`Failed to refresh token, please try to authorize again: ${answer}`);
        }
        if (record.authed && record.hasTokens) {
            return { body: { result: "success" } };
        }
        let clientId = record.clientId;
        if (!clientId) {
            if (options.dynamicClientRegistration === false) {
                throw invalidParam("Incompatible auth server: does not support dynamic client registration");
            }
            clientId = `dcr-${crypto.randomBytes(6).toString("hex")}`;
            record.clientId = clientId;
            record.isDynamicRegistration = true;
        }
        const state = crypto.randomBytes(12).toString("hex");
        oauthStates.set(state, { providerId: record.id, createdAt: Date.now() });
        const query = new URLSearchParams({
            response_type: "code",
            client_id: clientId,
            // base64url(SHA-256(code_verifier)): 43 characters.
            code_challenge: crypto.createHash("sha256").update(crypto.randomBytes(32)).digest("base64url"),
            code_challenge_method: "S256",
            redirect_uri: `${baseUrl}/console/api/mcp/oauth/callback`,
            state,
        });
        return { body: { authorization_url: `https://signin.aliyun.com/oauth2/v1/auth?${query.toString()}` } };
    });

    route("GET", `${MCP}/tools/<id>`, "read", true, (req) => ({ body: mcpEntity(findMcp(req.params[0]), "detail") }));

    // list_provider_tools: needs `authed`, then lists with the stored tokens through MCPClientWithAuthRetry; a
    // 401 runs auth() once (registering a DCR client when none is stored), which yields no token without a
    // person: "Authentication failed - no token received". Nothing is stored on failure.
    route("GET", `${MCP}/update/<id>`, "read", true, (req) => {
        const record = findMcp(req.params[0]);
        if (!record.authed) {
            throw invalidParam("Please auth the tool first");
        }
        if (options.mcpServerReachable === false) {
            throw invalidParam("Failed to connect to MCP server: connection refused");
        }
        if (record.hasTokens && record.revokedTokenError) {
            // MCPClientWithAuthRetry: 401, then auth() refreshes and the token endpoint refuses; nothing is stored.
            throw invalidParam(`Failed to connect to MCP server: Authentication retry failed: ${record.revokedTokenError}`);
        }
        if (!record.hasTokens) {
            if (!record.clientId) {
                if (options.dynamicClientRegistration === false) {
                    throw invalidParam(
                        "Failed to connect to MCP server: Authentication retry failed: Incompatible auth server: does not support dynamic client registration",
                    );
                }
                record.clientId = `dcr-${crypto.randomBytes(6).toString("hex")}`;
                record.isDynamicRegistration = true;
            }
            throw invalidParam("Failed to connect to MCP server: Authentication failed - no token received");
        }
        record.tools = [...record.remoteTools];
        return { body: mcpEntity(record, "detail") };
    });

    // ToolProviderListApi: ToolManager.list_providers_from_api, MCP providers with for_list=True (UUID ids).
    route("GET", "/workspaces/current/tool-providers", "read", true, (req) => {
        const type = req.query.get("type");
        if (type !== null && !["builtin", "model", "api", "workflow", "mcp"].includes(type)) {
            const problem = "Input should be 'builtin', 'model', 'api', 'workflow' or 'mcp'";
            throw invalidParam(
                atLeast(version, "1.14.1")
                    ? pydanticError("ToolProviderListQuery", "type", problem, "literal_error", type)
                    : `type: ${problem}`,
            );
        }
        const mcp = type === null || type === "mcp" ? [...mcpProviders.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
        return { body: mcp.map((r) => mcpEntity(r, "providers")) };
    });

    route("GET", "/workspaces/current/tools/mcp", "read", true, () => ({
        body: [...mcpProviders.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => mcpEntity(r, "list")),
    }));

    // Plugins.
    const PLUGIN = "/workspaces/current/plugin";
    route("POST", `${PLUGIN}/list/latest-versions`, "read", true, (req) => {
        if (options.marketplace === false) {
            // fetch_latest_plugin_version logs the marketplace failure and returns what it has: nothing.
            return { body: { versions: {} } };
        }
        const ids = (req.json.plugin_ids ?? []) as string[];
        const versions: Record<string, unknown> = {};
        for (const id of ids) {
            versions[id] =
                id === TONGYI_PLUGIN
                    ? {
                          plugin_id: id,
                          version: TONGYI_MARKETPLACE_VERSION,
                          unique_identifier: `${id}:${TONGYI_MARKETPLACE_VERSION}@${"a".repeat(64)}`,
                          status: "active",
                          deprecated_reason: "",
                          alternative_plugin_id: "",
                      }
                    : null;
        }
        return { body: { versions } };
    });

    const installIdentifiers = (req: Request, fromMarketplace: boolean) => {
        const identifiers = (req.json.plugin_unique_identifiers ?? []) as string[];
        if (identifiers.length === 0) {
            throw invalidParam("plugin_unique_identifiers is required");
        }
        if (fromMarketplace && options.marketplace === false) {
            throw new HttpError(400, "plugin_error", "Failed to download the plugin from the marketplace");
        }
        for (const identifier of identifiers) {
            if (!fromMarketplace && !uploads.has(identifier)) {
                throw new HttpError(400, "plugin_error", `plugin ${identifier} was not uploaded`);
            }
        }
        if (identifiers.every((id) => [...plugins.values()].some((p) => p.uniqueIdentifier === id))) {
            return { body: { all_installed: true, task_id: "" } };
        }
        return { body: { all_installed: false, task_id: startTask(identifiers, fromMarketplace) } };
    };
    route("POST", `${PLUGIN}/install/marketplace`, "write", true, (req) => installIdentifiers(req, true));
    route("POST", `${PLUGIN}/install/pkg`, "write", true, (req) => installIdentifiers(req, false));

    route("POST", `${PLUGIN}/upload/pkg`, "write", true, (req) => {
        const file = parseMultipart(req.raw, String(req.headers["content-type"] ?? "")).get("pkg");
        if (!file || file.content.length === 0) {
            throw new HttpError(400, "plugin_error", "no plugin package uploaded (multipart field pkg)");
        }
        const digest = crypto.createHash("sha256").update(file.content).digest("hex");
        const uniqueIdentifier = `${TONGYI_PLUGIN}:0.1.13-local@${digest}`;
        uploads.set(uniqueIdentifier, { pluginId: TONGYI_PLUGIN, version: "0.1.13-local" });
        return { body: { unique_identifier: uniqueIdentifier, manifest: { name: "tongyi", version: "0.1.13-local" }, verification: null } };
    });

    route("GET", `${PLUGIN}/tasks/<id>`, "read", true, (req) => {
        const task = tasks.get(req.params[0]);
        if (!task) {
            throw new HttpError(400, "plugin_error", "task not found");
        }
        if (task.status === "running") {
            if (task.pollsLeft > 0) {
                task.pollsLeft--;
            } else if (options.pluginInstallFails) {
                task.status = "failed";
            } else {
                task.status = "success";
                for (const identifier of task.uniqueIdentifiers) {
                    const pluginId = pluginIdOf(identifier);
                    plugins.set(pluginId, {
                        pluginId,
                        uniqueIdentifier: identifier,
                        installationId: crypto.randomUUID(),
                        version: identifier.split(":")[1]?.split("@")[0] ?? "",
                    });
                }
            }
        }
        return {
            body: {
                task: {
                    id: req.params[0],
                    status: task.status,
                    total_plugins: task.uniqueIdentifiers.length,
                    completed_plugins: task.status === "success" ? task.uniqueIdentifiers.length : 0,
                    plugins: task.uniqueIdentifiers.map((identifier) => ({
                        plugin_unique_identifier: identifier,
                        plugin_id: pluginIdOf(identifier),
                        status: task.status === "failed" ? "failed" : task.status === "success" ? "success" : "running",
                        message: task.status === "failed" ? "pip install failed: could not reach the package index" : "",
                    })),
                },
            },
        };
    });

    route("GET", `${PLUGIN}/list`, "read", true, () => ({
        body: {
            plugins: [...plugins.values()].map((p) => ({
                plugin_id: p.pluginId,
                plugin_unique_identifier: p.uniqueIdentifier,
                installation_id: p.installationId,
                version: p.version,
                declaration: { name: p.pluginId.split("/")[1] },
            })),
            total: plugins.size,
        },
    }));

    route("POST", `${PLUGIN}/uninstall`, "write", true, (req) => {
        const installationId = req.json.plugin_installation_id;
        const plugin = [...plugins.values()].find((p) => p.installationId === installationId);
        if (!plugin) {
            throw new HttpError(400, "plugin_error", "plugin installation not found");
        }
        plugins.delete(plugin.pluginId);
        return { body: { success: true } };
    });

    // Model providers.
    route("GET", "/workspaces/current/model-providers", "read", true, () => ({
        body: { data: tongyiInstalled() ? [modelProviderPayload()] : [] },
    }));

    const credentialsOf = (provider: string) => {
        if (provider !== TONGYI_PROVIDER && provider !== "tongyi") {
            throw invalidParam(`Provider ${provider} does not exist.`);
        }
        if (!tongyiInstalled()) {
            throw invalidParam(`Provider ${TONGYI_PROVIDER} does not exist.`);
        }
        let record = modelCredentials.get(TONGYI_PROVIDER);
        if (!record) {
            record = { items: [], currentId: null };
            modelCredentials.set(TONGYI_PROVIDER, record);
        }
        return record;
    };
    const CREDENTIALS = "/workspaces/current/model-providers/<path>/credentials";
    route("GET", CREDENTIALS, "read", true, (req) => {
        const record = credentialsOf(req.params[0]);
        const asked = req.query.get("credential_id");
        const id = asked ?? record.currentId;
        const credential = record.items.find((c) => c.id === id);
        if (!credential) {
            // _get_specific_provider_credential names the id; without one, the active credential (none: {}).
            if (asked) {
                throw invalidParam(`Credential with id ${asked} not found.`);
            }
            return { body: { credentials: {} } };
        }
        return {
            body: {
                credentials: {
                    ...credential.credentials,
                    dashscope_api_key: obfuscateToken(credential.credentials.dashscope_api_key),
                },
            },
        };
    });
    route("POST", CREDENTIALS, "write", true, (req) => {
        const record = credentialsOf(req.params[0]);
        let name = req.json.name as string | undefined;
        if (!name) {
            if (!atLeast(version, "1.8.1")) {
                throw new HttpError(400, "invalid_param", "Missing required parameter in the JSON body: name", { params: "name" });
            }
            name = `API KEY ${record.items.length + 1}`;
        }
        if (name.length > 30) {
            throw invalidParam("name must be at most 30 characters");
        }
        if (record.items.some((c) => c.name === name)) {
            throw invalidParam(`Credential with name '${name}' already exists.`);
        }
        const credentials = (req.json.credentials ?? {}) as Record<string, string>;
        validateTongyiCredentials(credentials);
        const item = { id: crypto.randomUUID(), name, credentials: { ...credentials } };
        record.items.push(item);
        if (!record.currentId) {
            record.currentId = item.id;
        }
        return { status: 201, body: { result: "success" } };
    });
    // update_provider_credential: the name first, then the plugin validates (hidden values taken from the stored
    // record), then the record is looked up.
    route("PUT", CREDENTIALS, "write", true, (req) => {
        const record = credentialsOf(req.params[0]);
        const credentialId = req.json.credential_id;
        const item = record.items.find((c) => c.id === credentialId);
        const name = req.json.name as string | undefined;
        if (name && record.items.some((c) => c.name === name && c.id !== credentialId)) {
            throw invalidParam(`Credential with name '${name}' already exists.`);
        }
        const credentials = { ...((req.json.credentials ?? {}) as Record<string, string>) };
        for (const [key, value] of Object.entries(credentials)) {
            if (value === HIDDEN && item) {
                credentials[key] = item.credentials[key];
            }
        }
        validateTongyiCredentials(credentials);
        if (!item) {
            throw invalidParam("Credential record not found.");
        }
        item.credentials = credentials;
        if (name) {
            item.name = name;
        }
        return { body: { result: "success" } };
    });
    route("DELETE", CREDENTIALS, "write", true, (req) => {
        const record = credentialsOf(req.params[0]);
        const index = record.items.findIndex((c) => c.id === req.json.credential_id);
        if (index < 0) {
            throw invalidParam("Credential record not found.");
        }
        const [removed] = record.items.splice(index, 1);
        if (record.currentId === removed.id) {
            record.currentId = record.items[0]?.id ?? null;
        }
        return { status: 204, body: { result: "success" } };
    });

    route("GET", "/workspaces/current/models/model-types/<id>", "read", true, (req) => ({
        body: { data: modelsOfType(req.params[0]) },
    }));

    route("GET", "/workspaces/current/default-model", "read", true, (req) => {
        const type = req.query.get("model_type");
        if (!type) {
            throw invalidParam("Missing required parameter in the query string: model_type");
        }
        return { body: defaultModelPayload(type) };
    });

    route("POST", "/workspaces/current/default-model", "write", true, (req) => {
        const settings = (req.json.model_settings ?? []) as { model_type: string; provider?: string; model?: string }[];
        for (const setting of settings) {
            if (!setting.provider) {
                continue;
            }
            if (setting.provider !== TONGYI_PROVIDER || !tongyiInstalled()) {
                throw invalidParam(`Provider ${setting.provider} does not exist.`);
            }
            const exists = TONGYI_MODELS.some((m) => m.type === setting.model_type && m.model === setting.model);
            if (!exists || !tongyiActive()) {
                throw invalidParam(`Model ${setting.model} does not exist.`);
            }
        }
        for (const setting of settings) {
            if (setting.provider) {
                defaultModels.set(setting.model_type, { provider: setting.provider, model: String(setting.model) });
            }
        }
        return { body: { result: "success" } };
    });

    // Apps.
    const appRoute = (method: string, path: string, kind: CallKind, handle: Route["handle"]) => route(method, path, kind, true, handle, { uuid: true });
    route("GET", "/apps", "read", true, (req) => {
        const page = Number(req.query.get("page") ?? 1);
        const limit = Number(req.query.get("limit") ?? 20);
        const mode = req.query.get("mode");
        // get_paginate_apps: ilike '%<first 30 characters>%', newest first.
        const name = req.query.get("name")?.slice(0, 30).toLowerCase();
        const all = [...apps.values()]
            .filter((a) => (!mode || mode === "all" || a.mode === mode) && (!name || a.name.toLowerCase().includes(name)))
            // created_at is stored to the second (CURRENT_TIMESTAMP(0)): Dify's order among apps created within one
            // second is unspecified; the fake puts the later one first.
            .sort((a, b) => b.createdAt - a.createdAt || b.sequence - a.sequence);
        // AppPagination items (AppPartial): the detail without `site`.
        const data = all.slice((page - 1) * limit, page * limit).map((app) => {
            const { site: _site, ...item } = appDetail(app);
            return item;
        });
        return { body: { page, limit, total: all.length, has_more: page * limit < all.length, data } };
    });

    route("POST", "/apps", "write", true, (req) => {
        const name = requireString(req, "name");
        const mode = req.json.mode;
        if (!["chat", "agent-chat", "advanced-chat", "workflow", "completion"].includes(String(mode))) {
            throw invalidParam("mode is required and must be one of chat, agent-chat, advanced-chat, workflow, completion");
        }
        const description = String(req.json.description ?? "");
        if (description.length > 400) {
            throw invalidParam("Description cannot exceed 400 characters.");
        }
        // AppService.create_app: the agent-chat template's model (openai/gpt-4o), replaced by the workspace's default
        // LLM when it can be instantiated, else by the first LLM of the first installed provider
        // (get_first_provider_first_model); everything else of the config is unset (agent_mode disabled, no prompt).
        const firstLlm = TONGYI_MODELS.find((m) => m.type === "llm") as ModelDefinition;
        const llm = tongyiActive() && defaultModels.get("llm")
            ? defaultModels.get("llm")
            : tongyiInstalled()
              ? { provider: TONGYI_PROVIDER, model: firstLlm.model }
              : undefined;
        const app: AppRecord = {
            id: crypto.randomUUID(),
            name,
            mode: String(mode),
            description,
            iconType: String(req.json.icon_type ?? "emoji"),
            icon: req.json.icon === undefined || req.json.icon === null ? null : String(req.json.icon),
            iconBackground: req.json.icon_background === undefined || req.json.icon_background === null ? null : String(req.json.icon_background),
            useIconAsAnswerIcon: false,
            maxActiveRequests: null,
            modelConfig: {
                opening_statement: null,
                suggested_questions: [],
                model: {
                    provider: llm?.provider ?? "openai",
                    name: llm?.model ?? "gpt-4o",
                    mode: "chat",
                    completion_params: {},
                },
                user_input_form: [],
                pre_prompt: null,
                agent_mode: { enabled: false, strategy: null, tools: [], prompt: null },
                prompt_type: "simple",
            },
            createdAt: Math.floor(Date.now() / 1000),
            sequence: ++appSequence,
        };
        apps.set(app.id, app);
        return { status: 201, body: appDetail(app, false) };
    });

    appRoute("GET", "/apps/<id>", "read", (req) => ({ body: appDetail(findApp(req.params[0])) }));

    appRoute("PUT", "/apps/<id>", "write", (req) => {
        const app = findApp(req.params[0]);
        const name = requireString(req, "name");
        const given = (field: string) => req.json[field] !== undefined && req.json[field] !== null;
        if (!atLeast(version, "1.11.0")) {
            // reqparse fills every declared argument (None when absent) and AppService.update_app writes them all;
            // apps.use_icon_as_answer_icon is NOT NULL, so the commit fails (NotNullViolation, a plain 500).
            if (!given("use_icon_as_answer_icon")) {
                throw new HttpError(500, "unknown", "Internal Server Error");
            }
            app.name = name;
            app.description = String(req.json.description ?? "");
            app.iconType = given("icon_type") ? String(req.json.icon_type) : app.iconType;
            app.icon = String(req.json.icon ?? "");
            app.iconBackground = String(req.json.icon_background ?? "");
            app.useIconAsAnswerIcon = req.json.use_icon_as_answer_icon === true;
            app.maxActiveRequests = given("max_active_requests") ? Number(req.json.max_active_requests) : null;
            return { body: appDetail(app) };
        }
        // UpdateAppPayload: absent fields become ""/False/0; icon_type None keeps the stored one.
        const description = String(req.json.description ?? "");
        if (description.length > 400) {
            throw invalidParam("description: String should have at most 400 characters");
        }
        app.name = name;
        app.description = description;
        app.iconType = given("icon_type") ? String(req.json.icon_type) : app.iconType;
        app.icon = String(req.json.icon || "");
        app.iconBackground = String(req.json.icon_background || "");
        app.useIconAsAnswerIcon = req.json.use_icon_as_answer_icon === true;
        app.maxActiveRequests = Number(req.json.max_active_requests || 0);
        return { body: appDetail(app) };
    });

    appRoute("DELETE", "/apps/<id>", "write", (req) => {
        apps.delete(findApp(req.params[0]).id);
        return { status: 204, body: { result: "success" } };
    });

    appRoute("POST", "/apps/<id>/model-config", "write", (req) => {
        const app = findApp(req.params[0], { path: req.path, rule: "/console/api/apps/<uuid:app_id>/model-config" });
        const model = req.json.model as { provider?: string; name?: string; completion_params?: unknown } | undefined;
        if (!model?.provider || !model.name) {
            throw invalidParam("model.provider and model.name are required");
        }
        if (model.completion_params === undefined) {
            throw invalidParam("model.completion_params is required");
        }
        const llms = modelsOfType("llm").flatMap((p) => p.models.map((m) => `${p.provider}:${m.model}`));
        if (!llms.includes(`${model.provider}:${model.name}`)) {
            throw invalidParam("model.name must be in the specified model list");
        }
        const agentMode = (req.json.agent_mode ?? {}) as { strategy?: string; tools?: Record<string, unknown>[] };
        if (app.mode === "agent-chat") {
            if (!["router", "react_router", "react", "function_call"].includes(String(agentMode.strategy))) {
                throw invalidParam("strategy in agent_mode must be in the specified strategy list");
            }
            for (const tool of agentMode.tools ?? []) {
                for (const key of ["provider_type", "provider_id", "tool_name", "tool_parameters"]) {
                    if (tool[key] === undefined) {
                        throw invalidParam(`${key} is required in agent_mode.tools`);
                    }
                }
            }
        }
        const saved = JSON.parse(JSON.stringify(req.json)) as Record<string, unknown>;
        // ModelConfigManager.validate_model_completion_params adds an empty stop list.
        const params = (saved.model as { completion_params: Record<string, unknown> }).completion_params;
        if (params.stop === undefined) {
            params.stop = [];
        }
        app.modelConfig = saved;
        return { body: { result: "success" } };
    });

    appRoute("POST", "/apps/<id>/chat-messages", "write", (req) => {
        const app = findApp(req.params[0]);
        if (req.json.model_config === undefined) {
            throw new HttpError(400, "invalid_param", "Missing required parameter in the JSON body: model_config", { params: "model_config" });
        }
        const query = requireString(req, "query");
        const mode = req.json.response_mode ?? (atLeast(version, "1.14.0") ? "blocking" : "streaming");
        if (mode !== "streaming") {
            throw invalidParam("Agent Chat App does not support blocking mode");
        }
        const conversation = crypto.randomUUID();
        const message = crypto.randomUUID();
        const common = { conversation_id: conversation, message_id: message, created_at: Math.floor(Date.now() / 1000), task_id: crypto.randomUUID() };
        if (Array.isArray(chatScript)) {
            return { events: chatScript.map((e) => ({ ...common, ...e })) };
        }
        const tools = ((app.modelConfig.agent_mode as { tools?: { provider_type?: string; tool_name?: string }[] } | undefined)?.tools ?? [])
            .filter((t) => t.provider_type === "mcp")
            .map((t) => String(t.tool_name));
        // FunctionCallAgentRunner (core/agent/fc_agent_runner.py), one iteration per LLM call: the iteration's thought
        // is announced empty, the LLM's text streams as agent_message (the stream opens with empty ones), a tool
        // call re-sends that thought (same id) with the call and again with the observation, a JSON object keyed
        // by tool name; a failed call is just another observation (ToolEngine.agent_invoke), never an error event.
        // The last iteration's thought ends with the answer as `thought`, then message_end.
        const events: Record<string, unknown>[] = [];
        const thought = (id: string, position: number, fields: { thought?: string; observation?: string; tool?: string; tool_input?: string } = {}) => {
            const tool = fields.tool ?? "";
            events.push({
                event: "agent_thought",
                ...common,
                id,
                position,
                thought: fields.thought ?? "",
                observation: fields.observation ?? "",
                tool,
                tool_labels: tool ? { [tool]: { en_US: tool, zh_Hans: tool } } : {},
                tool_input: fields.tool_input ?? "",
                message_files: [],
            });
        };
        const say = (answer: string) => events.push({ event: "agent_message", ...common, id: message, answer });
        const callsTool = (chatScript === "tool-call" || chatScript === "tool-error") && tools.length > 0;
        let position = 1;
        if (callsTool) {
            const first = crypto.randomUUID();
            const toolInput = JSON.stringify({ [tools[0]]: { RegionId: "cn-hangzhou" } });
            const result = chatScript === "tool-error" ? TOOL_INVOKE_ERROR_TEXT : '{"TotalCount": 3}';
            thought(first, position);
            say("");
            say("");
            thought(first, position, { tool: tools[0], tool_input: toolInput });
            thought(first, position, { tool: tools[0], tool_input: toolInput, observation: JSON.stringify({ [tools[0]]: result }) });
            position++;
        }
        const last = crypto.randomUUID();
        thought(last, position);
        if (chatScript === "error") {
            say("Let me check");
            events.push({ event: "error", ...common, status: 400, code: "completion_request_error", message: "[tongyi] Error: Invalid API-key provided." });
            return { events };
        }
        const answer = !callsTool
            ? "I cannot look that up without a tool."
            : chatScript === "tool-error"
              ? "Sorry, I could not query the ECS instances: the tool reported an authentication problem."
              : `There are 3 ECS instances in the Hangzhou region (cn-hangzhou). Query: ${query.length} chars.`;
        for (const piece of answer.match(/.{1,24}/g) ?? []) {
            say(piece);
        }
        say("");
        thought(last, position, { thought: answer });
        events.push({
            event: "message_end",
            ...common,
            id: message,
            metadata: { annotation_reply: null, retriever_resources: [], usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42, currency: "RMB" } },
            files: null,
        });
        return { events };
    });

    // ---- server ------------------------------------------------------------------------------------

    const server = http.createServer((incoming, outgoing) => {
        const chunks: Buffer[] = [];
        incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
        incoming.on("end", () => {
            void (async () => {
                const url = new URL(incoming.url ?? "/", "http://127.0.0.1");
                const method = incoming.method ?? "GET";
                outgoing.setHeader("X-Version", version);
                outgoing.setHeader("X-Env", "PRODUCTION");
                const prefix = "/console/api";
                let matched: Route | undefined;
                let params: string[] = [];
                if (url.pathname.startsWith(prefix)) {
                    const path = url.pathname.slice(prefix.length);
                    for (const candidate of routes) {
                        const match = candidate.method === method ? candidate.pattern.exec(path) : null;
                        if (match) {
                            matched = candidate;
                            params = match.slice(1).map((p) => decodeURIComponent(p));
                            break;
                        }
                    }
                }
                const record = (status: number) => {
                    if (matched) {
                        calls.push({ method, route: matched.route, path: url.pathname, status, kind: matched.kind });
                    } else {
                        calls.push({ method, route: `${method} ${url.pathname}`, path: url.pathname, status, kind: method === "GET" ? "read" : "write" });
                    }
                };
                let dropAnswer = false;
                const sendJson = (status: number, body: unknown, setCookies?: string[]) => {
                    record(status);
                    if (dropAnswer) {
                        incoming.socket.destroy();
                        return;
                    }
                    if (setCookies) {
                        outgoing.setHeader("Set-Cookie", setCookies);
                    }
                    outgoing.writeHead(status, { "Content-Type": "application/json" });
                    outgoing.end(status === 204 ? undefined : JSON.stringify(body));
                };
                const routeName = matched ? matched.route : `${method} ${url.pathname}`;
                const proxyFault = proxyFaults.find((f) => f.left > 0 && (!f.route || f.route === routeName));
                if (proxyFault) {
                    // nginx's own page: the request never reached Dify (no X-Version either).
                    proxyFault.left--;
                    record(proxyFault.status);
                    outgoing.removeHeader("X-Version");
                    outgoing.removeHeader("X-Env");
                    const title = { 502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out" }[proxyFault.status];
                    outgoing.writeHead(proxyFault.status, { "Content-Type": "text/html" });
                    outgoing.end(`<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`);
                    return;
                }
                if (!matched) {
                    // No route: werkzeug's own HTML page (flask-restx does not turn it into JSON).
                    record(404);
                    outgoing.writeHead(404, { "Content-Type": "text/html; charset=utf-8" });
                    outgoing.end(
                        "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not " +
                            "found on the server. If you entered the URL manually please check your spelling and try again.</p>\n",
                    );
                    return;
                }
                const resetIndex =
                    matched.kind === "write" && method !== "GET" ? resetFaults.findIndex((f) => !f.route || f.route === routeName) : -1;
                if (resetIndex >= 0) {
                    // The write is applied below; its answer is then dropped with the connection (a lost answer).
                    resetFaults.splice(resetIndex, 1);
                    dropAnswer = true;
                }
                const raw = Buffer.concat(chunks);
                let json: Record<string, unknown> = {};
                const contentType = String(incoming.headers["content-type"] ?? "");
                if (raw.length > 0 && contentType.includes("application/json")) {
                    try {
                        json = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
                    } catch {
                        sendJson(400, { code: "bad_request", message: "Failed to decode JSON object", status: 400 });
                        return;
                    }
                }
                const req: Request = { method, path: url.pathname, query: url.searchParams, headers: incoming.headers, raw, json, params };
                const route = matched;
                bodies.set(route.route, [...(bodies.get(route.route) ?? []), json]);
                try {
                    if (route.login) {
                        req.account = authenticate(req);
                    }
                    const reply = await route.handle(req);
                    if (reply.events) {
                        record(200);
                        if (dropAnswer) {
                            incoming.socket.destroy();
                            return;
                        }
                        outgoing.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" });
                        for (const event of reply.events) {
                            outgoing.write(`data: ${JSON.stringify(event)}\n\n`);
                        }
                        outgoing.end();
                        return;
                    }
                    sendJson(reply.status ?? 200, reply.body, reply.setCookies);
                } catch (err) {
                    if (err instanceof HttpError) {
                        // Payload validation on a FastOpenAPI route is pydantic's: 422 whatever the field.
                        const status = route.fastOpenApi && err.code === "invalid_param" ? 422 : err.status;
                        const body = route.fastOpenApi
                            ? fastOpenApiErrorBody(status)
                            : { code: err.code, message: err.message, status: err.status, ...err.extra };
                        sendJson(status, body, err.setCookies);
                    } else {
                        sendJson(500, { code: "unknown", message: String(err), status: 500 });
                    }
                }
            })();
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    return {
        url: baseUrl,
        options,
        accounts,
        mcpProviders,
        apps,
        plugins,
        modelCredentials,
        defaultModels,
        calls,
        bodies,
        loginFailures,
        isSetUp: () => setupAt !== undefined,
        count: (filter = {}) =>
            calls.filter(
                (c) =>
                    (!filter.route || c.route === filter.route) &&
                    (!filter.kind || c.kind === filter.kind) &&
                    (!filter.method || c.method === filter.method),
            ).length,
        resetCalls: () => {
            calls.length = 0;
            bodies.clear();
        },
        authorizeMcpProvider: (idOrIdentifier, tools) => {
            const record = [...mcpProviders.values()].find((r) => r.id === idOrIdentifier || r.serverIdentifier === idOrIdentifier);
            if (!record) {
                throw new Error(`no MCP provider ${idOrIdentifier}`);
            }
            record.authed = true;
            record.hasTokens = true;
            record.revokedTokenError = "";
            record.remoteTools = [...tools];
        },
        revokeMcpTokens: (idOrIdentifier, tokenError = '{"error":"invalid_grant","error_description":"refresh token revoked"}') => {
            const record = [...mcpProviders.values()].find((r) => r.id === idOrIdentifier || r.serverIdentifier === idOrIdentifier);
            if (!record) {
                throw new Error(`no MCP provider ${idOrIdentifier}`);
            }
            if (record.hasTokens) {
                record.revokedTokenError = tokenError;
            }
        },
        expireAccessTokens: () => {
            for (const token of accessTokens.values()) {
                token.expired = true;
            }
            for (const token of csrfTokens.values()) {
                token.expired = true;
            }
        },
        setChatScript: (script) => {
            chatScript = script;
        },
        seedTongyi: (apiKey = "sk-seeded-key-0000") => {
            plugins.set(TONGYI_PLUGIN, {
                pluginId: TONGYI_PLUGIN,
                uniqueIdentifier: `${TONGYI_PLUGIN}:${TONGYI_MARKETPLACE_VERSION}@${"a".repeat(64)}`,
                installationId: crypto.randomUUID(),
                version: TONGYI_MARKETPLACE_VERSION,
            });
            const id = crypto.randomUUID();
            modelCredentials.set(TONGYI_PROVIDER, {
                items: [{ id, name: "seeded", credentials: { dashscope_api_key: apiKey, use_international_endpoint: "false" } }],
                currentId: id,
            });
            defaultModels.set("llm", { provider: TONGYI_PROVIDER, model: "qwen-plus" });
            defaultModels.set("text-embedding", { provider: TONGYI_PROVIDER, model: "text-embedding-v4" });
        },
        setMcpServerReachable: (reachable) => {
            options.mcpServerReachable = reachable;
        },
        resetAfterNextWrite: (route) => {
            resetFaults.push({ route });
        },
        failNextRequests: (count, faultOptions = {}) => {
            proxyFaults.push({ status: faultOptions.status ?? 502, route: faultOptions.route, left: count });
        },
        resetSetup: () => {
            accounts.length = 0;
            setupAt = undefined;
            accessTokens.clear();
            refreshTokens.clear();
            csrfTokens.clear();
        },
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}
