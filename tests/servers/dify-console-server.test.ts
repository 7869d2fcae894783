// The local Dify console must enforce what real Dify enforces, or provider tests would pass against it while
// failing against Dify. These tests talk to it with raw HTTP, not through the client.
import axios from "axios";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { difyVersionAtLeast } from "../../rules/dify-version";
import { DifyConsoleServer, startDifyConsoleServer } from "./dify-console-server";

const ADMIN = { email: "admin@example.com", name: "Stack Admin", password: "S3cret-Passw0rd!" };
const raw = (url: string) => axios.create({ baseURL: `${url}/console/api`, validateStatus: () => true });

describe("local Dify console 1.9.2 (cookies + CSRF)", () => {
    let server: DifyConsoleServer;
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version: "1.9.2", admin: ADMIN, secureCookies: true });
    });
    afterAll(() => server.close());

    it("sets __Host- cookies, rejects Bearer without the CSRF header, and stamps X-Version on every answer", async () => {
        const api = raw(server.url);
        const login = await api.post("/login", { email: ADMIN.email, password: ADMIN.password });
        expect(login.data).toEqual({ result: "success" });
        const cookies = (login.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]);
        expect(cookies.map((c) => c.split("=")[0]).sort()).toEqual(["__Host-access_token", "__Host-csrf_token", "__Host-refresh_token"]);
        const access = cookies.find((c) => c.startsWith("__Host-access_token="))?.split("=")[1];
        const csrf = cookies.find((c) => c.startsWith("__Host-csrf_token="))?.split("=")[1];

        const bearerOnly = await api.get("/account/profile", { headers: { Authorization: `Bearer ${access}` } });
        expect(bearerOnly.status).toBe(401);
        expect(bearerOnly.data).toMatchObject({ code: "unauthorized", message: "CSRF token is missing or invalid." });

        const ok = await api.get("/account/profile", {
            headers: { Cookie: `__Host-access_token=${access}; __Host-csrf_token=${csrf}`, "X-CSRF-Token": csrf },
        });
        expect(ok.status).toBe(200);
        for (const answer of [login, bearerOnly, ok, await api.get("/no-such-route")]) {
            expect(answer.headers["x-version"]).toBe("1.9.2");
        }
    });
});

describe("local Dify console 1.8.0 (JSON tokens)", () => {
    let server: DifyConsoleServer;
    let auth: Record<string, string>;
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version: "1.8.0", admin: ADMIN });
        const login = await raw(server.url).post("/login", { email: ADMIN.email, password: ADMIN.password });
        auth = { Authorization: `Bearer ${login.data.data.access_token}` };
    });
    afterAll(() => server.close());

    it("answers duplicates and missing MCP providers with 400 invalid_param and masks the server URL", async () => {
        const api = raw(server.url);
        const body = { server_url: "https://mcp.example.com/accounts/1/mcp", name: "ops", icon: "☁️", icon_type: "emoji", server_identifier: "ops" };
        const created = await api.post("/workspaces/current/tool-provider/mcp", body, { headers: auth });
        expect(created.status).toBe(200);
        expect(created.data.server_url).toBe("https://mcp.example.com/******");
        const duplicate = await api.post("/workspaces/current/tool-provider/mcp", body, { headers: auth });
        expect(duplicate.status).toBe(400);
        expect(duplicate.data).toEqual({ code: "invalid_param", message: "MCP tool ops already exists", status: 400 });
        const missing = await api.get("/workspaces/current/tool-provider/mcp/tools/00000000-0000-0000-0000-000000000000", { headers: auth });
        expect(missing.data).toEqual({ code: "invalid_param", message: "MCP tool not found", status: 400 });
        const auth1 = await api.post("/workspaces/current/tool-provider/mcp/auth", { provider_id: created.data.id }, { headers: auth });
        expect(auth1.data.authorization_url).toMatch(/client_id=dcr-.*redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fconsole%2Fapi%2Fmcp%2Foauth%2Fcallback/);
    });
});

/** Logs in to a 1.9.2+ console and returns the headers every later call needs (cookies + CSRF). */
async function cookieLogin(url: string, password: string, version: string): Promise<Record<string, string>> {
    const sent = difyVersionAtLeast(version, "1.11.2") ? Buffer.from(password, "utf8").toString("base64") : password;
    const login = await raw(url).post("/login", { email: ADMIN.email, password: sent });
    const cookies = (login.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]);
    const csrf = cookies.find((c) => c.startsWith("csrf_token="))?.split("=")[1] ?? "";
    return { Cookie: cookies.join("; "), "X-CSRF-Token": csrf };
}

const MCP = "/workspaces/current/tool-provider/mcp";
const CLIENT_ID = "4071151845732613353";

describe("local Dify console 1.14.1: MCP credentials (services/tools/mcp_tools_manage_service.py)", () => {
    let server: DifyConsoleServer;
    let auth: Record<string, string>;
    let id: string;
    const body = (overrides: Record<string, unknown> = {}) => ({
        server_url: "https://mcp.example.com/accounts/1/mcp",
        name: "ops",
        icon: "☁️",
        icon_type: "emoji",
        icon_background: "#E0F2FE",
        server_identifier: "ops",
        configuration: { timeout: 30, sse_read_timeout: 300 },
        headers: {},
        ...overrides,
    });
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version: "1.14.1", admin: ADMIN, dynamicClientRegistration: false });
        auth = await cookieLogin(server.url, ADMIN.password, "1.14.1");
        const created = await raw(server.url).post(MCP, body({ authentication: { client_id: CLIENT_ID, client_secret: "" } }), { headers: auth });
        id = created.data.id;
    });
    afterAll(() => server.close());

    it("shows a preset client masked, and lists providers with UUIDs only on tool-providers?type=mcp", async () => {
        const api = raw(server.url);
        const detail = await api.get(`${MCP}/tools/${id}`, { headers: auth });
        expect(detail.data).toMatchObject({ id, authentication: { client_id: "40***************53", client_secret: "" }, is_dynamic_registration: false });
        const byIdentifier = await api.get("/workspaces/current/tools/mcp", { headers: auth });
        expect(byIdentifier.data.map((p: { id: string }) => p.id)).toEqual(["ops"]);
        expect(byIdentifier.data[0].authentication).toBeUndefined();
        const byUuid = await api.get("/workspaces/current/tool-providers", { params: { type: "mcp" }, headers: auth });
        expect(byUuid.data.map((p: { id: string; server_identifier: string }) => [p.id, p.server_identifier])).toEqual([[id, "ops"]]);
    });

    it("lists tools only with working tokens; the authed flag survives a client rewrite that drops them", async () => {
        const api = raw(server.url);
        expect((await api.get(`${MCP}/update/${id}`, { headers: auth })).data).toEqual({ code: "invalid_param", message: "Please auth the tool first", status: 400 });
        server.authorizeMcpProvider(id, ["Ecs-DescribeInstances"]);
        expect((await api.get(`${MCP}/update/${id}`, { headers: auth })).data.tools.map((t: { name: string }) => t.name)).toEqual(["Ecs-DescribeInstances"]);
        // The masked client sent back: the credentials become just the client, and 1.14.1 stores the masked id as
        // the client id (_merge_credentials_with_masked looks the original up in the wrong place).
        const masked = (await api.get(`${MCP}/tools/${id}`, { headers: auth })).data.authentication;
        expect((await api.put(MCP, { ...body({ server_url: "[__HIDDEN__]", authentication: masked }), provider_id: id }, { headers: auth })).status).toBe(200);
        expect(server.mcpProviders.get(id)).toMatchObject({ clientId: "40***************53", authed: true, hasTokens: false });
        expect((await api.get(`${MCP}/tools/${id}`, { headers: auth })).data.is_team_authorization).toBe(true);
        const listing = await api.get(`${MCP}/update/${id}`, { headers: auth });
        expect(listing.status).toBe(400);
        expect(listing.data.message).toBe("Failed to connect to MCP server: Authentication failed - no token received");
    });

    it("after the MCP server revoked the grant, listing fails and mcp/auth clears every credential", async () => {
        const api = raw(server.url);
        await api.put(MCP, { ...body({ server_url: "[__HIDDEN__]", authentication: { client_id: CLIENT_ID, client_secret: "" } }), provider_id: id }, { headers: auth });
        server.authorizeMcpProvider(id, ["Ecs-DescribeInstances"]);
        server.revokeMcpTokens(id);
        const revoked = '{"error":"invalid_grant","error_description":"refresh token revoked"}';
        expect((await api.get(`${MCP}/update/${id}`, { headers: auth })).data.message).toBe(`Failed to connect to MCP server: Authentication retry failed: ${revoked}`);
        expect((await api.get(`${MCP}/tools/${id}`, { headers: auth })).data).toMatchObject({ is_team_authorization: true, is_dynamic_registration: false });
        const refused = await api.post(`${MCP}/auth`, { provider_id: id }, { headers: auth });
        expect(refused.data).toEqual({ code: "invalid_param", message: `Failed to refresh token, please try to authorize again: ${revoked}`, status: 400 });
        expect((await api.get(`${MCP}/tools/${id}`, { headers: auth })).data).toMatchObject({ authentication: null, is_dynamic_registration: true, is_team_authorization: false });
    });

    it("resets the credentials on a new server_url unless the same PUT carries authentication", async () => {
        const api = raw(server.url);
        server.authorizeMcpProvider(id, ["Ecs-DescribeInstances"]);
        await api.put(MCP, { ...body({ server_url: "https://mcp.example.com/accounts/2/mcp" }), provider_id: id }, { headers: auth });
        const reset = (await api.get(`${MCP}/tools/${id}`, { headers: auth })).data;
        expect(reset).toMatchObject({ authentication: null, is_dynamic_registration: true, is_team_authorization: false, tools: [] });
        const auth1 = await api.post(`${MCP}/auth`, { provider_id: id }, { headers: auth });
        expect(auth1.data).toEqual({ code: "invalid_param", message: "Incompatible auth server: does not support dynamic client registration", status: 400 });

        await api.put(
            MCP,
            { ...body({ server_url: "https://mcp.example.com/accounts/3/mcp", authentication: { client_id: CLIENT_ID, client_secret: "" } }), provider_id: id },
            { headers: auth },
        );
        const kept = (await api.get(`${MCP}/tools/${id}`, { headers: auth })).data;
        expect(kept).toMatchObject({ authentication: { client_id: "40***************53" }, is_dynamic_registration: false, is_team_authorization: false });
        expect((await api.post(`${MCP}/auth`, { provider_id: id }, { headers: auth })).data.authorization_url).toContain(`client_id=${CLIENT_ID}`);
    });

    it("clears every credential when mcp/auth cannot reach the MCP server", async () => {
        const api = raw(server.url);
        server.setMcpServerReachable(false);
        const failed = await api.post(`${MCP}/auth`, { provider_id: id }, { headers: auth });
        server.setMcpServerReachable(true);
        expect(failed.data).toEqual({ code: "invalid_param", message: "Failed to connect to MCP server: connection refused", status: 400 });
        expect((await api.get(`${MCP}/tools/${id}`, { headers: auth })).data).toMatchObject({ authentication: null, is_dynamic_registration: true });
    });
});

describe.each([
    { version: "1.10.1", status: 500 },
    { version: "1.11.0", status: 200 },
])("local Dify console $version: PUT /apps/<id> without use_icon_as_answer_icon", ({ version, status }) => {
    it(`answers ${status} (reqparse writes None into a NOT NULL column before 1.11)`, async () => {
        const server = await startDifyConsoleServer({ version, admin: ADMIN });
        const auth = await cookieLogin(server.url, ADMIN.password, version);
        const api = raw(server.url);
        const app = await api.post("/apps", { name: "agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖" }, { headers: auth });
        const renamed = await api.put(`/apps/${app.data.id}`, { name: "renamed", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5" }, { headers: auth });
        expect(renamed.status).toBe(status);
        if (status === 500) {
            expect(renamed.data).toEqual({ message: "Internal Server Error", code: "unknown", status: 500 });
        }
        const full = await api.put(
            `/apps/${app.data.id}`,
            { name: "renamed", description: "", icon_type: "emoji", icon: "🤖", icon_background: "#FFEAD5", use_icon_as_answer_icon: false, max_active_requests: null },
            { headers: auth },
        );
        expect(full.status).toBe(200);
        expect(full.data).toMatchObject({ name: "renamed", use_icon_as_answer_icon: false });
        await server.close();
    });
});

describe("local Dify console 1.14.1: marketplace, faults", () => {
    it("answers latest-versions with 200 and no versions when the marketplace is unreachable", async () => {
        const server = await startDifyConsoleServer({ version: "1.14.1", admin: ADMIN, marketplace: false });
        const auth = await cookieLogin(server.url, ADMIN.password, "1.14.1");
        const latest = await raw(server.url).post("/workspaces/current/plugin/list/latest-versions", { plugin_ids: ["langgenius/tongyi"] }, { headers: auth });
        expect(latest.status).toBe(200);
        expect(latest.data).toEqual({ versions: {} });
        await server.close();
    });

    it("injects a proxy's 502 (no X-Version) and a reset after an applied write", async () => {
        const server = await startDifyConsoleServer({ version: "1.14.1", admin: ADMIN });
        const auth = await cookieLogin(server.url, ADMIN.password, "1.14.1");
        const api = raw(server.url);
        server.failNextRequests(1);
        const proxied = await api.get("/account/profile", { headers: auth });
        expect(proxied.status).toBe(502);
        expect(proxied.headers["x-version"]).toBeUndefined();
        expect(String(proxied.data)).toContain("502 Bad Gateway");
        expect((await api.get("/account/profile", { headers: auth })).status).toBe(200);

        server.resetAfterNextWrite("POST /account/name");
        const reset = await api.post("/account/name", { name: "Applied" }, { headers: auth }).catch((e: { code?: string }) => e);
        expect((reset as { code?: string }).code).toBe("ECONNRESET");
        expect(server.accounts[0].name).toBe("Applied");
        await server.close();
    });
});
