// The one model provider the fake knows, langgenius/tongyi: its plugin, its models, and whether the workspace can
// use it (plugin installed, a credential active). Read by the plugin, model-provider and app routes.
import * as crypto from "crypto";
import { ConsoleState } from "./state";

export const TONGYI_PROVIDER = "langgenius/tongyi/tongyi";
export const TONGYI_PLUGIN = "langgenius/tongyi";
export const TONGYI_MARKETPLACE_VERSION = "0.1.13";
export const TONGYI_LABEL = { en_US: "TONGYI", zh_Hans: "通义千问" };

export interface ModelDefinition {
    model: string;
    type: "llm" | "text-embedding";
    features: string[];
}

export const TONGYI_MODELS: ModelDefinition[] = [
    { model: "qwen3-max", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-max", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-plus", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-turbo", type: "llm", features: ["multi-tool-call", "agent-thought", "stream-tool-call"] },
    { model: "qwen-vl-plus", type: "llm", features: ["vision", "agent-thought"] },
    { model: "text-embedding-v3", type: "text-embedding", features: [] },
    { model: "text-embedding-v4", type: "text-embedding", features: [] },
];

/** The marketplace's unique identifier of the tongyi plugin (a fixed digest). */
export const TONGYI_MARKETPLACE_IDENTIFIER = `${TONGYI_PLUGIN}:${TONGYI_MARKETPLACE_VERSION}@${"a".repeat(64)}`;

export function tongyiInstalled(state: ConsoleState): boolean {
    return state.plugins.has(TONGYI_PLUGIN);
}

export function tongyiActive(state: ConsoleState): boolean {
    const creds = state.modelCredentials.get(TONGYI_PROVIDER);
    return tongyiInstalled(state) && !!creds?.currentId;
}

// ModelProviderService.get_models_by_model_type lists active providers only (get_models(only_active=True)).
export function modelsOfType(state: ConsoleState, type: string) {
    if (!tongyiActive(state)) {
        return [];
    }
    const status = tongyiActive(state) ? "active" : "no-configure";
    const models = TONGYI_MODELS.filter((m) => m.type === type);
    if (models.length === 0) {
        return [];
    }
    return [
        {
            provider: TONGYI_PROVIDER,
            label: TONGYI_LABEL,
            status,
            models: models.map((m) => ({
                model: m.model,
                label: { en_US: m.model, zh_Hans: m.model },
                model_type: m.type,
                features: m.features,
                fetch_from: "predefined-model",
                model_properties: m.type === "llm" ? { mode: "chat", context_size: 131072 } : { context_size: 8192 },
                deprecated: false,
                status,
                load_balancing_enabled: false,
            })),
        },
    ];
}

/** Test hook: the tongyi plugin is installed with an active credential and default models (for app tests). */
export function seedTongyi(state: ConsoleState, apiKey = "sk-seeded-key-0000"): void {
    state.plugins.set(TONGYI_PLUGIN, {
        pluginId: TONGYI_PLUGIN,
        uniqueIdentifier: TONGYI_MARKETPLACE_IDENTIFIER,
        installationId: crypto.randomUUID(),
        version: TONGYI_MARKETPLACE_VERSION,
    });
    const id = crypto.randomUUID();
    state.modelCredentials.set(TONGYI_PROVIDER, {
        items: [{ id, name: "seeded", credentials: { dashscope_api_key: apiKey, use_international_endpoint: "false" } }],
        currentId: id,
    });
    state.defaultModels.set("llm", { provider: TONGYI_PROVIDER, model: "qwen-plus" });
    state.defaultModels.set("text-embedding", { provider: TONGYI_PROVIDER, model: "text-embedding-v4" });
}
