// The OpenAPI MCP server provider, run the way the Pulumi engine runs it (serialized from dist/, revived in a
// fresh Node process) against the local OpenAPIExplorer API, which verifies every request's signature.
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
    OpenApiMcpServer,
    OpenApiMcpServerInputs,
    OpenApiMcpServerOutputs,
    OpenApiMcpServerRawInputs,
    checkOpenApiMcpServerInputs,
    diffOpenApiMcpServer,
} from "../../../dynamic-providers/alibaba/openapi-mcp-server";
import { unknownValue as UNKNOWN_VALUE } from "@pulumi/pulumi/runtime/rpc";
import { EngineCheckResult, HostedProvider, engineCreate as engineCreateOn, engineDiff as engineDiffOn } from "../../harness/engine-provider";
import { AlibabaProviderFixture, startAlibabaProviderFixture } from "../../servers/alibaba-provider-fixture";
import { AlibabaApiServer, StoredMcpServer } from "../../servers/alibaba-api-server";

const ACCESS_KEY_ID = "test-ak-mcp-provider";
const ACCESS_KEY_SECRET = "mcp-provider-test-secret-2b8d4f6a1c";
const ECS = { product: "Ecs", apiVersion: "2014-05-26" };

let server: AlibabaApiServer;
let provider: HostedProvider;
let nameCounter = 0;

let fixture: AlibabaProviderFixture | undefined;

beforeAll(async () => {
    fixture = await startAlibabaProviderFixture({
        module: "dynamic-providers/alibaba/openapi-mcp-server",
        exportName: "openApiMcpServerProvider",
        accessKeyId: ACCESS_KEY_ID,
        accessKeySecret: ACCESS_KEY_SECRET,
    });
    ({ server, provider } = fixture);
});

afterAll(async () => {
    await fixture?.close();
});

function rawInputs(overrides: OpenApiMcpServerRawInputs = {}): OpenApiMcpServerRawInputs {
    nameCounter++;
    return { name: `dify-mcp-${nameCounter}`, endpoint: server.url, ...overrides };
}

function engineCreate(raw: OpenApiMcpServerRawInputs) {
    return engineCreateOn<OpenApiMcpServerRawInputs, OpenApiMcpServerInputs, OpenApiMcpServerOutputs>(provider, raw);
}

function engineDiff(id: string, olds: OpenApiMcpServerOutputs, oldInputs: OpenApiMcpServerRawInputs, raw: OpenApiMcpServerRawInputs) {
    return engineDiffOn<OpenApiMcpServerRawInputs, OpenApiMcpServerInputs, OpenApiMcpServerOutputs>(provider, id, olds, oldInputs, raw);
}

describe("check", () => {
    it("defaults to the ECS read APIs on the China-site endpoint", () => {
        const { inputs, failures } = checkOpenApiMcpServerInputs({ name: "dify-mcp" });
        expect(failures).toEqual([]);
        expect(inputs).toEqual({
            name: "dify-mcp",
            apis: [{ ...ECS, selectors: ["DescribeInstanceStatus", "DescribeInstances", "DescribeRegions"] }],
            site: "china",
            endpoint: "openapi-mcp.cn-hangzhou.aliyuncs.com",
        });
        expect(checkOpenApiMcpServerInputs({ name: "dify-mcp", site: "international" }).inputs.endpoint).toBe("openapi-mcp.ap-southeast-1.aliyuncs.com");
    });

    const thirtyOne = Array.from({ length: 31 }, (_, index) => `DescribeThing${index}`);
    it.each([
        [{ name: "Dify" }, "name", /lowercase/],
        [{ name: "ab" }, "name", /3-64/],
        [{ name: `a${"b".repeat(64)}` }, "name", /3-64/],
        [{ name: "1dify" }, "name", /not starting with a digit/],
        [{ name: "dify.mcp" }, "name", /lowercase letters, digits, "_" and "-"/],
        [{ apis: [] }, "apis", /at least one/],
        [{ apis: [{ ...ECS, selectors: [] }] }, "apis", /selectors must list/],
        [{ apis: [{ ...ECS, apiVersion: "v1", selectors: ["DescribeRegions"] }] }, "apis", /2014-05-26/],
        [{ apis: [{ ...ECS, selectors: thirtyOne }] }, "apis", /at most 30/],
        [{ language: "FR_FR" }, "language", /ZH_CN, EN_US/],
        [{ publicAccess: "yes" }, "publicAccess", /on, off, follow/],
        [{ site: "europe" }, "site", /china, international/],
        [{ oauthClientId: "" }, "oauthClientId", /official OAuth/],
        [{ endpoint: "openapi-mcp.cn-hangzhou.aliyuncs.com/x" }, "endpoint", /without path/],
    ])("rejects %j naming %s", (overrides, property, reason) => {
        const { failures } = checkOpenApiMcpServerInputs({ name: "dify-mcp", ...(overrides as OpenApiMcpServerRawInputs) });
        expect(failures.map((failure) => failure.property)).toEqual([property]);
        expect(failures[0].reason).toMatch(reason);
    });

    it.each(["abc", `a${"b".repeat(63)}`, "_dify", "-dify", "dify_mcp-2"])("accepts the name %s (3-64 characters)", (name) => {
        expect(checkOpenApiMcpServerInputs({ name }).failures).toEqual([]);
    });

    it("counts 30 APIs across products as the limit", () => {
        const fifteen = (prefix: string) => Array.from({ length: 15 }, (_, index) => `${prefix}${index}`);
        const apis = [
            { ...ECS, selectors: fifteen("DescribeA") },
            { product: "Vpc", apiVersion: "2016-04-28", selectors: fifteen("DescribeB") },
        ];
        expect(checkOpenApiMcpServerInputs({ name: "dify-mcp", apis }).failures).toEqual([]);
        apis[1].selectors.push("DescribeExtra");
        expect(checkOpenApiMcpServerInputs({ name: "dify-mcp", apis }).failures[0].reason).toMatch(/31 APIs/);
    });

    it("passes an oauthClientId that is unknown during preview", () => {
        const { failures, inputs } = checkOpenApiMcpServerInputs({ name: "dify-mcp", oauthClientId: UNKNOWN_VALUE });
        expect(failures).toEqual([]);
        expect(diffOpenApiMcpServer({ ...inputs, oauthClientId: "4000", serverId: "x", urls: {} }, inputs)).toMatchObject({ changes: true, replaces: [] });
    });
});

describe("lifecycle against the local OpenAPIExplorer API", () => {
    it("creates with one write and outputs the Streamable HTTP URL; read equals create; a no-op diff is empty", async () => {
        const raw = rawInputs({ oauthClientId: "4123456789012345678", description: "Dify tools" });
        const mark = server.mark();
        const { id, outs, inputs } = await engineCreate(raw);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, byAction: { CreateApiMcpServer: 1 } });
        expect(outs.serverId).toBe(id);
        expect(outs.urls.mcp).toBe(`https://${new URL(server.url).host}/accounts/${server.accountId}/custom/${raw.name}/id/${id}/mcp`);
        expect(outs.urls.sse).toMatch(/\/sse$/);
        expect(server.mcpServer(id)).toMatchObject({ name: raw.name, oauthClientId: "4123456789012345678", apis: inputs.apis });

        const readMark = server.mark();
        const read = await provider.call<{ id: string; props: OpenApiMcpServerOutputs; inputs: OpenApiMcpServerInputs }>("read", id, outs);
        expect(server.countSince(readMark)).toMatchObject({ reads: 1, writes: 0 });
        expect(read.id).toBe(id);
        // The API also reports its defaults for settings this program leaves unmanaged.
        expect(read.props).toEqual({ ...outs, language: "ZH_CN", publicAccess: "follow", createTime: expect.any(String), updateTime: expect.any(String) });

        // Same program with selectors in another order: nothing to do, although the server holds defaults.
        const again = await engineDiff(id, read.props, read.inputs, {
            ...raw,
            apis: [{ ...ECS, selectors: ["DescribeRegions", "DescribeInstanceStatus", "DescribeInstances"] }],
        });
        expect(again.diff).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it.each<[string, OpenApiMcpServerRawInputs, (live: StoredMcpServer) => unknown, unknown]>([
        ["apis", { apis: [{ ...ECS, selectors: ["DescribeRegions"] }, { product: "Vpc", apiVersion: "2016-04-28", selectors: ["DescribeVpcs"] }] }, (live) => live.apis.map((api) => api.product), ["Ecs", "Vpc"]],
        ["description", { description: "New words" }, (live) => live.description, "New words"],
        ["instructions", { instructions: "Answer in English." }, (live) => live.instructions, "Answer in English."],
        ["systemTools", { systemTools: ["FetchRamActionDetails"] }, (live) => live.systemTools, ["FetchRamActionDetails"]],
        ["language", { language: "EN_US" }, (live) => live.language, "EN_US"],
        ["publicAccess", { publicAccess: "on" }, (live) => live.publicAccess, "on"],
        ["oauthClientId", { oauthClientId: "4999999999999999999" }, (live) => live.oauthClientId, "4999999999999999999"],
    ])("updates %s in place with exactly one PATCH carrying the full body", async (_property, change, liveValue, expected) => {
        const raw = rawInputs({ description: "Dify tools", oauthClientId: "4123456789012345678" });
        const { id, outs, inputs } = await engineCreate(raw);
        const { diff, inputs: newInputs } = await engineDiff(id, outs, inputs, { ...raw, ...change });
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });

        const mark = server.mark();
        const updated = await provider.call<{ outs: OpenApiMcpServerOutputs }>("update", id, outs, newInputs);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, byAction: { UpdateApiMcpServer: 1 } });
        const live = server.mcpServer(id) as StoredMcpServer;
        expect(liveValue(live)).toEqual(expected);
        expect(updated.outs.urls).toEqual(outs.urls);
        // Untouched settings survive the PATCH.
        if (!("description" in change)) expect(live.description).toBe("Dify tools");
        if (!("oauthClientId" in change)) expect(live.oauthClientId).toBe("4123456789012345678");

        const read = await provider.call<{ props: OpenApiMcpServerOutputs; inputs: OpenApiMcpServerInputs }>("read", id, updated.outs);
        expect((await engineDiff(id, read.props, read.inputs, { ...raw, ...change })).diff.changes).toBe(false);
    });

    it("clears description and switches back to the official OAuth when they are removed", async () => {
        const raw = rawInputs({ description: "Dify tools", oauthClientId: "4123456789012345678", systemTools: ["FetchRamActionDetails"] });
        const { id, outs, inputs } = await engineCreate(raw);
        const { name, endpoint } = raw;
        const { diff, inputs: newInputs } = await engineDiff(id, outs, inputs, { name, endpoint });
        expect(diff).toMatchObject({ changes: true, replaces: [] });
        await provider.call("update", id, outs, newInputs);
        expect(server.mcpServer(id)).toMatchObject({ description: "", systemTools: [] });
        expect(server.mcpServer(id)).not.toHaveProperty("oauthClientId");
        const read = await provider.call<{ props: OpenApiMcpServerOutputs; inputs: OpenApiMcpServerInputs }>("read", id, outs);
        expect((await engineDiff(id, read.props, read.inputs, { name, endpoint })).diff.changes).toBe(false);
    });

    it("replaces on a rename (new first) and on an endpoint change (old first: the name is taken)", async () => {
        const raw = rawInputs();
        const { id, outs, inputs } = await engineCreate(raw);
        expect((await engineDiff(id, outs, inputs, { ...raw, name: "renamed-server" })).diff).toEqual({ changes: true, replaces: ["name"], deleteBeforeReplace: false });
        const { endpoint: _endpoint, ...withoutEndpoint } = raw;
        expect((await engineDiff(id, outs, inputs, { ...withoutEndpoint, site: "international" })).diff).toEqual({
            changes: true,
            replaces: ["endpoint"],
            deleteBeforeReplace: true,
        });
    });

    it("shows drift on refresh and returns inputs the next diff compares against", async () => {
        const raw = rawInputs();
        const { id, outs } = await engineCreate(raw);
        server.updateMcpServerOutOfBand(id, { instructions: "edited in the console", apis: [{ ...ECS, selectors: ["DescribeRegions"] }] });
        const read = await provider.call<{ props: OpenApiMcpServerOutputs; inputs: OpenApiMcpServerInputs }>("read", id, outs);
        expect(read.props).toMatchObject({ instructions: "edited in the console", apis: [{ ...ECS, selectors: ["DescribeRegions"] }] });
        expect(read.inputs).toMatchObject({ instructions: "edited in the console" });
        const { diff } = await engineDiff(id, read.props, read.inputs, raw);
        expect(diff).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    });

    it("reports a server deleted out of band as gone, and deleting it again succeeds", async () => {
        const { id, outs } = await engineCreate(rawInputs());
        server.deleteMcpServerOutOfBand(id);
        expect((await provider.call<{ id: string }>("read", id, outs)).id).toBe("");
        const mark = server.mark();
        await expect(provider.call("delete", id, outs)).resolves.toBeNull();
        expect(server.countSince(mark)).toMatchObject({ total: 1, byAction: { DeleteApiMcpServer: 1 } });
    });

    it("deletes with one write", async () => {
        const { id, outs } = await engineCreate(rawInputs());
        const mark = server.mark();
        await provider.call("delete", id, outs);
        expect(server.countSince(mark)).toMatchObject({ writes: 1, reads: 0, errors: 0 });
        expect(server.mcpServer(id)).toBeUndefined();
    });
});

describe("errors and retries", () => {
    it("retries throttling on create and creates one server", async () => {
        const raw = rawInputs();
        const checked = await provider.call<EngineCheckResult<OpenApiMcpServerInputs>>("check", {}, raw);
        server.injectFault({ kind: "throttling", count: 2, actions: ["CreateApiMcpServer"], status: 429 });
        const mark = server.mark();
        const created = await provider.call<{ id: string }>("create", checked.inputs);
        expect(server.countSince(mark)).toMatchObject({ byAction: { CreateApiMcpServer: 3 }, errors: 2 });
        expect(server.mcpServers().filter((s) => s.name === raw.name).map((s) => s.id)).toEqual([created.id]);
    });

    it("relies on clientToken when a create was applied but answered 5xx: one server, no extra calls", async () => {
        const raw = rawInputs();
        const checked = await provider.call<EngineCheckResult<OpenApiMcpServerInputs>>("check", {}, raw);
        server.injectFault({ kind: "server-error", count: 1, actions: ["CreateApiMcpServer"], status: 500, afterCommit: true });
        const mark = server.mark();
        const created = await provider.call<{ id: string }>("create", checked.inputs);
        expect(server.countSince(mark).byAction).toEqual({ CreateApiMcpServer: 2 });
        expect(server.mcpServers().filter((s) => s.name === raw.name).map((s) => s.id)).toEqual([created.id]);
    });

    it("does not retry a 4xx and surfaces its code and request id", async () => {
        const { inputs } = await engineCreate(rawInputs());
        const mark = server.mark();
        // Same name again: the API refuses duplicates.
        const error = await provider.call("create", inputs).catch((err: Error) => err);
        const calls = server.calls.slice(mark);
        expect(calls).toHaveLength(1);
        expect((error as Error).message).toContain("OpenAPIExplorer.CreateApiMcpServer failed: InvalidApiMcpServer.NameDuplicate (HTTP 409)");
        expect((error as Error).message).toContain(`RequestId: ${calls[0].requestId}`);
    });
});

describe("resource class and credentials", () => {
    it("registers the type with the inputs and output names Dify wiring needs", async () => {
        const resourceRuntime = require("@pulumi/pulumi/runtime/resource") as { registerResource: (...args: unknown[]) => void };
        const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as { serializeFunction: (...args: unknown[]) => Promise<unknown> };
        const spy = vi.spyOn(resourceRuntime, "registerResource").mockImplementation(() => undefined);
        const serializeSpy = vi.spyOn(closure, "serializeFunction").mockResolvedValue({ text: "exports.handler = () => ({});", containsSecrets: false });
        try {
            const resource = new OpenApiMcpServer("mcp", { name: "dify-mcp", oauthClientId: pulumi.output("4123") });
            const [, , type, , , , , props] = spy.mock.calls[0] as [unknown, unknown, string, string, boolean, boolean, unknown, Record<string, unknown>];
            expect(type).toBe("pulumi-nodejs:dynamic/alibaba:OpenApiMcpServer");
            expect(Object.keys(props)).toEqual(expect.arrayContaining(["name", "oauthClientId", "serverId", "urls"]));
            expect(resource).toBeInstanceOf(pulumi.CustomResource);
        } finally {
            spy.mockRestore();
            serializeSpy.mockRestore();
        }
    });

    it("never puts the access key in the serialized provider, outputs or logs", async () => {
        const { outs } = await engineCreate(rawInputs());
        for (const text of [provider.serializedText, JSON.stringify(outs), provider.output()]) {
            expect(text).not.toContain(ACCESS_KEY_SECRET);
            expect(text).not.toContain(ACCESS_KEY_ID);
        }
    });
});
