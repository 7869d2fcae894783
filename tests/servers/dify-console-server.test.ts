// The local Dify console must enforce what real Dify enforces, or provider tests would pass against it while
// failing against Dify. These tests talk to it with raw HTTP, not through the client.
import axios from "axios";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
