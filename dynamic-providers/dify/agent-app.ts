// DifyAgentApp: an `agent-chat` app that answers with a Qwen model and calls the MCP server's tools.
// Name, description and icon are updated with PUT /apps/<id> (every field the route declares, the others at
// their current values); model, prompt and tools with POST /apps/<id>/model-config (the whole config each
// time). For MCP tools Dify references the provider by its server identifier, one entry per tool (there is
// no "all tools" wildcard). A create whose answer was lost is found again by name and adopted.
// Facts: ../shared/reference/dify-console-api.md sections 4 and 7.
import * as pulumi from "@pulumi/pulumi";
import { DIFY_MCP_SERVER_IDENTIFIER_PATTERN } from "../../rules/mcp-names";
import type { CheckFailure } from "../engine/check";
import { differs, differsUnlessPinned } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { containsUnknown, isKnown } from "../engine/unknown";
import {
    AGENT_APP_DEFAULTS,
    agentAppConsoleUrl,
    appAsRead,
    appBody,
    findAppToAdopt,
    saveModelConfig,
    updateAppFields,
} from "./agent-app-console";
import { checkDifyConnection, connectWith, DifyConnectionInputs, normalizeDifyUrl, resourceInitFailure } from "./connection";
import { AgentModelConfig, AppDetail, difyConsoleApi } from "./console-api";
import { isDifyNotFound, isLostAnswer } from "./errors";

const AGENT_STRATEGIES = ["function_call", "react"] as const;
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
    /** What the tool list is fixed for (the registration, its server and client): pins mcpToolNames in previews. */
    mcpToolsSource?: string;
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
    if (news.mcpServerIdentifier === undefined || (known(news.mcpServerIdentifier) && !DIFY_MCP_SERVER_IDENTIFIER_PATTERN.test(String(news.mcpServerIdentifier)))) {
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
    return { inputs: { ...AGENT_APP_DEFAULTS, ...given, difyUrl: normalizeDifyUrl(news.difyUrl as string) } };
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
        key === "mcpToolNames"
            ? differsUnlessPinned(olds, news, "mcpToolNames", "mcpToolsSource")
            : differs(olds, news, key as keyof DifyAgentAppInputs),
    );
    // App names need not be unique in Dify, so a replacement can create the new app first.
    return { changes: replaces.length > 0 || changed.length > 0, replaces, deleteBeforeReplace: false };
}

/** The app's full model config (Dify replaces it as a whole). */
export function agentModelConfig(inputs: DifyAgentAppInputs): AgentModelConfig {
    const identifier = inputs.mcpServerIdentifier;
    return {
        model: {
            provider: inputs.modelProvider ?? AGENT_APP_DEFAULTS.modelProvider,
            name: inputs.model ?? AGENT_APP_DEFAULTS.model,
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
            strategy: inputs.strategy ?? AGENT_APP_DEFAULTS.strategy,
            max_iteration: inputs.maxIterations ?? AGENT_APP_DEFAULTS.maxIterations,
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

export const difyAgentAppProvider: pulumi.dynamic.ResourceProvider<DifyAgentAppInputs, DifyAgentAppOutputs> = engineSafeProvider({
    async check(_olds: DifyAgentAppInputs, news: DifyAgentAppInputs) {
        return checkDifyAgentApp(news);
    },

    async diff(_id: string, olds: DifyAgentAppOutputs, news: DifyAgentAppInputs) {
        return diffDifyAgentApp(olds, news);
    },

    async create(inputs: DifyAgentAppInputs) {
        const api = difyConsoleApi(await connectWith(inputs));
        // A create whose answer was lost (connection reset after Dify applied it) left an app behind: adopt
        // it instead of making a second one. Names need not be unique in Dify, so only an exact, single match.
        let app: { id: string } | undefined = await findAppToAdopt(api, inputs.name);
        let adopted = app !== undefined;
        if (!app) {
            try {
                // Dify starts the app from a template using the workspace's default LLM: set that first.
                app = await api.createAgentApp(appBody(inputs));
            } catch (err) {
                if (!isLostAnswer(err)) {
                    throw err;
                }
                app = await findAppToAdopt(api, inputs.name);
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
            difyVersion: api.version,
        };
        try {
            if (adopted) {
                console.warn(`warning: adopting the existing Dify agent app "${inputs.name}" (${appId}).`);
                await updateAppFields(api, appId, inputs);
            }
            await saveModelConfig(api, appId, agentModelConfig(inputs), inputs);
        } catch (err) {
            // The app exists: record it, with the config marked unapplied, so the next `up` updates it.
            throw resourceInitFailure(appId, { ...outs, systemPrompt: "", mcpToolNames: [] }, err);
        }
        return { id: appId, outs };
    },

    async read(id: string, props?: DifyAgentAppOutputs) {
        const state = props as DifyAgentAppOutputs;
        const api = difyConsoleApi(await connectWith(state));
        let app: AppDetail;
        try {
            app = await api.getApp(id);
        } catch (err) {
            if (isDifyNotFound(err)) {
                return {};
            }
            throw err;
        }
        return { id, props: { ...state, ...appAsRead(app, state), difyVersion: api.version } };
    },

    async update(id: string, olds: DifyAgentAppOutputs, news: DifyAgentAppInputs) {
        const outs: DifyAgentAppOutputs = { ...olds, ...news, consoleUrl: agentAppConsoleUrl(news.difyUrl, id) };
        const appChanged = APP_FIELDS.some((key) => differs(olds, news, key));
        const configChanged = CONFIG_FIELDS.some((key) => differs(olds, news, key));
        if (!appChanged && !configChanged) {
            return { outs }; // only the admin credentials changed
        }
        const api = difyConsoleApi(await connectWith(news));
        outs.difyVersion = api.version;
        if (appChanged) {
            await updateAppFields(api, id, news);
        }
        if (configChanged) {
            await saveModelConfig(api, id, agentModelConfig(news), news);
        }
        return { outs };
    },

    async delete(id: string, props: DifyAgentAppOutputs) {
        const api = difyConsoleApi(await connectWith(props));
        try {
            await api.deleteApp(id);
        } catch (err) {
            if (!isDifyNotFound(err)) {
                throw err;
            }
        }
    },
});

/**
 * What `new DifyAgentApp(...)` takes. Changing `difyUrl` replaces the app (the new one is created first: app
 * names need not be unique); every other change updates it in place: the app's name, description and icon with
 * PUT /apps/<id>, the model, prompt and tools by saving the whole model config again.
 */
export interface DifyAgentAppArgs {
    /** Dify's web address, e.g. http://47.1.2.3 (no path). Changing it replaces the app. */
    difyUrl: pulumi.Input<string>;
    /** The Dify admin's e-mail address, to log in with. Changing it updates the state only. */
    adminEmail: pulumi.Input<string>;
    /** The Dify admin's password. Kept secret. Changing it updates the state only (the next login uses it). */
    adminPassword: pulumi.Input<string>;
    /** The app's name (Dify does not require it to be unique). Changing it renames the app in place. */
    name: pulumi.Input<string>;
    /** At most 400 characters. Default "". Changing it updates in place. */
    description?: pulumi.Input<string>;
    /** Emoji icon. Default "🤖". Changing it updates in place. */
    icon?: pulumi.Input<string>;
    /** Default "#FFEAD5". Changing it updates in place. */
    iconBackground?: pulumi.Input<string>;
    /** The agent's instructions (Dify's pre_prompt). Changing it saves the model config again. */
    systemPrompt: pulumi.Input<string>;
    /** Default "". Changing it saves the model config again. */
    openingStatement?: pulumi.Input<string>;
    /** Full model provider name. Default "langgenius/tongyi/tongyi". Changing it saves the model config again. */
    modelProvider?: pulumi.Input<string>;
    /** The LLM; the provider must offer it with a working credential. Default "qwen-plus". Changing it saves the model config again. */
    model?: pulumi.Input<string>;
    /** The model's completion parameters (temperature, ...). Default {}. Changing them saves the model config again. */
    completionParams?: pulumi.Input<Record<string, pulumi.Input<number | string | boolean>>>;
    /** The MCP provider's server identifier (its `serverIdentifier`). Changing it saves the model config again. */
    mcpServerIdentifier: pulumi.Input<string>;
    /** MCP tools to attach, by name (the MCP provider's `toolNames` once authorized). Changing them saves the model config again. */
    mcpToolNames: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * What the tool list is fixed for, e.g. the MCP registration's id, server URL and client id in one string.
     * Default: none. Not sent to Dify and not compared: while it stays the same, a preview of the registration's
     * own update (which cannot know its tool list yet) does not plan an update of this app.
     */
    mcpToolsSource?: pulumi.Input<string>;
    /** `function_call` or `react`. Default "function_call". Changing it saves the model config again. */
    strategy?: pulumi.Input<AgentStrategy>;
    /** Agent iterations per answer, 1–99. Default 5. Changing it saves the model config again. */
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
