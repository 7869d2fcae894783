// DifyMcpToolProvider: an MCP server registered in Dify's workspace (Tools → MCP), plus the OAuth hand-off.
// Dify stores the server URL encrypted and only shows it masked (scheme://host/******), so the desired URL is
// kept in state and drift is detected by comparing masked forms. On Dify 1.10+ a preset OAuth client
// (`authentication.client_id`) is sent on create, and on update whenever the URL changes (Dify then resets
// the provider's credentials, client included), the client changes, or Dify no longer holds it; never
// otherwise, since sending it wipes Dify's stored tokens. On 1.8–1.9 Dify can only use dynamic client
// registration (RFC 7591) with the authorization server.
// Facts: ../shared/reference/dify-console-api.md sections 2 and 7; Dify's
// services/tools/mcp_tools_manage_service.py (update_provider, validate_server_url_standalone).
import * as pulumi from "@pulumi/pulumi";
import { DIFY_MCP_SERVER_IDENTIFIER_PATTERN } from "../../rules/mcp-names";
import { difyMcpOAuthCallbackUrl } from "../../rules/oauth-callback";
import type { CheckFailure } from "../engine/check";
import { differs, differsUnlessPinned } from "../engine/diff";
import { engineSafeProvider } from "../engine/outputs";
import { containsUnknown, isKnown } from "../engine/unknown";
import { checkDifyConnection, connectWith, DifyConnectionInputs, normalizeDifyUrl, resourceInitFailure } from "./connection";
import { difyConsoleApi, McpProviderEntity, UNCHANGED_MCP_SERVER_URL } from "./console-api";
import { isDifyAlreadyExists, isDifyNotFound, isLostAnswer } from "./errors";
import { authorizationAsRead, authorize } from "./mcp-authorization";
import {
    clientModeFor,
    findProviderByIdentifier,
    MCP_TOOL_PROVIDER_DEFAULTS,
    presetClientAsRead,
    presetClientMissing,
    providerBody,
    registrationAsRead,
    supportsPresetClient,
    toolNamesOf,
    warnAboutRegistration,
} from "./mcp-registration";

export interface DifyMcpToolProviderInputs extends DifyConnectionInputs {
    /** Display name, unique in the workspace, at most 40 characters. */
    name: string;
    /** The MCP server's Streamable HTTP URL (a path ending in /mcp selects Streamable HTTP). */
    serverUrl: string;
    /** Unique id agents use to reference the tools: ^[a-z0-9_-]{1,24}$. */
    serverIdentifier: string;
    /** Emoji icon. */
    icon?: string;
    iconBackground?: string;
    timeoutSeconds?: number;
    sseReadTimeoutSeconds?: number;
    /** Preset OAuth client (Dify 1.10+): the OAuth app's client id. Ignored, with a warning, before 1.10. */
    oauthClientId?: string;
    /** Secret of a confidential OAuth client; leave empty for a public (PKCE) client. */
    oauthClientSecret?: string;
    /** The id of the OpenAPI MCP server behind serverUrl: the URL is fixed for it (see `differsUnlessPinned`). */
    mcpServerId?: string;
    /** Make `up` wait until a person has authorized the workspace and the tools are listed. */
    waitForAuthorization?: boolean;
    authorizationTimeoutSeconds?: number;
    authorizationPollSeconds?: number;
    /** While waiting, also write the authorization URL to this file (provider logs are not always shown). */
    authorizationUrlFile?: string;
    requestTimeoutSeconds?: number;
}

export interface DifyMcpToolProviderOutputs extends DifyMcpToolProviderInputs {
    /** Dify's UUID of the provider (also the resource id). */
    providerId: string;
    /** The consent URL a person opens once to authorize the workspace ("" once authorized). Valid 5 minutes. */
    authorizationUrl: string;
    /** Whether Dify can list the server's tools with the tokens it holds (not just its `is_team_authorization` flag). */
    authorized: boolean;
    /** Tool names Dify discovered on the server (empty until authorized). */
    toolNames: string[];
    /** "preset-client" (1.10+ with oauthClientId) or "dynamic-registration". */
    oauthClientMode: "preset-client" | "dynamic-registration";
    /** The redirect URI to register in the OAuth app. */
    oauthRedirectUri: string;
    difyVersion: string;
}

export function checkDifyMcpToolProvider(
    news: Partial<DifyMcpToolProviderInputs>,
): pulumi.dynamic.CheckResult<DifyMcpToolProviderInputs> {
    const failures: CheckFailure[] = checkDifyConnection(news);
    const known = isKnown;
    if (news.name === undefined || (known(news.name) && !/^.{1,40}$/u.test(String(news.name)))) {
        failures.push({ property: "name", reason: "name is required, 1 to 40 characters, unique in the Dify workspace" });
    }
    if (news.serverIdentifier === undefined || (known(news.serverIdentifier) && !DIFY_MCP_SERVER_IDENTIFIER_PATTERN.test(String(news.serverIdentifier)))) {
        failures.push({
            property: "serverIdentifier",
            reason: "serverIdentifier must match ^[a-z0-9_-]{1,24}$ (lower-case letters, digits, _ and -, at most 24 characters)",
        });
    }
    if (news.serverUrl === undefined) {
        failures.push({ property: "serverUrl", reason: "serverUrl is required: the MCP server's Streamable HTTP URL" });
    } else if (known(news.serverUrl)) {
        let ok = false;
        try {
            const url = new URL(String(news.serverUrl));
            ok = (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
        } catch {
            ok = false;
        }
        if (!ok) {
            failures.push({ property: "serverUrl", reason: "serverUrl must be an absolute URL with scheme http or https" });
        }
    }
    for (const key of ["timeoutSeconds", "sseReadTimeoutSeconds", "authorizationTimeoutSeconds", "authorizationPollSeconds", "requestTimeoutSeconds"] as const) {
        const value = news[key];
        if (known(value) && !(typeof value === "number" && value > 0)) {
            failures.push({ property: key, reason: `${key} must be a positive number of seconds` });
        }
    }
    if (known(news.waitForAuthorization) && typeof news.waitForAuthorization !== "boolean") {
        failures.push({ property: "waitForAuthorization", reason: "waitForAuthorization must be true or false" });
    }
    if (known(news.oauthClientSecret) && news.oauthClientSecret !== "" && !news.oauthClientId) {
        failures.push({ property: "oauthClientSecret", reason: "oauthClientSecret needs oauthClientId" });
    }
    if (failures.length > 0) {
        return { failures };
    }
    const inputs: DifyMcpToolProviderInputs = {
        ...MCP_TOOL_PROVIDER_DEFAULTS,
        ...(Object.fromEntries(Object.entries(news).filter(([, v]) => v !== undefined)) as unknown as DifyMcpToolProviderInputs),
        difyUrl: normalizeDifyUrl(news.difyUrl as string),
    };
    return { inputs };
}

/** Fields Dify stores for the provider; all of them can be updated in place (PUT). */
const REMOTE_FIELDS = ["name", "serverUrl", "serverIdentifier", "icon", "iconBackground", "timeoutSeconds", "sseReadTimeoutSeconds", "oauthClientId", "oauthClientSecret"] as const;

/**
 * Values fixed for another input: an OAuth client's secret is issued for its client id, and Alibaba puts the MCP
 * server's id in its URL (an update keeps both). While the key holds, an unknown value in a preview is no change.
 */
const PINS = { oauthClientSecret: "oauthClientId", serverUrl: "mcpServerId" } as const;

/**
 * Not authorized, and no consent URL to show: a refresh found that the tokens stopped working (revoked, refresh
 * token expired) after an authorization, or a create failed before issuing a URL. The next `up` gets a new URL.
 */
function needsAuthorizationUrl(olds: Partial<DifyMcpToolProviderOutputs>): boolean {
    return olds.authorized === false && !olds.authorizationUrl;
}

export function diffDifyMcpToolProvider(olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs): pulumi.dynamic.DiffResult {
    const replaces: string[] = [];
    if (differs(olds, news, "difyUrl")) {
        replaces.push("difyUrl");
    }
    if (olds.oauthClientId && !news.oauthClientId && !containsUnknown(news.oauthClientId)) {
        // Dify has no documented way to drop a preset client in place (UNCONFIRMED); start over.
        replaces.push("oauthClientId");
    }
    const changed = [...REMOTE_FIELDS, "adminEmail", "adminPassword", "waitForAuthorization"].filter((key) => {
        const pin = PINS[key as keyof typeof PINS];
        return pin === undefined
            ? differs(olds, news, key as keyof DifyMcpToolProviderInputs)
            : differsUnlessPinned(olds, news, key as keyof DifyMcpToolProviderInputs, pin);
    });
    // With waitForAuthorization, every `up` retries until the workspace is authorized.
    const pendingAuthorization = news.waitForAuthorization === true && olds.authorized === false;
    return {
        changes: replaces.length > 0 || changed.length > 0 || pendingAuthorization || needsAuthorizationUrl(olds),
        replaces,
        // Name, URL and identifier are unique per workspace.
        deleteBeforeReplace: replaces.length > 0,
    };
}

export const difyMcpToolProviderProvider: pulumi.dynamic.ResourceProvider<DifyMcpToolProviderInputs, DifyMcpToolProviderOutputs> = engineSafeProvider({
    async check(_olds: DifyMcpToolProviderInputs, news: DifyMcpToolProviderInputs) {
        return checkDifyMcpToolProvider(news);
    },

    async diff(_id: string, olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs) {
        return diffDifyMcpToolProvider(olds, news);
    },

    async create(inputs: DifyMcpToolProviderInputs) {
        const api = difyConsoleApi(await connectWith(inputs, [inputs.oauthClientSecret ?? ""]));
        warnAboutRegistration(api.version, inputs);
        // A create whose answer was lost (connection reset after Dify applied it) left a provider behind: adopt
        // it rather than fail forever with "MCP tool ... already exists".
        let entity = await findProviderByIdentifier(api, inputs.serverIdentifier);
        let adopted = entity !== undefined;
        if (!entity) {
            try {
                entity = await api.createMcpProvider(providerBody(api.version, inputs, inputs.serverUrl, true));
            } catch (err) {
                if (!isDifyAlreadyExists(err) && !isLostAnswer(err)) {
                    throw err;
                }
                entity = await findProviderByIdentifier(api, inputs.serverIdentifier);
                if (!entity) {
                    throw err; // taken by a provider with another identifier (name or URL), or never applied
                }
                adopted = true;
            }
        }
        const providerId = entity.id;
        const base: DifyMcpToolProviderOutputs = {
            ...inputs,
            providerId,
            authorizationUrl: "",
            authorized: false,
            toolNames: [],
            oauthClientMode: clientModeFor(api.version, inputs),
            oauthRedirectUri: difyMcpOAuthCallbackUrl(inputs.difyUrl),
            difyVersion: api.version,
        };
        try {
            if (adopted) {
                // Bring it to the desired state. The full URL is sent: Dify keeps its credentials when it is the
                // one stored and resets them when not, so the preset client goes along (it wipes any tokens).
                console.warn(`warning: adopting the existing Dify MCP provider "${inputs.serverIdentifier}" (${providerId}).`);
                await api.updateMcpProvider(providerId, providerBody(api.version, inputs, inputs.serverUrl, true));
            }
            const state = await authorize(api, providerId, inputs);
            return { id: providerId, outs: { ...base, ...state } };
        } catch (err) {
            // The provider exists in Dify: record it so the next `up` updates instead of creating a duplicate.
            throw resourceInitFailure(providerId, base, err);
        }
    },

    /**
     * Costs, when nothing changed: the login (GET /setup, POST /login), GET .../mcp/tools/<id>, and, while
     * Dify says the workspace is authorized, GET .../mcp/update/<id>, for which Dify opens one MCP session to
     * the server (initialize + tools/list with the stored tokens) and stores the tool list. No OAuth flow,
     * no writes from here.
     */
    async read(id: string, props?: DifyMcpToolProviderOutputs) {
        const state = props as DifyMcpToolProviderOutputs;
        const api = difyConsoleApi(await connectWith(state, [state.oauthClientSecret ?? ""]));
        let entity: McpProviderEntity;
        try {
            entity = await api.getMcpProvider(id);
        } catch (err) {
            if (isDifyNotFound(err)) {
                return {};
            }
            throw err;
        }
        const client = presetClientAsRead(api.version, entity, state);
        const access = await authorizationAsRead(api, id, entity.is_team_authorization === true, client.clientMissing, state);
        return {
            id,
            props: {
                ...state,
                ...registrationAsRead(entity, state),
                oauthClientId: client.oauthClientId,
                oauthClientSecret: client.oauthClientSecret,
                authorized: access.authorized,
                toolNames: access.toolNames ?? toolNamesOf(entity),
                authorizationUrl: access.authorized ? "" : state.authorizationUrl,
                difyVersion: api.version,
            },
        };
    },

    async update(id: string, olds: DifyMcpToolProviderOutputs, news: DifyMcpToolProviderInputs) {
        const remoteChanged = REMOTE_FIELDS.some((key) => differs(olds, news, key));
        const urlChanged = olds.serverUrl !== news.serverUrl;
        const base: DifyMcpToolProviderOutputs = {
            ...olds,
            ...news,
            oauthRedirectUri: difyMcpOAuthCallbackUrl(news.difyUrl),
        };
        if (!remoteChanged && !needsAuthorizationUrl(olds) && (olds.authorized || !news.waitForAuthorization)) {
            // Only the admin credentials or local knobs changed: nothing to tell Dify.
            return { outs: base };
        }
        const api = difyConsoleApi(await connectWith(news, [news.oauthClientSecret ?? "", olds.oauthClientSecret ?? ""]));
        base.difyVersion = api.version;
        base.oauthClientMode = clientModeFor(api.version, news);
        // Dify 1.10+ rewrites its credentials to just the client (dropping the OAuth tokens) whenever an update
        // carries one, so the client goes only where it must: a new URL (Dify resets the credentials, client
        // included, unless the same PUT carries `authentication`), a new client, or a client Dify lost.
        const preset = supportsPresetClient(api.version) && !!news.oauthClientId;
        const clientChanged =
            preset &&
            (olds.oauthClientId !== news.oauthClientId ||
                (olds.oauthClientSecret ?? "") !== (news.oauthClientSecret ?? "") ||
                olds.oauthClientMode !== "preset-client");
        let sendClient = preset && (urlChanged || clientChanged);
        if (preset && !sendClient) {
            // State may predate the loss (no refresh ran): ask Dify, one GET.
            const entity = await api.getMcpProvider(id);
            sendClient = presetClientMissing(entity, news.oauthClientId as string, news.oauthClientSecret ?? "");
        }
        if (remoteChanged || sendClient) {
            warnAboutRegistration(api.version, news);
            await api.updateMcpProvider(id, providerBody(api.version, news, urlChanged ? news.serverUrl : UNCHANGED_MCP_SERVER_URL, sendClient));
        }
        if (urlChanged || sendClient || !olds.authorized) {
            // A new URL or client drops the old tokens; an unauthorized provider gets a fresh (5-minute) URL
            // (when the tokens it had died, Dify refuses first and drops the client: startAuthorization recovers).
            const state = await authorize(api, id, news);
            return { outs: { ...base, ...state } };
        }
        return { outs: base };
    },

    async delete(id: string, props: DifyMcpToolProviderOutputs) {
        const api = difyConsoleApi(await connectWith(props, [props.oauthClientSecret ?? ""]));
        try {
            await api.deleteMcpProvider(id);
        } catch (err) {
            if (!isDifyNotFound(err)) {
                throw err;
            }
        }
    },
});

/**
 * What `new DifyMcpToolProvider(...)` takes. Changing `difyUrl`, or clearing `oauthClientId` once set, replaces
 * the registration (the old one is deleted first: name, URL and identifier are unique per workspace). The
 * fields marked "not compared" plan no change on their own; their new value is used by the next create or update.
 */
export interface DifyMcpToolProviderArgs {
    /** Dify's web address, e.g. http://47.1.2.3 (no path). Changing it replaces the registration. */
    difyUrl: pulumi.Input<string>;
    /** The Dify admin's e-mail address, to log in with. Changing it updates the state only. */
    adminEmail: pulumi.Input<string>;
    /** The Dify admin's password. Kept secret. Changing it updates the state only (the next login uses it). */
    adminPassword: pulumi.Input<string>;
    /** Display name, 1–40 characters, unique in the workspace. Changing it updates the registration in place. */
    name: pulumi.Input<string>;
    /**
     * The MCP server's Streamable HTTP URL. Changing it updates the registration in place; Dify then drops its
     * tokens (the preset client is sent along), so the workspace must be authorized again.
     */
    serverUrl: pulumi.Input<string>;
    /** What agents reference the tools by: 1–24 of `a-z 0-9 _ -`. Changing it updates the registration in place. */
    serverIdentifier: pulumi.Input<string>;
    /** Emoji icon. Default "☁️". Changing it updates in place. */
    icon?: pulumi.Input<string>;
    /** Default "#E0F2FE". Changing it updates in place. */
    iconBackground?: pulumi.Input<string>;
    /** Seconds Dify waits for the server. Default 30. Changing it updates in place. */
    timeoutSeconds?: pulumi.Input<number>;
    /** Seconds Dify waits on the server's event stream. Default 300. Changing it updates in place. */
    sseReadTimeoutSeconds?: pulumi.Input<number>;
    /**
     * The OAuth app's client id, preset in Dify 1.10+ (ignored, with a warning, before). Default: none (Dify
     * registers a client dynamically). Setting or changing it updates in place, and on Dify 1.10+ the workspace
     * must then be authorized again; clearing it replaces the registration.
     */
    oauthClientId?: pulumi.Input<string>;
    /**
     * Secret of a confidential OAuth client; needs `oauthClientId`. Kept secret. Default: none (a public PKCE
     * client). Changing it updates in place, and on Dify 1.10+ the workspace must then be authorized again.
     */
    oauthClientSecret?: pulumi.Input<string>;
    /**
     * The id of the `OpenApiMcpServer` whose URL is `serverUrl`, when it is one. Default: none. Not sent to Dify and
     * not compared: while it stays the same, a preview of the server's own update (which cannot know the server's
     * outputs yet) does not plan an update of this registration, since the URL is fixed for the id.
     */
    mcpServerId?: pulumi.Input<string>;
    /**
     * Make `up` wait until a person has authorized the workspace and the tools list. Default false. Changing it
     * updates in place; while it is true and the workspace is not authorized, every `up` plans an update that waits.
     */
    waitForAuthorization?: pulumi.Input<boolean>;
    /** How long `up` waits for the authorization, in seconds. Default 600. Not compared. */
    authorizationTimeoutSeconds?: pulumi.Input<number>;
    /** Pause between checks while waiting, in seconds. Default 5. Not compared. */
    authorizationPollSeconds?: pulumi.Input<number>;
    /** While waiting, also write the authorization URL to this file. Default: none. Not compared. */
    authorizationUrlFile?: pulumi.Input<string>;
}

/** An MCP server registered in Dify, with the OAuth authorization URL a person opens once. */
export class DifyMcpToolProvider extends pulumi.dynamic.Resource {
    declare public readonly providerId: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly serverIdentifier: pulumi.Output<string>;
    declare public readonly serverUrl: pulumi.Output<string>;
    /** The preset OAuth client id, as given (an input: known during previews). */
    declare public readonly oauthClientId: pulumi.Output<string | undefined>;
    declare public readonly authorizationUrl: pulumi.Output<string>;
    declare public readonly authorized: pulumi.Output<boolean>;
    declare public readonly toolNames: pulumi.Output<string[]>;
    declare public readonly oauthClientMode: pulumi.Output<"preset-client" | "dynamic-registration">;
    declare public readonly oauthRedirectUri: pulumi.Output<string>;
    declare public readonly difyVersion: pulumi.Output<string>;

    constructor(name: string, args: DifyMcpToolProviderArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            difyMcpToolProviderProvider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                oauthClientSecret: args.oauthClientSecret === undefined ? undefined : pulumi.secret(args.oauthClientSecret),
                providerId: undefined,
                authorizationUrl: undefined,
                authorized: undefined,
                toolNames: undefined,
                oauthClientMode: undefined,
                oauthRedirectUri: undefined,
                difyVersion: undefined,
            },
            { ...opts, additionalSecretOutputs: ["adminPassword", "oauthClientSecret", ...(opts?.additionalSecretOutputs ?? [])] },
            "dify",
            "McpToolProvider",
        );
    }
}

