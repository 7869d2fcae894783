// How Dify shows what it stores encrypted, reproduced exactly so a desired value can be compared with what Dify
// shows: the MCP server URL, MCP credentials and headers, and model-provider API keys.

/** Python's urllib.parse.uses_netloc schemes that matter here (urlunsplit adds "//" for them). */
const PYTHON_NETLOC_SCHEMES = ["http", "https", "ws", "wss", "ftp", "file"];

/**
 * Dify's mask of an MCP server URL on read, exactly (core/entities/mcp_provider.py masked_server_url):
 * `urlparse(url)`, the path replaced by "/******" when it is neither empty nor "/", then `geturl()`. So the
 * scheme is lower-cased, netloc stays as written (an explicit default port too), and `;params`, `?query` and
 * `#fragment` are kept; an empty query or fragment disappears (Python 3.12 urlunsplit).
 */
export function difyMaskedServerUrl(url: string): string {
    let rest = url;
    let scheme = "";
    const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
    if (schemeMatch) {
        scheme = schemeMatch[1].toLowerCase();
        rest = rest.slice(schemeMatch[0].length);
    }
    let netloc = "";
    if (rest.startsWith("//")) {
        const end = rest.slice(2).search(/[/?#]/);
        netloc = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
        rest = end < 0 ? "" : rest.slice(2 + end);
    }
    let fragment = "";
    const hash = rest.indexOf("#");
    if (hash >= 0) {
        fragment = rest.slice(hash + 1);
        rest = rest.slice(0, hash);
    }
    let query = "";
    const question = rest.indexOf("?");
    if (question >= 0) {
        query = rest.slice(question + 1);
        rest = rest.slice(0, question);
    }
    // urlparse's _splitparams: `;params` of the last path segment (http and https are in uses_params).
    let path = rest;
    let params = "";
    const semicolon = path.includes("/") ? path.indexOf(";", path.lastIndexOf("/")) : path.indexOf(";");
    if (semicolon >= 0) {
        params = path.slice(semicolon + 1);
        path = path.slice(0, semicolon);
    }
    let out = path && path !== "/" ? "/******" : path;
    if (params) {
        out = `${out};${params}`;
    }
    if (netloc) {
        out = `//${netloc}${out && !out.startsWith("/") ? "/" : ""}${out}`;
    } else if (out.startsWith("//") || (scheme && PYTHON_NETLOC_SCHEMES.includes(scheme) && (!out || out.startsWith("/")))) {
        out = `//${out}`;
    }
    if (scheme) {
        out = `${scheme}:${out}`;
    }
    if (query) {
        out += `?${query}`;
    }
    if (fragment) {
        out += `#${fragment}`;
    }
    return out;
}

/**
 * How Dify shows a stored MCP credential or header (MCPProviderEntity._mask_value): first and last two
 * characters around asterisks when longer than 6 characters, else all asterisks.
 */
export function maskDifyCredential(value: string): string {
    return value.length > 6 ? value.slice(0, 2) + "*".repeat(value.length - 4) + value.slice(-2) : "*".repeat(value.length);
}

/** Dify's encrypter.obfuscated_token, to compare a configured key with what Dify shows. */
export function obfuscateDashscopeKey(token: string): string {
    if (!token) {
        return token;
    }
    return token.length <= 8 ? "*".repeat(20) : token.slice(0, 6) + "*".repeat(12) + token.slice(-2);
}
