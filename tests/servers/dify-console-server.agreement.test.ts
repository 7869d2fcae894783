// The fake Dify console (./dify-console-server.ts, version "1.14.1") must answer what Dify's real API server 1.14.1
// (tests/harness/real-dify.ts) answers, or the provider tests that run against the fake prove nothing. Each scenario
// below is one function run against a `Target` (the fake or the real server) that returns a normalized record: the
// statuses, error codes and messages our code depends on, and the JSON shapes and fields the providers read, with
// ids, timestamps, ports and secrets replaced by what they are (a UUID, a masked form of what was sent, ...). A test
// per scenario asserts that the fake's record equals the real one, plus that the record says something.
//
// Where the fake cannot do what the real server does, both are driven so that the outcome is comparable:
//   - OAuth with the MCP server: the real Dify talks to tests/servers/mcp-oauth-server.ts (a preset client, no
//     dynamic registration, like Alibaba's); a person's consent is `approve` + GET of Dify's callback. The fake
//     simulates the flow: `authorizeMcpProvider(id, tools)` with the tool names the MCP server lists.
//   - The MCP server revoking the grant: its `revokeTokens()` for the real one, the fake's `revokeMcpTokens`.
//   - A failing MCP tool: the MCP server's `setToolFailure` for the real one, the fake's "tool-error" chat script.
//   - The plugin daemon and the marketplace: the stand-in (tests/servers/plugin-daemon-stand-in.ts) for the real
//     one. What only the stand-in decides (its tongyi package's version and model list, task messages) is
//     normalized to what our providers read from it.
import * as fs from "fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { difyMaskedServerUrl, maskDifyCredential, obfuscateDashscopeKey } from "../../dynamic-providers/dify/masks";
import { connectToDify, DifyStreamEvent } from "../../dynamic-providers/dify/session";
import { RealDify, startRealDify } from "../harness/real-dify";
import { DifyConsoleServer, startDifyConsoleServer } from "./dify-console-server";
import { alibabaEcsTools, McpOAuthServer, startMcpOAuthServer } from "./mcp-oauth-server";

const VERSION = "1.14.1";
const INIT_PASSWORD = "init-Agreement-1";
const ADMIN = { email: "agreement.admin@example.com", name: "Agreement Admin", password: "Agreement-Passw0rd-1" };
/** A RAM OAuth app's AppId: a preset client, since Alibaba's authorization server has no dynamic registration. */
const CLIENT_ID = "4071151845732613353";
const TOOL_NAMES = alibabaEcsTools().map((tool) => tool.name);
const TONGYI = "langgenius/tongyi/tongyi";
const TONGYI_PLUGIN = "langgenius/tongyi";
const DASHSCOPE_KEY = "sk-agreement-key-0123456789";
const MCP = "/workspaces/current/tool-provider/mcp";
const PLUGIN = "/workspaces/current/plugin";
const CREDENTIALS = `/workspaces/current/model-providers/${TONGYI}/credentials`;
const MISSING_UUID = "00000000-0000-4000-8000-000000000000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ABSENT = "<absent>";

/** One Dify to run a scenario against, with the means to play the parts the console API does not cover. */
interface Target {
    kind: "fake" | "real";
    /** Dify's web address (the console API is below /console/api). */
    url: string;
    /** Two MCP server URLs (`server_url`s); the real Dify reaches them, the fake never connects. */
    mcpUrls: [string, string];
    /** A person approves the consent page of `authorizationUrl` and the browser returns to Dify. */
    completeAuthorization(providerId: string, authorizationUrl: string): Promise<void>;
    /** The MCP server revokes every token it issued (access and refresh). */
    revokeMcpTokens(providerId: string): Promise<void>;
    /** The MCP server's tools/call fails (JSON-RPC error), or works again. */
    setToolFailure(failing: boolean): Promise<void>;
    /** A .difypkg of langgenius/tongyi. */
    pluginPackage: Buffer;
}

// ------------------------------------------------------------------------------------------------------
// Raw HTTP: statuses, headers and bodies as Dify sends them (no client logic in between).

interface Answer {
    status: number;
    body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    contentType: string;
    version: string | null;
    setCookie: string[];
}

async function send(
    target: Target,
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; form?: FormData } = {},
): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | FormData | undefined;
    if (options.form) {
        body = options.form;
    } else if (options.body !== undefined) {
        headers["Content-Type"] = "application/json";
        body = JSON.stringify(options.body);
    }
    const response = await fetch(`${target.url}/console/api${path}`, { method, headers, body, redirect: "manual" });
    const text = await response.text();
    let parsed: unknown = text;
    try {
        parsed = text === "" ? "" : JSON.parse(text);
    } catch {
        // HTML or plain text: kept as is
    }
    return {
        status: response.status,
        body: parsed,
        contentType: (response.headers.get("content-type") ?? "").split(";")[0],
        version: response.headers.get("x-version"),
        setCookie: response.headers.getSetCookie(),
    };
}

/** An error answer as our client reads it: status plus the body (flask-restx or FastOpenAPI shape). */
function failure(answer: Answer): Record<string, unknown> {
    return { status: answer.status, body: answer.body };
}

/** Set-Cookie lines as {name: attributes}, without values and expiry dates (Max-Age kept). */
function cookieAttributes(setCookie: string[]): Record<string, Record<string, string | boolean>> {
    const result: Record<string, Record<string, string | boolean>> = {};
    for (const line of setCookie) {
        const [first, ...attributes] = line.split(";").map((part) => part.trim());
        const name = first.slice(0, first.indexOf("="));
        const described: Record<string, string | boolean> = { httpOnly: false, secure: false };
        for (const attribute of attributes) {
            const [key, value] = attribute.split("=");
            const lower = key.toLowerCase();
            if (lower === "httponly") {
                described.httpOnly = true;
            } else if (lower === "secure") {
                described.secure = true;
            } else if (lower === "path" || lower === "samesite" || lower === "max-age") {
                described[lower] = value;
            }
        }
        result[name] = described;
    }
    return result;
}

function cookieValues(setCookie: string[]): Map<string, string> {
    return new Map(setCookie.map((line) => line.split(";")[0]).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

interface Console {
    call(method: string, path: string, body?: unknown): Promise<Answer>;
    upload(path: string, field: string, fileName: string, content: Buffer): Promise<Answer>;
}

/** Logs in the admin with raw HTTP and returns calls carrying the cookies and the CSRF header. */
async function login(target: Target): Promise<Console> {
    const answer = await send(target, "POST", "/login", {
        body: { email: ADMIN.email, password: Buffer.from(ADMIN.password).toString("base64"), remember_me: true },
    });
    if (answer.status !== 200) {
        throw new Error(`login to the ${target.kind} Dify failed: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    const cookies = cookieValues(answer.setCookie);
    const headers = {
        Cookie: `access_token=${cookies.get("access_token")}; csrf_token=${cookies.get("csrf_token")}`,
        "X-CSRF-Token": cookies.get("csrf_token") ?? "",
    };
    return {
        call: (method, path, body) => send(target, method, path, { body, headers }),
        upload: (path, field, fileName, content) => {
            const form = new FormData();
            form.append(field, new Blob([content]), fileName);
            return send(target, "POST", path, { form, headers });
        },
    };
}

function present(record: Record<string, unknown>, key: string): unknown {
    return key in record ? record[key] : ABSENT;
}

/** What an id is: a UUID, the given identifier, or something else. */
function idKind(id: unknown, identifier?: string): string {
    return typeof id === "string" && UUID.test(id) ? "uuid" : id === identifier ? "server_identifier" : `other: ${JSON.stringify(id)}`;
}

// ------------------------------------------------------------------------------------------------------
// Scenario 1: probe, init, setup, login, cookies, CSRF, refresh, lockout.

async function probeAndSetup(target: Target) {
    const versions = new Set<string | null>();
    const track = (answer: Answer) => {
        versions.add(answer.version);
        return answer;
    };
    const get = async (path: string, headers?: Record<string, string>) => track(await send(target, "GET", path, { headers }));
    const post = async (path: string, body?: unknown, headers?: Record<string, string>) => track(await send(target, "POST", path, { body, headers }));

    const setupBefore = await get("/setup");
    const initBefore = await get("/init");
    const setupWithoutInit = await post("/setup", ADMIN);
    const wrongInit = await post("/init", { password: "not-the-init-password" });
    const tooLongInit = await post("/init", { password: "x".repeat(31) });
    const rightInit = await post("/init", { password: INIT_PASSWORD });
    const session = cookieValues(rightInit.setCookie).get("session") ?? "";
    const withSession = { Cookie: `session=${session}` };
    const initValidated = await get("/init", withSession);
    const weakSetup = await post("/setup", { ...ADMIN, password: "weakpassword" }, withSession);
    const setup = await post("/setup", ADMIN, withSession);
    const setupAfter = await get("/setup");
    const secondSetup = await post("/setup", ADMIN, withSession);
    const secondInit = await post("/init", { password: INIT_PASSWORD });
    const initAfter = await get("/init");

    const encoded = (password: string) => Buffer.from(password).toString("base64");
    const wrongPassword = await post("/login", { email: ADMIN.email, password: encoded("Wrong-Passw0rd-9") });
    const unknownEmail = await post("/login", { email: "nobody@example.com", password: encoded(ADMIN.password) });
    const notBase64 = await post("/login", { email: ADMIN.email, password: "not base64!" });
    const upperCaseEmail = await post("/login", { email: ADMIN.email.toUpperCase(), password: encoded(ADMIN.password), remember_me: true });
    const loggedIn = await post("/login", { email: ADMIN.email, password: encoded(ADMIN.password), remember_me: true });
    const cookies = cookieValues(loggedIn.setCookie);
    const jar = `access_token=${cookies.get("access_token")}; csrf_token=${cookies.get("csrf_token")}`;
    const csrf = cookies.get("csrf_token") ?? "";
    const noCookies = await get("/account/profile");
    const noCsrfHeader = await get("/account/profile", { Cookie: jar });
    const wrongCsrfHeader = await get("/account/profile", { Cookie: jar, "X-CSRF-Token": "not-the-token" });
    const garbageToken = await get("/account/profile", { Cookie: `access_token=garbage; csrf_token=${csrf}`, "X-CSRF-Token": csrf });
    const profile = await get("/account/profile", { Cookie: jar, "X-CSRF-Token": csrf });
    const workspaces = await get("/workspaces", { Cookie: jar, "X-CSRF-Token": csrf });

    const refreshWithoutCookie = await post("/refresh-token");
    const refreshed = await post("/refresh-token", undefined, { Cookie: `refresh_token=${cookies.get("refresh_token")}` });
    const refreshedAgain = await post("/refresh-token", undefined, { Cookie: `refresh_token=${cookies.get("refresh_token")}` });
    const renewed = cookieValues(refreshed.setCookie);
    const withRenewed = await get("/account/profile", {
        Cookie: `access_token=${renewed.get("access_token")}; csrf_token=${renewed.get("csrf_token")}`,
        "X-CSRF-Token": renewed.get("csrf_token") ?? "",
    });

    // More than 5 failures lock an email (the unknown one here, so the admin stays usable); an undecodable
    // password is refused before the lockout is looked at.
    const locked = "Locked.Out@example.com";
    const attempts: number[] = [];
    for (let i = 0; i < 7; i++) {
        attempts.push((await post("/login", { email: i % 2 ? locked.toLowerCase() : locked, password: encoded(`Wrong-${i}-password`) })).status);
    }
    const lockedOut = await post("/login", { email: locked, password: encoded("Wrong-password-7") });
    const lockedUndecodable = await post("/login", { email: locked, password: "abc" });
    // Python's b64decode skips characters outside the alphabet: "%%%" is "" (decodable), so the lockout answers.
    const lockedSkippedCharacters = await post("/login", { email: locked, password: "%%%" });

    return {
        setupBefore: { status: setupBefore.status, body: setupBefore.body },
        initBefore: { status: initBefore.status, body: initBefore.body },
        setupWithoutInit: failure(setupWithoutInit),
        wrongInit: { ...failure(wrongInit), cookies: Object.keys(cookieAttributes(wrongInit.setCookie)) },
        tooLongInit: failure(tooLongInit),
        rightInit: { status: rightInit.status, body: rightInit.body, cookies: cookieAttributes(rightInit.setCookie) },
        initValidated: initValidated.body,
        weakSetup: failure(weakSetup),
        setup: { status: setup.status, body: setup.body, cookies: rightInit.setCookie.length > 0 ? Object.keys(cookieAttributes(setup.setCookie)) : [] },
        setupAfter: {
            status: setupAfter.status,
            step: setupAfter.body?.step,
            setupAtIsIsoDate: typeof setupAfter.body?.setup_at === "string" && !Number.isNaN(Date.parse(setupAfter.body.setup_at)),
        },
        secondSetup: failure(secondSetup),
        secondInit: failure(secondInit),
        initAfter: initAfter.body,
        wrongPassword: failure(wrongPassword),
        unknownEmail: failure(unknownEmail),
        notBase64: failure(notBase64),
        upperCaseEmail: { status: upperCaseEmail.status, body: upperCaseEmail.body },
        login: { status: loggedIn.status, body: loggedIn.body, contentType: loggedIn.contentType, cookies: cookieAttributes(loggedIn.setCookie) },
        noCookies: failure(noCookies),
        noCsrfHeader: failure(noCsrfHeader),
        wrongCsrfHeader: failure(wrongCsrfHeader),
        garbageToken: failure(garbageToken),
        profile: { status: profile.status, email: profile.body?.email, name: profile.body?.name, id: idKind(profile.body?.id) },
        workspaces: {
            status: workspaces.status,
            workspaces: (workspaces.body?.workspaces ?? []).map((w: Record<string, unknown>) => ({ name: w.name, current: w.current, status: w.status, plan: w.plan })),
        },
        refreshWithoutCookie: failure(refreshWithoutCookie),
        refreshed: { status: refreshed.status, body: refreshed.body, cookies: cookieAttributes(refreshed.setCookie) },
        refreshedAgain: failure(refreshedAgain),
        withRenewedTokens: withRenewed.status,
        lockout: { attempts, lockedOut: failure(lockedOut), lockedUndecodable: failure(lockedUndecodable), lockedSkippedCharacters: failure(lockedSkippedCharacters) },
        xVersions: [...versions],
    };
}

// ------------------------------------------------------------------------------------------------------
// Scenario 2: an MCP provider with a preset OAuth client, through authorization, URL changes and deletion.

/** The fields of an MCP provider answer that the provider reads (or that tell the views apart). */
function mcpView(body: Record<string, unknown>, sentUrl: string, identifier: string) {
    return {
        id: idKind(body.id, identifier),
        name: body.name,
        author: body.author,
        type: body.type,
        server_identifier: body.server_identifier,
        server_url: body.server_url === difyMaskedServerUrl(sentUrl) ? "masked form of the URL sent" : body.server_url,
        icon: body.icon,
        configuration: present(body, "configuration"),
        authentication: present(body, "authentication"),
        is_dynamic_registration: present(body, "is_dynamic_registration"),
        is_team_authorization: body.is_team_authorization,
        masked_headers: present(body, "masked_headers"),
        tools: ((body.tools ?? []) as { name?: string }[]).map((tool) => tool.name),
    };
}

/**
 * The authorization URL's parameters Dify decides (client, redirect back to itself, PKCE method, a state).
 * Its endpoint and `scope` come from the MCP server's metadata, which the fake does not fetch: left out.
 */
function authorizationView(target: Target, answer: Answer) {
    if (typeof answer.body?.authorization_url !== "string") {
        return failure(answer);
    }
    const url = new URL(answer.body.authorization_url);
    const query = url.searchParams;
    return {
        status: answer.status,
        response_type: query.get("response_type"),
        client_id: query.get("client_id"),
        redirect_uri: query.get("redirect_uri")?.replace(target.url, "<dify>"),
        code_challenge_method: query.get("code_challenge_method"),
        code_challenge: /^[A-Za-z0-9_-]{43,128}$/.test(query.get("code_challenge") ?? "") ? "S256 challenge" : query.get("code_challenge"),
        state: (query.get("state") ?? "").length >= 16 ? "state" : query.get("state"),
    };
}

async function mcpProvider(target: Target) {
    const api = await login(target);
    const [url1, url2] = target.mcpUrls;
    const body = (overrides: Record<string, unknown> = {}) => ({
        server_url: url1,
        name: "ops",
        icon: "☁️",
        icon_type: "emoji",
        icon_background: "#E0F2FE",
        server_identifier: "ops",
        timeout: 30,
        sse_read_timeout: 300,
        headers: {},
        configuration: { timeout: 30, sse_read_timeout: 300 },
        authentication: { client_id: CLIENT_ID, client_secret: "" },
        ...overrides,
    });
    const created = await api.call("POST", MCP, body());
    const id = String(created.body?.id);
    const detail = async (sentUrl: string) => mcpView((await api.call("GET", `${MCP}/tools/${id}`)).body, sentUrl, "ops");
    const listing = async () => {
        const answer = await api.call("GET", `${MCP}/update/${id}`);
        return answer.status === 200 ? { status: 200, view: mcpView(answer.body, url1, "ops") } : failure(answer);
    };
    const authorize = async () => {
        const answer = await api.call("POST", `${MCP}/auth`, { provider_id: id });
        if (typeof answer.body?.authorization_url === "string") {
            await target.completeAuthorization(id, answer.body.authorization_url);
        }
        return answer;
    };

    const record: Record<string, unknown> = {
        created: { status: created.status, view: mcpView(created.body, url1, "ops") },
        detail: await detail(url1),
        listingBeforeAuthorization: await listing(),
    };
    const started = await api.call("POST", `${MCP}/auth`, { provider_id: id });
    record.authorizationUrl = authorizationView(target, started);
    await target.completeAuthorization(id, started.body.authorization_url);
    record.detailAfterConsent = await detail(url1);
    record.listingAfterConsent = await listing();
    record.detailAfterListing = await detail(url1);
    const whileAuthorized = await api.call("POST", `${MCP}/auth`, { provider_id: id });
    record.authorizeWhileAuthorized = { status: whileAuthorized.status, body: whileAuthorized.body };

    const forList = await api.call("GET", "/workspaces/current/tool-providers?type=mcp");
    record.toolProvidersTypeMcp = { status: forList.status, providers: (forList.body as Record<string, unknown>[]).map((p) => mcpView(p, url1, "ops")) };
    const allMcp = await api.call("GET", "/workspaces/current/tools/mcp");
    record.toolsMcp = { status: allMcp.status, providers: (allMcp.body as Record<string, unknown>[]).map((p) => mcpView(p, url1, "ops")) };
    record.badType = failure(await api.call("GET", "/workspaces/current/tool-providers?type=nope"));

    // Unique name, URL and identifier (create_provider's _check_provider_exists: name, then URL, then identifier).
    record.duplicates = {
        name: failure(await api.call("POST", MCP, body({ server_url: url2, server_identifier: "ops-2" }))),
        url: failure(await api.call("POST", MCP, body({ name: "ops 2", server_identifier: "ops-2" }))),
        identifier: failure(await api.call("POST", MCP, body({ name: "ops 2", server_url: url2 }))),
        invalidUrl: failure(await api.call("POST", MCP, body({ name: "ops 2", server_url: "ftp://example.com/mcp", server_identifier: "ops-2" }))),
    };

    // The masked client sent back with the URL placeholder (as Dify's UI does): the credentials become just the
    // client (tokens gone, `is_team_authorization` stays), and the client id stored is the masked text itself.
    const masked = (await api.call("GET", `${MCP}/tools/${id}`)).body.authentication;
    record.putMaskedClient = (await api.call("PUT", MCP, { ...body({ server_url: "[__HIDDEN__]", authentication: masked }), provider_id: id })).body;
    record.detailAfterMaskedClient = await detail(url1);
    record.listingWithoutTokens = await listing();
    record.authorizationUrlAfterMaskedClient = authorizationView(target, await api.call("POST", `${MCP}/auth`, { provider_id: id }));

    // The real client again (as the provider sends it), authorized again, then the MCP server revokes the grant:
    // listing fails; mcp/auth clears every credential.
    record.putRealClient = (await api.call("PUT", MCP, { ...body({ server_url: "[__HIDDEN__]" }), provider_id: id })).body;
    record.reauthorize = (await authorize()).status;
    record.listingReauthorized = await listing();
    await target.revokeMcpTokens(id);
    record.listingAfterRevocation = await listing();
    record.detailAfterRevocation = await detail(url1);
    record.authorizeAfterRevocation = failure(await api.call("POST", `${MCP}/auth`, { provider_id: id }));
    record.detailAfterFailedRefresh = await detail(url1);

    // Back to a preset client, then a new URL without `authentication`: Dify reconnects, meets OAuth and resets the
    // credentials (client included); mcp/auth then needs dynamic registration, which the server lacks.
    const { authentication: _omitted, ...withoutClient } = body();
    record.putClientAgain = (await api.call("PUT", MCP, { ...body({ server_url: "[__HIDDEN__]" }), provider_id: id })).status;
    record.putNewUrlWithoutClient = (await api.call("PUT", MCP, { ...withoutClient, server_url: url2, provider_id: id })).body;
    record.detailAfterNewUrl = await detail(url2);
    record.authorizeWithoutClient = failure(await api.call("POST", `${MCP}/auth`, { provider_id: id }));
    record.listingWithoutClient = await listing();
    // A new URL with the client in the same PUT keeps it.
    record.putNewUrlWithClient = (await api.call("PUT", MCP, { ...body(), provider_id: id })).body;
    record.detailAfterNewUrlWithClient = await detail(url1);
    record.authorizationUrlAgain = authorizationView(target, await api.call("POST", `${MCP}/auth`, { provider_id: id }));
    // Renaming onto another provider's name.
    const other = await api.call("POST", MCP, body({ name: "ops 2", server_url: url2, server_identifier: "ops-2" }));
    record.renameOntoOther = failure(await api.call("PUT", MCP, { ...body({ name: "ops 2", server_url: "[__HIDDEN__]" }), provider_id: id }));
    record.deleteOther = (await api.call("DELETE", MCP, { provider_id: other.body?.id })).body;

    record.delete = { status: (await api.call("DELETE", MCP, { provider_id: id })).status };
    record.deleteAgain = failure(await api.call("DELETE", MCP, { provider_id: id }));
    record.detailOfDeleted = failure(await api.call("GET", `${MCP}/tools/${id}`));
    record.listingOfDeleted = failure(await api.call("GET", `${MCP}/update/${id}`));
    record.authorizeDeleted = failure(await api.call("POST", `${MCP}/auth`, { provider_id: id }));
    record.deleteNotAUuid = failure(await api.call("DELETE", MCP, { provider_id: "not-a-uuid" }));
    record.listAfterDelete = (await api.call("GET", "/workspaces/current/tool-providers?type=mcp")).body;
    return record;
}

// ------------------------------------------------------------------------------------------------------
// Scenario 4: the model provider flow as dify-model-provider.ts calls it (before the apps, which need a model).

async function modelProvider(target: Target) {
    const api = await login(target);
    const record: Record<string, unknown> = {};
    const plugins = async () => {
        const answer = await api.call("GET", `${PLUGIN}/list?page=1&page_size=256`);
        return {
            status: answer.status,
            total: answer.body?.total,
            plugins: (answer.body?.plugins ?? []).map((p: Record<string, unknown>) => ({
                plugin_id: p.plugin_id,
                plugin_unique_identifier: /^langgenius\/tongyi:[^@]+@[0-9a-f]{64}$/.test(String(p.plugin_unique_identifier)) ? "tongyi identifier" : p.plugin_unique_identifier,
                installation_id: idKind(p.installation_id),
                version: typeof p.version,
            })),
        };
    };
    const providers = async () => {
        const answer = await api.call("GET", "/workspaces/current/model-providers");
        return {
            status: answer.status,
            data: (answer.body?.data ?? []).map((p: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
                provider: p.provider,
                preferred_provider_type: p.preferred_provider_type,
                supported_model_types: p.supported_model_types,
                custom_configuration: {
                    status: p.custom_configuration?.status,
                    current_credential_id: p.custom_configuration?.current_credential_id === null ? null : idKind(p.custom_configuration?.current_credential_id),
                    current_credential_name: p.custom_configuration?.current_credential_name,
                    available_credentials: (p.custom_configuration?.available_credentials ?? []).map((c: Record<string, unknown>) => ({
                        credential_id: idKind(c.credential_id),
                        credential_name: c.credential_name,
                    })),
                },
            })),
        };
    };
    const models = async (type: string) => {
        const answer = await api.call("GET", `/workspaces/current/models/model-types/${type}`);
        return {
            status: answer.status,
            // The stand-in's tongyi lists fewer models than the real plugin (and the fake): the ones the providers use.
            data: (answer.body?.data ?? []).map((p: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
                provider: p.provider,
                status: p.status,
                models: (p.models ?? [])
                    .filter((m: Record<string, unknown>) => ["qwen-plus", "text-embedding-v4"].includes(String(m.model)))
                    .map((m: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
                        model: m.model,
                        model_type: m.model_type,
                        status: m.status,
                        fetch_from: m.fetch_from,
                        callsTools: (m.features ?? []).some((f: string) => f === "tool-call" || f === "multi-tool-call"),
                        mode: m.model_properties?.mode ?? ABSENT,
                    })),
            })),
        };
    };
    const defaultModel = async (type: string) => {
        const answer = await api.call("GET", `/workspaces/current/default-model?model_type=${type}`);
        const data = answer.body?.data;
        return { status: answer.status, data: data === null ? null : { model: data?.model, model_type: data?.model_type, provider: data?.provider?.provider } };
    };
    const credential = async (id: string) => {
        const answer = await api.call("GET", `${CREDENTIALS}?credential_id=${id}`);
        return answer.status === 200 ? { status: 200, body: answer.body } : failure(answer);
    };

    record.pluginsBefore = await plugins();
    record.providersBefore = await providers();
    record.llmsBefore = await models("llm");
    record.defaultBefore = await defaultModel("llm");
    record.credentialsWithoutPlugin = failure(await api.call("POST", CREDENTIALS, { credentials: { dashscope_api_key: DASHSCOPE_KEY, use_international_endpoint: "false" }, name: "pulumi" }));

    const uploaded = await api.upload(`${PLUGIN}/upload/pkg`, "pkg", "langgenius-tongyi.difypkg", target.pluginPackage);
    record.upload = {
        status: uploaded.status,
        unique_identifier: /^langgenius\/tongyi:[^@]+@[0-9a-f]{64}$/.test(String(uploaded.body?.unique_identifier)) ? "tongyi identifier" : uploaded.body?.unique_identifier,
        manifest: typeof uploaded.body?.manifest,
    };

    const latest = await api.call("POST", `${PLUGIN}/list/latest-versions`, { plugin_ids: [TONGYI_PLUGIN, "langgenius/not-listed"] });
    const tongyi = latest.body?.versions?.[TONGYI_PLUGIN];
    record.latestVersions = {
        status: latest.status,
        ids: Object.keys(latest.body?.versions ?? {}).sort(),
        tongyi: tongyi && {
            plugin_id: tongyi.plugin_id,
            version: typeof tongyi.version,
            unique_identifier: /^langgenius\/tongyi:[^@]+@[0-9a-f]{64}$/.test(String(tongyi.unique_identifier)) ? "tongyi identifier" : tongyi.unique_identifier,
            status: tongyi.status,
        },
        notListed: latest.body?.versions?.["langgenius/not-listed"],
    };
    const install = await api.call("POST", `${PLUGIN}/install/marketplace`, { plugin_unique_identifiers: [tongyi?.unique_identifier] });
    record.install = { status: install.status, all_installed: install.body?.all_installed, task_id: idKind(install.body?.task_id) };
    const polls: unknown[] = [];
    for (let i = 0; i < 20; i++) {
        const task = (await api.call("GET", `${PLUGIN}/tasks/${install.body?.task_id}`)).body?.task;
        polls.push({
            status: task?.status,
            total_plugins: task?.total_plugins,
            completed_plugins: task?.completed_plugins,
            plugins: (task?.plugins ?? []).map((p: Record<string, unknown>) => ({ plugin_id: p.plugin_id, status: p.status, message: typeof p.message })),
        });
        if (task?.status !== "running") {
            break;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    record.taskPolls = polls;
    record.pluginsAfter = await plugins();
    const again = await api.call("POST", `${PLUGIN}/install/marketplace`, { plugin_unique_identifiers: [tongyi?.unique_identifier] });
    record.installAgain = { status: again.status, body: again.body };

    record.providersInstalled = await providers();
    record.defaultInstalledWithoutCredential = await defaultModel("llm");
    record.llmsWithoutCredential = await models("llm");
    record.badKey = failure(await api.call("POST", CREDENTIALS, { credentials: { dashscope_api_key: "bad-key", use_international_endpoint: "false" }, name: "pulumi" }));
    record.missingField = failure(await api.call("POST", CREDENTIALS, { credentials: { dashscope_api_key: DASHSCOPE_KEY }, name: "pulumi" }));
    const added = await api.call("POST", CREDENTIALS, { credentials: { dashscope_api_key: DASHSCOPE_KEY, use_international_endpoint: "false" }, name: "pulumi" });
    record.add = { status: added.status, body: added.body };
    record.providersWithCredential = await providers();
    const credentialId = String(
        ((await api.call("GET", "/workspaces/current/model-providers")).body?.data ?? []).find((p: { provider: string }) => p.provider === TONGYI)
            ?.custom_configuration?.current_credential_id,
    );
    const shown = await credential(credentialId);
    record.credential = {
        ...shown,
        keyIsObfuscated: (shown.body as { credentials?: Record<string, string> })?.credentials?.dashscope_api_key === obfuscateDashscopeKey(DASHSCOPE_KEY),
    };
    record.activeCredential = (await api.call("GET", CREDENTIALS)).body?.credentials?.dashscope_api_key === obfuscateDashscopeKey(DASHSCOPE_KEY);
    record.unknownCredential = (await credential(MISSING_UUID)) as Record<string, unknown>;
    (record.unknownCredential as { body: { message: string } }).body.message = String((record.unknownCredential as { body: { message: string } }).body?.message).replace(MISSING_UUID, "<id>");
    record.sameName = failure(await api.call("POST", CREDENTIALS, { credentials: { dashscope_api_key: DASHSCOPE_KEY, use_international_endpoint: "false" }, name: "pulumi" }));
    record.updateHiddenKey = (await api.call("PUT", CREDENTIALS, {
        credential_id: credentialId,
        credentials: { dashscope_api_key: "[__HIDDEN__]", use_international_endpoint: "true" },
        name: "pulumi",
    })).body;
    record.credentialAfterUpdate = await credential(credentialId);
    record.updateUnknown = failure(await api.call("PUT", CREDENTIALS, {
        credential_id: MISSING_UUID,
        credentials: { dashscope_api_key: DASHSCOPE_KEY, use_international_endpoint: "false" },
        name: "elsewhere",
    }));
    record.deleteUnknown = failure(await api.call("DELETE", CREDENTIALS, { credential_id: MISSING_UUID }));

    record.llms = await models("llm");
    record.embeddings = await models("text-embedding");
    const autoPicked = await defaultModel("llm");
    // Dify picks (and stores) the first model of the first provider when there is no default: which one depends on
    // the plugin's model list (the stand-in's is not the fake's), so only that it is one of tongyi's LLMs.
    record.defaultAutoPicked = { status: autoPicked.status, provider: autoPicked.data?.provider, model_type: autoPicked.data?.model_type, isModel: typeof autoPicked.data?.model };
    record.unknownModel = failure(await api.call("POST", "/workspaces/current/default-model", { model_settings: [{ model_type: "llm", provider: TONGYI, model: "qwen-nope" }] }));
    record.unknownProvider = failure(await api.call("POST", "/workspaces/current/default-model", { model_settings: [{ model_type: "llm", provider: "langgenius/nope/nope", model: "qwen-plus" }] }));
    record.setDefaults = (await api.call("POST", "/workspaces/current/default-model", {
        model_settings: [
            { model_type: "llm", provider: TONGYI, model: "qwen-plus" },
            { model_type: "text-embedding", provider: TONGYI, model: "text-embedding-v4" },
        ],
    })).body;
    record.defaultLlm = await defaultModel("llm");
    record.defaultEmbedding = await defaultModel("text-embedding");
    return record;
}

// ------------------------------------------------------------------------------------------------------
// Scenario 3: an agent-chat app (needs the model provider of scenario 4).

async function agentApp(target: Target) {
    const api = await login(target);
    const detailView = (body: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
        id: idKind(body.id),
        name: body.name,
        mode: body.mode,
        description: body.description,
        icon: body.icon,
        icon_type: present(body, "icon_type"),
        icon_background: body.icon_background,
        use_icon_as_answer_icon: body.use_icon_as_answer_icon,
        max_active_requests: present(body, "max_active_requests"),
        model_config: body.model_config && {
            model: body.model_config.model,
            pre_prompt: body.model_config.pre_prompt,
            opening_statement: body.model_config.opening_statement,
            prompt_type: body.model_config.prompt_type,
            agent_mode: body.model_config.agent_mode,
        },
    });
    // Apps are listed newest first by created_at, which Dify stores to the second: 1.1 s apart, their order is defined.
    const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1_100));
    const created = await api.call("POST", "/apps", { name: "Ops Agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5", description: "" });
    const id = String(created.body?.id);
    await nextSecond();
    const second = await api.call("POST", "/apps", { name: "ops agent (copy)", mode: "agent-chat", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5" });
    await nextSecond();
    const chat = await api.call("POST", "/apps", { name: "Ops Chat", mode: "chat" });
    const config = {
        model: { provider: TONGYI, name: "qwen-plus", mode: "chat", completion_params: { temperature: 0.2 } },
        pre_prompt: "You answer questions about ECS.",
        prompt_type: "simple",
        user_input_form: [],
        opening_statement: "",
        suggested_questions: [],
        agent_mode: {
            enabled: true,
            strategy: "function_call",
            max_iteration: 5,
            tools: [TOOL_NAMES[0]].map((tool) => ({
                provider_type: "mcp",
                provider_id: "ops",
                provider_name: "ops",
                tool_name: tool,
                tool_label: tool,
                tool_parameters: {},
                enabled: true,
            })),
        },
    };
    const record: Record<string, unknown> = {
        created: { status: created.status, ...detailView(created.body) },
        detailBeforeConfig: detailView((await api.call("GET", `/apps/${id}`)).body),
        modelConfig: (await api.call("POST", `/apps/${id}/model-config`, config)).body,
        unknownModel: failure(await api.call("POST", `/apps/${id}/model-config`, { ...config, model: { ...config.model, name: "qwen-nope" } })),
        detail: detailView((await api.call("GET", `/apps/${id}`)).body),
    };
    const full = await api.call("PUT", `/apps/${id}`, {
        name: "Ops Agent Renamed",
        description: "Answers about ECS",
        icon_type: "emoji",
        icon: "🛠️",
        icon_background: "#E0F2FE",
        use_icon_as_answer_icon: true,
        max_active_requests: 3,
    });
    record.renameWithEveryField = { status: full.status, ...detailView(full.body) };
    // 1.11+ (UpdateAppPayload): absent fields become ""/false/0 instead of failing.
    const partial = await api.call("PUT", `/apps/${id}`, { name: "Ops Agent Renamed", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5" });
    record.renameWithoutAnswerIcon = { status: partial.status, ...detailView(partial.body) };
    const names = async (query: string) => {
        const answer = await api.call("GET", `/apps?${query}`);
        return { status: answer.status, page: answer.body?.page, limit: answer.body?.limit, total: answer.body?.total, has_more: answer.body?.has_more, names: (answer.body?.data ?? []).map((a: { name: string }) => a.name) };
    };
    record.list = {
        agentByLowerCase: await names("page=1&limit=100&mode=agent-chat&name=ops%20agent"),
        agentByUpperCase: await names("page=1&limit=100&mode=agent-chat&name=AGENT"),
        everyMode: await names("page=1&limit=100&name=ops"),
        chatOnly: await names("page=1&limit=100&mode=chat&name=agent"),
        onePage: await names("page=1&limit=1&mode=agent-chat&name="),
        secondPage: await names("page=2&limit=1&mode=agent-chat&name=ops"),
        noMatch: await names("page=1&limit=100&mode=agent-chat&name=nothing-like-this"),
    };
    record.missing = {
        get: failure(await api.call("GET", `/apps/${MISSING_UUID}`)),
        put: failure(await api.call("PUT", `/apps/${MISSING_UUID}`, { name: "x" })),
        delete: failure(await api.call("DELETE", `/apps/${MISSING_UUID}`)),
        modelConfig: failure(await api.call("POST", `/apps/${MISSING_UUID}/model-config`, config)),
    };
    const notAUuid = await api.call("GET", "/apps/not-a-uuid");
    record.notAUuid = { status: notAUuid.status, contentType: notAUuid.contentType };
    const deleted = await api.call("DELETE", `/apps/${second.body?.id}`);
    record.deleteSecond = { status: deleted.status, body: deleted.body };
    record.getDeleted = failure(await api.call("GET", `/apps/${second.body?.id}`));
    record.deleteChat = (await api.call("DELETE", `/apps/${chat.body?.id}`)).status;
    return { record, appId: id };
}

// ------------------------------------------------------------------------------------------------------
// Scenario 5: the agent's chat stream with an MCP tool call, working and failing.

/** The stream as our smoke test reads it: the events' order (agent_message runs merged), tool calls, answer. */
function streamView(events: DifyStreamEvent[]) {
    const sequence: string[] = [];
    let answer = "";
    const thoughtIds = new Map<number, Set<string>>();
    const calls: Record<string, unknown>[] = [];
    let finalThought = "";
    for (const event of events) {
        if (event.event === "agent_message" || event.event === "message") {
            if (event.answer) {
                answer += String(event.answer);
                if (sequence[sequence.length - 1] !== "message") {
                    sequence.push("message");
                }
            }
            continue;
        }
        if (event.event === "agent_thought") {
            const position = Number(event.position);
            thoughtIds.set(position, new Set([...(thoughtIds.get(position) ?? []), String(event.id)]));
            const tool = String(event.tool ?? "");
            const observation = String(event.observation ?? "");
            sequence.push(`thought ${position}${tool ? ` calls ${tool}` : ""}${observation ? " with observation" : ""}${event.thought ? " with thought" : ""}`);
            if (event.thought) {
                finalThought = String(event.thought);
            }
            if (tool && observation) {
                const parsed = JSON.parse(observation) as Record<string, unknown>;
                const input = JSON.parse(String(event.tool_input)) as Record<string, unknown>;
                calls.push({
                    tool,
                    inputKeys: Object.keys(input),
                    observationKeys: Object.keys(parsed),
                    result: typeof parsed[tool] === "string" && (parsed[tool] as string).startsWith("tool invoke error:") ? "tool invoke error" : typeof parsed[tool],
                });
            }
            continue;
        }
        sequence.push(String(event.event));
    }
    const end = events.find((event) => event.event === "message_end") as { metadata?: { usage?: { total_tokens?: unknown } } } | undefined;
    return {
        sequence,
        calls,
        answerGiven: answer.length > 0,
        finalThoughtIsAnswer: finalThought === answer,
        oneIdPerThought: [...thoughtIds.values()].every((ids) => ids.size === 1),
        sameMessage: new Set(events.map((event) => `${event.conversation_id}|${event.message_id}|${event.task_id}`)).size === 1,
        usage: typeof end?.metadata?.usage?.total_tokens,
        errorEvents: events.filter((event) => event.event === "error").length,
    };
}

async function chatStream(target: Target, appId: string) {
    const api = await login(target);
    // An authorized MCP provider whose identifier the app's config names ("ops"), with its tools listed.
    const created = await api.call("POST", MCP, {
        server_url: target.mcpUrls[0],
        name: "ops",
        icon: "☁️",
        icon_type: "emoji",
        icon_background: "#E0F2FE",
        server_identifier: "ops",
        headers: {},
        configuration: { timeout: 30, sse_read_timeout: 300 },
        authentication: { client_id: CLIENT_ID, client_secret: "" },
    });
    const providerId = String(created.body?.id);
    const started = await api.call("POST", `${MCP}/auth`, { provider_id: providerId });
    await target.completeAuthorization(providerId, started.body.authorization_url);
    const listed = await api.call("GET", `${MCP}/update/${providerId}`);
    const session = await connectToDify({ url: target.url }, ADMIN);
    const run = async () => {
        const events: DifyStreamEvent[] = [];
        // As scripts/smoke.ts sends it: the saved config ({}), streaming (agent apps refuse blocking mode).
        await session.stream(`/apps/${appId}/chat-messages`, { inputs: {}, query: "How many ECS instances are in cn-hangzhou?", model_config: {}, response_mode: "streaming" }, (event) => {
            events.push(event);
        }, 120_000);
        return streamView(events);
    };
    const record: Record<string, unknown> = {
        toolsListed: listed.body?.tools?.map((tool: { name: string }) => tool.name),
        blocking: failure(await api.call("POST", `/apps/${appId}/chat-messages`, { inputs: {}, query: "hello", model_config: {} })),
        working: await run(),
    };
    await target.setToolFailure(true);
    try {
        record.failing = await run();
    } finally {
        await target.setToolFailure(false);
    }
    record.deleteProvider = (await api.call("DELETE", MCP, { provider_id: providerId })).status;
    return record;
}

// ------------------------------------------------------------------------------------------------------
// Scenario 6: removing the model provider (DifyModelProvider.delete) and what Dify shows afterwards.

async function modelProviderRemoval(target: Target) {
    const api = await login(target);
    const credentialId = ((await api.call("GET", "/workspaces/current/model-providers")).body?.data ?? []).find((p: { provider: string }) => p.provider === TONGYI)
        ?.custom_configuration?.current_credential_id;
    const deleted = await api.call("DELETE", CREDENTIALS, { credential_id: credentialId });
    const record: Record<string, unknown> = {
        deleteCredential: { status: deleted.status, body: deleted.body },
        providersAfterCredential: ((await api.call("GET", "/workspaces/current/model-providers")).body?.data ?? []).map((p: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
            provider: p.provider,
            status: p.custom_configuration?.status,
            current_credential_id: p.custom_configuration?.current_credential_id,
        })),
        // The default model record stays while the plugin is there.
        defaultAfterCredential: (await api.call("GET", "/workspaces/current/default-model?model_type=llm")).body?.data?.model,
    };
    const installation = (await api.call("GET", `${PLUGIN}/list?page=1&page_size=256`)).body?.plugins?.find((p: { plugin_id: string }) => p.plugin_id === TONGYI_PLUGIN)
        ?.installation_id;
    const uninstalled = await api.call("POST", `${PLUGIN}/uninstall`, { plugin_installation_id: installation });
    record.uninstall = { status: uninstalled.status, body: uninstalled.body };
    record.pluginsAfter = (await api.call("GET", `${PLUGIN}/list?page=1&page_size=256`)).body;
    record.providersAfter = (await api.call("GET", "/workspaces/current/model-providers")).body;
    record.defaultAfter = (await api.call("GET", "/workspaces/current/default-model?model_type=llm")).body;
    record.llmsAfter = (await api.call("GET", "/workspaces/current/models/model-types/llm")).body;
    record.deleteCredentialAfter = failure(await api.call("DELETE", CREDENTIALS, { credential_id: credentialId }));
    return record;
}

/** With DIFY_AGREEMENT_DUMP=<folder>, both records of each scenario are written there (<name>.fake.json, .real.json). */
function dump(name: string, fakeRecord: unknown, realRecord: unknown): void {
    const folder = process.env.DIFY_AGREEMENT_DUMP;
    if (folder) {
        fs.mkdirSync(folder, { recursive: true });
        fs.writeFileSync(`${folder}/${name}.fake.json`, JSON.stringify(fakeRecord, null, 2) + "\n");
        fs.writeFileSync(`${folder}/${name}.real.json`, JSON.stringify(realRecord, null, 2) + "\n");
    }
}

// ------------------------------------------------------------------------------------------------------

describe(`the fake Dify console (version ${VERSION}) agrees with Dify ${VERSION}`, () => {
    let dify: RealDify | undefined;
    let fake: DifyConsoleServer | undefined;
    const mcpServers: McpOAuthServer[] = [];
    let real: Target;
    let fakeTarget: Target;
    let appIds: { fake: string; real: string };

    beforeAll(async () => {
        dify = await startRealDify({ initPassword: INIT_PASSWORD });
        console.log(`real Dify ${dify.url} timings (s): ${JSON.stringify(dify.timings)}`);
        const realDify = dify;
        // Two MCP servers like Alibaba's: OAuth with a preset client (the RAM app) whose redirect is Dify's callback.
        for (let i = 0; i < 2; i++) {
            mcpServers.push(
                await startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris: [`${realDify.url}/console/api/mcp/oauth/callback`] }] }),
            );
        }
        const pluginPackage = fs.readFileSync(String(realDify.pluginDaemon?.packagePath));
        real = {
            kind: "real",
            url: realDify.url,
            mcpUrls: [mcpServers[0].mcpUrl, mcpServers[1].mcpUrl],
            completeAuthorization: async (_providerId, authorizationUrl) => {
                const server = mcpServers.find((candidate) => authorizationUrl.startsWith(candidate.url)) ?? mcpServers[0];
                const redirect = await server.approve(authorizationUrl);
                const callback = await fetch(redirect, { redirect: "manual" });
                await callback.text();
                if (callback.status !== 302) {
                    throw new Error(`Dify's OAuth callback answered HTTP ${callback.status}`);
                }
            },
            revokeMcpTokens: async () => {
                for (const server of mcpServers) {
                    server.revokeTokens();
                }
            },
            setToolFailure: async (failing) => {
                for (const server of mcpServers) {
                    server.setToolFailure(failing ? { mode: "jsonrpc-error" } : null);
                }
            },
            pluginPackage,
        };
        fake = await startDifyConsoleServer({ version: VERSION, initPassword: INIT_PASSWORD, dynamicClientRegistration: false });
        const fakeServer = fake;
        fakeTarget = {
            kind: "fake",
            url: fake.url,
            // Loopback addresses nothing listens on: the fake never connects to them.
            mcpUrls: ["http://127.0.0.1:9/accounts/1234567890/custom/ops/id/AbCd/mcp", "http://127.0.0.1:9/accounts/1234567890/custom/ops/id/EfGh/mcp"],
            completeAuthorization: async (providerId) => fakeServer.authorizeMcpProvider(providerId, TOOL_NAMES),
            revokeMcpTokens: async (providerId) => fakeServer.revokeMcpTokens(providerId),
            // The fake has no MCP server: its scripted stream plays a failing call instead.
            setToolFailure: async (failing) => fakeServer.setChatScript(failing ? "tool-error" : "tool-call"),
            pluginPackage,
        };
    }, 600_000);

    afterAll(async () => {
        await Promise.all(mcpServers.map((server) => server.close()));
        await fake?.close();
        await dify?.close();
    }, 120_000);

    /** Runs a scenario against the fake, then the real server (never at once: the fake's script is shared). */
    async function both<T>(name: string, scenario: (target: Target) => Promise<T>): Promise<{ fake: T; real: T }> {
        const fakeRecord = await scenario(fakeTarget);
        const realRecord = await scenario(real).catch((err: Error) => {
            throw new Error(`${err.message}\nThe real Dify's log ends:\n${dify?.logTail(40)}`);
        });
        dump(name, fakeRecord, realRecord);
        return { fake: fakeRecord, real: realRecord };
    }

    it("1. probe, init, setup, login, CSRF and refresh", async () => {
        const records = await both("1-setup", probeAndSetup);
        expect(records.real.setup).toMatchObject({ status: 201, body: { result: "success" } });
        expect(records.real.login.status).toBe(200);
        expect(Object.keys(records.real.login.cookies).sort()).toEqual(["access_token", "csrf_token", "refresh_token"]);
        expect(records.real.xVersions).toEqual([VERSION]);
        expect(records.fake).toEqual(records.real);
    }, 120_000);

    it("2. an MCP provider with a preset OAuth client: views, authorization, URL changes, revoked tokens, deletion", async () => {
        const records = await both("2-mcp-provider", mcpProvider);
        expect(records.real.created).toMatchObject({ status: 200, view: { id: "uuid", authentication: { client_id: maskDifyCredential(CLIENT_ID) } } });
        expect(records.real.listingAfterConsent).toMatchObject({ status: 200, view: { tools: TOOL_NAMES } });
        expect(records.real.authorizationUrl).toMatchObject({ client_id: CLIENT_ID, redirect_uri: "<dify>/console/api/mcp/oauth/callback" });
        expect(records.fake).toEqual(records.real);
    }, 300_000);

    it("4. the model provider flow: plugin install from the marketplace, credentials, default models", async () => {
        const records = await both("4-model-provider", modelProvider);
        expect(records.real.pluginsAfter).toMatchObject({ total: 1, plugins: [{ plugin_id: TONGYI_PLUGIN }] });
        expect(records.real.credential).toMatchObject({ status: 200, keyIsObfuscated: true });
        expect(records.real.defaultLlm).toEqual({ status: 200, data: { model: "qwen-plus", model_type: "llm", provider: TONGYI } });
        expect(records.fake).toEqual(records.real);
    }, 300_000);

    it("3. an agent-chat app: create, model config, rename with and without every field, search, missing apps", async () => {
        let ids: Partial<Record<Target["kind"], string>> = {};
        const records = await both("3-agent-app", async (target) => {
            const { record, appId } = await agentApp(target);
            ids = { ...ids, [target.kind]: appId };
            return record;
        });
        appIds = { fake: String(ids.fake), real: String(ids.real) };
        expect(records.real.detail).toMatchObject({ model_config: { model: { provider: TONGYI, name: "qwen-plus" }, agent_mode: { strategy: "function_call" } } });
        expect(records.real.missing).toMatchObject({ get: { status: 404, body: { code: "app_not_found" } } });
        expect(records.fake).toEqual(records.real);
    }, 300_000);

    it("5. the agent's chat stream: an MCP tool call, then a failing one (an observation, no error event)", async () => {
        expect(appIds, "scenario 3 created the app").toBeDefined();
        const fakeRecord = await chatStream(fakeTarget, appIds.fake);
        const realRecord = await chatStream(real, appIds.real);
        dump("5-chat-stream", fakeRecord, realRecord);
        expect(realRecord.working).toMatchObject({ calls: [{ tool: TOOL_NAMES[0], result: "string" }], errorEvents: 0, answerGiven: true });
        expect(realRecord.failing).toMatchObject({ calls: [{ tool: TOOL_NAMES[0], result: "tool invoke error" }], errorEvents: 0 });
        expect(fakeRecord).toEqual(realRecord);
    }, 300_000);

    it("6. removing the model provider: credential, plugin, and what is left", async () => {
        const records = await both("6-model-provider-removal", modelProviderRemoval);
        expect(records.real.deleteCredential).toMatchObject({ status: 204 });
        expect(records.real.pluginsAfter).toEqual({ plugins: [], total: 0 });
        expect(records.fake).toEqual(records.real);
    }, 300_000);
});
