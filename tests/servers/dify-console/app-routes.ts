// Apps (/apps, /apps/<uuid:app_id>): list, create from the agent-chat template, rename, delete, save the model
// config, and chat (a streamed agent run, see chat-stream.ts). Only a UUID matches <uuid:app_id>: any other id
// matches no route (werkzeug's HTML 404).
import * as crypto from "crypto";
import { chatEvents } from "./chat-stream";
import { HttpError, invalidParam, Reply, Request, requireString, Route, Router } from "./router";
import { ConsoleState } from "./state";
import { AppRecord, CallKind, ChatScript } from "./types";
import { ModelDefinition, modelsOfType, tongyiActive, tongyiInstalled, TONGYI_MODELS, TONGYI_PROVIDER } from "./tongyi";

/** AppDetailWithSite (GET and PUT /apps/<id>); POST /apps answers AppDetail, without icon_type, max_active_requests and site. */
function appDetail(app: AppRecord, withSite = true) {
    return {
        id: app.id,
        name: app.name,
        description: app.description,
        mode: app.mode,
        ...(withSite ? { icon_type: app.iconType } : {}),
        icon: app.icon,
        icon_background: app.iconBackground,
        use_icon_as_answer_icon: app.useIconAsAnswerIcon,
        ...(withSite ? { max_active_requests: app.maxActiveRequests } : {}),
        enable_site: true,
        enable_api: true,
        model_config: app.modelConfig,
        created_at: app.createdAt,
        ...(withSite ? { site: { access_token: "site", code: "site" } } : {}),
    };
}

export class AppRoutes {
    private sequence = 0;
    private chatScript: ChatScript;

    constructor(private readonly state: ConsoleState) {
        this.chatScript = state.options.chatScript ?? "tool-call";
    }

    setChatScript(script: ChatScript): void {
        this.chatScript = script;
    }

    register(router: Router): void {
        const apps = this.state.apps;
        const appRoute = (method: string, path: string, kind: CallKind, handle: Route["handle"]) => router.route(method, path, kind, true, handle, { uuid: true });
        router.route("GET", "/apps", "read", true, (req) => this.list(req));
        router.route("POST", "/apps", "write", true, (req) => this.create(req));
        appRoute("GET", "/apps/<id>", "read", (req) => ({ body: appDetail(this.find(req.params[0])) }));
        appRoute("PUT", "/apps/<id>", "write", (req) => this.update(req));
        appRoute("DELETE", "/apps/<id>", "write", (req) => {
            apps.delete(this.find(req.params[0]).id);
            return { status: 204, body: { result: "success" } };
        });
        appRoute("POST", "/apps/<id>/model-config", "write", (req) => this.saveModelConfig(req));
        appRoute("POST", "/apps/<id>/chat-messages", "write", (req) => {
            const app = this.find(req.params[0]);
            if (req.json.model_config === undefined) {
                throw new HttpError(400, "invalid_param", "Missing required parameter in the JSON body: model_config", { params: "model_config" });
            }
            const query = requireString(req, "query");
            const mode = req.json.response_mode ?? (this.state.atLeast("1.14.0") ? "blocking" : "streaming");
            if (mode !== "streaming") {
                throw invalidParam("Agent Chat App does not support blocking mode");
            }
            return { events: chatEvents(this.chatScript, app.modelConfig, query) };
        });
    }

    /**
     * get_app_model's AppNotFoundError. flask-restx appends "did you mean" to a 404's message when a URL rule is close
     * to the path (difflib, Api._help_on_404): `request.rule` names it for the routes where Dify 1.14.1 does that.
     */
    private find(id: string, request?: { path: string; rule: string }): AppRecord {
        const app = this.state.apps.get(id);
        if (!app) {
            const help = request ? ` You have requested this URI [${request.path}] but did you mean ${request.rule} ?` : "";
            throw new HttpError(404, "app_not_found", `App not found.${help}`);
        }
        return app;
    }

    private list(req: Request): Reply {
        const page = Number(req.query.get("page") ?? 1);
        const limit = Number(req.query.get("limit") ?? 20);
        const mode = req.query.get("mode");
        // get_paginate_apps: ilike '%<first 30 characters>%', newest first.
        const name = req.query.get("name")?.slice(0, 30).toLowerCase();
        const all = [...this.state.apps.values()]
            .filter((a) => (!mode || mode === "all" || a.mode === mode) && (!name || a.name.toLowerCase().includes(name)))
            // created_at is stored to the second (CURRENT_TIMESTAMP(0)): Dify's order among apps created within one
            // second is unspecified; the fake puts the later one first.
            .sort((a, b) => b.createdAt - a.createdAt || b.sequence - a.sequence);
        // AppPagination items (AppPartial): the detail without `site`.
        const data = all.slice((page - 1) * limit, page * limit).map((app) => {
            const { site: _site, ...item } = appDetail(app);
            return item;
        });
        return { body: { page, limit, total: all.length, has_more: page * limit < all.length, data } };
    }

    private create(req: Request): Reply {
        const state = this.state;
        const name = requireString(req, "name");
        const mode = req.json.mode;
        if (!["chat", "agent-chat", "advanced-chat", "workflow", "completion"].includes(String(mode))) {
            throw invalidParam("mode is required and must be one of chat, agent-chat, advanced-chat, workflow, completion");
        }
        const description = String(req.json.description ?? "");
        if (description.length > 400) {
            throw invalidParam("Description cannot exceed 400 characters.");
        }
        // AppService.create_app: the agent-chat template's model (openai/gpt-4o), replaced by the workspace's default
        // LLM when it can be instantiated, else by the first LLM of the first installed provider
        // (get_first_provider_first_model); everything else of the config is unset (agent_mode disabled, no prompt).
        const firstLlm = TONGYI_MODELS.find((m) => m.type === "llm") as ModelDefinition;
        const llm = tongyiActive(state) && state.defaultModels.get("llm")
            ? state.defaultModels.get("llm")
            : tongyiInstalled(state)
              ? { provider: TONGYI_PROVIDER, model: firstLlm.model }
              : undefined;
        const app: AppRecord = {
            id: crypto.randomUUID(),
            name,
            mode: String(mode),
            description,
            iconType: String(req.json.icon_type ?? "emoji"),
            icon: req.json.icon === undefined || req.json.icon === null ? null : String(req.json.icon),
            iconBackground: req.json.icon_background === undefined || req.json.icon_background === null ? null : String(req.json.icon_background),
            useIconAsAnswerIcon: false,
            maxActiveRequests: null,
            modelConfig: {
                opening_statement: null,
                suggested_questions: [],
                model: {
                    provider: llm?.provider ?? "openai",
                    name: llm?.model ?? "gpt-4o",
                    mode: "chat",
                    completion_params: {},
                },
                user_input_form: [],
                pre_prompt: null,
                agent_mode: { enabled: false, strategy: null, tools: [], prompt: null },
                prompt_type: "simple",
            },
            createdAt: Math.floor(Date.now() / 1000),
            sequence: ++this.sequence,
        };
        state.apps.set(app.id, app);
        return { status: 201, body: appDetail(app, false) };
    }

    private update(req: Request): Reply {
        const app = this.find(req.params[0]);
        const name = requireString(req, "name");
        const given = (field: string) => req.json[field] !== undefined && req.json[field] !== null;
        if (!this.state.atLeast("1.11.0")) {
            // reqparse fills every declared argument (None when absent) and AppService.update_app writes them all;
            // apps.use_icon_as_answer_icon is NOT NULL, so the commit fails (NotNullViolation, a plain 500).
            if (!given("use_icon_as_answer_icon")) {
                throw new HttpError(500, "unknown", "Internal Server Error");
            }
            app.name = name;
            app.description = String(req.json.description ?? "");
            app.iconType = given("icon_type") ? String(req.json.icon_type) : app.iconType;
            app.icon = String(req.json.icon ?? "");
            app.iconBackground = String(req.json.icon_background ?? "");
            app.useIconAsAnswerIcon = req.json.use_icon_as_answer_icon === true;
            app.maxActiveRequests = given("max_active_requests") ? Number(req.json.max_active_requests) : null;
            return { body: appDetail(app) };
        }
        // UpdateAppPayload: absent fields become ""/False/0; icon_type None keeps the stored one.
        const description = String(req.json.description ?? "");
        if (description.length > 400) {
            throw invalidParam("description: String should have at most 400 characters");
        }
        app.name = name;
        app.description = description;
        app.iconType = given("icon_type") ? String(req.json.icon_type) : app.iconType;
        app.icon = String(req.json.icon || "");
        app.iconBackground = String(req.json.icon_background || "");
        app.useIconAsAnswerIcon = req.json.use_icon_as_answer_icon === true;
        app.maxActiveRequests = Number(req.json.max_active_requests || 0);
        return { body: appDetail(app) };
    }

    private saveModelConfig(req: Request): Reply {
        const app = this.find(req.params[0], { path: req.path, rule: "/console/api/apps/<uuid:app_id>/model-config" });
        const model = req.json.model as { provider?: string; name?: string; completion_params?: unknown } | undefined;
        if (!model?.provider || !model.name) {
            throw invalidParam("model.provider and model.name are required");
        }
        if (model.completion_params === undefined) {
            throw invalidParam("model.completion_params is required");
        }
        const llms = modelsOfType(this.state, "llm").flatMap((p) => p.models.map((m) => `${p.provider}:${m.model}`));
        if (!llms.includes(`${model.provider}:${model.name}`)) {
            throw invalidParam("model.name must be in the specified model list");
        }
        const agentMode = (req.json.agent_mode ?? {}) as { strategy?: string; tools?: Record<string, unknown>[] };
        if (app.mode === "agent-chat") {
            if (!["router", "react_router", "react", "function_call"].includes(String(agentMode.strategy))) {
                throw invalidParam("strategy in agent_mode must be in the specified strategy list");
            }
            for (const tool of agentMode.tools ?? []) {
                for (const key of ["provider_type", "provider_id", "tool_name", "tool_parameters"]) {
                    if (tool[key] === undefined) {
                        throw invalidParam(`${key} is required in agent_mode.tools`);
                    }
                }
            }
        }
        const saved = JSON.parse(JSON.stringify(req.json)) as Record<string, unknown>;
        // ModelConfigManager.validate_model_completion_params adds an empty stop list.
        const params = (saved.model as { completion_params: Record<string, unknown> }).completion_params;
        if (params.stop === undefined) {
            params.stop = [];
        }
        app.modelConfig = saved;
        return { body: { result: "success" } };
    }
}
