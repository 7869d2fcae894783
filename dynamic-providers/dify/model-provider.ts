// DifyModelProvider: Qwen models in Dify through the `langgenius/tongyi` plugin. Installs the plugin (from
// the marketplace, or from a .difypkg file for hosts without marketplace access) and waits for the install
// task, saves the DashScope API key as the provider credential (updating the active credential in place
// rather than adding a second one), and sets the default reasoning model (which must support tool calling)
// and embedding model. Facts: ../shared/reference/dify-console-api.md section 3.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { differs } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { isKnown } from "../engine/unknown";
import {
    checkDifyConnection,
    connectWith,
    DifyConnectionInputs,
    DifyApiError,
    DifyConsole,
    isDifyAlreadyExists,
    isDifyApiError,
    isDifyNotFound,
    joinSentences,
    normalizeDifyUrl,
    resourceInitFailure,
    sleepMs,
} from "./client";

export const TONGYI_PLUGIN_ID = "langgenius/tongyi";
/** The full provider name; Dify stores default models under the name as given, so always use this one. */
export const TONGYI_PROVIDER = "langgenius/tongyi/tongyi";
const PLUGIN_ROUTE = "/workspaces/current/plugin";
const CREDENTIALS_ROUTE = `/workspaces/current/model-providers/${TONGYI_PROVIDER}/credentials`;
/** What `read` reports as the key when Dify's (obfuscated) key no longer matches the configured one. */
export const KEY_CHANGED_OUTSIDE_PULUMI = "[changed outside Pulumi]";
/** Model features with which Dify's agent runner uses function calling. */
const TOOL_CALL_FEATURES = ["tool-call", "multi-tool-call"];

export interface DifyModelProviderInputs extends DifyConnectionInputs {
    /** DashScope API key (Model Studio). Kept secret. */
    dashscopeApiKey: string;
    /** DashScope's international endpoint (Singapore) instead of the China (Beijing) one. */
    useInternationalEndpoint?: boolean;
    /** Name of the credential in Dify (at most 30 characters). */
    credentialName?: string;
    /** Default reasoning model; must support tool calling. */
    llmModel?: string;
    /** Default embedding model. */
    embeddingModel?: string;
    /** A local .difypkg of the tongyi plugin, uploaded instead of installing from the marketplace. */
    pluginPackagePath?: string;
    installTimeoutSeconds?: number;
    installPollSeconds?: number;
    requestTimeoutSeconds?: number;
}

export interface DifyModelProviderOutputs extends DifyModelProviderInputs {
    /** The full provider name, "langgenius/tongyi/tongyi" (what agent apps reference). */
    providerName: string;
    /** Id of the credential this resource manages. */
    credentialId: string;
    pluginUniqueIdentifier: string;
    /** Whether this resource installed the plugin (and so uninstalls it on delete). */
    pluginInstalledByPulumi: boolean;
    difyVersion: string;
}


const DEFAULTS = {
    useInternationalEndpoint: false,
    credentialName: "pulumi",
    llmModel: "qwen-plus",
    embeddingModel: "text-embedding-v4",
    installTimeoutSeconds: 600,
    installPollSeconds: 3,
};

export function checkDifyModelProvider(news: Partial<DifyModelProviderInputs>): pulumi.dynamic.CheckResult<DifyModelProviderInputs> {
    const failures: CheckFailure[] = checkDifyConnection(news);
    const known = isKnown;
    if (news.dashscopeApiKey === undefined || news.dashscopeApiKey === "") {
        failures.push({ property: "dashscopeApiKey", reason: "dashscopeApiKey is required: a DashScope (Model Studio) API key" });
    }
    if (known(news.credentialName) && !/^.{1,30}$/u.test(String(news.credentialName))) {
        failures.push({ property: "credentialName", reason: "credentialName must be 1 to 30 characters" });
    }
    for (const key of ["llmModel", "embeddingModel"] as const) {
        if (known(news[key]) && !/^[A-Za-z0-9._:-]+$/.test(String(news[key]))) {
            failures.push({ property: key, reason: `${key} must be a model name such as ${DEFAULTS[key]}` });
        }
    }
    if (known(news.useInternationalEndpoint) && typeof news.useInternationalEndpoint !== "boolean") {
        failures.push({ property: "useInternationalEndpoint", reason: "useInternationalEndpoint must be true or false" });
    }
    if (known(news.pluginPackagePath) && news.pluginPackagePath !== "") {
        const file = String(news.pluginPackagePath);
        if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
            failures.push({ property: "pluginPackagePath", reason: `pluginPackagePath ${file} is not a readable file (a .difypkg of ${TONGYI_PLUGIN_ID})` });
        }
    }
    for (const key of ["installTimeoutSeconds", "installPollSeconds", "requestTimeoutSeconds"] as const) {
        const value = news[key];
        if (known(value) && !(typeof value === "number" && value > 0)) {
            failures.push({ property: key, reason: `${key} must be a positive number of seconds` });
        }
    }
    if (failures.length > 0) {
        return { failures };
    }
    const given = Object.fromEntries(Object.entries(news).filter(([, v]) => v !== undefined && v !== "")) as unknown as DifyModelProviderInputs;
    return { inputs: { ...DEFAULTS, ...given, difyUrl: normalizeDifyUrl(news.difyUrl as string) } };
}

const CREDENTIAL_FIELDS = ["dashscopeApiKey", "useInternationalEndpoint", "credentialName"] as const;
const MODEL_FIELDS = ["llmModel", "embeddingModel"] as const;


export function diffDifyModelProvider(olds: DifyModelProviderOutputs, news: DifyModelProviderInputs): pulumi.dynamic.DiffResult {
    const replaces = differs(olds, news, "difyUrl") ? ["difyUrl"] : [];
    const keys = [...CREDENTIAL_FIELDS, ...MODEL_FIELDS, "pluginPackagePath", "adminEmail", "adminPassword"] as const;
    const changed = keys.filter((key) => differs(olds, news, key));
    const credentialMissing = olds.credentialId === "";
    return { changes: replaces.length > 0 || changed.length > 0 || credentialMissing, replaces, deleteBeforeReplace: false };
}

interface PluginListEntry {
    plugin_id: string;
    plugin_unique_identifier: string;
    installation_id: string;
}

interface InstallTask {
    status: string;
    plugins?: { plugin_id?: string; status?: string; message?: string }[];
}

interface ModelProviderEntry {
    provider: string;
    custom_configuration?: {
        status?: string;
        current_credential_id?: string | null;
        available_credentials?: { credential_id: string; credential_name: string }[];
    };
}

interface ModelTypeEntry {
    provider: string;
    models?: { model: string; features?: string[] | null; status?: string }[];
}

async function findInstalledPlugin(session: DifyConsole): Promise<PluginListEntry | undefined> {
    const list = await session.get<{ plugins?: PluginListEntry[] }>(`${PLUGIN_ROUTE}/list`, { page: 1, page_size: 256 });
    return (list.plugins ?? []).find((plugin) => plugin.plugin_id === TONGYI_PLUGIN_ID);
}

async function waitForTask(session: DifyConsole, taskId: string, inputs: DifyModelProviderInputs): Promise<void> {
    const deadline = Date.now() + (inputs.installTimeoutSeconds ?? DEFAULTS.installTimeoutSeconds) * 1000;
    for (;;) {
        const { task } = await session.get<{ task: InstallTask }>(`${PLUGIN_ROUTE}/tasks/${taskId}`);
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
            throw new Error(
                joinSentences(`installing ${TONGYI_PLUGIN_ID} did not finish within ${inputs.installTimeoutSeconds ?? DEFAULTS.installTimeoutSeconds} s (task ${taskId} is ${task.status})`),
            );
        }
        await sleepMs((inputs.installPollSeconds ?? DEFAULTS.installPollSeconds) * 1000);
    }
}

/** Installs the plugin unless it is there; returns its unique identifier and whether this call installed it. */
async function ensurePlugin(session: DifyConsole, inputs: DifyModelProviderInputs): Promise<{ uniqueIdentifier: string; installed: boolean }> {
    const existing = await findInstalledPlugin(session);
    if (existing) {
        return { uniqueIdentifier: existing.plugin_unique_identifier, installed: false };
    }
    let uniqueIdentifier: string;
    let install: { all_installed?: boolean; task_id?: string };
    if (inputs.pluginPackagePath) {
        const content = fs.readFileSync(inputs.pluginPackagePath);
        const uploaded = await session.upload<{ unique_identifier: string }>(
            `${PLUGIN_ROUTE}/upload/pkg`,
            "pkg",
            path.basename(inputs.pluginPackagePath),
            content,
        );
        uniqueIdentifier = uploaded.unique_identifier;
        install = await session.post(`${PLUGIN_ROUTE}/install/pkg`, { plugin_unique_identifiers: [uniqueIdentifier] });
    } else {
        const latest = await session.post<{ versions?: Record<string, { unique_identifier?: string } | null> }>(
            `${PLUGIN_ROUTE}/list/latest-versions`,
            { plugin_ids: [TONGYI_PLUGIN_ID] },
        );
        const found = latest.versions?.[TONGYI_PLUGIN_ID]?.unique_identifier;
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
        uniqueIdentifier = found;
        install = await session.post(`${PLUGIN_ROUTE}/install/marketplace`, { plugin_unique_identifiers: [uniqueIdentifier] });
    }
    if (!install.all_installed && install.task_id) {
        await waitForTask(session, install.task_id, inputs);
    }
    return { uniqueIdentifier, installed: !install.all_installed };
}

function credentialBody(inputs: DifyModelProviderInputs): Record<string, string> {
    // Both fields are required by the plugin's schema; Dify wants the radio value as a string.
    return {
        dashscope_api_key: inputs.dashscopeApiKey,
        use_international_endpoint: inputs.useInternationalEndpoint ? "true" : "false",
    };
}

async function tongyiEntry(session: DifyConsole): Promise<ModelProviderEntry | undefined> {
    const providers = await session.get<{ data?: ModelProviderEntry[] }>("/workspaces/current/model-providers");
    return (providers.data ?? []).find((p) => p.provider === TONGYI_PROVIDER);
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
    const explained = new Error(
        joinSentences(
            err.message,
            `DashScope refused the credential when Dify validated it: check dashscopeApiKey (a Model Studio API key) and useInternationalEndpoint (${endpoint}; a key works only in its own region)`,
        ),
    ) as DifyApiError;
    const { message: _message, stack: _stack, ...fields } = err;
    return Object.assign(explained, fields, { name: "DifyApiError" });
}

/**
 * Saves the key: updates `credentialId` (or the provider's active credential) in place, or creates the first
 * credential. A second credential would not become active, so it is never added beside an existing one.
 */
async function saveCredential(session: DifyConsole, inputs: DifyModelProviderInputs, credentialId: string): Promise<string> {
    try {
        return await saveCredentialOnce(session, inputs, credentialId);
    } catch (err) {
        throw explainCredentialRefusal(err, inputs);
    }
}

async function saveCredentialOnce(session: DifyConsole, inputs: DifyModelProviderInputs, credentialId: string): Promise<string> {
    let target = credentialId;
    if (!target) {
        const entry = await tongyiEntry(session);
        target = entry?.custom_configuration?.current_credential_id ?? "";
    }
    const name = inputs.credentialName ?? DEFAULTS.credentialName;
    if (target) {
        try {
            await session.put(CREDENTIALS_ROUTE, { credential_id: target, credentials: credentialBody(inputs), name });
            return target;
        } catch (err) {
            if (!isDifyNotFound(err) || !credentialId) {
                throw err;
            }
            return saveCredentialOnce(session, inputs, ""); // deleted outside Pulumi: fall back to the active one
        }
    }
    await session.post(CREDENTIALS_ROUTE, { credentials: credentialBody(inputs), name });
    const entry = await tongyiEntry(session);
    const created = entry?.custom_configuration?.available_credentials?.find((c) => c.credential_name === name)?.credential_id;
    return created ?? entry?.custom_configuration?.current_credential_id ?? "";
}

/** The reasoning model must call tools: the agent app relies on function calling for MCP tools. */
async function checkToolCalling(session: DifyConsole, model: string): Promise<void> {
    const llms = await session.get<{ data?: ModelTypeEntry[] }>("/workspaces/current/models/model-types/llm");
    const models = (llms.data ?? []).find((p) => p.provider === TONGYI_PROVIDER)?.models ?? [];
    const capable = models.filter((m) => (m.features ?? []).some((f) => TOOL_CALL_FEATURES.includes(f))).map((m) => m.model);
    const found = models.find((m) => m.model === model);
    if (!found) {
        throw new Error(joinSentences(`llmModel ${model} is not a model of ${TONGYI_PROVIDER} in this Dify; models with tool calling: ${capable.join(", ") || "none"}`));
    }
    if (!capable.includes(model)) {
        throw new Error(joinSentences(`llmModel ${model} does not support tool calling, which the MCP agent needs; choose one of: ${capable.join(", ")}`));
    }
}

async function setDefaultModels(session: DifyConsole, inputs: DifyModelProviderInputs): Promise<void> {
    await session.post("/workspaces/current/default-model", {
        model_settings: [
            { model_type: "llm", provider: TONGYI_PROVIDER, model: inputs.llmModel ?? DEFAULTS.llmModel },
            { model_type: "text-embedding", provider: TONGYI_PROVIDER, model: inputs.embeddingModel ?? DEFAULTS.embeddingModel },
        ],
    });
}

/** Dify's encrypter.obfuscated_token, to compare a configured key with what Dify shows. */
export function obfuscateDashscopeKey(token: string): string {
    if (!token) {
        return token;
    }
    return token.length <= 8 ? "*".repeat(20) : token.slice(0, 6) + "*".repeat(12) + token.slice(-2);
}

export const difyModelProviderProvider: pulumi.dynamic.ResourceProvider<DifyModelProviderInputs, DifyModelProviderOutputs> = engineSafeProvider({
    async check(_olds: DifyModelProviderInputs, news: DifyModelProviderInputs) {
        return checkDifyModelProvider(news);
    },

    async diff(_id: string, olds: DifyModelProviderOutputs, news: DifyModelProviderInputs) {
        return diffDifyModelProvider(olds, news);
    },

    async create(inputs: DifyModelProviderInputs) {
        const session = await connectWith(inputs, [inputs.dashscopeApiKey]);
        const plugin = await ensurePlugin(session, inputs);
        const outs: DifyModelProviderOutputs = {
            ...inputs,
            providerName: TONGYI_PROVIDER,
            credentialId: "",
            pluginUniqueIdentifier: plugin.uniqueIdentifier,
            pluginInstalledByPulumi: plugin.installed,
            difyVersion: session.version,
            // Not applied yet: if a step below fails, state says so and the next `up` applies them.
            llmModel: "",
            embeddingModel: "",
        };
        try {
            outs.credentialId = await saveCredential(session, inputs, "");
            await checkToolCalling(session, inputs.llmModel ?? DEFAULTS.llmModel);
            await setDefaultModels(session, inputs);
        } catch (err) {
            // Keep what exists (plugin, credential) in state; the next `up` finishes the job through update.
            throw resourceInitFailure(TONGYI_PROVIDER, outs, err);
        }
        return { id: TONGYI_PROVIDER, outs: { ...outs, llmModel: inputs.llmModel, embeddingModel: inputs.embeddingModel } };
    },

    async read(id: string, props?: DifyModelProviderOutputs) {
        const state = props as DifyModelProviderOutputs;
        const session = await connectWith(state, [state.dashscopeApiKey]);
        const plugin = await findInstalledPlugin(session);
        if (!plugin) {
            return {}; // the plugin (and with it the provider) is gone
        }
        const entry = await tongyiEntry(session);
        const available = entry?.custom_configuration?.available_credentials ?? [];
        const credential = available.find((c) => c.credential_id === state.credentialId);
        let dashscopeApiKey = state.dashscopeApiKey;
        let useInternationalEndpoint = state.useInternationalEndpoint;
        if (credential) {
            const shown = await session.get<{ credentials?: Record<string, string> }>(CREDENTIALS_ROUTE, { credential_id: credential.credential_id });
            // Dify shows the key obfuscated (first 6 and last 2 characters); a different one means drift.
            if (shown.credentials?.dashscope_api_key !== obfuscateDashscopeKey(state.dashscopeApiKey)) {
                dashscopeApiKey = KEY_CHANGED_OUTSIDE_PULUMI;
            }
            if (shown.credentials?.use_international_endpoint !== undefined) {
                useInternationalEndpoint = shown.credentials.use_international_endpoint === "true";
            }
        }
        const defaultModel = async (type: string) =>
            (await session.get<{ data?: { model?: string; provider?: { provider?: string } } | null }>("/workspaces/current/default-model", { model_type: type })).data;
        const llm = await defaultModel("llm");
        const embedding = await defaultModel("text-embedding");
        const modelName = (data: typeof llm) => (data?.provider?.provider === TONGYI_PROVIDER ? (data.model ?? "") : `${data?.provider?.provider ?? "none"}:${data?.model ?? ""}`);
        return {
            id,
            props: {
                ...state,
                credentialId: credential ? credential.credential_id : "",
                credentialName: credential ? credential.credential_name : state.credentialName,
                dashscopeApiKey,
                useInternationalEndpoint,
                pluginUniqueIdentifier: plugin.plugin_unique_identifier,
                llmModel: llm ? modelName(llm) : "",
                embeddingModel: embedding ? modelName(embedding) : "",
                difyVersion: session.version,
            },
        };
    },

    async update(_id: string, olds: DifyModelProviderOutputs, news: DifyModelProviderInputs) {
        const outs: DifyModelProviderOutputs = { ...olds, ...news };
        const credentialChanged = CREDENTIAL_FIELDS.some((key) => differs(olds, news, key)) || !olds.credentialId;
        const modelsChanged = MODEL_FIELDS.some((key) => differs(olds, news, key));
        const pluginChanged = differs(olds, news, "pluginPackagePath");
        if (!credentialChanged && !modelsChanged && !pluginChanged) {
            return { outs }; // only the admin credentials changed
        }
        const session = await connectWith(news, [news.dashscopeApiKey, olds.dashscopeApiKey]);
        outs.difyVersion = session.version;
        if (pluginChanged) {
            // An installed plugin is kept: a different package source does not reinstall it.
            const plugin = await ensurePlugin(session, news);
            outs.pluginUniqueIdentifier = plugin.uniqueIdentifier;
            outs.pluginInstalledByPulumi = olds.pluginInstalledByPulumi || plugin.installed;
        }
        if (credentialChanged) {
            outs.credentialId = await saveCredential(session, news, olds.credentialId);
        }
        if (modelsChanged || (credentialChanged && !olds.credentialId)) {
            await checkToolCalling(session, news.llmModel ?? DEFAULTS.llmModel);
            await setDefaultModels(session, news);
        }
        return { outs };
    },

    async delete(_id: string, props: DifyModelProviderOutputs) {
        const session = await connectWith(props, [props.dashscopeApiKey]);
        if (props.credentialId) {
            try {
                await session.delete(CREDENTIALS_ROUTE, { credential_id: props.credentialId });
            } catch (err) {
                // Also "Provider ... does not exist." once the plugin is gone.
                if (!isDifyNotFound(err)) {
                    throw err;
                }
            }
        }
        if (props.pluginInstalledByPulumi) {
            const plugin = await findInstalledPlugin(session);
            if (plugin) {
                await session.post(`${PLUGIN_ROUTE}/uninstall`, { plugin_installation_id: plugin.installation_id });
            }
        }
        // Dify has no route to clear default models; they stay pointing at the (now unconfigured) provider.
    },
});

export interface DifyModelProviderArgs {
    difyUrl: pulumi.Input<string>;
    adminEmail: pulumi.Input<string>;
    /** Kept secret. */
    adminPassword: pulumi.Input<string>;
    /** Kept secret. */
    dashscopeApiKey: pulumi.Input<string>;
    useInternationalEndpoint?: pulumi.Input<boolean>;
    credentialName?: pulumi.Input<string>;
    /** Default "qwen-plus"; must support tool calling. */
    llmModel?: pulumi.Input<string>;
    /** Default "text-embedding-v4". */
    embeddingModel?: pulumi.Input<string>;
    /** A local .difypkg for hosts without marketplace access. */
    pluginPackagePath?: pulumi.Input<string>;
    installTimeoutSeconds?: pulumi.Input<number>;
    installPollSeconds?: pulumi.Input<number>;
}

/** The Tongyi (Qwen) model provider in Dify: plugin, DashScope credential and default models. */
export class DifyModelProvider extends pulumi.dynamic.Resource {
    declare public readonly providerName: pulumi.Output<string>;
    declare public readonly credentialId: pulumi.Output<string>;
    declare public readonly llmModel: pulumi.Output<string>;
    declare public readonly embeddingModel: pulumi.Output<string>;
    declare public readonly pluginUniqueIdentifier: pulumi.Output<string>;
    declare public readonly pluginInstalledByPulumi: pulumi.Output<boolean>;
    declare public readonly difyVersion: pulumi.Output<string>;

    constructor(name: string, args: DifyModelProviderArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyModelProviderProvider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                dashscopeApiKey: pulumi.secret(args.dashscopeApiKey),
                // Every declared output must be a key here, or it never becomes a property.
                llmModel: args.llmModel,
                embeddingModel: args.embeddingModel,
                providerName: undefined,
                credentialId: undefined,
                pluginUniqueIdentifier: undefined,
                pluginInstalledByPulumi: undefined,
                difyVersion: undefined,
            },
            { ...opts, additionalSecretOutputs: ["adminPassword", "dashscopeApiKey", ...(opts?.additionalSecretOutputs ?? [])] },
            "dify",
            "ModelProvider",
        );
    }
}
