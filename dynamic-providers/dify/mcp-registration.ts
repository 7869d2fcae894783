// What DifyMcpToolProvider sends to Dify and reads back, by Dify version: the provider body, the preset OAuth
// client (Dify 1.10+) and how to tell that Dify lost it, and the registration as Dify shows it (server URL
// masked, timeouts moved into `configuration` from 1.10).
// Facts: ../shared/reference/dify-console-api.md section 2; Dify's core/entities/mcp_provider.py.
import { DIFY_VERSION_THRESHOLDS, difyVersionAtLeast } from "../../rules/dify-version";
import type { DifyConsoleApi, McpProviderBody, McpProviderEntity } from "./console-api";
import { difyMaskedServerUrl, maskDifyCredential } from "./masks";
import type { DifyMcpToolProviderInputs, DifyMcpToolProviderOutputs } from "./mcp-tool-provider";

/** The defaults `checkDifyMcpToolProvider` fills in. */
export const MCP_TOOL_PROVIDER_DEFAULTS = {
    icon: "☁️",
    iconBackground: "#E0F2FE",
    timeoutSeconds: 30,
    sseReadTimeoutSeconds: 300,
    waitForAuthorization: false,
    authorizationTimeoutSeconds: 600,
    authorizationPollSeconds: 5,
};

export function supportsPresetClient(version: string): boolean {
    return difyVersionAtLeast(version, DIFY_VERSION_THRESHOLDS.mcpPresetOAuthClient);
}

export function clientModeFor(version: string, inputs: DifyMcpToolProviderInputs): DifyMcpToolProviderOutputs["oauthClientMode"] {
    return supportsPresetClient(version) && inputs.oauthClientId ? "preset-client" : "dynamic-registration";
}

/**
 * Whether Dify (1.10+) lacks the preset client `inputs` asks for: it shows `authentication: null` and
 * `is_dynamic_registration: true` once its credentials were reset (a URL change, a failed mcp/auth), and a
 * different masked id when the client was changed in its UI.
 */
export function presetClientMissing(entity: McpProviderEntity, clientId: string, clientSecret: string): boolean {
    const shown = entity.authentication;
    if (!shown?.client_id || entity.is_dynamic_registration === true) {
        return true;
    }
    return shown.client_id !== maskDifyCredential(clientId) || (shown.client_secret ?? "") !== maskDifyCredential(clientSecret);
}

/** The create/update body for the instance's version; unknown keys are ignored by every version. */
export function providerBody(
    version: string,
    inputs: DifyMcpToolProviderInputs,
    serverUrl: string,
    sendAuthentication: boolean,
): McpProviderBody {
    const defaults = MCP_TOOL_PROVIDER_DEFAULTS;
    const body: McpProviderBody = {
        server_url: serverUrl,
        name: inputs.name,
        icon: inputs.icon ?? defaults.icon,
        icon_type: "emoji",
        icon_background: inputs.iconBackground ?? defaults.iconBackground,
        server_identifier: inputs.serverIdentifier,
        timeout: inputs.timeoutSeconds ?? defaults.timeoutSeconds,
        sse_read_timeout: inputs.sseReadTimeoutSeconds ?? defaults.sseReadTimeoutSeconds,
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

export function warnAboutRegistration(version: string, inputs: DifyMcpToolProviderInputs): void {
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

/** Finds a provider by server identifier (unique per workspace), with its UUID. */
export async function findProviderByIdentifier(api: DifyConsoleApi, serverIdentifier: string): Promise<McpProviderEntity | undefined> {
    const providers = await api.listMcpProviders();
    return providers.find((p) => p.server_identifier === serverIdentifier && typeof p.id === "string");
}

export function toolNamesOf(entity: McpProviderEntity): string[] {
    return (entity.tools ?? []).map((tool) => String(tool.name ?? "")).filter((name) => name !== "");
}

/** The preset client as read back (1.10+), and whether Dify lacks the configured one. */
export interface PresetClientAsRead {
    oauthClientId?: string;
    oauthClientSecret?: string;
    clientMissing: boolean;
}

/**
 * A dropped or replaced preset client (1.10+) is drift: reads back "" (or the masked id Dify shows) so the diff
 * plans an update that sends the client again.
 */
export function presetClientAsRead(version: string, entity: McpProviderEntity, state: DifyMcpToolProviderOutputs): PresetClientAsRead {
    const read: PresetClientAsRead = { oauthClientId: state.oauthClientId, oauthClientSecret: state.oauthClientSecret, clientMissing: false };
    if (!supportsPresetClient(version) || !state.oauthClientId) {
        return read;
    }
    read.clientMissing = presetClientMissing(entity, state.oauthClientId, state.oauthClientSecret ?? "");
    const shown = entity.authentication;
    if (read.clientMissing && (!shown?.client_id || entity.is_dynamic_registration === true)) {
        read.oauthClientId = "";
    } else if (read.clientMissing && shown?.client_id) {
        // Another preset client was set in Dify's UI: show what Dify shows (masked).
        if (shown.client_id !== maskDifyCredential(state.oauthClientId)) {
            read.oauthClientId = shown.client_id;
        }
        if ((shown.client_secret ?? "") !== maskDifyCredential(state.oauthClientSecret ?? "")) {
            read.oauthClientSecret = shown.client_secret ?? "";
        }
    }
    return read;
}

/** The registered fields as Dify shows them, with the state's values where Dify shows none. */
export function registrationAsRead(
    entity: McpProviderEntity,
    state: DifyMcpToolProviderOutputs,
): Pick<DifyMcpToolProviderInputs, "name" | "serverIdentifier" | "serverUrl" | "icon" | "iconBackground" | "timeoutSeconds" | "sseReadTimeoutSeconds"> {
    const icon = typeof entity.icon === "object" && entity.icon !== null ? entity.icon : undefined;
    const timeout = entity.configuration?.timeout ?? entity.timeout;
    const sseReadTimeout = entity.configuration?.sse_read_timeout ?? entity.sse_read_timeout;
    // Masked URL: keep the desired one while Dify's mask of it agrees (a change within the path cannot be seen).
    const serverUrl =
        entity.server_url === undefined || entity.server_url === difyMaskedServerUrl(state.serverUrl) ? state.serverUrl : entity.server_url;
    return {
        name: entity.name ?? state.name,
        serverIdentifier: entity.server_identifier ?? state.serverIdentifier,
        serverUrl,
        icon: icon?.content ?? state.icon,
        iconBackground: icon?.background ?? state.iconBackground,
        timeoutSeconds: timeout === undefined ? state.timeoutSeconds : Number(timeout),
        sseReadTimeoutSeconds: sseReadTimeout === undefined ? state.sseReadTimeoutSeconds : Number(sseReadTimeout),
    };
}
