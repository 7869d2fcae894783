// A local stand-in for Alibaba Cloud's OpenAPI MCP server behind a RAM OAuth 2.1 app, listening on 127.0.0.1 only.
// It plays both roles the real deployment splits over several hosts (openapi-mcp.<region>.aliyuncs.com for MCP,
// signin/oauth.aliyun.com for OAuth), so that Dify's real API server (1.14.1) can run its whole MCP OAuth flow:
//   1. POST to the MCP URL without a token -> 401 + `WWW-Authenticate: Bearer resource_metadata="…"`.
//   2. Protected-resource metadata (RFC 9728) at `/.well-known/oauth-protected-resource<mcp path>`.
//   3. Authorization-server metadata (RFC 8414) at `/.well-known/oauth-authorization-server[<issuer path>]`.
//   4. Optional dynamic client registration (RFC 7591); otherwise only preset clients (a RAM app's AppId).
//   5. `/authorize` (PKCE S256 only, exact redirect_uri match), consent decided by the test (`approve`/`deny`).
//   6. `/token`: authorization_code (PKCE, single-use codes) and refresh_token (rotating).
//   7. MCP over Streamable HTTP (JSON or SSE answers, Mcp-Session-Id) and the older HTTP+SSE transport.
// Besides its own endpoint it can serve every `/accounts/<uid>/custom/<name>/id/<id>/mcp` an Alibaba API stand-in
// hands out (`mcpEndpoints`) and trust every RAM OAuth app as a client (`clientLookup`), as Alibaba's server does.
// What Dify's client sends is taken from Dify 1.14.1's source (api/core/mcp/…); the file:function each rule
// rests on is named next to it. Every deviation from that is answered with a clear 4xx (or a JSON-RPC error), so a
// wrong client fails loudly. Facts about Alibaba's real server that no source settles are marked UNCONFIRMED.
import * as crypto from "crypto";
import * as http from "http";
import { AddressInfo } from "net";

// ----- public types ------------------------------------------------------------------------------------------

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The MCP path used when none is given: the shape of `urls.mcp` from GetApiMcpServer. */
export const DEFAULT_MCP_PATH = "/accounts/1234567890/custom/ops/id/AbCd/mcp";
/** Every path of that shape, `/accounts/<uid>/custom/<name>/id/<id>/mcp` (for `mcpEndpoints`). */
export const ALIBABA_MCP_PATH_PATTERN = /^\/accounts\/[^/]+\/custom\/[^/]+\/id\/[^/]+\/mcp$/;
/** "The OAuth scope must include /acs/mcp-server" (OpenAPIExplorer `oauthClientId` docs). */
export const MCP_SERVER_SCOPE = "/acs/mcp-server";
/** Dify's `SUPPORTED_PROTOCOL_VERSIONS` (core/mcp/entities.py); it rejects any other answer to `initialize`. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = ["2024-11-05", "2025-03-26", "2025-06-18"];
/** Dify's `LATEST_PROTOCOL_VERSION` (core/mcp/types.py). */
export const LATEST_PROTOCOL_VERSION = "2025-06-18";

/** A client registered out of band, like a RAM OAuth application. */
export interface PresetOAuthClient {
    clientId: string;
    /** Exact redirect URIs (RAM `RedirectUris`); Dify uses `${CONSOLE_API_URL}/console/api/mcp/oauth/callback`. */
    redirectUris: string[];
    /** Only for a confidential client (RAM WebApp). Without it the client is public (NativeApp): PKCE alone, and
     *  sending any client_secret is an error. */
    clientSecret?: string;
    /** Several valid secrets (a RAM app may have two while one is rotated); any one authenticates. With this or
     *  `clientSecret` the client is confidential, also when the list is empty (then nothing authenticates it). */
    clientSecrets?: string[];
}

/** One more MCP endpoint served besides `mcpPath` (see `McpOAuthServerOptions.mcpEndpoints`). */
export interface McpEndpoint {
    /** The only client whose tokens the endpoint accepts (an OpenAPI MCP server's `oauthClientId`); tokens of any
     *  other client get 401 invalid_token. Undefined: any client's token. Whether Alibaba checks this is UNCONFIRMED. */
    oauthClientId?: string;
}

export interface ToolPropertySchema {
    type: "string" | "integer" | "number" | "boolean" | "array" | "object";
    description?: string;
    enum?: (string | number)[];
    items?: JsonObject;
}

export interface ToolInputSchema {
    type: "object";
    properties: Record<string, ToolPropertySchema>;
    required?: string[];
    additionalProperties?: boolean;
}

export interface McpToolDefinition {
    name: string;
    description: string;
    inputSchema: ToolInputSchema;
    /** Answers a call whose arguments passed the schema. The value is sent as one JSON text content. Throw a
     *  `ToolExecutionError` for an API-level failure (answered as an `isError: true` result). */
    run(args: Record<string, JsonValue>): JsonValue;
}

/** An API-level failure of a tool, sent back as an `isError: true` result with `body` as JSON text. */
export class ToolExecutionError extends Error {
    constructor(readonly body: JsonObject) {
        super(typeof body.Message === "string" ? body.Message : JSON.stringify(body));
    }
}

/**
 * How `tools/call` fails while a failure is set.
 * * `jsonrpc-error`: a JSON-RPC error (code -32603). Dify raises `MCPConnectionError` for it
 *   (core/mcp/session/base_session.py `send_request`), `MCPTool.invoke_remote_mcp_tool` turns that into
 *   `ToolInvokeError("Failed to connect to MCP server: …")`, and the agent observation becomes
 *   `tool invoke error: …` (core/tools/tool_engine.py `agent_invoke`).
 * * `is-error-result`: a result with `isError: true`. Dify ignores `isError` (core/tools/mcp_tool/tool.py `_invoke`),
 *   so the message text becomes an ordinary observation and no "tool invoke error" appears.
 */
export interface ToolFailure {
    mode: "jsonrpc-error" | "is-error-result";
    /** Default: an Alibaba-style throttling message. */
    message?: string;
    /** Only these tools fail (default: all). */
    tools?: string[];
}

export type ResponseMode = "json" | "sse";

export interface McpOAuthServerOptions {
    /** Clients known without registration (RAM app AppIds). */
    presetClients?: PresetOAuthClient[];
    /**
     * Clients looked up on each request when neither preset nor registered, the way Alibaba's authorization server
     * trusts every RAM OAuth application of the account (e.g. `clientId => alibabaApiServer.oauthClient(clientId)`).
     * Looked up afresh each time, so a changed redirect URI, a new secret or a deleted app count at once.
     */
    clientLookup?: (clientId: string) => PresetOAuthClient | undefined;
    /**
     * More Streamable HTTP endpoints than `mcpPath`, decided per request: given a path ending in `/mcp` (a request
     * to `<prefix>/sse` or `<prefix>/message` asks about `<prefix>/mcp`), an `McpEndpoint` to serve it, or undefined
     * for 404. Like Alibaba, which serves `/accounts/<uid>/custom/<name>/id/<id>/mcp` for every OpenAPI MCP server
     * that exists (e.g. backed by `alibabaApiServer.mcpServerByPath`; see `ALIBABA_MCP_PATH_PATTERN`).
     */
    mcpEndpoints?: (mcpPath: string) => McpEndpoint | undefined;
    /** Offer RFC 7591 registration. Default false: whether Alibaba's AS supports it is UNCONFIRMED, and without it
     *  Dify (1.10+) must be given a preset client id, or it fails with "does not support dynamic client registration". */
    dynamicClientRegistration?: boolean;
    /** Tools offered; default `alibabaEcsTools()`. */
    tools?: McpToolDefinition[];
    /** Access token lifetime (may be fractional for tests; `expires_in` is rounded up, Dify parses it as int). Default 3600. */
    accessTokenTtlSeconds?: number;
    /** Default 7776000 (RAM NativeApp default RefreshTokenValidity). */
    refreshTokenTtlSeconds?: number;
    /** Default 300. */
    authorizationCodeTtlSeconds?: number;
    /** Path of the Streamable HTTP endpoint; must end in `/mcp`, since Dify picks the transport by the last path
     *  segment (core/mcp/mcp_client.py `_initialize`). The SSE endpoint is the same path ending in `/sse`. */
    mcpPath?: string;
    /** Path part of the issuer, e.g. "/oauth2/v1". Default "" (issuer = server origin). With a path the metadata sits
     *  only at the RFC 8414 path-insertion URL, which is the last one Dify tries. */
    authorizationServerPath?: string;
    /** `scopes_supported` in both metadata documents; Dify (1.10.1+) sends them as `scope`. Default [MCP_SERVER_SCOPE]. */
    scopes?: string[];
    /** Scope a token needs to use the MCP endpoint (403 insufficient_scope otherwise); null disables. Default MCP_SERVER_SCOPE. */
    requiredScope?: string | null;
    /** Form of answers to JSON-RPC requests on the Streamable HTTP endpoint. Default "json". */
    responseMode?: ResponseMode;
    /** Issue a new refresh token on each refresh and invalidate the old one (OAuth 2.1 for public clients). Default true.
     *  Whether RAM rotates refresh tokens is UNCONFIRMED. */
    rotateRefreshTokens?: boolean;
}

export type RequestKind =
    | "mcp"
    | "sse-stream"
    | "sse-message"
    | "protected-resource-metadata"
    | "authorization-server-metadata"
    | "authorize"
    | "consent-decision"
    | "token"
    | "register"
    | "unknown";

/** What the request's bearer token was. */
export type BearerState = "absent" | "malformed" | "unknown" | "expired" | "revoked" | "insufficient-scope" | "other-client" | "valid";

export interface RecordedRequest {
    method: string;
    /** Path without the query string. */
    path: string;
    query: Record<string, string>;
    kind: RequestKind;
    /** True only when a valid bearer token with the required scope came with the request. */
    authorized: boolean;
    bearer: BearerState;
    status: number;
    /** JSON-RPC method of an MCP message. */
    rpcMethod?: string;
    /** `grant_type` of a token request. */
    grantType?: string;
    /** OAuth error code, or JSON-RPC error message, of the answer. */
    error?: string;
}

export interface ToolInvocation {
    name: string;
    arguments: Record<string, JsonValue>;
    outcome: "success" | "tool-error" | "jsonrpc-error";
}

export interface RegisteredClientInfo {
    clientId: string;
    redirectUris: string[];
    dynamic: boolean;
    confidential: boolean;
    clientName?: string;
}

export interface ConsentRequest {
    id: string;
    clientId: string;
    redirectUri: string;
    state: string;
    scope: string;
    status: "pending" | "approved" | "denied";
}

export interface RevokeOptions {
    /** Keep refresh tokens valid, so a client can recover by refreshing. Default false (revoke everything). */
    keepRefreshTokens?: boolean;
}

// ----- internal state ----------------------------------------------------------------------------------------

interface RegisteredClient {
    clientId: string;
    redirectUris: string[];
    /** Confidential client: the secrets that authenticate it. Undefined: a public client. */
    clientSecrets?: string[];
    grantTypes: string[];
    dynamic: boolean;
    clientName?: string;
}

interface PendingConsent extends ConsentRequest {
    codeChallenge: string;
}

interface AuthorizationCode {
    clientId: string;
    redirectUri: string;
    codeChallenge: string;
    scope: string;
    expiresAt: number;
    used: boolean;
}

interface AccessToken {
    clientId: string;
    scope: string;
    /** The authorization code the token descends from (through any number of refreshes). */
    family: string;
    expiresAt: number;
    revoked: boolean;
}

interface RefreshToken {
    clientId: string;
    scope: string;
    family: string;
    expiresAt: number;
    revoked: boolean;
    /** Replaced by a newer one (rotation). */
    rotated: boolean;
}

interface McpSession {
    id: string;
    /** The Streamable HTTP path of the endpoint the session was opened on. */
    endpoint: string;
    transport: "streamable-http" | "sse";
    initializeAnswered: boolean;
    initialized: boolean;
    protocolVersion?: string;
    /** The open event stream of an SSE-transport session. */
    stream?: http.ServerResponse;
}

/** An OAuth protocol error: status + RFC 6749 error code. */
class OAuthFailure extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        description: string,
        readonly headers: Record<string, string> = {},
    ) {
        super(description);
    }
}

/** A transport-level MCP failure: an HTTP status with a JSON-RPC error body. */
class McpHttpFailure extends Error {
    constructor(
        readonly status: number,
        readonly rpcCode: number,
        message: string,
        readonly headers: Record<string, string> = {},
    ) {
        super(message);
    }
}

type RpcId = string | number;

/** What a JSON-RPC message leads to: an HTTP status, and a JSON-RPC response when there is one. */
interface RpcOutcome {
    status: 200 | 202 | 400;
    response?: JsonObject;
}

const JSONRPC_PARSE_ERROR = -32700;
const JSONRPC_INVALID_REQUEST = -32600;
const JSONRPC_METHOD_NOT_FOUND = -32601;
const JSONRPC_INVALID_PARAMS = -32602;
const JSONRPC_INTERNAL_ERROR = -32603;

const MAX_BODY_BYTES = 1024 * 1024;
/** RFC 7636 §4.1: 43–128 characters from the unreserved set. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;
const DEFAULT_TOOL_FAILURE_MESSAGE = "Throttling.User: Request was denied due to user flow control.";

function randomToken(prefix: string): string {
    return `${prefix}${crypto.randomBytes(32).toString("base64url")}`;
}

/** The secrets of a preset client; undefined for a public one. */
function secretsOf(client: PresetOAuthClient): string[] | undefined {
    if (client.clientSecrets === undefined && client.clientSecret === undefined) return undefined;
    return [...(client.clientSecrets ?? []), ...(client.clientSecret === undefined ? [] : [client.clientSecret])];
}

/** The endpoint a request path belongs to: its Streamable HTTP, SSE and SSE-message paths. */
interface ResolvedEndpoint {
    mcpPath: string;
    ssePath: string;
    messagePath: string;
    oauthClientId?: string;
}

/** The error_description of a refused bearer token. */
function bearerProblem(state: BearerState): string {
    return state === "other-client" ? "access token issued to another client than this MCP server's" : `access token ${state}`;
}

function s256(verifier: string): string {
    return crypto.createHash("sha256").update(verifier, "ascii").digest("base64url");
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(",") : value;
}

function isPlainObject(value: unknown): value is Record<string, JsonValue> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

function mediaType(req: http.IncomingMessage): string {
    return (headerValue(req, "content-type") ?? "").split(";")[0].trim().toLowerCase();
}

/** The media ranges of an Accept header, without parameters. */
function acceptedTypes(req: http.IncomingMessage): string[] {
    return (headerValue(req, "accept") ?? "")
        .split(",")
        .map((part) => part.split(";")[0].trim().toLowerCase())
        .filter((part) => part !== "");
}

function htmlEscape(text: string): string {
    return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function isAbsoluteHttpUrl(value: string): boolean {
    try {
        const url = new URL(value);
        return (url.protocol === "http:" || url.protocol === "https:") && url.hash === "";
    } catch {
        return false;
    }
}

/** Checks tool arguments against the schema: required names, declared types, enums. Numbers and booleans may come
 *  as strings, because Dify passes the LLM's arguments through and Alibaba's RPC APIs take every value as a string. */
function validateArguments(schema: ToolInputSchema, args: Record<string, JsonValue>): string[] {
    const problems: string[] = [];
    for (const name of schema.required ?? []) {
        if (args[name] === undefined || args[name] === null || args[name] === "") {
            problems.push(`missing required argument "${name}"`);
        }
    }
    for (const [name, value] of Object.entries(args)) {
        const property = schema.properties[name];
        if (!property) {
            if (schema.additionalProperties === false) problems.push(`unknown argument "${name}"`);
            continue;
        }
        if (value === null) continue;
        const numeric = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
        const typeOk =
            property.type === "string"
                ? typeof value === "string"
                : property.type === "integer"
                  ? Number.isInteger(numeric)
                  : property.type === "number"
                    ? Number.isFinite(numeric)
                    : property.type === "boolean"
                      ? typeof value === "boolean" || value === "true" || value === "false"
                      : property.type === "array"
                        ? Array.isArray(value)
                        : isPlainObject(value);
        if (!typeOk) problems.push(`argument "${name}" must be of type ${property.type}`);
        else if (property.enum && !property.enum.includes(value as string | number)) {
            problems.push(`argument "${name}" must be one of ${property.enum.join(", ")}`);
        }
    }
    return problems;
}

// ----- default tools -----------------------------------------------------------------------------------------

const ECS_REGIONS: { RegionId: string; LocalName: string }[] = [
    { RegionId: "cn-hangzhou", LocalName: "华东1（杭州）" },
    { RegionId: "cn-shanghai", LocalName: "华东2（上海）" },
    { RegionId: "cn-beijing", LocalName: "华北2（北京）" },
    { RegionId: "cn-shenzhen", LocalName: "华南1（深圳）" },
    { RegionId: "ap-southeast-1", LocalName: "新加坡" },
];

export interface EcsToolsOptions {
    /** Instances per region that DescribeInstances reports. Default { "cn-hangzhou": 2, "cn-shanghai": 1 }. */
    instanceCountByRegion?: Record<string, number>;
}

/** Two tools shaped like what an OpenAPI MCP server built from `{product:"Ecs", selectors:[DescribeInstances,
 *  DescribeRegions]}` offers: ECS API names, PascalCase parameters, the API's JSON answer as text. The exact tool
 *  naming and schemas of Alibaba's server are UNCONFIRMED. */
export function alibabaEcsTools(options: EcsToolsOptions = {}): McpToolDefinition[] {
    const counts = options.instanceCountByRegion ?? { "cn-hangzhou": 2, "cn-shanghai": 1 };
    const requestId = () => crypto.randomUUID().toUpperCase();
    return [
        {
            name: "Ecs-DescribeInstances",
            description: "Queries the details of one or more ECS instances in a region (Ecs 2014-05-26 DescribeInstances).",
            inputSchema: {
                type: "object",
                properties: {
                    RegionId: { type: "string", description: "The region ID, e.g. cn-hangzhou." },
                    PageNumber: { type: "integer", description: "Page number, starting at 1. Default 1." },
                    PageSize: { type: "integer", description: "Entries per page, 1-100. Default 10." },
                },
                required: ["RegionId"],
            },
            run(args) {
                const regionId = String(args.RegionId);
                if (!ECS_REGIONS.some((region) => region.RegionId === regionId)) {
                    throw new ToolExecutionError({ Code: "InvalidRegionId.NotFound", Message: `The specified RegionId ${regionId} does not exist.`, RequestId: requestId() });
                }
                const pageNumber = args.PageNumber === undefined ? 1 : Number(args.PageNumber);
                const pageSize = args.PageSize === undefined ? 10 : Number(args.PageSize);
                if (pageNumber < 1 || pageSize < 1 || pageSize > 100) {
                    throw new ToolExecutionError({ Code: "InvalidParameter", Message: "PageNumber must be >= 1 and PageSize 1-100.", RequestId: requestId() });
                }
                const total = counts[regionId] ?? 0;
                const all = Array.from({ length: total }, (_, index) => ({
                    InstanceId: `i-${regionId.replace(/-/g, "")}${String(index + 1).padStart(4, "0")}`,
                    InstanceName: `dify-test-${index + 1}`,
                    RegionId: regionId,
                    ZoneId: `${regionId}-k`,
                    Status: "Running",
                    InstanceType: "ecs.e-c1m2.large",
                }));
                const page = all.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
                return { RequestId: requestId(), TotalCount: total, PageNumber: pageNumber, PageSize: pageSize, Instances: { Instance: page } };
            },
        },
        {
            name: "Ecs-DescribeRegions",
            description: "Queries the regions available to ECS (Ecs 2014-05-26 DescribeRegions).",
            inputSchema: {
                type: "object",
                properties: {
                    AcceptLanguage: { type: "string", description: "Language of LocalName: zh-CN, en-US or ja." },
                },
            },
            run() {
                return {
                    RequestId: requestId(),
                    Regions: { Region: ECS_REGIONS.map((region) => ({ ...region, RegionEndpoint: `ecs.${region.RegionId}.aliyuncs.com`, Status: "available" })) },
                };
            },
        },
    ];
}

// ----- the server --------------------------------------------------------------------------------------------

export class McpOAuthServer {
    private readonly server: http.Server;
    private readonly recorded: RecordedRequest[] = [];
    private readonly invocations: ToolInvocation[] = [];
    private readonly clients = new Map<string, RegisteredClient>();
    private readonly consents = new Map<string, PendingConsent>();
    private readonly codes = new Map<string, AuthorizationCode>();
    private readonly accessTokens = new Map<string, AccessToken>();
    private readonly refreshTokens = new Map<string, RefreshToken>();
    private readonly sessions = new Map<string, McpSession>();
    private readonly tools: McpToolDefinition[];
    private readonly mcpPath: string;
    private readonly ssePath: string;
    private readonly sseMessagePath: string;
    private readonly asPath: string;
    private readonly scopes: string[];
    private readonly requiredScope: string | null;
    private readonly dynamicRegistration: boolean;
    private readonly accessTtlMs: number;
    private readonly refreshTtlMs: number;
    private readonly codeTtlMs: number;
    private readonly rotateRefreshTokens: boolean;
    private readonly clientLookup?: (clientId: string) => PresetOAuthClient | undefined;
    private readonly mcpEndpoints?: (mcpPath: string) => McpEndpoint | undefined;
    private responseMode: ResponseMode;
    private toolFailure: ToolFailure | null = null;
    private origin = "";

    private constructor(options: McpOAuthServerOptions) {
        this.mcpPath = options.mcpPath ?? DEFAULT_MCP_PATH;
        if (!this.mcpPath.startsWith("/") || !this.mcpPath.endsWith("/mcp")) {
            throw new Error(`mcpPath must start with "/" and end with "/mcp" (Dify picks the transport by the last path segment): ${this.mcpPath}`);
        }
        const prefix = this.mcpPath.slice(0, -"/mcp".length);
        this.ssePath = `${prefix}/sse`;
        this.sseMessagePath = `${prefix}/message`;
        this.asPath = (options.authorizationServerPath ?? "").replace(/\/+$/, "");
        if (this.asPath !== "" && !this.asPath.startsWith("/")) {
            throw new Error(`authorizationServerPath must start with "/": ${this.asPath}`);
        }
        this.scopes = options.scopes ?? [MCP_SERVER_SCOPE];
        this.requiredScope = options.requiredScope === undefined ? MCP_SERVER_SCOPE : options.requiredScope;
        this.dynamicRegistration = options.dynamicClientRegistration ?? false;
        this.accessTtlMs = (options.accessTokenTtlSeconds ?? 3600) * 1000;
        this.refreshTtlMs = (options.refreshTokenTtlSeconds ?? 7_776_000) * 1000;
        this.codeTtlMs = (options.authorizationCodeTtlSeconds ?? 300) * 1000;
        this.rotateRefreshTokens = options.rotateRefreshTokens ?? true;
        this.responseMode = options.responseMode ?? "json";
        this.tools = options.tools ?? alibabaEcsTools();
        this.clientLookup = options.clientLookup;
        this.mcpEndpoints = options.mcpEndpoints;
        for (const preset of options.presetClients ?? []) {
            if (preset.redirectUris.length === 0) throw new Error(`preset client ${preset.clientId} has no redirect URIs`);
            this.clients.set(preset.clientId, {
                clientId: preset.clientId,
                redirectUris: [...preset.redirectUris],
                clientSecrets: secretsOf(preset),
                grantTypes: ["authorization_code", "refresh_token"],
                dynamic: false,
            });
        }
        this.server = http.createServer((req, res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            req.on("data", (chunk: Buffer) => {
                size += chunk.length;
                if (size <= MAX_BODY_BYTES) chunks.push(chunk);
            });
            req.on("end", () => this.handle(req, size > MAX_BODY_BYTES ? null : Buffer.concat(chunks), res));
        });
        // httpx keeps idle connections for 5 s (Dify's SSRF pool and MCP clients); Node's default 5 s idle timeout
        // would race with that and make httpx send on a closing socket.
        this.server.keepAliveTimeout = 60_000;
    }

    static async start(options: McpOAuthServerOptions = {}): Promise<McpOAuthServer> {
        const instance = new McpOAuthServer(options);
        await new Promise<void>((resolve) => instance.server.listen(0, "127.0.0.1", resolve));
        const port = (instance.server.address() as AddressInfo).port;
        instance.origin = `http://127.0.0.1:${port}`;
        return instance;
    }

    // ----- URLs --------------------------------------------------------------------------------------------------

    /** `http://127.0.0.1:<port>`. */
    get url(): string {
        return this.origin;
    }

    /** The Streamable HTTP endpoint: the `server_url` to give Dify. */
    get mcpUrl(): string {
        return `${this.origin}${this.mcpPath}`;
    }

    /** The HTTP+SSE endpoint (Dify uses the SSE transport for URLs ending in `/sse`). */
    get sseUrl(): string {
        return `${this.origin}${this.ssePath}`;
    }

    get issuer(): string {
        return `${this.origin}${this.asPath}`;
    }

    /** What the 401's `resource_metadata` points at. */
    get protectedResourceMetadataUrl(): string {
        return `${this.origin}/.well-known/oauth-protected-resource${this.mcpPath}`;
    }

    get authorizationServerMetadataUrl(): string {
        return `${this.origin}/.well-known/oauth-authorization-server${this.asPath}`;
    }

    get authorizationEndpoint(): string {
        return `${this.issuer}/authorize`;
    }

    get tokenEndpoint(): string {
        return `${this.issuer}/token`;
    }

    /** Undefined while dynamic registration is off. */
    get registrationEndpoint(): string | undefined {
        return this.dynamicRegistration ? `${this.issuer}/register` : undefined;
    }

    close(): Promise<void> {
        for (const session of this.sessions.values()) session.stream?.end();
        this.sessions.clear();
        return new Promise((resolve) => {
            this.server.closeAllConnections();
            this.server.close(() => resolve());
        });
    }

    // ----- test controls -----------------------------------------------------------------------------------------

    /** Every request received so far, in order. */
    get calls(): readonly RecordedRequest[] {
        return this.recorded;
    }

    /** A position in the call log, for `callsSince`. */
    mark(): number {
        return this.recorded.length;
    }

    callsSince(mark: number): RecordedRequest[] {
        return this.recorded.slice(mark);
    }

    /** Every `tools/call` that reached a tool (or the failure switch), in order. */
    get toolInvocations(): readonly ToolInvocation[] {
        return this.invocations;
    }

    registeredClients(): RegisteredClientInfo[] {
        return [...this.clients.values()].map((client) => ({
            clientId: client.clientId,
            redirectUris: [...client.redirectUris],
            dynamic: client.dynamic,
            confidential: client.clientSecrets !== undefined,
            clientName: client.clientName,
        }));
    }

    /** A preset or registered client, else one `clientLookup` knows (looked up afresh each time). */
    private findClient(clientId: string): RegisteredClient | undefined {
        const known = this.clients.get(clientId);
        if (known) return known;
        const found = this.clientLookup?.(clientId);
        if (!found || found.clientId !== clientId || found.redirectUris.length === 0) return undefined;
        return {
            clientId,
            redirectUris: [...found.redirectUris],
            clientSecrets: secretsOf(found),
            grantTypes: ["authorization_code", "refresh_token"],
            dynamic: false,
        };
    }

    consentRequests(): ConsentRequest[] {
        return [...this.consents.values()].map(({ codeChallenge: _challenge, ...consent }) => ({ ...consent }));
    }

    /** Open MCP sessions (both transports). */
    get sessionCount(): number {
        return this.sessions.size;
    }

    /**
     * The user approves the consent page of `authorizationUrl` (the URL Dify returned as `authorization_url`).
     * If nobody opened the page yet, it is opened first, as a browser would, and its rejection is thrown.
     * Returns `<redirect_uri>?code=…&state=…`, which the test then GETs against Dify's callback.
     */
    async approve(authorizationUrl: string): Promise<string> {
        return this.decide(await this.consentFor(authorizationUrl), "approve");
    }

    /** The user refuses: returns `<redirect_uri>?error=access_denied&…&state=…`. */
    async deny(authorizationUrl: string): Promise<string> {
        return this.decide(await this.consentFor(authorizationUrl), "deny");
    }

    /** Revokes every token issued so far (as deleting the RAM app's grant would). Returns how many of them were
     *  still usable (not expired, revoked or rotated away). */
    revokeTokens(options: RevokeOptions = {}): number {
        const now = Date.now();
        let count = 0;
        for (const token of this.accessTokens.values()) {
            if (!token.revoked && token.expiresAt > now) count++;
            token.revoked = true;
        }
        if (!options.keepRefreshTokens) {
            for (const token of this.refreshTokens.values()) {
                if (!token.revoked && !token.rotated && token.expiresAt > now) count++;
                token.revoked = true;
            }
        }
        return count;
    }

    /** Makes every current access token expired (refresh tokens stay valid). Returns how many. */
    expireAccessTokens(): number {
        let count = 0;
        const now = Date.now();
        for (const token of this.accessTokens.values()) {
            if (token.expiresAt > now) {
                token.expiresAt = now - 1;
                count++;
            }
        }
        return count;
    }

    /** Makes `tools/call` fail (see `ToolFailure`), or succeed again with null. */
    setToolFailure(failure: ToolFailure | null): void {
        this.toolFailure = failure && { ...failure };
    }

    setResponseMode(mode: ResponseMode): void {
        this.responseMode = mode;
    }

    // ----- consent ---------------------------------------------------------------------------------------------

    private findConsent(params: URLSearchParams): PendingConsent | undefined {
        for (const consent of this.consents.values()) {
            if (
                consent.state === params.get("state") &&
                consent.clientId === params.get("client_id") &&
                consent.redirectUri === params.get("redirect_uri") &&
                consent.codeChallenge === params.get("code_challenge")
            ) {
                return consent;
            }
        }
        return undefined;
    }

    private async consentFor(authorizationUrl: string): Promise<PendingConsent> {
        const url = new URL(authorizationUrl);
        if (`${url.origin}${url.pathname}` !== this.authorizationEndpoint) {
            throw new Error(`${url.origin}${url.pathname} is not this server's authorization endpoint (${this.authorizationEndpoint})`);
        }
        let consent = this.findConsent(url.searchParams);
        if (!consent) {
            // Nobody opened the page yet: the user's browser does it now.
            const response = await fetch(authorizationUrl, { redirect: "manual" });
            const text = await response.text();
            if (response.status !== 200) {
                throw new Error(`authorization request rejected with HTTP ${response.status}: ${text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim()}`);
            }
            consent = this.findConsent(url.searchParams);
            if (!consent) throw new Error("the authorization page was shown but no consent request was recorded");
        }
        if (consent.status !== "pending") throw new Error(`consent ${consent.id} was already ${consent.status}`);
        return consent;
    }

    private decide(consent: PendingConsent, decision: "approve" | "deny"): string {
        const target = new URL(consent.redirectUri);
        if (decision === "deny") {
            consent.status = "denied";
            target.searchParams.append("error", "access_denied");
            target.searchParams.append("error_description", "The user denied the authorization request.");
        } else {
            consent.status = "approved";
            const code = randomToken("code_");
            this.codes.set(code, {
                clientId: consent.clientId,
                redirectUri: consent.redirectUri,
                codeChallenge: consent.codeChallenge,
                scope: consent.scope,
                expiresAt: Date.now() + this.codeTtlMs,
                used: false,
            });
            target.searchParams.append("code", code);
        }
        target.searchParams.append("state", consent.state);
        return target.toString();
    }

    // ----- request handling --------------------------------------------------------------------------------------

    private handle(req: http.IncomingMessage, body: Buffer | null, res: http.ServerResponse): void {
        const url = new URL(req.url ?? "/", this.origin);
        const method = (req.method ?? "GET").toUpperCase();
        const path = url.pathname;
        const { kind, endpoint } = this.kindOf(path);
        const call: RecordedRequest = {
            method,
            path,
            query: Object.fromEntries(url.searchParams),
            kind,
            authorized: false,
            bearer: "absent",
            status: 0,
        };
        this.recorded.push(call);
        try {
            if (body === null) {
                throw new OAuthFailure(413, "invalid_request", `request body larger than ${MAX_BODY_BYTES} bytes`);
            }
            switch (call.kind) {
                case "mcp":
                    return this.handleStreamableHttp(req, method, body, res, call, endpoint!);
                case "sse-stream":
                    return this.handleSseStream(req, method, res, call, endpoint!);
                case "sse-message":
                    return this.handleSseMessage(req, method, url, body, res, call, endpoint!);
                case "protected-resource-metadata":
                    return this.handleProtectedResourceMetadata(method, path, res, call);
                case "authorization-server-metadata":
                    return this.handleAuthorizationServerMetadata(method, res, call);
                case "authorize":
                    return this.handleAuthorize(method, url, res, call);
                case "consent-decision":
                    return this.handleConsentDecision(req, method, body, res, call);
                case "token":
                    return this.handleToken(req, method, body, res, call);
                case "register":
                    return this.handleRegister(req, method, body, res, call);
                case "unknown":
                    throw new OAuthFailure(404, "not_found", `nothing at ${method} ${path}`);
            }
        } catch (err) {
            if (err instanceof McpHttpFailure) {
                this.sendRpcFailure(res, call, err);
            } else if (err instanceof OAuthFailure) {
                this.sendOAuthError(res, call, err);
            } else {
                this.sendOAuthError(res, call, new OAuthFailure(500, "server_error", (err as Error).message));
            }
        }
    }

    /** The endpoint `path` (an MCP, SSE or SSE-message path) belongs to: the default one or one `mcpEndpoints` serves. */
    private endpointOf(path: string): { endpoint: ResolvedEndpoint; kind: "mcp" | "sse-stream" | "sse-message" } | undefined {
        const slash = path.lastIndexOf("/");
        const last = path.slice(slash + 1);
        const kind = last === "mcp" ? "mcp" : last === "sse" ? "sse-stream" : last === "message" ? "sse-message" : undefined;
        if (kind === undefined || slash < 0) return undefined;
        const prefix = path.slice(0, slash);
        const mcpPath = `${prefix}/mcp`;
        const endpoint = { mcpPath, ssePath: `${prefix}/sse`, messagePath: `${prefix}/message` };
        if (mcpPath === this.mcpPath) return { endpoint, kind };
        const extra = this.mcpEndpoints?.(mcpPath);
        return extra ? { endpoint: { ...endpoint, oauthClientId: extra.oauthClientId }, kind } : undefined;
    }

    private kindOf(path: string): { kind: RequestKind; endpoint?: ResolvedEndpoint } {
        const served = this.endpointOf(path);
        if (served) return served;
        const metadataPrefix = "/.well-known/oauth-protected-resource";
        if (path.startsWith(`${metadataPrefix}/`)) {
            const resource = this.endpointOf(path.slice(metadataPrefix.length));
            if (resource && resource.kind !== "sse-message") return { kind: "protected-resource-metadata", endpoint: resource.endpoint };
        }
        return { kind: this.oauthKindOf(path) };
    }

    private oauthKindOf(path: string): RequestKind {
        // RFC 8414 §3.1: the well-known segment goes between host and issuer path. No OpenID configuration is served,
        // so with an issuer path Dify reaches this only after four 404s (auth_flow.py
        // build_oauth_authorization_server_metadata_discovery_urls).
        if (path === `/.well-known/oauth-authorization-server${this.asPath}`) return "authorization-server-metadata";
        if (path === `${this.asPath}/authorize`) return "authorize";
        if (path === `${this.asPath}/authorize/decision`) return "consent-decision";
        if (path === `${this.asPath}/token`) return "token";
        if (path === `${this.asPath}/register` && this.dynamicRegistration) return "register";
        return "unknown";
    }

    private send(res: http.ServerResponse, call: RecordedRequest, status: number, headers: Record<string, string>, body?: string): void {
        call.status = status;
        res.writeHead(status, headers);
        res.end(body);
    }

    private sendJson(res: http.ServerResponse, call: RecordedRequest, status: number, payload: JsonValue, headers: Record<string, string> = {}): void {
        this.send(res, call, status, { "content-type": "application/json", "cache-control": "no-store", ...headers }, JSON.stringify(payload));
    }

    private sendOAuthError(res: http.ServerResponse, call: RecordedRequest, failure: OAuthFailure): void {
        call.error = failure.code;
        this.sendJson(res, call, failure.status, { error: failure.code, error_description: failure.message }, failure.headers);
    }

    private sendRpcFailure(res: http.ServerResponse, call: RecordedRequest, failure: McpHttpFailure): void {
        call.error = failure.message;
        this.sendJson(res, call, failure.status, rpcError(null, failure.rpcCode, failure.message), failure.headers);
    }

    private requireMethod(method: string, allowed: string[]): void {
        if (!allowed.includes(method)) {
            throw new OAuthFailure(405, "invalid_request", `method ${method} not allowed here; use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
        }
    }

    // ----- bearer tokens -----------------------------------------------------------------------------------------

    /** Checks the bearer token of an MCP request, recording what it was. Throws the 401/403 answer. */
    private authenticate(req: http.IncomingMessage, call: RecordedRequest, resourcePath: string, endpoint: ResolvedEndpoint): void {
        const resourceMetadata = `${this.origin}/.well-known/oauth-protected-resource${resourcePath}`;
        const header = headerValue(req, "authorization");
        // Dify sends `${token_type.capitalize()} ${access_token}` = "Bearer …" (core/entities/mcp_provider.py).
        const match = header === undefined ? null : /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
        let state: BearerState;
        if (header === undefined) state = "absent";
        else if (!match) state = "malformed";
        else {
            const token = this.accessTokens.get(match[1]);
            if (!token) state = "unknown";
            else if (token.revoked) state = "revoked";
            else if (token.expiresAt <= Date.now()) state = "expired";
            else if (this.requiredScope !== null && !token.scope.split(" ").includes(this.requiredScope)) state = "insufficient-scope";
            else if (endpoint.oauthClientId !== undefined && token.clientId !== endpoint.oauthClientId) state = "other-client";
            else state = "valid";
        }
        call.bearer = state;
        call.authorized = state === "valid";
        if (state === "valid") return;
        if (state === "insufficient-scope") {
            throw new McpHttpFailure(403, JSONRPC_INVALID_REQUEST, `the access token lacks scope ${this.requiredScope}`, {
                "www-authenticate": `Bearer error="insufficient_scope", scope="${this.requiredScope}", resource_metadata="${resourceMetadata}"`,
            });
        }
        // Dify reads resource_metadata with the regex `resource_metadata="([^"]*)"` (core/mcp/error.py
        // MCPAuthError._extract_field) and tries that URL first (auth_flow.py
        // build_protected_resource_metadata_discovery_urls). No `scope=` is sent: it would outrank every metadata scope.
        const challenge =
            state === "absent"
                ? `Bearer resource_metadata="${resourceMetadata}"`
                : `Bearer error="invalid_token", error_description="${bearerProblem(state)}", resource_metadata="${resourceMetadata}"`;
        // 401 is what Dify turns into MCPAuthError (session/base_session.py send_request), which starts auth().
        throw new McpHttpFailure(401, JSONRPC_INVALID_REQUEST, state === "absent" ? "authorization required" : bearerProblem(state), {
            "www-authenticate": challenge,
        });
    }

    // ----- MCP: Streamable HTTP ----------------------------------------------------------------------------------

    private handleStreamableHttp(req: http.IncomingMessage, method: string, body: Buffer, res: http.ServerResponse, call: RecordedRequest, endpoint: ResolvedEndpoint): void {
        if (!["POST", "GET", "DELETE"].includes(method)) {
            throw new McpHttpFailure(405, JSONRPC_INVALID_REQUEST, `method ${method} not allowed on the MCP endpoint`, { allow: "POST, GET, DELETE" });
        }
        this.authenticate(req, call, endpoint.mcpPath, endpoint);
        if (method === "GET") {
            // Dify opens this GET stream after notifications/initialized and treats any error as "no stream"
            // (client/streamable_client.py handle_get_stream). Server-initiated messages are not offered.
            this.streamableSession(req, endpoint);
            throw new McpHttpFailure(405, JSONRPC_INVALID_REQUEST, "this server offers no server-initiated stream", { allow: "POST, DELETE" });
        }
        if (method === "DELETE") {
            // Dify ends sessions with DELETE and expects 200 (streamable_client.py terminate_session).
            const session = this.streamableSession(req, endpoint);
            this.sessions.delete(session.id);
            this.send(res, call, 200, {});
            return;
        }
        // Dify sends `Accept: application/json, text/event-stream` and `content-type: application/json`
        // (StreamableHTTPTransport.request_headers); the MCP spec requires both media types in Accept.
        const accepted = acceptedTypes(req);
        if (!accepted.includes("application/json") || !accepted.includes("text/event-stream")) {
            throw new McpHttpFailure(406, JSONRPC_INVALID_REQUEST, "Accept must list both application/json and text/event-stream");
        }
        if (mediaType(req) !== "application/json") {
            throw new McpHttpFailure(415, JSONRPC_INVALID_REQUEST, "Content-Type must be application/json");
        }
        const message = parseRpcMessage(body);
        call.rpcMethod = message.method;
        this.checkProtocolVersionHeader(req);

        let session: McpSession;
        const sessionHeaders: Record<string, string> = {};
        if (message.method === "initialize") {
            if (headerValue(req, "mcp-session-id") !== undefined) {
                throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "initialize must not carry an Mcp-Session-Id");
            }
            session = { id: crypto.randomUUID(), endpoint: endpoint.mcpPath, transport: "streamable-http", initializeAnswered: false, initialized: false };
            // Dify reads the id from the initialize answer only (streamable_client.py _maybe_extract_session_id_from_response).
            sessionHeaders["mcp-session-id"] = session.id;
        } else {
            session = this.streamableSession(req, endpoint);
        }

        const outcome = this.dispatch(session, message, call);
        if (message.method === "initialize" && outcome.status === 200 && outcome.response && "result" in outcome.response) {
            this.sessions.set(session.id, session);
        } else {
            delete sessionHeaders["mcp-session-id"];
        }
        if (outcome.status === 202) {
            // Notifications and client responses: 202 with no body (Dify returns on 202, streamable_client.py).
            this.send(res, call, 202, sessionHeaders);
            return;
        }
        const payload = JSON.stringify(outcome.response);
        if (outcome.status === 200 && this.responseMode === "sse") {
            // One `message` event carrying the response, then end: what _handle_sse_response reads until it sees a
            // response or error.
            this.send(res, call, 200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...sessionHeaders }, `event: message\ndata: ${payload}\n\n`);
        } else {
            this.send(res, call, outcome.status, { "content-type": "application/json", ...sessionHeaders }, payload);
        }
    }

    /** The session a non-initialize request names. The MCP spec's answers: 400 without the header, 404 for an
     *  unknown (or ended) session, which Dify reports as "Session terminated by server". */
    private streamableSession(req: http.IncomingMessage, endpoint: ResolvedEndpoint): McpSession {
        const id = headerValue(req, "mcp-session-id");
        if (id === undefined || id === "") {
            throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "Mcp-Session-Id header is required (send initialize first)");
        }
        const session = this.sessions.get(id);
        if (!session || session.transport !== "streamable-http" || session.endpoint !== endpoint.mcpPath) {
            throw new McpHttpFailure(404, JSONRPC_INVALID_REQUEST, `session ${id} not found`);
        }
        return session;
    }

    /** Dify sends no MCP-Protocol-Version header on MCP requests (only on discovery); when a client does, it must be
     *  a version this server speaks. */
    private checkProtocolVersionHeader(req: http.IncomingMessage): void {
        const version = headerValue(req, "mcp-protocol-version");
        if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
            throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, `unsupported MCP-Protocol-Version ${version}`);
        }
    }

    // ----- MCP: HTTP+SSE (2024-11-05 transport) ------------------------------------------------------------------

    private handleSseStream(req: http.IncomingMessage, method: string, res: http.ServerResponse, call: RecordedRequest, endpoint: ResolvedEndpoint): void {
        if (method !== "GET") {
            throw new McpHttpFailure(405, JSONRPC_INVALID_REQUEST, `method ${method} not allowed on the SSE endpoint`, { allow: "GET" });
        }
        // Dify's sse_client turns a 401 here into MCPAuthError, like the streamable transport.
        this.authenticate(req, call, endpoint.ssePath, endpoint);
        if (!acceptedTypes(req).includes("text/event-stream")) {
            throw new McpHttpFailure(406, JSONRPC_INVALID_REQUEST, "Accept must list text/event-stream");
        }
        const session: McpSession = { id: crypto.randomUUID(), endpoint: endpoint.mcpPath, transport: "sse", initializeAnswered: false, initialized: false, stream: res };
        this.sessions.set(session.id, session);
        call.status = 200;
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        // Dify resolves the endpoint against the SSE URL and requires the same origin (sse_client.py
        // _handle_endpoint_event), and waits only 1 s for it (_wait_for_endpoint).
        res.write(`event: endpoint\ndata: ${endpoint.messagePath}?sessionId=${session.id}\n\n`);
        res.on("close", () => this.sessions.delete(session.id));
    }

    private handleSseMessage(req: http.IncomingMessage, method: string, url: URL, body: Buffer, res: http.ServerResponse, call: RecordedRequest, endpoint: ResolvedEndpoint): void {
        if (method !== "POST") {
            throw new McpHttpFailure(405, JSONRPC_INVALID_REQUEST, `method ${method} not allowed on the message endpoint`, { allow: "POST" });
        }
        this.authenticate(req, call, endpoint.ssePath, endpoint);
        const id = url.searchParams.get("sessionId");
        if (!id) throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "sessionId query parameter is required");
        const session = this.sessions.get(id);
        if (!session || session.transport !== "sse" || !session.stream || session.endpoint !== endpoint.mcpPath) {
            throw new McpHttpFailure(404, JSONRPC_INVALID_REQUEST, `session ${id} not found`);
        }
        if (mediaType(req) !== "application/json") {
            throw new McpHttpFailure(415, JSONRPC_INVALID_REQUEST, "Content-Type must be application/json");
        }
        const message = parseRpcMessage(body);
        call.rpcMethod = message.method;
        const outcome = this.dispatch(session, message, call);
        if (outcome.status === 400) {
            this.sendJson(res, call, 400, outcome.response ?? null);
            return;
        }
        // The answer goes over the event stream; the POST only acknowledges (Dify only checks raise_for_status).
        this.send(res, call, 202, { "content-type": "text/plain" }, "Accepted");
        if (outcome.response) session.stream.write(`event: message\ndata: ${JSON.stringify(outcome.response)}\n\n`);
    }

    // ----- MCP: JSON-RPC -----------------------------------------------------------------------------------------

    private dispatch(session: McpSession, message: RpcMessage, call: RecordedRequest): RpcOutcome {
        if (message.kind === "response") return { status: 202 };
        const fail = (status: 200 | 400, code: number, text: string): RpcOutcome => {
            call.error = text;
            return { status, response: rpcError(message.kind === "request" ? message.id : null, code, text) };
        };
        if (message.kind === "notification") {
            if (message.method === "notifications/initialized") {
                if (!session.initializeAnswered) return fail(400, JSONRPC_INVALID_REQUEST, "notifications/initialized before initialize");
                session.initialized = true;
            }
            return { status: 202 };
        }
        const id = message.id;
        const ok = (result: JsonObject): RpcOutcome => ({ status: 200, response: { jsonrpc: "2.0", id, result } });
        if (message.method === "initialize") {
            if (session.initializeAnswered) return fail(400, JSONRPC_INVALID_REQUEST, "session is already initialized");
            const params = message.params;
            // Dify's ClientSession.initialize sends protocolVersion, capabilities and clientInfo{name, version}.
            if (!params || typeof params.protocolVersion !== "string" || !isPlainObject(params.capabilities) || !isPlainObject(params.clientInfo) || typeof params.clientInfo.name !== "string") {
                return fail(200, JSONRPC_INVALID_PARAMS, "initialize needs params.protocolVersion, params.capabilities and params.clientInfo.name");
            }
            const version = SUPPORTED_PROTOCOL_VERSIONS.includes(params.protocolVersion) ? params.protocolVersion : LATEST_PROTOCOL_VERSION;
            session.initializeAnswered = true;
            session.protocolVersion = version;
            return ok({
                protocolVersion: version,
                capabilities: { tools: { listChanged: false } },
                serverInfo: { name: "alibaba-cloud-openapi-mcp-server (local stand-in)", version: "1.0.0" },
                instructions: "Alibaba Cloud OpenAPI tools. Pass RegionId, e.g. cn-hangzhou.",
            });
        }
        if (message.method === "ping") {
            if (!session.initializeAnswered) return fail(400, JSONRPC_INVALID_REQUEST, "ping before initialize");
            return ok({});
        }
        // Dify always sends notifications/initialized before any other request (client_session.py initialize), so a
        // request before it means a broken client.
        if (!session.initialized) return fail(400, JSONRPC_INVALID_REQUEST, `${message.method} before notifications/initialized`);
        if (message.method === "tools/list") {
            return ok({ tools: this.tools.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema as unknown as JsonObject })) });
        }
        if (message.method === "tools/call") {
            return this.callTool(message.id, message.params, call);
        }
        return fail(200, JSONRPC_METHOD_NOT_FOUND, `method not found: ${message.method}`);
    }

    private callTool(id: RpcId, params: Record<string, JsonValue> | undefined, call: RecordedRequest): RpcOutcome {
        const fail = (code: number, text: string): RpcOutcome => {
            call.error = text;
            return { status: 200, response: rpcError(id, code, text) };
        };
        const result = (text: string, isError: boolean): RpcOutcome => ({ status: 200, response: { jsonrpc: "2.0", id, result: { content: [{ type: "text", text }], isError } } });
        if (!params || typeof params.name !== "string") return fail(JSONRPC_INVALID_PARAMS, "tools/call needs params.name");
        const tool = this.tools.find((candidate) => candidate.name === params.name);
        if (!tool) return fail(JSONRPC_INVALID_PARAMS, `unknown tool: ${params.name}`);
        if (params.arguments !== undefined && !isPlainObject(params.arguments)) return fail(JSONRPC_INVALID_PARAMS, "params.arguments must be an object");
        const args = params.arguments ?? {};
        const invocation: ToolInvocation = { name: tool.name, arguments: structuredClone(args), outcome: "success" };
        this.invocations.push(invocation);

        const failure = this.toolFailure;
        if (failure && (!failure.tools || failure.tools.includes(tool.name))) {
            const text = failure.message ?? DEFAULT_TOOL_FAILURE_MESSAGE;
            if (failure.mode === "jsonrpc-error") {
                invocation.outcome = "jsonrpc-error";
                return fail(JSONRPC_INTERNAL_ERROR, text);
            }
            invocation.outcome = "tool-error";
            call.error = text;
            return result(text, true);
        }
        const problems = validateArguments(tool.inputSchema, args);
        if (problems.length > 0) {
            invocation.outcome = "jsonrpc-error";
            return fail(JSONRPC_INVALID_PARAMS, `invalid arguments for ${tool.name}: ${problems.join("; ")}`);
        }
        try {
            return result(JSON.stringify(tool.run(args)), false);
        } catch (err) {
            if (err instanceof ToolExecutionError) {
                invocation.outcome = "tool-error";
                call.error = err.message;
                return result(JSON.stringify(err.body), true);
            }
            invocation.outcome = "jsonrpc-error";
            return fail(JSONRPC_INTERNAL_ERROR, `tool ${tool.name} failed: ${(err as Error).message}`);
        }
    }

    // ----- OAuth: metadata ---------------------------------------------------------------------------------------

    private handleProtectedResourceMetadata(method: string, path: string, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["GET"]);
        const resourcePath = path.slice("/.well-known/oauth-protected-resource".length);
        // Dify reads authorization_servers[0] (auth_flow.py discover_oauth_metadata) and prefers these scopes over the
        // AS metadata's (get_effective_scope).
        this.sendJson(res, call, 200, {
            resource: `${this.origin}${resourcePath}`,
            authorization_servers: [this.issuer],
            scopes_supported: this.scopes,
            bearer_methods_supported: ["header"],
        });
    }

    private handleAuthorizationServerMetadata(method: string, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["GET"]);
        const hasConfidentialClient = this.clientLookup !== undefined || [...this.clients.values()].some((client) => client.clientSecrets !== undefined);
        const metadata: JsonObject = {
            issuer: this.issuer,
            authorization_endpoint: this.authorizationEndpoint,
            token_endpoint: this.tokenEndpoint,
            // Dify chooses authorization_code only when it is listed; otherwise client_credentials (auth_flow.py auth).
            grant_types_supported: ["authorization_code", "refresh_token"],
            // Dify refuses an AS without "code" here (auth_flow.py start_authorization).
            response_types_supported: ["code"],
            code_challenge_methods_supported: ["S256"],
            token_endpoint_auth_methods_supported: hasConfidentialClient ? ["none", "client_secret_post", "client_secret_basic"] : ["none"],
            scopes_supported: this.scopes,
        };
        // Without registration_endpoint Dify cannot register and needs a preset client (auth_flow.py register_client).
        if (this.registrationEndpoint) metadata.registration_endpoint = this.registrationEndpoint;
        this.sendJson(res, call, 200, metadata);
    }

    // ----- OAuth: authorization ----------------------------------------------------------------------------------

    private handleAuthorize(method: string, url: URL, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["GET"]);
        const params = url.searchParams;
        for (const name of ["response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"]) {
            if (params.getAll(name).length > 1) throw new OAuthFailure(400, "invalid_request", `parameter ${name} repeated`);
        }
        // Every problem is shown to the user as a 400 page rather than redirected back (RFC 6749 §4.1.2.1 allows that
        // only for client/redirect problems; doing it for all makes a wrong client fail at the first step).
        const clientId = params.get("client_id");
        if (!clientId) throw new OAuthFailure(400, "invalid_request", "client_id is required");
        const client = this.findClient(clientId);
        if (!client) throw new OAuthFailure(400, "invalid_client", `unknown client_id ${clientId}`);
        const redirectUri = params.get("redirect_uri");
        if (!redirectUri) throw new OAuthFailure(400, "invalid_request", "redirect_uri is required");
        if (!client.redirectUris.includes(redirectUri)) {
            throw new OAuthFailure(400, "invalid_request", `redirect_uri ${redirectUri} is not registered for client ${clientId} (registered: ${client.redirectUris.join(", ")})`);
        }
        if (!client.grantTypes.includes("authorization_code")) {
            throw new OAuthFailure(400, "unauthorized_client", `client ${clientId} may not use the authorization_code grant`);
        }
        const responseType = params.get("response_type");
        if (responseType !== "code") throw new OAuthFailure(400, "unsupported_response_type", `response_type must be "code", got ${JSON.stringify(responseType)}`);
        const challenge = params.get("code_challenge");
        if (!challenge) throw new OAuthFailure(400, "invalid_request", "code_challenge is required (PKCE)");
        if (!PKCE_VALUE.test(challenge)) throw new OAuthFailure(400, "invalid_request", "code_challenge is not a valid S256 challenge");
        const challengeMethod = params.get("code_challenge_method");
        if (challengeMethod !== "S256") {
            throw new OAuthFailure(400, "invalid_request", `code_challenge_method must be S256, got ${JSON.stringify(challengeMethod)}`);
        }
        const state = params.get("state");
        if (!state) throw new OAuthFailure(400, "invalid_request", "state is required");
        const requested = params.get("scope");
        let scope: string;
        if (requested === null || requested.trim() === "") {
            // Dify 1.10.0 sends no scope; the app's scopes are granted then, as RAM does with RequiredScopes (UNCONFIRMED).
            scope = this.scopes.join(" ");
        } else {
            const names = requested.split(" ").filter((name) => name !== "");
            const unknown = names.filter((name) => !this.scopes.includes(name));
            if (unknown.length > 0) throw new OAuthFailure(400, "invalid_scope", `unsupported scope ${unknown.join(" ")}`);
            scope = names.join(" ");
        }
        const existing = this.findConsent(params);
        if (existing) throw new OAuthFailure(400, "invalid_request", `this authorization request was already shown (consent ${existing.status})`);
        const consent: PendingConsent = { id: crypto.randomUUID(), clientId, redirectUri, state, scope, status: "pending", codeChallenge: challenge };
        this.consents.set(consent.id, consent);
        const page = [
            "<!doctype html><html><head><title>Authorize</title></head><body>",
            `<h1>Authorize ${htmlEscape(client.clientName ?? clientId)}</h1>`,
            `<p>Scope: ${htmlEscape(scope)}</p>`,
            `<form method="post" action="${htmlEscape(`${this.asPath}/authorize/decision`)}">`,
            `<input type="hidden" name="consent_id" value="${consent.id}">`,
            '<button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button>',
            "</form></body></html>",
        ].join("\n");
        this.send(res, call, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }, page);
    }

    /** The consent page's form: approve/deny and redirect, as a browser click would. */
    private handleConsentDecision(req: http.IncomingMessage, method: string, body: Buffer, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["POST"]);
        if (mediaType(req) !== "application/x-www-form-urlencoded") throw new OAuthFailure(400, "invalid_request", "form post expected");
        const form = new URLSearchParams(body.toString("utf8"));
        const consent = this.consents.get(form.get("consent_id") ?? "");
        if (!consent) throw new OAuthFailure(400, "invalid_request", "unknown consent_id");
        if (consent.status !== "pending") throw new OAuthFailure(400, "invalid_request", `consent already ${consent.status}`);
        const decision = form.get("decision");
        if (decision !== "approve" && decision !== "deny") throw new OAuthFailure(400, "invalid_request", "decision must be approve or deny");
        this.send(res, call, 302, { location: this.decide(consent, decision) });
    }

    // ----- OAuth: token ------------------------------------------------------------------------------------------

    private handleToken(req: http.IncomingMessage, method: string, body: Buffer, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["POST"]);
        // Dify posts a form (httpx `data=`, auth_flow.py exchange_authorization / refresh_authorization).
        if (mediaType(req) !== "application/x-www-form-urlencoded") {
            throw new OAuthFailure(400, "invalid_request", "token requests must be application/x-www-form-urlencoded");
        }
        const form = new URLSearchParams(body.toString("utf8"));
        for (const name of new Set(form.keys())) {
            if (form.getAll(name).length > 1) throw new OAuthFailure(400, "invalid_request", `parameter ${name} repeated`);
        }
        const grantType = form.get("grant_type");
        call.grantType = grantType ?? undefined;
        if (!grantType) throw new OAuthFailure(400, "invalid_request", "grant_type is required");
        if (grantType !== "authorization_code" && grantType !== "refresh_token") {
            throw new OAuthFailure(400, "unsupported_grant_type", `grant_type ${grantType} is not supported`);
        }
        const client = this.authenticateClient(req, form);
        if (!client.grantTypes.includes(grantType)) throw new OAuthFailure(400, "unauthorized_client", `client ${client.clientId} may not use ${grantType}`);
        const tokens = grantType === "authorization_code" ? this.exchangeCode(client, form) : this.refresh(client, form);
        this.sendJson(res, call, 200, tokens, { pragma: "no-cache" });
    }

    /** Client authentication: a public client sends only client_id (Dify: token_endpoint_auth_method "none");
     *  a confidential one its secret in the body (what Dify does, auth_flow.py) or as Basic auth. */
    private authenticateClient(req: http.IncomingMessage, form: URLSearchParams): RegisteredClient {
        let clientId = form.get("client_id");
        let secret = form.get("client_secret");
        const authorization = headerValue(req, "authorization");
        if (authorization !== undefined) {
            const basic = /^Basic (.+)$/i.exec(authorization.trim());
            if (!basic) throw new OAuthFailure(401, "invalid_client", "unsupported Authorization scheme at the token endpoint");
            const decoded = Buffer.from(basic[1], "base64").toString("utf8");
            const colon = decoded.indexOf(":");
            const basicId = decodeURIComponent(decoded.slice(0, colon < 0 ? decoded.length : colon));
            if (clientId !== null && clientId !== basicId) throw new OAuthFailure(401, "invalid_client", "client_id differs from the Basic credentials");
            if (secret !== null) throw new OAuthFailure(400, "invalid_request", "client authenticated twice (Basic and client_secret)");
            clientId = basicId;
            secret = colon < 0 ? "" : decodeURIComponent(decoded.slice(colon + 1));
        }
        if (!clientId) throw new OAuthFailure(401, "invalid_client", "client_id is required");
        const client = this.findClient(clientId);
        if (!client) throw new OAuthFailure(401, "invalid_client", `unknown client_id ${clientId}`);
        if (client.clientSecrets === undefined) {
            if (secret !== null) throw new OAuthFailure(401, "invalid_client", `client ${clientId} is public and has no secret; do not send one`);
        } else if (secret === null || !client.clientSecrets.includes(secret)) {
            throw new OAuthFailure(401, "invalid_client", `client ${clientId} needs its client_secret`);
        }
        return client;
    }

    private exchangeCode(client: RegisteredClient, form: URLSearchParams): JsonObject {
        const code = form.get("code");
        const redirectUri = form.get("redirect_uri");
        const verifier = form.get("code_verifier");
        if (!code) throw new OAuthFailure(400, "invalid_request", "code is required");
        if (!redirectUri) throw new OAuthFailure(400, "invalid_request", "redirect_uri is required");
        if (!verifier) throw new OAuthFailure(400, "invalid_request", "code_verifier is required (PKCE)");
        const grant = this.codes.get(code);
        if (!grant) throw new OAuthFailure(400, "invalid_grant", "unknown authorization code");
        if (grant.used) {
            // A replayed code means it leaked: revoke every token based on it, refreshed ones included (RFC 6749 §4.1.2).
            for (const token of [...this.accessTokens.values(), ...this.refreshTokens.values()]) {
                if (token.family === code) token.revoked = true;
            }
            throw new OAuthFailure(400, "invalid_grant", "authorization code already used");
        }
        if (grant.clientId !== client.clientId) throw new OAuthFailure(400, "invalid_grant", "authorization code was issued to another client");
        // Any failed attempt burns the code, so a wrong verifier cannot be retried against it.
        grant.used = true;
        if (grant.expiresAt <= Date.now()) throw new OAuthFailure(400, "invalid_grant", "authorization code expired");
        if (redirectUri !== grant.redirectUri) throw new OAuthFailure(400, "invalid_grant", "redirect_uri differs from the authorization request");
        if (!PKCE_VALUE.test(verifier)) throw new OAuthFailure(400, "invalid_grant", "code_verifier is not 43-128 unreserved characters");
        if (s256(verifier) !== grant.codeChallenge) throw new OAuthFailure(400, "invalid_grant", "code_verifier does not match the code_challenge");
        return this.issueTokens(client.clientId, grant.scope, code);
    }

    private refresh(client: RegisteredClient, form: URLSearchParams): JsonObject {
        const presented = form.get("refresh_token");
        if (!presented) throw new OAuthFailure(400, "invalid_request", "refresh_token is required");
        const stored = this.refreshTokens.get(presented);
        if (!stored) throw new OAuthFailure(400, "invalid_grant", "unknown refresh token");
        if (stored.clientId !== client.clientId) throw new OAuthFailure(400, "invalid_grant", "refresh token was issued to another client");
        if (stored.revoked) throw new OAuthFailure(400, "invalid_grant", "refresh token revoked");
        if (stored.rotated) throw new OAuthFailure(400, "invalid_grant", "refresh token already used (rotated)");
        if (stored.expiresAt <= Date.now()) throw new OAuthFailure(400, "invalid_grant", "refresh token expired");
        let scope = stored.scope;
        const requested = form.get("scope");
        if (requested !== null && requested.trim() !== "") {
            const names = requested.split(" ").filter((name) => name !== "");
            const granted = stored.scope.split(" ");
            if (names.some((name) => !granted.includes(name))) throw new OAuthFailure(400, "invalid_scope", "scope exceeds the original grant");
            scope = names.join(" ");
        }
        if (!this.rotateRefreshTokens) return this.issueTokens(client.clientId, scope, stored.family, presented);
        stored.rotated = true;
        return this.issueTokens(client.clientId, scope, stored.family);
    }

    /** Issues an access token (and a new refresh token unless one is kept). `expires_in` is an int for Dify's
     *  `OAuthTokens` model (core/mcp/types.py). */
    private issueTokens(clientId: string, scope: string, family: string, keptRefreshToken?: string): JsonObject {
        const now = Date.now();
        const accessToken = randomToken("mcp_at_");
        this.accessTokens.set(accessToken, { clientId, scope, family, expiresAt: now + this.accessTtlMs, revoked: false });
        let refreshToken = keptRefreshToken;
        if (refreshToken === undefined) {
            refreshToken = randomToken("mcp_rt_");
            this.refreshTokens.set(refreshToken, { clientId, scope, family, expiresAt: now + this.refreshTtlMs, revoked: false, rotated: false });
        }
        return {
            access_token: accessToken,
            token_type: "Bearer",
            expires_in: Math.max(1, Math.ceil(this.accessTtlMs / 1000)),
            refresh_token: refreshToken,
            scope,
        };
    }

    // ----- OAuth: dynamic client registration --------------------------------------------------------------------

    private handleRegister(req: http.IncomingMessage, method: string, body: Buffer, res: http.ServerResponse, call: RecordedRequest): void {
        this.requireMethod(method, ["POST"]);
        if (mediaType(req) !== "application/json") throw new OAuthFailure(400, "invalid_client_metadata", "registration requests must be application/json");
        let metadata: unknown;
        try {
            metadata = JSON.parse(body.toString("utf8"));
        } catch {
            throw new OAuthFailure(400, "invalid_client_metadata", "body is not valid JSON");
        }
        if (!isPlainObject(metadata)) throw new OAuthFailure(400, "invalid_client_metadata", "body must be a JSON object");
        // Dify sends OAuthClientMetadata.model_dump(): absent optional fields arrive as null (e.g. "scope": null).
        const optional = (name: string): JsonValue | undefined => (metadata[name] === null ? undefined : metadata[name]);
        const redirectUris = optional("redirect_uris");
        if (!Array.isArray(redirectUris) || redirectUris.length === 0 || !redirectUris.every((uri) => typeof uri === "string" && isAbsoluteHttpUrl(uri))) {
            throw new OAuthFailure(400, "invalid_redirect_uri", "redirect_uris must be a non-empty array of absolute http(s) URLs without fragment");
        }
        const authMethod = optional("token_endpoint_auth_method") ?? "none";
        if (authMethod !== "none") throw new OAuthFailure(400, "invalid_client_metadata", `token_endpoint_auth_method ${JSON.stringify(authMethod)} not supported; only "none" (public clients with PKCE)`);
        const grantTypes = optional("grant_types") ?? ["authorization_code"];
        if (!Array.isArray(grantTypes) || grantTypes.length === 0 || !grantTypes.every((grant) => grant === "authorization_code" || grant === "refresh_token")) {
            throw new OAuthFailure(400, "invalid_client_metadata", `grant_types ${JSON.stringify(grantTypes)} not supported; only authorization_code and refresh_token`);
        }
        const responseTypes = optional("response_types") ?? ["code"];
        if (!Array.isArray(responseTypes) || !responseTypes.every((type) => type === "code")) {
            throw new OAuthFailure(400, "invalid_client_metadata", `response_types ${JSON.stringify(responseTypes)} not supported; only code`);
        }
        const scope = optional("scope");
        if (scope !== undefined && (typeof scope !== "string" || scope.split(" ").some((name) => name !== "" && !this.scopes.includes(name)))) {
            throw new OAuthFailure(400, "invalid_client_metadata", `scope ${JSON.stringify(scope)} not supported`);
        }
        const clientName = optional("client_name");
        const clientUri = optional("client_uri");
        const clientId = `dcr_${crypto.randomBytes(12).toString("hex")}`;
        this.clients.set(clientId, {
            clientId,
            redirectUris: redirectUris as string[],
            grantTypes: grantTypes as string[],
            dynamic: true,
            clientName: typeof clientName === "string" ? clientName : undefined,
        });
        // Dify validates the answer as OAuthClientInformationFull, which requires redirect_uris (core/mcp/types.py).
        const answer: JsonObject = {
            client_id: clientId,
            client_id_issued_at: Math.floor(Date.now() / 1000),
            redirect_uris: redirectUris,
            grant_types: grantTypes,
            response_types: responseTypes,
            token_endpoint_auth_method: "none",
        };
        if (typeof clientName === "string") answer.client_name = clientName;
        if (typeof clientUri === "string") answer.client_uri = clientUri;
        if (typeof scope === "string") answer.scope = scope;
        this.sendJson(res, call, 201, answer);
    }
}

// ----- JSON-RPC parsing --------------------------------------------------------------------------------------

type RpcMessage =
    | { kind: "request"; id: RpcId; method: string; params?: Record<string, JsonValue> }
    | { kind: "notification"; method: string; params?: Record<string, JsonValue> }
    | { kind: "response"; id: RpcId; method?: undefined };

function rpcError(id: RpcId | null, code: number, message: string): JsonObject {
    return { jsonrpc: "2.0", id, error: { code, message } };
}

/** One JSON-RPC 2.0 message (Dify never batches; batches were dropped in protocol 2025-06-18). Throws a 400. */
function parseRpcMessage(body: Buffer): RpcMessage {
    let value: unknown;
    try {
        value = JSON.parse(body.toString("utf8"));
    } catch {
        throw new McpHttpFailure(400, JSONRPC_PARSE_ERROR, "body is not valid JSON");
    }
    if (Array.isArray(value)) throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "JSON-RPC batches are not supported");
    if (!isPlainObject(value) || value.jsonrpc !== "2.0") throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, 'not a JSON-RPC 2.0 message (jsonrpc must be "2.0")');
    const id = value.id;
    const hasId = typeof id === "string" || typeof id === "number";
    if (id !== undefined && !hasId) throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "id must be a string or a number");
    const params = value.params;
    if (params !== undefined && !isPlainObject(params)) throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "params must be an object");
    if (typeof value.method === "string") {
        return hasId ? { kind: "request", id: id as RpcId, method: value.method, params } : { kind: "notification", method: value.method, params };
    }
    if (hasId && ("result" in value || "error" in value)) return { kind: "response", id: id as RpcId };
    throw new McpHttpFailure(400, JSONRPC_INVALID_REQUEST, "message has neither a method nor a result/error");
}

export function startMcpOAuthServer(options: McpOAuthServerOptions = {}): Promise<McpOAuthServer> {
    return McpOAuthServer.start(options);
}
