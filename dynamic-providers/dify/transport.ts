// HTTP transport to Dify's console API (`/console/api`): one request with the read retries, the raw answer
// (status, headers, parsed body), cookies, and the two calls that need no login: the probe (version and
// setup step) and the first admin's setup. Facts: ../shared/reference/dify-console-api.md (sections 1 and 6).
import axios, { AxiosResponse } from "axios";
import { difyVersionAtLeast, parseDifyVersion } from "../../rules/dify-version";
import {
    CONSOLE_API_PREFIX,
    DifyApiError,
    describeDifyErrorBody,
    joinSentences,
    makeDifyApiError,
    RETRYABLE_STATUSES,
} from "./errors";

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
const DIFY_READ_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000];
const RETRYABLE_READ_ERRORS = ["ECONNRESET", "ECONNREFUSED"];

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** An answer as it came: status, headers and the body parsed as JSON when it is JSON. */
export interface RawResponse {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: unknown;
}

/** The full URL of a console route. */
export function consoleUrl(endpoint: DifyEndpoint, path: string): string {
    return endpoint.url.replace(/\/+$/, "") + CONSOLE_API_PREFIX + path;
}

/** JSON when it parses, the text otherwise, undefined when empty. */
export function parseBody(data: unknown): unknown {
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

export interface SendOptions {
    body?: unknown;
    headers?: Record<string, string>;
    query?: Record<string, string | number>;
    secrets: Iterable<string | undefined>;
}

/** Sends once, then again after each retry delay while the answer is a retryable failure (see above). */
export async function send(endpoint: DifyEndpoint, method: HttpMethod, path: string, options: SendOptions): Promise<RawResponse> {
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
        await sleepMs(delays[attempt]);
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
        const reason = transportReason(cause);
        const err = makeDifyApiError(method, path, 0, { code: "", message: `${reason} (${endpoint.url})` }, options.secrets);
        err.transportCode = reason;
        throw err;
    }
    return { status: response.status, headers: response.headers as RawResponse["headers"], body: parseBody(response.data) };
}

/** The network error code (ECONNRESET, ...) of a request that got no answer, or its message. */
export function transportReason(cause: unknown): string {
    return cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
}

/** 2xx, and not one of the `{"result":"fail"}` answers some routes give with 200. */
export function isSuccess(response: RawResponse): boolean {
    if (response.status < 200 || response.status >= 300) {
        return false;
    }
    const body = response.body as Record<string, unknown> | undefined;
    // Some routes answer 200 with {"result":"fail"} (login in 1.8 for account_not_found, no workspace).
    return !(body && typeof body === "object" && (body.result === "fail" || body.result === "error"));
}

/** The error for an answer that is not a success. */
export function failureOf(method: string, path: string, response: RawResponse, secrets: Iterable<string | undefined>, hint = ""): DifyApiError {
    return makeDifyApiError(method, path, response.status, describeDifyErrorBody(response.body), secrets, hint);
}

function headerValue(headers: RawResponse["headers"], name: string): string | undefined {
    const value = headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
}

/** Name → value of every cookie an answer sets (an empty value means Dify cleared it). */
export function responseCookies(headers: RawResponse["headers"]): Map<string, string> {
    const value = headers["set-cookie"];
    return parseSetCookies(value === undefined ? [] : Array.isArray(value) ? value : [value]);
}

/** Name → value of every cookie the Set-Cookie lines set (an empty value means Dify cleared it). */
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

export function sleepMs(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------------------------------
// Probing and setup (no login needed).

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
            await sleepMs((options.pollSeconds ?? 5) * 1000);
            continue;
        }
        if (failure) {
            throw failure;
        }
        return probeAnswer(endpoint, response as RawResponse);
    }
}

function probeAnswer(endpoint: DifyEndpoint, answer: RawResponse): DifyProbe {
    if (!isSuccess(answer)) {
        throw failureOf("GET", "/setup", answer, []);
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
            throw failureOf("POST", "/init", init, secrets, hint);
        }
        const session = responseCookies(init.headers).get("session");
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
        throw failureOf("POST", "/setup", setup, secrets, hint);
    }
}
