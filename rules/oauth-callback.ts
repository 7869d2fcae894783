// Where Dify receives the OAuth authorization code: the RAM app's redirect URI, the URL the stack exports, and
// what the Dify MCP registration's consent flow returns to must be the same string.

/** Dify's OAuth callback, appended to CONSOLE_API_URL (api/core/entities/mcp_provider.py): `<url>/console/api/mcp/oauth/callback`. */
export function difyMcpOAuthCallbackUrl(consoleApiUrl: string): string {
    return `${consoleApiUrl.replace(/\/+$/, "")}/console/api/mcp/oauth/callback`;
}
