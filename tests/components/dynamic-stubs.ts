import * as pulumi from "@pulumi/pulumi";

/**
 * Stand-ins for the project's dynamic resources under Pulumi mocks. Vitest loads project modules through its
 * own module system, which Pulumi's closure serialization cannot capture, so the real classes cannot be
 * constructed here; each provider is exercised the way the engine runs it in tests/dynamic-providers/, and the
 * whole chain under the real engine in tests/e2e/. These stubs record how index.ts wires them together.
 * Their outputs come from `STUB_OUTPUTS` (see pulumi-mocks.ts).
 */
export const STUB_TYPE_PREFIX = "dify-mcp-stack:test:";

export const STUB_OUTPUTS: Record<string, Record<string, unknown>> = {
    DifyReadiness: { setupStep: "not_started", difyVersion: "1.14.1" },
    DifyInstanceConfiguration: { appliedSettingsDigest: "0".repeat(64), reportedDifyVersion: "1.14.1" },
    RamOAuthApplication: { appId: "4071151845732613353", clientSecret: undefined },
    OpenApiMcpServer: {
        serverId: "v6ZZ7ftCzEILWmock",
        urls: {
            mcp: "https://openapi-mcp.cn-hangzhou.aliyuncs.com/accounts/1234/custom/dify-test/id/v6ZZ7ftCzEILWmock/mcp",
            sse: "https://openapi-mcp.cn-hangzhou.aliyuncs.com/accounts/1234/custom/dify-test/id/v6ZZ7ftCzEILWmock/sse",
        },
    },
    DifyAdmin: { difyVersion: "1.14.1", setupMode: "created" },
    DifyModelProvider: { providerName: "langgenius/tongyi/tongyi", credentialId: "cred-1" },
    DifyMcpToolProvider: {
        providerId: "provider-uuid",
        authorizationUrl: "https://signin.aliyun.com/oauth2/v1/auth?client_id=4071151845732613353",
        authorized: false,
        toolNames: [],
    },
    DifyAgentApp: { appId: "app-uuid", consoleUrl: "http://198.51.100.23/app/app-uuid/configuration" },
};

/** Resource ids, as the real providers choose them: the API's own identifier (the RAM app's id is its AppId, the OAuth client id). */
export const STUB_IDS: Record<string, string> = {
    RamOAuthApplication: STUB_OUTPUTS.RamOAuthApplication.appId as string,
    OpenApiMcpServer: STUB_OUTPUTS.OpenApiMcpServer.serverId as string,
    DifyMcpToolProvider: STUB_OUTPUTS.DifyMcpToolProvider.providerId as string,
    DifyAgentApp: STUB_OUTPUTS.DifyAgentApp.appId as string,
};

/** Every stub constructed, with its resource options (Pulumi's mocks do not report dependsOn), in order. */
export const STUB_REGISTRATIONS: { typeName: string; name: string; resource: pulumi.CustomResource; opts?: pulumi.CustomResourceOptions }[] = [];

function stub(typeName: string) {
    return class extends pulumi.CustomResource {
        constructor(name: string, args: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
            const outputs = Object.fromEntries(Object.keys(STUB_OUTPUTS[typeName]).map((key) => [key, undefined]));
            super(`${STUB_TYPE_PREFIX}${typeName}`, name, { ...outputs, ...args }, opts);
            STUB_REGISTRATIONS.push({ typeName, name, resource: this, opts });
        }
    } as unknown as new (name: string, args: object, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource &
        Record<string, pulumi.Output<unknown>>;
}

export const DifyReadiness = stub("DifyReadiness");
export const DifyInstanceConfiguration = stub("DifyInstanceConfiguration");
export const RamOAuthApplication = stub("RamOAuthApplication");
export const DifyAdmin = stub("DifyAdmin");
export const DifyModelProvider = stub("DifyModelProvider");
export const DifyMcpToolProvider = stub("DifyMcpToolProvider");
export const DifyAgentApp = stub("DifyAgentApp");

const OpenApiMcpServerBase = stub("OpenApiMcpServer");
export class OpenApiMcpServer extends OpenApiMcpServerBase {
    get mcpUrl(): pulumi.Output<string> {
        return (this.urls as pulumi.Output<{ mcp: string }>).apply((urls) => urls.mcp);
    }
}
