// DifyModelProvider: Qwen models in Dify through the `langgenius/tongyi` plugin. Installs the plugin (from
// the marketplace, or from a .difypkg file for hosts without marketplace access) and waits for the install
// task, saves the DashScope API key as the provider credential (updating the active credential in place
// rather than adding a second one), and sets the default reasoning model (which must support tool calling)
// and embedding model. Facts: ../shared/reference/dify-console-api.md section 3.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { differs } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { isKnown } from "../engine/unknown";
import { checkDifyConnection, connectWith, DifyConnectionInputs, normalizeDifyUrl, resourceInitFailure } from "./connection";
import { difyConsoleApi } from "./console-api";
import { isDifyNotFound } from "./errors";
import { obfuscateDashscopeKey } from "./masks";
import {
    checkToolCalling,
    defaultModelAsRead,
    ensurePlugin,
    findInstalledPlugin,
    MODEL_PROVIDER_DEFAULTS,
    saveCredential,
    setDefaultModels,
    TONGYI_PLUGIN_ID,
    TONGYI_PROVIDER,
    tongyiEntry,
} from "./tongyi";

export { TONGYI_PROVIDER };
/** What `read` reports as the key when Dify's (obfuscated) key no longer matches the configured one. */
export const KEY_CHANGED_OUTSIDE_PULUMI = "[changed outside Pulumi]";

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
            failures.push({ property: key, reason: `${key} must be a model name such as ${MODEL_PROVIDER_DEFAULTS[key]}` });
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
    return { inputs: { ...MODEL_PROVIDER_DEFAULTS, ...given, difyUrl: normalizeDifyUrl(news.difyUrl as string) } };
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

export const difyModelProviderProvider: pulumi.dynamic.ResourceProvider<DifyModelProviderInputs, DifyModelProviderOutputs> = engineSafeProvider({
    async check(_olds: DifyModelProviderInputs, news: DifyModelProviderInputs) {
        return checkDifyModelProvider(news);
    },

    async diff(_id: string, olds: DifyModelProviderOutputs, news: DifyModelProviderInputs) {
        return diffDifyModelProvider(olds, news);
    },

    async create(inputs: DifyModelProviderInputs) {
        const api = difyConsoleApi(await connectWith(inputs, [inputs.dashscopeApiKey]));
        const plugin = await ensurePlugin(api, inputs);
        const outs: DifyModelProviderOutputs = {
            ...inputs,
            providerName: TONGYI_PROVIDER,
            credentialId: "",
            pluginUniqueIdentifier: plugin.uniqueIdentifier,
            pluginInstalledByPulumi: plugin.installed,
            difyVersion: api.version,
            // Not applied yet: if a step below fails, state says so and the next `up` applies them.
            llmModel: "",
            embeddingModel: "",
        };
        try {
            outs.credentialId = await saveCredential(api, inputs, "");
            await checkToolCalling(api, inputs.llmModel ?? MODEL_PROVIDER_DEFAULTS.llmModel);
            await setDefaultModels(api, inputs);
        } catch (err) {
            // Keep what exists (plugin, credential) in state; the next `up` finishes the job through update.
            throw resourceInitFailure(TONGYI_PROVIDER, outs, err);
        }
        return { id: TONGYI_PROVIDER, outs: { ...outs, llmModel: inputs.llmModel, embeddingModel: inputs.embeddingModel } };
    },

    async read(id: string, props?: DifyModelProviderOutputs) {
        const state = props as DifyModelProviderOutputs;
        const api = difyConsoleApi(await connectWith(state, [state.dashscopeApiKey]));
        const plugin = await findInstalledPlugin(api);
        if (!plugin) {
            return {}; // the plugin (and with it the provider) is gone
        }
        const entry = await tongyiEntry(api);
        const available = entry?.custom_configuration?.available_credentials ?? [];
        const credential = available.find((c) => c.credential_id === state.credentialId);
        let dashscopeApiKey = state.dashscopeApiKey;
        let useInternationalEndpoint = state.useInternationalEndpoint;
        if (credential) {
            const shown = await api.getModelCredential(TONGYI_PROVIDER, credential.credential_id);
            // Dify shows the key obfuscated (first 6 and last 2 characters); a different one means drift.
            if (shown?.dashscope_api_key !== obfuscateDashscopeKey(state.dashscopeApiKey)) {
                dashscopeApiKey = KEY_CHANGED_OUTSIDE_PULUMI;
            }
            if (shown?.use_international_endpoint !== undefined) {
                useInternationalEndpoint = shown.use_international_endpoint === "true";
            }
        }
        const llmModel = await defaultModelAsRead(api, "llm");
        const embeddingModel = await defaultModelAsRead(api, "text-embedding");
        return {
            id,
            props: {
                ...state,
                credentialId: credential ? credential.credential_id : "",
                credentialName: credential ? credential.credential_name : state.credentialName,
                dashscopeApiKey,
                useInternationalEndpoint,
                pluginUniqueIdentifier: plugin.plugin_unique_identifier,
                llmModel,
                embeddingModel,
                difyVersion: api.version,
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
        const api = difyConsoleApi(await connectWith(news, [news.dashscopeApiKey, olds.dashscopeApiKey]));
        outs.difyVersion = api.version;
        if (pluginChanged) {
            // An installed plugin is kept: a different package source does not reinstall it.
            const plugin = await ensurePlugin(api, news);
            outs.pluginUniqueIdentifier = plugin.uniqueIdentifier;
            outs.pluginInstalledByPulumi = olds.pluginInstalledByPulumi || plugin.installed;
        }
        if (credentialChanged) {
            outs.credentialId = await saveCredential(api, news, olds.credentialId);
        }
        if (modelsChanged || (credentialChanged && !olds.credentialId)) {
            await checkToolCalling(api, news.llmModel ?? MODEL_PROVIDER_DEFAULTS.llmModel);
            await setDefaultModels(api, news);
        }
        return { outs };
    },

    async delete(_id: string, props: DifyModelProviderOutputs) {
        const api = difyConsoleApi(await connectWith(props, [props.dashscopeApiKey]));
        if (props.credentialId) {
            try {
                await api.deleteModelCredential(TONGYI_PROVIDER, props.credentialId);
            } catch (err) {
                // Also "Provider ... does not exist." once the plugin is gone.
                if (!isDifyNotFound(err)) {
                    throw err;
                }
            }
        }
        if (props.pluginInstalledByPulumi) {
            const plugin = await findInstalledPlugin(api);
            if (plugin) {
                await api.uninstallPlugin(plugin.installation_id);
            }
        }
        // Dify has no route to clear default models; they stay pointing at the (now unconfigured) provider.
    },
});

/**
 * What `new DifyModelProvider(...)` takes. Changing `difyUrl` replaces the resource (the new Dify gets its own
 * plugin and credential); every other compared change updates it in place. The fields marked "not compared"
 * plan no change on their own; their new value is used by the next create or update.
 */
export interface DifyModelProviderArgs {
    /** Dify's web address, e.g. http://47.1.2.3 (no path). Changing it replaces the resource. */
    difyUrl: pulumi.Input<string>;
    /** The Dify admin's e-mail address, to log in with. Changing it updates the state only. */
    adminEmail: pulumi.Input<string>;
    /** The Dify admin's password. Kept secret. Changing it updates the state only (the next login uses it). */
    adminPassword: pulumi.Input<string>;
    /** DashScope (Model Studio) API key. Kept secret. Changing it updates the credential in place. */
    dashscopeApiKey: pulumi.Input<string>;
    /** DashScope's international (Singapore) endpoint instead of China (Beijing). Default false. Changing it updates the credential in place. */
    useInternationalEndpoint?: pulumi.Input<boolean>;
    /** The credential's name in Dify, 1–30 characters. Default "pulumi". Changing it updates the credential in place. */
    credentialName?: pulumi.Input<string>;
    /** Default reasoning model; must support tool calling. Default "qwen-plus". Changing it sets the default model anew. */
    llmModel?: pulumi.Input<string>;
    /** Default embedding model. Default "text-embedding-v4". Changing it sets the default model anew. */
    embeddingModel?: pulumi.Input<string>;
    /**
     * A local .difypkg of the tongyi plugin, uploaded instead of installing from the marketplace (for hosts
     * without marketplace access). Default: the marketplace. Changing it updates in place: the plugin is installed
     * from the new source only when it is missing (an installed plugin is kept).
     */
    pluginPackagePath?: pulumi.Input<string>;
    /** How long one install attempt may take, in seconds (a dependency failure gets one more attempt). Default 600. Not compared. */
    installTimeoutSeconds?: pulumi.Input<number>;
    /** Pause between checks of the install task, in seconds. Default 3. Not compared. */
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
