// Model providers (/workspaces/current/model-providers, models, default-model): the tongyi provider's credentials
// (validated the way the plugin does, by DashScope's answer to the key), its models, and the workspace defaults.
import * as crypto from "crypto";
import { HttpError, invalidParam, Reply, Request, Router } from "./router";
import { ConsoleState, HIDDEN } from "./state";
import { CredentialRecord } from "./types";
import { modelsOfType, tongyiActive, tongyiInstalled, TONGYI_LABEL, TONGYI_MODELS, TONGYI_PROVIDER } from "./tongyi";

const CREDENTIALS = "/workspaces/current/model-providers/<path>/credentials";

/** Dify's encrypter.obfuscated_token. */
function obfuscateToken(token: string): string {
    if (!token) {
        return token;
    }
    return token.length <= 8 ? "*".repeat(20) : token.slice(0, 6) + "*".repeat(12) + token.slice(-2);
}

function validateTongyiCredentials(credentials: Record<string, unknown>): void {
    for (const field of ["dashscope_api_key", "use_international_endpoint"]) {
        if (credentials[field] === undefined || credentials[field] === null || credentials[field] === "") {
            throw invalidParam(`Variable ${field} is required`);
        }
    }
    if (!String(credentials.dashscope_api_key).startsWith("sk-")) {
        // What DashScope answers for a bad key (the plugin validates by calling it).
        throw invalidParam("Invalid API-key provided.");
    }
}

export class ModelProviderRoutes {
    constructor(private readonly state: ConsoleState) {}

    register(router: Router): void {
        const state = this.state;
        router.route("GET", "/workspaces/current/model-providers", "read", true, () => ({
            body: { data: tongyiInstalled(state) ? [this.providerPayload()] : [] },
        }));

        router.route("GET", CREDENTIALS, "read", true, (req) => this.readCredential(req));
        router.route("POST", CREDENTIALS, "write", true, (req) => this.addCredential(req));
        router.route("PUT", CREDENTIALS, "write", true, (req) => this.updateCredential(req));
        router.route("DELETE", CREDENTIALS, "write", true, (req) => {
            const record = this.credentialsOf(req.params[0]);
            const index = record.items.findIndex((c) => c.id === req.json.credential_id);
            if (index < 0) {
                throw invalidParam("Credential record not found.");
            }
            const [removed] = record.items.splice(index, 1);
            if (record.currentId === removed.id) {
                record.currentId = record.items[0]?.id ?? null;
            }
            return { status: 204, body: { result: "success" } };
        });

        router.route("GET", "/workspaces/current/models/model-types/<id>", "read", true, (req) => ({
            body: { data: modelsOfType(state, req.params[0]) },
        }));

        router.route("GET", "/workspaces/current/default-model", "read", true, (req) => {
            const type = req.query.get("model_type");
            if (!type) {
                throw invalidParam("Missing required parameter in the query string: model_type");
            }
            return { body: this.defaultModelPayload(type) };
        });

        router.route("POST", "/workspaces/current/default-model", "write", true, (req) => {
            const settings = (req.json.model_settings ?? []) as { model_type: string; provider?: string; model?: string }[];
            for (const setting of settings) {
                if (!setting.provider) {
                    continue;
                }
                if (setting.provider !== TONGYI_PROVIDER || !tongyiInstalled(state)) {
                    throw invalidParam(`Provider ${setting.provider} does not exist.`);
                }
                const exists = TONGYI_MODELS.some((m) => m.type === setting.model_type && m.model === setting.model);
                if (!exists || !tongyiActive(state)) {
                    throw invalidParam(`Model ${setting.model} does not exist.`);
                }
            }
            for (const setting of settings) {
                if (setting.provider) {
                    state.defaultModels.set(setting.model_type, { provider: setting.provider, model: String(setting.model) });
                }
            }
            return { body: { result: "success" } };
        });
    }

    private credentialsOf(provider: string): { items: CredentialRecord[]; currentId: string | null } {
        if (provider !== TONGYI_PROVIDER && provider !== "tongyi") {
            throw invalidParam(`Provider ${provider} does not exist.`);
        }
        if (!tongyiInstalled(this.state)) {
            throw invalidParam(`Provider ${TONGYI_PROVIDER} does not exist.`);
        }
        let record = this.state.modelCredentials.get(TONGYI_PROVIDER);
        if (!record) {
            record = { items: [], currentId: null };
            this.state.modelCredentials.set(TONGYI_PROVIDER, record);
        }
        return record;
    }

    private readCredential(req: Request): Reply {
        const record = this.credentialsOf(req.params[0]);
        const asked = req.query.get("credential_id");
        const id = asked ?? record.currentId;
        const credential = record.items.find((c) => c.id === id);
        if (!credential) {
            // _get_specific_provider_credential names the id; without one, the active credential (none: {}).
            if (asked) {
                throw invalidParam(`Credential with id ${asked} not found.`);
            }
            return { body: { credentials: {} } };
        }
        return {
            body: {
                credentials: {
                    ...credential.credentials,
                    dashscope_api_key: obfuscateToken(credential.credentials.dashscope_api_key),
                },
            },
        };
    }

    private addCredential(req: Request): Reply {
        const record = this.credentialsOf(req.params[0]);
        let name = req.json.name as string | undefined;
        if (!name) {
            if (!this.state.atLeast("1.8.1")) {
                throw new HttpError(400, "invalid_param", "Missing required parameter in the JSON body: name", { params: "name" });
            }
            name = `API KEY ${record.items.length + 1}`;
        }
        if (name.length > 30) {
            throw invalidParam("name must be at most 30 characters");
        }
        if (record.items.some((c) => c.name === name)) {
            throw invalidParam(`Credential with name '${name}' already exists.`);
        }
        const credentials = (req.json.credentials ?? {}) as Record<string, string>;
        validateTongyiCredentials(credentials);
        const item = { id: crypto.randomUUID(), name, credentials: { ...credentials } };
        record.items.push(item);
        if (!record.currentId) {
            record.currentId = item.id;
        }
        return { status: 201, body: { result: "success" } };
    }

    // update_provider_credential: the name first, then the plugin validates (hidden values taken from the stored
    // record), then the record is looked up.
    private updateCredential(req: Request): Reply {
        const record = this.credentialsOf(req.params[0]);
        const credentialId = req.json.credential_id;
        const item = record.items.find((c) => c.id === credentialId);
        const name = req.json.name as string | undefined;
        if (name && record.items.some((c) => c.name === name && c.id !== credentialId)) {
            throw invalidParam(`Credential with name '${name}' already exists.`);
        }
        const credentials = { ...((req.json.credentials ?? {}) as Record<string, string>) };
        for (const [key, value] of Object.entries(credentials)) {
            if (value === HIDDEN && item) {
                credentials[key] = item.credentials[key];
            }
        }
        validateTongyiCredentials(credentials);
        if (!item) {
            throw invalidParam("Credential record not found.");
        }
        item.credentials = credentials;
        if (name) {
            item.name = name;
        }
        return { body: { result: "success" } };
    }

    private providerPayload() {
        const creds = this.state.modelCredentials.get(TONGYI_PROVIDER) ?? { items: [], currentId: null };
        const current = creds.items.find((c) => c.id === creds.currentId);
        return {
            provider: TONGYI_PROVIDER,
            label: TONGYI_LABEL,
            supported_model_types: ["llm", "text-embedding"],
            preferred_provider_type: "custom",
            custom_configuration: {
                status: current ? "active" : "no-configure",
                current_credential_id: current?.id ?? null,
                current_credential_name: current?.name ?? null,
                available_credentials: creds.items.map((c) => ({ credential_id: c.id, credential_name: c.name })),
            },
            system_configuration: { enabled: false, current_quota_type: null, quota_configurations: [] },
        };
    }

    private defaultModelPayload(type: string) {
        if (!tongyiInstalled(this.state)) {
            // The record stays, but without the plugin its provider is gone: get_default_model answers nothing.
            return { data: null };
        }
        let current = this.state.defaultModels.get(type);
        if (!current) {
            // Dify's GET auto-picks and persists the first active model when there is no default.
            const first = tongyiActive(this.state) ? TONGYI_MODELS.find((m) => m.type === type) : undefined;
            if (!first) {
                return { data: null };
            }
            current = { provider: TONGYI_PROVIDER, model: first.model };
            this.state.defaultModels.set(type, current);
        }
        return {
            data: {
                model: current.model,
                model_type: type,
                provider: {
                    tenant_id: "tenant",
                    provider: current.provider,
                    label: { en_US: "TONGYI" },
                    supported_model_types: ["llm", "text-embedding"],
                },
            },
        };
    }
}
