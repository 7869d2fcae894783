// Names on both sides of the MCP link. No imports: the config parser, the providers and the policy pack share them.

/**
 * The OpenAPI MCP server's name: 3-64 characters, lowercase letters, digits, "_" and "-", not starting with a
 * digit. The official SDK models state no rule; this is the one the stack applies (and the local fake API
 * enforces). The name is a segment of the server's URL and unique in the account.
 */
export const MCP_SERVER_NAME_PATTERN = /^[a-z_-][a-z0-9_-]{2,63}$/;
export const MCP_SERVER_NAME_RULE = '3-64 lowercase letters, digits, "_" and "-", not starting with a digit';

/** The server identifier of a Dify MCP registration: the rule Dify's web UI enforces (isValidServerID); the backend checks nothing. */
export const DIFY_MCP_SERVER_IDENTIFIER_PATTERN = /^[a-z0-9_-]{1,24}$/;
export const DIFY_MCP_SERVER_IDENTIFIER_RULE = '1-24 lowercase letters, digits, "_" and "-"';
