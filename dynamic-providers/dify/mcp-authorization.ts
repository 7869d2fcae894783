// The OAuth hand-off of DifyMcpToolProvider: asking Dify for the consent URL a person opens once (repairing a
// preset client Dify lost on the way), optionally waiting until the workspace is authorized, and telling
// "authorized" from Dify's flag by listing the tools with the stored tokens.
// Facts: ../shared/reference/dify-console-api.md section 7; Dify's controllers/console/workspace/tool_providers.py,
// services/tools/mcp_tools_manage_service.py, core/mcp/auth_client.py.
import * as fs from "fs";
import type { DifyConsoleApi } from "./console-api";
import { UNCHANGED_MCP_SERVER_URL } from "./console-api";
import { isDifyApiError, joinSentences } from "./errors";
import { MCP_TOOL_PROVIDER_DEFAULTS, providerBody, supportsPresetClient, toolNamesOf } from "./mcp-registration";
import type { DifyMcpToolProviderInputs } from "./mcp-tool-provider";
import { sleepMs } from "./transport";

/** Dify's OAuth state lives 5 minutes; while waiting, a fresh authorization URL is issued before that. */
const AUTHORIZATION_URL_LIFETIME_MS = 4.5 * 60 * 1000;

/** POST .../mcp/auth once: the consent URL, or "" when Dify already holds a working authorization. */
async function requestAuthorization(api: DifyConsoleApi, providerId: string): Promise<string> {
    const answer = await api.authorizeMcpProvider(providerId);
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
async function startAuthorization(api: DifyConsoleApi, providerId: string, inputs: DifyMcpToolProviderInputs): Promise<string> {
    const preset = supportsPresetClient(api.version) && !!inputs.oauthClientId;
    const sendClient = () => api.updateMcpProvider(providerId, providerBody(api.version, inputs, UNCHANGED_MCP_SERVER_URL, true));
    let url: string;
    try {
        url = await requestAuthorization(api, providerId);
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
        url = await requestAuthorization(api, providerId);
    }
    const asked = consentClientId(url);
    if (preset && asked !== "" && asked !== inputs.oauthClientId) {
        console.warn(
            `warning: Dify's consent URL for MCP server "${inputs.serverIdentifier}" names client_id ${asked}, not the configured oauthClientId ` +
                "(saving the provider in Dify's UI stores the masked id); sending the client again.",
        );
        await sendClient();
        url = await requestAuthorization(api, providerId);
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

async function fetchTools(api: DifyConsoleApi, providerId: string): Promise<string[]> {
    return toolNamesOf(await api.refreshMcpTools(providerId));
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
async function listToolsWithStoredTokens(api: DifyConsoleApi, providerId: string): Promise<ToolListing> {
    try {
        return { ok: true, toolNames: await fetchTools(api, providerId) };
    } catch (err) {
        if (isMcpProviderGone(err)) {
            throw err;
        }
        return { ok: false, authorizationFailure: isAuthorizationFailure(err), message: err instanceof Error ? err.message : String(err) };
    }
}

export interface AuthorizationState {
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
export async function authorize(api: DifyConsoleApi, providerId: string, inputs: DifyMcpToolProviderInputs): Promise<AuthorizationState> {
    let url = await startAuthorization(api, providerId, inputs);
    if (url === "") {
        return { authorizationUrl: "", authorized: true, toolNames: await fetchTools(api, providerId) };
    }
    if (!inputs.waitForAuthorization) {
        return { authorizationUrl: url, authorized: false, toolNames: [] };
    }
    announce(inputs, url);
    const timeoutMs = (inputs.authorizationTimeoutSeconds ?? MCP_TOOL_PROVIDER_DEFAULTS.authorizationTimeoutSeconds) * 1000;
    const pollMs = (inputs.authorizationPollSeconds ?? MCP_TOOL_PROVIDER_DEFAULTS.authorizationPollSeconds) * 1000;
    const started = Date.now();
    let issued = Date.now();
    let lastFailure = "";
    while (Date.now() - started < timeoutMs) {
        await sleepMs(pollMs);
        const entity = await api.getMcpProvider(providerId);
        if (entity.is_team_authorization) {
            const listing = await listToolsWithStoredTokens(api, providerId);
            if (listing.ok) {
                return { authorizationUrl: "", authorized: true, toolNames: listing.toolNames };
            }
            lastFailure = listing.message;
        }
        if (Date.now() - issued > AUTHORIZATION_URL_LIFETIME_MS) {
            url = await startAuthorization(api, providerId, inputs);
            issued = Date.now();
            if (url === "") {
                return { authorizationUrl: "", authorized: true, toolNames: await fetchTools(api, providerId) };
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

/**
 * Whether a registration Dify calls authorized really is, on refresh: the tools must list with the stored
 * tokens (Dify keeps `is_team_authorization` true after a new client wiped them). Without a client there are
 * no tokens either (the credentials were reset). A server that cannot be reached says nothing about the
 * tokens: Dify's flag is kept rather than a re-authorization planned (a failed mcp/auth would clear them).
 */
export async function authorizationAsRead(
    api: DifyConsoleApi,
    providerId: string,
    teamAuthorized: boolean,
    clientMissing: boolean,
    inputs: DifyMcpToolProviderInputs,
): Promise<{ authorized: boolean; toolNames?: string[] }> {
    if (!teamAuthorized || clientMissing) {
        return { authorized: false };
    }
    const listing = await listToolsWithStoredTokens(api, providerId);
    if (listing.ok) {
        return { authorized: true, toolNames: listing.toolNames };
    }
    if (!listing.authorizationFailure) {
        console.warn(`warning: listing the tools of MCP server "${inputs.serverIdentifier}" failed: ${listing.message}`);
        return { authorized: true };
    }
    return { authorized: false };
}
