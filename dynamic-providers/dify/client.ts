// The one client for Dify's console API (`/console/api`), shared by the Dify dynamic providers and the smoke
// test. It owns version detection, login for both authentication generations, token refresh and error
// mapping. Facts: ../shared/reference/dify-console-api.md (sections 1 and 6).
//
// Serialization note: dynamic providers are serialized with `pulumi.runtime.serializeFunction`, which copies
// every function reachable from the provider object. So this module uses plain functions and object literals
// (no classes, no `this`, no custom Error subclasses) and creates sessions inside provider methods.
import axios, { AxiosResponse } from "axios";
import { createHash } from "crypto";
import { Readable } from "stream";

export const CONSOLE_API_PREFIX = "/console/api";

/** The first Dify versions that changed what a console client must do. */
export const DIFY_VERSION_THRESHOLDS = {
    /** `headers` on MCP providers (1.9.0). */
    mcpHeaders: "1.9.0",
    /** httpOnly cookies + X-CSRF-Token instead of JSON tokens + Bearer (commit 9a5f214623, first tag 1.9.2). */
    cookieAuthentication: "1.9.2",
    /** Preset OAuth client (`authentication.client_id`) and `configuration` on MCP providers (1.10.0). */
    mcpPresetOAuthClient: "1.10.0",
    /** `/login` base64-decodes the password (commit b7649f61f8, first tag 1.11.2). */
    base64LoginPassword: "1.11.2",
} as const;

// Versions live in ./dify-version (no dependencies, so the policy pack can share them).
import type { CheckFailure } from "../engine/check";
import { containsUnknown } from "../engine/unknown";
import { compareDifyVersions, difyVersionAtLeast, parseDifyVersion } from "../../rules/dify-version";
export type { DifyVersionParts } from "../../rules/dify-version";
export { compareDifyVersions, difyVersionAtLeast, parseDifyVersion };

// ------------------------------------------------------------------------------------------------------
// Errors. Plain Error objects with a name and fields; messages never contain credentials or tokens.

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

interface ErrorDescription {
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

function makeDifyApiError(
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

// ------------------------------------------------------------------------------------------------------
// Transport.

export interface DifyEndpoint {
    /** Dify's web address, e.g. http://47.1.2.3 (the console API is below /console/api). */
    url: string;
    /** Per-request timeout; streams use their own (default 30 s). */
    requestTimeoutMs?: number;
    /** Pauses before each retry of a read (default DIFY_READ_RETRY_DELAYS_MS); [] turns retries off. */
    retryDelaysMs?: number[];
}

/**
 * Backoff for retrying reads (GET) that met a proxy error (502/503/504: nginx answers 502 while the api
 * container restarts) or a reset/refused connection: 5 attempts within about 4 s. Writes are never retried,
 * except when the connection was refused (then nothing reached Dify).
 */
export const DIFY_READ_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000];
const RETRYABLE_STATUSES = [502, 503, 504];
const RETRYABLE_READ_ERRORS = ["ECONNRESET", "ECONNREFUSED"];

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

interface RawResponse {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: unknown;
}

function consoleUrl(endpoint: DifyEndpoint, path: string): string {
    return endpoint.url.replace(/\/+$/, "") + CONSOLE_API_PREFIX + path;
}

function parseBody(data: unknown): unknown {
    if (typeof data !== "string") {
        return data;
    }
    if (data.trim() === "") {
        return undefined;
    }
    try {
        return JSON.parse(data);
    } catch {
        return data;
    }
}

interface SendOptions {
    body?: unknown;
    headers?: Record<string, string>;
    query?: Record<string, string | number>;
    secrets: Iterable<string | undefined>;
}

/** Sends once, then again after each retry delay while the answer is a retryable failure (see above). */
async function send(endpoint: DifyEndpoint, method: HttpMethod, path: string, options: SendOptions): Promise<RawResponse> {
    const delays = endpoint.retryDelaysMs ?? DIFY_READ_RETRY_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
        let response: RawResponse | undefined;
        let failure: DifyApiError | undefined;
        try {
            response = await sendOnce(endpoint, method, path, options);
        } catch (err) {
            failure = err as DifyApiError;
        }
        const transportCode = failure?.transportCode ?? "";
        const retryable =
            method === "GET"
                ? RETRYABLE_READ_ERRORS.includes(transportCode) || (response !== undefined && RETRYABLE_STATUSES.includes(response.status))
                : transportCode === "ECONNREFUSED";
        if (!retryable || attempt >= delays.length) {
            if (failure) {
                throw failure;
            }
            return response as RawResponse;
        }
        await sleep(delays[attempt]);
    }
}

async function sendOnce(endpoint: DifyEndpoint, method: HttpMethod, path: string, options: SendOptions): Promise<RawResponse> {
    let response: AxiosResponse;
    try {
        response = await axios.request({
            method,
            url: consoleUrl(endpoint, path),
            params: options.query,
            data: options.body,
            headers: { Accept: "application/json", ...options.headers },
            timeout: endpoint.requestTimeoutMs ?? 30_000,
            // Statuses and redirects are Dify's answers, handled below; never let axios throw with its config
            // attached (it holds the request body, which may carry a password).
            validateStatus: () => true,
            maxRedirects: 0,
            responseType: "text",
            transformResponse: (data: unknown) => data,
        });
    } catch (cause) {
        const reason = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
        const err = makeDifyApiError(method, path, 0, { code: "", message: `${reason} (${endpoint.url})` }, options.secrets);
        err.transportCode = reason;
        throw err;
    }
    return { status: response.status, headers: response.headers as RawResponse["headers"], body: parseBody(response.data) };
}

function isSuccess(response: RawResponse): boolean {
    if (response.status < 200 || response.status >= 300) {
        return false;
    }
    const body = response.body as Record<string, unknown> | undefined;
    // Some routes answer 200 with {"result":"fail"} (login in 1.8 for account_not_found, no workspace).
    return !(body && typeof body === "object" && (body.result === "fail" || body.result === "error"));
}

function headerValue(headers: RawResponse["headers"], name: string): string | undefined {
    const value = headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
}

function setCookieHeaders(headers: RawResponse["headers"]): string[] {
    const value = headers["set-cookie"];
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Name → value of every cookie a response sets (an empty value means Dify cleared it). */
export function parseSetCookies(setCookie: string[]): Map<string, string> {
    const cookies = new Map<string, string>();
    for (const line of setCookie) {
        const first = line.split(";")[0];
        const eq = first.indexOf("=");
        if (eq <= 0) {
            continue;
        }
        let value = first.slice(eq + 1).trim();
        if (value.startsWith('"') && value.endsWith('"')) {
            value = value.slice(1, -1);
        }
        const maxAgeZero = /;\s*max-age=0(\s*;|\s*$)/i.test(line);
        cookies.set(first.slice(0, eq).trim(), maxAgeZero ? "" : value);
    }
    return cookies;
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------------------------------
// Probing, init and setup (no login needed).

export interface DifyProbe {
    /** From the X-Version header every Dify response carries. */
    version: string;
    /** GET /setup: "finished" once the first admin exists. */
    setupStep: "not_started" | "finished";
}

export interface ProbeOptions {
    /** Keep asking while Dify is unreachable or answers 5xx (containers starting), up to this long. Default 0. */
    waitSeconds?: number;
    pollSeconds?: number;
}

/** GET /console/api/setup: the version (from X-Version) and the setup step, before any password is sent. */
export async function probeDify(endpoint: DifyEndpoint, options: ProbeOptions = {}): Promise<DifyProbe> {
    const deadline = Date.now() + (options.waitSeconds ?? 0) * 1000;
    for (;;) {
        let response: RawResponse | undefined;
        let failure: DifyApiError | undefined;
        try {
            // With a wait of its own, the probe polls at its own pace instead of the client's retry backoff.
            const probeEndpoint = options.waitSeconds ? { ...endpoint, retryDelaysMs: [] } : endpoint;
            response = await send(probeEndpoint, "GET", "/setup", { secrets: [] });
        } catch (err) {
            failure = err as DifyApiError;
        }
        const retryable = failure !== undefined || (response !== undefined && response.status >= 500);
        if (retryable && Date.now() < deadline) {
            await sleep((options.pollSeconds ?? 5) * 1000);
            continue;
        }
        if (failure) {
            throw failure;
        }
        const answer = response as RawResponse;
        if (!isSuccess(answer)) {
            throw makeDifyApiError("GET", "/setup", answer.status, describeDifyErrorBody(answer.body), []);
        }
        const version = headerValue(answer.headers, "x-version");
        if (!version || !parseDifyVersion(version)) {
            throw new Error(
                joinSentences(
                    `${endpoint.url} answered GET ${CONSOLE_API_PREFIX}/setup without a usable X-Version header ` +
                        `(got ${JSON.stringify(version ?? null)}), so it is not the address of a Dify console`,
                ),
            );
        }
        const step = (answer.body as { step?: string } | undefined)?.step;
        return { version, setupStep: step === "finished" ? "finished" : "not_started" };
    }
}

export interface DifySetupRequest {
    email: string;
    name: string;
    password: string;
    /** Dify's INIT_PASSWORD, when the instance has one. */
    initPassword?: string;
    language?: string;
}

/**
 * Creates the first admin: POST /init with INIT_PASSWORD (the proof lives in Flask's `session` cookie, which is
 * sent back on POST /setup), then POST /setup. Both routes take plain passwords in every version.
 */
export async function setupDify(endpoint: DifyEndpoint, probe: DifyProbe, request: DifySetupRequest): Promise<void> {
    const secrets = [request.password, request.initPassword];
    const headers: Record<string, string> = {};
    if (request.initPassword) {
        const init = await send(endpoint, "POST", "/init", { body: { password: request.initPassword }, secrets });
        if (!isSuccess(init)) {
            const hint = init.status === 401 ? "The init password does not match Dify's INIT_PASSWORD" : "";
            throw makeDifyApiError("POST", "/init", init.status, describeDifyErrorBody(init.body), secrets, hint);
        }
        const session = parseSetCookies(setCookieHeaders(init.headers)).get("session");
        if (session) {
            headers.Cookie = `session=${session}`;
        }
    }
    const body: Record<string, string> = { email: request.email, name: request.name, password: request.password };
    if (request.language && difyVersionAtLeast(probe.version, "1.9.0")) {
        body.language = request.language;
    }
    const setup = await send(endpoint, "POST", "/setup", { body, headers, secrets });
    if (!isSuccess(setup)) {
        const hint =
            setup.status === 401
                ? "Dify has an INIT_PASSWORD: give it as the init password"
                : setup.status === 403
                  ? "Dify is already set up"
                  : "";
        throw makeDifyApiError("POST", "/setup", setup.status, describeDifyErrorBody(setup.body), secrets, hint);
    }
}

// ------------------------------------------------------------------------------------------------------
// Sessions.

export interface DifyCredentials {
    email: string;
    password: string;
}

/** One event of a Dify SSE stream (`data: {...}` line); `event` is agent_thought, agent_message, error, ... */
export interface DifyStreamEvent {
    event?: string;
    [key: string]: unknown;
}

export interface DifyConsole {
    readonly endpoint: DifyEndpoint;
    readonly version: string;
    /** "bearer": 1.8.0–1.9.1 JSON tokens; "cookie": 1.9.2+ cookies with CSRF. */
    readonly authentication: "bearer" | "cookie";
    /** Calls a console route (path below /console/api); refreshes the tokens once on 401. */
    request<T = unknown>(method: HttpMethod, path: string, body?: unknown, query?: Record<string, string | number>): Promise<T>;
    get<T = unknown>(path: string, query?: Record<string, string | number>): Promise<T>;
    post<T = unknown>(path: string, body?: unknown): Promise<T>;
    put<T = unknown>(path: string, body?: unknown): Promise<T>;
    delete<T = unknown>(path: string, body?: unknown): Promise<T>;
    /** Multipart upload of one file field. */
    upload<T = unknown>(path: string, field: string, fileName: string, content: Uint8Array): Promise<T>;
    /** POSTs and reads a server-sent-event stream, calling `onEvent` for each `data:` JSON object. */
    stream(path: string, body: unknown, onEvent: (event: DifyStreamEvent) => void, timeoutMs?: number): Promise<void>;
}

export interface ConnectOptions {
    /** A probe already made (saves one GET /setup). */
    probe?: DifyProbe;
    /** More values that must never appear in an error message (API keys sent in bodies). */
    secrets?: string[];
}

interface TokenState {
    access: string;
    refresh: string;
    csrf: string;
    /** Cookie names as Dify set them: plain, or with the `__Host-` prefix under HTTPS. */
    accessCookie: string;
    refreshCookie: string;
    csrfCookie: string;
}

function pickCookie(cookies: Map<string, string>, base: string): [string, string] | undefined {
    for (const name of [`__Host-${base}`, base]) {
        const value = cookies.get(name);
        if (value) {
            return [name, value];
        }
    }
    return undefined;
}

/** The password as the login route of `version` expects it: base64(utf8) from 1.11.2, plain before. */
export function encodeLoginPassword(version: string, password: string): string {
    return difyVersionAtLeast(version, DIFY_VERSION_THRESHOLDS.base64LoginPassword)
        ? Buffer.from(password, "utf8").toString("base64")
        : password;
}

/**
 * Logins that failed in this process, shared by every serialized provider (each has its own copy of this
 * module, hence globalThis). Key: URL, email and a hash of the password; value: the error message.
 */
function failedLogins(): Map<string, string> {
    const holder = globalThis as typeof globalThis & { __difyFailedLogins?: Map<string, string> };
    holder.__difyFailedLogins ??= new Map<string, string>();
    return holder.__difyFailedLogins;
}

function loginKey(endpoint: DifyEndpoint, credentials: DifyCredentials): string {
    const digest = createHash("sha256").update(credentials.password, "utf8").digest("hex");
    return `${endpoint.url.replace(/\/+$/, "")}|${credentials.email.toLowerCase()}|${digest}`;
}

/**
 * Logs in once, the way the instance's version expects, and returns a session. A failed login is never
 * retried: Dify locks the account for a day (LOGIN_LOCKOUT_DURATION) after 5 failed attempts, and a
 * `pulumi refresh` reads every Dify resource in one process, so credentials that failed once are not sent
 * again by any resource in this process.
 */
export async function connectToDify(
    endpoint: DifyEndpoint,
    credentials: DifyCredentials,
    options: ConnectOptions = {},
): Promise<DifyConsole> {
    const probe = options.probe ?? (await probeDify(endpoint));
    const version = probe.version;
    const encodedPassword = encodeLoginPassword(version, credentials.password);
    const secrets = new Set<string>([credentials.password, encodedPassword, ...(options.secrets ?? [])]);
    if (probe.setupStep !== "finished") {
        throw new Error(joinSentences(`Dify at ${endpoint.url} is not set up yet (no admin account): create the DifyAdmin resource first`));
    }
    const key = loginKey(endpoint, credentials);
    const earlier = failedLogins().get(key);
    if (earlier !== undefined) {
        const err = new Error(joinSentences(earlier, "Not sent again: these credentials already failed in this run")) as DifyApiError;
        Object.assign(err, { name: "DifyApiError", status: 401, code: "authentication_failed", difyMessage: earlier, method: "POST", path: "/login" });
        throw err;
    }

    const login = await send(endpoint, "POST", "/login", {
        body: { email: credentials.email, password: encodedPassword, remember_me: true },
        secrets,
    });
    if (!isSuccess(login)) {
        const description = describeDifyErrorBody(login.body);
        const lockedOut = login.status === 429;
        const hint = lockedOut
            ? "Dify has locked this account after repeated failed logins (24 h by default); wait, or clear the " +
              `Redis key login_error_rate_limit:${credentials.email} on the Dify host`
            : joinSentences(
                  "Not retried: Dify locks an account after 5 failed logins",
                  `Check the admin email and password for ${endpoint.url} (Dify ${version})`,
              );
        const failure = makeDifyApiError("POST", "/login", login.status, description, secrets, hint);
        if (login.status !== 0 && login.status < 500) {
            failedLogins().set(key, failure.message);
        }
        throw failure;
    }

    const tokens: TokenState = { access: "", refresh: "", csrf: "", accessCookie: "", refreshCookie: "", csrfCookie: "" };
    let authentication: "bearer" | "cookie";
    // Decide by what the login actually returned rather than by version alone: both generations are handled.
    const absorbCookies = (headers: RawResponse["headers"]): boolean => {
        const cookies = parseSetCookies(setCookieHeaders(headers));
        const access = pickCookie(cookies, "access_token");
        const refresh = pickCookie(cookies, "refresh_token");
        const csrf = pickCookie(cookies, "csrf_token");
        if (!access) {
            return false;
        }
        [tokens.accessCookie, tokens.access] = access;
        if (refresh) {
            [tokens.refreshCookie, tokens.refresh] = refresh;
        }
        if (csrf) {
            [tokens.csrfCookie, tokens.csrf] = csrf;
        }
        for (const value of [tokens.access, tokens.refresh, tokens.csrf]) {
            secrets.add(value);
        }
        return true;
    };
    const absorbBody = (body: unknown): boolean => {
        const data = (body as { data?: { access_token?: string; refresh_token?: string } } | undefined)?.data;
        if (!data || typeof data !== "object" || !data.access_token) {
            return false;
        }
        tokens.access = data.access_token;
        tokens.refresh = data.refresh_token ?? tokens.refresh;
        secrets.add(tokens.access);
        secrets.add(tokens.refresh);
        return true;
    };
    if (absorbCookies(login.headers)) {
        authentication = "cookie";
    } else if (absorbBody(login.body)) {
        authentication = "bearer";
    } else {
        throw new Error(
            joinSentences(`Dify ${version} at ${endpoint.url} accepted the login but returned no tokens (neither cookies nor a JSON body)`),
        );
    }

    const authHeaders = (): Record<string, string> => {
        const headers: Record<string, string> = { Authorization: `Bearer ${tokens.access}` };
        if (authentication === "cookie") {
            const cookie = [`${tokens.accessCookie}=${tokens.access}`];
            if (tokens.csrf) {
                cookie.push(`${tokens.csrfCookie}=${tokens.csrf}`);
                // Checked on every method but OPTIONS, GET included (libs/login.py check_csrf_token).
                headers["X-CSRF-Token"] = tokens.csrf;
            }
            headers.Cookie = cookie.join("; ");
        }
        return headers;
    };

    const refreshTokens = async (): Promise<void> => {
        const response =
            authentication === "cookie"
                ? await send(endpoint, "POST", "/refresh-token", {
                      headers: { Cookie: `${tokens.refreshCookie}=${tokens.refresh}` },
                      secrets,
                  })
                : await send(endpoint, "POST", "/refresh-token", { body: { refresh_token: tokens.refresh }, secrets });
        const renewed = isSuccess(response) && (authentication === "cookie" ? absorbCookies(response.headers) : absorbBody(response.body));
        if (!renewed) {
            throw makeDifyApiError(
                "POST",
                "/refresh-token",
                response.status,
                describeDifyErrorBody(response.body),
                secrets,
                "The Dify session expired and could not be renewed; run the command again to log in afresh",
            );
        }
    };

    const request = async <T>(
        method: HttpMethod,
        path: string,
        body?: unknown,
        query?: Record<string, string | number>,
        extraHeaders?: Record<string, string>,
    ): Promise<T> => {
        let response = await send(endpoint, method, path, { body, query, headers: { ...extraHeaders, ...authHeaders() }, secrets });
        if (response.status === 401) {
            await refreshTokens();
            response = await send(endpoint, method, path, { body, query, headers: { ...extraHeaders, ...authHeaders() }, secrets });
        }
        if (!isSuccess(response)) {
            throw makeDifyApiError(method, path, response.status, describeDifyErrorBody(response.body), secrets);
        }
        return response.body as T;
    };

    const openStream = async (path: string, body: unknown, timeoutMs: number): Promise<AxiosResponse<Readable>> => {
        try {
            return await axios.request<Readable>({
                method: "POST",
                url: consoleUrl(endpoint, path),
                data: body,
                headers: { Accept: "text/event-stream", ...authHeaders() },
                timeout: timeoutMs,
                validateStatus: () => true,
                maxRedirects: 0,
                responseType: "stream",
            });
        } catch (cause) {
            const reason = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
            throw makeDifyApiError("POST", path, 0, { code: "", message: `${reason} (${endpoint.url})` }, secrets);
        }
    };
    const readAll = async (stream: Readable): Promise<string> => {
        const chunks: Buffer[] = [];
        for await (const chunk of stream) {
            chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
        }
        return Buffer.concat(chunks).toString("utf8");
    };

    const session: DifyConsole = {
        endpoint,
        version,
        authentication,
        request: (method, path, body, query) => request(method, path, body, query),
        get: (path, query) => request("GET", path, undefined, query),
        post: (path, body) => request("POST", path, body ?? {}),
        put: (path, body) => request("PUT", path, body ?? {}),
        delete: (path, body) => request("DELETE", path, body),
        upload: (path, field, fileName, content) => {
            const form = new FormData();
            form.append(field, new Blob([content]), fileName);
            return request("POST", path, form);
        },
        stream: async (path, body, onEvent, timeoutMs = 300_000) => {
            let response = await openStream(path, body, timeoutMs);
            if (response.status === 401) {
                await readAll(response.data);
                await refreshTokens();
                response = await openStream(path, body, timeoutMs);
            }
            const contentType = String(response.headers["content-type"] ?? "");
            if (response.status < 200 || response.status >= 300 || !contentType.includes("text/event-stream")) {
                const parsed = parseBody(await readAll(response.data));
                if (response.status >= 200 && response.status < 300 && parsed && typeof parsed === "object") {
                    onEvent(parsed as DifyStreamEvent); // a blocking-mode JSON answer
                    return;
                }
                throw makeDifyApiError("POST", path, response.status, describeDifyErrorBody(parsed), secrets);
            }
            let pending = "";
            const flush = (line: string) => {
                const trimmed = line.replace(/\r$/, "");
                if (!trimmed.startsWith("data:")) {
                    return; // "event: ping" keep-alives and blank separators
                }
                const payload = trimmed.slice(5).trim();
                if (payload === "" || payload === "[DONE]") {
                    return;
                }
                try {
                    onEvent(JSON.parse(payload) as DifyStreamEvent);
                } catch {
                    onEvent({ event: "unparsed", data: redactSecrets(payload, secrets) });
                }
            };
            for await (const chunk of response.data) {
                pending += Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk);
                let newline = pending.indexOf("\n");
                while (newline >= 0) {
                    flush(pending.slice(0, newline));
                    pending = pending.slice(newline + 1);
                    newline = pending.indexOf("\n");
                }
            }
            flush(pending);
        },
    };
    return session;
}

// ------------------------------------------------------------------------------------------------------
// Shared by the Dify dynamic providers.

/** Inputs every Dify resource takes to reach and log in to the console API. */
export interface DifyConnectionInputs {
    /** Dify's web address, e.g. http://47.1.2.3. */
    difyUrl: string;
    adminEmail: string;
    adminPassword: string;
}

export function checkDifyUrl(property: string, value: unknown): CheckFailure[] {
    if (value === undefined || containsUnknown(value)) {
        return value === undefined ? [{ property, reason: `${property} is required: Dify's web address, e.g. http://47.1.2.3` }] : [];
    }
    if (typeof value !== "string") {
        return [{ property, reason: `${property} must be a string URL with scheme http or https` }];
    }
    try {
        const url = new URL(value);
        if (url.protocol !== "http:" && url.protocol !== "https:") {
            return [{ property, reason: `${property} must use http or https, got ${url.protocol.replace(":", "")}` }];
        }
        if (url.pathname !== "/" && url.pathname !== "") {
            return [{ property, reason: `${property} must be Dify's root address (no path; the console API is below /console/api)` }];
        }
    } catch {
        return [{ property, reason: `${property} must be an absolute http(s) URL, e.g. http://47.1.2.3` }];
    }
    return [];
}

export function checkDifyConnection(news: Partial<DifyConnectionInputs>): CheckFailure[] {
    const failures = checkDifyUrl("difyUrl", news.difyUrl);
    if (news.adminEmail === undefined || (!containsUnknown(news.adminEmail) && !/^[^@\s]+@[^@\s]+$/.test(String(news.adminEmail)))) {
        failures.push({ property: "adminEmail", reason: "adminEmail must be the Dify admin's email address" });
    }
    if (news.adminPassword === undefined || news.adminPassword === "") {
        failures.push({ property: "adminPassword", reason: "adminPassword is required (the Dify admin's password)" });
    }
    return failures;
}

/** Normalizes Dify's URL so state does not flip between "http://x" and "http://x/". */
export function normalizeDifyUrl(url: string): string {
    return containsUnknown(url) ? url : url.replace(/\/+$/, "");
}

export function endpointOf(inputs: { difyUrl: string; requestTimeoutSeconds?: number }): DifyEndpoint {
    return {
        url: inputs.difyUrl,
        requestTimeoutMs: inputs.requestTimeoutSeconds ? inputs.requestTimeoutSeconds * 1000 : undefined,
    };
}

/** Logs in with the connection inputs of a resource. */
export function connectWith(inputs: DifyConnectionInputs & { requestTimeoutSeconds?: number }, secrets: string[] = []): Promise<DifyConsole> {
    return connectToDify(endpointOf(inputs), { email: inputs.adminEmail, password: inputs.adminPassword }, { secrets });
}

/**
 * An error that tells the engine the object was created but is not fully set up: it records the id and
 * outputs (ErrorResourceInitFailed), so the next `pulumi up` updates the object instead of creating a twin.
 */
export function resourceInitFailure(id: string, properties: object, cause: unknown): Error {
    const message = cause instanceof Error ? cause.message : String(cause);
    const err = new Error(message) as Error & { id: string; properties: object; reasons: string[] };
    err.id = id;
    err.properties = properties;
    err.reasons = [message];
    return err;
}

export function sleepMs(ms: number): Promise<void> {
    return sleep(ms);
}

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

/** The redirect URI Dify uses for MCP OAuth (register it in the OAuth app): CONSOLE_API_URL + callback path. */
export function difyMcpOAuthRedirectUri(difyUrl: string): string {
    return `${difyUrl.replace(/\/+$/, "")}${CONSOLE_API_PREFIX}/mcp/oauth/callback`;
}
