// What a RAM OAuth 2.1 application may be, for the MCP server's Custom OAuth. No imports: the config parser, the
// provider and the policy pack share these.

/**
 * The OpenAPI MCP server accepts only web and native applications as custom OAuth clients (ServerApp is a
 * client-credentials app without a user sign-in, so it is rejected).
 */
export type RamOAuthAppType = "WebApp" | "NativeApp";
export const RAM_OAUTH_APP_TYPES: readonly RamOAuthAppType[] = ["WebApp", "NativeApp"];

/**
 * Default type: NativeApp, a public client that signs in with PKCE and no client secret. That is what Dify
 * does (`token_endpoint_auth_method: "none"`; Dify ≥ 1.10 sends a client_secret only when one is configured)
 * and what aliyun-cli creates for its own MCP proxy. A WebApp always requires a secret (SecretRequired is
 * forced to true), and the RAM docs say OAuth 2.1 apps do not support fixed-secret validation.
 */
export const DEFAULT_RAM_OAUTH_APP_TYPE: RamOAuthAppType = "NativeApp";

/**
 * Never multi-tenant. A multi-tenant app (IsMultiTenant, the API's default for NativeApp) can be installed by
 * other Alibaba Cloud accounts, who could then sign their users in through our client id. Created with false;
 * an app found multi-tenant (one created before this rule) is drift that an in-place update fixes.
 */
export const RAM_OAUTH_APP_MULTI_TENANT = false;

/** SecretRequired: the API forces it on for a WebApp; a NativeApp requires a secret exactly when it has one. */
export function ramOAuthAppSecretRequired(appType: RamOAuthAppType, createSecret: boolean): boolean {
    return appType === "WebApp" || createSecret;
}

/** The MCP server's custom OAuth requires OAuth 2.1; UpdateApplication cannot change it. */
export const RAM_OAUTH_PROTOCOL_VERSION = "2.1";
/** The scope the MCP server requires ("The OAuth scope must include /acs/mcp-server"). */
export const MCP_SERVER_SCOPE = "/acs/mcp-server";

// No key named `default` here: Pulumi 3.270's closure serializer takes a plain object whose `default` is a
// primitive for an `import *` wrapper and crashes (`Cannot use 'in' operator to search for 'min' in 3600`).
/** AccessTokenValidity in seconds, and the value the stack uses when none is set. */
export const ACCESS_TOKEN_VALIDITY_RANGE = { min: 900, max: 10800, standard: 3600 } as const;
/** RefreshTokenValidity in seconds. */
export const REFRESH_TOKEN_VALIDITY_RANGE = { min: 7200, max: 31536000 } as const;
/** API defaults of RefreshTokenValidity per application type. */
export const DEFAULT_REFRESH_TOKEN_VALIDITY: Readonly<Record<RamOAuthAppType, number>> = {
    WebApp: 2592000,
    NativeApp: 7776000,
};

/** AppName: 1-64 letters, digits, ".", "_" and "-". */
export const RAM_APP_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const RAM_APP_NAME_RULE = '1-64 letters, digits, ".", "_" and "-"';
