// How Dify shows an MCP tool provider: which fields each route answers, per version, with the server URL, headers and
// OAuth client masked.
// The mask is pinned to Dify's own masked_server_url by tests/dynamic-providers/dify/real-dify.test.ts.
import { difyMaskedServerUrl } from "../../../dynamic-providers/dify/masks";
import { ConsoleState } from "./state";
import { McpProviderRecord } from "./types";

/** MCPProviderEntity._mask_value: longer than MIN_UNMASK_LENGTH (6) keeps 2 characters at each end. */
export function maskSecret(value: string): string {
    if (!value) {
        return "";
    }
    return value.length > 6 ? value.slice(0, 2) + "*".repeat(value.length - 4) + value.slice(-2) : "*".repeat(value.length);
}

const maskHeaders = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, maskSecret(v)]));

/**
 * An MCP provider as Dify answers it. "detail" (create, mcp/tools/<id>, mcp/update/<id>) is
 * jsonable_encoder(ToolProviderApiEntity): every field, `authentication: null` without a client. "list"
 * (GET /workspaces/current/tools/mcp) and "providers" (GET /workspaces/current/tool-providers) go through
 * ToolProviderApiEntity.to_dict, which drops falsy optional fields; "list" skips the sensitive parts
 * (include_sensitive=False: is_dynamic_registration true, no headers) and uses the server identifier as id.
 */
export function mcpEntity(state: ConsoleState, record: McpProviderRecord, view: "detail" | "list" | "providers"): Record<string, unknown> {
    const author = state.accounts[0]?.name ?? "Anonymous";
    const entity: Record<string, unknown> = {
        id: view === "list" ? record.serverIdentifier : record.id,
        author,
        name: record.name,
        description: { en_US: "", zh_Hans: "" },
        icon: record.iconType === "emoji" ? { content: record.icon, background: record.iconBackground } : record.icon,
        label: { en_US: record.name, zh_Hans: record.name },
        type: "mcp",
        team_credentials: {},
        is_team_authorization: record.authed,
        allow_delete: true,
        tools: record.tools.map((name) => ({
            author,
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
    if (!state.atLeast("1.10.0")) {
        entity.timeout = record.timeout;
        entity.sse_read_timeout = record.sseReadTimeout;
        if (state.atLeast("1.9.0")) {
            entity.masked_headers = maskHeaders(record.headers);
        }
        return entity;
    }
    const maskedHeaders = maskHeaders(record.headers);
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
    return entity;
}
