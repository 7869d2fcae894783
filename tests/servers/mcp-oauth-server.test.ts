// The local MCP OAuth server must accept exactly what Dify 1.14.1's MCP client sends and refuse deviations,
// or the Dify integration tests built on it would prove nothing. The client steps below are ports of Dify's own
// code (api/core/mcp/auth/auth_flow.py, core/mcp/error.py, client/streamable_client.py, session/client_session.py),
// function by function, in the order Dify runs them.
import * as crypto from "crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
    ALIBABA_MCP_PATH_PATTERN,
    DEFAULT_MCP_PATH,
    LATEST_PROTOCOL_VERSION,
    McpEndpoint,
    MCP_SERVER_SCOPE,
    McpOAuthServer,
    McpOAuthServerOptions,
    PresetOAuthClient,
    SUPPORTED_PROTOCOL_VERSIONS,
    startMcpOAuthServer,
} from "./mcp-oauth-server";

/** What Dify registers as redirect: `${CONSOLE_API_URL}/console/api/mcp/oauth/callback` (core/entities/mcp_provider.py). */
const DIFY_REDIRECT_URI = "http://127.0.0.1:5001/console/api/mcp/oauth/callback";
/** RAM AppIds are long numeric strings. */
const PRESET_CLIENT_ID = "4071151845732613353";

const running: McpOAuthServer[] = [];

async function start(options: McpOAuthServerOptions = {}): Promise<McpOAuthServer> {
    const server = await startMcpOAuthServer({ presetClients: [{ clientId: PRESET_CLIENT_ID, redirectUris: [DIFY_REDIRECT_URI] }], ...options });
    running.push(server);
    return server;
}

afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.close()));
});

// ----- ports of Dify's auth_flow.py -------------------------------------------------------------------------------

interface ProtectedResourceMetadata {
    resource?: string;
    authorization_servers: string[];
    scopes_supported?: string[];
}

interface AuthorizationServerMetadata {
    issuer?: string;
    authorization_endpoint: string;
    token_endpoint: string;
    registration_endpoint?: string;
    response_types_supported: string[];
    grant_types_supported?: string[];
    code_challenge_methods_supported?: string[];
    token_endpoint_auth_methods_supported?: string[];
    scopes_supported?: string[];
}

interface TokenAnswer {
    access_token: string;
    token_type: string;
    expires_in: number;
    refresh_token: string;
    scope: string;
}

/** core/mcp/error.py MCPAuthError._extract_field. */
function extractWwwAuthenticateField(header: string, field: string): string | undefined {
    const quoted = new RegExp(`${field}="([^"]*)"`).exec(header);
    if (quoted) return quoted[1];
    const bare = new RegExp(`${field}=([^\\s,]+)`).exec(header);
    return bare ? bare[1] : undefined;
}

/** auth_flow.py build_protected_resource_metadata_discovery_urls (absolute-URL case of the header). */
function buildProtectedResourceMetadataDiscoveryUrls(wwwAuthResourceMetadataUrl: string | undefined, serverUrl: string): string[] {
    const urls: string[] = [];
    const parsed = new URL(serverUrl);
    const base = `${parsed.protocol}//${parsed.host}`;
    const path = parsed.pathname.replace(/\/+$/, "");
    if (wwwAuthResourceMetadataUrl) urls.push(wwwAuthResourceMetadataUrl);
    if (path) {
        const pathUrl = `${base}/.well-known/oauth-protected-resource${path}`;
        if (!urls.includes(pathUrl)) urls.push(pathUrl);
    }
    const rootUrl = `${base}/.well-known/oauth-protected-resource`;
    if (!urls.includes(rootUrl)) urls.push(rootUrl);
    return urls;
}

/** auth_flow.py build_oauth_authorization_server_metadata_discovery_urls. */
function buildAuthorizationServerMetadataDiscoveryUrls(authServerUrl: string | undefined, serverUrl: string): string[] {
    const parsed = new URL(authServerUrl ?? serverUrl);
    const base = `${parsed.protocol}//${parsed.host}`;
    const path = parsed.pathname.replace(/\/+$/, "");
    const urls = [`${base}/.well-known/oauth-authorization-server`, `${base}/.well-known/openid-configuration`];
    if (path) {
        urls.push(`${base}/.well-known/openid-configuration${path}`, `${base}${path}/.well-known/openid-configuration`, `${base}/.well-known/oauth-authorization-server${path}`);
    }
    return urls;
}

/** auth_flow.py discover_*_metadata: the first 200 wins, anything else moves on. */
async function firstMetadata<T>(urls: string[]): Promise<T | undefined> {
    for (const url of urls) {
        const response = await fetch(url, { headers: { "MCP-Protocol-Version": LATEST_PROTOCOL_VERSION, "User-Agent": "Dify" } });
        if (response.status === 200) return (await response.json()) as T;
        await response.arrayBuffer();
    }
    return undefined;
}

interface DiscoveryResult {
    prm?: ProtectedResourceMetadata;
    asm: AuthorizationServerMetadata;
    /** auth_flow.py get_effective_scope, without a WWW-Authenticate scope or client scope. */
    scope?: string;
    /** The grant auth() picks: authorization_code only when the AS lists it. */
    grantType: "authorization_code" | "client_credentials";
}

/** auth_flow.py discover_oauth_metadata + the grant/scope decisions at the top of auth(). */
async function discoverLikeDify(serverUrl: string, wwwAuthenticate: string | undefined): Promise<DiscoveryResult> {
    const resourceMetadataUrl = wwwAuthenticate === undefined ? undefined : extractWwwAuthenticateField(wwwAuthenticate, "resource_metadata");
    const prm = await firstMetadata<ProtectedResourceMetadata>(buildProtectedResourceMetadataDiscoveryUrls(resourceMetadataUrl, serverUrl));
    const asm = await firstMetadata<AuthorizationServerMetadata>(buildAuthorizationServerMetadataDiscoveryUrls(prm?.authorization_servers[0], serverUrl));
    if (!asm) throw new Error("Failed to discover OAuth metadata from server");
    const grants = (asm.grant_types_supported ?? []).map((grant) => grant.toLowerCase());
    const scope = prm?.scopes_supported?.length ? prm.scopes_supported.join(" ") : asm.scopes_supported?.length ? asm.scopes_supported.join(" ") : undefined;
    return { prm, asm, scope, grantType: grants.includes("authorization_code") ? "authorization_code" : "client_credentials" };
}

/** Python's urllib.parse.urlencode (quote_plus). */
function pythonUrlencode(params: [string, string][]): string {
    const quotePlus = (value: string) =>
        encodeURIComponent(value)
            .replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)
            .replace(/%20/g, "+");
    return params.map(([key, value]) => `${quotePlus(key)}=${quotePlus(value)}`).join("&");
}

/** auth_flow.py generate_pkce_challenge. */
function generatePkceChallenge(): { verifier: string; challenge: string } {
    const verifier = crypto.randomBytes(40).toString("base64url");
    return { verifier, challenge: crypto.createHash("sha256").update(verifier).digest("base64url") };
}

interface AuthorizationStart {
    url: string;
    verifier: string;
    state: string;
    challenge: string;
}

/** auth_flow.py start_authorization (the state is a random Redis key). */
function startAuthorization(asm: AuthorizationServerMetadata, clientId: string, redirectUri: string, scope: string | undefined): AuthorizationStart {
    if (!asm.response_types_supported.includes("code")) throw new Error("Incompatible auth server: does not support response type code");
    const { verifier, challenge } = generatePkceChallenge();
    const state = crypto.randomBytes(32).toString("base64url");
    const params: [string, string][] = [
        ["response_type", "code"],
        ["client_id", clientId],
        ["code_challenge", challenge],
        ["code_challenge_method", "S256"],
        ["redirect_uri", redirectUri],
        ["state", state],
    ];
    if (scope) params.push(["scope", scope]);
    return { url: `${asm.authorization_endpoint}?${pythonUrlencode(params)}`, verifier, state, challenge };
}

function postForm(url: string, params: [string, string][], headers: Record<string, string> = {}): Promise<Response> {
    return fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: pythonUrlencode(params) });
}

/** auth_flow.py exchange_authorization. */
function exchangeAuthorization(asm: AuthorizationServerMetadata, clientId: string, code: string, verifier: string, redirectUri: string, clientSecret?: string): Promise<Response> {
    const params: [string, string][] = [
        ["grant_type", "authorization_code"],
        ["client_id", clientId],
        ["code", code],
        ["code_verifier", verifier],
        ["redirect_uri", redirectUri],
    ];
    if (clientSecret) params.push(["client_secret", clientSecret]);
    return postForm(asm.token_endpoint, params);
}

/** auth_flow.py refresh_authorization. */
function refreshAuthorization(asm: AuthorizationServerMetadata, clientId: string, refreshToken: string): Promise<Response> {
    return postForm(asm.token_endpoint, [
        ["grant_type", "refresh_token"],
        ["client_id", clientId],
        ["refresh_token", refreshToken],
    ]);
}

/** OAuthClientMetadata.model_dump() for an authorization_code client (core/entities/mcp_provider.py client_metadata). */
function difyClientMetadata(): Record<string, unknown> {
    return {
        client_name: "Dify",
        redirect_uris: [DIFY_REDIRECT_URI],
        grant_types: ["refresh_token", "authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
        client_uri: "https://github.com/langgenius/dify",
        scope: null,
    };
}

// ----- port of Dify's Streamable HTTP client + ClientSession ---------------------------------------------------

interface SseEvent {
    event: string;
    data: string;
}

/** Event blocks as httpx_sse decodes them (event defaults to "message"). */
function parseSseEvents(text: string): SseEvent[] {
    return text
        .split(/\r?\n\r?\n/)
        .filter((block) => block.trim() !== "")
        .map((block) => {
            let event = "message";
            const data: string[] = [];
            for (const line of block.split(/\r?\n/)) {
                if (line.startsWith("event:")) event = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            return { event, data: data.join("\n") };
        });
}

interface RpcAnswer {
    status: number;
    contentType: string;
    body?: { jsonrpc: string; id: number | string | null; result?: Record<string, unknown>; error?: { code: number; message: string } };
    headers: Headers;
}

class DifyStreamableClient {
    sessionId?: string;
    private nextId = 0;

    constructor(
        readonly url: string,
        private readonly headers: Record<string, string>,
    ) {}

    /** StreamableHTTPTransport.request_headers + _update_headers_with_session. */
    requestHeaders(): Record<string, string> {
        const headers: Record<string, string> = { Accept: "application/json, text/event-stream", "content-type": "application/json", ...this.headers };
        if (this.sessionId) headers["mcp-session-id"] = this.sessionId;
        return headers;
    }

    /** _handle_post_request: JSON or SSE answers; the session id is read from the initialize answer only. */
    async post(message: Record<string, unknown>): Promise<RpcAnswer> {
        const response = await fetch(this.url, { method: "POST", headers: this.requestHeaders(), body: JSON.stringify(message) });
        const contentType = (response.headers.get("content-type") ?? "").toLowerCase();
        const text = await response.text();
        if (response.ok && message.method === "initialize") this.sessionId = response.headers.get("mcp-session-id") ?? undefined;
        let body: RpcAnswer["body"];
        if (contentType.startsWith("application/json") && text !== "") body = JSON.parse(text) as RpcAnswer["body"];
        else if (contentType.startsWith("text/event-stream")) {
            const event = parseSseEvents(text).find((candidate) => candidate.event === "message" && candidate.data.trim() !== "");
            body = event ? (JSON.parse(event.data) as RpcAnswer["body"]) : undefined;
        }
        return { status: response.status, contentType, body, headers: response.headers };
    }

    /** BaseSession.send_request: ids count up from 0. */
    request(method: string, params?: Record<string, unknown>): Promise<RpcAnswer> {
        const message: Record<string, unknown> = { jsonrpc: "2.0", id: this.nextId++, method };
        if (params !== undefined) message.params = params;
        return this.post(message);
    }

    notify(method: string): Promise<RpcAnswer> {
        return this.post({ jsonrpc: "2.0", method });
    }

    /** ClientSession.initialize (exclude_none drops the unset capabilities) + notifications/initialized, then the
     *  GET stream the transport opens after the notification (start_get_stream). */
    async initialize(): Promise<{ initialize: RpcAnswer; initialized: RpcAnswer; getStreamStatus: number }> {
        const initialize = await this.request("initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } });
        if (initialize.status !== 200) return { initialize, initialized: initialize, getStreamStatus: 0 };
        const initialized = await this.notify("notifications/initialized");
        const stream = await fetch(this.url, { method: "GET", headers: this.requestHeaders() });
        await stream.arrayBuffer();
        return { initialize, initialized, getStreamStatus: stream.status };
    }

    /** terminate_session. */
    async terminate(): Promise<number> {
        const response = await fetch(this.url, { method: "DELETE", headers: this.requestHeaders() });
        await response.arrayBuffer();
        return response.status;
    }
}

/** `Authorization: ${token_type.capitalize()} ${access_token}` (core/entities/mcp_provider.py). */
function bearer(tokens: TokenAnswer): Record<string, string> {
    const type = tokens.token_type.charAt(0).toUpperCase() + tokens.token_type.slice(1).toLowerCase();
    return { Authorization: `${type} ${tokens.access_token}` };
}

async function connected(server: McpOAuthServer, tokens: TokenAnswer, mcpUrl = server.mcpUrl): Promise<DifyStreamableClient> {
    const client = new DifyStreamableClient(mcpUrl, bearer(tokens));
    const { initialize, initialized } = await client.initialize();
    expect(initialize.status).toBe(200);
    expect(initialized.status).toBe(202);
    return client;
}

function toolText(answer: RpcAnswer): string {
    const content = answer.body?.result?.content as { type: string; text: string }[] | undefined;
    expect(content?.[0]?.type).toBe("text");
    return content![0].text;
}

interface AuthorizedFlow {
    discovery: DiscoveryResult;
    start: AuthorizationStart;
    tokens: TokenAnswer;
}

/** What Dify does from the first 401 to saved tokens: discovery, authorize URL, (user approves), callback exchange. */
async function authorizeLikeDify(server: McpOAuthServer, clientId = PRESET_CLIENT_ID, clientSecret?: string, mcpUrl = server.mcpUrl): Promise<AuthorizedFlow> {
    const unauthenticated = await new DifyStreamableClient(mcpUrl, {}).initialize();
    expect(unauthenticated.initialize.status).toBe(401);
    const discovery = await discoverLikeDify(mcpUrl, unauthenticated.initialize.headers.get("www-authenticate") ?? undefined);
    expect(discovery.grantType).toBe("authorization_code");
    const start = startAuthorization(discovery.asm, clientId, DIFY_REDIRECT_URI, discovery.scope);
    const redirect = new URL(await server.approve(start.url));
    expect(redirect.searchParams.get("state")).toBe(start.state);
    const response = await exchangeAuthorization(discovery.asm, clientId, redirect.searchParams.get("code") ?? "", start.verifier, DIFY_REDIRECT_URI, clientSecret);
    expect(response.status).toBe(200);
    return { discovery, start, tokens: (await response.json()) as TokenAnswer };
}

/** A fresh approved code for a discovered server, without exchanging it. */
async function approvedCode(server: McpOAuthServer, asm: AuthorizationServerMetadata, clientId = PRESET_CLIENT_ID): Promise<{ code: string; start: AuthorizationStart }> {
    const start = startAuthorization(asm, clientId, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);
    const redirect = new URL(await server.approve(start.url));
    return { code: redirect.searchParams.get("code") ?? "", start };
}

async function oauthError(response: Response): Promise<{ status: number; error: string; description: string }> {
    const body = (await response.json()) as { error: string; error_description: string };
    return { status: response.status, error: body.error, description: body.error_description };
}

function authorizeUrlWith(start: AuthorizationStart, changes: Record<string, string | null>): string {
    const url = new URL(start.url);
    for (const [name, value] of Object.entries(changes)) {
        if (value === null) url.searchParams.delete(name);
        else url.searchParams.set(name, value);
    }
    return url.toString();
}

// ----- tests ------------------------------------------------------------------------------------------------------

describe("discovery as Dify's auth() runs it", () => {
    it("answers an unauthenticated initialize with 401 and a resource_metadata challenge Dify's regex extracts", async () => {
        const server = await start();
        const answer = await new DifyStreamableClient(server.mcpUrl, {}).request("initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } });

        expect(answer.status).toBe(401);
        const challenge = answer.headers.get("www-authenticate") ?? "";
        expect(challenge).toMatch(/^Bearer /);
        expect(extractWwwAuthenticateField(challenge, "resource_metadata")).toBe(`${server.url}/.well-known/oauth-protected-resource/accounts/1234567890/custom/ops/id/AbCd/mcp`);
        // No scope hint: it would outrank the metadata scopes in get_effective_scope.
        expect(extractWwwAuthenticateField(challenge, "scope")).toBeUndefined();
        expect(server.calls).toHaveLength(1);
        expect(server.calls[0]).toMatchObject({ kind: "mcp", method: "POST", authorized: false, bearer: "absent", status: 401 });
        expect(server.sessionCount).toBe(0);
    });

    it("serves both metadata documents at the first URLs Dify tries, without registration_endpoint while DCR is off", async () => {
        const server = await start();
        const mark = server.mark();
        const discovery = await discoverLikeDify(server.mcpUrl, `Bearer resource_metadata="${server.protectedResourceMetadataUrl}"`);

        expect(server.callsSince(mark).map((call) => [call.path, call.status])).toEqual([
            ["/.well-known/oauth-protected-resource/accounts/1234567890/custom/ops/id/AbCd/mcp", 200],
            ["/.well-known/oauth-authorization-server", 200],
        ]);
        expect(discovery.prm).toEqual({
            resource: server.mcpUrl,
            authorization_servers: [server.url],
            scopes_supported: [MCP_SERVER_SCOPE],
            bearer_methods_supported: ["header"],
        });
        expect(discovery.asm).toMatchObject({
            issuer: server.url,
            authorization_endpoint: `${server.url}/authorize`,
            token_endpoint: `${server.url}/token`,
            response_types_supported: ["code"],
            code_challenge_methods_supported: ["S256"],
            token_endpoint_auth_methods_supported: ["none"],
        });
        expect(discovery.asm.grant_types_supported).toEqual(expect.arrayContaining(["authorization_code", "refresh_token"]));
        expect(discovery.asm.registration_endpoint).toBeUndefined();
        expect(discovery.grantType).toBe("authorization_code");
        expect(discovery.scope).toBe(MCP_SERVER_SCOPE);

        const register = await fetch(`${server.url}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(difyClientMetadata()) });
        expect(register.status).toBe(404);
        // The root protected-resource document does not exist: one host serves many accounts' MCP servers.
        expect((await fetch(`${server.url}/.well-known/oauth-protected-resource`)).status).toBe(404);
    });

    it("with an issuer path, Dify's fallback order reaches the RFC 8414 path-insertion URL after four 404s", async () => {
        const server = await start({ authorizationServerPath: "/oauth2/v1" });
        const mark = server.mark();
        const discovery = await discoverLikeDify(server.mcpUrl, undefined);

        expect(server.callsSince(mark).map((call) => [call.path, call.status])).toEqual([
            ["/.well-known/oauth-protected-resource/accounts/1234567890/custom/ops/id/AbCd/mcp", 200],
            ["/.well-known/oauth-authorization-server", 404],
            ["/.well-known/openid-configuration", 404],
            ["/.well-known/openid-configuration/oauth2/v1", 404],
            ["/oauth2/v1/.well-known/openid-configuration", 404],
            ["/.well-known/oauth-authorization-server/oauth2/v1", 200],
        ]);
        expect(discovery.asm.issuer).toBe(`${server.url}/oauth2/v1`);
        expect(discovery.asm.authorization_endpoint).toBe(`${server.url}/oauth2/v1/authorize`);

        const { code, start: begun } = await approvedCode(server, discovery.asm);
        const response = await exchangeAuthorization(discovery.asm, PRESET_CLIENT_ID, code, begun.verifier, DIFY_REDIRECT_URI);
        expect(response.status).toBe(200);
    });
});

describe("authorization code flow with a preset public client (RAM NativeApp)", () => {
    it("runs Dify's whole flow: authorize, approve, exchange, initialize, list and call tools, end the session", async () => {
        const server = await start();
        const { tokens, start: begun } = await authorizeLikeDify(server);

        expect(new URL(begun.url).searchParams.get("scope")).toBe(MCP_SERVER_SCOPE);
        expect(tokens.token_type).toBe("Bearer");
        expect(Number.isInteger(tokens.expires_in)).toBe(true);
        expect(tokens.expires_in).toBe(3600);
        expect(tokens.refresh_token).toMatch(/^mcp_rt_/);
        expect(tokens.scope).toBe(MCP_SERVER_SCOPE);
        expect(server.consentRequests()).toEqual([expect.objectContaining({ clientId: PRESET_CLIENT_ID, redirectUri: DIFY_REDIRECT_URI, status: "approved", state: begun.state })]);

        const mark = server.mark();
        const client = new DifyStreamableClient(server.mcpUrl, bearer(tokens));
        const { initialize, initialized, getStreamStatus } = await client.initialize();
        expect(initialize.status).toBe(200);
        expect(initialize.contentType).toMatch(/^application\/json/);
        expect(initialize.body?.id).toBe(0);
        expect(initialize.body?.result?.protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
        expect(SUPPORTED_PROTOCOL_VERSIONS).toContain(initialize.body?.result?.protocolVersion);
        expect(client.sessionId).toMatch(/^[0-9a-f-]{36}$/);
        expect(initialized.status).toBe(202);
        expect(getStreamStatus).toBe(405);

        const listed = await client.request("tools/list");
        expect(listed.body?.id).toBe(1);
        const tools = listed.body?.result?.tools as { name: string; inputSchema: { required?: string[] } }[];
        expect(tools.map((tool) => tool.name)).toEqual(["Ecs-DescribeInstances", "Ecs-DescribeRegions"]);
        expect(tools[0].inputSchema.required).toEqual(["RegionId"]);

        const called = await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou" } });
        expect(called.body?.result?.isError).toBe(false);
        expect(JSON.parse(toolText(called))).toMatchObject({ TotalCount: 2, Instances: { Instance: [{ RegionId: "cn-hangzhou" }, { RegionId: "cn-hangzhou" }] } });
        const regions = await client.request("tools/call", { name: "Ecs-DescribeRegions", arguments: {} });
        expect(JSON.parse(toolText(regions)).Regions.Region.map((region: { RegionId: string }) => region.RegionId)).toContain("cn-hangzhou");
        expect((await client.request("ping")).body?.result).toEqual({});
        expect(server.toolInvocations).toEqual([
            { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou" }, outcome: "success" },
            { name: "Ecs-DescribeRegions", arguments: {}, outcome: "success" },
        ]);

        expect(await client.terminate()).toBe(200);
        expect(server.sessionCount).toBe(0);
        const afterEnd = await client.request("tools/list");
        expect(afterEnd.status).toBe(404);

        const mcpCalls = server.callsSince(mark);
        expect(mcpCalls.map((call) => `${call.method} ${call.rpcMethod ?? ""} ${call.status}`)).toEqual([
            "POST initialize 200",
            "POST notifications/initialized 202",
            "GET  405",
            "POST tools/list 200",
            "POST tools/call 200",
            "POST tools/call 200",
            "POST ping 200",
            "DELETE  200",
            "POST tools/list 404",
        ]);
        expect(mcpCalls.every((call) => call.kind === "mcp" && call.authorized && call.bearer === "valid")).toBe(true);
    });

    it("refreshes with rotation: the new access token works, the old refresh token is refused", async () => {
        const server = await start();
        const { tokens, discovery } = await authorizeLikeDify(server);
        const refreshed = await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, tokens.refresh_token);
        expect(refreshed.status).toBe(200);
        const next = (await refreshed.json()) as TokenAnswer;
        expect(next.access_token).not.toBe(tokens.access_token);
        expect(next.refresh_token).not.toBe(tokens.refresh_token);
        expect(next.scope).toBe(MCP_SERVER_SCOPE);

        const client = await connected(server, next);
        expect((await client.request("tools/list")).status).toBe(200);

        const replay = await oauthError(await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, tokens.refresh_token));
        expect(replay).toMatchObject({ status: 400, error: "invalid_grant" });
        expect(replay.description).toMatch(/rotated/);
        const otherClient = await oauthError(await refreshAuthorization(discovery.asm, "someone-else", next.refresh_token));
        expect(otherClient).toMatchObject({ status: 401, error: "invalid_client" });
    });

    it("rejects a wrong PKCE verifier, and the code cannot be retried afterwards", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const { code, start: begun } = await approvedCode(server, asm);

        const wrong = await oauthError(await exchangeAuthorization(asm, PRESET_CLIENT_ID, code, generatePkceChallenge().verifier, DIFY_REDIRECT_URI));
        expect(wrong).toMatchObject({ status: 400, error: "invalid_grant" });
        expect(wrong.description).toMatch(/code_verifier does not match/);

        const retry = await oauthError(await exchangeAuthorization(asm, PRESET_CLIENT_ID, code, begun.verifier, DIFY_REDIRECT_URI));
        expect(retry).toMatchObject({ status: 400, error: "invalid_grant" });
        expect(server.calls.filter((call) => call.kind === "token").map((call) => call.status)).toEqual([400, 400]);
    });

    it("rejects a redirect_uri that is not registered at /authorize, and one that differs at /token", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const begun = startAuthorization(asm, PRESET_CLIENT_ID, "http://127.0.0.1:5001/console/api/mcp/oauth/callback/evil", MCP_SERVER_SCOPE);

        const page = await fetch(begun.url);
        expect(page.status).toBe(400);
        expect(await page.json()).toMatchObject({ error: "invalid_request", error_description: expect.stringMatching(/not registered/) });
        await expect(server.approve(begun.url)).rejects.toThrow(/HTTP 400.*not registered/);
        expect(server.consentRequests()).toEqual([]);

        const { code, start: good } = await approvedCode(server, asm);
        const mismatch = await oauthError(await exchangeAuthorization(asm, PRESET_CLIENT_ID, code, good.verifier, "http://127.0.0.1:5001/other"));
        expect(mismatch).toMatchObject({ status: 400, error: "invalid_grant" });
        expect(mismatch.description).toMatch(/redirect_uri differs/);
    });

    it("authorization codes are single-use, and a replay revokes every token based on the code, refreshed ones too", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const { code, start: begun } = await approvedCode(server, asm);
        const unrelated = (await authorizeLikeDify(server)).tokens;

        const first = await exchangeAuthorization(asm, PRESET_CLIENT_ID, code, begun.verifier, DIFY_REDIRECT_URI);
        expect(first.status).toBe(200);
        const tokens = (await first.json()) as TokenAnswer;
        await connected(server, tokens);
        const refreshed = (await (await refreshAuthorization(asm, PRESET_CLIENT_ID, tokens.refresh_token)).json()) as TokenAnswer;
        await connected(server, refreshed);

        const second = await oauthError(await exchangeAuthorization(asm, PRESET_CLIENT_ID, code, begun.verifier, DIFY_REDIRECT_URI));
        expect(second).toMatchObject({ status: 400, error: "invalid_grant", description: "authorization code already used" });

        for (const revoked of [tokens, refreshed]) {
            const after = await new DifyStreamableClient(server.mcpUrl, bearer(revoked)).initialize();
            expect(after.initialize.status).toBe(401);
            expect(after.initialize.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
            expect(server.calls.at(-1)).toMatchObject({ bearer: "revoked", authorized: false });
        }
        expect((await refreshAuthorization(asm, PRESET_CLIENT_ID, refreshed.refresh_token)).status).toBe(400);
        // Tokens from another authorization are untouched.
        await connected(server, unrelated);
    });

    it("refuses authorization requests that deviate from Dify's, with a 400 page and no consent", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const begun = startAuthorization(asm, PRESET_CLIENT_ID, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);
        const cases: [Record<string, string | null>, string, RegExp][] = [
            [{ code_challenge_method: "plain" }, "invalid_request", /S256/],
            [{ code_challenge_method: null }, "invalid_request", /S256/],
            [{ code_challenge: null }, "invalid_request", /code_challenge is required/],
            [{ code_challenge: "short" }, "invalid_request", /not a valid S256 challenge/],
            [{ state: null }, "invalid_request", /state is required/],
            [{ response_type: "token" }, "unsupported_response_type", /"code"/],
            [{ client_id: "unknown-app" }, "invalid_client", /unknown client_id/],
            [{ scope: `${MCP_SERVER_SCOPE} /acs/ecs` }, "invalid_scope", /\/acs\/ecs/],
        ];
        for (const [changes, error, description] of cases) {
            const response = await fetch(authorizeUrlWith(begun, changes));
            expect(response.status, JSON.stringify(changes)).toBe(400);
            const body = (await response.json()) as { error: string; error_description: string };
            expect(body.error, JSON.stringify(changes)).toBe(error);
            expect(body.error_description, JSON.stringify(changes)).toMatch(description);
        }
        expect(server.consentRequests()).toEqual([]);
        // Without a scope (Dify 1.10.0) the app's scopes are granted.
        const { tokens } = await (async () => {
            const noScope = startAuthorization(asm, PRESET_CLIENT_ID, DIFY_REDIRECT_URI, undefined);
            const redirect = new URL(await server.approve(noScope.url));
            const response = await exchangeAuthorization(asm, PRESET_CLIENT_ID, redirect.searchParams.get("code") ?? "", noScope.verifier, DIFY_REDIRECT_URI);
            return { tokens: (await response.json()) as TokenAnswer };
        })();
        expect(tokens.scope).toBe(MCP_SERVER_SCOPE);
    });

    it("deny sends the user back with access_denied and the state; the request cannot be approved afterwards", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const begun = startAuthorization(asm, PRESET_CLIENT_ID, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);

        const redirect = new URL(await server.deny(begun.url));
        expect(`${redirect.origin}${redirect.pathname}`).toBe(DIFY_REDIRECT_URI);
        expect(redirect.searchParams.get("error")).toBe("access_denied");
        expect(redirect.searchParams.get("state")).toBe(begun.state);
        expect(redirect.searchParams.has("code")).toBe(false);
        await expect(server.approve(begun.url)).rejects.toThrow(/already denied/);
    });

    it("the consent page's form approves with a 302 to the redirect URI carrying code and state", async () => {
        const server = await start();
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const begun = startAuthorization(asm, PRESET_CLIENT_ID, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);
        const page = await fetch(begun.url);
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toMatch(/^text\/html/);
        const consentId = /name="consent_id" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
        expect(server.consentRequests().map((consent) => consent.id)).toEqual([consentId]);

        const decision = await fetch(`${server.url}/authorize/decision`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: `consent_id=${consentId}&decision=approve`,
            redirect: "manual",
        });
        expect(decision.status).toBe(302);
        const location = new URL(decision.headers.get("location") ?? "");
        expect(`${location.origin}${location.pathname}`).toBe(DIFY_REDIRECT_URI);
        expect(location.searchParams.get("state")).toBe(begun.state);
        const exchanged = await exchangeAuthorization(asm, PRESET_CLIENT_ID, location.searchParams.get("code") ?? "", begun.verifier, DIFY_REDIRECT_URI);
        expect(exchanged.status).toBe(200);
    });

    it("a public client must not send a secret; a confidential preset client must send its own", async () => {
        const confidentialId = "4071151845732619999";
        const server = await start({
            presetClients: [
                { clientId: PRESET_CLIENT_ID, redirectUris: [DIFY_REDIRECT_URI] },
                { clientId: confidentialId, redirectUris: [DIFY_REDIRECT_URI], clientSecret: "web-app-secret" },
            ],
        });
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        expect(asm.token_endpoint_auth_methods_supported).toEqual(["none", "client_secret_post", "client_secret_basic"]);

        const publicCode = await approvedCode(server, asm);
        const withSecret = await oauthError(await exchangeAuthorization(asm, PRESET_CLIENT_ID, publicCode.code, publicCode.start.verifier, DIFY_REDIRECT_URI, "made-up"));
        expect(withSecret).toMatchObject({ status: 401, error: "invalid_client" });

        const missing = await approvedCode(server, asm, confidentialId);
        expect(await oauthError(await exchangeAuthorization(asm, confidentialId, missing.code, missing.start.verifier, DIFY_REDIRECT_URI))).toMatchObject({ status: 401, error: "invalid_client" });
        const good = await approvedCode(server, asm, confidentialId);
        // Dify puts client_secret in the form body (auth_flow.py exchange_authorization).
        expect((await exchangeAuthorization(asm, confidentialId, good.code, good.start.verifier, DIFY_REDIRECT_URI, "web-app-secret")).status).toBe(200);
    });
});

describe("every OpenAPI MCP server of an account, every RAM OAuth app as client (mcpEndpoints, clientLookup)", () => {
    const ACCOUNT = "/accounts/1234567890123456/custom";

    it("serves each path mcpEndpoints accepts, with its own metadata and sessions; a path it refuses (a deleted server) gets 404", async () => {
        const served = new Map<string, McpEndpoint>();
        const server = await start({ mcpEndpoints: (mcpPath) => served.get(mcpPath) });
        const pathA = `${ACCOUNT}/ecs-read/id/AbCdEf0123456789/mcp`;
        const pathB = `${ACCOUNT}/ecs-read-v2/id/ZyXw9876543210Qp/mcp`;
        expect([pathA, pathB, DEFAULT_MCP_PATH].every((path) => ALIBABA_MCP_PATH_PATTERN.test(path))).toBe(true);
        expect(ALIBABA_MCP_PATH_PATTERN.test(`${ACCOUNT}/ecs-read/id/x/sse`)).toBe(false);
        served.set(pathA, {});
        served.set(pathB, {});
        const urlA = `${server.url}${pathA}`;
        const urlB = `${server.url}${pathB}`;

        // Discovery points at the endpoint's own protected-resource metadata, whose resource is that endpoint.
        const refused = await new DifyStreamableClient(urlA, {}).initialize();
        expect(refused.initialize.status).toBe(401);
        const challenge = refused.initialize.headers.get("www-authenticate") ?? "";
        expect(extractWwwAuthenticateField(challenge, "resource_metadata")).toBe(`${server.url}/.well-known/oauth-protected-resource${pathA}`);
        const discovery = await discoverLikeDify(urlA, challenge);
        expect(discovery.prm?.resource).toBe(urlA);
        expect(discovery.asm.issuer).toBe(server.issuer);

        const { tokens } = await authorizeLikeDify(server, PRESET_CLIENT_ID, undefined, urlA);
        const onA = await connected(server, tokens, urlA);
        const listed = await onA.request("tools/list");
        expect((listed.body?.result?.tools as { name: string }[]).map((tool) => tool.name)).toEqual(["Ecs-DescribeInstances", "Ecs-DescribeRegions"]);
        // The same token opens the other server (no client binding here), but A's session is not B's.
        const onB = await connected(server, tokens, urlB);
        const foreign = await fetch(urlB, { method: "POST", headers: { ...onB.requestHeaders(), "mcp-session-id": onA.sessionId ?? "" }, body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }) });
        expect(foreign.status).toBe(404);
        // The default endpoint still works.
        expect((await new DifyStreamableClient(server.mcpUrl, {}).initialize()).initialize.status).toBe(401);

        // Deleted (mcpEndpoints no longer accepts it): 404 for the endpoint, its SSE sibling and its metadata.
        served.delete(pathB);
        expect((await onB.request("tools/list")).status).toBe(404);
        expect((await fetch(`${server.url}${pathB.replace(/mcp$/, "sse")}`, { headers: { Accept: "text/event-stream", ...bearer(tokens) } })).status).toBe(404);
        expect((await fetch(`${server.url}/.well-known/oauth-protected-resource${pathB}`)).status).toBe(404);
        expect((await fetch(`${server.url}${ACCOUNT}/never/id/Nope/mcp`, { method: "POST" })).status).toBe(404);
        expect(server.calls.at(-1)).toMatchObject({ kind: "unknown", status: 404 });
    });

    it("an endpoint bound to an oauthClientId takes only that client's tokens: 401 invalid_token for another's", async () => {
        const otherClient = "4071151845732618888";
        const path = `${ACCOUNT}/ecs-read/id/AbCdEf0123456789/mcp`;
        const server = await start({
            presetClients: [
                { clientId: PRESET_CLIENT_ID, redirectUris: [DIFY_REDIRECT_URI] },
                { clientId: otherClient, redirectUris: [DIFY_REDIRECT_URI] },
            ],
            mcpEndpoints: (mcpPath) => (mcpPath === path ? { oauthClientId: PRESET_CLIENT_ID } : undefined),
        });
        const url = `${server.url}${path}`;
        const own = await authorizeLikeDify(server, PRESET_CLIENT_ID, undefined, url);
        await connected(server, own.tokens, url);
        const other = await authorizeLikeDify(server, otherClient, undefined, url);
        const refused = await new DifyStreamableClient(url, bearer(other.tokens)).initialize();
        expect(refused.initialize.status).toBe(401);
        expect(refused.initialize.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token", error_description="access token issued to another client/);
        expect(server.calls.at(-1)).toMatchObject({ kind: "mcp", bearer: "other-client", authorized: false });
    });

    it("clientLookup: known clients are looked up afresh on each request: redirect URIs, any of several secrets, public clients, deletion", async () => {
        const apps = new Map<string, PresetOAuthClient>();
        const webApp = "4071151845732617777";
        const nativeApp = "4071151845732616666";
        apps.set(webApp, { clientId: webApp, redirectUris: [DIFY_REDIRECT_URI], clientSecrets: ["first-secret", "second-secret"] });
        apps.set(nativeApp, { clientId: nativeApp, redirectUris: [DIFY_REDIRECT_URI] });
        const server = await start({ presetClients: [], clientLookup: (clientId) => apps.get(clientId) });
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        // A looked-up client may be confidential: the metadata offers secret methods.
        expect(asm.token_endpoint_auth_methods_supported).toEqual(["none", "client_secret_post", "client_secret_basic"]);

        // Any of a WebApp's secrets authenticates it; none or a wrong one does not.
        const first = await approvedCode(server, asm, webApp);
        expect((await exchangeAuthorization(asm, webApp, first.code, first.start.verifier, DIFY_REDIRECT_URI, "second-secret")).status).toBe(200);
        const wrong = await approvedCode(server, asm, webApp);
        expect(await oauthError(await exchangeAuthorization(asm, webApp, wrong.code, wrong.start.verifier, DIFY_REDIRECT_URI, "made-up"))).toMatchObject({ status: 401, error: "invalid_client" });
        const none = await approvedCode(server, asm, webApp);
        expect(await oauthError(await exchangeAuthorization(asm, webApp, none.code, none.start.verifier, DIFY_REDIRECT_URI))).toMatchObject({ status: 401, error: "invalid_client" });
        // A NativeApp is public: PKCE alone.
        const { tokens } = await authorizeLikeDify(server, nativeApp);
        await connected(server, tokens);

        // A changed redirect URI counts at once; so does a deleted app.
        apps.set(webApp, { ...apps.get(webApp)!, redirectUris: ["https://dify.example.com/console/api/mcp/oauth/callback"] });
        const moved = startAuthorization(asm, webApp, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);
        const page = await fetch(moved.url);
        expect(page.status).toBe(400);
        expect(await page.text()).toContain("is not registered for client");
        apps.delete(nativeApp);
        const gone = startAuthorization(asm, nativeApp, DIFY_REDIRECT_URI, MCP_SERVER_SCOPE);
        expect(await oauthError(await fetch(gone.url))).toMatchObject({ status: 400, error: "invalid_client" });
        // Looked-up clients are not registrations.
        expect(server.registeredClients()).toEqual([]);
    });
});

describe("dynamic client registration (RFC 7591)", () => {
    it("registers Dify's client metadata (null scope included) and authorizes with the issued client_id", async () => {
        const server = await start({ presetClients: [], dynamicClientRegistration: true });
        const unauthenticated = await new DifyStreamableClient(server.mcpUrl, {}).initialize();
        const discovery = await discoverLikeDify(server.mcpUrl, unauthenticated.initialize.headers.get("www-authenticate") ?? undefined);
        expect(discovery.asm.registration_endpoint).toBe(`${server.url}/register`);

        const registered = await fetch(discovery.asm.registration_endpoint ?? "", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(difyClientMetadata()) });
        expect(registered.status).toBe(201);
        // Dify validates this as OAuthClientInformationFull: client_id and redirect_uris are required.
        const info = (await registered.json()) as { client_id: string; redirect_uris: string[]; client_secret?: string; token_endpoint_auth_method: string };
        expect(info.redirect_uris).toEqual([DIFY_REDIRECT_URI]);
        expect(info.client_secret).toBeUndefined();
        expect(info.token_endpoint_auth_method).toBe("none");
        expect(server.registeredClients()).toEqual([expect.objectContaining({ clientId: info.client_id, dynamic: true, confidential: false, clientName: "Dify" })]);

        const { tokens } = await authorizeLikeDify(server, info.client_id);
        const client = await connected(server, tokens);
        expect((await client.request("tools/list")).status).toBe(200);
    });

    it("refuses registrations Dify would not send", async () => {
        const server = await start({ dynamicClientRegistration: true });
        const register = (body: Record<string, unknown>, contentType = "application/json") =>
            fetch(`${server.url}/register`, { method: "POST", headers: { "content-type": contentType }, body: JSON.stringify(body) }).then(oauthError);

        expect(await register({ ...difyClientMetadata(), grant_types: ["refresh_token", "client_credentials"], response_types: [] })).toMatchObject({ status: 400, error: "invalid_client_metadata" });
        expect(await register({ ...difyClientMetadata(), token_endpoint_auth_method: "client_secret_basic" })).toMatchObject({ status: 400, error: "invalid_client_metadata" });
        expect(await register({ ...difyClientMetadata(), redirect_uris: [] })).toMatchObject({ status: 400, error: "invalid_redirect_uri" });
        expect(await register({ ...difyClientMetadata(), redirect_uris: ["/console/api/mcp/oauth/callback"] })).toMatchObject({ status: 400, error: "invalid_redirect_uri" });
        expect(await register(difyClientMetadata(), "text/plain")).toMatchObject({ status: 400, error: "invalid_client_metadata" });
        expect(server.registeredClients().filter((client) => client.dynamic)).toEqual([]);
    });
});

describe("MCP transport rules", () => {
    it("answers header, session and message deviations with 4xx or JSON-RPC errors", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);
        const auth = bearer(tokens);
        const raw = (headers: Record<string, string>, body: string) => fetch(server.mcpUrl, { method: "POST", headers: { ...auth, ...headers }, body });
        const initialize = JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } } });

        expect((await raw({ accept: "application/json", "content-type": "application/json" }, initialize)).status).toBe(406);
        expect((await raw({ accept: "application/json, text/event-stream", "content-type": "text/plain" }, initialize)).status).toBe(415);
        const parseError = await raw({ accept: "application/json, text/event-stream", "content-type": "application/json" }, "{not json");
        expect(parseError.status).toBe(400);
        expect(await parseError.json()).toMatchObject({ error: { code: -32700 } });
        expect((await raw({ accept: "application/json, text/event-stream", "content-type": "application/json" }, `[${initialize}]`)).status).toBe(400);
        expect((await raw({ accept: "application/json, text/event-stream", "content-type": "application/json", "mcp-protocol-version": "1999-01-01" }, initialize)).status).toBe(400);
        expect((await raw({ accept: "application/json, text/event-stream", "content-type": "application/json", "mcp-session-id": "stale" }, initialize)).status).toBe(400);

        const noSession = new DifyStreamableClient(server.mcpUrl, auth);
        expect((await noSession.request("tools/list")).status).toBe(400);
        noSession.sessionId = "00000000-0000-0000-0000-000000000000";
        expect((await noSession.request("tools/list")).status).toBe(404);

        // A request between initialize and notifications/initialized.
        const eager = new DifyStreamableClient(server.mcpUrl, auth);
        expect((await eager.request("initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } })).status).toBe(200);
        const early = await eager.request("tools/list");
        expect(early.status).toBe(400);
        expect(early.body?.error?.message).toMatch(/before notifications\/initialized/);

        const client = await connected(server, tokens);
        const unknownMethod = await client.request("resources/list");
        expect(unknownMethod.status).toBe(200);
        expect(unknownMethod.body?.error?.code).toBe(-32601);
        const unknownTool = await client.request("tools/call", { name: "Ecs-RebootInstance", arguments: {} });
        expect(unknownTool.body?.error).toMatchObject({ code: -32602, message: "unknown tool: Ecs-RebootInstance" });
        expect(server.toolInvocations).toEqual([]);
    });

    it("negotiates the protocol version Dify asks for, and the latest one for versions it does not know", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);
        for (const [asked, answered] of [
            ["2025-03-26", "2025-03-26"],
            ["2024-11-05", "2024-11-05"],
            ["2099-01-01", LATEST_PROTOCOL_VERSION],
        ]) {
            const client = new DifyStreamableClient(server.mcpUrl, bearer(tokens));
            const answer = await client.request("initialize", { protocolVersion: asked, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } });
            expect(answer.body?.result?.protocolVersion).toBe(answered);
        }
    });

    it("answers as a text/event-stream message event when switched to SSE responses", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);
        const client = await connected(server, tokens);
        server.setResponseMode("sse");

        const listed = await client.request("tools/list");
        expect(listed.status).toBe(200);
        expect(listed.contentType).toMatch(/^text\/event-stream/);
        expect((listed.body?.result?.tools as unknown[]).length).toBe(2);
        const called = await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-shanghai" } });
        expect(called.contentType).toMatch(/^text\/event-stream/);
        expect(JSON.parse(toolText(called)).TotalCount).toBe(1);
        // Notifications are still a bare 202.
        expect((await client.notify("notifications/cancelled")).status).toBe(202);
    });

    it("serves the HTTP+SSE transport at the /sse URL: endpoint event, 202 posts, answers on the stream", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);

        const unauthenticated = await fetch(server.sseUrl, { headers: { accept: "text/event-stream" } });
        expect(unauthenticated.status).toBe(401);
        expect(extractWwwAuthenticateField(unauthenticated.headers.get("www-authenticate") ?? "", "resource_metadata")).toBe(`${server.url}/.well-known/oauth-protected-resource/accounts/1234567890/custom/ops/id/AbCd/sse`);
        expect((await fetch(`${server.url}/.well-known/oauth-protected-resource/accounts/1234567890/custom/ops/id/AbCd/sse`).then((r) => r.json()) as ProtectedResourceMetadata).resource).toBe(server.sseUrl);

        // httpx_sse.connect_sse sends Accept: text/event-stream.
        const stream = await fetch(server.sseUrl, { headers: { ...bearer(tokens), accept: "text/event-stream", "cache-control": "no-store" } });
        expect(stream.status).toBe(200);
        const events = new EventStreamReader(stream.body!.getReader());
        const endpoint = await events.next();
        expect(endpoint.event).toBe("endpoint");
        // sse_client.py resolves it against the SSE URL and requires the same origin.
        const messageUrl = new URL(endpoint.data, server.sseUrl).toString();
        expect(new URL(messageUrl).origin).toBe(server.url);

        const post = (message: Record<string, unknown>, headers: Record<string, string> = bearer(tokens)) =>
            fetch(messageUrl, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(message) });
        expect((await post({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } } })).status).toBe(202);
        const initialized = await events.next();
        expect(initialized.event).toBe("message");
        expect(JSON.parse(initialized.data)).toMatchObject({ id: 0, result: { protocolVersion: LATEST_PROTOCOL_VERSION } });
        expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
        expect((await post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou" } } })).status).toBe(202);
        const result = JSON.parse((await events.next()).data) as { id: number; result: { content: { text: string }[] } };
        expect(result.id).toBe(1);
        expect(JSON.parse(result.result.content[0].text).TotalCount).toBe(2);

        expect((await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, {})).status).toBe(401);
        expect((await fetch(`${server.url}/accounts/1234567890/custom/ops/id/AbCd/message?sessionId=nope`, { method: "POST", headers: { "content-type": "application/json", ...bearer(tokens) }, body: "{}" })).status).toBe(404);
        await events.cancel();
    });
});

describe("token lifetime, revocation and tool failures", () => {
    it("an expired access token gets 401 invalid_token; the refresh token recovers", async () => {
        const server = await start({ accessTokenTtlSeconds: 1 });
        const { tokens, discovery } = await authorizeLikeDify(server);
        expect(tokens.expires_in).toBe(1);
        await new Promise((resolve) => setTimeout(resolve, 1100));

        const expired = await new DifyStreamableClient(server.mcpUrl, bearer(tokens)).initialize();
        expect(expired.initialize.status).toBe(401);
        const challenge = expired.initialize.headers.get("www-authenticate") ?? "";
        expect(challenge).toMatch(/error="invalid_token"/);
        expect(extractWwwAuthenticateField(challenge, "resource_metadata")).toBe(server.protectedResourceMetadataUrl);
        expect(server.calls.at(-1)).toMatchObject({ bearer: "expired", authorized: false, status: 401 });

        const refreshed = await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, tokens.refresh_token);
        expect(refreshed.status).toBe(200);
        const next = (await refreshed.json()) as TokenAnswer;
        const answer = await new DifyStreamableClient(server.mcpUrl, bearer(next)).request("initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "Dify", version: "1.14.1" } });
        expect(answer.status).toBe(200);
    });

    it("expireAccessTokens ends the current access tokens at once and leaves refresh tokens usable", async () => {
        const server = await start();
        const { tokens, discovery } = await authorizeLikeDify(server);
        const client = await connected(server, tokens);

        expect(server.expireAccessTokens()).toBe(1);
        expect((await client.request("tools/list")).status).toBe(401);
        expect(server.calls.at(-1)).toMatchObject({ bearer: "expired" });
        expect((await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, tokens.refresh_token)).status).toBe(200);
    });

    it("revokeTokens: tools cannot be listed and refreshing fails; keepRefreshTokens lets a refresh recover", async () => {
        const server = await start();
        const { tokens, discovery } = await authorizeLikeDify(server);
        const client = await connected(server, tokens);

        expect(server.revokeTokens({ keepRefreshTokens: true })).toBe(1);
        const listed = await client.request("tools/list");
        expect(listed.status).toBe(401);
        expect(server.calls.at(-1)).toMatchObject({ bearer: "revoked", status: 401 });
        // The token is checked before the body is read.
        expect(server.calls.at(-1)?.rpcMethod).toBeUndefined();
        const refreshed = await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, tokens.refresh_token);
        expect(refreshed.status).toBe(200);
        const next = (await refreshed.json()) as TokenAnswer;
        await connected(server, next);

        expect(server.revokeTokens()).toBe(2);
        expect((await new DifyStreamableClient(server.mcpUrl, bearer(next)).initialize()).initialize.status).toBe(401);
        expect(await oauthError(await refreshAuthorization(discovery.asm, PRESET_CLIENT_ID, next.refresh_token))).toMatchObject({ status: 400, error: "invalid_grant", description: "refresh token revoked" });
    });

    it("setToolFailure: a JSON-RPC error (Dify: 'tool invoke error') or an isError result, per tool; null restores", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);
        const client = await connected(server, tokens);
        const describeInstances = () => client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou" } });

        server.setToolFailure({ mode: "jsonrpc-error", message: "Forbidden.RAM: not authorized", tools: ["Ecs-DescribeInstances"] });
        const failed = await describeInstances();
        expect(failed.status).toBe(200);
        // Not 401: that code would make Dify re-run auth instead of reporting the failure (base_session.py).
        expect(failed.body?.error).toEqual({ code: -32603, message: "Forbidden.RAM: not authorized" });
        expect(failed.body?.result).toBeUndefined();
        const other = await client.request("tools/call", { name: "Ecs-DescribeRegions", arguments: {} });
        expect(other.body?.result?.isError).toBe(false);

        server.setToolFailure({ mode: "is-error-result" });
        const isError = await describeInstances();
        expect(isError.body?.result?.isError).toBe(true);
        expect(toolText(isError)).toMatch(/Throttling/);

        server.setToolFailure(null);
        expect(JSON.parse(toolText(await describeInstances())).TotalCount).toBe(2);
        expect(server.toolInvocations.map((invocation) => invocation.outcome)).toEqual(["jsonrpc-error", "success", "tool-error", "success"]);
    });

    it("validates tool arguments against the schema and reports API errors as isError results", async () => {
        const server = await start();
        const { tokens } = await authorizeLikeDify(server);
        const client = await connected(server, tokens);

        const missing = await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: {} });
        expect(missing.body?.error?.code).toBe(-32602);
        expect(missing.body?.error?.message).toMatch(/missing required argument "RegionId"/);
        const badType = await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou", PageSize: "ten" } });
        expect(badType.body?.error?.message).toMatch(/PageSize" must be of type integer/);

        const unknownRegion = await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "mars-1" } });
        expect(unknownRegion.body?.result?.isError).toBe(true);
        expect(JSON.parse(toolText(unknownRegion)).Code).toBe("InvalidRegionId.NotFound");
        // Numbers may arrive as strings from an LLM through Dify; Alibaba's RPC APIs take strings anyway.
        const paged = JSON.parse(toolText(await client.request("tools/call", { name: "Ecs-DescribeInstances", arguments: { RegionId: "cn-hangzhou", PageSize: "1" } })));
        expect(paged).toMatchObject({ TotalCount: 2, PageSize: 1 });
        expect(paged.Instances.Instance).toHaveLength(1);
    });

    it("a token without the MCP scope gets 403 insufficient_scope", async () => {
        const server = await start({ scopes: [MCP_SERVER_SCOPE, "openid"] });
        const { asm } = await discoverLikeDify(server.mcpUrl, undefined);
        const begun = startAuthorization(asm, PRESET_CLIENT_ID, DIFY_REDIRECT_URI, "openid");
        const redirect = new URL(await server.approve(begun.url));
        const tokens = (await (await exchangeAuthorization(asm, PRESET_CLIENT_ID, redirect.searchParams.get("code") ?? "", begun.verifier, DIFY_REDIRECT_URI)).json()) as TokenAnswer;
        expect(tokens.scope).toBe("openid");

        const answer = await new DifyStreamableClient(server.mcpUrl, bearer(tokens)).initialize();
        expect(answer.initialize.status).toBe(403);
        expect(answer.initialize.headers.get("www-authenticate")).toMatch(/error="insufficient_scope", scope="\/acs\/mcp-server"/);
        expect(server.calls.at(-1)).toMatchObject({ bearer: "insufficient-scope", authorized: false });
    });
});

/** Reads events from a streaming response as they arrive. */
class EventStreamReader {
    private buffer = "";
    private readonly decoder = new TextDecoder();

    constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

    async next(timeoutMs = 3000): Promise<SseEvent> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const boundary = this.buffer.indexOf("\n\n");
            if (boundary >= 0) {
                const block = this.buffer.slice(0, boundary + 2);
                this.buffer = this.buffer.slice(boundary + 2);
                return parseSseEvents(block)[0];
            }
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error("no SSE event in time")), Math.max(0, deadline - Date.now()));
            });
            try {
                const chunk = await Promise.race([this.reader.read(), timeout]);
                if (chunk.done) throw new Error("event stream ended");
                this.buffer += this.decoder.decode(chunk.value, { stream: true });
            } finally {
                clearTimeout(timer);
            }
        }
    }

    cancel(): Promise<void> {
        return this.reader.cancel();
    }
}
