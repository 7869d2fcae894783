// DifyMcpToolProvider: an MCP server registered in Dify's workspace (Tools → MCP), plus the OAuth hand-off.
// Dify stores the server URL encrypted and only shows it masked (scheme://host/******), so the desired URL is
// kept in state and drift is detected by comparing masked forms. On Dify 1.10+ a preset OAuth client
// (`authentication.client_id`) is sent on create, and on update whenever the URL changes (Dify then resets
// the provider's credentials, client included), the client changes, or Dify no longer holds it; never
// otherwise, since sending it wipes Dify's stored tokens. On 1.8–1.9 Dify can only use dynamic client
// registration (RFC 7591) with the authorization server.
// Facts: ../shared/reference/dify-console-api.md sections 2 and 7; Dify's
// services/tools/mcp_tools_manage_service.py (update_provider, validate_server_url_standalone).
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { differs } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { containsUnknown, isKnown } from "../engine/unknown";
import {
    checkDifyConnection,
    connectWith,
    DIFY_VERSION_THRESHOLDS,
    DifyConnectionInputs,
    DifyConsole,
    difyMcpOAuthRedirectUri,
    difyVersionAtLeast,
    isDifyAlreadyExists,
    isDifyApiError,
    isDifyNotFound,
    isLostAnswer,
    joinSentences,
    difyMaskedServerUrl,
    maskDifyCredential,
    normalizeDifyUrl,
    resourceInitFailure,
    sleepMs,
} from "./client";

/** The rule Dify's web UI enforces on server identifiers (isValidServerID); the backend checks nothing. */
export const MCP_SERVER_IDENTIFIER_PATTERN = /^[a-z0-9_-]{1,24}$/;
const MCP_ROUTE = "/workspaces/current/tool-provider/mcp";
/** Lists providers with their UUIDs (`for_list=True`); GET /workspaces/current/tools/mcp gives server identifiers as ids. */
const TOOL_PROVIDERS_ROUTE = "/workspaces/current/tool-providers";
/** Dify keeps the stored URL when an update carries this placeholder. */
const UNCHANGED_URL = "[__HIDDEN__]";
/** Dify's OAuth state lives 5 minutes; while waiting, a fresh authorization URL is issued before that. */
const AUTHORIZATION_URL_LIFETIME_MS = 4.5 * 60 * 1000;

export interface DifyMcpToolProviderInputs extends DifyConnectionInputs {
    /** Display name, unique in the workspace, at most 40 characters. */
    name: string;
    /** The MCP server's Streamable HTTP URL (a path ending in /mcp selects Streamable HTTP). */
    serverUrl: string;
    /** Unique id agents use to reference the tools: ^[a-z0-9_-]{1,24}$. */
    serverIdentifier: string;
    /** Emoji icon. */
    icon?: string;
    iconBackground?: string;
    timeoutSeconds?: number;
    sseReadTimeoutSeconds?: number;
    /** Preset OAuth client (Dify 1.10+): the OAuth app's client id. Ignored, with a warning, before 1.10. */
    oauthClientId?: string;
    /** Secret of a confidential OAuth client; leave empty for a public (PKCE) client. */
    oauthClientSecret?: string;
    /** Make `up` wait until a person has authorized the workspace and the tools are listed. */
    waitForAuthorization?: boolean;
    authorizationTimeoutSeconds?: number;
    authorizationPollSeconds?: number;
    /** While waiting, also write the authorization URL to this file (provider logs are not always shown). */
    authorizationUrlFile?: string;
    requestTimeoutSeconds?: number;
}

export interface DifyMcpToolProviderOutputs extends DifyMcpToolProviderInputs {
    /** Dify's UUID of the provider (also the resource id). */
    providerId: string;
    /** The consent URL a person opens once to authorize the workspace ("" once authorized). Valid 5 minutes. */
    authorizationUrl: string;
    /** Whether Dify can list the server's tools with the tokens it holds (not just its `is_team_authorization` flag). */
    authorized: boolean;
    /** Tool names Dify discovered on the server (empty until authorized). */
    toolNames: string[];
    /** "preset-client" (1.10+ with oauthClientId) or "dynamic-registration". */
    oauthClientMode: "preset-client" | "dynamic-registration";
    /** The redirect URI to register in the OAuth app. */
    oauthRedirectUri: string;
    difyVersion: string;
}


const DEFAULTS = {
    icon: "☁️",
    iconBackground: "#E0F2FE",
    timeoutSeconds: 30,
    sseReadTimeoutSeconds: 300,
    waitForAuthorization: false,
    authorizationTimeoutSeconds: 600,
    authorizationPollSeconds: 5,
};

export function checkDifyMcpToolProvider(
    news: Partial<DifyMcpToolProviderInputs>,
): pulumi.dynamic.CheckResult<DifyMcpToolProviderInputs> {
    const failures: CheckFailure[] = checkDifyConnection(news);
    const known = isKnown;
    if (news.name === undefined || (known(news.name) && !/^.{1,40}$/u.test(String(news.name)))) {
        failures.push({ property: "name", reason: "name is required, 1 to 40 characters, unique in the Dify workspace" });
    }
    if (news.serverIdentifier === undefined || (known(news.serverIdentifier) && !MCP_SERVER_IDENTIFIER_PATTERN.test(String(news.serverIdentifier)))) {
        failures.push({
            property: "serverIdentifier",
            reason: "serverIdentifier must match ^[a-z0-9_-]{1,24}$ (lower-case letters, digits, _ and -, at most 24 characters)",
        });
    }
    if (news.serverUrl === undefined) {
        failures.push({ property: "serverUrl", reason: "serverUrl is required: the MCP server's Streamable HTTP URL" });
    } else if (known(news.serverUrl)) {
        let ok = false;
        try {
            const url = new URL(String(news.serverUrl));
            ok = (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
        } catch {
            ok = false;
        }
        if (!ok) {
            failures.push({ property: "serverUrl", reason: "serverUrl must be an absolute URL with scheme http or https" });
        }
    }
    for (const key of ["timeoutSeconds", "sseReadTimeoutSeconds", "authorizationTimeoutSeconds", "authorizationPollSeconds", "requestTimeoutSeconds"] as const) {
        const value = news[key];
        if (known(value) && !(typeof value === "number" && value > 0)) {
            failures.push({ property: key, reason: `${key} must be a positive number of seconds` });
        }
    }
    if (known(news.waitForAuthorization) && typeof news.waitForAuthorization !== "boolean") {
        failures.push({ property: "waitForAuthorization", reason: "waitForAuthorization must be true or false" });
    }
    if (known(news.oauthClientSecret) && news.oauthClientSecret !== "" && !news.oauthClientId) {
        failures.push({ property: "oauthClientSecret", reason: "oauthClientSecret needs oauthClientId" });
    }
    if (failures.length > 0) {
        return { failures };
    }
    const inputs: DifyMcpToolProviderInputs = {
        ...DEFAULTS,
        ...(Object.fromEntries(Object.entries(news).filter(([, v]) => v !== undefined)) as unknown as DifyMcpToolProviderInputs),
        difyUrl: normalizeDifyUrl(news.difyUrl as string),
    };
    return { inputs };
}

/** Fields Dify stores for the provider; all of them can be updated in place (PUT). */
const REMOTE_FIELDS = ["name", "serverUrl", "serverIdentifier", "icon", "iconBackground", "timeoutSeconds", "sseReadTimeoutSeconds", "oauthClientId", "oauthClientSecret"] as const;


/**
 * Not authorized, and no consent URL to show: a refresh found that the tokens stopped working (revoked, refresh
 * token expired) after an authorization, or a create failed before issuing a URL. The next `up` gets a new URL.
 */
function needsAuthorizationUrl(olds: Partial<DifyMcpToolProviderOutputs>): boolean {
    return olds.authorized === false && !olds.authorizationUrl;
}

export function diffDifyMcpToolProvider(olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs): pulumi.dynamic.DiffResult {
    const replaces: string[] = [];
    if (differs(olds, news, "difyUrl")) {
        replaces.push("difyUrl");
    }
    if (olds.oauthClientId && !news.oauthClientId && !containsUnknown(news.oauthClientId)) {
        // Dify has no documented way to drop a preset client in place (UNCONFIRMED); start over.
        replaces.push("oauthClientId");
    }
    const changed = [...REMOTE_FIELDS, "adminEmail", "adminPassword", "waitForAuthorization"].filter((key) =>
        differs(olds, news, key as keyof DifyMcpToolProviderInputs),
    );
    // With waitForAuthorization, every `up` retries until the workspace is authorized.
    const pendingAuthorization = news.waitForAuthorization === true && olds.authorized === false;
    return {
        changes: replaces.length > 0 || changed.length > 0 || pendingAuthorization || needsAuthorizationUrl(olds),
        replaces,
        // Name, URL and identifier are unique per workspace.
        deleteBeforeReplace: replaces.length > 0,
    };
}

interface McpProviderEntity {
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

function supportsPresetClient(version: string): boolean {
    return difyVersionAtLeast(version, DIFY_VERSION_THRESHOLDS.mcpPresetOAuthClient);
}

function clientModeFor(version: string, inputs: DifyMcpToolProviderInputs): DifyMcpToolProviderOutputs["oauthClientMode"] {
    return supportsPresetClient(version) && inputs.oauthClientId ? "preset-client" : "dynamic-registration";
}

/**
 * Whether Dify (1.10+) lacks the preset client `inputs` asks for: it shows `authentication: null` and
 * `is_dynamic_registration: true` once its credentials were reset (a URL change, a failed mcp/auth), and a
 * different masked id when the client was changed in its UI.
 */
function presetClientMissing(entity: McpProviderEntity, clientId: string, clientSecret: string): boolean {
    const shown = entity.authentication;
    if (!shown?.client_id || entity.is_dynamic_registration === true) {
        return true;
    }
    return shown.client_id !== maskDifyCredential(clientId) || (shown.client_secret ?? "") !== maskDifyCredential(clientSecret);
}

/** The create/update body for the instance's version; unknown keys are ignored by every version. */
function providerBody(
    version: string,
    inputs: DifyMcpToolProviderInputs,
    serverUrl: string,
    sendAuthentication: boolean,
): Record<string, unknown> {
    const body: Record<string, unknown> = {
        server_url: serverUrl,
        name: inputs.name,
        icon: inputs.icon ?? DEFAULTS.icon,
        icon_type: "emoji",
        icon_background: inputs.iconBackground ?? DEFAULTS.iconBackground,
        server_identifier: inputs.serverIdentifier,
        timeout: inputs.timeoutSeconds ?? DEFAULTS.timeoutSeconds,
        sse_read_timeout: inputs.sseReadTimeoutSeconds ?? DEFAULTS.sseReadTimeoutSeconds,
    };
    if (difyVersionAtLeast(version, DIFY_VERSION_THRESHOLDS.mcpHeaders)) {
        body.headers = {};
    }
    if (supportsPresetClient(version)) {
        // From 1.10 the top-level timeouts are dropped; they live in `configuration`.
        body.configuration = { timeout: body.timeout, sse_read_timeout: body.sse_read_timeout };
        if (sendAuthentication && inputs.oauthClientId) {
            body.authentication = { client_id: inputs.oauthClientId, client_secret: inputs.oauthClientSecret ?? "" };
        }
    }
    return body;
}

function warnAboutRegistration(version: string, inputs: DifyMcpToolProviderInputs): void {
    if (supportsPresetClient(version)) {
        return;
    }
    const ignored = inputs.oauthClientId ? ` The configured oauthClientId is not used: presetting a client needs Dify ${DIFY_VERSION_THRESHOLDS.mcpPresetOAuthClient} or later.` : "";
    console.warn(
        `warning: Dify ${version} cannot preset an OAuth client for MCP server "${inputs.serverIdentifier}"; it relies on ` +
            `dynamic client registration (RFC 7591) with the server's authorization server, which must support it ` +
            `(UNCONFIRMED for Alibaba Cloud).${ignored}`,
    );
}

/** POST .../mcp/auth once: the consent URL, or "" when Dify already holds a working authorization. */
async function requestAuthorization(session: DifyConsole, providerId: string): Promise<string> {
    const answer = await session.post<{ authorization_url?: string; result?: string }>(`${MCP_ROUTE}/auth`, { provider_id: providerId });
    return answer.authorization_url ?? "";
}

/**
 * What POST .../mcp/auth answers (400) when the stored tokens no longer work and the refresh token is refused
 * (revoked grant, expired refresh token): Dify has then cleared every credential of the provider, a preset
 * client included (controllers/console/workspace/tool_providers.py ToolMCPAuthApi.post: MCPRefreshTokenError
 * → clear_provider_credentials).
 */
function isRefreshTokenFailure(err: unknown): boolean {
    return isDifyApiError(err) && err.status === 400 && /Failed to refresh token, please try to authorize again/i.test(err.difyMessage);
}

/** The `client_id` a consent URL asks the authorization server for ("" when it names none or does not parse). */
function consentClientId(authorizationUrl: string): string {
    try {
        return new URL(authorizationUrl).searchParams.get("client_id") ?? "";
    } catch {
        return "";
    }
}

/**
 * POST .../mcp/auth: the consent URL, or "" when Dify already holds a working authorization. Two ways Dify
 * loses the preset client, both repaired by sending the client again (same URL, so nothing else changes) and
 * asking once more:
 *  - Dify refuses because the tokens it held are dead, and has just dropped every credential, the client too;
 *  - the consent URL names another client_id: saving the provider in Dify's UI sends the masked id back, and
 *    Dify stores that mask as the id (services/tools/mcp_tools_manage_service.py _merge_credentials_with_masked
 *    looks the stored id up at the top level of credentials that keep it under `client_information`). Dify
 *    shows that mask exactly like the real id's, so only the consent URL tells them apart.
 */
async function startAuthorization(session: DifyConsole, providerId: string, inputs: DifyMcpToolProviderInputs): Promise<string> {
    const preset = supportsPresetClient(session.version) && !!inputs.oauthClientId;
    const sendClient = () => session.put(MCP_ROUTE, { ...providerBody(session.version, inputs, UNCHANGED_URL, true), provider_id: providerId });
    let url: string;
    try {
        url = await requestAuthorization(session, providerId);
    } catch (err) {
        if (!isRefreshTokenFailure(err)) {
            throw err;
        }
        console.warn(
            `warning: the OAuth tokens Dify held for MCP server "${inputs.serverIdentifier}" no longer work (${err instanceof Error ? err.message : String(err)}); starting a new authorization.`,
        );
        if (preset) {
            await sendClient();
        }
        url = await requestAuthorization(session, providerId);
    }
    const asked = consentClientId(url);
    if (preset && asked !== "" && asked !== inputs.oauthClientId) {
        console.warn(
            `warning: Dify's consent URL for MCP server "${inputs.serverIdentifier}" names client_id ${asked}, not the configured oauthClientId ` +
                "(saving the provider in Dify's UI stores the masked id); sending the client again.",
        );
        await sendClient();
        url = await requestAuthorization(session, providerId);
        const again = consentClientId(url);
        if (again !== "" && again !== inputs.oauthClientId) {
            throw new Error(
                joinSentences(
                    `Dify keeps asking the authorization server for client_id ${again} instead of oauthClientId ${inputs.oauthClientId} ` +
                        `for MCP server "${inputs.serverIdentifier}", even after the client was sent again`,
                    "Open the MCP provider in Dify's console, enter the client id again, and run `pulumi up`",
                ),
            );
        }
    }
    return url;
}

async function fetchTools(session: DifyConsole, providerId: string): Promise<string[]> {
    const entity = await session.get<McpProviderEntity>(`${MCP_ROUTE}/update/${providerId}`);
    return toolNamesOf(entity);
}

function toolNamesOf(entity: McpProviderEntity): string[] {
    return (entity.tools ?? []).map((tool) => String(tool.name ?? "")).filter((name) => name !== "");
}

/**
 * What GET .../mcp/update/<id> answers when Dify has no working tokens (400 invalid_param): "Please auth the
 * tool first" while `authed` is false; "Failed to connect to MCP server: Authentication failed - no token
 * received" / "...: Authentication retry failed: ..." when `authed` is true but the tokens are gone or
 * rejected (services/tools/mcp_tools_manage_service.py list_provider_tools, core/mcp/auth_client.py).
 */
function isAuthorizationFailure(err: unknown): boolean {
    return isDifyApiError(err) && err.status === 400 && /Please auth the tool first|Authentication (retry )?failed/i.test(err.difyMessage);
}

type ToolListing = { ok: true; toolNames: string[] } | { ok: false; authorizationFailure: boolean; message: string };

/**
 * Dify's own answer for a provider it does not have (ValueError "MCP tool not found", 400). Narrower than
 * isDifyNotFound on purpose: the tool listing also relays the MCP server's answers, and "Failed to connect to
 * MCP server: ... returned 404 Not Found" is about the server, not about our Dify provider.
 */
function isMcpProviderGone(err: unknown): boolean {
    return isDifyApiError(err) && (err.status === 404 || (err.status === 400 && /^MCP tool not found/i.test(err.difyMessage)));
}

/** Lists the tools the way Dify's UI refreshes them: this works only with tokens the MCP server accepts. */
async function listToolsWithStoredTokens(session: DifyConsole, providerId: string): Promise<ToolListing> {
    try {
        return { ok: true, toolNames: await fetchTools(session, providerId) };
    } catch (err) {
        if (isMcpProviderGone(err)) {
            throw err;
        }
        return { ok: false, authorizationFailure: isAuthorizationFailure(err), message: err instanceof Error ? err.message : String(err) };
    }
}

interface AuthorizationState {
    authorizationUrl: string;
    authorized: boolean;
    toolNames: string[];
}

function announce(inputs: DifyMcpToolProviderInputs, url: string): void {
    console.error(
        `Authorize Dify's MCP server "${inputs.serverIdentifier}": open this URL within 5 minutes and approve: ${url}`,
    );
    if (inputs.authorizationUrlFile) {
        fs.writeFileSync(inputs.authorizationUrlFile, url + "\n");
    }
}

/**
 * Starts authorization and, when asked, waits until a person approved it, then lists the tools. Issues a
 * fresh URL before Dify's 5-minute OAuth state expires. `is_team_authorization` alone proves nothing (Dify
 * keeps it true when a new client wiped the tokens), so once it is true the tools must also list.
 */
async function authorize(session: DifyConsole, providerId: string, inputs: DifyMcpToolProviderInputs): Promise<AuthorizationState> {
    let url = await startAuthorization(session, providerId, inputs);
    if (url === "") {
        return { authorizationUrl: "", authorized: true, toolNames: await fetchTools(session, providerId) };
    }
    if (!inputs.waitForAuthorization) {
        return { authorizationUrl: url, authorized: false, toolNames: [] };
    }
    announce(inputs, url);
    const timeoutMs = (inputs.authorizationTimeoutSeconds ?? DEFAULTS.authorizationTimeoutSeconds) * 1000;
    const pollMs = (inputs.authorizationPollSeconds ?? DEFAULTS.authorizationPollSeconds) * 1000;
    const started = Date.now();
    let issued = Date.now();
    let lastFailure = "";
    while (Date.now() - started < timeoutMs) {
        await sleepMs(pollMs);
        const entity = await session.get<McpProviderEntity>(`${MCP_ROUTE}/tools/${providerId}`);
        if (entity.is_team_authorization) {
            const listing = await listToolsWithStoredTokens(session, providerId);
            if (listing.ok) {
                return { authorizationUrl: "", authorized: true, toolNames: listing.toolNames };
            }
            lastFailure = listing.message;
        }
        if (Date.now() - issued > AUTHORIZATION_URL_LIFETIME_MS) {
            url = await startAuthorization(session, providerId, inputs);
            issued = Date.now();
            if (url === "") {
                return { authorizationUrl: "", authorized: true, toolNames: await fetchTools(session, providerId) };
            }
            announce(inputs, url);
        }
    }
    throw new Error(
        joinSentences(
            `MCP server "${inputs.serverIdentifier}" was not authorized within ${timeoutMs / 1000} s: open ${url} ` +
                "(valid 5 minutes) and approve, then run `pulumi up` again",
            lastFailure ? `Last attempt to list its tools: ${lastFailure}` : "",
        ),
    );
}

/** Finds a provider by server identifier (unique per workspace), with its UUID. */
async function findProviderByIdentifier(session: DifyConsole, serverIdentifier: string): Promise<McpProviderEntity | undefined> {
    const providers = await session.get<McpProviderEntity[]>(TOOL_PROVIDERS_ROUTE, { type: "mcp" });
    return (Array.isArray(providers) ? providers : []).find((p) => p.server_identifier === serverIdentifier && typeof p.id === "string");
}

export const difyMcpToolProviderProvider: pulumi.dynamic.ResourceProvider<DifyMcpToolProviderInputs, DifyMcpToolProviderOutputs> = engineSafeProvider({
    async check(_olds: DifyMcpToolProviderInputs, news: DifyMcpToolProviderInputs) {
        return checkDifyMcpToolProvider(news);
    },

    async diff(_id: string, olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs) {
        return diffDifyMcpToolProvider(olds, news);
    },

    async create(inputs: DifyMcpToolProviderInputs) {
        const session = await connectWith(inputs, [inputs.oauthClientSecret ?? ""]);
        warnAboutRegistration(session.version, inputs);
        // A create whose answer was lost (connection reset after Dify applied it) left a provider behind: adopt
        // it rather than fail forever with "MCP tool ... already exists".
        let entity = await findProviderByIdentifier(session, inputs.serverIdentifier);
        let adopted = entity !== undefined;
        if (!entity) {
            try {
                entity = await session.post<McpProviderEntity>(MCP_ROUTE, providerBody(session.version, inputs, inputs.serverUrl, true));
            } catch (err) {
                if (!isDifyAlreadyExists(err) && !isLostAnswer(err)) {
                    throw err;
                }
                entity = await findProviderByIdentifier(session, inputs.serverIdentifier);
                if (!entity) {
                    throw err; // taken by a provider with another identifier (name or URL), or never applied
                }
                adopted = true;
            }
        }
        const providerId = entity.id;
        const base: DifyMcpToolProviderOutputs = {
            ...inputs,
            providerId,
            authorizationUrl: "",
            authorized: false,
            toolNames: [],
            oauthClientMode: clientModeFor(session.version, inputs),
            oauthRedirectUri: difyMcpOAuthRedirectUri(inputs.difyUrl),
            difyVersion: session.version,
        };
        try {
            if (adopted) {
                // Bring it to the desired state. The full URL is sent: Dify keeps its credentials when it is the
                // one stored and resets them when not, so the preset client goes along (it wipes any tokens).
                console.warn(`warning: adopting the existing Dify MCP provider "${inputs.serverIdentifier}" (${providerId}).`);
                await session.put(MCP_ROUTE, { ...providerBody(session.version, inputs, inputs.serverUrl, true), provider_id: providerId });
            }
            const state = await authorize(session, providerId, inputs);
            return { id: providerId, outs: { ...base, ...state } };
        } catch (err) {
            // The provider exists in Dify: record it so the next `up` updates instead of creating a duplicate.
            throw resourceInitFailure(providerId, base, err);
        }
    },

    /**
     * Costs, when nothing changed: the login (GET /setup, POST /login), GET .../mcp/tools/<id>, and, while
     * Dify says the workspace is authorized, GET .../mcp/update/<id>, for which Dify opens one MCP session to
     * the server (initialize + tools/list with the stored tokens) and stores the tool list. No OAuth flow,
     * no writes from here.
     */
    async read(id: string, props?: DifyMcpToolProviderOutputs) {
        const state = props as DifyMcpToolProviderOutputs;
        const session = await connectWith(state, [state.oauthClientSecret ?? ""]);
        let entity: McpProviderEntity;
        try {
            entity = await session.get<McpProviderEntity>(`${MCP_ROUTE}/tools/${id}`);
        } catch (err) {
            if (isDifyNotFound(err)) {
                return {};
            }
            throw err;
        }
        // A dropped or replaced preset client (1.10+) is drift: read back "" (or the masked id Dify shows) so
        // the diff plans an update that sends the client again.
        let oauthClientId = state.oauthClientId;
        let oauthClientSecret = state.oauthClientSecret;
        let clientMissing = false;
        if (supportsPresetClient(session.version) && state.oauthClientId) {
            clientMissing = presetClientMissing(entity, state.oauthClientId, state.oauthClientSecret ?? "");
            const shown = entity.authentication;
            if (clientMissing && (!shown?.client_id || entity.is_dynamic_registration === true)) {
                oauthClientId = "";
            } else if (clientMissing && shown?.client_id) {
                // Another preset client was set in Dify's UI: show what Dify shows (masked).
                if (shown.client_id !== maskDifyCredential(state.oauthClientId)) {
                    oauthClientId = shown.client_id;
                }
                if ((shown.client_secret ?? "") !== maskDifyCredential(state.oauthClientSecret ?? "")) {
                    oauthClientSecret = shown.client_secret ?? "";
                }
            }
        }
        // Authorized means the tools list with the stored tokens: Dify keeps `is_team_authorization` true
        // after a new client wiped them. Without a client there are no tokens either (the credentials were reset).
        let authorized = false;
        let toolNames = toolNamesOf(entity);
        if (entity.is_team_authorization === true && !clientMissing) {
            const listing = await listToolsWithStoredTokens(session, id);
            if (listing.ok) {
                authorized = true;
                toolNames = listing.toolNames;
            } else if (!listing.authorizationFailure) {
                // The server could not be reached, which says nothing about the tokens: keep Dify's flag rather
                // than plan a re-authorization (a failed mcp/auth would clear the credentials).
                authorized = true;
                console.warn(`warning: listing the tools of MCP server "${state.serverIdentifier}" failed: ${listing.message}`);
            }
        }
        const icon = typeof entity.icon === "object" && entity.icon !== null ? entity.icon : undefined;
        const timeout = entity.configuration?.timeout ?? entity.timeout;
        const sseReadTimeout = entity.configuration?.sse_read_timeout ?? entity.sse_read_timeout;
        // Masked URL: keep the desired one while Dify's mask of it agrees (a change within the path cannot be seen).
        const serverUrl =
            entity.server_url === undefined || entity.server_url === difyMaskedServerUrl(state.serverUrl) ? state.serverUrl : entity.server_url;
        return {
            id,
            props: {
                ...state,
                name: entity.name ?? state.name,
                serverIdentifier: entity.server_identifier ?? state.serverIdentifier,
                serverUrl,
                icon: icon?.content ?? state.icon,
                iconBackground: icon?.background ?? state.iconBackground,
                timeoutSeconds: timeout === undefined ? state.timeoutSeconds : Number(timeout),
                sseReadTimeoutSeconds: sseReadTimeout === undefined ? state.sseReadTimeoutSeconds : Number(sseReadTimeout),
                oauthClientId,
                oauthClientSecret,
                authorized,
                toolNames,
                authorizationUrl: authorized ? "" : state.authorizationUrl,
                difyVersion: session.version,
            },
        };
    },

    async update(id: string, olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs) {
        const remoteChanged = REMOTE_FIELDS.some((key) => differs(olds, news, key));
        const urlChanged = olds.serverUrl !== news.serverUrl;
        const base: DifyMcpToolProviderOutputs = {
            ...olds,
            ...news,
            oauthRedirectUri: difyMcpOAuthRedirectUri(news.difyUrl),
        };
        if (!remoteChanged && !needsAuthorizationUrl(olds) && (olds.authorized || !news.waitForAuthorization)) {
            // Only the admin credentials or local knobs changed: nothing to tell Dify.
            return { outs: base };
        }
        const session = await connectWith(news, [news.oauthClientSecret ?? "", olds.oauthClientSecret ?? ""]);
        base.difyVersion = session.version;
        base.oauthClientMode = clientModeFor(session.version, news);
        // Dify 1.10+ rewrites its credentials to just the client (dropping the OAuth tokens) whenever an update
        // carries one, so the client goes only where it must: a new URL (Dify resets the credentials, client
        // included, unless the same PUT carries `authentication`), a new client, or a client Dify lost.
        const preset = supportsPresetClient(session.version) && !!news.oauthClientId;
        const clientChanged =
            preset &&
            (olds.oauthClientId !== news.oauthClientId ||
                (olds.oauthClientSecret ?? "") !== (news.oauthClientSecret ?? "") ||
                olds.oauthClientMode !== "preset-client");
        let sendClient = preset && (urlChanged || clientChanged);
        if (preset && !sendClient) {
            // State may predate the loss (no refresh ran): ask Dify, one GET.
            const entity = await session.get<McpProviderEntity>(`${MCP_ROUTE}/tools/${id}`);
            sendClient = presetClientMissing(entity, news.oauthClientId as string, news.oauthClientSecret ?? "");
        }
        if (remoteChanged || sendClient) {
            warnAboutRegistration(session.version, news);
            const body = providerBody(session.version, news, urlChanged ? news.serverUrl : UNCHANGED_URL, sendClient);
            await session.put(MCP_ROUTE, { ...body, provider_id: id });
        }
        if (urlChanged || sendClient || !olds.authorized) {
            // A new URL or client drops the old tokens; an unauthorized provider gets a fresh (5-minute) URL
            // (when the tokens it had died, Dify refuses first and drops the client: startAuthorization recovers).
            const state = await authorize(session, id, news);
            return { outs: { ...base, ...state } };
        }
        return { outs: base };
    },

    async delete(id: string, props: DifyMcpToolProviderOutputs) {
        const session = await connectWith(props, [props.oauthClientSecret ?? ""]);
        try {
            await session.delete(MCP_ROUTE, { provider_id: id });
        } catch (err) {
            if (!isDifyNotFound(err)) {
                throw err;
            }
        }
    },
});

export interface DifyMcpToolProviderArgs {
    difyUrl: pulumi.Input<string>;
    adminEmail: pulumi.Input<string>;
    /** Kept secret. */
    adminPassword: pulumi.Input<string>;
    name: pulumi.Input<string>;
    serverUrl: pulumi.Input<string>;
    serverIdentifier: pulumi.Input<string>;
    icon?: pulumi.Input<string>;
    iconBackground?: pulumi.Input<string>;
    timeoutSeconds?: pulumi.Input<number>;
    sseReadTimeoutSeconds?: pulumi.Input<number>;
    /** The OAuth app's client id (used by Dify 1.10+). */
    oauthClientId?: pulumi.Input<string>;
    /** Kept secret. */
    oauthClientSecret?: pulumi.Input<string>;
    waitForAuthorization?: pulumi.Input<boolean>;
    authorizationTimeoutSeconds?: pulumi.Input<number>;
    authorizationPollSeconds?: pulumi.Input<number>;
    authorizationUrlFile?: pulumi.Input<string>;
}

/** An MCP server registered in Dify, with the OAuth authorization URL a person opens once. */
export class DifyMcpToolProvider extends pulumi.dynamic.Resource {
    declare public readonly providerId: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly serverIdentifier: pulumi.Output<string>;
    declare public readonly serverUrl: pulumi.Output<string>;
    declare public readonly authorizationUrl: pulumi.Output<string>;
    declare public readonly authorized: pulumi.Output<boolean>;
    declare public readonly toolNames: pulumi.Output<string[]>;
    declare public readonly oauthClientMode: pulumi.Output<"preset-client" | "dynamic-registration">;
    declare public readonly oauthRedirectUri: pulumi.Output<string>;
    declare public readonly difyVersion: pulumi.Output<string>;

    constructor(name: string, args: DifyMcpToolProviderArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyMcpToolProviderProvider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                oauthClientSecret: args.oauthClientSecret === undefined ? undefined : pulumi.secret(args.oauthClientSecret),
                providerId: undefined,
                authorizationUrl: undefined,
                authorized: undefined,
                toolNames: undefined,
                oauthClientMode: undefined,
                oauthRedirectUri: undefined,
                difyVersion: undefined,
            },
            { ...opts, additionalSecretOutputs: ["adminPassword", "oauthClientSecret", ...(opts?.additionalSecretOutputs ?? [])] },
            "dify",
            "McpToolProvider",
        );
    }
}

/** The name used in the issue; the same resource. */
export { DifyMcpToolProvider as DifyMcpServer };
