// The RAM OAuth application provider, run the way the Pulumi engine runs it (serialized from dist/, revived in
// a fresh Node process) against the local Alibaba API server, which verifies every request's signature.
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
    RAM_OAUTH_APP_SECRET_OUTPUTS,
    RamOAuthAppInputs,
    RamOAuthAppOutputs,
    RamOAuthAppRawInputs,
    RamOAuthApplication,
    checkRamOAuthAppInputs,
    diffRamOAuthApp,
} from "../../../dynamic-providers/alibaba/ram-oauth-app";
import { difyMcpOAuthCallbackUrl } from "../../../rules/oauth-callback";
import { unknownValue as UNKNOWN_VALUE } from "@pulumi/pulumi/runtime/rpc";
import { EngineCheckResult, HostedProvider, engineCreate as engineCreateOn, engineDiff as engineDiffOn, startHostedProvider } from "../../harness/engine-provider";
import { AlibabaProviderFixture, startAlibabaProviderFixture } from "../../servers/alibaba-provider-fixture";
import { AlibabaApiServer } from "../../servers/alibaba-api-server";

const ACCESS_KEY_ID = "test-ak-ram-provider";
/** Every parameter of CreateApplication in Alibaba's official SDK request models (Python alibabacloud-ims20190815
 *  3.5.0, @alicloud/ims20190815 2.3.2); nothing else may be sent. */
const SDK_CREATE_APPLICATION_PARAMETERS = [
    "AccessTokenValidity",
    "AppName",
    "AppType",
    "DisplayName",
    "IsMultiTenant",
    "PredefinedScopes",
    "ProtocolVersion",
    "RedirectUris",
    "RefreshTokenValidity",
    "RequiredScopes",
    "SecretRequired",
];
const ACCESS_KEY_SECRET = "ram-provider-test-secret-7f3a9c1e5b";

let server: AlibabaApiServer;
let provider: HostedProvider;
let nameCounter = 0;

let fixture: AlibabaProviderFixture | undefined;

beforeAll(async () => {
    fixture = await startAlibabaProviderFixture({
        module: "dynamic-providers/alibaba/ram-oauth-app",
        exportName: "ramOAuthApplicationProvider",
        accessKeyId: ACCESS_KEY_ID,
        accessKeySecret: ACCESS_KEY_SECRET,
    });
    ({ server, provider } = fixture);
});

afterAll(async () => {
    await fixture?.close();
});

function rawInputs(overrides: RamOAuthAppRawInputs = {}): RamOAuthAppRawInputs {
    nameCounter++;
    return {
        appName: `dify-mcp-test-${nameCounter}`,
        redirectUris: ["http://203.0.113.10/console/api/mcp/oauth/callback"],
        endpoint: server.url,
        ...overrides,
    };
}

function engineCreate(raw: RamOAuthAppRawInputs) {
    return engineCreateOn<RamOAuthAppRawInputs, RamOAuthAppInputs, RamOAuthAppOutputs>(provider, raw);
}

function engineDiff(id: string, olds: RamOAuthAppOutputs, oldInputs: RamOAuthAppRawInputs, raw: RamOAuthAppRawInputs) {
    return engineDiffOn<RamOAuthAppRawInputs, RamOAuthAppInputs, RamOAuthAppOutputs>(provider, id, olds, oldInputs, raw);
}

describe("check", () => {
    it("fills in the documented defaults (NativeApp, 3600 s, 7776000 s, openid + /acs/mcp-server, OAuth 2.1, no secret)", () => {
        const { inputs, failures } = checkRamOAuthAppInputs({ appName: "dify-mcp", redirectUris: ["http://a.example/cb"] });
        expect(failures).toEqual([]);
        expect(inputs).toEqual({
            appName: "dify-mcp",
            displayName: "dify-mcp",
            appType: "NativeApp",
            accessTokenValidity: 3600,
            refreshTokenValidity: 7776000,
            redirectUris: ["http://a.example/cb"],
            scopes: ["/acs/mcp-server", "openid"],
            requiredScopes: ["/acs/mcp-server"],
            protocolVersion: "2.1",
            createSecret: false,
            endpoint: "ims.aliyuncs.com",
        });
        const web = checkRamOAuthAppInputs({ appName: "dify-mcp", appType: "WebApp", redirectUris: ["http://a.example/cb"] }).inputs;
        expect(web).toMatchObject({ refreshTokenValidity: 2592000, createSecret: true });
    });

    it.each([
        [{ appType: "ServerApp" }, "appType", /WebApp, NativeApp/],
        [{ accessTokenValidity: 899 }, "accessTokenValidity", /900 to 10800/],
        [{ accessTokenValidity: 10801 }, "accessTokenValidity", /900 to 10800/],
        [{ refreshTokenValidity: 7199 }, "refreshTokenValidity", /7200 to 31536000/],
        [{ refreshTokenValidity: 31536001 }, "refreshTokenValidity", /7200 to 31536000/],
        [{ scopes: ["openid", "profile"] }, "scopes", /\/acs\/mcp-server/],
        [{ requiredScopes: ["aliuid"] }, "requiredScopes", /subset of scopes/],
        [{ redirectUris: [] }, "redirectUris", /at least one URL/],
        [{ redirectUris: ["not a url"] }, "redirectUris", /absolute URL/],
        [{ redirectUris: ["http://a.example/cb;http://b.example/cb"] }, "redirectUris", /separator/],
        [{ appName: "has space" }, "appName", /letters, digits/],
        [{ displayName: "a display name longer than 24" }, "displayName", /24 characters/],
        [{ protocolVersion: "2.0" }, "protocolVersion", /"2.1"/],
        [{ endpoint: "https://ims.aliyuncs.com/path" }, "endpoint", /without path/],
    ])("rejects %j naming %s", (overrides, property, reason) => {
        const { failures } = checkRamOAuthAppInputs({ appName: "dify-mcp", redirectUris: ["http://a.example/cb"], ...(overrides as RamOAuthAppRawInputs) });
        const failure = failures.find((candidate) => candidate.property === property);
        expect(failure?.reason).toMatch(reason);
        // Only the bad field is reported (a missing MCP scope also breaks the default requiredScopes).
        expect(failures.every((candidate) => candidate.property === property || candidate.property === "requiredScopes")).toBe(true);
    });

    it("passes values that are unknown during preview through unchecked", () => {
        const { failures, inputs } = checkRamOAuthAppInputs({ appName: "dify-mcp", redirectUris: [UNKNOWN_VALUE] });
        expect(failures).toEqual([]);
        expect(inputs.redirectUris).toEqual([UNKNOWN_VALUE]);
    });

    it("reports failures through the hosted provider, as `pulumi preview` shows them", async () => {
        const result = await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, { appName: "x", redirectUris: ["http://a.example/cb"], appType: "ServerApp" });
        expect(result.failures).toEqual([expect.objectContaining({ property: "appType" })]);
    });

    it("derives Dify's callback from CONSOLE_API_URL", () => {
        expect(difyMcpOAuthCallbackUrl("http://203.0.113.10/")).toBe("http://203.0.113.10/console/api/mcp/oauth/callback");
    });
});

describe("lifecycle against the local Ims API", () => {
    it("creates with one write, reads back equal with one read, and a no-op diff is empty", async () => {
        const raw = rawInputs({ redirectUris: ["http://b.example/cb", "http://a.example/cb"], scopes: ["/acs/mcp-server"] });
        const mark = server.mark();
        const { id, outs, inputs } = await engineCreate(raw);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, byAction: { CreateApplication: 1 } });
        expect(outs.appId).toBe(id);
        const stored = server.application(id);
        expect(stored).toMatchObject({ AppName: raw.appName, AppType: "NativeApp", ProtocolVersion: "2.1", IsMultiTenant: false, SecretRequired: false });
        // Exactly the SDK model's parameters, IsMultiTenant and SecretRequired spelled out.
        expect(server.calls[mark].parameters).toEqual(SDK_CREATE_APPLICATION_PARAMETERS);
        expect(outs).toMatchObject({ isMultiTenant: false, secretRequired: false });
        // null, not left out: a preview reads a missing output as unknown.
        expect(outs.clientSecret).toBeNull();

        const readMark = server.mark();
        const read = await provider.call<{ id: string; props: RamOAuthAppOutputs; inputs: RamOAuthAppInputs }>("read", id, outs);
        expect(server.countSince(readMark)).toMatchObject({ reads: 1, writes: 0 });
        expect(read.id).toBe(id);
        expect(read.props).toEqual(outs);
        expect(read.inputs).toEqual(inputs);

        // Same program again, with lists in another order and defaults spelled out: nothing to do.
        const again = await engineDiff(id, read.props, read.inputs, {
            ...raw,
            redirectUris: ["http://a.example/cb", "http://b.example/cb"],
            scopes: ["openid", "/acs/mcp-server"],
            accessTokenValidity: 3600,
            appType: "NativeApp",
        });
        expect(again.diff).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it.each<[string, RamOAuthAppRawInputs, (app: NonNullable<ReturnType<AlibabaApiServer["application"]>>) => unknown, unknown]>([
        ["displayName", { displayName: "Dify MCP" }, (app) => app.DisplayName, "Dify MCP"],
        ["accessTokenValidity", { accessTokenValidity: 10800 }, (app) => app.AccessTokenValidity, 10800],
        ["refreshTokenValidity", { refreshTokenValidity: 31536000 }, (app) => app.RefreshTokenValidity, 31536000],
        ["redirectUris", { redirectUris: ["https://dify.example.com/console/api/mcp/oauth/callback"] }, (app) => app.RedirectUris, ["https://dify.example.com/console/api/mcp/oauth/callback"]],
        ["scopes", { scopes: ["/acs/mcp-server", "aliuid", "profile"] }, (app) => [...app.PredefinedScopes].sort(), ["/acs/mcp-server", "aliuid", "openid", "profile"]],
        ["requiredScopes", { requiredScopes: ["/acs/mcp-server", "openid"] }, (app) => [...app.RequiredScopes].sort(), ["/acs/mcp-server", "openid"]],
    ])("updates %s in place with exactly one write", async (property, change, liveValue, expected) => {
        const raw = rawInputs();
        const { id, outs, inputs } = await engineCreate(raw);
        const { diff, inputs: newInputs } = await engineDiff(id, outs, inputs, { ...raw, ...change });
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });

        const mark = server.mark();
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, newInputs);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, byAction: { UpdateApplication: 1 } });
        const live = server.application(id);
        expect(live && liveValue(live)).toEqual(expected);
        expect(updated.outs.appId).toBe(id);

        // The stored outputs now match the live app and the program: refresh and a new diff find nothing.
        const read = await provider.call<{ props: RamOAuthAppOutputs }>("read", id, updated.outs);
        expect(read.props).toEqual(updated.outs);
        expect((await engineDiff(id, read.props, newInputs, { ...raw, ...change })).diff.changes).toBe(false);
        void property;
    });

    it.each<[RamOAuthAppRawInputs, string, boolean]>([
        [{ appType: "WebApp" }, "appType", true],
        [{ appName: "dify-mcp-renamed" }, "appName", false],
    ])("replaces the app when %j changes", async (change, property, deleteFirst) => {
        const raw = rawInputs();
        const { id, outs, inputs } = await engineCreate(raw);
        const { diff } = await engineDiff(id, outs, inputs, { ...raw, ...change });
        expect(diff).toEqual({ changes: true, replaces: [property], deleteBeforeReplace: deleteFirst });
    });

    it("replaces an app whose protocol version is not 2.1 (UpdateApplication cannot change it)", () => {
        const inputs = checkRamOAuthAppInputs({ appName: "legacy", redirectUris: ["http://a.example/cb"] }).inputs;
        const olds: RamOAuthAppOutputs = { ...inputs, appId: "1", protocolVersion: "2.0" };
        expect(diffRamOAuthApp(olds, inputs)).toEqual({ changes: true, replaces: ["protocolVersion"], deleteBeforeReplace: true });
    });

    it("makes a multi-tenant app (made before IsMultiTenant=false was sent) private with one in-place update", async () => {
        const raw = rawInputs();
        const { id, outs: created, inputs } = await engineCreate(raw);
        // What an existing stack holds: the NativeApp as the API's default made it, multi-tenant.
        server.updateApplicationOutOfBand(id, { IsMultiTenant: true });
        const outs = { ...created, isMultiTenant: true };

        const { diff, inputs: newInputs } = await engineDiff(id, outs, inputs, raw);
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        const mark = server.mark();
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, newInputs);
        expect(server.countSince(mark)).toMatchObject({ total: 1, byAction: { UpdateApplication: 1 } });
        expect(server.calls[mark].parameters).toContain("NewIsMultiTenant");
        expect(server.application(id)).toMatchObject({ IsMultiTenant: false, SecretRequired: false });
        expect(updated.outs).toMatchObject({ isMultiTenant: false, secretRequired: false });

        // Settled: refresh reads it back the same, and nothing more to do.
        const read = await provider.call<{ props: RamOAuthAppOutputs }>("read", id, updated.outs);
        expect(read.props).toEqual(updated.outs);
        expect((await engineDiff(id, read.props, newInputs, raw)).diff.changes).toBe(false);
        // A stored null (the API did not say) is not drift.
        expect(diffRamOAuthApp({ ...updated.outs, isMultiTenant: null, secretRequired: null }, checkRamOAuthAppInputs(raw).inputs).changes).toBe(false);
    });

    it("a NativeApp requires its secret exactly when it has one (SecretRequired follows createSecret)", async () => {
        const raw = rawInputs({ createSecret: true });
        const { id, outs, inputs } = await engineCreate(raw);
        expect(server.application(id)).toMatchObject({ AppType: "NativeApp", IsMultiTenant: false, SecretRequired: true });
        expect(outs).toMatchObject({ secretRequired: true, clientSecretId: server.appSecrets(id)[0].AppSecretId });

        const { diff, inputs: withoutSecret } = await engineDiff(id, outs, inputs, { ...raw, createSecret: false });
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        const mark = server.mark();
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, withoutSecret);
        expect(server.countSince(mark).byAction).toEqual({ UpdateApplication: 1, DeleteAppSecret: 1 });
        expect(server.application(id)).toMatchObject({ SecretRequired: false });
        expect(server.appSecrets(id)).toEqual([]);
        expect(updated.outs).toMatchObject({ secretRequired: false, clientSecretId: null, clientSecret: null });
        expect((await engineDiff(id, updated.outs, withoutSecret, { ...raw, createSecret: false })).diff.changes).toBe(false);
    });

    it("shows drift on refresh and returns inputs the next diff compares against", async () => {
        const raw = rawInputs();
        const { id, outs } = await engineCreate(raw);
        server.updateApplicationOutOfBand(id, { DisplayName: "Changed in console", AccessTokenValidity: 1800 });
        const read = await provider.call<{ props: RamOAuthAppOutputs; inputs: RamOAuthAppInputs }>("read", id, outs);
        expect(read.props).toMatchObject({ displayName: "Changed in console", accessTokenValidity: 1800 });
        expect(read.inputs).toMatchObject({ displayName: "Changed in console", accessTokenValidity: 1800 });
        const { diff } = await engineDiff(id, read.props, read.inputs, raw);
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    });

    it("reports an app deleted out of band as gone, and deleting it again succeeds", async () => {
        const { id, outs } = await engineCreate(rawInputs());
        server.deleteApplicationOutOfBand(id);
        const read = await provider.call<{ id: string; props?: unknown }>("read", id, outs);
        expect(read.id).toBe("");
        const mark = server.mark();
        await expect(provider.call("delete", id, outs)).resolves.toBeNull();
        expect(server.countSince(mark)).toMatchObject({ total: 1, byAction: { DeleteApplication: 1 } });
    });

    it("deletes with one write", async () => {
        const { id, outs } = await engineCreate(rawInputs());
        const mark = server.mark();
        await provider.call("delete", id, outs);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, errors: 0 });
        expect(server.application(id)).toBeUndefined();
    });
});

describe("errors and retries", () => {
    it("retries throttling and still creates exactly one app", async () => {
        const raw = rawInputs();
        const checked = await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, raw);
        server.injectFault({ kind: "throttling", count: 2, actions: ["CreateApplication"] });
        const mark = server.mark();
        const created = await provider.call<{ id: string }>("create", checked.inputs);
        expect(server.countSince(mark)).toMatchObject({ byAction: { CreateApplication: 3 }, errors: 2 });
        expect(server.applications().filter((app) => app.AppName === raw.appName)).toHaveLength(1);
        expect(created.id).toBe(server.applications().find((app) => app.AppName === raw.appName)?.AppId);
    });

    it("adopts the app when a create was applied but answered 5xx, instead of failing or duplicating", async () => {
        const raw = rawInputs();
        const checked = await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, raw);
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateApplication"], status: 500, afterCommit: true });
        const mark = server.mark();
        const created = await provider.call<{ id: string; outs: RamOAuthAppOutputs }>("create", checked.inputs);
        const apps = server.applications().filter((app) => app.AppName === raw.appName);
        expect(apps).toHaveLength(1);
        expect(created.id).toBe(apps[0].AppId);
        expect(server.countSince(mark).byAction).toEqual({ CreateApplication: 2, ListApplications: 1 });
    });

    it("does not retry a 400 and surfaces its code and request id", async () => {
        const raw = rawInputs({ scopes: ["/acs/mcp-server", "/acs/not-a-product"] });
        const checked = await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, raw);
        const mark = server.mark();
        const error = await provider.call("create", checked.inputs).catch((err: Error) => err);
        expect(error).toBeInstanceOf(Error);
        const calls = server.calls.slice(mark);
        expect(calls).toHaveLength(1);
        expect((error as Error).message).toContain("InvalidParameter.Scope");
        expect((error as Error).message).toContain(`RequestId: ${calls[0].requestId}`);
        expect((error as Error).message).toContain("Ims.CreateApplication");
    });

    it("retries a refused connection and then reports it", async () => {
        const { id, outs } = await engineCreate(rawInputs());
        // Port 1 on loopback: nothing listens there.
        const error = await provider.call("read", id, { ...outs, endpoint: "http://127.0.0.1:1" }).catch((err: Error) => err);
        expect((error as Error).message).toMatch(/Ims\.GetApplication failed after 4 attempts: ECONNREFUSED/);
    });

    it("gives up after the configured attempts on persistent 5xx, naming the code", async () => {
        const { id, outs, inputs } = await engineCreate(rawInputs());
        server.injectFault({ kind: "server-error", count: 10, actions: ["GetApplication"] });
        const mark = server.mark();
        const error = await provider.call("read", id, outs).catch((err: Error) => err);
        server.clearFaults();
        expect((error as Error).message).toMatch(/Ims\.GetApplication failed after 4 attempts: ServiceUnavailable \(HTTP 503\)/);
        expect(server.countSince(mark).total).toBe(4);
        void inputs;
    });
});

describe("client secret", () => {
    it("creates the AppSecret with a web app, keeps it out of plain outputs, and deletes it with the app", async () => {
        const raw = rawInputs({ appType: "WebApp" });
        const mark = server.mark();
        const { id, outs, inputs } = await engineCreate(raw);
        expect(server.countSince(mark)).toMatchObject({ writes: 2, reads: 0, byAction: { CreateApplication: 1, CreateAppSecret: 1 } });
        const [secret] = server.appSecrets(id);
        expect(outs.clientSecret).toBe(secret.AppSecretValue);
        expect(outs.clientSecretId).toBe(secret.AppSecretId);

        // Every output holding the secret is declared secret; nothing else carries it.
        const carriers = Object.entries(outs).filter(([, value]) => JSON.stringify(value).includes(secret.AppSecretValue)).map(([key]) => key);
        expect(carriers).toEqual([...RAM_OAUTH_APP_SECRET_OUTPUTS]);

        // Refresh keeps the secret (it cannot be read back) with a single read.
        const readMark = server.mark();
        const read = await provider.call<{ props: RamOAuthAppOutputs }>("read", id, outs);
        expect(read.props.clientSecret).toBe(secret.AppSecretValue);
        expect(server.countSince(readMark)).toMatchObject({ total: 1 });

        // A failing call never echoes the secret.
        server.injectFault({ kind: "server-error", count: 10, actions: ["UpdateApplication"] });
        const { inputs: renamed } = await engineDiff(id, outs, inputs, { ...raw, displayName: "Renamed" });
        const error = await provider.call("update", id, outs, renamed).catch((err: Error) => err);
        server.clearFaults();
        expect((error as Error).message).toContain("ServiceUnavailable");
        expect((error as Error).message).not.toContain(secret.AppSecretValue);
        expect(provider.output()).not.toContain(secret.AppSecretValue);

        const deleteMark = server.mark();
        await provider.call("delete", id, outs);
        expect(server.countSince(deleteMark)).toMatchObject({ writes: 1 });
        expect(server.appSecrets(id)).toEqual([]);
    });

    it("removes the app again when its secret cannot be created, so a failed create leaves nothing behind", async () => {
        const raw = rawInputs({ appType: "WebApp" });
        const inputs = (await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, raw)).inputs;
        server.injectFault({ kind: "server-error", count: 10, actions: ["CreateAppSecret"] });
        const error = await provider.call("create", inputs).catch((err: Error) => err);
        server.clearFaults();
        expect((error as Error).message).toContain("Ims.CreateAppSecret failed after 4 attempts");
        expect(server.applications().filter((app) => app.AppName === raw.appName)).toEqual([]);
    });

    it("a lost CreateAppSecret answer on create leaves exactly one secret, the one in state", async () => {
        const raw = rawInputs({ appType: "WebApp" });
        const inputs = (await provider.call<EngineCheckResult<RamOAuthAppInputs>>("check", {}, raw)).inputs;
        // The first CreateAppSecret makes a secret and answers 500; the client retries and gets a second one.
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateAppSecret"], status: 500, afterCommit: true });
        const mark = server.mark();
        const created = await provider.call<{ id: string; outs: RamOAuthAppOutputs }>("create", inputs);
        // A new app has no secret before: one list after the retried create finds the stray, one delete removes it.
        expect(server.countSince(mark).byAction).toEqual({ CreateApplication: 1, CreateAppSecret: 2, ListAppSecretIds: 1, DeleteAppSecret: 1 });
        const secrets = server.appSecrets(created.id);
        expect(secrets).toHaveLength(1);
        expect(created.outs).toMatchObject({ clientSecretId: secrets[0].AppSecretId, clientSecret: secrets[0].AppSecretValue });
        expect(server.oauthClient(created.id)?.clientSecrets).toEqual([created.outs.clientSecret]);
    });

    it("a lost CreateAppSecret answer on update leaves exactly one secret, the one in state", async () => {
        const raw = rawInputs({ appType: "WebApp", createSecret: false });
        const { id, outs, inputs } = await engineCreate(raw);
        expect(server.appSecrets(id)).toEqual([]);
        const { inputs: withSecret } = await engineDiff(id, outs, inputs, { ...raw, createSecret: true });
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateAppSecret"], status: 500, afterCommit: true });
        const mark = server.mark();
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, withSecret);
        expect(server.countSince(mark).byAction).toEqual({ ListAppSecretIds: 2, CreateAppSecret: 2, DeleteAppSecret: 1 });
        const secrets = server.appSecrets(id);
        expect(secrets).toHaveLength(1);
        expect(updated.outs).toMatchObject({ clientSecretId: secrets[0].AppSecretId, clientSecret: secrets[0].AppSecretValue });
    });

    it("a CreateAppSecret that fails after a lost answer removes the secret it made, fails, and the next run makes one", async () => {
        const raw = rawInputs({ appType: "WebApp", createSecret: false });
        const { id, outs, inputs } = await engineCreate(raw);
        const { inputs: withSecret } = await engineDiff(id, outs, inputs, { ...raw, createSecret: true });
        // The first attempt makes a secret and answers 500; every retry fails without doing anything.
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateAppSecret"], status: 500, afterCommit: true });
        server.injectFault({ kind: "server-error", count: 10, actions: ["CreateAppSecret"] });
        const mark = server.mark();
        const error = await provider.call("update", id, outs, withSecret).catch((err: Error) => err);
        server.clearFaults();
        expect((error as Error).message).toContain("Ims.CreateAppSecret failed after 4 attempts: ServiceUnavailable");
        expect(server.countSince(mark).byAction).toEqual({ ListAppSecretIds: 2, CreateAppSecret: 4, DeleteAppSecret: 1 });
        expect(server.appSecrets(id)).toEqual([]);

        // The engine kept the old state (no secret); the next update makes exactly one.
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, withSecret);
        const secrets = server.appSecrets(id);
        expect(secrets).toHaveLength(1);
        expect(updated.outs).toMatchObject({ clientSecretId: secrets[0].AppSecretId, clientSecret: secrets[0].AppSecretValue });
    });

    it("cleaning up after a lost answer removes only the secrets this call made", async () => {
        // An app whose secret the state does not know (made by hand, or by a run whose state was lost).
        const raw = rawInputs({ appType: "WebApp" });
        const { id, outs, inputs } = await engineCreate(raw);
        const [unknownToState] = server.appSecrets(id);
        const stateWithoutSecret = { ...outs, clientSecretId: null, clientSecret: null };
        const { inputs: same } = await engineDiff(id, stateWithoutSecret, inputs, raw);
        // The lost attempt makes the second secret; the retry hits the limit of two (409, not retried).
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateAppSecret"], status: 500, afterCommit: true });
        const error = await provider.call("update", id, stateWithoutSecret, same).catch((err: Error) => err);
        server.clearFaults();
        expect((error as Error).message).toContain("LimitExceeded.AppSecret");
        expect(server.appSecrets(id)).toEqual([unknownToState]);
    });

    it("turning createSecret off deletes the secret with one write", async () => {
        const raw = rawInputs({ appType: "WebApp" });
        const { id, outs, inputs } = await engineCreate(raw);
        const { diff, inputs: withoutSecret } = await engineDiff(id, outs, inputs, { ...raw, createSecret: false });
        expect(diff).toMatchObject({ changes: true, replaces: [] });
        const mark = server.mark();
        const updated = await provider.call<{ outs: RamOAuthAppOutputs }>("update", id, outs, withoutSecret);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, byAction: { DeleteAppSecret: 1 } });
        expect(updated.outs.clientSecret).toBeNull();
        expect(server.appSecrets(id)).toEqual([]);
    });

    it("marks clientSecret as a secret output on the Resource class", async () => {
        // Capture what the class hands to the engine. The closure serializer is stubbed: under vitest the
        // provider's modules are vite-transformed and cannot be serialized (the hosted tests cover that path).
        const resourceRuntime = require("@pulumi/pulumi/runtime/resource") as { registerResource: (...args: unknown[]) => void };
        const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as { serializeFunction: (...args: unknown[]) => Promise<unknown> };
        const spy = vi.spyOn(resourceRuntime, "registerResource").mockImplementation(() => undefined);
        const serializeSpy = vi.spyOn(closure, "serializeFunction").mockResolvedValue({ text: "exports.handler = () => ({});", containsSecrets: false });
        try {
            new RamOAuthApplication("app", { appName: "dify-mcp", consoleApiUrl: "http://203.0.113.10" });
            expect(spy).toHaveBeenCalledTimes(1);
            const [, , type, , , , , props, opts] = spy.mock.calls[0] as [unknown, unknown, string, string, boolean, boolean, unknown, Record<string, unknown>, pulumi.CustomResourceOptions];
            expect(type).toBe("pulumi-nodejs:dynamic/alibaba:RamOAuthApplication");
            expect(opts.additionalSecretOutputs).toContain("clientSecret");
            expect(props).toHaveProperty("clientSecret");
            const redirectUris = await new Promise((resolve) => (props.redirectUris as pulumi.Output<string[]>).apply(resolve));
            expect(redirectUris).toEqual(["http://203.0.113.10/console/api/mcp/oauth/callback"]);
        } finally {
            spy.mockRestore();
            serializeSpy.mockRestore();
        }
    });
});

describe("credentials", () => {
    it("never puts the access key in the serialized provider, outputs or logs", async () => {
        const { outs } = await engineCreate(rawInputs({ appType: "WebApp" }));
        for (const text of [provider.serializedText, JSON.stringify(outs), provider.output()]) {
            expect(text).not.toContain(ACCESS_KEY_SECRET);
            expect(text).not.toContain(ACCESS_KEY_ID);
        }
    });

    it("signs with ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY, the alicloud provider's variables, when only those are set", async () => {
        const aliased = await startHostedProvider({
            module: "dynamic-providers/alibaba/ram-oauth-app",
            exportName: "ramOAuthApplicationProvider",
            env: { ALICLOUD_ACCESS_KEY: ACCESS_KEY_ID, ALICLOUD_SECRET_KEY: ACCESS_KEY_SECRET },
        });
        try {
            const created = await aliased.call<{ id: string }>("create", checkRamOAuthAppInputs(rawInputs()).inputs);
            expect(server.application(created.id)).toBeDefined();
        } finally {
            await aliased.close();
        }
    });

    it("fails with a clear message when the credential chain finds nothing", async () => {
        const bare = await startHostedProvider({ module: "dynamic-providers/alibaba/ram-oauth-app", exportName: "ramOAuthApplicationProvider" });
        try {
            const inputs = checkRamOAuthAppInputs(rawInputs()).inputs;
            const mark = server.mark();
            const error = await bare.call("create", inputs).catch((err: Error) => err);
            expect((error as Error).message).toMatch(/CredentialsNotFound: no Alibaba Cloud credentials found/);
            expect(server.countSince(mark).total).toBe(0);
        } finally {
            await bare.close();
        }
    });
});
