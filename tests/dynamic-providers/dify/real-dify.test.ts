// Every Dify dynamic provider, run the engine's way (serialized, in a provider host process), against Dify
// 1.14.1's REAL API server (tests/harness/real-dify.ts) instead of the fake: check, create, read, diff, update,
// out-of-band drift, delete, adoption and lost answers, plus the HTTP calls and wall time of each operation.
//
// Topology (all on 127.0.0.1), the deployed stack's shape with nginx in front of Dify:
//   provider host ──► body capture ──► recording proxy (counts, faults) ──► Dify's API (gunicorn)
// Dify is told the capture's address as CONSOLE_API_URL, so the OAuth redirect URI Dify uses is the one our
// providers compute from difyUrl, and the consent redirect (MCP OAuth server → callback) passes the proxies too.
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { difyAgentAppProvider, DifyAgentAppInputs, DifyAgentAppOutputs } from "../../../dynamic-providers/dify/agent-app";
import { difyMaskedServerUrl } from "../../../dynamic-providers/dify/masks";
import { connectToDify, DifyConsole } from "../../../dynamic-providers/dify/session";
import { runDifyPython } from "../../harness/dify-python";
import { HostedProvider, startHostedProvider } from "../../harness/engine-provider";
import { RealDify, startRealDify } from "../../harness/real-dify";
import { RecordingProxy, startRecordingProxy } from "../../harness/recording-proxy";
import { McpOAuthServer, startMcpOAuthServer } from "../../servers/mcp-oauth-server";

const INIT_PASSWORD = "init-Passw0rd-9";
const EMAIL = "ops@example.com";
const PASSWORDS = ["Adm1n-Passw0rd-1", "Adm1n-Passw0rd-2", "Adm1n-Passw0rd-3"];
const CLIENT_ID = "4071151845732613353";
const OTHER_CLIENT_ID = "5000000000000000001";
const TOOLS = ["Ecs-DescribeInstances", "Ecs-DescribeRegions"];
const MCP = "/workspaces/current/tool-provider/mcp";
const CREDENTIALS = "/workspaces/current/model-providers/langgenius/tongyi/tongyi/credentials";
const GOOD_KEY = "sk-real-test-0123456789abcdef";
const OTHER_KEY = "sk-real-test-fedcba9876543210";

type Props = Record<string, unknown>;
type Failures = { property: string; reason: string }[];

// ------------------------------------------------------------------------------------------------------
// The set-up shared by the file.

let dify: RealDify;
let proxy: RecordingProxy;
let capture: BodyCapture;
let mcp: McpOAuthServer;
let mcp2: McpOAuthServer;
/** The admin password Dify has now (the admin tests change it). */
let adminPassword = PASSWORDS[0];
const hosts: Record<string, HostedProvider> = {};
const PROVIDERS = {
    readiness: ["dynamic-providers/dify/readiness", "difyReadinessProvider"],
    admin: ["dynamic-providers/dify/admin", "difyAdminProvider"],
    model: ["dynamic-providers/dify/model-provider", "difyModelProviderProvider"],
    mcp: ["dynamic-providers/dify/mcp-tool-provider", "difyMcpToolProviderProvider"],
    app: ["dynamic-providers/dify/agent-app", "difyAgentAppProvider"],
} as const;
type Kind = keyof typeof PROVIDERS;

interface CapturedRequest {
    method: string;
    path: string;
    body: string;
}

interface BodyCapture {
    url: string;
    requests: CapturedRequest[];
    close(): Promise<void>;
}

/** Forwards everything to `target`, keeping each request's body; a connection reset upstream is passed on. */
async function startBodyCapture(target: string): Promise<BodyCapture> {
    const requests: CapturedRequest[] = [];
    const upstream = new URL(target);
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
            const body = Buffer.concat(chunks);
            requests.push({ method: req.method ?? "GET", path: (req.url ?? "").split("?")[0], body: body.toString("utf8") });
            const forward = http.request(
                { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
                (answer) => {
                    res.writeHead(answer.statusCode ?? 502, answer.headers);
                    answer.pipe(res);
                },
            );
            forward.on("error", () => req.socket.destroy());
            forward.end(body);
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

beforeAll(async () => {
    proxy = await startRecordingProxy();
    capture = await startBodyCapture(proxy.url);
    const redirectUris = [`${capture.url}/console/api/mcp/oauth/callback`];
    [mcp, mcp2] = await Promise.all([
        startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris }, { clientId: OTHER_CLIENT_ID, redirectUris }] }),
        startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris }] }),
    ]);
    for (const [kind, [module, exportName]] of Object.entries(PROVIDERS)) {
        hosts[kind] = await startHostedProvider({ module, exportName });
    }
    // Not set up: DifyAdmin does that through Dify's own /init and /setup.
    dify = await startRealDify({ initPassword: INIT_PASSWORD, env: { CONSOLE_API_URL: capture.url } });
    proxy.target = dify.url;
    console.log(`real Dify ${dify.version} at ${dify.url} (behind ${capture.url}), started in ${dify.timings.total} s: ${JSON.stringify(dify.timings)}`);
}, 600_000);

afterAll(async () => {
    printBench();
    await Promise.all(Object.values(hosts).map((host) => host.close()));
    await dify?.close();
    await Promise.all([mcp?.close(), mcp2?.close(), capture?.close(), proxy?.close()]);
}, 120_000);

// ------------------------------------------------------------------------------------------------------
// Calls, measured: the console-API calls each operation made (counted by the proxy) and its wall time.

interface Measured {
    resource: string;
    operation: string;
    ms: number;
    auth: number;
    read: number;
    write: number;
    writes: string[];
}
const bench: Measured[] = [];

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function measured<T>(resource: string, operation: string, run: () => Promise<T>): Promise<T> {
    const from = proxy.calls.length;
    const started = Date.now();
    try {
        return await run();
    } finally {
        const ms = Date.now() - started;
        await sleep(30); // the proxy records a call when the answer has ended
        const calls = proxy.calls.slice(from);
        bench.push({
            resource,
            operation,
            ms,
            auth: calls.filter((call) => call.kind === "auth").length,
            read: calls.filter((call) => call.kind === "read").length,
            write: calls.filter((call) => call.kind === "write").length,
            writes: calls
                .filter((call) => call.kind === "write")
                .map((call) => `${call.route.replace(" /workspaces/current/", " ~/")}${call.status >= 400 ? ` ${call.status}` : ""}`),
        });
    }
}

/** Only the calls after `from`, as "ROUTE STATUS". */
function callsSince(from: number): string[] {
    return proxy.calls.slice(from).map((call) => `${call.route} ${call.status}`);
}

function printBench(): void {
    if (bench.length === 0) {
        return;
    }
    const header = ["resource", "operation", "ms", "auth", "read", "write", "writes"];
    const rows = bench.map((m) => [m.resource, m.operation, String(m.ms), String(m.auth), String(m.read), String(m.write), m.writes.join(", ")]);
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (column === 6 ? 0 : row[column].length))));
    const line = (cells: string[]) =>
        cells.map((cell, column) => (column === 6 ? cell : column >= 2 && column <= 5 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join("  ");
    console.log(
        [`Dify ${dify?.version ?? "?"} (real API server): console-API calls and wall time per provider operation (~ = /workspaces/current)`, line(header), ...rows.map(line)].join("\n"),
    );
}

// ------------------------------------------------------------------------------------------------------
// Helpers.

function call<T>(kind: Kind, method: string, ...args: unknown[]): Promise<T> {
    return hosts[kind].call<T>(method, ...args);
}

async function checked(kind: Kind, inputs: Props): Promise<Props> {
    const result = await call<{ inputs?: Props; failures?: Failures }>(kind, "check", {}, inputs);
    expect(result.failures ?? []).toEqual([]);
    return result.inputs as Props;
}

async function failuresOf(kind: Kind, inputs: Props): Promise<Failures> {
    return (await call<{ failures?: Failures }>(kind, "check", {}, inputs)).failures ?? [];
}

async function diffOf(kind: Kind, id: string, olds: Props, inputs: Props): Promise<{ changes?: boolean; replaces?: string[] }> {
    return call(kind, "diff", id, olds, inputs);
}

/** The keys whose values differ between two property bags. */
function changedKeys(before: Props, after: Props): string[] {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).sort();
}

function messageOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

/** A session of our own, straight to Dify (not through the proxies): what a person does in Dify's console. */
function outOfBand(): Promise<DifyConsole> {
    return connectToDify({ url: dify.url, retryDelaysMs: [] }, { email: EMAIL, password: adminPassword });
}

function connection(): Props {
    return { difyUrl: capture.url, adminEmail: EMAIL, adminPassword };
}

/** A person approves the consent page, then their browser follows the redirect to Dify's callback. */
async function approve(server: McpOAuthServer, authorizationUrl: string): Promise<void> {
    const redirect = await server.approve(authorizationUrl);
    expect(redirect.startsWith(`${capture.url}/console/api/mcp/oauth/callback?`)).toBe(true);
    const answer = await fetch(redirect, { redirect: "manual" });
    expect(answer.status).toBe(302);
    // Dify exchanged the code and sends the browser to its web app (CONSOLE_WEB_URL).
    expect(answer.headers.get("location")).toBe(`${dify.url}/oauth-callback`);
}

async function clearLoginLockout(): Promise<void> {
    await dify.redis("del", `login_error_rate_limit:${EMAIL}`);
}

// ======================================================================================================
// DifyReadiness

describe("DifyReadiness against the real Dify", () => {
    let inputs: Props;
    let outs: Props;
    const id = "i-real-dify-ready";

    it("rejects bad inputs at check, naming each property", async () => {
        const failures = await failuresOf("readiness", { difyUrl: "ftp://127.0.0.1", instanceId: "", timeoutSeconds: 0, pollIntervalSeconds: 5 });
        expect(failures.map((failure) => failure.property)).toEqual(["difyUrl", "instanceId", "timeoutSeconds"]);
    });

    it("create waits for Dify and records what it reports; read equals create; a no-op diff is empty", async () => {
        inputs = { difyUrl: capture.url, instanceId: id.replace(/-ready$/, ""), timeoutSeconds: 60, pollIntervalSeconds: 0.5 };
        const created = await measured("DifyReadiness", "create", () => call<{ id: string; outs: Props }>("readiness", "create", inputs));
        expect(created.id).toBe(id);
        outs = created.outs;
        expect(outs).toMatchObject({ setupStep: "not_started", difyVersion: "1.14.1" });
        const read = await measured("DifyReadiness", "read", () => call<{ id: string; props: Props }>("readiness", "read", id, outs));
        expect(read).toEqual({ id, props: outs });
        expect(await diffOf("readiness", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("updates the timeout in place without calling Dify", async () => {
        const news = { ...inputs, timeoutSeconds: 120 };
        expect(await diffOf("readiness", id, outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        const from = proxy.calls.length;
        const updated = await measured("DifyReadiness", "update", () => call<{ outs: Props }>("readiness", "update", id, outs, news));
        expect(updated.outs).toEqual({ ...outs, timeoutSeconds: 120 });
        expect(callsSince(from)).toEqual([]);
        outs = updated.outs;
        inputs = news;
    });

    // The out-of-band change for readiness (Dify set up since the wait) is read after DifyAdmin's create, below.
    afterAll(() => {
        readinessState = { id, outs, inputs };
    });
});

let readinessState: { id: string; outs: Props; inputs: Props };

// ======================================================================================================
// DifyAdmin

describe("DifyAdmin against the real Dify", () => {
    let inputs: Props;
    let outs: Props;
    const desired = (overrides: Props = {}): Props => ({
        difyUrl: capture.url,
        email: EMAIL,
        name: "Ops Admin",
        password: PASSWORDS[0],
        initPassword: INIT_PASSWORD,
        readyTimeoutSeconds: 30,
        readyPollSeconds: 1,
        ...overrides,
    });

    it("rejects bad inputs at check, naming each property and never echoing the password", async () => {
        const failures = await failuresOf("admin", desired({ email: "not-an-email", name: "ab", password: "short1" }));
        expect(failures.map((failure) => failure.property)).toEqual(["email", "name", "password"]);
        expect(JSON.stringify(failures)).not.toContain("short1");
    });

    it("refuses a wrong init password through Dify's /init, leaving Dify not set up", async () => {
        const from = proxy.calls.length;
        const error = await measured("DifyAdmin", "create (wrong initPassword)", () =>
            call("admin", "create", desired({ initPassword: "not-the-init-password" })).catch((err: Error) => err),
        );
        expect(messageOf(error)).toMatch(/POST \/console\/api\/init failed \(HTTP 401 authentication_error\): Unauthorized\. The init password does not match Dify's INIT_PASSWORD\.$/);
        expect(messageOf(error)).not.toContain("not-the-init-password");
        expect(callsSince(from)).toEqual(["GET /setup 200", "POST /init 401"]);
        expect(await dify.sql("select count(*) from accounts")).toBe("0");
    });

    it("sets Dify up through /init and /setup; read equals create; a no-op diff is empty", async () => {
        inputs = await checked("admin", desired());
        const created = await measured("DifyAdmin", "create (setup)", () => call<{ id: string; outs: Props }>("admin", "create", inputs));
        expect(created.id).toBe(EMAIL);
        outs = created.outs;
        expect(outs).toMatchObject({ setupMode: "created", loginVerified: true, difyVersion: "1.14.1" });
        expect(await dify.sql("select email || '|' || name from accounts")).toBe(`${EMAIL}|Ops Admin`);
        expect(await dify.sql("select role from tenant_account_joins")).toBe("owner");

        const read = await measured("DifyAdmin", "read", () => call<{ id: string; props: Props }>("admin", "read", EMAIL, outs));
        expect(read).toEqual({ id: EMAIL, props: outs });
        expect(await diffOf("admin", EMAIL, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("DifyReadiness: a refresh now reports the setup done since the wait", async () => {
        const { id, outs: readinessOuts, inputs: readinessInputs } = readinessState;
        const read = await call<{ id: string; props: Props }>("readiness", "read", id, readinessOuts);
        expect(changedKeys(readinessOuts, read.props)).toEqual(["setupStep"]);
        expect(read.props.setupStep).toBe("finished");
        // An output, not an input: nothing to do for `up`.
        expect(await diffOf("readiness", id, read.props, readinessInputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        // Nothing to delete, twice.
        await call("readiness", "delete", id, read.props);
        await call("readiness", "delete", id, read.props);
    });

    it("renames the admin in place (one key)", async () => {
        const news = await checked("admin", desired({ name: "Cloud Ops Admin" }));
        expect(await diffOf("admin", EMAIL, outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        const from = proxy.calls.length;
        outs = (await measured("DifyAdmin", "update (name)", () => call<{ outs: Props }>("admin", "update", EMAIL, outs, news))).outs;
        expect(callsSince(from).filter((c) => !c.startsWith("GET /setup") && !c.startsWith("POST /login"))).toEqual(["POST /account/name 200"]);
        expect((await (await outOfBand()).get<{ name: string }>("/account/profile")).name).toBe("Cloud Ops Admin");
        inputs = news;
    });

    it("changes the password in place: the new one logs in, the old one no longer does", async () => {
        const news = await checked("admin", desired({ name: "Cloud Ops Admin", password: PASSWORDS[1] }));
        outs = (await measured("DifyAdmin", "update (password)", () => call<{ outs: Props }>("admin", "update", EMAIL, outs, news))).outs;
        expect(outs.loginVerified).toBe(true);
        adminPassword = PASSWORDS[1];
        expect((await (await outOfBand()).get<{ email: string }>("/account/profile")).email).toBe(EMAIL);
        const old = await connectToDify({ url: dify.url }, { email: EMAIL, password: PASSWORDS[0] }).catch((err: Error) => err);
        expect(messageOf(old)).toMatch(/HTTP 401 authentication_failed\): Invalid email or password/);
        inputs = news;
        await clearLoginLockout();
    });

    it("reads a rename made in Dify's console as drift of `name`", async () => {
        await (await outOfBand()).post("/account/name", { name: "Renamed In Console" });
        const read = await call<{ props: Props }>("admin", "read", EMAIL, outs);
        expect(changedKeys(outs, read.props)).toEqual(["name"]);
        expect(read.props.name).toBe("Renamed In Console");
        expect(await diffOf("admin", EMAIL, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        outs = (await call<{ outs: Props }>("admin", "update", EMAIL, read.props, inputs)).outs;
        expect((await (await outOfBand()).get<{ name: string }>("/account/profile")).name).toBe("Cloud Ops Admin");
    });

    it("reads a password changed in Dify's console as loginVerified: false, and the configured new one repairs it", async () => {
        await (await outOfBand()).post("/account/password", { password: PASSWORDS[1], new_password: PASSWORDS[2], repeat_new_password: PASSWORDS[2] });
        adminPassword = PASSWORDS[2];
        const read = await call<{ props: Props }>("admin", "read", EMAIL, outs);
        expect(changedKeys(outs, read.props)).toEqual(["loginVerified"]);
        expect(read.props.loginVerified).toBe(false);
        expect(await diffOf("admin", EMAIL, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        // The person puts the new password in the stack's config; `up` logs in with it and changes nothing else.
        const news = await checked("admin", desired({ name: "Cloud Ops Admin", password: PASSWORDS[2] }));
        outs = (await call<{ outs: Props }>("admin", "update", EMAIL, read.props, news)).outs;
        expect(outs).toMatchObject({ loginVerified: true, password: PASSWORDS[2] });
        inputs = news;
        await clearLoginLockout();
    });

    it("adopts an instance that is already set up when the credentials log in (renaming to the desired name)", async () => {
        const adopting = await checked("admin", desired({ name: "Adopted Admin", password: PASSWORDS[2] }));
        const from = proxy.calls.length;
        const adopted = await measured("DifyAdmin", "create (adopt)", () => call<{ id: string; outs: Props }>("admin", "create", adopting));
        expect(adopted).toMatchObject({ id: EMAIL, outs: { setupMode: "adopted", loginVerified: true } });
        expect(callsSince(from)).toEqual(["GET /setup 200", "POST /login 200", "GET /account/profile 200", "POST /account/name 200"]);
        expect((await (await outOfBand()).get<{ name: string }>("/account/profile")).name).toBe("Adopted Admin");
    });

    it("refuses to adopt with a password that does not log in, after exactly one attempt", async () => {
        const from = proxy.calls.length;
        const error = await call("admin", "create", desired({ password: "Wr0ng-Passw0rd-0" })).catch((err: Error) => err);
        expect(messageOf(error)).toMatch(/is already set up, and the admin credentials given for ops@example\.com do not log in, so it cannot be adopted/);
        expect(messageOf(error)).toMatch(/HTTP 401 authentication_failed\): Invalid email or password\. Not retried.*[^.]\.$/);
        expect(messageOf(error)).not.toContain("Wr0ng-Passw0rd-0");
        expect(callsSince(from).filter((c) => c.startsWith("POST /login"))).toEqual(["POST /login 401"]);
        await clearLoginLockout();
    });

    it("delete leaves the account (Dify cannot be un-set-up), twice", async () => {
        const from = proxy.calls.length;
        await measured("DifyAdmin", "delete", () => call("admin", "delete", EMAIL, outs));
        await call("admin", "delete", EMAIL, outs);
        expect(callsSince(from)).toEqual([]);
        expect(await dify.sql(`select count(*) from accounts where email = '${EMAIL}'`)).toBe("1");
    });
});

// ======================================================================================================
// DifyModelProvider

describe("DifyModelProvider against the real Dify", () => {
    let inputs: Props;
    let outs: Props;
    const ID = "langgenius/tongyi/tongyi";
    const daemon = () => dify.pluginDaemon!;
    const desired = (overrides: Props = {}): Props => ({ ...connection(), dashscopeApiKey: GOOD_KEY, installPollSeconds: 0.2, ...overrides });
    const shownKey = async () =>
        (await (await outOfBand()).get<{ credentials: Record<string, string> }>(CREDENTIALS, { credential_id: String(outs.credentialId) })).credentials;

    it("rejects bad inputs at check, naming each property", async () => {
        const failures = await failuresOf("model", desired({ dashscopeApiKey: "", llmModel: "qwen plus!", installPollSeconds: 0 }));
        expect(failures.map((failure) => failure.property)).toEqual(["dashscopeApiKey", "llmModel", "installPollSeconds"]);
    });

    it("says why when the marketplace lists no tongyi: both causes, one closing period, nothing installed", async () => {
        await daemon().configure({ marketplaceListsTongyi: false });
        try {
            const answer = await (await outOfBand()).post("/workspaces/current/plugin/list/latest-versions", { plugin_ids: ["langgenius/tongyi"] });
            // Reached, but not listed (an unreachable marketplace answers {"versions": {}}: model-provider-marketplace.real.test.ts).
            expect(answer).toEqual({ versions: { "langgenius/tongyi": null } });
            await daemon().clearCalls();
            const error = await call("model", "create", await checked("model", desired())).catch((err: Error) => err);
            const message = messageOf(error);
            expect(message).toMatch(/lists no langgenius\/tongyi\. Either the Dify host cannot reach the plugin marketplace .*check MARKETPLACE_API_URL/);
            expect(message).toMatch(/or the marketplace does not list the plugin\. Give a \.difypkg file of the plugin as pluginPackagePath instead\.$/);
            expect(message).not.toMatch(/\.\./);
            expect((await daemon().calls()).filter((c) => /install/.test(c.path))).toEqual([]);
        } finally {
            await daemon().configure({ marketplaceListsTongyi: true });
        }
    });

    it("installs tongyi from the marketplace, saves the key, sets the defaults; read equals create; a no-op diff is empty", async () => {
        inputs = await checked("model", desired());
        const created = await measured("DifyModelProvider", "create (install)", () => call<{ id: string; outs: Props }>("model", "create", inputs));
        expect(created.id).toBe(ID);
        outs = created.outs;
        expect(outs).toMatchObject({ pluginInstalledByPulumi: true, llmModel: "qwen-plus", embeddingModel: "text-embedding-v4", difyVersion: "1.14.1" });
        expect(String(outs.pluginUniqueIdentifier)).toMatch(/^langgenius\/tongyi:[0-9.]+@[0-9a-f]{64}$/);
        expect(await shownKey()).toEqual({ dashscope_api_key: "sk-rea************ef", use_international_endpoint: "false" });
        const session = await outOfBand();
        expect((await session.get<{ data: { model: string } }>("/workspaces/current/default-model", { model_type: "llm" })).data.model).toBe("qwen-plus");

        const read = await measured("DifyModelProvider", "read", () => call<{ id: string; props: Props }>("model", "read", ID, outs));
        expect(read).toEqual({ id: ID, props: outs });
        expect(await diffOf("model", ID, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("updates the key in place (one key): same credential, Dify shows the new key", async () => {
        const news = await checked("model", desired({ dashscopeApiKey: OTHER_KEY }));
        expect(await diffOf("model", ID, outs, news)).toMatchObject({ changes: true, replaces: [] });
        const from = proxy.calls.length;
        const updated = (await measured("DifyModelProvider", "update (key)", () => call<{ outs: Props }>("model", "update", ID, outs, news))).outs;
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => c.route)).toEqual([`PUT ${CREDENTIALS}`]);
        expect(updated.credentialId).toBe(outs.credentialId);
        outs = updated;
        inputs = news;
        expect((await shownKey()).dashscope_api_key).toBe("sk-rea************10");
        expect((await call<{ props: Props }>("model", "read", ID, outs)).props).toEqual(outs);
    });

    it("reports a key DashScope refuses clearly, naming the input, without the key", async () => {
        const news = await checked("model", desired({ dashscopeApiKey: "sk-invalid-0123456789" }));
        const error = await call("model", "update", ID, outs, news).catch((err: Error) => err);
        const message = messageOf(error);
        expect(message).toMatch(/credentials failed \(HTTP 400 invalid_param\): Invalid API-key provided\. DashScope refused the credential when Dify validated it: check dashscopeApiKey/);
        expect(message).toMatch(/useInternationalEndpoint \(false: DashScope's China \(Beijing\) endpoint; a key works only in its own region\)\.$/);
        expect(message).not.toContain("sk-invalid-0123456789");
        // Dify kept the key it had.
        expect((await shownKey()).dashscope_api_key).toBe("sk-rea************10");
    });

    it("reads a key changed in Dify's console as drift, and a removed credential as a missing one", async () => {
        const session = await outOfBand();
        await session.put(CREDENTIALS, {
            credential_id: outs.credentialId,
            name: "pulumi",
            credentials: { dashscope_api_key: "sk-console-key-000000000099", use_international_endpoint: "true" },
        });
        const changedKey = await call<{ props: Props }>("model", "read", ID, outs);
        expect(changedKeys(outs, changedKey.props)).toEqual(["dashscopeApiKey", "useInternationalEndpoint"]);
        expect(changedKey.props).toMatchObject({ dashscopeApiKey: "[changed outside Pulumi]", useInternationalEndpoint: true });

        await session.delete(CREDENTIALS, { credential_id: outs.credentialId });
        const removed = await call<{ props: Props }>("model", "read", ID, outs);
        expect(changedKeys(outs, removed.props)).toEqual(["credentialId"]);
        expect(removed.props.credentialId).toBe("");
        expect(await diffOf("model", ID, removed.props, inputs)).toMatchObject({ changes: true, replaces: [] });

        const repaired = (await measured("DifyModelProvider", "update (credential removed)", () => call<{ outs: Props }>("model", "update", ID, removed.props, inputs))).outs;
        expect(repaired.credentialId).not.toBe("");
        outs = repaired;
        expect(await shownKey()).toEqual({ dashscope_api_key: "sk-rea************10", use_international_endpoint: "false" });
        expect((await call<{ props: Props }>("model", "read", ID, outs)).props).toEqual(outs);
    });

    afterAll(() => {
        modelState = { outs };
    });
});

let modelState: { outs: Props };

// ======================================================================================================
// DifyMcpToolProvider

describe("DifyMcpToolProvider against the real Dify and an OAuth-protected MCP server", () => {
    let inputs: Props;
    let outs: Props;
    let id: string;
    const desired = (overrides: Props = {}): Props => ({
        ...connection(),
        name: "Alibaba Cloud OpenAPI",
        serverUrl: mcp.mcpUrl,
        serverIdentifier: "aliyun-openapi",
        oauthClientId: CLIENT_ID,
        authorizationPollSeconds: 0.2,
        authorizationTimeoutSeconds: 60,
        ...overrides,
    });
    const entity = async (providerId = id) =>
        (await outOfBand()).get<{
            name: string;
            server_url: string;
            is_team_authorization: boolean;
            authentication?: { client_id: string; client_secret: string } | null;
            is_dynamic_registration: boolean;
            tools: { name: string }[];
        }>(`${MCP}/tools/${providerId}`);
    /** An out-of-band PUT, as Dify's web UI sends it (no `authentication`: the UI shows the client but only sends it when edited). */
    const consolePut = async (serverUrl: string, extra: Props = {}) =>
        (await outOfBand()).put(MCP, {
            provider_id: id,
            server_url: serverUrl,
            name: inputs.name,
            icon: "☁️",
            icon_type: "emoji",
            icon_background: "#E0F2FE",
            server_identifier: inputs.serverIdentifier,
            configuration: { timeout: 30, sse_read_timeout: 300 },
            headers: {},
            ...extra,
        });
    const clientIdOf = (url: unknown) => new URL(String(url)).searchParams.get("client_id");

    it("rejects bad inputs at check, naming each property", async () => {
        const failures = await failuresOf("mcp", desired({ serverIdentifier: "Aliyun OpenAPI", serverUrl: "ftp://x/mcp", timeoutSeconds: -1 }));
        expect(failures.map((failure) => failure.property)).toEqual(["serverIdentifier", "serverUrl", "timeoutSeconds"]);
    });

    it("registers the server with the preset client and returns a consent URL; read equals create; a no-op diff is empty", async () => {
        inputs = await checked("mcp", desired());
        const created = await measured("DifyMcpToolProvider", "create", () => call<{ id: string; outs: Props }>("mcp", "create", inputs));
        ({ id, outs } = created);
        expect(outs).toMatchObject({ providerId: id, authorized: false, toolNames: [], oauthClientMode: "preset-client" });
        expect(outs.oauthRedirectUri).toBe(`${capture.url}/console/api/mcp/oauth/callback`);
        const consent = new URL(String(outs.authorizationUrl));
        expect(`${consent.origin}${consent.pathname}`).toBe(mcp.authorizationEndpoint);
        expect(consent.searchParams.get("client_id")).toBe(CLIENT_ID);
        expect(consent.searchParams.get("redirect_uri")).toBe(outs.oauthRedirectUri);
        expect(hosts.mcp.output()).not.toMatch(/dynamic client registration/);
        expect(await entity()).toMatchObject({ is_team_authorization: false, authentication: { client_id: "40***************53", client_secret: "" }, is_dynamic_registration: false });

        const read = await measured("DifyMcpToolProvider", "read (not authorized)", () => call<{ id: string; props: Props }>("mcp", "read", id, outs));
        expect(read).toEqual({ id, props: outs });
        expect(await diffOf("mcp", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("reads authorized: true and the tool names after a person approved the consent and Dify's callback ran", async () => {
        await approve(mcp, String(outs.authorizationUrl));
        const read = await measured("DifyMcpToolProvider", "read (authorized)", () => call<{ props: Props }>("mcp", "read", id, outs));
        expect(changedKeys(outs, read.props)).toEqual(["authorizationUrl", "authorized", "toolNames"]);
        expect(read.props).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
        // The tools were listed with the token Dify got from the code exchange.
        expect(mcp.calls.some((c) => c.rpcMethod === "tools/list" && c.authorized)).toBe(true);
        outs = read.props;
        expect(await diffOf("mcp", id, outs, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("renames in place with one PUT, keeping the tokens", async () => {
        const news = await checked("mcp", desired({ name: "Alibaba Cloud Ops" }));
        const from = proxy.calls.length;
        outs = (await measured("DifyMcpToolProvider", "update (name)", () => call<{ outs: Props }>("mcp", "update", id, outs, news))).outs;
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => c.route)).toEqual([`PUT ${MCP}`]);
        const put = JSON.parse(capture.requests.filter((r) => r.method === "PUT" && r.path.endsWith(MCP)).at(-1)!.body) as Props;
        expect(put).toMatchObject({ provider_id: id, name: "Alibaba Cloud Ops", server_url: "[__HIDDEN__]" });
        expect(put.authentication).toBeUndefined();
        inputs = news;
        expect((await entity()).name).toBe("Alibaba Cloud Ops");
        const read = await call<{ props: Props }>("mcp", "read", id, outs);
        expect(read.props).toEqual(outs);
        expect(read.props.authorized).toBe(true);
    });

    it("reads authorized: false once the MCP server revoked the tokens, though Dify still says is_team_authorization", async () => {
        expect(mcp.revokeTokens()).toBeGreaterThan(0);
        const read = await call<{ props: Props }>("mcp", "read", id, outs);
        expect(changedKeys(outs, read.props)).toEqual(["authorized"]);
        expect(read.props).toMatchObject({ authorized: false, authorizationUrl: "" });
        expect((await entity()).is_team_authorization).toBe(true);
        // No consent URL to show: `up` must get one.
        expect(await diffOf("mcp", id, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        outs = read.props;
    });

    it("gets a new consent URL with the preset client after the tokens died (Dify's refusal drops the client; it is sent again)", async () => {
        const from = proxy.calls.length;
        outs = (await measured("DifyMcpToolProvider", "update (re-authorize)", () => call<{ outs: Props }>("mcp", "update", id, outs, inputs))).outs;
        // Dify answers the first mcp/auth with "Failed to refresh token" and clears the credentials, client included.
        expect(callsSince(from).filter((c) => !/^(GET \/setup|POST \/login)/.test(c))).toEqual([
            `GET ${MCP}/tools/:id 200`,
            `POST ${MCP}/auth 400`,
            `PUT ${MCP} 200`,
            `POST ${MCP}/auth 200`,
        ]);
        expect(hosts.mcp.output()).toMatch(/no longer work .*Failed to refresh token, please try to authorize again/);
        expect(outs.authorized).toBe(false);
        expect(clientIdOf(outs.authorizationUrl)).toBe(CLIENT_ID);
        expect(await entity()).toMatchObject({ authentication: { client_id: "40***************53" }, is_dynamic_registration: false });
        await approve(mcp, String(outs.authorizationUrl));
        outs = (await call<{ props: Props }>("mcp", "read", id, outs)).props;
        expect(outs).toMatchObject({ authorized: true, toolNames: TOOLS });
    });

    it("keeps the preset client when serverUrl changes: the new server's consent URL carries our client_id", async () => {
        const news = await checked("mcp", desired({ name: "Alibaba Cloud Ops", serverUrl: mcp2.mcpUrl }));
        expect(await diffOf("mcp", id, outs, news)).toMatchObject({ changes: true, replaces: [] });
        const from = proxy.calls.length;
        outs = (await measured("DifyMcpToolProvider", "update (serverUrl)", () => call<{ outs: Props }>("mcp", "update", id, outs, news))).outs;
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => `${c.route} ${c.status}`)).toEqual([`PUT ${MCP} 200`, `POST ${MCP}/auth 200`]);
        const put = JSON.parse(capture.requests.filter((r) => r.method === "PUT" && r.path.endsWith(MCP)).at(-1)!.body) as Props;
        expect(put).toMatchObject({ server_url: mcp2.mcpUrl, authentication: { client_id: CLIENT_ID, client_secret: "" } });
        expect(outs).toMatchObject({ authorized: false, toolNames: [], serverUrl: mcp2.mcpUrl });
        const consent = new URL(String(outs.authorizationUrl));
        expect(`${consent.origin}${consent.pathname}`).toBe(mcp2.authorizationEndpoint);
        expect(consent.searchParams.get("client_id")).toBe(CLIENT_ID);
        expect(hosts.mcp.output()).not.toMatch(/does not support dynamic client registration/);
        expect(await entity()).toMatchObject({ server_url: difyMaskedServerUrl(mcp2.mcpUrl), authentication: { client_id: "40***************53" }, is_dynamic_registration: false });
        inputs = news;
        await approve(mcp2, String(outs.authorizationUrl));
        outs = (await call<{ props: Props }>("mcp", "read", id, outs)).props;
        expect(outs).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
    });

    it("repairs the client Dify corrupts when the provider is saved unchanged in its console (the masked id is stored as the id)", async () => {
        // Dify's UI sends the masked client back. Dify 1.14.1 stores that mask as the client id and keeps only the
        // client: no tokens, is_team_authorization unchanged, and it shows exactly what it showed before.
        const shown = await entity();
        await consolePut("[__HIDDEN__]", { authentication: shown.authentication });
        expect(await entity()).toMatchObject({ is_team_authorization: true, authentication: { client_id: "40***************53" }, is_dynamic_registration: false });
        const session = await outOfBand();
        const corrupted = await session.post<{ authorization_url: string }>(`${MCP}/auth`, { provider_id: id });
        expect(clientIdOf(corrupted.authorization_url)).toBe("40***************53");

        const read = await measured("DifyMcpToolProvider", "read (saved in Dify's UI)", () => call<{ props: Props }>("mcp", "read", id, outs));
        expect(changedKeys(outs, read.props)).toEqual(["authorized"]);
        expect(read.props).toMatchObject({ authorized: false, oauthClientId: CLIENT_ID, authorizationUrl: "" });
        expect(await diffOf("mcp", id, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        const from = proxy.calls.length;
        const printed = hosts.mcp.output().length;
        outs = (await measured("DifyMcpToolProvider", "update (saved in Dify's UI)", () => call<{ outs: Props }>("mcp", "update", id, read.props, inputs))).outs;
        // Only the consent URL shows the corrupted id: the client is sent again and a new URL asked for.
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => `${c.route} ${c.status}`)).toEqual([`POST ${MCP}/auth 200`, `PUT ${MCP} 200`, `POST ${MCP}/auth 200`]);
        expect(hosts.mcp.output().slice(printed)).toContain("names client_id 40***************53, not the configured oauthClientId");
        expect(clientIdOf(outs.authorizationUrl)).toBe(CLIENT_ID);
        await approve(mcp2, String(outs.authorizationUrl));
        outs = (await call<{ props: Props }>("mcp", "read", id, outs)).props;
        expect(outs).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
    });

    it("reads a client dropped in Dify's console as drift (authentication: null, dynamic registration), and update sends it again", async () => {
        // A URL change without `authentication` resets Dify's credentials; changing back keeps them reset.
        await consolePut(mcp.mcpUrl);
        await consolePut(mcp2.mcpUrl);
        expect(await entity()).toMatchObject({ authentication: null, is_dynamic_registration: true });
        const read = await measured("DifyMcpToolProvider", "read (client dropped)", () => call<{ props: Props }>("mcp", "read", id, outs));
        expect(changedKeys(outs, read.props)).toEqual(["authorized", "oauthClientId", "toolNames"]);
        expect(read.props).toMatchObject({ oauthClientId: "", authorized: false, toolNames: [] });
        expect(await diffOf("mcp", id, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        outs = (await measured("DifyMcpToolProvider", "update (client dropped)", () => call<{ outs: Props }>("mcp", "update", id, read.props, inputs))).outs;
        expect(outs).toMatchObject({ oauthClientId: CLIENT_ID, authorized: false });
        expect(clientIdOf(outs.authorizationUrl)).toBe(CLIENT_ID);
        expect(await entity()).toMatchObject({ authentication: { client_id: "40***************53" }, is_dynamic_registration: false });
        await approve(mcp2, String(outs.authorizationUrl));
        outs = (await call<{ props: Props }>("mcp", "read", id, outs)).props;
        expect(outs.authorized).toBe(true);
    });

    it("reads another client set in Dify's console as drift with authorized: false (Dify dropped the tokens, kept is_team_authorization)", async () => {
        await consolePut("[__HIDDEN__]", { authentication: { client_id: OTHER_CLIENT_ID, client_secret: "" } });
        expect(await entity()).toMatchObject({ is_team_authorization: true, authentication: { client_id: "50***************01" } });
        const read = await call<{ props: Props }>("mcp", "read", id, outs);
        expect(changedKeys(outs, read.props)).toEqual(["authorized", "oauthClientId"]);
        expect(read.props).toMatchObject({ oauthClientId: "50***************01", authorized: false });
        outs = (await call<{ outs: Props }>("mcp", "update", id, read.props, inputs)).outs;
        expect(clientIdOf(outs.authorizationUrl)).toBe(CLIENT_ID);
    });

    it("reads a server URL changed in Dify's console as Dify shows it (masked)", async () => {
        await consolePut(mcp.mcpUrl);
        const read = await call<{ props: Props }>("mcp", "read", id, outs);
        expect(read.props.serverUrl).toBe(`${mcp.url}/******`);
        expect(changedKeys(outs, read.props)).toEqual(["oauthClientId", "serverUrl"]);
        expect(await diffOf("mcp", id, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });
        outs = (await call<{ outs: Props }>("mcp", "update", id, read.props, inputs)).outs;
        expect(await entity()).toMatchObject({ server_url: `${mcp2.url}/******`, authentication: { client_id: "40***************53" } });
    });

    it("waits for the approval when asked (waitForAuthorization), writing the URL to a file, then lists the tools", async () => {
        const urlFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "real-dify-auth-")), "authorize-url.txt");
        // The same MCP server with a query string (Dify's server URLs are unique per workspace).
        const waiting = await checked(
            "mcp",
            desired({ name: "Waiting", serverIdentifier: "waiting", serverUrl: `${mcp.mcpUrl}?waiting=1`, waitForAuthorization: true, authorizationUrlFile: urlFile }),
        );
        const pending = measured("DifyMcpToolProvider", "create (waitForAuthorization)", () => call<{ id: string; outs: Props }>("mcp", "create", waiting));
        let url = "";
        for (let i = 0; i < 300 && url === ""; i++) {
            await sleep(100);
            url = fs.existsSync(urlFile) ? fs.readFileSync(urlFile, "utf8").trim() : "";
        }
        expect(clientIdOf(url)).toBe(CLIENT_ID);
        await approve(mcp, url);
        const created = await pending;
        try {
            expect(created.outs).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
            // A URL with a query: Dify's mask keeps it, and read must not take that for drift.
            expect((await entity(created.id)).server_url).toBe(`${mcp.url}/******?waiting=1`);
            const read = await call<{ props: Props }>("mcp", "read", created.id, created.outs);
            expect(read.props).toEqual(created.outs);
            expect(await diffOf("mcp", created.id, read.props, waiting)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        } finally {
            await call("mcp", "delete", created.id, created.outs);
        }
    });

    it("keeps authorized: true, with a warning, when the MCP server cannot be reached (that says nothing about the tokens)", async () => {
        const redirectUris = [`${capture.url}/console/api/mcp/oauth/callback`];
        const down = await startMcpOAuthServer({ presetClients: [{ clientId: CLIENT_ID, redirectUris }] });
        const created = await call<{ id: string; outs: Props }>("mcp", "create", await checked("mcp", desired({ name: "Down Later", serverIdentifier: "down-later", serverUrl: down.mcpUrl })));
        try {
            await approve(down, String(created.outs.authorizationUrl));
            const authorized = (await call<{ props: Props }>("mcp", "read", created.id, created.outs)).props;
            expect(authorized).toMatchObject({ authorized: true, toolNames: TOOLS });
            await down.close();
            const printed = hosts.mcp.output().length;
            const read = await call<{ props: Props }>("mcp", "read", created.id, authorized);
            expect(read.props).toEqual(authorized);
            expect(hosts.mcp.output().slice(printed)).toMatch(/warning: listing the tools of MCP server "down-later" failed: .*HTTP 400 invalid_param\): \[Errno 111\] Connection refused/);
            // And nothing was changed in Dify by reading.
            expect(await entity(created.id)).toMatchObject({ is_team_authorization: true, authentication: { client_id: "40***************53" } });
        } finally {
            await down.close();
            await call("mcp", "delete", created.id, created.outs);
        }
    });

    it("deletes; read then says gone; a second delete is fine", async () => {
        const from = proxy.calls.length;
        await measured("DifyMcpToolProvider", "delete", () => call("mcp", "delete", id, outs));
        expect(callsSince(from)).toContain(`DELETE ${MCP} 200`);
        expect(await call("mcp", "read", id, outs)).toEqual({});
        await measured("DifyMcpToolProvider", "delete (gone)", () => call("mcp", "delete", id, outs));
        const left = await (await outOfBand()).get<{ id: string; server_identifier: string }[]>("/workspaces/current/tool-providers", { type: "mcp" });
        expect(left.filter((provider) => provider.id === id || provider.server_identifier === "aliyun-openapi")).toEqual([]);
    });
});

// ======================================================================================================
// DifyAgentApp

describe("DifyAgentApp against the real Dify", () => {
    let inputs: Props;
    let outs: Props;
    let id: string;
    const desired = (overrides: Props = {}): Props => ({
        ...connection(),
        name: "Cloud Ops Agent",
        systemPrompt: "You are an Alibaba Cloud operations assistant. Use the tools to answer.",
        mcpServerIdentifier: "aliyun-openapi",
        mcpToolNames: TOOLS,
        ...overrides,
    });
    interface AppDetail {
        name: string;
        mode: string;
        use_icon_as_answer_icon: boolean;
        max_active_requests: number | null;
        model_config: { pre_prompt: string; agent_mode: { tools: { provider_type: string; provider_id: string; tool_name: string }[] } };
    }
    const detail = async () => (await outOfBand()).get<AppDetail>(`/apps/${id}`);

    it("rejects bad inputs at check, naming each property", async () => {
        const failures = await failuresOf("app", desired({ mcpServerIdentifier: "Bad Id", strategy: "router", maxIterations: 0 }));
        expect(failures.map((failure) => failure.property)).toEqual(["mcpServerIdentifier", "strategy", "maxIterations"]);
    });

    it("creates an agent-chat app wired to the MCP tools; read equals create; a no-op diff is empty", async () => {
        inputs = await checked("app", desired());
        const created = await measured("DifyAgentApp", "create", () => call<{ id: string; outs: Props }>("app", "create", inputs));
        ({ id, outs } = created);
        expect(outs).toMatchObject({ appId: id, consoleUrl: `${capture.url}/app/${id}/configuration` });
        const app = await detail();
        expect(app.mode).toBe("agent-chat");
        expect(app.model_config.agent_mode.tools.map((tool) => [tool.provider_type, tool.provider_id, tool.tool_name])).toEqual(TOOLS.map((tool) => ["mcp", "aliyun-openapi", tool]));
        const read = await measured("DifyAgentApp", "read", () => call<{ id: string; props: Props }>("app", "read", id, outs));
        expect(read).toEqual({ id, props: outs });
        expect(await diffOf("app", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("renames in place (one key) with exactly the fields PUT /apps/<id> declares, keeping the settings Pulumi does not manage", async () => {
        // Set in Dify's console: the answer icon and a request limit. A rename must not reset them.
        const session = await outOfBand();
        await session.put(`/apps/${id}`, { name: "Cloud Ops Agent", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5", use_icon_as_answer_icon: true, max_active_requests: 7 });
        expect(await detail()).toMatchObject({ use_icon_as_answer_icon: true, max_active_requests: 7 });

        const news = await checked("app", desired({ name: "Cloud Ops Agent v2" }));
        const from = proxy.calls.length;
        outs = (await measured("DifyAgentApp", "update (name)", () => call<{ outs: Props }>("app", "update", id, outs, news))).outs;
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => c.route)).toEqual(["PUT /apps/:id"]);
        expect(await detail()).toMatchObject({ name: "Cloud Ops Agent v2", use_icon_as_answer_icon: true, max_active_requests: 7 });
        inputs = news;

        const sent = JSON.parse(capture.requests.filter((r) => r.method === "PUT" && r.path === `/console/api/apps/${id}`).at(-1)!.body) as Props;
        expect(Object.keys(sent).sort()).toEqual(updateAppPayloadFields().sort());
        expect(sent).toMatchObject({ name: "Cloud Ops Agent v2", use_icon_as_answer_icon: true, max_active_requests: 7 });
        expect((await call<{ props: Props }>("app", "read", id, outs)).props).toEqual(outs);
    });

    it("reads a rename and a prompt change made in Dify's console as drift of exactly those", async () => {
        const session = await outOfBand();
        await session.put(`/apps/${id}`, { name: "Renamed In Console", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5", use_icon_as_answer_icon: true, max_active_requests: 7 });
        const renamed = await call<{ props: Props }>("app", "read", id, outs);
        expect(changedKeys(outs, renamed.props)).toEqual(["name"]);
        expect(renamed.props.name).toBe("Renamed In Console");

        const config = (await detail()).model_config as unknown as Props;
        await session.post(`/apps/${id}/model-config`, { ...config, pre_prompt: "Edited in the console." });
        const edited = await call<{ props: Props }>("app", "read", id, outs);
        expect(changedKeys(outs, edited.props)).toEqual(["name", "systemPrompt"]);
        expect(await diffOf("app", id, edited.props, inputs)).toMatchObject({ changes: true, replaces: [] });

        outs = (await measured("DifyAgentApp", "update (name + prompt drift)", () => call<{ outs: Props }>("app", "update", id, edited.props, inputs))).outs;
        expect(await detail()).toMatchObject({ name: "Cloud Ops Agent v2", model_config: { pre_prompt: inputs.systemPrompt } });
        expect((await call<{ props: Props }>("app", "read", id, outs)).props).toEqual(outs);
    });

    it("names the model Dify refuses, records the app it made (init failure), and the next `up` repairs it", async () => {
        // In this process, to see what the engine records from the error (the host passes only the message on).
        const wrong = (await difyAgentAppProvider.check!({} as DifyAgentAppInputs, desired({ name: "Wrong Model Agent", model: "qwen-max" }) as unknown as DifyAgentAppInputs)).inputs!;
        const failure = (await difyAgentAppProvider.create(wrong).catch((err: unknown) => err)) as Error & { id?: string; properties?: DifyAgentAppOutputs };
        expect(failure.message).toMatch(
            /^Dify POST \/console\/api\/apps\/[0-9a-f-]{36}\/model-config failed \(HTTP 400 invalid_param\): model\.name must be in the specified model list\. The app asks for the LLM qwen-max of langgenius\/tongyi\/tongyi \(inputs model and modelProvider\)/,
        );
        expect(failure.message).toMatch(/[^.]\.$/);
        expect(await dify.sql("select count(*) from apps where name = 'Wrong Model Agent'")).toBe("1");
        expect(failure.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(failure.properties).toMatchObject({ appId: failure.id, model: "qwen-max", systemPrompt: "", mcpToolNames: [] });

        const fixed = (await difyAgentAppProvider.check!({} as DifyAgentAppInputs, desired({ name: "Wrong Model Agent" }) as unknown as DifyAgentAppInputs)).inputs!;
        expect(await diffOf("app", failure.id!, failure.properties as unknown as Props, fixed as unknown as Props)).toMatchObject({ changes: true, replaces: [] });
        const repaired = (await call<{ outs: Props }>("app", "update", failure.id, failure.properties, fixed)).outs;
        expect(await dify.sql("select count(*) from apps where name = 'Wrong Model Agent'")).toBe("1");
        expect((await call<{ props: Props }>("app", "read", failure.id, repaired)).props).toEqual(repaired);
        await call("app", "delete", failure.id, repaired);
    });

    it("reads an app deleted in Dify's console as gone; delete is fine, twice", async () => {
        await (await outOfBand()).delete(`/apps/${id}`);
        expect(await measured("DifyAgentApp", "read (gone)", () => call("app", "read", id, outs))).toEqual({});
        await measured("DifyAgentApp", "delete (gone)", () => call("app", "delete", id, outs));
        await call("app", "delete", id, outs);
    });

    it("deletes an app it made", async () => {
        const created = await call<{ id: string; outs: Props }>("app", "create", await checked("app", desired({ name: "Short-lived Agent" })));
        await measured("DifyAgentApp", "delete", () => call("app", "delete", created.id, created.outs));
        expect(await call("app", "read", created.id, created.outs)).toEqual({});
    });
});

/** The fields Dify's PUT /apps/<id> declares (controllers/console/app/app.py UpdateAppPayload), from Dify's own source. */
function updateAppPayloadFields(): string[] {
    const source = fs.readFileSync(path.join(dify.python.apiDir, "controllers", "console", "app", "app.py"), "utf8");
    const body = /^class UpdateAppPayload\(BaseModel\):\n((?:[ \t]+.*\n|\n)+?)(?=\S)/m.exec(source)?.[1] ?? "";
    const fields = [...body.matchAll(/^ {4}([a-z_]+):/gm)].map((match) => match[1]);
    expect(fields.length).toBeGreaterThan(3);
    return fields;
}

// ======================================================================================================
// Lost answers and proxy errors

describe("lost answers and proxy errors in front of the real Dify", () => {
    it("adopts the app a create left behind when its answer was lost, instead of making a second one", async () => {
        const inputs = await checked("app", {
            ...connection(),
            name: "Lost Answer Agent",
            systemPrompt: "x",
            mcpServerIdentifier: "aliyun-openapi",
            mcpToolNames: TOOLS,
        });
        proxy.resetAfterNextWrite("POST /apps");
        const from = proxy.calls.length;
        const created = await measured("DifyAgentApp", "create (answer lost)", () => call<{ id: string; outs: Props }>("app", "create", inputs));
        expect(proxy.count({ route: "POST /apps", from })).toBe(1);
        const apps = await (await outOfBand()).get<{ data: { id: string; name: string }[] }>("/apps", { page: 1, limit: 100, name: "Lost Answer Agent" });
        expect(apps.data.map((app) => app.id)).toEqual([created.id]);
        expect(hosts.app.output()).toContain(`adopting the existing Dify agent app "Lost Answer Agent" (${created.id})`);
        expect((await call<{ props: Props }>("app", "read", created.id, created.outs)).props).toEqual(created.outs);
        await call("app", "delete", created.id, created.outs);
    });

    it("does not retry a write a proxy refused (502: nothing reached Dify) and makes nothing", async () => {
        const inputs = await checked("app", { ...connection(), name: "Refused Agent", systemPrompt: "x", mcpServerIdentifier: "aliyun-openapi", mcpToolNames: [] });
        proxy.failNextRequests(1, { status: 502, route: "POST /apps" });
        const error = await call("app", "create", inputs).catch((err: Error) => err);
        expect(messageOf(error)).toMatch(/Dify POST \/console\/api\/apps failed \(HTTP 502\): .*Bad Gateway nginx\.$/);
        expect(await dify.sql("select count(*) from apps where name = 'Refused Agent'")).toBe("0");
    });

    it("retries reads that met a 502 while the API restarts", async () => {
        const created = await call<{ id: string; outs: Props }>(
            "app",
            "create",
            await checked("app", { ...connection(), name: "Retried Agent", systemPrompt: "x", mcpServerIdentifier: "aliyun-openapi", mcpToolNames: [] }),
        );
        proxy.failNextRequests(2, { status: 502, route: "GET /apps/:id" });
        proxy.failNextRequests(1, { status: 502, route: "GET /setup" });
        const from = proxy.calls.length;
        const read = await measured("DifyAgentApp", "read (three 502s)", () => call<{ props: Props }>("app", "read", created.id, created.outs));
        expect(read.props).toEqual(created.outs);
        expect(callsSince(from)).toEqual(["GET /setup 502", "GET /setup 200", "POST /login 200", "GET /apps/:id 502", "GET /apps/:id 502", "GET /apps/:id 200"]);
        await call("app", "delete", created.id, created.outs);
    });

    it("adopts the MCP provider a create left behind when its answer was lost", async () => {
        const inputs = await checked("mcp", {
            ...connection(),
            name: "Lost Answer MCP",
            serverUrl: mcp.mcpUrl,
            serverIdentifier: "lost-answer",
            oauthClientId: CLIENT_ID,
        });
        proxy.resetAfterNextWrite(`POST ${MCP}`);
        const from = proxy.calls.length;
        const created = await measured("DifyMcpToolProvider", "create (answer lost)", () => call<{ id: string; outs: Props }>("mcp", "create", inputs));
        expect(proxy.count({ route: `POST ${MCP}`, from })).toBe(1);
        const providers = await (await outOfBand()).get<{ id: string; server_identifier: string }[]>("/workspaces/current/tool-providers", { type: "mcp" });
        expect(providers.filter((p) => p.server_identifier === "lost-answer").map((p) => p.id)).toEqual([created.id]);
        expect(new URL(String(created.outs.authorizationUrl)).searchParams.get("client_id")).toBe(CLIENT_ID);
        expect((await call<{ props: Props }>("mcp", "read", created.id, created.outs)).props).toEqual(created.outs);
    });

    it("adopts an MCP provider that already exists with the identifier (an earlier run's), with the preset client", async () => {
        // What an earlier `up` whose state was lost leaves: the provider, registered without our client.
        const session = await outOfBand();
        const earlier = await session.get<{ id: string; server_identifier: string }[]>("/workspaces/current/tool-providers", { type: "mcp" });
        for (const provider of earlier.filter((p) => p.server_identifier === "lost-answer")) {
            await session.delete(MCP, { provider_id: provider.id });
        }
        await session.post(MCP, {
            server_url: mcp.mcpUrl,
            name: "Left Behind",
            icon: "🔧",
            icon_type: "emoji",
            icon_background: "#FFFFFF",
            server_identifier: "lost-answer",
            configuration: { timeout: 30, sse_read_timeout: 300 },
            headers: {},
        });
        const inputs = await checked("mcp", { ...connection(), name: "Lost Answer MCP", serverUrl: mcp.mcpUrl, serverIdentifier: "lost-answer", oauthClientId: CLIENT_ID });
        const from = proxy.calls.length;
        const adopted = await measured("DifyMcpToolProvider", "create (adopt existing)", () => call<{ id: string; outs: Props }>("mcp", "create", inputs));
        expect(proxy.count({ route: `POST ${MCP}`, from })).toBe(0);
        expect(new URL(String(adopted.outs.authorizationUrl)).searchParams.get("client_id")).toBe(CLIENT_ID);
        const entity = await session.get<{ name: string; authentication: { client_id: string } }>(`${MCP}/tools/${adopted.id}`);
        expect(entity).toMatchObject({ name: "Lost Answer MCP", authentication: { client_id: "40***************53" } });

        // Another identifier with the same server URL is Dify's "already exists" for the URL: not adopted.
        const clash = await call("mcp", "create", { ...inputs, name: "Clash", serverIdentifier: "clash" }).catch((err: Error) => err);
        expect(messageOf(clash)).toMatch(/HTTP 400 invalid_param\): MCP tool with this server URL already exists\.$/);
        await call("mcp", "delete", adopted.id, adopted.outs);
    });
});

// ======================================================================================================
// DifyModelProvider's delete, last: the app and MCP tests above use the default model.

describe("DifyModelProvider delete against the real Dify", () => {
    it("removes the credential and uninstalls the plugin it installed; read then says gone; a second delete is fine", async () => {
        const { outs } = modelState;
        const from = proxy.calls.length;
        await measured("DifyModelProvider", "delete", () => call("model", "delete", "langgenius/tongyi/tongyi", outs));
        expect(proxy.calls.slice(from).filter((c) => c.kind === "write").map((c) => `${c.route} ${c.status}`)).toEqual([
            `DELETE ${CREDENTIALS} 204`,
            "POST /workspaces/current/plugin/uninstall 200",
        ]);
        expect(await call("model", "read", "langgenius/tongyi/tongyi", outs)).toEqual({});
        await measured("DifyModelProvider", "delete (gone)", () => call("model", "delete", "langgenius/tongyi/tongyi", outs));
    });
});

// ======================================================================================================
// Dify's own mask of server URLs, against our copy of it.

describe("difyMaskedServerUrl", () => {
    it("equals Dify's own MCPProviderEntity.masked_server_url for every shape of URL", () => {
        const urls = [
            "https://openapi-mcp.cn-hangzhou.aliyuncs.com/accounts/1234567890/custom/ops/id/AbCd/mcp",
            "http://127.0.0.1:8080/a/b/mcp?x=1&y=2",
            "https://mcp.example.com/",
            "https://mcp.example.com",
            "https://mcp.example.com?tenant=1",
            "https://mcp.example.com/mcp;v=2?q#frag",
            "https://mcp.example.com/a;b/mcp",
            "HTTPS://Mcp.Example.com:443/mcp",
            "https://mcp.example.com/mcp?",
            "https://user:pw@mcp.example.com/mcp#",
            "https://mcp.example.com/?q=1",
        ];
        // Dify's method itself, on an object whose decrypt_server_url gives the URL.
        const script = [
            "import json, sys, types",
            "from core.entities.mcp_provider import MCPProviderEntity",
            "urls = json.load(sys.stdin)",
            "print(json.dumps([MCPProviderEntity.masked_server_url(types.SimpleNamespace(decrypt_server_url=lambda u=u: u)) for u in urls]))",
        ].join("\n");
        const expected = JSON.parse(runDifyPython(dify.python, script, { stdin: JSON.stringify(urls) }).trim().split("\n").at(-1)!) as string[];
        expect(expected[1]).toBe("http://127.0.0.1:8080/******?x=1&y=2");
        expect(urls.map(difyMaskedServerUrl)).toEqual(expected);
    });
});
