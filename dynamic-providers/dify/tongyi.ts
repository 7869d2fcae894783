// The `langgenius/tongyi` plugin in a Dify workspace, as DifyModelProvider drives it: installing the plugin (from
// the marketplace or a .difypkg) and waiting for the install task, saving the DashScope key as the provider's
// one active credential, and setting the default models (the reasoning model must call tools).
// Facts: ../shared/reference/dify-console-api.md section 3.
import * as fs from "fs";
import * as path from "path";
import type { DifyConsoleApi, PluginListEntry } from "./console-api";
import { isDifyAlreadyExists, isDifyApiError, isDifyNotFound, joinSentences, withExplanation } from "./errors";
import type { DifyModelProviderInputs } from "./model-provider";
import { sleepMs } from "./transport";

export const TONGYI_PLUGIN_ID = "langgenius/tongyi";
/** The full provider name; Dify stores default models under the name as given, so always use this one. */
export const TONGYI_PROVIDER = "langgenius/tongyi/tongyi";
/** Model features with which Dify's agent runner uses function calling. */
const TOOL_CALL_FEATURES = ["tool-call", "multi-tool-call"];

/** The defaults `checkDifyModelProvider` fills in. */
export const MODEL_PROVIDER_DEFAULTS = {
    useInternationalEndpoint: false,
    credentialName: "pulumi",
    llmModel: "qwen-plus",
    embeddingModel: "text-embedding-v4",
    installTimeoutSeconds: 600,
    installPollSeconds: 3,
};

// ------------------------------------------------------------------------------------------------------
// The plugin.

export async function findInstalledPlugin(api: DifyConsoleApi): Promise<PluginListEntry | undefined> {
    return (await api.listPlugins()).find((plugin) => plugin.plugin_id === TONGYI_PLUGIN_ID);
}

async function waitForTask(api: DifyConsoleApi, taskId: string, inputs: DifyModelProviderInputs): Promise<void> {
    const timeoutSeconds = inputs.installTimeoutSeconds ?? MODEL_PROVIDER_DEFAULTS.installTimeoutSeconds;
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
        const task = await api.getPluginTask(taskId);
        if (task.status === "success") {
            return;
        }
        if (task.status === "failed") {
            const messages = (task.plugins ?? []).map((p) => `${p.plugin_id ?? "plugin"}: ${p.message ?? p.status ?? "failed"}`).join("; ");
            throw new Error(
                joinSentences(
                    `installing ${TONGYI_PLUGIN_ID} failed in Dify's plugin daemon (${messages || "no details"})`,
                    "The daemon runs `pip install`: on hosts in mainland China set PIP_MIRROR_URL in Dify's .env",
                ),
            );
        }
        if (Date.now() > deadline) {
            throw new Error(joinSentences(`installing ${TONGYI_PLUGIN_ID} did not finish within ${timeoutSeconds} s (task ${taskId} is ${task.status})`));
        }
        await sleepMs((inputs.installPollSeconds ?? MODEL_PROVIDER_DEFAULTS.installPollSeconds) * 1000);
    }
}

/** The marketplace's latest tongyi, or an error saying why Dify lists none. */
async function latestMarketplaceVersion(api: DifyConsoleApi): Promise<string> {
    const found = (await api.latestPluginVersions([TONGYI_PLUGIN_ID]))[TONGYI_PLUGIN_ID]?.unique_identifier;
    if (!found) {
        // Dify swallows marketplace failures here: an unreachable marketplace answers 200 {"versions": {}},
        // like one that does not list the plugin (services/plugin/plugin_service.py fetch_latest_plugin_version).
        throw new Error(
            joinSentences(
                `Dify's plugin/list/latest-versions lists no ${TONGYI_PLUGIN_ID}. Either the Dify host cannot reach the ` +
                    "plugin marketplace (common in mainland China regions; check MARKETPLACE_API_URL in Dify's .env and " +
                    "the host's outbound access), or the marketplace does not list the plugin",
                "Give a .difypkg file of the plugin as pluginPackagePath instead",
            ),
        );
    }
    return found;
}

/** Installs the plugin unless it is there; returns its unique identifier and whether this call installed it. */
export async function ensurePlugin(api: DifyConsoleApi, inputs: DifyModelProviderInputs): Promise<{ uniqueIdentifier: string; installed: boolean }> {
    const existing = await findInstalledPlugin(api);
    if (existing) {
        return { uniqueIdentifier: existing.plugin_unique_identifier, installed: false };
    }
    let uniqueIdentifier: string;
    let install: { all_installed?: boolean; task_id?: string };
    if (inputs.pluginPackagePath) {
        const content = fs.readFileSync(inputs.pluginPackagePath);
        uniqueIdentifier = (await api.uploadPluginPackage(path.basename(inputs.pluginPackagePath), content)).unique_identifier;
        install = await api.installPluginPackages([uniqueIdentifier]);
    } else {
        uniqueIdentifier = await latestMarketplaceVersion(api);
        install = await api.installMarketplacePlugins([uniqueIdentifier]);
    }
    if (!install.all_installed && install.task_id) {
        await waitForTask(api, install.task_id, inputs);
    }
    return { uniqueIdentifier, installed: !install.all_installed };
}

// ------------------------------------------------------------------------------------------------------
// The credential.

function credentialBody(inputs: DifyModelProviderInputs): Record<string, string> {
    // Both fields are required by the plugin's schema; Dify wants the radio value as a string.
    return {
        dashscope_api_key: inputs.dashscopeApiKey,
        use_international_endpoint: inputs.useInternationalEndpoint ? "true" : "false",
    };
}

export async function tongyiEntry(api: DifyConsoleApi) {
    return (await api.listModelProviders()).find((p) => p.provider === TONGYI_PROVIDER);
}

/**
 * Dify saves a credential only after the tongyi plugin validated it with DashScope; a refusal comes back as
 * 400 invalid_param with DashScope's own words ("Invalid API-key provided."), which do not say which input is
 * wrong. Adds that, keeping the error's fields.
 */
function explainCredentialRefusal(err: unknown, inputs: DifyModelProviderInputs): unknown {
    if (!isDifyApiError(err) || err.status !== 400 || isDifyNotFound(err) || isDifyAlreadyExists(err)) {
        return err;
    }
    const endpoint = inputs.useInternationalEndpoint ? "true: DashScope's international (Singapore) endpoint" : "false: DashScope's China (Beijing) endpoint";
    return withExplanation(
        err,
        `DashScope refused the credential when Dify validated it: check dashscopeApiKey (a Model Studio API key) and useInternationalEndpoint (${endpoint}; a key works only in its own region)`,
    );
}

/**
 * Saves the key: updates `credentialId` (or the provider's active credential) in place, or creates the first
 * credential. A second credential would not become active, so it is never added beside an existing one.
 */
export async function saveCredential(api: DifyConsoleApi, inputs: DifyModelProviderInputs, credentialId: string): Promise<string> {
    try {
        return await saveCredentialOnce(api, inputs, credentialId);
    } catch (err) {
        throw explainCredentialRefusal(err, inputs);
    }
}

async function saveCredentialOnce(api: DifyConsoleApi, inputs: DifyModelProviderInputs, credentialId: string): Promise<string> {
    let target = credentialId;
    if (!target) {
        const entry = await tongyiEntry(api);
        target = entry?.custom_configuration?.current_credential_id ?? "";
    }
    const name = inputs.credentialName ?? MODEL_PROVIDER_DEFAULTS.credentialName;
    if (target) {
        try {
            await api.updateModelCredential(TONGYI_PROVIDER, target, name, credentialBody(inputs));
            return target;
        } catch (err) {
            if (!isDifyNotFound(err) || !credentialId) {
                throw err;
            }
            return saveCredentialOnce(api, inputs, ""); // deleted outside Pulumi: fall back to the active one
        }
    }
    await api.createModelCredential(TONGYI_PROVIDER, name, credentialBody(inputs));
    const entry = await tongyiEntry(api);
    const created = entry?.custom_configuration?.available_credentials?.find((c) => c.credential_name === name)?.credential_id;
    return created ?? entry?.custom_configuration?.current_credential_id ?? "";
}

// ------------------------------------------------------------------------------------------------------
// The default models.

/** The reasoning model must call tools: the agent app relies on function calling for MCP tools. */
export async function checkToolCalling(api: DifyConsoleApi, model: string): Promise<void> {
    const models = (await api.listModels("llm")).find((p) => p.provider === TONGYI_PROVIDER)?.models ?? [];
    const capable = models.filter((m) => (m.features ?? []).some((f) => TOOL_CALL_FEATURES.includes(f))).map((m) => m.model);
    const found = models.find((m) => m.model === model);
    if (!found) {
        throw new Error(joinSentences(`llmModel ${model} is not a model of ${TONGYI_PROVIDER} in this Dify; models with tool calling: ${capable.join(", ") || "none"}`));
    }
    if (!capable.includes(model)) {
        throw new Error(joinSentences(`llmModel ${model} does not support tool calling, which the MCP agent needs; choose one of: ${capable.join(", ")}`));
    }
}

export async function setDefaultModels(api: DifyConsoleApi, inputs: DifyModelProviderInputs): Promise<void> {
    await api.setDefaultModels([
        { model_type: "llm", provider: TONGYI_PROVIDER, model: inputs.llmModel ?? MODEL_PROVIDER_DEFAULTS.llmModel },
        { model_type: "text-embedding", provider: TONGYI_PROVIDER, model: inputs.embeddingModel ?? MODEL_PROVIDER_DEFAULTS.embeddingModel },
    ]);
}

/** A default model as `read` reports it: the name for a tongyi model, else "<provider>:<model>" (drift). */
export async function defaultModelAsRead(api: DifyConsoleApi, type: "llm" | "text-embedding"): Promise<string> {
    const data = await api.getDefaultModel(type);
    if (!data) {
        return "";
    }
    return data.provider?.provider === TONGYI_PROVIDER ? (data.model ?? "") : `${data.provider?.provider ?? "none"}:${data.model ?? ""}`;
}
