import * as http from "http";
import { AddressInfo } from "net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { compareDifyVersions, difyVersionAtLeast } from "../../../rules/dify-version";
import { resourceInitFailure } from "../../../dynamic-providers/dify/connection";
import { DifyApiError, isDifyApiError, isLostAnswer, joinSentences } from "../../../dynamic-providers/dify/errors";
import { difyMaskedServerUrl, maskDifyCredential } from "../../../dynamic-providers/dify/masks";
import { connectToDify, encodeLoginPassword } from "../../../dynamic-providers/dify/session";
import { probeDify, setupDify } from "../../../dynamic-providers/dify/transport";
import { DifyConsoleServer, startDifyConsoleServer } from "../../servers/dify-console-server";

const ADMIN = { email: "admin@example.com", name: "Stack Admin", password: "S3cret-Passw0rd!" };

describe("Dify versions", () => {
    it("orders release candidates, releases and hotfix tags", () => {
        const ordered = ["1.8.0", "1.9.1", "1.9.2", "1.10.0-rc1", "1.10.0", "1.10.1", "1.10.1-fix.1", "1.11.0", "1.14.0-rc1", "1.14.1", "2.0.0-beta.1", "2.0.0-beta.2", "2.0.0"];
        const shuffled = [...ordered].reverse();
        expect(shuffled.sort(compareDifyVersions)).toEqual(ordered);
    });

    it("treats a release candidate or hotfix of X.Y.Z as having X.Y.Z's behaviour", () => {
        expect(difyVersionAtLeast("1.9.1", "1.9.2")).toBe(false);
        expect(difyVersionAtLeast("1.9.2", "1.9.2")).toBe(true);
        expect(difyVersionAtLeast("1.10.0-rc1", "1.10.0")).toBe(true);
        expect(difyVersionAtLeast("1.10.1-fix.1", "1.10.1")).toBe(true);
        expect(difyVersionAtLeast("1.11.1", "1.11.2")).toBe(false);
        expect(encodeLoginPassword("1.11.1", "pässword1")).toBe("pässword1");
        expect(encodeLoginPassword("1.11.2", "pässword1")).toBe(Buffer.from("pässword1", "utf8").toString("base64"));
    });
});

describe("provider plumbing", () => {
    it("masks server URLs the way Dify shows them", () => {
        // What Dify 1.14.1's masked_server_url gives (tests/dynamic-providers/real-dify.test.ts runs Dify's own).
        expect(difyMaskedServerUrl("https://mcp.example.com:8443/a/b/mcp?x=1")).toBe("https://mcp.example.com:8443/******?x=1");
        expect(difyMaskedServerUrl("https://mcp.example.com/")).toBe("https://mcp.example.com/");
        expect(difyMaskedServerUrl("https://mcp.example.com:443/mcp")).toBe("https://mcp.example.com:443/******");
    });

    it("joins error sentences so every text ends with exactly one period", () => {
        expect(joinSentences("Invalid email or password.", "Not retried: Dify locks an account")).toBe("Invalid email or password. Not retried: Dify locks an account.");
        expect(joinSentences("a..", "", undefined, " b. ")).toBe("a. b.");
        expect(joinSentences("is this Dify?", "c")).toBe("is this Dify? c.");
    });

    it("masks MCP credentials the way Dify shows them (MCPProviderEntity._mask_value)", () => {
        expect(maskDifyCredential("4071151845732613353")).toBe("40***************53");
        expect(maskDifyCredential("abcdef")).toBe("******");
        expect(maskDifyCredential("")).toBe("");
    });

    it("builds init-failure errors the dynamic-provider host turns into ErrorResourceInitFailed (id, properties, reasons)", () => {
        const error = resourceInitFailure("app-1", { name: "x" }, new Error("model-config failed"));
        expect({ ...error, message: error.message }).toEqual({
            id: "app-1",
            properties: { name: "x" },
            reasons: ["model-config failed"],
            message: "model-config failed",
        });
    });
});

describe.each([
    { version: "1.8.0", secure: false, authentication: "bearer" },
    { version: "1.9.1", secure: false, authentication: "bearer" },
    { version: "1.9.2", secure: false, authentication: "cookie" },
    { version: "1.9.2", secure: true, authentication: "cookie" },
    { version: "1.11.2", secure: false, authentication: "cookie" },
    { version: "1.14.1", secure: true, authentication: "cookie" },
])("login to Dify $version (secure cookies: $secure)", ({ version, secure, authentication }) => {
    let server: DifyConsoleServer;
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version, admin: ADMIN, secureCookies: secure });
    });
    afterAll(() => server.close());

    it(`logs in with ${authentication} authentication and renews an expired session once`, async () => {
        server.resetCalls();
        const session = await connectToDify({ url: server.url }, ADMIN);
        expect(session.version).toBe(version);
        expect(session.authentication).toBe(authentication);
        expect(await session.get("/account/profile")).toMatchObject({ email: ADMIN.email });
        server.expireAccessTokens();
        expect(await session.get("/account/profile")).toMatchObject({ email: ADMIN.email });
        expect(server.count({ route: "POST /login" })).toBe(1);
        expect(server.count({ route: "POST /refresh-token" })).toBe(1);
        // The version was read before any password went out.
        expect(server.calls[0].route).toBe("GET /setup");
    });

    it("makes exactly one login attempt with a wrong password and says so without the password", async () => {
        server.resetCalls();
        const wrong = "Wr0ng-password-42";
        const error = await connectToDify({ url: server.url }, { email: ADMIN.email, password: wrong }).catch((e: unknown) => e);
        expect(isDifyApiError(error)).toBe(true);
        const message = (error as Error).message;
        expect(message).toMatch(/POST \/console\/api\/login failed \(HTTP 401 authentication_failed\)/);
        expect(message).toMatch(/Invalid email or password\. Not retried/);
        expect(message).not.toMatch(/\.\./);
        expect(message).toMatch(/[^.]\.$/);
        expect(message).not.toContain(wrong);
        expect(message).not.toContain(Buffer.from(wrong).toString("base64"));
        expect(server.count({ route: "POST /login" })).toBe(1);
    });
});

describe("Dify 1.14.1 errors", () => {
    let server: DifyConsoleServer;
    beforeAll(async () => {
        server = await startDifyConsoleServer({ version: "1.14.1", initPassword: "init-Passw0rd" });
    });
    afterAll(() => server.close());

    it("explains a missing INIT_PASSWORD and reads FastOpenAPI error bodies", async () => {
        const probe = await probeDify({ url: server.url });
        expect(probe).toEqual({ version: "1.14.1", setupStep: "not_started" });
        // Dify 1.12+ (FastOpenAPI) answers with the status only, as the agreement test shows against the real
        // server: the hints, keyed on the status, are what tells the user what to do.
        await expect(setupDify({ url: server.url }, probe, ADMIN)).rejects.toThrow(/HTTP 401 authentication_error.*give it as the init password/);
        await expect(
            setupDify({ url: server.url }, probe, { ...ADMIN, initPassword: "wrong-init-1" }),
        ).rejects.toThrow(/HTTP 401 authentication_error.*does not match Dify's INIT_PASSWORD/);
        // A weak password is refused before any request by DifyAdmin's check; Dify itself only says 422.
        const weak = setupDify({ url: server.url }, probe, { ...ADMIN, password: "weakpassword", initPassword: "init-Passw0rd" });
        await expect(weak).rejects.toThrow(/HTTP 422 validation_error\): Validation error for parameter 'payload'/);
        await expect(weak).rejects.not.toThrow(/weakpassword/);
        await setupDify({ url: server.url }, probe, { ...ADMIN, initPassword: "init-Passw0rd" });
        expect(server.isSetUp()).toBe(true);
    });

    it("locks the account after repeated failures and explains the lockout", async () => {
        for (let i = 0; i < 6; i++) {
            await connectToDify({ url: server.url }, { email: ADMIN.email, password: `Wrong-${i}-password` }).catch(() => undefined);
        }
        server.resetCalls();
        const error = await connectToDify({ url: server.url }, ADMIN).catch((e: unknown) => e as Error);
        expect((error as Error).message).toMatch(/HTTP 429 email_code_login_limit.*locked this account/);
        expect((error as Error).message).not.toContain(ADMIN.password);
        expect(server.count({ route: "POST /login" })).toBe(1);
    });
});

describe("reaching Dify", () => {
    it("refuses an address that does not answer like Dify (no X-Version) and reports unreachable hosts", async () => {
        const plain = http.createServer((_req, res) => {
            res.writeHead(200, { "Content-Type": "text/html" });
            res.end("<html>nginx</html>");
        });
        await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
        const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
        await expect(probeDify({ url })).rejects.toThrow(/without a usable X-Version header/);
        plain.closeAllConnections();
        await new Promise<void>((resolve) => plain.close(() => resolve()));
        // A port nothing listens on any more (and no pooled connection to it).
        const unused = http.createServer();
        await new Promise<void>((resolve) => unused.listen(0, "127.0.0.1", resolve));
        const closedUrl = `http://127.0.0.1:${(unused.address() as AddressInfo).port}`;
        await new Promise<void>((resolve) => unused.close(() => resolve()));
        await expect(probeDify({ url: closedUrl })).rejects.toThrow(/could not reach Dify.*ECONNREFUSED/);
    });

    it("maps 200 answers with result=fail to errors", async () => {
        const server = await startDifyConsoleServer({ version: "1.8.0", admin: ADMIN, allowRegister: true });
        await expect(connectToDify({ url: server.url }, { email: "nobody@example.com", password: "Whatever-123" })).rejects.toThrow(
            /HTTP 200 account_not_found/,
        );
        await server.close();
    });
});

describe("lost answers and a restarting proxy (Dify 1.14.1)", () => {
    // A fresh server per test: an injected fault left unused must not leak into the next test.
    let server: DifyConsoleServer;
    beforeEach(async () => {
        server = await startDifyConsoleServer({ version: "1.14.1", admin: ADMIN });
    });
    afterEach(() => server.close());

    it("retries reads answered 502/503/504 with a short backoff, a bounded number of times", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        server.resetCalls();
        server.failNextRequests(1, { status: 502 });
        server.failNextRequests(1, { status: 504 });
        expect(await session.get("/account/profile")).toMatchObject({ email: ADMIN.email });
        expect(server.calls.map((c) => c.status)).toEqual([502, 504, 200]);

        const quick = await connectToDify({ url: server.url, retryDelaysMs: [1, 1, 1, 1] }, ADMIN);
        server.resetCalls();
        server.failNextRequests(5, { status: 503, route: "GET /account/profile" });
        const error = (await quick.get("/account/profile").catch((e: unknown) => e)) as DifyApiError;
        expect(error).toMatchObject({ status: 503 });
        expect(server.count({ route: "GET /account/profile" })).toBe(5);
        expect(await quick.get("/account/profile")).toMatchObject({ email: ADMIN.email });
    });

    it("never retries a write: a 502 fails at once, and a reset after Dify applied it is reported as a lost answer", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        server.resetCalls();
        server.failNextRequests(1, { route: "POST /account/name" });
        const proxied = (await session.post("/account/name", { name: "Proxied" }).catch((e: unknown) => e)) as DifyApiError;
        expect(proxied.message).toMatch(/POST \/console\/api\/account\/name failed \(HTTP 502\): 502 Bad Gateway/);
        expect(isLostAnswer(proxied)).toBe(true);
        expect(server.count({ route: "POST /account/name" })).toBe(1);
        expect(server.accounts[0].name).toBe(ADMIN.name);

        server.resetAfterNextWrite("POST /account/name");
        const reset = (await session.post("/account/name", { name: "Lost Answer" }).catch((e: unknown) => e)) as DifyApiError;
        expect(reset).toMatchObject({ status: 0 });
        expect(reset.message).toMatch(/could not reach Dify\): ECONNRESET/);
        expect(isLostAnswer(reset)).toBe(true);
        expect(server.count({ route: "POST /account/name" })).toBe(2);
        expect(server.accounts[0].name).toBe("Lost Answer"); // applied all the same
    });
});
