// MCP tool providers (/workspaces/current/tool-provider/mcp, tools/mcp, tool-providers): create, update, delete,
// the OAuth authorization (dynamic client registration before 1.10, a preset client from 1.10), and listing the
// remote server's tools with the stored tokens (services/tools/mcp_tools_manage_service.py, core/mcp/auth_client.py,
// controllers/console/workspace/tool_providers.py). The fake never connects to an MCP server: tests play the
// person's consent (authorizeMcpProvider) and the server revoking the grant (revokeMcpTokens).
import * as crypto from "crypto";
import { maskSecret, mcpEntity } from "./mcp-entity";
import { HttpError, invalidParam, pydanticError, Reply, Request, requireString, Router, UUID } from "./router";
import { ConsoleState, HIDDEN } from "./state";
import { McpProviderRecord } from "./types";

const MCP = "/workspaces/current/tool-provider/mcp";

/** What tests/servers/mcp-oauth-server.ts's token endpoint answers for a revoked refresh token. */
const REVOKED_TOKEN_ERROR = '{"error":"invalid_grant","error_description":"refresh token revoked"}';

/** clear_provider_credentials, and what a reconnect to a server that wants OAuth leaves: nothing. */
function resetMcpCredentials(record: McpProviderRecord): void {
    record.clientId = "";
    record.clientSecret = "";
    record.isDynamicRegistration = true; // the default of an empty client_information
    record.hasTokens = false;
    record.revokedTokenError = "";
    record.authed = false;
    record.tools = [];
}

function validateServerUrl(url: string): void {
    try {
        const parsed = new URL(url);
        if ((parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.host) {
            return;
        }
    } catch {
        // fall through
    }
    throw invalidParam("Server URL is not valid.");
}

const byName = (a: McpProviderRecord, b: McpProviderRecord) => a.name.localeCompare(b.name);

export class McpRoutes {
    private readonly oauthStates = new Map<string, { providerId: string; createdAt: number }>();

    constructor(private readonly state: ConsoleState) {}

    register(router: Router): void {
        const state = this.state;
        router.route("POST", MCP, "write", true, (req) => this.create(req));
        router.route("PUT", MCP, "write", true, (req) => this.update(req));
        router.route("DELETE", MCP, "write", true, (req) => {
            const record = this.find(req.json.provider_id);
            state.mcpProviders.delete(record.id);
            return { body: { result: "success" } };
        });
        router.route("POST", `${MCP}/auth`, "write", true, (req) => this.auth(req));
        router.route("GET", `${MCP}/tools/<id>`, "read", true, (req) => ({ body: mcpEntity(state, this.find(req.params[0]), "detail") }));
        router.route("GET", `${MCP}/update/<id>`, "read", true, (req) => this.listTools(req));

        // ToolProviderListApi: ToolManager.list_providers_from_api, MCP providers with for_list=True (UUID ids).
        router.route("GET", "/workspaces/current/tool-providers", "read", true, (req) => {
            const type = req.query.get("type");
            if (type !== null && !["builtin", "model", "api", "workflow", "mcp"].includes(type)) {
                const problem = "Input should be 'builtin', 'model', 'api', 'workflow' or 'mcp'";
                throw invalidParam(
                    state.atLeast("1.14.1") ? pydanticError("ToolProviderListQuery", "type", problem, "literal_error", type) : `type: ${problem}`,
                );
            }
            const mcp = type === null || type === "mcp" ? [...state.mcpProviders.values()].sort(byName) : [];
            return { body: mcp.map((r) => mcpEntity(state, r, "providers")) };
        });

        router.route("GET", "/workspaces/current/tools/mcp", "read", true, () => ({
            body: [...state.mcpProviders.values()].sort(byName).map((r) => mcpEntity(state, r, "list")),
        }));
    }

    /** Test hook: the person approved the consent page; `tools` is what the MCP server lists. */
    authorize(idOrIdentifier: string, tools: string[]): void {
        const record = this.findByIdOrIdentifier(idOrIdentifier);
        record.authed = true;
        record.hasTokens = true;
        record.revokedTokenError = "";
        record.remoteTools = [...tools];
    }

    /** Test hook: the MCP server revoked the grant; `tokenError` is what its token endpoint answers to a refresh. */
    revokeTokens(idOrIdentifier: string, tokenError = REVOKED_TOKEN_ERROR): void {
        const record = this.findByIdOrIdentifier(idOrIdentifier);
        if (record.hasTokens) {
            record.revokedTokenError = tokenError;
        }
    }

    private findByIdOrIdentifier(idOrIdentifier: string): McpProviderRecord {
        const record = [...this.state.mcpProviders.values()].find((r) => r.id === idOrIdentifier || r.serverIdentifier === idOrIdentifier);
        if (!record) {
            throw new Error(`no MCP provider ${idOrIdentifier}`);
        }
        return record;
    }

    private create(req: Request): Reply {
        const state = this.state;
        const serverUrl = requireString(req, "server_url");
        const name = requireString(req, "name");
        requireString(req, "icon");
        requireString(req, "icon_type");
        const identifier = requireString(req, "server_identifier");
        validateServerUrl(serverUrl);
        this.checkUniqueness(name, serverUrl, identifier);
        const authentication = (req.json.authentication ?? {}) as Record<string, string>;
        const preset = state.atLeast("1.10.0") && !!authentication.client_id;
        const record: McpProviderRecord = {
            id: crypto.randomUUID(),
            name,
            serverUrl,
            serverIdentifier: identifier,
            icon: String(req.json.icon),
            iconType: String(req.json.icon_type),
            iconBackground: String(req.json.icon_background ?? ""),
            ...this.readTimeouts(req.json),
            headers: state.atLeast("1.9.0") ? ((req.json.headers ?? {}) as Record<string, string>) : {},
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
        state.mcpProviders.set(record.id, record);
        return { body: mcpEntity(state, record, "detail") };
    }

    // ToolProviderMCPApi.put: validate_server_url_standalone (a new URL reconnects first), then update_provider.
    private update(req: Request): Reply {
        const state = this.state;
        const record = this.find(req.json.provider_id);
        const serverUrl = requireString(req, "server_url");
        const name = requireString(req, "name");
        const identifier = requireString(req, "server_identifier");
        const keepUrl = serverUrl.includes(HIDDEN);
        if (!keepUrl) {
            validateServerUrl(serverUrl);
        }
        const urlChanged = !keepUrl && serverUrl !== record.serverUrl; // compared by sha256 hash in Dify
        if (urlChanged && state.options.mcpServerReachable === false) {
            throw invalidParam("Failed to re-connect MCP server: connection refused");
        }
        if (name !== record.name && [...state.mcpProviders.values()].some((o) => o.id !== record.id && o.name === name)) {
            throw invalidParam(`MCP tool ${name} already exists`);
        }
        for (const other of state.mcpProviders.values()) {
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
        Object.assign(record, this.readTimeouts(req.json, record));
        if (state.atLeast("1.9.0")) {
            record.headers = (req.json.headers ?? {}) as Record<string, string>; // always replaced
        }
        const authentication = req.json.authentication as Record<string, string | null> | undefined;
        if (state.atLeast("1.10.0") && authentication?.client_id) {
            // _process_credentials: encrypted_credentials becomes only the client information, so the tokens are gone
            // while `authed` stays as it is. Masked values equal to what is shown were meant to keep the stored
            // originals, but in 1.14.1 _merge_credentials_with_masked looks them up at the top level of the
            // credentials while they sit below `client_information`: the masked values are stored as sent (an
            // authorization then names the masked client id). Earlier versions keep the originals (unverified).
            const keepOriginals = !state.atLeast("1.14.1");
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
    }

    private auth(req: Request): Reply {
        const options = this.state.options;
        const record = this.find(req.json.provider_id);
        if (req.json.authorization_code && this.state.atLeast("1.10.0")) {
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
        this.oauthStates.set(state, { providerId: record.id, createdAt: Date.now() });
        const query = new URLSearchParams({
            response_type: "code",
            client_id: clientId,
            // base64url(SHA-256(code_verifier)): 43 characters.
            code_challenge: crypto.createHash("sha256").update(crypto.randomBytes(32)).digest("base64url"),
            code_challenge_method: "S256",
            redirect_uri: `${this.state.baseUrl}/console/api/mcp/oauth/callback`,
            state,
        });
        return { body: { authorization_url: `https://signin.aliyun.com/oauth2/v1/auth?${query.toString()}` } };
    }

    // list_provider_tools: needs `authed`, then lists with the stored tokens through MCPClientWithAuthRetry; a
    // 401 runs auth() once (registering a DCR client when none is stored), which yields no token without a
    // person: "Authentication failed - no token received". Nothing is stored on failure.
    private listTools(req: Request): Reply {
        const options = this.state.options;
        const record = this.find(req.params[0]);
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
        return { body: mcpEntity(this.state, record, "detail") };
    }

    private find(id: unknown): McpProviderRecord {
        if (typeof id === "string" && !UUID.test(id)) {
            // get_provider compares the uuid column with it: PostgreSQL refuses the cast (DataError, a plain 500).
            throw new HttpError(500, "unknown", "Internal Server Error");
        }
        const record = typeof id === "string" ? this.state.mcpProviders.get(id) : undefined;
        if (!record) {
            throw invalidParam("MCP tool not found");
        }
        return record;
    }

    private checkUniqueness(name: string, url: string, identifier: string): void {
        for (const other of this.state.mcpProviders.values()) {
            if (other.name === name) {
                throw invalidParam(`MCP tool ${name} already exists`);
            }
            if (other.serverUrl === url) {
                throw invalidParam(this.state.atLeast("1.10.0") ? "MCP tool with this server URL already exists" : `MCP tool ${url} already exists`);
            }
            if (other.serverIdentifier === identifier) {
                throw invalidParam(`MCP tool ${identifier} already exists`);
            }
        }
    }

    private readTimeouts(json: Record<string, unknown>, current?: { timeout: number; sseReadTimeout: number }) {
        if (this.state.atLeast("1.10.0")) {
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
    }
}
