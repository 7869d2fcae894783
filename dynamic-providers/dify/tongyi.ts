// The `langgenius/tongyi` plugin in a Dify workspace, as DifyModelProvider drives it: installing the plugin (from
// the marketplace or a .difypkg) and waiting for the install task, saving the DashScope key as the provider's
// one active credential, and setting the default models (the reasoning model must call tools).
// Facts: ../shared/reference/dify-console-api.md section 3.
import * as fs from "fs";
import * as path from "path";
import type { DifyConsoleApi, PluginInstallTask, PluginListEntry } from "./console-api";
import { isDifyAlreadyExists, isDifyApiError, isDifyNotFound, joinSentences, redactSecrets, withExplanation } from "./errors";
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

/**
 * What the daemon's task monitor (plugin daemon 0.6.0 tasks/recycle.go) writes on a task older than
 * PYTHON_ENV_INIT_TIMEOUT + 60 s while uv may still be downloading: not final, since the install can still end
 * and then overwrite it (success recomputes the task's status).
 */
const NOT_TERMINATED_MESSAGE = "Task timed out but not properly terminated";
/**
 * The daemon's words when uv could not install the plugin's Python packages. Worth one more install: downloaded
 * wheels stay in the daemon's shared uv cache, so a second attempt gets further.
 */
const DEPENDENCY_FAILURE = /failed to install dependencies/i;
/** The longest daemon message an error quotes (the daemon's own messages run to 1024 characters of uv output). */
const MESSAGE_LIMIT = 1000;

/** What to check when the daemon could not install the plugin; facts in the plugin daemon research notes. */
const INSTALL_HINT = [
    "The plugin daemon installs the plugin's Python packages with uv (`uv sync --frozen` for a plugin with a uv.lock, as tongyi has, " +
        "which downloads from files.pythonhosted.org and ignores PIP_MIRROR_URL unless PLUGIN_IGNORE_UV_LOCK=true)",
    "Check the stack setting dify-mcp-stack:pipMirrorUrl: a PyPI simple index the Dify host can reach (the bootstrap writes it to " +
        "Dify's docker/.env as PIP_MIRROR_URL with PLUGIN_IGNORE_UV_LOCK=true, and sets PLUGIN_PYTHON_ENV_INIT_TIMEOUT=600)",
    "Running `pulumi up` again retries the install, and the wheels downloaded so far stay cached",
];

export async function findInstalledPlugin(api: DifyConsoleApi): Promise<PluginListEntry | undefined> {
    return (await api.listPlugins()).find((plugin) => plugin.plugin_id === TONGYI_PLUGIN_ID);
}

/** How one install task ended: installed, failed with the daemon's message, or still going at the deadline. */
type TaskEnd = { installed: true } | { installed: false; finished: boolean; status: string; message: string };

/**
 * A daemon message fit for an error: on one line, without the call's secrets or credentials in URLs, and at most
 * about `limit` characters (the head says what failed, the tail carries hints such as "no activity for N seconds").
 */
function quotedMessage(text: string, secrets: (string | undefined)[], limit = MESSAGE_LIMIT): string {
    const oneLine = redactSecrets(text, secrets)
        .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1[redacted]@")
        .replace(/\s+/g, " ")
        .trim();
    const half = Math.floor(limit / 2);
    return `"${oneLine.length > limit ? `${oneLine.slice(0, half)} … ${oneLine.slice(-half)}` : oneLine}"`;
}

/** The task's plugin messages, without the empty ones and the daemon's progress word "starting". */
function taskMessage(task: PluginInstallTask): string {
    return (task.plugins ?? [])
        .map((p) => p.message ?? "")
        .filter((m) => m !== "" && m !== "starting")
        .join("; ");
}

async function waitForTask(api: DifyConsoleApi, taskId: string, inputs: DifyModelProviderInputs): Promise<TaskEnd> {
    const timeoutSeconds = inputs.installTimeoutSeconds ?? MODEL_PROVIDER_DEFAULTS.installTimeoutSeconds;
    const deadline = Date.now() + timeoutSeconds * 1000;
    let message = "";
    for (;;) {
        let task: PluginInstallTask;
        try {
            task = await api.getPluginTask(taskId);
        } catch (err) {
            // Dify deletes a successful task 60-120 s after it succeeded; fetching it then fails ("record not found"
            // in the daemon, HTTP 500 from Dify). The plugin list tells whether that is what happened.
            if (await findInstalledPlugin(api).catch(() => undefined)) {
                return { installed: true };
            }
            throw err;
        }
        message = taskMessage(task) || message;
        if (task.status === "success") {
            return { installed: true };
        }
        const notTerminated = task.status === "failed" && (task.plugins ?? []).every((p) => (p.message ?? "") === NOT_TERMINATED_MESSAGE);
        if (task.status === "failed" && !notTerminated) {
            return { installed: false, finished: true, status: task.status, message };
        }
        // A task marked "not properly terminated" may never be updated again when its install succeeds: the list says.
        if (notTerminated && (await findInstalledPlugin(api))) {
            return { installed: true };
        }
        if (Date.now() > deadline) {
            return { installed: false, finished: false, status: task.status, message };
        }
        await sleepMs((inputs.installPollSeconds ?? MODEL_PROVIDER_DEFAULTS.installPollSeconds) * 1000);
    }
}

/** One attempt's end as a phrase: the daemon's message, or that it did not finish in time. */
function describeTaskEnd(end: Exclude<TaskEnd, { installed: true }>, inputs: DifyModelProviderInputs, limit = MESSAGE_LIMIT): string {
    const secrets = [inputs.adminPassword, inputs.dashscopeApiKey];
    const last = end.message ? quotedMessage(end.message, secrets, limit) : "none";
    if (end.finished) {
        return end.message ? last : "no message";
    }
    const timeoutSeconds = inputs.installTimeoutSeconds ?? MODEL_PROVIDER_DEFAULTS.installTimeoutSeconds;
    return `did not finish within ${timeoutSeconds} s (the task is ${end.status}; its last message: ${last})`;
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

/**
 * Installs the plugin unless it is there; returns its unique identifier and whether this call installed it.
 * Each attempt waits up to installTimeoutSeconds; a dependency failure is retried once (see DEPENDENCY_FAILURE).
 */
export async function ensurePlugin(api: DifyConsoleApi, inputs: DifyModelProviderInputs): Promise<{ uniqueIdentifier: string; installed: boolean }> {
    const existing = await findInstalledPlugin(api);
    if (existing) {
        return { uniqueIdentifier: existing.plugin_unique_identifier, installed: false };
    }
    let uniqueIdentifier: string;
    let install: () => Promise<{ all_installed?: boolean; task_id?: string }>;
    if (inputs.pluginPackagePath) {
        const content = fs.readFileSync(inputs.pluginPackagePath);
        const uploaded = (await api.uploadPluginPackage(path.basename(inputs.pluginPackagePath), content)).unique_identifier;
        uniqueIdentifier = uploaded;
        install = () => api.installPluginPackages([uploaded]);
    } else {
        const latest = await latestMarketplaceVersion(api);
        uniqueIdentifier = latest;
        install = () => api.installMarketplacePlugins([latest]);
    }
    const ends: Exclude<TaskEnd, { installed: true }>[] = [];
    for (;;) {
        const answer = await install();
        if (answer.all_installed || !answer.task_id) {
            return { uniqueIdentifier, installed: !answer.all_installed };
        }
        const end = await waitForTask(api, answer.task_id, inputs);
        if (end.installed) {
            return { uniqueIdentifier, installed: true };
        }
        ends.push(end);
        if (ends.length > 1 || !end.finished || !DEPENDENCY_FAILURE.test(end.message)) {
            break;
        }
        // The daemon removes a plugin whose install failed and never retries it: start a new install.
    }
    const [first, second] = ends;
    const what = second
        ? `Dify's plugin daemon failed to install ${TONGYI_PLUGIN_ID} twice (a dependency failure is retried once): first attempt: ` +
          `${describeTaskEnd(first, inputs, MESSAGE_LIMIT / 2)}; second attempt: ${describeTaskEnd(second, inputs, MESSAGE_LIMIT / 2)}`
        : first.finished
          ? `Dify's plugin daemon failed to install ${TONGYI_PLUGIN_ID}: ${describeTaskEnd(first, inputs)}`
          : `installing ${TONGYI_PLUGIN_ID} in Dify's plugin daemon ${describeTaskEnd(first, inputs)}`;
    throw new Error(joinSentences(what, ...INSTALL_HINT));
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
