import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import {
    checkDifyMcpToolProvider,
    diffDifyMcpToolProvider,
    DifyMcpToolProviderInputs,
    DifyMcpToolProviderOutputs,
} from "../../../dynamic-providers/dify/mcp-tool-provider";
import { connectToDify } from "../../../dynamic-providers/dify/session";
import { DIFY_ADMIN as ADMIN, difyAdminConnection, useDifyProviderHost, useDifyServer } from "../../servers/dify-provider-fixture";

const MCP_URL = "https://openapi-mcp.cn-hangzhou.aliyuncs.com/accounts/1234567890/custom/ops/id/AbCd/mcp";
const CLIENT_ID = "4071151845732613353";
const TOOLS = ["Ecs-DescribeInstances", "Ecs-DescribeRegions"];
const MCP = "/workspaces/current/tool-provider/mcp";
const MOVED_URL = "https://openapi-mcp.cn-shanghai.aliyuncs.com/accounts/1234567890/custom/ops/id/EfGh/mcp";

const host = useDifyProviderHost<DifyMcpToolProviderInputs>("mcp-tool-provider", "difyMcpToolProviderProvider");
const { checked } = host;

function desired(url: string, overrides: Partial<DifyMcpToolProviderInputs> = {}): DifyMcpToolProviderInputs {
    return {
        ...difyAdminConnection(url),
        name: "Alibaba Cloud OpenAPI",
        serverUrl: MCP_URL,
        serverIdentifier: "aliyun-openapi",
        oauthClientId: CLIENT_ID,
        authorizationPollSeconds: 0.02,
        authorizationTimeoutSeconds: 10,
        ...overrides,
    };
}

async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !condition(); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}

describe("DifyMcpToolProvider check and diff", () => {
    it("rejects identifiers outside ^[a-z0-9_-]{1,24}$ and non-http URLs, naming the field", () => {
        const result = checkDifyMcpToolProvider(desired("http://127.0.0.1:1", { serverIdentifier: "Aliyun OpenAPI", serverUrl: "ftp://x/mcp" }));
        expect(result.failures).toEqual([
            { property: "serverIdentifier", reason: expect.stringMatching(/\^\[a-z0-9_-\]\{1,24\}\$/) },
            { property: "serverUrl", reason: expect.stringMatching(/http or https/) },
        ]);
        expect(checkDifyMcpToolProvider(desired("http://127.0.0.1:1", { serverIdentifier: "a".repeat(25) })).failures?.[0].property).toBe("serverIdentifier");
    });

    it("updates everything in place and replaces only for another Dify (deleting first: names are unique)", () => {
        const olds = { ...(checkDifyMcpToolProvider(desired("http://127.0.0.1:1")).inputs as DifyMcpToolProviderInputs), authorized: true } as DifyMcpToolProviderOutputs;
        for (const change of [{ name: "x" }, { serverUrl: "https://other.example.com/mcp" }, { serverIdentifier: "other" }, { timeoutSeconds: 60 }, { oauthClientId: "999" }]) {
            const news = checkDifyMcpToolProvider(desired("http://127.0.0.1:1", change)).inputs as DifyMcpToolProviderInputs;
            expect(diffDifyMcpToolProvider(olds, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        }
        const moved = checkDifyMcpToolProvider(desired("http://127.0.0.1:2")).inputs as DifyMcpToolProviderInputs;
        expect(diffDifyMcpToolProvider(olds, moved)).toEqual({ changes: true, replaces: ["difyUrl"], deleteBeforeReplace: true });
        // Waiting for authorization keeps `up` retrying while the workspace is not authorized.
        const waiting = checkDifyMcpToolProvider(desired("http://127.0.0.1:1", { waitForAuthorization: true })).inputs as DifyMcpToolProviderInputs;
        expect(diffDifyMcpToolProvider({ ...olds, waitForAuthorization: true, authorized: false }, waiting).changes).toBe(true);
        expect(diffDifyMcpToolProvider({ ...olds, waitForAuthorization: true, authorized: true }, waiting).changes).toBe(false);
    });
});

describe.each(["1.8.0", "1.9.2", "1.14.1"])("DifyMcpToolProvider against Dify %s", (version) => {
    const presetClient = version === "1.14.1";
    const server = useDifyServer({ version });
    let inputs: DifyMcpToolProviderInputs;
    let outs: DifyMcpToolProviderOutputs;
    let id: string;

    it("registers the server, returns the authorization URL; read equals create; a no-op diff is empty", async () => {
        const printedBefore = host.output().length;
        inputs = await checked(desired(server.url));
        ({ id, outs } = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs));
        expect(id).toBe(outs.providerId);
        expect(outs.authorized).toBe(false);
        expect(outs.toolNames).toEqual([]);
        expect(outs.oauthRedirectUri).toBe(`${server.url}/console/api/mcp/oauth/callback`);
        const authorizeQuery = new URL(outs.authorizationUrl).searchParams;
        expect(authorizeQuery.get("redirect_uri")).toBe(outs.oauthRedirectUri);
        expect(server.count({ kind: "write" })).toBe(2); // create + start authorization
        expect(server.count({ route: "POST /login" })).toBe(1);
        const createBody = server.bodies.get(`POST ${MCP}`)?.[0] as Record<string, unknown>;
        const printed = host.output().slice(printedBefore);
        if (presetClient) {
            expect(outs.oauthClientMode).toBe("preset-client");
            expect(authorizeQuery.get("client_id")).toBe(CLIENT_ID);
            expect(createBody.authentication).toEqual({ client_id: CLIENT_ID, client_secret: "" });
            expect(createBody.configuration).toEqual({ timeout: 30, sse_read_timeout: 300 });
            expect(printed).not.toMatch(/dynamic client registration/);
        } else {
            expect(outs.oauthClientMode).toBe("dynamic-registration");
            expect(authorizeQuery.get("client_id")).toMatch(/^dcr-/);
            expect(printed).toMatch(/cannot preset an OAuth client.*dynamic client registration.*oauthClientId is not used/s);
        }
        expect(server.mcpProviders.get(id)?.serverUrl).toBe(MCP_URL);

        const read = await host.call<{ id: string; props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(read).toEqual({ id, props: outs });
        expect(await host.call("diff", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("shows authorization and the discovered tools on refresh once a person approved", async () => {
        server.authorizeMcpProvider(inputs.serverIdentifier, TOOLS);
        server.resetCalls();
        const read = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(read.props).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
        // Dify does not list tools after the OAuth callback; read asks it to, once.
        expect(server.count({ route: `GET ${MCP}/update/<id>` })).toBe(1);
        outs = read.props;
    });

    it("renames in place with one write, keeping the URL and the OAuth tokens", async () => {
        server.resetCalls();
        const renamed = await checked(desired(server.url, { name: "Alibaba Cloud Ops" }));
        outs = (await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, outs, renamed)).outs;
        expect(server.count({ kind: "write" })).toBe(1);
        const body = server.bodies.get(`PUT ${MCP}`)?.[0] as Record<string, unknown>;
        expect(body).toMatchObject({ provider_id: id, name: "Alibaba Cloud Ops", server_url: "[__HIDDEN__]" });
        expect(body.authentication).toBeUndefined();
        const record = server.mcpProviders.get(id);
        expect(record).toMatchObject({ name: "Alibaba Cloud Ops", serverUrl: MCP_URL, authed: true, hasTokens: true });
        expect(outs).toMatchObject({ authorized: true, toolNames: TOOLS });
        inputs = renamed;
    });

    it(
        presetClient
            ? "sends a changed client id once and restarts authorization"
            : "never sends a client id to a Dify that cannot preset one (before 1.10)",
        async () => {
            server.resetCalls();
            const news = await checked(desired(server.url, { name: "Alibaba Cloud Ops", oauthClientId: "5000000000000000001" }));
            outs = (await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, outs, news)).outs;
            const sent = server.bodies.get(`PUT ${MCP}`)?.[0] as Record<string, unknown>;
            if (presetClient) {
                expect(sent.authentication).toEqual({ client_id: "5000000000000000001", client_secret: "" });
                expect(new URL(outs.authorizationUrl).searchParams.get("client_id")).toBe("5000000000000000001");
                expect(outs.authorized).toBe(false);
            } else {
                expect(sent).not.toHaveProperty("authentication");
                expect(outs.oauthClientMode).toBe("dynamic-registration");
            }
            inputs = news;
        },
    );

    it("reports a URL changed outside Pulumi through the masked form, then the provider gone; delete is idempotent", async () => {
        (server.mcpProviders.get(id) as { serverUrl: string }).serverUrl = "https://elsewhere.example.com/mcp";
        const drifted = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(drifted.props.serverUrl).toBe("https://elsewhere.example.com/******");
        expect(diffDifyMcpToolProvider(drifted.props, inputs).changes).toBe(true);

        server.mcpProviders.delete(id);
        expect((await host.call<{ id?: string }>("read", id, outs)).id ?? "").toBe("");
        server.resetCalls();
        await host.call("delete", id, outs);
        await host.call("delete", id, outs);
        expect(server.count({ route: `DELETE ${MCP}` })).toBe(2);
    });

    it("waits for authorization when asked, then lists the tools", async () => {
        const urlFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dify-auth-")), "authorize-url.txt");
        const waiting = await checked(
            desired(server.url, { name: "Waiting", serverIdentifier: "waiting", serverUrl: `${MCP_URL}2`, waitForAuthorization: true, authorizationUrlFile: urlFile }),
        );
        const pending = host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", waiting);
        await until(() => server.count({ route: `GET ${MCP}/tools/<id>` }) > 0);
        expect(fs.readFileSync(urlFile, "utf8")).toMatch(/^https:\/\/signin\.aliyun\.com\/oauth2\/v1\/auth\?/);
        server.authorizeMcpProvider("waiting", TOOLS);
        const created = await pending;
        expect(created.outs).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
        await host.call("delete", created.id, created.outs);
    });

    it("makes one login attempt with a wrong admin password and creates nothing", async () => {
        server.resetCalls();
        const wrong = "Wr0ng-Admin-Passw0rd";
        const error = await host.call("create", await checked(desired(server.url, { adminPassword: wrong }))).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/POST \/console\/api\/login failed \(HTTP 401 authentication_failed\).*Not retried/);
        expect((error as Error).message).not.toContain(wrong);
        expect(server.count({ route: "POST /login" })).toBe(1);
        expect(server.count({ kind: "write" })).toBe(0);
        // Other resources in the same provider process (a refresh reads them all) do not try them again.
        const again = await host.call("read", "any-id", { ...desired(server.url, { adminPassword: wrong }) }).catch((e: Error) => e);
        expect((again as Error).message).toMatch(/HTTP 401 authentication_failed.*Not sent again: these credentials already failed in this run/);
        expect(server.count({ route: "POST /login" })).toBe(1);
        expect(host.output()).not.toContain(wrong);
        expect(host.output()).not.toContain(ADMIN.password);
    });
});

describe("DifyMcpToolProvider failures after the provider exists (Dify 1.14.1)", () => {
    const server = useDifyServer({ version: "1.14.1" });

    it("records the provider (init failure with its id) when nobody authorizes in time", async () => {
        const inputs = await checked(desired(server.url, { waitForAuthorization: true, authorizationTimeoutSeconds: 0.1 }));
        const error = await host.call("create", inputs).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/was not authorized within 0.1 s.*https:\/\/signin\.aliyun\.com/);
        expect(server.mcpProviders.size).toBe(1);
        expect(host.output()).toContain("Authorize Dify's MCP server \"aliyun-openapi\"");
    });

    it("reads back a provider registered without a preset client, with nothing the engine's protobuf rejects", async () => {
        const inputs = await checked(
            desired(server.url, { oauthClientId: undefined, name: "No preset client", serverIdentifier: "no-client", serverUrl: "https://other.example.com/mcp" }),
        );
        const created = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs);
        const read = await host.call<{ id: string; props: DifyMcpToolProviderOutputs }>("read", created.id, created.outs);
        expect(read.id).toBe(created.id);
        expect(read.props.serverIdentifier).toBe("no-client");
        expect(read.props.oauthClientId ?? "").toBe("");
        await host.call("delete", created.id, read.props);
    });

    it("reports a preset client that Dify dropped after a failed connection as drift", async () => {
        const [record] = server.mcpProviders.values();
        record.clientId = "";
        const outs = { ...(await checked(desired(server.url))), providerId: record.id, authorizationUrl: "", authorized: false, toolNames: [], oauthClientMode: "preset-client", oauthRedirectUri: "", difyVersion: "1.14.1" } as DifyMcpToolProviderOutputs;
        const read = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", record.id, outs);
        expect(read.props.oauthClientId).toBe("");
        server.resetCalls();
        const fixed = await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", record.id, read.props, await checked(desired(server.url)));
        expect((server.bodies.get(`PUT ${MCP}`)?.[0] as Record<string, unknown>).authentication).toEqual({ client_id: CLIENT_ID, client_secret: "" });
        expect(record.clientId).toBe(CLIENT_ID);
        expect(fixed.outs.authorizationUrl).toContain(`client_id=${CLIENT_ID}`);
    });
});

describe("DifyMcpToolProvider with a preset client on Dify 1.14.1 whose authorization server has no dynamic registration", () => {
    // Alibaba Cloud's case: without the preset client Dify can only answer "does not support dynamic client registration".
    const server = useDifyServer({ version: "1.14.1", dynamicClientRegistration: false });
    let inputs: DifyMcpToolProviderInputs;
    let outs: DifyMcpToolProviderOutputs;
    let id: string;
    beforeAll(async () => {
        inputs = await checked(desired(server.url));
        ({ id, outs } = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs));
        server.authorizeMcpProvider(id, TOOLS);
        outs = (await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs)).props;
        expect(outs).toMatchObject({ authorized: true, toolNames: TOOLS });
    });

    it("sends the client with a new serverUrl (Dify resets the credentials on any URL change), then restarts authorization", async () => {
        server.resetCalls();
        const moved = await checked(desired(server.url, { serverUrl: MOVED_URL }));
        expect(await host.call("diff", id, outs, moved)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        outs = (await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, outs, moved)).outs;
        expect(server.bodies.get(`PUT ${MCP}`)).toEqual([
            expect.objectContaining({ provider_id: id, server_url: MOVED_URL, authentication: { client_id: CLIENT_ID, client_secret: "" } }),
        ]);
        expect(server.mcpProviders.get(id)).toMatchObject({ serverUrl: MOVED_URL, clientId: CLIENT_ID, isDynamicRegistration: false, authed: false, tools: [] });
        expect(outs).toMatchObject({ serverUrl: MOVED_URL, authorized: false, oauthClientId: CLIENT_ID });
        expect(new URL(outs.authorizationUrl).searchParams.get("client_id")).toBe(CLIENT_ID);
        // State and Dify agree: a refresh finds nothing to do.
        const read = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(read.props).toEqual(outs);
        expect(await host.call("diff", id, read.props, moved)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        inputs = moved;
    });

    it("reads a client Dify dropped after a failed authorization (authentication: null) as drift, and the update sends it again", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        // An mcp/auth that cannot reach the MCP server clears every credential, the preset client included.
        server.setMcpServerReachable(false);
        await expect(session.post(`${MCP}/auth`, { provider_id: id })).rejects.toThrow(/Failed to connect to MCP server/);
        server.setMcpServerReachable(true);
        expect(await session.get(`${MCP}/tools/${id}`)).toMatchObject({ authentication: null, is_dynamic_registration: true });

        const read = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(read.props).toMatchObject({ oauthClientId: "", authorized: false });
        expect(diffDifyMcpToolProvider(read.props, inputs)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        server.resetCalls();
        outs = (await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, read.props, inputs)).outs;
        expect(server.bodies.get(`PUT ${MCP}`)).toEqual([
            expect.objectContaining({ server_url: "[__HIDDEN__]", authentication: { client_id: CLIENT_ID, client_secret: "" } }),
        ]);
        expect(server.mcpProviders.get(id)?.clientId).toBe(CLIENT_ID);
        expect(new URL(outs.authorizationUrl).searchParams.get("client_id")).toBe(CLIENT_ID);
        expect(outs.oauthClientId).toBe(CLIENT_ID);
    });

    it("sends the client on an update when Dify lost it, even without a refresh first", async () => {
        const record = server.mcpProviders.get(id);
        server.setMcpServerReachable(false);
        await (await connectToDify({ url: server.url }, ADMIN)).post(`${MCP}/auth`, { provider_id: id }).catch(() => undefined);
        server.setMcpServerReachable(true);
        expect(record?.clientId).toBe("");
        server.resetCalls();
        const renamed = await checked(desired(server.url, { serverUrl: MOVED_URL, name: "Alibaba Cloud Ops" }));
        outs = (await host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, outs, renamed)).outs;
        expect((server.bodies.get(`PUT ${MCP}`)?.[0] as Record<string, unknown>).authentication).toEqual({ client_id: CLIENT_ID, client_secret: "" });
        expect(record?.clientId).toBe(CLIENT_ID);
        expect(new URL(outs.authorizationUrl).searchParams.get("client_id")).toBe(CLIENT_ID);
        inputs = renamed;
    });
});

describe("DifyMcpToolProvider authorization on Dify 1.14.1", () => {
    const server = useDifyServer({ version: "1.14.1", dynamicClientRegistration: false });
    let inputs: DifyMcpToolProviderInputs;
    let outs: DifyMcpToolProviderOutputs;
    let id: string;
    beforeAll(async () => {
        inputs = await checked(desired(server.url));
        ({ id, outs } = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs));
    });

    it("decides authorization by listing the tools: Dify's flag survives a credential rewrite that drops the tokens", async () => {
        server.authorizeMcpProvider(id, TOOLS);
        outs = (await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs)).props;
        expect(outs.authorized).toBe(true);
        // Saving the provider unchanged in Dify's UI sends the masked client back: Dify 1.14.1 stores the mask
        // itself as the client id (_merge_credentials_with_masked looks at the wrong level) and rewrites its
        // credentials to just that, so the tokens are gone and `authed` stays true.
        const session = await connectToDify({ url: server.url }, ADMIN);
        const shown = await session.get<{ authentication: unknown; is_team_authorization: boolean }>(`${MCP}/tools/${id}`);
        await session.put(MCP, {
            provider_id: id,
            server_url: "[__HIDDEN__]",
            name: inputs.name,
            icon: "☁️",
            icon_type: "emoji",
            icon_background: "#E0F2FE",
            server_identifier: inputs.serverIdentifier,
            configuration: { timeout: 30, sse_read_timeout: 300 },
            headers: {},
            authentication: shown.authentication,
        });
        expect(server.mcpProviders.get(id)).toMatchObject({ authed: true, hasTokens: false, clientId: "40***************53" });
        expect((await session.get<{ is_team_authorization: boolean }>(`${MCP}/tools/${id}`)).is_team_authorization).toBe(true);

        server.resetCalls();
        const read = await host.call<{ props: DifyMcpToolProviderOutputs }>("read", id, outs);
        expect(read.props).toMatchObject({ authorized: false, oauthClientId: CLIENT_ID });
        // What the refresh cost: the detail and one tool listing, no writes.
        expect(server.count({ route: `GET ${MCP}/tools/<id>` })).toBe(1);
        expect(server.count({ route: `GET ${MCP}/update/<id>` })).toBe(1);
        expect(server.count({ kind: "write" })).toBe(0);

        // Waiting for authorization ends only once the tools list, not when the (stale) flag is true.
        const waiting = await checked(desired(server.url, { waitForAuthorization: true }));
        expect(diffDifyMcpToolProvider({ ...read.props, waitForAuthorization: true }, waiting).changes).toBe(true);
        server.resetCalls();
        const pending = host.call<{ outs: DifyMcpToolProviderOutputs }>("update", id, { ...read.props, waitForAuthorization: true }, waiting);
        await until(() => server.count({ route: `GET ${MCP}/update/<id>` }) >= 2);
        server.authorizeMcpProvider(id, TOOLS);
        const done = (await pending).outs;
        expect(done).toMatchObject({ authorized: true, toolNames: TOOLS, authorizationUrl: "" });
        // The consent URL named the mask, not our client: the client was sent again, once.
        expect(server.count({ route: `PUT ${MCP}` })).toBe(1);
    });
});

describe("DifyMcpToolProvider when answers get lost (Dify 1.14.1)", () => {
    const server = useDifyServer({ version: "1.14.1" });

    it("adopts the provider whose create Dify applied before the connection was reset, in the same up", async () => {
        const inputs = await checked(desired(server.url, { name: "Lost answer", serverIdentifier: "lost-answer", serverUrl: `${MCP_URL}/lost` }));
        server.resetAfterNextWrite(`POST ${MCP}`);
        const created = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs);
        const records = [...server.mcpProviders.values()].filter((r) => r.serverIdentifier === "lost-answer");
        expect(records.map((r) => r.id)).toEqual([created.id]);
        expect(server.count({ route: `POST ${MCP}` })).toBe(1);
        expect(records[0]).toMatchObject({ clientId: CLIENT_ID, serverUrl: `${MCP_URL}/lost` });
        expect(new URL(created.outs.authorizationUrl).searchParams.get("client_id")).toBe(CLIENT_ID);
        expect(host.output()).toContain('adopting the existing Dify MCP provider "lost-answer"');
    });

    it("adopts a provider an earlier run left behind, found by server identifier, instead of failing with 'already exists'", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        const left = await session.post<{ id: string }>(MCP, {
            server_url: `${MCP_URL}/left`,
            name: "Left behind",
            icon: "☁️",
            icon_type: "emoji",
            icon_background: "#E0F2FE",
            server_identifier: "left-behind",
            configuration: { timeout: 30, sse_read_timeout: 300 },
            headers: {},
        });
        server.resetCalls();
        const inputs = await checked(desired(server.url, { name: "Left behind renamed", serverIdentifier: "left-behind", serverUrl: `${MCP_URL}/left` }));
        const created = await host.call<{ id: string; outs: DifyMcpToolProviderOutputs }>("create", inputs);
        expect(created.id).toBe(left.id);
        expect(server.count({ route: `POST ${MCP}` })).toBe(0);
        expect(server.mcpProviders.get(left.id)).toMatchObject({ name: "Left behind renamed", clientId: CLIENT_ID, isDynamicRegistration: false });
        expect(created.outs.authorizationUrl).toContain(`client_id=${CLIENT_ID}`);
    });

    it("still fails, without adopting, when another provider holds the name", async () => {
        const inputs = await checked(desired(server.url, { name: "Left behind renamed", serverIdentifier: "someone-else", serverUrl: `${MCP_URL}/else` }));
        const error = await host.call("create", inputs).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/HTTP 400 invalid_param\): MCP tool Left behind renamed already exists\.$/);
        expect([...server.mcpProviders.values()].some((r) => r.serverIdentifier === "someone-else")).toBe(false);
    });

    it("retries reads through the proxy's 502s while Dify restarts, and never a write", async () => {
        const inputs = await checked(desired(server.url, { name: "Lost answer", serverIdentifier: "lost-answer", serverUrl: `${MCP_URL}/lost` }));
        const [record] = [...server.mcpProviders.values()].filter((r) => r.serverIdentifier === "lost-answer");
        const state = { ...inputs, providerId: record.id, authorizationUrl: "", authorized: false, toolNames: [], oauthClientMode: "preset-client", oauthRedirectUri: "", difyVersion: "1.14.1" } as DifyMcpToolProviderOutputs;
        server.resetCalls();
        server.failNextRequests(2);
        const read = await host.call<{ id: string }>("read", record.id, state);
        expect(read.id).toBe(record.id);
        expect(server.calls.slice(0, 3).map((c) => `${c.route} ${c.status}`)).toEqual(["GET /setup 502", "GET /setup 502", "GET /setup 200"]);

        server.resetCalls();
        server.failNextRequests(1, { route: `PUT ${MCP}` });
        const error = await host.call("update", record.id, state, { ...inputs, name: "Renamed during a restart" }).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/PUT \/console\/api\/workspaces\/current\/tool-provider\/mcp failed \(HTTP 502\).*Bad Gateway/);
        expect(server.count({ route: `PUT ${MCP}` })).toBe(1);
        expect(record.name).toBe("Lost answer");
    });
});
