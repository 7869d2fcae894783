// The one client for Alibaba Cloud OpenAPI calls made by this project's dynamic providers.
//
// Signing (ACS3-HMAC-SHA256) is done by Alibaba's official `@alicloud/openapi-core`; credentials come from
// `@alicloud/credentials`' default chain (environment, OIDC, CLI profile, credentials file, ECS RAM role), the
// same sources the `alicloud` Pulumi provider uses, so no access key is ever an input, an output or in state.
// Retry, backoff and error mapping live here and nowhere else; `ims-api.ts` and `openapi-mcp-api.ts` are thin
// typed wrappers over `AlibabaApiClient.call`.
//
// Serialization note: dynamic providers are serialized with `pulumi.runtime.serializeFunction`. Nothing here
// keeps a client or a credential at module level; `createAlibabaApiClient` builds both when a provider method
// runs, so the serialized closure holds only code.
import OpenApi, { $OpenApiUtil, OpenApiUtil } from "@alicloud/openapi-core";
import Credential, { Config as CredentialConfig } from "@alicloud/credentials";
import * as $dara from "@darabonba/typescript";

/** How the client reaches an API: `host` for the signed `host` header, `protocol` for the URL scheme. */
export interface ApiEndpoint {
    readonly host: string;
    readonly protocol: "HTTP" | "HTTPS";
}

/**
 * Accepts a bare host (`ims.aliyuncs.com`, HTTPS) or a URL with a scheme (`http://127.0.0.1:1234`, used by
 * tests against a local server). Paths, queries and credentials in the URL are rejected.
 */
function parseApiEndpoint(endpoint: string): ApiEndpoint {
    const trimmed = endpoint.trim();
    if (trimmed === "") {
        throw new Error("endpoint must not be empty");
    }
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed);
    let url: URL;
    try {
        url = new URL(hasScheme ? trimmed : `https://${trimmed}`);
    } catch {
        throw new Error(`endpoint "${endpoint}" is neither a host name nor an http(s) URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new Error(`endpoint "${endpoint}" must use http or https`);
    }
    if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
        throw new Error(`endpoint "${endpoint}" must be a host (optionally with scheme and port), without path or query`);
    }
    return { host: url.host, protocol: url.protocol === "http:" ? "HTTP" : "HTTPS" };
}

/** Message for `check()`: undefined when the endpoint is acceptable. */
export function endpointProblem(endpoint: string): string | undefined {
    try {
        parseApiEndpoint(endpoint);
        return undefined;
    } catch (err) {
        return (err as Error).message;
    }
}

/** Retry policy for throttling, 5xx and network errors. 4xx (other than throttling) is never retried. */
export interface RetryPolicy {
    /** Total attempts including the first one. */
    readonly maxAttempts: number;
    /** Delay before the first retry; doubled each further retry (with jitter). */
    readonly baseDelayMs: number;
    /** Upper bound of any single delay. */
    readonly maxDelayMs: number;
}

/** Environment variables that override the retry policy (tests set a tiny base delay). */
const RETRY_ENV = {
    maxAttempts: "ALIBABA_API_RETRY_MAX_ATTEMPTS",
    baseDelayMs: "ALIBABA_API_RETRY_BASE_DELAY_MS",
    maxDelayMs: "ALIBABA_API_RETRY_MAX_DELAY_MS",
} as const;

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 20_000 };

function envNumber(name: string): number | undefined {
    const raw = process.env[name];
    if (raw === undefined || raw.trim() === "") {
        return undefined;
    }
    const value = Number(raw);
    return Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The effective policy: explicit options win over the environment, which wins over the defaults. */
function resolveRetryPolicy(overrides?: Partial<RetryPolicy>): RetryPolicy {
    const attempts = overrides?.maxAttempts ?? envNumber(RETRY_ENV.maxAttempts) ?? DEFAULT_RETRY.maxAttempts;
    return {
        maxAttempts: Math.max(1, Math.floor(attempts)),
        baseDelayMs: overrides?.baseDelayMs ?? envNumber(RETRY_ENV.baseDelayMs) ?? DEFAULT_RETRY.baseDelayMs,
        maxDelayMs: overrides?.maxDelayMs ?? envNumber(RETRY_ENV.maxDelayMs) ?? DEFAULT_RETRY.maxDelayMs,
    };
}

/**
 * An Alibaba Cloud API call that failed: the API's error code, message and request id (quote the request id
 * to Alibaba support). Never carries request parameters, headers or credentials.
 *
 * An interface plus a factory rather than `class … extends Error`: Pulumi's closure serializer rewrites
 * classes into plain functions that call `Error.call(this, …)`, so revived instances would lose their
 * message and no longer be `instanceof Error`.
 */
export interface AlibabaApiError extends Error {
    readonly name: "AlibabaApiError";
    /** API error code, e.g. `EntityNotExist.Application`; for transport failures the Node error code. */
    readonly code: string;
    /** HTTP status, absent for transport failures. */
    readonly statusCode: number | undefined;
    readonly requestId: string | undefined;
    /** `Product.Action`, e.g. `Ims.CreateApplication`. */
    readonly operation: string;
    /** Attempts made, including retries. */
    readonly attempts: number;
    /**
     * Codes of earlier attempts that failed and were retried. A write retried after a 5xx or a network error
     * may have been applied by the first attempt; callers use this to recover (e.g. adopt the created object).
     */
    readonly retriedAfter: readonly string[];
}

interface AlibabaApiErrorDetails {
    code: string;
    /** The API's own message (already free of secrets). */
    apiMessage: string;
    statusCode?: number;
    requestId?: string;
    operation: string;
    attempts: number;
    retriedAfter: readonly string[];
}

function alibabaApiError(details: AlibabaApiErrorDetails): AlibabaApiError {
    const status = details.statusCode !== undefined ? ` (HTTP ${details.statusCode})` : "";
    const request = details.requestId ? ` [RequestId: ${details.requestId}]` : "";
    const tries = details.attempts > 1 ? ` after ${details.attempts} attempts` : "";
    const error = new Error(`${details.operation} failed${tries}: ${details.code}${status}: ${details.apiMessage}${request}`);
    return Object.assign(error, {
        name: "AlibabaApiError" as const,
        code: details.code,
        statusCode: details.statusCode,
        requestId: details.requestId,
        operation: details.operation,
        attempts: details.attempts,
        retriedAfter: details.retriedAfter,
    });
}

export function isAlibabaApiError(err: unknown): err is AlibabaApiError {
    return err instanceof Error && err.name === "AlibabaApiError" && typeof (err as { code?: unknown }).code === "string";
}

/**
 * Whether retries after these codes may have repeated a write: any retried failure but throttling (refused
 * before the API acted) and a refused connection (never reached it) may have been carried out, its answer lost.
 */
export function retriesMayHaveRepeated(retriedAfter: readonly string[]): boolean {
    return retriedAfter.some((code) => !code.includes("Throttling") && code !== "ECONNREFUSED");
}

/**
 * Whether a failed write may nevertheless have been carried out, by its last attempt (a 5xx, a timeout or a
 * dropped connection) or by an earlier one that was retried. Anything but an `AlibabaApiError` counts as maybe.
 */
export function failedWriteMayHaveApplied(err: unknown): boolean {
    if (!isAlibabaApiError(err)) {
        return true;
    }
    const lastMayHaveApplied =
        err.statusCode !== undefined
            ? err.statusCode >= 500
            : err.code !== "ECONNREFUSED" && (RETRYABLE_NETWORK_CODES.includes(err.code) || err.code === "RequestTimeout" || err.code === "InvalidResponse");
    return lastMayHaveApplied || retriesMayHaveRepeated(err.retriedAfter);
}

/** True when `err` is an `AlibabaApiError` with exactly this code or a code starting with `prefix.`. */
export function isApiErrorCode(err: unknown, codeOrPrefix: string): err is AlibabaApiError {
    return isAlibabaApiError(err) && (err.code === codeOrPrefix || err.code.startsWith(`${codeOrPrefix}.`));
}

export type ApiStyle = "RPC" | "ROA";
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** Parameter values as the SDK flattens them: arrays become `Name.1`, `Name.2`, … in RPC queries. */
export type QueryValue = string | number | boolean | undefined | readonly QueryValue[];

export interface ApiCall {
    /** For messages only, e.g. `Ims`. */
    readonly product: string;
    readonly action: string;
    readonly version: string;
    readonly style: ApiStyle;
    readonly method: HttpMethod;
    readonly pathname: string;
    /** Query parameters; undefined values are left out. */
    readonly query?: Readonly<Record<string, QueryValue>>;
    /** JSON body (ROA). */
    readonly body?: Readonly<Record<string, unknown>>;
}

export interface ApiResponse<T> {
    readonly body: T;
    readonly requestId: string | undefined;
    /** Codes of earlier attempts that failed and were retried (see `AlibabaApiError.retriedAfter`). */
    readonly retriedAfter: readonly string[];
}

export interface AlibabaApiClient {
    readonly endpoint: ApiEndpoint;
    call<T>(request: ApiCall): Promise<ApiResponse<T>>;
}

export interface AlibabaApiClientOptions {
    /** Host or URL, see `parseApiEndpoint`. */
    readonly endpoint: string;
    readonly retry?: Partial<RetryPolicy>;
    /** Per-request read timeout. */
    readonly readTimeoutMs?: number;
    readonly connectTimeoutMs?: number;
}

// Transport failures worth another attempt. A connection that was refused never reached the API; the others
// may have, which is why writes that must not repeat carry an idempotency token or are checked by the caller.
// (A plain array, not a Set: Pulumi's closure serializer does not revive module-level Sets or Maps.)
const RETRYABLE_NETWORK_CODES: readonly string[] = [
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "EAI_AGAIN",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ECONNABORTED",
    "UND_ERR_SOCKET",
];

interface ClassifiedFailure {
    readonly error: AlibabaApiError;
    readonly retryable: boolean;
    /** Server-suggested wait (ThrottlingError.retryAfter), in milliseconds. */
    readonly retryAfterMs: number | undefined;
}

function stringField(data: unknown, ...names: string[]): string | undefined {
    if (data === null || typeof data !== "object") {
        return undefined;
    }
    const record = data as Record<string, unknown>;
    for (const name of names) {
        const value = record[name];
        if (typeof value === "string" && value !== "") {
            return value;
        }
    }
    return undefined;
}

/** Removes credential material from text that may be shown to users. */
function redactSecrets(text: string): string {
    let result = text;
    for (const name of ["ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN"]) {
        const secret = process.env[name];
        if (secret && secret.length >= 8) {
            result = result.split(secret).join("[redacted]");
        }
    }
    return result;
}

function classifyFailure(err: unknown, operation: string, attempts: number, retriedAfter: readonly string[]): ClassifiedFailure {
    const e = (err ?? {}) as {
        name?: unknown;
        code?: unknown;
        statusCode?: unknown;
        requestId?: unknown;
        data?: unknown;
        message?: unknown;
        retryAfter?: unknown;
    };
    const statusCode = typeof e.statusCode === "number" ? e.statusCode : undefined;
    const name = typeof e.name === "string" ? e.name : "";
    const rawCode = typeof e.code === "string" && e.code !== "" && e.code !== "undefined" ? e.code : undefined;

    if (statusCode !== undefined) {
        // An HTTP error answer, mapped by openapi-core into ClientError / ServerError / ThrottlingError with the
        // parsed body in `data`. Take the API's own message from the body rather than openapi-core's text.
        const code = rawCode ?? `HTTP${statusCode}`;
        const requestId = stringField(e.data, "RequestId", "requestId") ?? (typeof e.requestId === "string" && e.requestId !== "undefined" ? e.requestId : undefined);
        const apiMessage = stringField(e.data, "Message", "message") ?? "no message";
        const throttled = name === "ThrottlingError" || code.includes("Throttling");
        const retryable = throttled || statusCode >= 500;
        const retryAfterMs = typeof e.retryAfter === "number" && e.retryAfter > 0 ? e.retryAfter : undefined;
        return {
            error: alibabaApiError({ code, apiMessage: redactSecrets(apiMessage), statusCode, requestId, operation, attempts, retriedAfter }),
            retryable,
            retryAfterMs,
        };
    }

    const message = typeof e.message === "string" ? e.message : String(err);
    if (name === "ClientError" && rawCode) {
        // Raised before any request went out, e.g. InvalidCredentials when no credentials were configured.
        return {
            error: alibabaApiError({ code: rawCode, apiMessage: redactSecrets(message), operation, attempts, retriedAfter }),
            retryable: false,
            retryAfterMs: undefined,
        };
    }
    if (name === "RequestTimeoutError" || (rawCode !== undefined && RETRYABLE_NETWORK_CODES.includes(rawCode))) {
        return {
            error: alibabaApiError({ code: rawCode ?? "RequestTimeout", apiMessage: redactSecrets(message), operation, attempts, retriedAfter }),
            retryable: true,
            retryAfterMs: undefined,
        };
    }
    if (name === "SyntaxError") {
        // A non-JSON answer: openapi-core fails to parse it before looking at the status, so this is most
        // likely a gateway's HTML error page (502/504), which is worth another attempt.
        return {
            error: alibabaApiError({ code: "InvalidResponse", apiMessage: `the endpoint did not answer with JSON (${redactSecrets(message)})`, operation, attempts, retriedAfter }),
            retryable: true,
            retryAfterMs: undefined,
        };
    }
    if (message.startsWith("unable to get credentials")) {
        return {
            error: alibabaApiError({
                code: "CredentialsNotFound",
                apiMessage:
                    "no Alibaba Cloud credentials found: set ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET " +
                    "(or ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY), an aliyun CLI profile, OIDC variables or an ECS RAM role " +
                    `(${redactSecrets(message)})`,
                operation,
                attempts,
                retriedAfter,
            }),
            retryable: false,
            retryAfterMs: undefined,
        };
    }
    // Anything else comes from local configuration: retrying will not help.
    return {
        error: alibabaApiError({ code: rawCode ?? (name || "Error"), apiMessage: redactSecrets(message), operation, attempts, retriedAfter }),
        retryable: false,
        retryAfterMs: undefined,
    };
}

function backoffDelay(policy: RetryPolicy, retryNumber: number, retryAfterMs: number | undefined): number {
    const exponential = policy.baseDelayMs * 2 ** (retryNumber - 1);
    // Half fixed, half random: spreads concurrent retries without making any delay tiny.
    const jittered = exponential / 2 + Math.random() * (exponential / 2);
    return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function withoutUndefined(query: Readonly<Record<string, QueryValue>>): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(query)) {
        if (value !== undefined) {
            result[key] = value;
        }
    }
    return result;
}

/**
 * The credential for API calls: Alibaba's default chain (ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET[/_SECURITY_TOKEN],
 * OIDC role, aliyun CLI profile, ~/.alibabacloud/credentials, ECS RAM role, credentials URI). The alicloud
 * Pulumi provider also reads ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY[/ALICLOUD_SECURITY_TOKEN], which the
 * chain does not know; when only those are set they are used, so both providers sign as the same identity.
 */
function defaultCredential(): Credential {
    const env = process.env;
    if (!env.ALIBABA_CLOUD_ACCESS_KEY_ID && env.ALICLOUD_ACCESS_KEY && env.ALICLOUD_SECRET_KEY) {
        const securityToken = env.ALICLOUD_SECURITY_TOKEN;
        return new Credential(
            new CredentialConfig({
                type: securityToken ? "sts" : "access_key",
                accessKeyId: env.ALICLOUD_ACCESS_KEY,
                accessKeySecret: env.ALICLOUD_SECRET_KEY,
                securityToken,
            }),
        );
    }
    return new Credential();
}

/**
 * Builds a client for one endpoint. Call it inside a provider method (create/read/…): it creates the
 * credential (default chain) and the openapi-core client there, never at module level.
 */
export function createAlibabaApiClient(options: AlibabaApiClientOptions): AlibabaApiClient {
    const endpoint = parseApiEndpoint(options.endpoint);
    const policy = resolveRetryPolicy(options.retry);
    const credential = defaultCredential();
    const openApi = new OpenApi(
        new $OpenApiUtil.Config({
            credential,
            endpoint: endpoint.host,
            protocol: endpoint.protocol,
            readTimeout: options.readTimeoutMs ?? 30_000,
            connectTimeout: options.connectTimeoutMs ?? 10_000,
        }),
    );

    async function call<T>(request: ApiCall): Promise<ApiResponse<T>> {
        const operation = `${request.product}.${request.action}`;
        const params = new $OpenApiUtil.Params({
            action: request.action,
            version: request.version,
            protocol: endpoint.protocol,
            pathname: request.pathname,
            method: request.method,
            authType: "AK",
            style: request.style,
            // RPC parameters travel in the query (as the official SDKs send them); ROA bodies are JSON.
            reqBodyType: request.style === "RPC" ? "formData" : "json",
            bodyType: "json",
        });
        const retriedAfter: string[] = [];
        for (let attempt = 1; ; attempt++) {
            const openApiRequest = new $OpenApiUtil.OpenApiRequest({
                query: request.query ? OpenApiUtil.query(withoutUndefined(request.query)) : undefined,
                body: request.body,
            });
            try {
                const response = (await openApi.callApi(params, openApiRequest, new $dara.RuntimeOptions({}))) as {
                    body?: unknown;
                };
                const body = (response.body ?? {}) as T;
                return { body, requestId: stringField(body, "RequestId", "requestId"), retriedAfter };
            } catch (err) {
                const failure = classifyFailure(err, operation, attempt, [...retriedAfter]);
                if (!failure.retryable || attempt >= policy.maxAttempts) {
                    throw failure.error;
                }
                retriedAfter.push(failure.error.code);
                await sleep(backoffDelay(policy, attempt, failure.retryAfterMs));
            }
        }
    }

    return { endpoint, call };
}
