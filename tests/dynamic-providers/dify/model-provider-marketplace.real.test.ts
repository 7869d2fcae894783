// DifyModelProvider against Dify 1.14.1's REAL API server on a host that cannot reach the plugin marketplace
// (MARKETPLACE_API_URL is a closed port): what Dify answers, the error our provider gives, and the way out it
// names (a .difypkg uploaded through Dify), including the engine's recovery from a create that failed half-way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectToDify, DifyConsole } from "../../../dynamic-providers/dify/session";
import {
    diffDifyModelProvider,
    difyModelProviderProvider,
    DifyModelProviderInputs,
    DifyModelProviderOutputs,
} from "../../../dynamic-providers/dify/model-provider";
import { RealDify, startRealDify } from "../../harness/real-dify";

const ADMIN = { email: "ops@example.com", name: "Ops Admin", password: "Adm1n-Passw0rd-x" };
const CLOSED_PORT_URL = "http://127.0.0.1:1";

let dify: RealDify;
let session: DifyConsole;
const standIn = () => dify.pluginDaemon!;

beforeAll(async () => {
    dify = await startRealDify({ admin: ADMIN, env: { MARKETPLACE_API_URL: CLOSED_PORT_URL } });
    session = await connectToDify({ url: dify.url }, ADMIN);
}, 600_000);

afterAll(async () => {
    await dify?.close();
}, 120_000);

async function checked(overrides: Partial<DifyModelProviderInputs>): Promise<DifyModelProviderInputs> {
    const result = await difyModelProviderProvider.check!({} as DifyModelProviderInputs, {
        difyUrl: dify.url,
        adminEmail: ADMIN.email,
        adminPassword: ADMIN.password,
        dashscopeApiKey: "sk-market-0123456789abcdef",
        installPollSeconds: 0.2,
        ...overrides,
    } as DifyModelProviderInputs);
    expect(result.failures ?? []).toEqual([]);
    return result.inputs!;
}

describe("DifyModelProvider when Dify cannot reach the plugin marketplace", () => {
    it("Dify swallows the failure: latest-versions answers 200 with no versions at all", async () => {
        expect(dify.env.MARKETPLACE_API_URL).toBe(CLOSED_PORT_URL);
        expect(await session.post("/workspaces/current/plugin/list/latest-versions", { plugin_ids: ["langgenius/tongyi"] })).toEqual({ versions: {} });
        expect(dify.logTail(400)).toMatch(/failed to fetch latest plugin version/);
    });

    it("create fails naming both causes, with one closing period, and installs nothing", async () => {
        const error = await difyModelProviderProvider.create(await checked({})).catch((err: Error) => err);
        const message = (error as Error).message;
        expect(message).toBe(
            "Dify's plugin/list/latest-versions lists no langgenius/tongyi. Either the Dify host cannot reach the plugin marketplace " +
                "(common in mainland China regions; check MARKETPLACE_API_URL in Dify's .env and the host's outbound access), or the " +
                "marketplace does not list the plugin. Give a .difypkg file of the plugin as pluginPackagePath instead.",
        );
        expect((await standIn().calls()).filter((call) => /install|upload/.test(call.path))).toEqual([]);
        expect(((await session.get<{ plugins: unknown[] }>("/workspaces/current/plugin/list", { page: 1, page_size: 256 })).plugins)).toEqual([]);
    });

    it("installs from a .difypkg instead; a key DashScope refuses leaves an init failure the next `up` repairs", async () => {
        const badKey = await checked({ pluginPackagePath: standIn().packagePath, dashscopeApiKey: "sk-invalid-key-00000000" });
        const failure = (await difyModelProviderProvider.create(badKey).catch((err: unknown) => err)) as Error & { id?: string; properties?: DifyModelProviderOutputs };
        expect(failure.message).toMatch(/credentials failed \(HTTP 400 invalid_param\): Invalid API-key provided\. DashScope refused the credential when Dify validated it: check dashscopeApiKey/);
        expect(failure.message).not.toContain("sk-invalid-key-00000000");
        // What the engine records (ErrorResourceInitFailed): the plugin is there, the credential and models are not.
        expect(failure.id).toBe("langgenius/tongyi/tongyi");
        expect(failure.properties).toMatchObject({ pluginInstalledByPulumi: true, pluginUniqueIdentifier: standIn().uniqueIdentifier, credentialId: "", llmModel: "" });
        expect((await standIn().calls()).filter((call) => call.path.endsWith("/management/install/upload/package")).length).toBe(1);

        // The next `up`, with the key fixed: diff, then update from the recorded state.
        const fixed = await checked({ pluginPackagePath: standIn().packagePath });
        expect(diffDifyModelProvider(failure.properties!, fixed)).toMatchObject({ changes: true, replaces: [] });
        const updated = await difyModelProviderProvider.update!(failure.id!, failure.properties!, fixed);
        const outs = updated.outs as DifyModelProviderOutputs;
        expect(outs).toMatchObject({ pluginInstalledByPulumi: true, llmModel: "qwen-plus", embeddingModel: "text-embedding-v4" });
        expect(outs.credentialId).not.toBe("");
        expect((await session.get<{ data: { model: string } }>("/workspaces/current/default-model", { model_type: "llm" })).data.model).toBe("qwen-plus");
        const read = await difyModelProviderProvider.read!(failure.id!, outs);
        expect(read.props).toEqual(outs);
        expect(diffDifyModelProvider(read.props as DifyModelProviderOutputs, fixed)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        // Uploaded once: the installed plugin is kept.
        expect((await standIn().calls()).filter((call) => call.path.endsWith("/management/install/upload/package")).length).toBe(1);
    });
});
