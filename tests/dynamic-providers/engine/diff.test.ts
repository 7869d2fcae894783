// What every provider's diff relies on: unknown values during a preview, and values pinned to a known key.
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { describe, expect, it } from "vitest";
import { differs, differsUnlessPinned, sameSet } from "../../../dynamic-providers/engine/diff";
import { containsUnknown, isKnown } from "../../../dynamic-providers/engine/unknown";
import { diffDifyMcpToolProvider, DifyMcpToolProviderInputs, DifyMcpToolProviderOutputs } from "../../../dynamic-providers/dify/mcp-tool-provider";
import { diffDifyAgentApp, DifyAgentAppInputs, DifyAgentAppOutputs } from "../../../dynamic-providers/dify/agent-app";

interface Registration {
    clientId?: string;
    secret?: string;
    name?: string;
}

describe("unknown values", () => {
    it("finds the SDK's sentinel anywhere inside a value", () => {
        expect(containsUnknown(unknownValue)).toBe(true);
        expect(containsUnknown(["a", unknownValue])).toBe(true);
        expect(containsUnknown({ a: { b: [unknownValue] } })).toBe(true);
        expect(containsUnknown({ a: "b" })).toBe(false);
        expect(isKnown(undefined)).toBe(false);
        expect(isKnown(["a"])).toBe(true);
    });

    it("an unknown new value may differ; equal JSON does not; sets ignore order and repeats", () => {
        expect(differs<Registration>({ name: "a" }, { name: unknownValue }, "name")).toBe(true);
        expect(differs<Registration>({ name: "a" }, { name: "a" }, "name")).toBe(false);
        expect(differs<Registration>({}, { name: "a" }, "name")).toBe(true);
        expect(sameSet(["b", "a", "a"], ["a", "b"])).toBe(true);
    });
});

describe("differsUnlessPinned", () => {
    const olds: Registration = { clientId: "app-1", secret: "s3cret" };

    it("an unknown value is no change while its key is known and the same", () => {
        expect(differsUnlessPinned<Registration>(olds, { clientId: "app-1", secret: unknownValue }, "secret", "clientId")).toBe(false);
    });

    it("is a change when the key changed, is unknown, or was never recorded", () => {
        expect(differsUnlessPinned<Registration>(olds, { clientId: "app-2", secret: unknownValue }, "secret", "clientId")).toBe(true);
        expect(differsUnlessPinned<Registration>(olds, { clientId: unknownValue, secret: unknownValue }, "secret", "clientId")).toBe(true);
        expect(differsUnlessPinned<Registration>({ secret: "s3cret" }, { clientId: "app-1", secret: unknownValue }, "secret", "clientId")).toBe(true);
    });

    it("a known value is compared as usual, pinned or not", () => {
        expect(differsUnlessPinned<Registration>(olds, { clientId: "app-1", secret: "rotated" }, "secret", "clientId")).toBe(true);
        expect(differsUnlessPinned<Registration>(olds, { clientId: "app-1", secret: "s3cret" }, "secret", "clientId")).toBe(false);
    });
});

describe("the pins of the Dify resources", () => {
    const connection = { difyUrl: "http://203.0.113.10", adminEmail: "ops@example.com", adminPassword: "Passw0rd-xyz" };
    const registration: DifyMcpToolProviderInputs = {
        ...connection,
        name: "Alibaba Cloud OpenAPI",
        serverIdentifier: "aliyun-openapi",
        serverUrl: "https://openapi-mcp.cn-hangzhou.aliyuncs.com/accounts/1/custom/dify/id/srv-1/mcp",
        mcpServerId: "srv-1",
        oauthClientId: "4071151845732613353",
        oauthClientSecret: "client-secret",
    };
    const registered = {
        ...registration,
        providerId: "p-1",
        authorizationUrl: "",
        authorized: true,
        toolNames: ["Ecs-DescribeInstances"],
        oauthClientMode: "preset-client",
        oauthRedirectUri: "http://203.0.113.10/console/api/mcp/oauth/callback",
        difyVersion: "1.14.1",
    } as DifyMcpToolProviderOutputs;

    it("the MCP registration: the server's URL and the client's secret are pinned to their ids", () => {
        // What a preview of an update of the OAuth app or of the MCP server hands over.
        expect(diffDifyMcpToolProvider(registered, { ...registration, serverUrl: unknownValue, oauthClientSecret: unknownValue }).changes).toBe(false);
        expect(diffDifyMcpToolProvider(registered, { ...registration, mcpServerId: unknownValue, serverUrl: unknownValue }).changes).toBe(true);
        expect(diffDifyMcpToolProvider(registered, { ...registration, oauthClientId: unknownValue, oauthClientSecret: unknownValue }).changes).toBe(true);
        expect(diffDifyMcpToolProvider(registered, { ...registration, serverUrl: `${registration.serverUrl}?v=2` }).changes).toBe(true);
    });

    it("the agent app: its tool list is pinned to the registration it comes from", () => {
        const app: DifyAgentAppInputs = {
            ...connection,
            name: "ECS assistant",
            systemPrompt: "Answer.",
            mcpServerIdentifier: "aliyun-openapi",
            mcpToolNames: ["Ecs-DescribeInstances"],
            mcpToolsSource: "p-1 https://x/mcp 4071151845732613353",
        };
        const created = { ...app, appId: "app-1", consoleUrl: "http://203.0.113.10/app/app-1/configuration", difyVersion: "1.14.1" } as DifyAgentAppOutputs;
        expect(diffDifyAgentApp(created, { ...app, mcpToolNames: unknownValue as unknown as string[] }).changes).toBe(false);
        expect(diffDifyAgentApp(created, { ...app, mcpToolNames: unknownValue as unknown as string[], mcpToolsSource: unknownValue }).changes).toBe(true);
        expect(diffDifyAgentApp(created, { ...app, mcpToolNames: [] }).changes).toBe(true);
    });
});
