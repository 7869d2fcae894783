// What DifyAgentApp does through the console: the app fields it sends (PUT /apps/<id> carries every field the
// route declares), finding the app a lost create left behind, saving the model config with an explanation when
// Dify refuses its model, and reading the config back (older versions store parts of it as JSON text).
// Facts: ../shared/reference/dify-console-api.md sections 4 and 7.
import type { AgentMode, AgentModelConfig, AppBody, AppDetail, AppUpdateBody, DifyConsoleApi } from "./console-api";
import { isDifyApiError, joinSentences, withExplanation } from "./errors";
import type { AgentStrategy, DifyAgentAppInputs, DifyAgentAppOutputs } from "./agent-app";
import { TONGYI_PROVIDER } from "./tongyi";

/** The defaults `checkDifyAgentApp` fills in. */
export const AGENT_APP_DEFAULTS = {
    description: "",
    icon: "🤖",
    iconBackground: "#FFEAD5",
    openingStatement: "",
    modelProvider: TONGYI_PROVIDER,
    model: "qwen-plus",
    completionParams: {},
    strategy: "function_call" as AgentStrategy,
    maxIterations: 5,
};

export function agentAppConsoleUrl(difyUrl: string, appId: string): string {
    return `${difyUrl.replace(/\/+$/, "")}/app/${appId}/configuration`;
}

export function appBody(inputs: DifyAgentAppInputs): AppBody {
    return {
        name: inputs.name,
        description: inputs.description ?? "",
        icon_type: "emoji",
        icon: inputs.icon ?? AGENT_APP_DEFAULTS.icon,
        icon_background: inputs.iconBackground ?? AGENT_APP_DEFAULTS.iconBackground,
    };
}

/**
 * The PUT /apps/<id> body: every field the route declares. 1.8.0–1.10.x parse it with reqparse, which fills
 * an absent field with None, and `use_icon_as_answer_icon` is NOT NULL (HTTP 500); 1.11+ default absent
 * fields to false/0 (controllers/console/app/app.py UpdateAppPayload), so the fields Pulumi does not manage
 * are sent at the app's current values.
 */
function appUpdateBody(inputs: DifyAgentAppInputs, current: AppDetail): AppUpdateBody {
    return {
        ...appBody(inputs),
        use_icon_as_answer_icon: current.use_icon_as_answer_icon === true,
        max_active_requests: typeof current.max_active_requests === "number" ? current.max_active_requests : null,
    };
}

export async function updateAppFields(api: DifyConsoleApi, appId: string, inputs: DifyAgentAppInputs): Promise<void> {
    const current = await api.getApp(appId);
    await api.updateApp(appId, appUpdateBody(inputs, current));
}

/**
 * Dify checks a config's model against the LLMs the model provider offers in the workspace, and there are none
 * while the provider has no working credential (core/app/app_config/easy_ui_based_app/model_config/manager.py
 * validate_and_set_defaults): it refuses with "model.name must be in the specified model list" or "model.provider
 * is required and must be in [...]", naming neither the model asked for nor why. Adds both, keeping the fields.
 */
function explainModelRefusal(err: unknown, inputs: DifyAgentAppInputs): unknown {
    if (!isDifyApiError(err) || err.status !== 400 || !/^model\.(name|provider)\b/.test(err.difyMessage)) {
        return err;
    }
    return withExplanation(
        err,
        `The app asks for the LLM ${inputs.model ?? AGENT_APP_DEFAULTS.model} of ${inputs.modelProvider ?? AGENT_APP_DEFAULTS.modelProvider} (inputs model and modelProvider), ` +
            "and Dify offers only the models of a provider with a working credential in this workspace: check the model name, " +
            "and that the DifyModelProvider resource (llmModel, DashScope key) is in place",
    );
}

/** POST /apps/<id>/model-config: the whole config (Dify replaces it); `config` is agentModelConfig(inputs). */
export async function saveModelConfig(api: DifyConsoleApi, appId: string, config: AgentModelConfig, inputs: DifyAgentAppInputs): Promise<void> {
    try {
        await api.saveModelConfig(appId, config);
    } catch (err) {
        throw explainModelRefusal(err, inputs);
    }
}

/** Pages of 100 (the route's limit) looked at when searching apps by name. */
const APP_SEARCH_MAX_PAGES = 50;

/**
 * The agent-chat apps named exactly `name`. GET /apps filters by a case-insensitive substring of the first
 * 30 characters (services/app_service.py get_paginate_apps), so the exact match is made here.
 */
async function findAgentAppsByName(api: DifyConsoleApi, name: string): Promise<AppDetail[]> {
    const found: AppDetail[] = [];
    for (let page = 1; page <= APP_SEARCH_MAX_PAGES; page++) {
        const answer = await api.listAgentApps({ page, limit: 100, mode: "agent-chat", name });
        found.push(...(answer.data ?? []).filter((app) => app.name === name && (app.mode === undefined || app.mode === "agent-chat")));
        if (!answer.has_more) {
            break;
        }
    }
    return found;
}

/** The one app a lost create may have left, or none; several of that name cannot be told apart. */
export async function findAppToAdopt(api: DifyConsoleApi, name: string): Promise<AppDetail | undefined> {
    const apps = await findAgentAppsByName(api, name);
    if (apps.length > 1) {
        throw new Error(
            joinSentences(
                `Dify already has ${apps.length} agent-chat apps named "${name}" (${apps.map((app) => app.id).join(", ")}), so Pulumi cannot tell which one to manage`,
                "Delete or rename the extra ones in Dify, or give this app another name",
            ),
        );
    }
    return apps[0];
}

/** Dify adds `stop: []` to saved completion params; an empty stop list is no drift. */
function withoutDefaultStop(params: Record<string, unknown>): Record<string, number | string | boolean> {
    const { stop, ...rest } = params;
    return (Array.isArray(stop) && stop.length === 0 ? rest : params) as Record<string, number | string | boolean>;
}

function parseMaybeJson<T>(value: T | string | undefined): T | undefined {
    if (typeof value !== "string") {
        return value;
    }
    try {
        return JSON.parse(value) as T;
    } catch {
        return undefined;
    }
}

/** The app's fields and config as Dify holds them, with the state's values where Dify shows none. */
export function appAsRead(app: AppDetail, state: DifyAgentAppOutputs): Partial<DifyAgentAppInputs> {
    const config = app.model_config ?? {};
    const model = parseMaybeJson(config.model);
    const agentMode = parseMaybeJson<AgentMode>(config.agent_mode) ?? {};
    const mcpTools = (agentMode.tools ?? []).filter((tool) => tool.provider_type === "mcp");
    return {
        name: app.name ?? state.name,
        description: app.description ?? state.description,
        icon: app.icon ?? state.icon,
        iconBackground: app.icon_background ?? state.iconBackground,
        systemPrompt: config.pre_prompt ?? "",
        openingStatement: config.opening_statement ?? "",
        modelProvider: model?.provider ?? "",
        model: model?.name ?? "",
        completionParams: withoutDefaultStop(model?.completion_params ?? {}),
        mcpServerIdentifier: mcpTools[0]?.provider_id ?? state.mcpServerIdentifier,
        mcpToolNames: mcpTools.map((tool) => String(tool.tool_name)),
        strategy: (agentMode.strategy as AgentStrategy | undefined) ?? state.strategy,
        maxIterations: agentMode.max_iteration ?? state.maxIterations,
    };
}
