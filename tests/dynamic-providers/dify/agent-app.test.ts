import { beforeAll, describe, expect, it } from "vitest";
import {
    agentModelConfig,
    checkDifyAgentApp,
    diffDifyAgentApp,
    DifyAgentAppInputs,
    DifyAgentAppOutputs,
} from "../../../dynamic-providers/dify/agent-app";
import { connectToDify } from "../../../dynamic-providers/dify/session";
import { DIFY_ADMIN as ADMIN, difyAdminConnection, useDifyProviderHost, useDifyServer } from "../../servers/dify-provider-fixture";

const TOOLS = ["Ecs-DescribeInstances", "Ecs-DescribeRegions"];
const PROMPT = "You are an Alibaba Cloud operations assistant. Use the tools to answer.";

const host = useDifyProviderHost<DifyAgentAppInputs>("agent-app", "difyAgentAppProvider");
const { checked } = host;

function desired(url: string, overrides: Partial<DifyAgentAppInputs> = {}): DifyAgentAppInputs {
    return {
        ...difyAdminConnection(url),
        name: "Cloud Ops Agent",
        systemPrompt: PROMPT,
        model: "qwen-plus",
        mcpServerIdentifier: "aliyun-openapi",
        mcpToolNames: TOOLS,
        ...overrides,
    };
}

describe("DifyAgentApp check, diff and model config", () => {
    it("names bad fields and the allowed values", () => {
        const result = checkDifyAgentApp(desired("http://127.0.0.1:1", { mcpServerIdentifier: "Bad Id", strategy: "router" as never, maxIterations: 0 }));
        expect(result.failures).toEqual([
            { property: "mcpServerIdentifier", reason: expect.stringMatching(/\^\[a-z0-9_-\]\{1,24\}\$/) },
            { property: "strategy", reason: "strategy must be one of function_call, react" },
            { property: "maxIterations", reason: "maxIterations must be an integer from 1 to 99" },
        ]);
    });

    it("references MCP tools by server identifier, one entry per tool", () => {
        const config = agentModelConfig(checkDifyAgentApp(desired("http://127.0.0.1:1")).inputs as DifyAgentAppInputs);
        expect(config.agent_mode).toEqual({
            enabled: true,
            strategy: "function_call",
            max_iteration: 5,
            tools: TOOLS.map((tool) => ({
                provider_type: "mcp",
                provider_id: "aliyun-openapi",
                provider_name: "aliyun-openapi",
                tool_name: tool,
                tool_label: tool,
                tool_parameters: {},
                enabled: true,
            })),
        });
        expect(config.model).toEqual({ provider: "langgenius/tongyi/tongyi", name: "qwen-plus", mode: "chat", completion_params: {} });
    });

    it("updates in place and replaces only for another Dify", () => {
        const inputs = checkDifyAgentApp(desired("http://127.0.0.1:1")).inputs as DifyAgentAppInputs;
        const olds = { ...inputs, appId: "a", consoleUrl: "", difyVersion: "1.14.1" };
        expect(diffDifyAgentApp(olds, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        expect(diffDifyAgentApp(olds, { ...inputs, systemPrompt: "x", name: "y", mcpToolNames: [] })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        expect(diffDifyAgentApp(olds, { ...inputs, difyUrl: "http://127.0.0.1:2" }).replaces).toEqual(["difyUrl"]);
    });
});

describe.each(["1.8.0", "1.9.2", "1.10.1", "1.14.1"])("DifyAgentApp against Dify %s", (version) => {
    const server = useDifyServer({ version });
    beforeAll(() => server.seedTongyi());
    let inputs: DifyAgentAppInputs;
    let outs: DifyAgentAppOutputs;
    let id: string;

    it("creates the agent app with its model config; read equals create; a no-op diff is empty", async () => {
        inputs = await checked(desired(server.url));
        ({ id, outs } = await host.call<{ id: string; outs: DifyAgentAppOutputs }>("create", inputs));
        expect(server.count({ kind: "write" })).toBe(2);
        const app = server.apps.get(id);
        expect(app?.mode).toBe("agent-chat");
        expect(app?.modelConfig.pre_prompt).toBe(PROMPT);
        expect(outs.consoleUrl).toBe(`${server.url}/app/${id}/configuration`);

        const read = await host.call<{ id: string; props: DifyAgentAppOutputs }>("read", id, outs);
        expect(read).toEqual({ id, props: outs });
        expect(await host.call("diff", id, read.props, inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    });

    it("updates the prompt and tools with one write, and the name with one write", async () => {
        server.resetCalls();
        const reprompted = await checked(desired(server.url, { systemPrompt: "Answer briefly.", mcpToolNames: [TOOLS[0]] }));
        outs = (await host.call<{ outs: DifyAgentAppOutputs }>("update", id, outs, reprompted)).outs;
        expect(server.count({ kind: "write" })).toBe(1);
        expect(server.count({ route: "POST /apps/<id>/model-config" })).toBe(1);
        expect(server.apps.get(id)?.modelConfig.pre_prompt).toBe("Answer briefly.");

        server.resetCalls();
        const renamed = await checked(desired(server.url, { name: "Ops Agent", systemPrompt: "Answer briefly.", mcpToolNames: [TOOLS[0]] }));
        outs = (await host.call<{ outs: DifyAgentAppOutputs }>("update", id, outs, renamed)).outs;
        expect(server.count({ kind: "write" })).toBe(1);
        expect(server.apps.get(id)?.name).toBe("Ops Agent");
        expect(server.apps.get(id)?.modelConfig.pre_prompt).toBe("Answer briefly.");
        inputs = renamed;

        const read = await host.call<{ props: DifyAgentAppOutputs }>("read", id, outs);
        expect(read.props).toEqual(outs);
    });

    it("renames with every field PUT /apps/<id> declares, keeping the ones Pulumi does not manage (1.8–1.10 answer 500 without them)", async () => {
        const app = server.apps.get(id);
        Object.assign(app ?? {}, { useIconAsAnswerIcon: true, maxActiveRequests: 7 });
        server.resetCalls();
        const renamed = await checked(desired(server.url, { name: "Ops Agent 2", systemPrompt: "Answer briefly.", mcpToolNames: [TOOLS[0]] }));
        outs = (await host.call<{ outs: DifyAgentAppOutputs }>("update", id, outs, renamed)).outs;
        expect(server.bodies.get("PUT /apps/<id>")).toEqual([
            {
                name: "Ops Agent 2",
                description: "",
                icon_type: "emoji",
                icon: "🤖",
                icon_background: "#FFEAD5",
                use_icon_as_answer_icon: true,
                max_active_requests: 7,
            },
        ]);
        expect(server.apps.get(id)).toMatchObject({ name: "Ops Agent 2", useIconAsAnswerIcon: true, maxActiveRequests: 7 });
        expect(server.count({ kind: "write" })).toBe(1);
        inputs = renamed;
    });

    it("reports tools removed in Dify's UI as drift, then the app gone; delete is idempotent", async () => {
        const app = server.apps.get(id);
        (app?.modelConfig.agent_mode as { tools: unknown[] }).tools = [];
        const drifted = await host.call<{ props: DifyAgentAppOutputs }>("read", id, outs);
        expect(drifted.props.mcpToolNames).toEqual([]);
        expect(diffDifyAgentApp(drifted.props, inputs).changes).toBe(true);

        server.apps.delete(id);
        expect((await host.call<{ id?: string }>("read", id, outs)).id ?? "").toBe("");
        server.resetCalls();
        await host.call("delete", id, outs);
        await host.call("delete", id, outs);
        expect(server.count({ route: "DELETE /apps/<id>" })).toBe(2);
    });

    it("makes one login attempt with a wrong admin password and creates nothing", async () => {
        server.resetCalls();
        const wrong = "Wr0ng-Admin-Passw0rd";
        const error = await host.call("create", await checked(desired(server.url, { adminPassword: wrong }))).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/HTTP 401 authentication_failed.*Not retried/);
        expect((error as Error).message).not.toContain(wrong);
        expect(server.count({ route: "POST /login" })).toBe(1);
        expect(server.apps.size).toBe(0);
        expect(host.output()).not.toContain(wrong);
        expect(host.output()).not.toContain(ADMIN.password);
    });
});

describe("DifyAgentApp when the model config is rejected (Dify 1.14.1)", () => {
    const server = useDifyServer({ version: "1.14.1" });
    beforeAll(() => server.seedTongyi());

    it("records the created app (init failure) so the next up updates it instead of creating a twin", async () => {
        const inputs = await checked(desired(server.url, { model: "no-such-model" }));
        const error = await host.call("create", inputs).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/model-config failed \(HTTP 400 invalid_param\).*no-such-model/);
        expect(server.apps.size).toBe(1);
    });
});

describe("DifyAgentApp when answers get lost (Dify 1.14.1)", () => {
    const server = useDifyServer({ version: "1.14.1" });
    beforeAll(() => server.seedTongyi());

    it("adopts the app whose create Dify applied before the connection was reset, instead of making a second one", async () => {
        const inputs = await checked(desired(server.url, { name: "Lost answer agent" }));
        server.resetAfterNextWrite("POST /apps");
        const created = await host.call<{ id: string; outs: DifyAgentAppOutputs }>("create", inputs);
        expect([...server.apps.keys()]).toEqual([created.id]);
        expect(server.count({ route: "POST /apps" })).toBe(1);
        expect(server.apps.get(created.id)?.modelConfig.pre_prompt).toBe(PROMPT);
        expect(host.output()).toContain('adopting the existing Dify agent app "Lost answer agent"');
        // The next up finds nothing to do.
        const read = await host.call<{ props: DifyAgentAppOutputs }>("read", created.id, created.outs);
        expect(diffDifyAgentApp(read.props, inputs).changes).toBe(false);
    });

    it("adopts an app an earlier run left behind, found by its exact name among similar ones, and brings it to the desired state", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        for (let i = 0; i < 3; i++) {
            await session.post("/apps", { name: `Left behind agent ${i}`, mode: "agent-chat", icon_type: "emoji", icon: "🤖" }); // similar names
        }
        const left = await session.post<{ id: string }>("/apps", { name: "Left behind agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖" });
        server.resetCalls();
        const inputs = await checked(desired(server.url, { name: "Left behind agent", description: "Adopted" }));
        const created = await host.call<{ id: string }>("create", inputs);
        expect(created.id).toBe(left.id);
        expect(server.count({ route: "POST /apps" })).toBe(0);
        expect(server.apps.get(left.id)).toMatchObject({ description: "Adopted" });
        expect(server.apps.get(left.id)?.modelConfig.pre_prompt).toBe(PROMPT);
        expect(server.bodies.get("GET /apps")?.length ?? 0).toBeGreaterThan(0);
    });

    it("refuses to guess between several apps of that name, and creates nothing", async () => {
        const session = await connectToDify({ url: server.url }, ADMIN);
        const a = await session.post<{ id: string }>("/apps", { name: "Twin agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖" });
        const b = await session.post<{ id: string }>("/apps", { name: "Twin agent", mode: "agent-chat", icon_type: "emoji", icon: "🤖" });
        const before = server.apps.size;
        const error = await host.call("create", await checked(desired(server.url, { name: "Twin agent" }))).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/2 agent-chat apps named "Twin agent"/);
        expect((error as Error).message).toContain(a.id);
        expect((error as Error).message).toContain(b.id);
        expect((error as Error).message).toMatch(/[^.]\.$/);
        expect(server.apps.size).toBe(before);
    });

    it("does not retry a write the proxy answered with 502", async () => {
        const inputs = await checked(desired(server.url, { name: "Proxy agent" }));
        const created = await host.call<{ id: string; outs: DifyAgentAppOutputs }>("create", inputs);
        server.resetCalls();
        server.failNextRequests(1, { route: "POST /apps/<id>/model-config" });
        const error = await host.call("update", created.id, created.outs, { ...inputs, systemPrompt: "Changed." }).catch((e: Error) => e);
        expect((error as Error).message).toMatch(/model-config failed \(HTTP 502\)/);
        expect(server.count({ route: "POST /apps/<id>/model-config" })).toBe(1);
    });
});
