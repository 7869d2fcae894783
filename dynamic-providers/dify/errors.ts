// Errors of Dify's console API: one error shape (DifyApiError), what its answers mean (not found, already
// exists, lost), how error bodies read, and how error texts are built. Messages never contain credentials
// or tokens: every text goes through redactSecrets with the secrets of the call.
//
// Serialization note: dynamic providers are serialized with `pulumi.runtime.serializeFunction`, which copies
// every function reachable from the provider object. So the Dify modules use plain functions and object
// literals (no classes, no `this`, no custom Error subclasses): errors are Error objects with a name and fields.

/** Where every console route lives, below Dify's web address. */
export const CONSOLE_API_PREFIX = "/console/api";

export interface DifyApiError extends Error {
    name: "DifyApiError";
    /** HTTP status (200 for `{"result":"fail"}` answers, 0 when Dify could not be reached). */
    status: number;
    /** Dify's error code (`invalid_param`, `authentication_failed`, ...) or "" when the body had none. */
    code: string;
    /** Dify's message, redacted. */
    difyMessage: string;
    method: string;
    path: string;
    /** The network error code when Dify could not be reached (status 0): ECONNRESET, ECONNREFUSED, ... */
    transportCode?: string;
}

export function isDifyApiError(err: unknown): err is DifyApiError {
    return err instanceof Error && err.name === "DifyApiError";
}

/**
 * Whether Dify answered "this object does not exist": apps answer 404 `app_not_found`, MCP providers and
 * credentials answer 400 `invalid_param` with a "... not found" message (a ValueError in Dify).
 */
export function isDifyNotFound(err: unknown): boolean {
    if (!isDifyApiError(err)) {
        return false;
    }
    if (err.status === 404) {
        return true;
    }
    return (err.status === 400 || err.status === 403) && /not[ _]?found|does not exist|doesn't exist/i.test(err.difyMessage);
}

/** Dify's answer to a create whose name, URL or identifier is taken: 400 "... already exists" (a ValueError). */
export function isDifyAlreadyExists(err: unknown): boolean {
    return isDifyApiError(err) && err.status === 400 && /already exists/i.test(err.difyMessage);
}

/** Proxy answers worth retrying a read for (nginx answers 502 while the api container restarts). */
export const RETRYABLE_STATUSES = [502, 503, 504];

/**
 * Whether a write's answer was lost, so Dify may or may not have applied it: the connection broke (reset,
 * timeout) or a proxy answered 502/503/504 for it. A refused connection never reached Dify.
 */
export function isLostAnswer(err: unknown): boolean {
    if (!isDifyApiError(err)) {
        return false;
    }
    if (err.status === 0) {
        return !["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"].includes(err.transportCode ?? "");
    }
    return RETRYABLE_STATUSES.includes(err.status);
}

/** Replaces every known secret in `text` (secrets shorter than 4 characters are left: they would match noise). */
export function redactSecrets(text: string, secrets: Iterable<string | undefined>): string {
    let result = text;
    for (const secret of secrets) {
        if (secret && secret.length >= 4) {
            result = result.split(secret).join("[redacted]");
        }
    }
    return result;
}

export interface ErrorDescription {
    code: string;
    message: string;
}

/** Reads Dify's error bodies: flask-restx `{code,message,status}`, FastOpenAPI `{error:{type,message}}`, `{result:"fail"}`. */
export function describeDifyErrorBody(body: unknown): ErrorDescription {
    if (typeof body === "string") {
        const text = body.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
        return { code: "", message: text.slice(0, 300) };
    }
    if (!body || typeof body !== "object") {
        return { code: "", message: "" };
    }
    const record = body as Record<string, unknown>;
    const asText = (value: unknown): string =>
        value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value);
    if (record.error && typeof record.error === "object") {
        // FastOpenAPI (Dify 1.12+ for /setup, /init, /ping, /version). Shape UNCONFIRMED: read it defensively.
        const error = record.error as Record<string, unknown>;
        return { code: asText(error.type ?? error.code), message: asText(error.message ?? error.detail) };
    }
    if (record.detail !== undefined) {
        return { code: "", message: asText(record.detail) };
    }
    const message = record.message ?? (record.result === "fail" || record.result === "error" ? record.data ?? record.error : undefined);
    return { code: asText(record.code), message: asText(message) };
}

/**
 * Joins sentences into one text that ends with exactly one period: each part loses its own trailing periods
 * ("Invalid email or password." + "Not retried" → "Invalid email or password. Not retried."). Parts ending
 * in "?" or "!" keep that mark instead. Every error text of the Dify providers is built with it.
 */
export function joinSentences(...parts: (string | undefined)[]): string {
    const sentences = parts
        .map((part) => (part ?? "").trim().replace(/[\s.]+$/, ""))
        .filter((part) => part !== "")
        .map((part) => (/[?!]$/.test(part) ? part : `${part}.`));
    return sentences.join(" ");
}

/** The error of one console call: "Dify <method> /console/api<path> failed (HTTP <status> <code>): <message>. <hint>." */
export function makeDifyApiError(
    method: string,
    path: string,
    status: number,
    description: ErrorDescription,
    secrets: Iterable<string | undefined>,
    hint = "",
): DifyApiError {
    const difyMessage = redactSecrets(description.message, secrets).slice(0, 500);
    const code = redactSecrets(description.code, secrets);
    const what = status === 0 ? "could not reach Dify" : `HTTP ${status}${code ? ` ${code}` : ""}`;
    const text = joinSentences(`Dify ${method} ${CONSOLE_API_PREFIX}${path} failed (${what})${difyMessage ? `: ${difyMessage}` : ""}`, hint);
    const err = new Error(redactSecrets(text, secrets)) as DifyApiError;
    err.name = "DifyApiError";
    err.status = status;
    err.code = code;
    err.difyMessage = difyMessage;
    err.method = method;
    err.path = path;
    return err;
}

/**
 * `err` with `explanation` appended to its message, keeping its DifyApiError fields: for refusals whose
 * words (Dify's or a plugin's) do not say which input is wrong.
 */
export function withExplanation(err: DifyApiError, explanation: string): DifyApiError {
    const explained = new Error(joinSentences(err.message, explanation)) as DifyApiError;
    const { message: _message, stack: _stack, ...fields } = err;
    return Object.assign(explained, fields, { name: "DifyApiError" as const });
}
