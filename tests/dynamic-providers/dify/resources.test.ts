// The Resource classes users construct, under Pulumi's mocks: outputs must reach the declared properties
// (class fields must not shadow them), secrets must stay secret, and the type tokens are stable.
// The compiled CommonJS from dist/ is used: it is what Pulumi serializes (vitest's module transform cannot be).
import { createRequire } from "module";
import * as path from "path";
import type * as pulumiType from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../harness/engine-provider";

const load = createRequire(path.join(projectRoot, "package.json"));
const pulumi = load("@pulumi/pulumi") as typeof pulumiType;
const dist = (name: string) => load(path.join(projectRoot, "dist", "dynamic-providers", "dify", `${name}.js`));

/** What each mocked create returns besides the inputs. */
const COMPUTED: Record<string, Record<string, unknown>> = {
    "pulumi-nodejs:dynamic/dify:Admin": { difyVersion: "1.14.1", setupMode: "created", loginVerified: true },
    "pulumi-nodejs:dynamic/dify:McpToolProvider": {
        providerId: "uuid-1",
        authorizationUrl: "https://signin.aliyun.com/oauth2/v1/auth?client_id=1",
        authorized: false,
        toolNames: [],
        oauthClientMode: "preset-client",
        oauthRedirectUri: "http://203.0.113.10/console/api/mcp/oauth/callback",
        difyVersion: "1.14.1",
    },
    "pulumi-nodejs:dynamic/dify:ModelProvider": {
        providerName: "langgenius/tongyi/tongyi",
        credentialId: "cred-1",
        llmModel: "qwen-plus",
        embeddingModel: "text-embedding-v4",
        pluginUniqueIdentifier: "langgenius/tongyi:0.1.13@abc",
        pluginInstalledByPulumi: true,
        difyVersion: "1.14.1",
    },
    "pulumi-nodejs:dynamic/dify:AgentApp": { appId: "app-1", consoleUrl: "http://203.0.113.10/app/app-1/configuration", difyVersion: "1.14.1" },
};

const registered: { type: string; additionalSecretOutputs: string[] }[] = [];
const captureOptions: pulumiType.ResourceTransformation = (args) => {
    const opts = args.opts as pulumiType.CustomResourceOptions;
    registered.push({ type: args.type, additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? [])] });
    return undefined;
};

function resolve<T>(output: pulumiType.Output<T>): Promise<T> {
    return new Promise((done) => output.apply((value) => done(value)));
}

beforeAll(async () => {
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => ({ id: `${args.name}-id`, state: { ...args.inputs, ...COMPUTED[args.type] } }),
            call: (args) => args.inputs,
        },
        "dify-mcp-stack",
        "test",
        false,
    );
});

const connection = { difyUrl: "http://203.0.113.10", adminEmail: "ops@example.com", adminPassword: "Adm1n-Passw0rd-x" };

describe("Dify resource classes", () => {
    it("DifyAdmin exposes its outputs and keeps the password secret", async () => {
        const { DifyAdmin } = dist("admin");
        const admin = new DifyAdmin(
            "admin",
            { difyUrl: connection.difyUrl, email: "ops@example.com", name: "Ops Admin", password: "Adm1n-Passw0rd-x", initPassword: "Init-1" },
            { transformations: [captureOptions] },
        );
        expect(await resolve(admin.email)).toBe("ops@example.com");
        expect(await resolve(admin.difyVersion)).toBe("1.14.1");
        expect(await resolve(admin.setupMode)).toBe("created");
        expect(await pulumi.isSecret(admin.password)).toBe(true);
        expect(await pulumi.isSecret(admin.email)).toBe(false);
        expect(registered.find((r) => r.type === "pulumi-nodejs:dynamic/dify:Admin")?.additionalSecretOutputs).toEqual(["password", "initPassword"]);
    });

    it("DifyMcpToolProvider exposes the authorization URL and the tools", async () => {
        const { DifyMcpToolProvider } = dist("mcp-tool-provider");
        const mcp = new DifyMcpToolProvider(
            "mcp",
            { ...connection, name: "Alibaba Cloud OpenAPI", serverUrl: "https://openapi-mcp.cn-hangzhou.aliyuncs.com/x/mcp", serverIdentifier: "aliyun-openapi", oauthClientId: "1", oauthClientSecret: "s3cret" },
            { transformations: [captureOptions] },
        );
        expect(await resolve(mcp.authorizationUrl)).toMatch(/^https:\/\/signin\.aliyun\.com\//);
        expect(await resolve(mcp.toolNames)).toEqual([]);
        expect(await resolve(mcp.oauthRedirectUri)).toBe("http://203.0.113.10/console/api/mcp/oauth/callback");
        expect(await resolve(mcp.serverIdentifier)).toBe("aliyun-openapi");
        expect(registered.find((r) => r.type === "pulumi-nodejs:dynamic/dify:McpToolProvider")?.additionalSecretOutputs).toEqual(["adminPassword", "oauthClientSecret"]);
    });

    it("DifyModelProvider and DifyAgentApp expose their ids and keep the API key and password secret", async () => {
        const { DifyModelProvider } = dist("model-provider");
        const { DifyAgentApp } = dist("agent-app");
        const models = new DifyModelProvider("qwen", { ...connection, dashscopeApiKey: "sk-0123456789" }, { transformations: [captureOptions] });
        const app = new DifyAgentApp(
            "agent",
            { ...connection, name: "Cloud Ops Agent", systemPrompt: "p", mcpServerIdentifier: "aliyun-openapi", mcpToolNames: ["Ecs-DescribeInstances"] },
            { transformations: [captureOptions] },
        );
        expect(await resolve(models.llmModel)).toBe("qwen-plus");
        expect(await resolve(models.embeddingModel)).toBe("text-embedding-v4");
        expect(pulumi.Output.isInstance(app.model)).toBe(true); // a property even when not given (the default applies)
        expect(await resolve(models.providerName)).toBe("langgenius/tongyi/tongyi");
        expect(await resolve(app.appId)).toBe("app-1");
        expect(await resolve(app.consoleUrl)).toBe("http://203.0.113.10/app/app-1/configuration");
        expect(await resolve(app.mcpToolNames)).toEqual(["Ecs-DescribeInstances"]);
        expect(registered.find((r) => r.type === "pulumi-nodejs:dynamic/dify:ModelProvider")?.additionalSecretOutputs).toEqual(["adminPassword", "dashscopeApiKey"]);
        expect(registered.find((r) => r.type === "pulumi-nodejs:dynamic/dify:AgentApp")?.additionalSecretOutputs).toEqual(["adminPassword"]);
    });
});
