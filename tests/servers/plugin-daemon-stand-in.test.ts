// The plugin daemon stand-in, driven by Dify 1.14.1's own daemon and marketplace clients in Dify's own Python
// environment (core.plugin.impl.plugin.PluginInstaller, core.plugin.impl.model.PluginModelClient,
// services.plugin.plugin_service.PluginService, core.helper.marketplace): whatever these parse here, Dify's API
// server parses the same way.
import * as crypto from "crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DifyPython, ensureDifyPython, runDifyPython } from "../harness/dify-python";
import { PluginDaemonStandIn, RecordedDaemonCall, startPluginDaemonStandIn } from "./plugin-daemon-stand-in";

let python: DifyPython;
let standIn: PluginDaemonStandIn;

const tenant = () => crypto.randomUUID();
/** Each test runs Dify's Python once or twice (importing Dify's modules takes seconds on a busy machine). */
const SLOW = 240_000;

/** Helpers every snippet starts with: `emit` prints the result; `install` puts tongyi into a tenant with Dify's client. */
const PRELUDE = `
import json, sys
from core.plugin.impl.plugin import PluginInstaller
from core.plugin.impl.model import PluginModelClient
from core.plugin.entities.plugin import PluginInstallationSource

def emit(value):
    print("RESULT:" + json.dumps(value, default=str))

def error_of(fn):
    try:
        fn()
    except Exception as err:
        return {"type": type(err).__name__, "text": str(err)}
    return None

def install(tenant_id, pkg_path):
    installer = PluginInstaller()
    with open(pkg_path, "rb") as f:
        uid = installer.upload_pkg(tenant_id, f.read()).unique_identifier
    start = installer.install_from_identifiers(tenant_id, [uid], PluginInstallationSource.Package, [{}])
    for _ in range(10):
        if start.all_installed or installer.fetch_plugin_installation_task(tenant_id, start.task_id).status == "success":
            return uid
    raise RuntimeError("install did not finish")
`;

function py<T>(script: string, env: Record<string, string> = {}): T {
    const output = runDifyPython(python, PRELUDE + script, {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...standIn.difyEnv, ...env },
        timeoutMs: 120_000,
    });
    const line = output.split("\n").find((l) => l.startsWith("RESULT:"));
    if (!line) {
        throw new Error(`no RESULT line in:\n${output}`);
    }
    return JSON.parse(line.slice("RESULT:".length)) as T;
}

function invalidCalls(calls: RecordedDaemonCall[]): RecordedDaemonCall[] {
    return calls.filter((c) => c.invalid !== undefined || c.status >= 500);
}

beforeAll(async () => {
    python = ensureDifyPython("1.14.1");
    standIn = await startPluginDaemonStandIn(python);
}, 900_000);

afterAll(async () => {
    await standIn?.close();
});

describe("plugin daemon stand-in, driven by Dify 1.14.1's own clients", () => {
    it("installs tongyi from the marketplace through Dify's PluginService, lists it with its models, and uninstalls it", async () => {
        await standIn.clearCalls();
        const t = tenant();
        const result = py<{
            before: string[];
            latest: { plugin_id: string; latest_package_identifier: string; latest_version: string }[];
            start: { all_installed: boolean; task_id: string };
            statuses: string[];
            taskPlugins: { plugin_id: string; status: string; message: string }[];
            plugins: { plugin_id: string; plugin_unique_identifier: string; installation_id: string; category: string; source: string; models: [string, string, string[]][] }[];
            manifestVerified: boolean;
            authorizedCategory: string | null;
            providers: { provider: string; plugin_id: string; credentialVariables: string[] }[];
            again: { all_installed: boolean };
            uninstalled: boolean;
            after: string[];
        }>(`
from core.helper import marketplace
from services.plugin.plugin_service import PluginService
t = ${JSON.stringify(t)}
installer = PluginInstaller()
before = [p.plugin_id for p in installer.list_plugins(t)]
latest = [m.model_dump(include={"plugin_id", "latest_package_identifier", "latest_version"}) for m in marketplace.batch_fetch_plugin_manifests(["langgenius/tongyi"])]
uid = latest[0]["latest_package_identifier"]
start = PluginService.install_from_marketplace_pkg(t, [uid])
statuses, task = [], None
for _ in range(5):
    task = installer.fetch_plugin_installation_task(t, start.task_id)
    statuses.append(task.status.value)
    if task.status.value in ("success", "failed"):
        break
plugins = installer.list_plugins(t)
decoded = installer.decode_plugin_from_identifier(t, uid)
providers = PluginModelClient().fetch_model_providers(t)
again = PluginService.install_from_marketplace_pkg(t, [uid])
uninstalled = installer.uninstall(t, plugins[0].installation_id)
emit({
    "before": before,
    "latest": latest,
    "start": start.model_dump(),
    "statuses": statuses,
    "taskPlugins": [p.model_dump(include={"plugin_id", "status", "message"}) for p in task.plugins],
    "plugins": [{
        "plugin_id": p.plugin_id, "plugin_unique_identifier": p.plugin_unique_identifier,
        "installation_id": p.installation_id, "category": p.declaration.category.value, "source": p.source.value,
        "models": [[m.model, m.model_type.value, [f.value for f in (m.features or [])]] for m in p.declaration.model.models],
    } for p in plugins],
    "manifestVerified": installer.fetch_plugin_manifest(t, uid).verified,
    "authorizedCategory": decoded.verification.authorized_category.value if decoded.verification else None,
    "providers": [{"provider": p.provider, "plugin_id": p.plugin_id,
                   "credentialVariables": [f.variable for f in p.declaration.provider_credential_schema.credential_form_schemas]} for p in providers],
    "again": again.model_dump(),
    "uninstalled": uninstalled,
    "after": [p.plugin_id for p in installer.list_plugins(t)],
})
`);
        expect(result.before).toEqual([]);
        expect(result.latest).toEqual([{ plugin_id: "langgenius/tongyi", latest_package_identifier: standIn.uniqueIdentifier, latest_version: "0.1.1" }]);
        expect(result.start.all_installed).toBe(false);
        expect(result.start.task_id).not.toBe("");
        expect(result.statuses).toEqual(["running", "success"]);
        expect(result.taskPlugins).toEqual([{ plugin_id: "langgenius/tongyi", status: "success", message: "installed" }]);
        expect(result.plugins).toHaveLength(1);
        expect(result.plugins[0]).toMatchObject({
            plugin_id: "langgenius/tongyi",
            plugin_unique_identifier: standIn.uniqueIdentifier,
            category: "model",
            source: "marketplace",
        });
        expect(result.plugins[0].models).toEqual([
            ["qwen-plus", "llm", ["tool-call", "multi-tool-call", "agent-thought", "stream-tool-call"]],
            ["text-embedding-v4", "text-embedding", []],
        ]);
        expect(result.manifestVerified).toBe(true);
        expect(result.authorizedCategory).toBe("langgenius");
        expect(result.providers).toEqual([{ provider: "tongyi", plugin_id: "langgenius/tongyi", credentialVariables: ["dashscope_api_key", "use_international_endpoint"] }]);
        expect(result.again.all_installed).toBe(true);
        expect(result.uninstalled).toBe(true);
        expect(result.after).toEqual([]);

        const calls = await standIn.calls();
        const routes = calls.map((c) => `${c.method} ${c.route}`);
        // Dify's marketplace flow: manifest unknown to the daemon -> download from the marketplace -> upload -> install.
        expect(routes).toEqual(
            expect.arrayContaining([
                "POST /api/v1/plugins/batch",
                "GET /plugin/<tenant_id>/management/fetch/manifest",
                "GET /api/v1/plugins/download",
                "POST /plugin/<tenant_id>/management/install/upload/package",
                "POST /plugin/<tenant_id>/management/install/identifiers",
                "GET /plugin/<tenant_id>/management/install/tasks/<task_id>",
                "GET /plugin/<tenant_id>/management/models",
                "POST /plugin/<tenant_id>/management/uninstall",
            ]),
        );
        const install = calls.find((c) => c.route?.endsWith("/install/identifiers") && c.task_id);
        expect(install?.body).toEqual({ plugin_unique_identifiers: [standIn.uniqueIdentifier], source: "marketplace", metas: [{ plugin_unique_identifier: standIn.uniqueIdentifier }] });
        expect(invalidCalls(calls)).toEqual([]);
    }, SLOW);

    it("installs from an uploaded .difypkg, refuses a broken package, and reports a failing install with its reason", async () => {
        const t = tenant();
        await standIn.configure({ installFailure: "pip install failed: could not reach the package index" });
        const failed = py<{ uploaded: string; provider: string; broken: { type: string; text: string } | null; statuses: string[]; message: string; listed: string[] }>(`
from services.plugin.plugin_service import PluginService
t = ${JSON.stringify(t)}
with open(${JSON.stringify(standIn.packagePath)}, "rb") as f:
    uploaded = PluginService.upload_pkg(t, f.read())
broken = error_of(lambda: PluginService.upload_pkg(t, b"this is not a zip"))
start = PluginService.install_from_local_pkg(t, [uploaded.unique_identifier])
statuses, task = [], None
for _ in range(5):
    task = PluginInstaller().fetch_plugin_installation_task(t, start.task_id)
    statuses.append(task.status.value)
    if task.status.value in ("success", "failed"):
        break
emit({"uploaded": uploaded.unique_identifier, "provider": uploaded.manifest.model.provider, "broken": broken,
      "statuses": statuses, "message": task.plugins[0].message, "listed": [p.plugin_id for p in PluginInstaller().list_plugins(t)]})
`);
        expect(failed.uploaded).toBe(standIn.uniqueIdentifier);
        expect(failed.provider).toBe("tongyi");
        expect(failed.broken?.type).toBe("PluginDaemonBadRequestError");
        expect(failed.broken?.text).toContain("not a valid zip file");
        expect(failed.statuses).toEqual(["running", "failed"]);
        expect(failed.message).toBe("pip install failed: could not reach the package index");
        expect(failed.listed).toEqual([]);

        await standIn.configure({ installFailure: null });
        const retried = py<{ listed: [string, string][] }>(`
t = ${JSON.stringify(t)}
install(t, ${JSON.stringify(standIn.packagePath)})
emit({"listed": [[p.plugin_id, p.source.value] for p in PluginInstaller().list_plugins(t)]})
`);
        expect(retried.listed).toEqual([["langgenius/tongyi", "package"]]);
        expect(invalidCalls(await standIn.calls())).toEqual([]);
    }, SLOW);

    it("validates DashScope credentials like the tongyi plugin and refuses a bad key with the daemon's error", async () => {
        const t = tenant();
        const result = py<{
            good: null | { type: string; text: string };
            invalid: { type: string; text: string } | null;
            notSk: { type: string; text: string } | null;
            model: boolean;
            schema: { model: string; features: string[]; mode: string };
            embeddingSchema: string;
            notInstalled: { type: string; text: string } | null;
        }>(`
from core.plugin.impl.model_runtime import PluginModelRuntime
t = ${JSON.stringify(t)}
client = PluginModelClient()
not_installed = error_of(lambda: client.validate_provider_credentials(t, None, "langgenius/tongyi", "tongyi", {"dashscope_api_key": "sk-good-0123456789"}))
install(t, ${JSON.stringify(standIn.packagePath)})
# The path Dify's ProviderConfiguration takes: the runtime with the full provider name.
runtime = PluginModelRuntime(t, None, client)
check = lambda key: runtime.validate_provider_credentials(provider="langgenius/tongyi/tongyi", credentials={"dashscope_api_key": key, "use_international_endpoint": "false"})
schema = client.get_model_schema(t, None, "langgenius/tongyi", "tongyi", "llm", "qwen-plus", {"dashscope_api_key": "sk-good-0123456789"})
emit({
    "good": error_of(lambda: check("sk-good-0123456789")),
    "invalid": error_of(lambda: check("sk-invalid-0123456789")),
    "notSk": error_of(lambda: check("bad-key-123456789")),
    "model": client.validate_model_credentials(t, None, "langgenius/tongyi", "tongyi", "llm", "qwen-plus", {"dashscope_api_key": "sk-good-0123456789"}),
    "schema": {"model": schema.model, "features": [f.value for f in schema.features], "mode": schema.model_properties["mode"]},
    "embeddingSchema": client.get_model_schema(t, None, "langgenius/tongyi", "tongyi", "text-embedding", "text-embedding-v4", {}).model_type.value,
    "notInstalled": not_installed,
})
`);
        expect(result.good).toBeNull();
        expect(result.invalid).toEqual({ type: "CredentialsValidateFailedError", text: "Invalid API-key provided." });
        expect(result.notSk?.type).toBe("CredentialsValidateFailedError");
        expect(result.model).toBe(true);
        expect(result.schema).toEqual({ model: "qwen-plus", features: ["tool-call", "multi-tool-call", "agent-thought", "stream-tool-call"], mode: "chat" });
        expect(result.embeddingSchema).toBe("text-embedding");
        // No installation for the tenant: the daemon's 404 PluginNotFoundError, which Dify's stream client raises.
        expect(result.notInstalled?.text).toContain("plugin not found");

        const validations = (await standIn.calls()).filter((c) => c.route?.endsWith("/validate_provider_credentials") && c.tenant_id === t && c.status === 200);
        expect(validations.map((c) => c.credentials_valid)).toEqual([true, false, false]);
        expect(validations[0].plugin_id).toBe("langgenius/tongyi");
    }, SLOW);

    it("streams qwen-plus as LLMResultChunks: one tool call first, then text quoting the tool result", async () => {
        const t = tenant();
        const toolResult = '{"TotalCount": 2, "Instances": {"Instance": [{"InstanceId": "i-bp1standin"}]}}';
        const result = py<{
            first: { toolCalls: [string, string][]; text: string; finish: (string | null)[] };
            second: { toolCalls: [string, string][]; text: string; finish: (string | null)[]; totalTokens: number };
            revoked: { type: string; text: string } | null;
        }>(`
from graphon.model_runtime.entities.message_entities import (AssistantPromptMessage, PromptMessageTool,
    SystemPromptMessage, ToolPromptMessage, UserPromptMessage)
t = ${JSON.stringify(t)}
install(t, ${JSON.stringify(standIn.packagePath)})
client = PluginModelClient()
creds = {"dashscope_api_key": "sk-good-0123456789", "use_international_endpoint": "false"}
tools = [
    PromptMessageTool(name="Ecs-DescribeInstances", description="Lists ECS instances", parameters={"type": "object", "properties": {"RegionId": {"type": "string"}}}),
    PromptMessageTool(name="Ecs-DescribeRegions", description="Lists regions", parameters={"type": "object", "properties": {}}),
]
prompt = [SystemPromptMessage(content="You are an ops agent."), UserPromptMessage(content="How many ECS instances are in Hangzhou?")]

def run(messages):
    chunks = list(client.invoke_llm(t, "user-1", "langgenius/tongyi", "tongyi", "qwen-plus", creds, messages, {"temperature": 0.3}, tools, None, True))
    return chunks, {
        "toolCalls": [[c.function.name, c.function.arguments] for ch in chunks for c in ch.delta.message.tool_calls],
        "text": "".join(ch.delta.message.content or "" for ch in chunks if isinstance(ch.delta.message.content, str)),
        "finish": [ch.delta.finish_reason for ch in chunks],
    }

first_chunks, first = run(prompt)
call = first_chunks[0].delta.message.tool_calls[0]
followup = prompt + [
    AssistantPromptMessage(content="", tool_calls=[call]),
    ToolPromptMessage(content=${JSON.stringify(toolResult)}, tool_call_id=call.id, name=call.function.name),
]
second_chunks, second = run(followup)
second["totalTokens"] = second_chunks[-1].delta.usage.total_tokens
revoked = error_of(lambda: list(client.invoke_llm(t, None, "langgenius/tongyi", "tongyi", "qwen-plus", {"dashscope_api_key": "sk-invalid-key"}, prompt, {}, tools, None, True)))
emit({"first": first, "second": second, "revoked": revoked})
`);
        expect(result.first.toolCalls).toEqual([["Ecs-DescribeInstances", '{"RegionId": "cn-hangzhou"}']]);
        expect(result.first.text).toBe("");
        expect(result.first.finish.at(-1)).toBe("tool_calls");
        expect(result.second.toolCalls).toEqual([]);
        expect(result.second.text).toBe(`Here is what the tool returned: ${toolResult}`);
        expect(result.second.finish.at(-1)).toBe("stop");
        expect(result.second.finish.length).toBeGreaterThan(2); // streamed in pieces
        expect(result.second.totalTokens).toBeGreaterThan(0);
        expect(result.revoked?.type).toBe("InvokeAuthorizationError");
        expect(result.revoked?.text).toContain("Invalid API-key provided.");

        const answers = (await standIn.calls()).filter((c) => c.tenant_id === t && c.llm).map((c) => c.llm);
        expect(answers.map((a) => a?.answered)).toEqual(["tool_call", "text", "error"]);
        expect(answers[0]?.tools).toEqual(["Ecs-DescribeInstances", "Ecs-DescribeRegions"]);
        expect(answers[1]?.tool_result).toBe(toolResult);
    }, SLOW);

    it("answers with text and no tool call when scripted so, and Dify's blocking title call gets a JSON title", async () => {
        const t = tenant();
        await standIn.setLlmScript({ mode: "text", text: "No tool is needed for that." });
        try {
            const result = py<{ toolCalls: number; text: string; title: string }>(`
from core.llm_generator.prompts import CONVERSATION_TITLE_PROMPT
from core.plugin.impl.model_runtime import PluginModelRuntime
from graphon.model_runtime.entities.message_entities import PromptMessageTool, UserPromptMessage
t = ${JSON.stringify(t)}
install(t, ${JSON.stringify(standIn.packagePath)})
creds = {"dashscope_api_key": "sk-good-0123456789"}
chunks = list(PluginModelClient().invoke_llm(t, None, "langgenius/tongyi", "tongyi", "qwen-plus", creds,
    [UserPromptMessage(content="hello")], {}, [PromptMessageTool(name="Ecs-DescribeInstances", description="d", parameters={})], None, True))
# LLMGenerator.generate_conversation_name: a blocking call, merged by Dify's normalize_non_stream_runtime_result.
titled = PluginModelRuntime(t, None, PluginModelClient()).invoke_llm(provider="langgenius/tongyi/tongyi", model="qwen-plus",
    credentials=creds, model_parameters={"max_tokens": 500, "temperature": 1},
    prompt_messages=[UserPromptMessage(content=CONVERSATION_TITLE_PROMPT + "How many ECS instances are in Hangzhou?\\n")], tools=None, stop=None, stream=False)
emit({"toolCalls": sum(len(ch.delta.message.tool_calls) for ch in chunks), "text": "".join(ch.delta.message.content or "" for ch in chunks),
      "title": json.loads(titled.message.get_text_content())["Your Output"]})
`);
            expect(result).toEqual({ toolCalls: 0, text: "No tool is needed for that.", title: "Stand-in conversation" });
        } finally {
            await standIn.setLlmScript({});
        }
    }, SLOW);

    it("can leave tongyi out of the marketplace", async () => {
        await standIn.configure({ marketplaceListsTongyi: false });
        try {
            const result = py<{ listed: string[]; download: { type: string; text: string } | null }>(`
from core.helper import marketplace
emit({
    "listed": [m.plugin_id for m in marketplace.batch_fetch_plugin_manifests(["langgenius/tongyi"])],
    "download": error_of(lambda: marketplace.download_plugin_pkg(${JSON.stringify(standIn.uniqueIdentifier)})),
})
`);
            expect(result.listed).toEqual([]);
            expect(result.download).toEqual({ type: "ValueError", text: "file not found" });
        } finally {
            await standIn.configure({ marketplaceListsTongyi: true });
        }
    }, SLOW);

    it("refuses a wrong X-Api-Key like the daemon", async () => {
        const t = tenant();
        const result = py<{ management: { type: string; text: string } | null; stream: { type: string; text: string } | null }>(
            `
t = ${JSON.stringify(t)}
emit({
    "management": error_of(lambda: PluginInstaller().list_plugins(t)),
    "stream": error_of(lambda: PluginModelClient().validate_provider_credentials(t, None, "langgenius/tongyi", "tongyi", {"dashscope_api_key": "sk-good-0123456789"})),
})
`,
            { PLUGIN_DAEMON_KEY: "not-the-daemon-key" },
        );
        expect(result.management?.type).toBe("PluginDaemonClientSideError");
        expect(result.management?.text).toContain("401");
        expect(result.stream?.text).toContain("unauthorized");
        expect(result.stream?.text).toContain("-401");
        const refused = (await standIn.calls()).filter((c) => c.tenant_id === t);
        expect(refused.map((c) => c.status)).toEqual([401, 401]);
    }, SLOW);

    // Runs last: covers every call the tests above made.
    it("sent only bodies that Dify's own classes accept, and had a route for every call", async () => {
        const calls = await standIn.calls();
        expect(calls.length).toBeGreaterThan(20);
        expect(calls.filter((c) => c.invalid !== undefined || c.unhandled || c.status >= 500)).toEqual([]);
        expect(standIn.log()).not.toContain("INVALID");
    }, SLOW);
});
