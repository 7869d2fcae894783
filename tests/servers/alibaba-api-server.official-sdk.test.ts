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
});
