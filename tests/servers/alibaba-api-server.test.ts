// The local Alibaba API server must be as strict about signatures as the real gateway, or the provider tests
// would prove nothing about signing. Requests here are signed by the official openapi-core, not by our client.
import * as http from "http";
import OpenApi, { $OpenApiUtil, OpenApiUtil } from "@alicloud/openapi-core";
import * as $dara from "@darabonba/typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlibabaApiServer, startAlibabaApiServer } from "./alibaba-api-server";
import { bashRunner } from "./cloud-assistant-runner";

const ACCESS_KEY_ID = "test-ak-server-test";
const ACCESS_KEY_SECRET = "server-test-secret-0123456789abcdef";

let server: AlibabaApiServer;

beforeAll(async () => {
    server = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET });
});
afterAll(async () => {
    await server.close();
});

function officialClient(accessKeySecret = ACCESS_KEY_SECRET, accessKeyId = ACCESS_KEY_ID): OpenApi {
    return new OpenApi(
        new $OpenApiUtil.Config({
            accessKeyId,
            accessKeySecret,
            endpoint: new URL(server.url).host,
            protocol: "HTTP",
        }),
    );
}

function listApplications(client: OpenApi) {
    return client.callApi(
        new $OpenApiUtil.Params({
            action: "ListApplications",
            version: "2019-08-15",
            protocol: "HTTP",
            pathname: "/",
            method: "POST",
            authType: "AK",
            style: "RPC",
            reqBodyType: "formData",
            bodyType: "json",
        }),
        new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query({}) }),
        new $dara.RuntimeOptions({}),
    );
}

function createMcpServer(client: OpenApi, body: Record<string, unknown>) {
    return client.callApi(
        new $OpenApiUtil.Params({
            action: "CreateApiMcpServer",
            version: "2024-11-30",
            protocol: "HTTP",
            pathname: "/apimcpserver",
            method: "POST",
            authType: "AK",
            style: "ROA",
            reqBodyType: "json",
            bodyType: "json",
        }),
        new $OpenApiUtil.OpenApiRequest({ body }),
        new $dara.RuntimeOptions({}),
    );
}

interface RawRequest {
    method: string;
    path: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

/** Captures exactly what openapi-core sends, by pointing it at a recorder first. */
async function captureSignedRequest(send: (client: OpenApi) => Promise<unknown>): Promise<RawRequest> {
    let captured: RawRequest | undefined;
    const recorder = http.createServer((req, res) => {
        let body = "";
        req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
        req.on("end", () => {
            captured = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body };
            res.writeHead(200, { "content-type": "application/json" });
            res.end("{}");
        });
    });
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    const port = (recorder.address() as { port: number }).port;
    // The signed host header names the recorder; the API server does not care which loopback port it was.
    const client = officialClient();
    client._endpoint = `127.0.0.1:${port}`;
    await send(client);
    await new Promise<void>((resolve) => recorder.close(() => resolve()));
    if (!captured) throw new Error("nothing captured");
    return captured;
}

function replay(request: RawRequest): Promise<{ status: number; body: Record<string, unknown> }> {
    const target = new URL(server.url);
    return new Promise((resolve, reject) => {
        const req = http.request(
            { host: target.hostname, port: target.port, method: request.method, path: request.path, headers: request.headers },
            (res) => {
                let text = "";
                res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
            },
        );
        req.on("error", reject);
        req.end(request.body);
    });
}

describe("signature verification", () => {
    it("accepts a request signed by openapi-core with the right key (RPC and ROA)", async () => {
        const mark = server.mark();
        const rpc = (await listApplications(officialClient())) as { statusCode: number; body: { RequestId: string; Applications: unknown } };
        expect(rpc.statusCode).toBe(200);
        expect(rpc.body.Applications).toEqual({ Application: [] });
        const roa = (await createMcpServer(officialClient(), {
            name: "sig-check",
            apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions"] }],
        })) as { statusCode: number; body: { id: string; urls: { mcp: string } } };
        expect(roa.statusCode).toBe(200);
        expect(roa.body.urls.mcp).toMatch(/\/custom\/sig-check\/id\/.+\/mcp$/);
        expect(server.countSince(mark)).toMatchObject({ reads: 1, writes: 1, errors: 0 });
    });

    it("rejects a request signed with the wrong secret with Alibaba's RPC error body", async () => {
        const error = await listApplications(officialClient("not-the-secret")).catch((err: unknown) => err);
        expect(error).toMatchObject({ name: "ClientError", code: "SignatureDoesNotMatch", statusCode: 400 });
        const data = (error as { data: Record<string, unknown> }).data;
        expect(Object.keys(data).sort()).toEqual(["Code", "HostId", "Message", "Recommend", "RequestId"]);
        expect(data.Message).not.toContain("not-the-secret");
    });

    it("rejects an unknown access key id", async () => {
        const error = await listApplications(officialClient(ACCESS_KEY_SECRET, "test-ak-someone-else")).catch((err: unknown) => err);
        expect(error).toMatchObject({ code: "InvalidAccessKeyId.NotFound", statusCode: 404 });
    });

    it("rejects a tampered query, a tampered body, a missing signature and a replayed nonce", async () => {
        const rpcRequest = await captureSignedRequest((client) =>
            client.callApi(
                new $OpenApiUtil.Params({ action: "GetApplication", version: "2019-08-15", protocol: "HTTP", pathname: "/", method: "POST", authType: "AK", style: "RPC", reqBodyType: "formData", bodyType: "json" }),
                new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query({ AppId: "111" }) }),
                new $dara.RuntimeOptions({}),
            ),
        );
        const roaRequest = await captureSignedRequest((client) =>
            createMcpServer(client, { name: "tamper-check", apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions"] }] }),
        );
        const mark = server.mark();

        const tamperedQuery = await replay({ ...rpcRequest, path: rpcRequest.path.replace("AppId=111", "AppId=222") });
        expect(tamperedQuery.status).toBe(400);
        expect(tamperedQuery.body).toMatchObject({ Code: "SignatureDoesNotMatch" });
        expect(tamperedQuery.body).toHaveProperty("RequestId");

        const tamperedBody = await replay({ ...roaRequest, body: roaRequest.body.replace("tamper-check", "tamper-chek2") });
        expect(tamperedBody.status).toBe(400);
        // ROA errors use camelCase keys.
        expect(tamperedBody.body).toMatchObject({ code: "SignatureDoesNotMatch" });
        expect(Object.keys(tamperedBody.body).sort()).toEqual(["code", "hostId", "message", "recommend", "requestId"]);

        const headers = { ...rpcRequest.headers };
        delete headers.authorization;
        const unsigned = await replay({ ...rpcRequest, headers });
        expect(unsigned.body).toMatchObject({ Code: "IncompleteSignature" });

        const unsignedHeader = await replay({ ...rpcRequest, headers: { ...rpcRequest.headers, "x-acs-extra": "1" } });
        expect(unsignedHeader.body).toMatchObject({ Code: "IncompleteSignature" });

        // The genuine request is accepted once (it names an app that does not exist), then its nonce is spent.
        const genuine = await replay(rpcRequest);
        expect(genuine.body).toMatchObject({ Code: "EntityNotExist.Application" });
        const replayed = await replay(rpcRequest);
        expect(replayed.body).toMatchObject({ Code: "SignatureNonceUsed" });

        expect(server.mcpServers().some((s) => s.name === "tamper-chek2")).toBe(false);
        expect(server.countSince(mark).errors).toBe(6);
    });
});

describe("what the official Python SDKs send (alibaba-api-server.official-sdk.test.ts runs them)", () => {
    const createApplication = (client: OpenApi, query: Record<string, string>) =>
        client.callApi(
            new $OpenApiUtil.Params({ action: "CreateApplication", version: "2019-08-15", protocol: "HTTP", pathname: "/", method: "POST", authType: "AK", style: "RPC", reqBodyType: "formData", bodyType: "json" }),
            new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
            new $dara.RuntimeOptions({}),
        );
    const base = { AppType: "NativeApp", RedirectUris: "http://127.0.0.1/cb" };

    it("reads '+' in a query as a space, for the parameters and the signature alike", async () => {
        const request = await captureSignedRequest((client) => createApplication(client, { ...base, AppName: "plus-check", DisplayName: "C++ and more" }));
        // openapi-core writes a space as %20 and "+" as %2B; the Python SDKs write the space as "+" (urlencode).
        expect(request.path).toContain("DisplayName=C%2B%2B%20and%20more");
        const answer = await replay({ ...request, path: request.path.replace(/%20/g, "+") });
        expect(answer.status).toBe(200);
        expect(server.applications().find((app) => app.AppName === "plus-check")).toMatchObject({ DisplayName: "C++ and more" });
    });

    it("reads booleans in any case (the Python SDKs send True/False) and refuses anything else", async () => {
        await createApplication(officialClient(), { ...base, AppName: "bool-check", DisplayName: "Bool", IsMultiTenant: "False", SecretRequired: "TRUE" });
        expect(server.applications().find((app) => app.AppName === "bool-check")).toMatchObject({ IsMultiTenant: false, SecretRequired: true });
        await expect(createApplication(officialClient(), { ...base, AppName: "bool-check-2", DisplayName: "Bool", IsMultiTenant: "no" })).rejects.toMatchObject({
            code: "InvalidParameter.IsMultiTenant",
        });
    });

    it("records the names of the parameters each request carried", async () => {
        const mark = server.mark();
        await createApplication(officialClient(), { ...base, AppName: "param-check", DisplayName: "Params" });
        expect(server.calls.slice(mark).map((call) => call.parameters)).toEqual([["AppName", "AppType", "DisplayName", "RedirectUris"]]);
    });
});

describe("behaviour", () => {
    it("injects throttling the way openapi-core recognises it", async () => {
        server.injectFault({ kind: "throttling", count: 1, actions: ["ListApplications"] });
        const error = await listApplications(officialClient()).catch((err: unknown) => err);
        expect(error).toMatchObject({ name: "ThrottlingError", code: "Throttling.User" });
        expect(server.pendingFaults()).toBe(0);
        await expect(listApplications(officialClient())).resolves.toMatchObject({ statusCode: 200 });
    });

    it("validates ranges and answers 5xx as ServerError", async () => {
        const create = (query: Record<string, string>) =>
            officialClient().callApi(
                new $OpenApiUtil.Params({ action: "CreateApplication", version: "2019-08-15", protocol: "HTTP", pathname: "/", method: "POST", authType: "AK", style: "RPC", reqBodyType: "formData", bodyType: "json" }),
                new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
                new $dara.RuntimeOptions({}),
            );
        const base = { AppName: "range-check", DisplayName: "Range", AppType: "NativeApp", RedirectUris: "http://127.0.0.1/cb" };
        await expect(create({ ...base, AccessTokenValidity: "899" })).rejects.toMatchObject({ code: "InvalidParameter.AccessTokenValidity" });
        await expect(create({ ...base, RefreshTokenValidity: "31536001" })).rejects.toMatchObject({ code: "InvalidParameter.RefreshTokenValidity" });
        await expect(create({ ...base, AppType: "Desktop" })).rejects.toMatchObject({ code: "InvalidParameter.AppType" });
        await expect(create({ ...base, DisplayName: "" })).rejects.toMatchObject({ code: "MissingParameter" });
        server.injectFault({ kind: "server-error", count: 1 });
        await expect(create(base)).rejects.toMatchObject({ name: "ServerError", code: "ServiceUnavailable", statusCode: 503 });
        const created = (await create(base)) as { body: { Application: { AppId: string; DelegatedScope: unknown } } };
        expect(server.application(created.body.Application.AppId)?.PredefinedScopes).toEqual(["openid"]);
        await expect(create(base)).rejects.toMatchObject({ code: "EntityAlreadyExists.Application" });
    });
});

describe("what the MCP server stand-in needs from it (mcpBaseUrl, oauthClient, mcpServerByPath)", () => {
    const call = (client: OpenApi, action: string, query: Record<string, string>) =>
        client.callApi(
            new $OpenApiUtil.Params({ action, version: "2019-08-15", protocol: "HTTP", pathname: "/", method: "POST", authType: "AK", style: "RPC", reqBodyType: "formData", bodyType: "json" }),
            new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
            new $dara.RuntimeOptions({}),
        ) as Promise<{ body: Record<string, Record<string, string>> }>;

    it("hands out MCP URLs on mcpBaseUrl, finds a server by its URL path, and shows RAM apps as OAuth clients", async () => {
        const local = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET, mcpBaseUrl: "http://127.0.0.1:4321/" });
        try {
            const client = new OpenApi(new $OpenApiUtil.Config({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET, endpoint: new URL(local.url).host, protocol: "HTTP" }));
            const callback = "http://127.0.0.1:5001/console/api/mcp/oauth/callback";
            const scopes = { PredefinedScopes: "/acs/mcp-server", RedirectUris: callback };
            const web = (await call(client, "CreateApplication", { AppName: "web", DisplayName: "Web", AppType: "WebApp", ...scopes })).body.Application.AppId;
            const native = (await call(client, "CreateApplication", { AppName: "native", DisplayName: "Native", AppType: "NativeApp", ...scopes })).body.Application.AppId;
            // A WebApp is confidential: with no secret yet nothing authenticates it; then any of its secrets does.
            expect(local.oauthClient(web)).toEqual({ clientId: web, redirectUris: [callback], clientSecrets: [], scopes: ["openid", "/acs/mcp-server"] });
            const first = (await call(client, "CreateAppSecret", { AppId: web })).body.AppSecret.AppSecretValue;
            const second = (await call(client, "CreateAppSecret", { AppId: web })).body.AppSecret.AppSecretValue;
            expect(local.oauthClient(web)?.clientSecrets).toEqual([first, second]);
            // A NativeApp is public.
            expect(local.oauthClient(native)).not.toHaveProperty("clientSecrets");
            expect(local.oauthClient("4000000000000000000")).toBeUndefined();

            const created = (
                (await createMcpServer(client, { name: "ecs-read", oauthClientId: native, apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions"] }] })) as {
                    body: { id: string; urls: { mcp: string; sse: string } };
                }
            ).body;
            expect(created.urls.mcp).toBe(`http://127.0.0.1:4321/accounts/${local.accountId}/custom/ecs-read/id/${created.id}/mcp`);
            expect(created.urls.sse).toBe(`http://127.0.0.1:4321/accounts/${local.accountId}/custom/ecs-read/id/${created.id}/sse`);
            expect(local.mcpServerByPath(new URL(created.urls.mcp).pathname)).toMatchObject({ id: created.id, oauthClientId: native });
            expect(local.mcpServerByPath(new URL(created.urls.sse).pathname)).toMatchObject({ id: created.id });
            expect(local.mcpServerByPath(`/accounts/${local.accountId}/custom/ecs-read/id/other/mcp`)).toBeUndefined();

            // Deleted out of band: neither a server nor a client any more.
            local.deleteMcpServerOutOfBand(created.id);
            expect(local.mcpServerByPath(new URL(created.urls.mcp).pathname)).toBeUndefined();
            local.deleteApplicationOutOfBand(web);
            expect(local.oauthClient(web)).toBeUndefined();
        } finally {
            await local.close();
        }
    });

    it("without mcpBaseUrl, MCP URLs name the host the server was created through, over https", async () => {
        const created = (await createMcpServer(officialClient(), { name: "host-check", apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions"] }] })) as {
            body: { id: string; urls: { mcp: string } };
        };
        expect(created.body.urls.mcp).toBe(`https://${new URL(server.url).host}/accounts/${server.accountId}/custom/host-check/id/${created.body.id}/mcp`);
    });
});

describe("Cloud Assistant (Ecs 2014-05-26, RPC)", () => {
    const ecs = (action: string, query: Record<string, string>, client = officialClient()) =>
        client.callApi(
            new $OpenApiUtil.Params({ action, version: "2014-05-26", protocol: "HTTP", pathname: "/", method: "POST", authType: "AK", style: "RPC", reqBodyType: "formData", bodyType: "json" }),
            new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
            new $dara.RuntimeOptions({}),
        ) as Promise<{ statusCode: number; body: Record<string, unknown> }>;
    const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
    const runCommand = (query: Record<string, string>) =>
        ecs("RunCommand", { RegionId: "cn-hangzhou", Type: "RunShellScript", CommandContent: b64("echo hi"), ContentEncoding: "Base64", "InstanceId.1": "i-validate", ...query });
    const withoutKey = (query: Record<string, string>, key: string) => Object.fromEntries(Object.entries(query).filter(([name]) => name !== key));

    it("validates RunCommand's parameters as the SDK documents them", async () => {
        server.addInstance("i-validate", {});
        await expect(ecs("RunCommand", withoutKey({ RegionId: "x", Type: "RunShellScript", CommandContent: "echo", "InstanceId.1": "i-validate" }, "RegionId"))).rejects.toMatchObject({
            code: "MissingParameter",
            statusCode: 400,
        });
        await expect(ecs("RunCommand", { RegionId: "cn-hangzhou", Type: "RunShellScript", "InstanceId.1": "i-validate" })).rejects.toMatchObject({ code: "MissingParameter" });
        await expect(runCommand({ Type: "Shell" })).rejects.toMatchObject({ code: "InvalidCmdType.NotFound", statusCode: 403 });
        // A valid type that does not suit the (Linux) instance.
        await expect(runCommand({ Type: "RunBatScript" })).rejects.toMatchObject({ code: "InvalidInstance.NotMatch", statusCode: 403 });
        await expect(runCommand({ Timeout: "9" })).rejects.toMatchObject({ code: "InvalidParameter.Timeout", statusCode: 400 });
        await expect(runCommand({ Timeout: "86401" })).rejects.toMatchObject({ code: "InvalidParameter.Timeout" });
        await expect(runCommand({ CommandContent: "echo hi" })).rejects.toMatchObject({ code: "InvalidParameter.CommandContent" });
        await expect(runCommand({ CommandContent: b64("#".repeat(18433)) })).rejects.toMatchObject({ code: "CmdContent.ExceedLimit", statusCode: 403 });
        await expect(runCommand({ Name: "n".repeat(129) })).rejects.toMatchObject({ code: "CmdName.ExceedLimit", statusCode: 403 });
        await expect(runCommand({ KeepCommand: "maybe" })).rejects.toMatchObject({ code: "InvalidParameter.KeepCommand" });
        await expect(runCommand({ "InstanceId.1": "i-nowhere" })).rejects.toMatchObject({ code: "InvalidInstance.NotFound", statusCode: 404 });
        // Names the SDK's request model does not define (a misspelling, a list sent unflattened) are refused.
        await expect(runCommand({ TimeOut: "30" })).rejects.toMatchObject({ code: "InvalidParameter", statusCode: 400 });
        await expect(ecs("RunCommand", { RegionId: "cn-hangzhou", Type: "RunShellScript", CommandContent: "echo", InstanceId: "i-validate" })).rejects.toMatchObject({
            code: "InvalidParameter",
        });
        expect(server.invocationsOf("i-validate")).toEqual([]);

        // Accepted: PlainText (the default), "base64" in any case, and an unknown encoding read as PlainText.
        const plain = await ecs("RunCommand", { RegionId: "cn-hangzhou", Type: "RunShellScript", CommandContent: "echo 'a+b' & wait", "InstanceId.1": "i-validate" });
        const lower = await runCommand({ ContentEncoding: "base64", KeepCommand: "False" });
        const other = await runCommand({ ContentEncoding: "Hex", CommandContent: "echo hex" });
        const stored = (answer: { body: Record<string, unknown> }) => server.invocation(String(answer.body.InvokeId));
        expect(stored(plain)).toMatchObject({ Script: "echo 'a+b' & wait", Timeout: 60, KeepCommand: false, Name: "" });
        expect(stored(lower)).toMatchObject({ Script: "echo hi", KeepCommand: false });
        expect(stored(other)).toMatchObject({ Script: "echo hex" });
        expect(Object.keys(plain.body).sort()).toEqual(["CommandId", "InvokeId", "RequestId"]);
        await server.runsSettled();
    });

    it("DescribeInvocationResults answers Output in Base64 by default, PlainText on request, in the SDK's nesting", async () => {
        server.addInstance("i-encoding", { run: async () => ({ output: "héllo+world\n", exitCode: 0 }) });
        const started = await runCommand({ "InstanceId.1": "i-encoding" });
        await server.runsSettled();
        const query = { RegionId: "cn-hangzhou", InvokeId: String(started.body.InvokeId), InstanceId: "i-encoding" };
        type Answer = { Invocation: { TotalCount: number; InvocationResults: { InvocationResult: Record<string, unknown>[] } } };
        const base64 = (await ecs("DescribeInvocationResults", query)).body as unknown as Answer;
        expect(base64.Invocation.TotalCount).toBe(1);
        expect(base64.Invocation.InvocationResults.InvocationResult[0]).toMatchObject({
            InvokeId: started.body.InvokeId,
            CommandId: started.body.CommandId,
            InstanceId: "i-encoding",
            InvocationStatus: "Success",
            InvokeRecordStatus: "Finished",
            ExitCode: 0,
            Output: b64("héllo+world\n"),
            Dropped: 0,
            ErrorCode: "",
        });
        const plain = (await ecs("DescribeInvocationResults", { ...query, ContentEncoding: "PlainText" })).body as unknown as Answer;
        expect(plain.Invocation.InvocationResults.InvocationResult[0].Output).toBe("héllo+world\n");
        await expect(ecs("DescribeInvocationResults", withoutKey(query, "RegionId"))).rejects.toMatchObject({ code: "MissingParameter" });
        // Another region knows nothing of the run.
        const elsewhere = (await ecs("DescribeInvocationResults", { ...query, RegionId: "cn-beijing" })).body as unknown as Answer;
        expect(elsewhere.Invocation.InvocationResults.InvocationResult).toEqual([]);
    });

    it("DescribeCloudAssistantStatus answers CloudAssistantStatus as a string, and knows a never-seen agent", async () => {
        server.addInstance("i-status-on", {});
        server.addInstance("i-status-off", { agentOnline: false });
        const answer = (await ecs("DescribeCloudAssistantStatus", { RegionId: "cn-hangzhou", "InstanceId.1": "i-status-on", "InstanceId.2": "i-status-off", "InstanceId.3": "i-unknown" }))
            .body as { TotalCount: number; InstanceCloudAssistantStatusSet: { InstanceCloudAssistantStatus: Record<string, unknown>[] } };
        expect(answer.TotalCount).toBe(2);
        const [on, off] = answer.InstanceCloudAssistantStatusSet.InstanceCloudAssistantStatus;
        expect(on).toMatchObject({ InstanceId: "i-status-on", CloudAssistantStatus: "true", OSType: "Linux" });
        expect(on.CloudAssistantVersion).not.toBe("");
        expect(off).toMatchObject({ InstanceId: "i-status-off", CloudAssistantStatus: "false", CloudAssistantVersion: "" });
        expect(off).not.toHaveProperty("LastHeartbeatTime");
    });

    it("checks signatures and nonces, and injects faults, for Ecs as for the other products", async () => {
        server.addInstance("i-faults", {});
        await expect(ecs("DescribeCloudAssistantStatus", { RegionId: "cn-hangzhou" }, officialClient("not-the-secret"))).rejects.toMatchObject({ code: "SignatureDoesNotMatch" });
        const request = await captureSignedRequest((client) =>
            ecs("RunCommand", { RegionId: "cn-hangzhou", Type: "RunShellScript", CommandContent: b64("echo 1"), ContentEncoding: "Base64", "InstanceId.1": "i-faults" }, client),
        );
        const tampered = await replay({ ...request, path: request.path.replace(encodeURIComponent(b64("echo 1")), encodeURIComponent(b64("echo 2"))) });
        expect(tampered.body).toMatchObject({ Code: "SignatureDoesNotMatch" });
        expect((await replay(request)).status).toBe(200);
        expect((await replay(request)).body).toMatchObject({ Code: "SignatureNonceUsed" });
        expect(server.invocationsOf("i-faults").map((run) => run.Script)).toEqual(["echo 1"]);

        // A lost answer: the command ran, the caller got a 500.
        server.injectFault({ kind: "server-error", count: 1, actions: ["RunCommand"], afterCommit: true, status: 500 });
        await expect(runCommand({ "InstanceId.1": "i-faults" })).rejects.toMatchObject({ code: "InternalError", statusCode: 500 });
        expect(server.invocationsOf("i-faults")).toHaveLength(2);
        await server.runsSettled();
    });

    it("a run that outlives its Timeout is killed and reported as Timeout / ExecutionTimeout, with the output so far", async () => {
        server.addInstance("i-timeout", { run: bashRunner() });
        const started = await runCommand({ "InstanceId.1": "i-timeout", Timeout: "10", CommandContent: b64("echo started; sleep 60; echo never") });
        const begun = Date.now();
        await server.runsSettled();
        expect(Date.now() - begun).toBeGreaterThan(9_000);
        expect(server.invocation(String(started.body.InvokeId))).toMatchObject({ InvocationStatus: "Timeout", ErrorCode: "ExecutionTimeout", Output: "started\n" });
    }, 30_000);
});
