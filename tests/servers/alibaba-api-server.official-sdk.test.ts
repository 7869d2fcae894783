// The fake Alibaba API server must accept what Alibaba's official SDKs send, not only what openapi-core (our
// client) sends. The Python SDKs encode a query's spaces as "+" (the signature's canonical query uses %20) and
// booleans as True/False; here the real SDKs (alibaba_sdk_client.py, in the pinned environment of
// tests/harness/alibaba-sdk-python.ts, installed from PyPI into .cache/) drive the server over loopback, and the
// server must answer every call and store the values decoded. No environment, no pass: building it is part of
// the test (not of a hook, whose failure vitest reports as a skipped test), and a failure to build it fails the
// test with the reason.
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/project-root";
import { AlibabaSdkPython, ensureAlibabaSdkPython, runAlibabaSdkPython } from "../harness/alibaba-sdk-python";
import { AlibabaApiServer, startAlibabaApiServer } from "./alibaba-api-server";
import { bashRunner } from "./cloud-assistant-runner";

const ACCESS_KEY_ID = "test-ak-official-sdk";
const ACCESS_KEY_SECRET = "official-sdk-test-secret-0123456789";
const SCRIPT = path.join(PROJECT_ROOT, "tests", "servers", "alibaba_sdk_client.py");

let server: AlibabaApiServer;

beforeAll(async () => {
    server = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET });
});

afterAll(async () => {
    await server?.close();
});

async function runSdk<T>(sdk: AlibabaSdkPython, request: Record<string, unknown>): Promise<T> {
    const stdin = JSON.stringify({ endpoint: new URL(server.url).host, accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET, ...request });
    return JSON.parse(await runAlibabaSdkPython(sdk, SCRIPT, stdin)) as T;
}

interface CreatePhase {
    appId: string;
    created: { displayName: string; isMultiTenant: boolean; secretRequired: boolean };
    fetched: { displayName: string; isMultiTenant: boolean; secretRequired: boolean; protocolVersion: string; redirectUris: string[] };
    updated: { displayName: string; isMultiTenant: boolean };
    secretIdsBefore: string[];
    secret: { id: string; hasValue: boolean };
    secretIdsAfter: string[];
    mcpServer: { id: string; mcpUrl: string; name: string; description: string; oauthClientId: string; selectors: string[] };
    listedServerIds: string[];
}

interface CloudAssistantPhase {
    agent: { instanceId: string; cloudAssistantStatus: string; cloudAssistantVersion: string; lastHeartbeatTime: string; osType: string; totalCount: number };
    started: { invokeId: string; commandId: string };
    polls: number;
    result: {
        invocationStatus: string;
        invokeRecordStatus: string;
        exitCode: number;
        output: string;
        errorCode: string;
        dropped: number;
        instanceId: string;
        invokeId: string;
        commandId: string;
    };
    decodedOutput: string;
    totalCount: number;
    plainTextOutput: string;
}

describe("the official Python SDKs against the fake server", () => {
    it("create, read, update, secrets and MCP servers: every call answered, spaces, '+' and False stored decoded", async () => {
        // Built on first use (about 10 s from PyPI, less with uv's cache warm), then cached.
        const sdk = await ensureAlibabaSdkPython();
        console.info(`alibaba-sdk-python: ${sdk.python} (${sdk.built ? "built" : "cached"} in ${sdk.seconds.toFixed(1)} s)`);
        const mark = server.mark();
        const result = await runSdk<CreatePhase>(sdk, {
            phase: "create",
            app: {
                appName: "sdk-check",
                displayName: "MCP+Dify (SDK) check",
                newDisplayName: "Dify MCP renamed",
                scopes: ["openid", "/acs/mcp-server"],
                requiredScopes: ["/acs/mcp-server"],
                redirectUris: ["http://127.0.0.1:5001/console/api/mcp/oauth/callback"],
                accessTokenValidity: 7200,
            },
            mcpServer: {
                name: "sdk-check",
                description: "Read-only ECS tools + regions",
                apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions", "DescribeInstances"] }],
                clientToken: "sdk check 1",
                keyword: "sdk check",
            },
        });
        const calls = server.calls.slice(mark);
        expect(calls.map((call) => `${call.action} ${call.status}${call.code ? ` ${call.code}` : ""}`)).toEqual([
            "CreateApplication 200",
            "GetApplication 200",
            "UpdateApplication 200",
            "ListAppSecretIds 200",
            "CreateAppSecret 200",
            "ListAppSecretIds 200",
            "CreateApiMcpServer 200",
            "GetApiMcpServer 200",
            "ListApiMcpServers 200",
        ]);

        // What the SDK's response models parsed.
        expect(result.created).toEqual({ displayName: "MCP+Dify (SDK) check", isMultiTenant: false, secretRequired: true });
        expect(result.fetched).toEqual({
            displayName: "MCP+Dify (SDK) check",
            isMultiTenant: false,
            secretRequired: true,
            protocolVersion: "2.1",
            redirectUris: ["http://127.0.0.1:5001/console/api/mcp/oauth/callback"],
        });
        expect(result.updated).toEqual({ displayName: "Dify MCP renamed", isMultiTenant: false });
        expect(result.secretIdsBefore).toEqual([]);
        expect(result.secret.hasValue).toBe(true);
        expect(result.secretIdsAfter).toEqual([result.secret.id]);
        expect(result.mcpServer).toMatchObject({
            name: "sdk-check",
            description: "Read-only ECS tools + regions",
            oauthClientId: result.appId,
            selectors: ["DescribeRegions", "DescribeInstances"],
        });
        expect(result.listedServerIds).toContain(result.mcpServer.id);

        // What the fake stored, decoded.
        expect(server.application(result.appId)).toMatchObject({
            AppName: "sdk-check",
            DisplayName: "Dify MCP renamed",
            AppType: "NativeApp",
            IsMultiTenant: false,
            SecretRequired: true,
            ProtocolVersion: "2.1",
            AccessTokenValidity: 7200,
            RedirectUris: ["http://127.0.0.1:5001/console/api/mcp/oauth/callback"],
            PredefinedScopes: ["openid", "/acs/mcp-server"],
            RequiredScopes: ["/acs/mcp-server"],
        });
        expect(server.appSecrets(result.appId).map((secret) => secret.AppSecretId)).toEqual([result.secret.id]);
        expect(server.mcpServer(result.mcpServer.id)).toMatchObject({
            name: "sdk-check",
            description: "Read-only ECS tools + regions",
            oauthClientId: result.appId,
            apis: [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions", "DescribeInstances"] }],
        });

        // Deletes, with a client token that has spaces (a query parameter of the ROA call).
        const deleteMark = server.mark();
        await expect(runSdk(sdk, { phase: "delete", appId: result.appId, mcpServerId: result.mcpServer.id, clientToken: "sdk check 2" })).resolves.toEqual({ deleted: true });
        expect(server.countSince(deleteMark)).toMatchObject({ errors: 0, byAction: { DeleteApiMcpServer: 1, DeleteApplication: 1 } });
        expect(server.application(result.appId)).toBeUndefined();
        expect(server.mcpServer(result.mcpServer.id)).toBeUndefined();
    }, 660_000);
    it("Cloud Assistant (alibabacloud-ecs20140526): RunCommand, DescribeInvocationResults until done, DescribeCloudAssistantStatus", async () => {
        const sdk = await ensureAlibabaSdkPython();
        let ran = "";
        const bash = bashRunner();
        server.addInstance("i-sdk-check", {
            run: async (script, signal) => {
                ran = script;
                // Slow enough that the SDK sees Running at least once.
                await new Promise((resolve) => setTimeout(resolve, 300));
                return bash(script, signal);
            },
        });
        // What a query encoder could get wrong, plus stderr and a non-zero exit.
        const script = 'echo "1+1=2 & a=b 100% ümlaut ✓"\necho "on stderr" >&2\nexit 4\n';
        const mark = server.mark();
        const result = await runSdk<CloudAssistantPhase>(sdk, {
            phase: "cloud-assistant",
            regionId: "cn-hangzhou",
            instanceId: "i-sdk-check",
            script,
            timeout: 30,
            name: "sdk check",
        });
        const calls = server.calls.slice(mark);
        expect(calls.map((call) => `${call.action} ${call.status}`)).toEqual([
            "DescribeCloudAssistantStatus 200",
            "RunCommand 200",
            ...Array<string>(result.polls).fill("DescribeInvocationResults 200"),
            "DescribeInvocationResults 200",
        ]);
        expect(result.polls).toBeGreaterThan(1);
        // The SDK sends the names our client sends (tests/dynamic-providers/alibaba/cloud-assistant-api.test.ts).
        expect(calls[1].parameters).toEqual(["CommandContent", "ContentEncoding", "InstanceId.1", "KeepCommand", "Name", "RegionId", "Timeout", "Type"]);
        expect(calls[0].parameters).toEqual(["InstanceId.1", "RegionId"]);
        expect(calls[2].parameters).toEqual(["InstanceId", "InvokeId", "RegionId"]);
        expect(calls[calls.length - 1].parameters).toEqual(["ContentEncoding", "InstanceId", "InvokeId", "RegionId"]);

        // What the SDK's response models parsed.
        expect(result.agent).toMatchObject({ instanceId: "i-sdk-check", cloudAssistantStatus: "true", osType: "Linux", totalCount: 1 });
        expect(result.agent.cloudAssistantVersion).not.toBe("");
        expect(result.agent.lastHeartbeatTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
        expect(result.started.invokeId).toMatch(/^t-/);
        expect(result.started.commandId).toMatch(/^c-/);
        expect(result.result).toMatchObject({
            invocationStatus: "Failed",
            invokeRecordStatus: "Failed",
            exitCode: 4,
            errorCode: "ExitCodeNonzero",
            dropped: 0,
            instanceId: "i-sdk-check",
            invokeId: result.started.invokeId,
            commandId: result.started.commandId,
        });
        expect(result.totalCount).toBe(1);
        // The script round-trips (Base64 in, decoded by the server), and so does the output: Base64 by default,
        // as is with PlainText.
        expect(ran).toBe(script);
        expect(server.invocation(result.started.invokeId)).toMatchObject({ Script: script, Name: "sdk check", Timeout: 30, KeepCommand: false });
        const expectedOutput = "1+1=2 & a=b 100% ümlaut ✓\non stderr\n";
        expect(result.decodedOutput).toBe(expectedOutput);
        expect(result.plainTextOutput).toBe(expectedOutput);
    }, 660_000);

    it("disk snapshots (alibabacloud-ecs20140526): CreateSnapshot, its ClientToken, DescribeSnapshots until accomplished, an unknown disk", async () => {
        const sdk = await ensureAlibabaSdkPython();
        server.addDisk("d-sdkcheckdisk", { snapshotMs: 300 });
        const mark = server.mark();
        const result = await runSdk<{
            snapshotId: string;
            repeatedSnapshotId: string;
            polls: number;
            totalCount: number;
            snapshot: Record<string, unknown>;
            unknownDisk: { code: string | null; statusCode?: number };
        }>(sdk, {
            phase: "snapshots",
            regionId: "cn-hangzhou",
            diskId: "d-sdkcheckdisk",
            snapshotName: "dify-before-1.14.1-20261130120000",
            description: "Dify's data disk before 1.14.1 (sdk check)",
            retentionDays: 7,
            clientToken: "dify-sdk-check 1",
        });
        const calls = server.calls.slice(mark);
        expect(calls.map((call) => `${call.action} ${call.status}${call.code ? ` ${call.code}` : ""}`)).toEqual([
            "CreateSnapshot 200",
            "CreateSnapshot 200",
            ...Array<string>(result.polls).fill("DescribeSnapshots 200"),
            "CreateSnapshot 404 InvalidDiskId.NotFound",
        ]);
        expect(result.polls).toBeGreaterThan(1);
        // The SDK sends the names our client sends (dynamic-providers/alibaba/ecs-snapshot-api.ts).
        expect(calls[0].parameters).toEqual(["ClientToken", "Description", "DiskId", "RetentionDays", "SnapshotName"]);
        expect(calls[2].parameters).toEqual(["RegionId", "SnapshotIds"]);

        // What the SDK's response models parsed: one snapshot for the repeated token, listed once done.
        expect(result.snapshotId).toMatch(/^s-/);
        expect(result.repeatedSnapshotId).toBe(result.snapshotId);
        expect(result.totalCount).toBe(1);
        expect(result.snapshot).toEqual({
            snapshotId: result.snapshotId,
            snapshotName: "dify-before-1.14.1-20261130120000",
            description: "Dify's data disk before 1.14.1 (sdk check)",
            status: "accomplished",
            progress: "100%",
            sourceDiskId: "d-sdkcheckdisk",
            retentionDays: 7,
            available: true,
        });
        expect(result.unknownDisk).toEqual({ code: "InvalidDiskId.NotFound", statusCode: 404 });
        // What the fake stored, decoded (the token's space, the description's apostrophe and parentheses).
        expect(server.snapshots().find((snapshot) => snapshot.SnapshotId === result.snapshotId)).toMatchObject({
            SourceDiskId: "d-sdkcheckdisk",
            RetentionDays: 7,
            ClientToken: "dify-sdk-check 1",
            Description: "Dify's data disk before 1.14.1 (sdk check)",
        });
    }, 660_000);
});
