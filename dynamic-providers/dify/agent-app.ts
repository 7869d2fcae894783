// DifyAgentApp: an `agent-chat` app that answers with a Qwen model and calls the MCP server's tools.
// Name, description and icon are updated with PUT /apps/<id> (every field the route declares, the others at
// their current values); model, prompt and tools with POST /apps/<id>/model-config (the whole config each
// time). For MCP tools Dify references the provider by its server identifier, one entry per tool (there is
// no "all tools" wildcard). A create whose answer was lost is found again by name and adopted.
// Facts: ../shared/reference/dify-console-api.md sections 4 and 7.
import * as pulumi from "@pulumi/pulumi";
import type { CheckFailure } from "../engine/check";
import { differs } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { containsUnknown, isKnown } from "../engine/unknown";
import {
    checkDifyConnection,
    connectWith,
    DifyConnectionInputs,
    DifyApiError,
    DifyConsole,
    isDifyApiError,
    isDifyNotFound,
    isLostAnswer,
    joinSentences,
    normalizeDifyUrl,
    resourceInitFailure,
} from "./client";
import { MCP_SERVER_IDENTIFIER_PATTERN } from "./mcp-tool-provider";
import { TONGYI_PROVIDER } from "./model-provider";

export const AGENT_STRATEGIES = ["function_call", "react"] as const;
export type AgentStrategy = (typeof AGENT_STRATEGIES)[number];

export interface DifyAgentAppInputs extends DifyConnectionInputs {
    name: string;
    /** At most 400 characters. */
    description?: string;
    /** Emoji icon. */
    icon?: string;
    iconBackground?: string;
    /** The agent's instructions (Dify's pre_prompt). */
    systemPrompt: string;
    openingStatement?: string;
    /** Full provider name; default langgenius/tongyi/tongyi. */
    modelProvider?: string;
    model?: string;
    completionParams?: Record<string, number | string | boolean>;
    /** The MCP provider's server identifier. */
    mcpServerIdentifier: string;
    /** MCP tools to attach, by name (the MCP provider's `toolNames` once authorized). */
    mcpToolNames: string[];
    strategy?: AgentStrategy;
    maxIterations?: number;
    requestTimeoutSeconds?: number;
}

export interface DifyAgentAppOutputs extends DifyAgentAppInputs {
    appId: string;
    /** Where to open the app in Dify's console. */
    consoleUrl: string;
    difyVersion: string;
}


const DEFAULTS = {
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

export function checkDifyAgentApp(news: Partial<DifyAgentAppInputs>): pulumi.dynamic.CheckResult<DifyAgentAppInputs> {
    const failures: CheckFailure[] = checkDifyConnection(news);
    const known = isKnown;
    if (news.name === undefined || (known(news.name) && String(news.name).trim() === "")) {
        failures.push({ property: "name", reason: "name is required" });
    }
    if (known(news.description) && String(news.description).length > 400) {
        failures.push({ property: "description", reason: "description must be at most 400 characters" });
    }
    if (news.systemPrompt === undefined || (known(news.systemPrompt) && typeof news.systemPrompt !== "string")) {
        failures.push({ property: "systemPrompt", reason: "systemPrompt is required (the agent's instructions)" });
    }
    if (news.mcpServerIdentifier === undefined || (known(news.mcpServerIdentifier) && !MCP_SERVER_IDENTIFIER_PATTERN.test(String(news.mcpServerIdentifier)))) {
        failures.push({ property: "mcpServerIdentifier", reason: "mcpServerIdentifier must match ^[a-z0-9_-]{1,24}$ (the MCP provider's server identifier)" });
    }
    if (news.mcpToolNames === undefined) {
        failures.push({ property: "mcpToolNames", reason: "mcpToolNames is required: a list of MCP tool names (may be empty before authorization)" });
    } else if (known(news.mcpToolNames) && (!Array.isArray(news.mcpToolNames) || news.mcpToolNames.some((t) => typeof t !== "string" && !containsUnknown(t)))) {
        failures.push({ property: "mcpToolNames", reason: "mcpToolNames must be a list of tool names" });
    }
    if (known(news.strategy) && !AGENT_STRATEGIES.includes(news.strategy as AgentStrategy)) {
        failures.push({ property: "strategy", reason: `strategy must be one of ${AGENT_STRATEGIES.join(", ")}` });
    }
    if (known(news.maxIterations) && !(Number.isInteger(news.maxIterations) && (news.maxIterations as number) >= 1 && (news.maxIterations as number) <= 99)) {
        failures.push({ property: "maxIterations", reason: "maxIterations must be an integer from 1 to 99" });
    }
    if (failures.length > 0) {
        return { failures };
    }
    const given = Object.fromEntries(Object.entries(news).filter(([, v]) => v !== undefined)) as unknown as DifyAgentAppInputs;
    return { inputs: { ...DEFAULTS, ...given, difyUrl: normalizeDifyUrl(news.difyUrl as string) } };
}

const APP_FIELDS = ["name", "description", "icon", "iconBackground"] as const;
const CONFIG_FIELDS = [
    "systemPrompt",
    "openingStatement",
    "modelProvider",
    "model",
    "completionParams",
    "mcpServerIdentifier",
    "mcpToolNames",
    "strategy",
    "maxIterations",
] as const;


export function diffDifyAgentApp(olds: DifyAgentAppOutputs, news: DifyAgentAppInputs): pulumi.dynamic.DiffResult {
    const replaces = differs(olds, news, "difyUrl") ? ["difyUrl"] : [];
    const changed = [...APP_FIELDS, ...CONFIG_FIELDS, "adminEmail", "adminPassword"].filter((key) =>
        differs(olds, news, key as keyof DifyAgentAppInputs),
    );
    // App names need not be unique in Dify, so a replacement can create the new app first.
    return { changes: replaces.length > 0 || changed.length > 0, replaces, deleteBeforeReplace: false };
}

/** The app's full model config (Dify replaces it as a whole). */
export function agentModelConfig(inputs: DifyAgentAppInputs): Record<string, unknown> {
    const identifier = inputs.mcpServerIdentifier;
    return {
        model: {
            provider: inputs.modelProvider ?? DEFAULTS.modelProvider,
            name: inputs.model ?? DEFAULTS.model,
            mode: "chat",
            completion_params: inputs.completionParams ?? {},
        },
        pre_prompt: inputs.systemPrompt,
        prompt_type: "simple",
        user_input_form: [],
        opening_statement: inputs.openingStatement ?? "",
        suggested_questions: [],
        agent_mode: {
            enabled: true,
            strategy: inputs.strategy ?? DEFAULTS.strategy,
            max_iteration: inputs.maxIterations ?? DEFAULTS.maxIterations,
            tools: inputs.mcpToolNames.map((tool) => ({
                provider_type: "mcp",
                provider_id: identifier,
                provider_name: identifier,
                tool_name: tool,
                tool_label: tool,
                tool_parameters: {},
                enabled: true,
            })),
        },
    };
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
    const explained = new Error(
        joinSentences(
            err.message,
            `The app asks for the LLM ${inputs.model ?? DEFAULTS.model} of ${inputs.modelProvider ?? DEFAULTS.modelProvider} (inputs model and modelProvider), ` +
                "and Dify offers only the models of a provider with a working credential in this workspace: check the model name, " +
                "and that the DifyModelProvider resource (llmModel, DashScope key) is in place",
        ),
    ) as DifyApiError;
    const { message: _message, stack: _stack, ...fields } = err;
    return Object.assign(explained, fields, { name: "DifyApiError" });
}

/** POST /apps/<id>/model-config: the whole config (Dify replaces it). */
async function saveModelConfig(session: DifyConsole, appId: string, inputs: DifyAgentAppInputs): Promise<void> {
    try {
        await session.post(`/apps/${appId}/model-config`, agentModelConfig(inputs));
    } catch (err) {
        throw explainModelRefusal(err, inputs);
    }
}

function appBody(inputs: DifyAgentAppInputs): Record<string, unknown> {
    return {
        name: inputs.name,
        description: inputs.description ?? "",
        icon_type: "emoji",
        icon: inputs.icon ?? DEFAULTS.icon,
        icon_background: inputs.iconBackground ?? DEFAULTS.iconBackground,
    };
}

/**
 * The PUT /apps/<id> body: every field the route declares. 1.8.0–1.10.x parse it with reqparse, which fills
 * an absent field with None, and `use_icon_as_answer_icon` is NOT NULL (HTTP 500); 1.11+ default absent
 * fields to false/0 (controllers/console/app/app.py UpdateAppPayload), so the fields Pulumi does not manage
 * are sent at the app's current values.
 */
function appUpdateBody(inputs: DifyAgentAppInputs, current: AppDetail): Record<string, unknown> {
    return {
        ...appBody(inputs),
        use_icon_as_answer_icon: current.use_icon_as_answer_icon === true,
        max_active_requests: typeof current.max_active_requests === "number" ? current.max_active_requests : null,
    };
}

async function updateAppFields(session: DifyConsole, appId: string, inputs: DifyAgentAppInputs): Promise<void> {
    const current = await session.get<AppDetail>(`/apps/${appId}`);
    await session.put(`/apps/${appId}`, appUpdateBody(inputs, current));
}

/** Pages of 100 (the route's limit) looked at when searching apps by name. */
const APP_SEARCH_MAX_PAGES = 50;

/**
 * The agent-chat apps named exactly `name`. GET /apps filters by a case-insensitive substring of the first
 * 30 characters (services/app_service.py get_paginate_apps), so the exact match is made here.
 */
async function findAgentAppsByName(session: DifyConsole, name: string): Promise<AppDetail[]> {
    const found: AppDetail[] = [];
    for (let page = 1; page <= APP_SEARCH_MAX_PAGES; page++) {
        const answer = await session.get<{ data?: AppDetail[]; has_more?: boolean }>("/apps", { page, limit: 100, mode: "agent-chat", name });
        found.push(...(answer.data ?? []).filter((app) => app.name === name && (app.mode === undefined || app.mode === "agent-chat")));
        if (!answer.has_more) {
            break;
        }
    }
    return found;
}

/** The one app a lost create may have left, or none; several of that name cannot be told apart. */
async function findAppToAdopt(session: DifyConsole, name: string): Promise<AppDetail | undefined> {
    const apps = await findAgentAppsByName(session, name);
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

export function agentAppConsoleUrl(difyUrl: string, appId: string): string {
    return `${difyUrl.replace(/\/+$/, "")}/app/${appId}/configuration`;
}

interface AppDetail {
    id: string;
    name?: string;
    mode?: string;
    description?: string;
    icon?: string;
    icon_background?: string;
    use_icon_as_answer_icon?: boolean | null;
    max_active_requests?: number | null;
    model_config?: {
        model?: { provider?: string; name?: string; completion_params?: Record<string, number | string | boolean> } | string;
        pre_prompt?: string;
        opening_statement?: string;
        agent_mode?: AgentMode | string;
    } | null;
}

interface AgentMode {
    strategy?: string;
    max_iteration?: number;
    tools?: { provider_type?: string; provider_id?: string; tool_name?: string; enabled?: boolean }[];
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

export const difyAgentAppProvider: pulumi.dynamic.ResourceProvider<DifyAgentAppInputs, DifyAgentAppOutputs> = engineSafeProvider({
    async check(_olds: DifyAgentAppInputs, news: DifyAgentAppInputs) {
        return checkDifyAgentApp(news);
    },

    async diff(_id: string, olds: DifyAgentAppOutputs, news: DifyAgentAppInputs) {
        return diffDifyAgentApp(olds, news);
    },

    async create(inputs: DifyAgentAppInputs) {
        const session = await connectWith(inputs);
        // A create whose answer was lost (connection reset after Dify applied it) left an app behind: adopt
        // it instead of making a second one. Names need not be unique in Dify, so only an exact, single match.
        let app: { id: string } | undefined = await findAppToAdopt(session, inputs.name);
        let adopted = app !== undefined;
        if (!app) {
            try {
                // Dify starts the app from a template using the workspace's default LLM: set that first.
                app = await session.post<{ id: string }>("/apps", { ...appBody(inputs), mode: "agent-chat" });
            } catch (err) {
                if (!isLostAnswer(err)) {
                    throw err;
                }
                app = await findAppToAdopt(session, inputs.name);
                if (!app) {
                    throw err;
                }
                adopted = true;
            }
        }
        const appId = app.id;
        const outs: DifyAgentAppOutputs = {
            ...inputs,
            appId,
            consoleUrl: agentAppConsoleUrl(inputs.difyUrl, appId),
            difyVersion: session.version,
        };
        try {
            if (adopted) {
                console.warn(`warning: adopting the existing Dify agent app "${inputs.name}" (${appId}).`);
                await updateAppFields(session, appId, inputs);
            }
            await saveModelConfig(session, appId, inputs);
        } catch (err) {
            // The app exists: record it, with the config marked unapplied, so the next `up` updates it.
            throw resourceInitFailure(appId, { ...outs, systemPrompt: "", mcpToolNames: [] }, err);
        }
        return { id: appId, outs };
    },

    async read(id: string, props?: DifyAgentAppOutputs) {
        const state = props as DifyAgentAppOutputs;
        const session = await connectWith(state);
        let app: AppDetail;
        try {
            app = await session.get<AppDetail>(`/apps/${id}`);
        } catch (err) {
            if (isDifyNotFound(err)) {
                return {};
            }
            throw err;
        }
        const config = app.model_config ?? {};
        const model = parseMaybeJson(config.model);
        const agentMode = parseMaybeJson<AgentMode>(config.agent_mode) ?? {};
        const mcpTools = (agentMode.tools ?? []).filter((tool) => tool.provider_type === "mcp");
        return {
            id,
            props: {
                ...state,
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
                difyVersion: session.version,
            },
        };
    },

    async update(id: string, olds: DifyAgentAppOutputs, news: DifyAgentAppInputs) {
        const outs: DifyAgentAppOutputs = { ...olds, ...news, consoleUrl: agentAppConsoleUrl(news.difyUrl, id) };
        const appChanged = APP_FIELDS.some((key) => differs(olds, news, key));
        const configChanged = CONFIG_FIELDS.some((key) => differs(olds, news, key));
        if (!appChanged && !configChanged) {
            return { outs }; // only the admin credentials changed
        }
        const session = await connectWith(news);
        outs.difyVersion = session.version;
        if (appChanged) {
            await updateAppFields(session, id, news);
        }
        if (configChanged) {
            await saveModelConfig(session, id, news);
        }
        return { outs };
    },

    async delete(id: string, props: DifyAgentAppOutputs) {
        const session = await connectWith(props);
        try {
            await session.delete(`/apps/${id}`);
        } catch (err) {
            if (!isDifyNotFound(err)) {
                throw err;
            }
        }
    },
});

export interface DifyAgentAppArgs {
    difyUrl: pulumi.Input<string>;
    adminEmail: pulumi.Input<string>;
    /** Kept secret. */
    adminPassword: pulumi.Input<string>;
    name: pulumi.Input<string>;
    description?: pulumi.Input<string>;
    icon?: pulumi.Input<string>;
    iconBackground?: pulumi.Input<string>;
    systemPrompt: pulumi.Input<string>;
    openingStatement?: pulumi.Input<string>;
    modelProvider?: pulumi.Input<string>;
    model?: pulumi.Input<string>;
    completionParams?: pulumi.Input<Record<string, pulumi.Input<number | string | boolean>>>;
    mcpServerIdentifier: pulumi.Input<string>;
    mcpToolNames: pulumi.Input<pulumi.Input<string>[]>;
    strategy?: pulumi.Input<AgentStrategy>;
    maxIterations?: pulumi.Input<number>;
}

/** An agent-chat app wired to the MCP server's tools. */
export class DifyAgentApp extends pulumi.dynamic.Resource {
    declare public readonly appId: pulumi.Output<string>;
    declare public readonly consoleUrl: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly model: pulumi.Output<string>;
    declare public readonly mcpToolNames: pulumi.Output<string[]>;
    declare public readonly difyVersion: pulumi.Output<string>;

    constructor(name: string, args: DifyAgentAppArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyAgentAppProvider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                // Every declared output must be a key here, or it never becomes a property.
                model: args.model,
                appId: undefined,
                consoleUrl: undefined,
                difyVersion: undefined,
            },
            { ...opts, additionalSecretOutputs: ["adminPassword", ...(opts?.additionalSecretOutputs ?? [])] },
            "dify",
            "AgentApp",
        );
    }
}
