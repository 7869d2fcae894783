// A logged-in session of Dify's console API. Login comes in three version-specific ways: JSON tokens sent back
// as a Bearer header (1.8.0–1.9.1), httpOnly cookies with an X-CSRF-Token header (1.9.2+), and from 1.11.2 a
// base64-encoded password. The session renews its tokens once on a 401 and offers requests, a file upload and
// server-sent-event streams. Facts: ../shared/reference/dify-console-api.md (sections 1 and 6).
import axios, { AxiosResponse } from "axios";
import { createHash } from "crypto";
import { Readable } from "stream";
import { DIFY_VERSION_THRESHOLDS, difyVersionAtLeast } from "../../rules/dify-version";
import { DifyApiError, joinSentences, makeDifyApiError, redactSecrets } from "./errors";
import {
    consoleUrl,
    DifyEndpoint,
    DifyProbe,
    failureOf,
    HttpMethod,
    isSuccess,
    parseBody,
    probeDify,
    RawResponse,
    responseCookies,
    send,
    transportReason,
} from "./transport";

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

/** What a session holds: where, which version, how it authenticates, its tokens, and what to redact. */
interface SessionState {
    endpoint: DifyEndpoint;
    version: string;
    authentication: "bearer" | "cookie";
    tokens: TokenState;
    secrets: Set<string>;
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
    const login = await logIn(endpoint, version, credentials, encodedPassword, secrets);
    return sessionOf(sessionFromLogin(endpoint, version, login, secrets));
}

// ------------------------------------------------------------------------------------------------------
// Login.

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

/** POST /login, once: refused without sending when these credentials already failed in this process. */
async function logIn(
    endpoint: DifyEndpoint,
    version: string,
    credentials: DifyCredentials,
    encodedPassword: string,
    secrets: Set<string>,
): Promise<RawResponse> {
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
        const lockedOut = login.status === 429;
        const hint = lockedOut
            ? "Dify has locked this account after repeated failed logins (24 h by default); wait, or clear the " +
              `Redis key login_error_rate_limit:${credentials.email} on the Dify host`
            : joinSentences(
                  "Not retried: Dify locks an account after 5 failed logins",
                  `Check the admin email and password for ${endpoint.url} (Dify ${version})`,
              );
        const failure = failureOf("POST", "/login", login, secrets, hint);
        if (login.status !== 0 && login.status < 500) {
            failedLogins().set(key, failure.message);
        }
        throw failure;
    }
    return login;
}

/** Decides the authentication by what the login actually returned rather than by version alone. */
function sessionFromLogin(endpoint: DifyEndpoint, version: string, login: RawResponse, secrets: Set<string>): SessionState {
    const tokens: TokenState = { access: "", refresh: "", csrf: "", accessCookie: "", refreshCookie: "", csrfCookie: "" };
    if (absorbCookies(tokens, secrets, login.headers)) {
        return { endpoint, version, authentication: "cookie", tokens, secrets };
    }
    if (absorbBody(tokens, secrets, login.body)) {
        return { endpoint, version, authentication: "bearer", tokens, secrets };
    }
    throw new Error(
        joinSentences(`Dify ${version} at ${endpoint.url} accepted the login but returned no tokens (neither cookies nor a JSON body)`),
    );
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

/** 1.9.2+: the tokens come as cookies (access, refresh, CSRF). False when the answer set no access token. */
function absorbCookies(tokens: TokenState, secrets: Set<string>, headers: RawResponse["headers"]): boolean {
    const cookies = responseCookies(headers);
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
}

/** 1.8.0–1.9.1: the tokens come in the JSON body. False when it has no access token. */
function absorbBody(tokens: TokenState, secrets: Set<string>, body: unknown): boolean {
    const data = (body as { data?: { access_token?: string; refresh_token?: string } } | undefined)?.data;
    if (!data || typeof data !== "object" || !data.access_token) {
        return false;
    }
    tokens.access = data.access_token;
    tokens.refresh = data.refresh_token ?? tokens.refresh;
    secrets.add(tokens.access);
    secrets.add(tokens.refresh);
    return true;
}

function authHeaders(state: SessionState): Record<string, string> {
    const { tokens } = state;
    const headers: Record<string, string> = { Authorization: `Bearer ${tokens.access}` };
    if (state.authentication === "cookie") {
        const cookie = [`${tokens.accessCookie}=${tokens.access}`];
        if (tokens.csrf) {
            cookie.push(`${tokens.csrfCookie}=${tokens.csrf}`);
            // Checked on every method but OPTIONS, GET included (libs/login.py check_csrf_token).
            headers["X-CSRF-Token"] = tokens.csrf;
        }
        headers.Cookie = cookie.join("; ");
    }
    return headers;
}

/** POST /refresh-token with the refresh token (a cookie or a JSON body, as the login gave it). */
async function refreshTokens(state: SessionState): Promise<void> {
    const { endpoint, tokens, secrets } = state;
    const response =
        state.authentication === "cookie"
            ? await send(endpoint, "POST", "/refresh-token", {
                  headers: { Cookie: `${tokens.refreshCookie}=${tokens.refresh}` },
                  secrets,
              })
            : await send(endpoint, "POST", "/refresh-token", { body: { refresh_token: tokens.refresh }, secrets });
    const renewed =
        isSuccess(response) &&
        (state.authentication === "cookie" ? absorbCookies(tokens, secrets, response.headers) : absorbBody(tokens, secrets, response.body));
    if (!renewed) {
        throw failureOf(
            "POST",
            "/refresh-token",
            response,
            secrets,
            "The Dify session expired and could not be renewed; run the command again to log in afresh",
        );
    }
}

// ------------------------------------------------------------------------------------------------------
// Requests, upload and streams.

function sessionOf(state: SessionState): DifyConsole {
    return {
        endpoint: state.endpoint,
        version: state.version,
        authentication: state.authentication,
        request: (method, path, body, query) => request(state, method, path, body, query),
        get: (path, query) => request(state, "GET", path, undefined, query),
        post: (path, body) => request(state, "POST", path, body ?? {}),
        put: (path, body) => request(state, "PUT", path, body ?? {}),
        delete: (path, body) => request(state, "DELETE", path, body),
        upload: (path, field, fileName, content) => {
            const form = new FormData();
            form.append(field, new Blob([content]), fileName);
            return request(state, "POST", path, form);
        },
        stream: (path, body, onEvent, timeoutMs = 300_000) => stream(state, path, body, onEvent, timeoutMs),
    };
}

/** One console call; on 401 the tokens are renewed and the call is made once more. */
async function request<T>(
    state: SessionState,
    method: HttpMethod,
    path: string,
    body?: unknown,
    query?: Record<string, string | number>,
): Promise<T> {
    const { endpoint, secrets } = state;
    let response = await send(endpoint, method, path, { body, query, headers: authHeaders(state), secrets });
    if (response.status === 401) {
        await refreshTokens(state);
        response = await send(endpoint, method, path, { body, query, headers: authHeaders(state), secrets });
    }
    if (!isSuccess(response)) {
        throw failureOf(method, path, response, secrets);
    }
    return response.body as T;
}

async function openStream(state: SessionState, path: string, body: unknown, timeoutMs: number): Promise<AxiosResponse<Readable>> {
    try {
        return await axios.request<Readable>({
            method: "POST",
            url: consoleUrl(state.endpoint, path),
            data: body,
            headers: { Accept: "text/event-stream", ...authHeaders(state) },
            timeout: timeoutMs,
            validateStatus: () => true,
            maxRedirects: 0,
            responseType: "stream",
        });
    } catch (cause) {
        const reason = transportReason(cause);
        throw makeDifyApiError("POST", path, 0, { code: "", message: `${reason} (${state.endpoint.url})` }, state.secrets);
    }
}

async function readAll(stream: Readable): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    }
    return Buffer.concat(chunks).toString("utf8");
}

/** POSTs and reads the SSE answer line by line; a non-stream 2xx JSON answer (blocking mode) is one event. */
async function stream(
    state: SessionState,
    path: string,
    body: unknown,
    onEvent: (event: DifyStreamEvent) => void,
    timeoutMs: number,
): Promise<void> {
    let response = await openStream(state, path, body, timeoutMs);
    if (response.status === 401) {
        await readAll(response.data);
        await refreshTokens(state);
        response = await openStream(state, path, body, timeoutMs);
    }
    const contentType = String(response.headers["content-type"] ?? "");
    if (response.status < 200 || response.status >= 300 || !contentType.includes("text/event-stream")) {
        const parsed = parseBody(await readAll(response.data));
        if (response.status >= 200 && response.status < 300 && parsed && typeof parsed === "object") {
            onEvent(parsed as DifyStreamEvent); // a blocking-mode JSON answer
            return;
        }
        throw failureOf("POST", path, { status: response.status, headers: {}, body: parsed }, state.secrets);
    }
    let pending = "";
    for await (const chunk of response.data) {
        pending += Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk);
        let newline = pending.indexOf("\n");
        while (newline >= 0) {
            emitSseLine(pending.slice(0, newline), onEvent, state.secrets);
            pending = pending.slice(newline + 1);
            newline = pending.indexOf("\n");
        }
    }
    emitSseLine(pending, onEvent, state.secrets);
}

/** Hands one `data: {...}` line to `onEvent`; keep-alives ("event: ping"), blank lines and [DONE] are skipped. */
function emitSseLine(line: string, onEvent: (event: DifyStreamEvent) => void, secrets: Set<string>): void {
    const trimmed = line.replace(/\r$/, "");
    if (!trimmed.startsWith("data:")) {
        return;
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
}
