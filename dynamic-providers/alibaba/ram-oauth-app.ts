// RAM OAuth 2.1 application (Ims 2019-08-15), the "Custom OAuth" client of the OpenAPI MCP server that Dify
// signs in with. There is no such resource in @pulumi/alicloud, hence this dynamic provider.
import * as pulumi from "@pulumi/pulumi";
import { createAlibabaApiClient, endpointProblem, isAlibabaApiError, isApiErrorCode } from "./client";
import type { CheckFailure } from "../engine/check";
import { sameSet, sortedSet } from "../engine/diff";
import { containsUnknown, isKnown } from "../engine/unknown";
import {
    IMS_APPLICATION_NOT_FOUND,
    IMS_DEFAULT_ENDPOINT,
    ImsApi,
    ImsApplication,
    imsApi,
} from "./ims-api";

/**
 * The OpenAPI MCP server accepts only web and native applications as custom OAuth clients (ServerApp is a
 * client-credentials app without a user sign-in, so it is rejected).
 */
export type RamOAuthAppType = "WebApp" | "NativeApp";
export const RAM_OAUTH_APP_TYPES: readonly RamOAuthAppType[] = ["WebApp", "NativeApp"];

/**
 * Default type: NativeApp, a public client that signs in with PKCE and no client secret. That is what Dify
 * does (`token_endpoint_auth_method: "none"`; Dify ≥ 1.10 sends a client_secret only when one is configured)
 * and what aliyun-cli creates for its own MCP proxy. A WebApp always requires a secret (SecretRequired is
 * forced to true), and the RAM docs say OAuth 2.1 apps do not support fixed-secret validation.
 */
export const DEFAULT_RAM_OAUTH_APP_TYPE: RamOAuthAppType = "NativeApp";

/** The MCP server's custom OAuth requires OAuth 2.1; UpdateApplication cannot change it. */
export const RAM_OAUTH_PROTOCOL_VERSION = "2.1";
/** The scope the MCP server requires ("The OAuth scope must include /acs/mcp-server"). */
export const MCP_SERVER_SCOPE = "/acs/mcp-server";
/** RAM's default scope, which cannot be removed; always part of the desired set so diffs stay stable. */
export const OPENID_SCOPE = "openid";

// No key named `default` here: Pulumi 3.270's closure serializer takes a plain object whose `default` is a
// primitive for an `import *` wrapper and crashes (`Cannot use 'in' operator to search for 'min' in 3600`).
export const ACCESS_TOKEN_VALIDITY_RANGE = { min: 900, max: 10800, standard: 3600 } as const;
export const REFRESH_TOKEN_VALIDITY_RANGE = { min: 7200, max: 31536000 } as const;
/** API defaults of RefreshTokenValidity per application type. */
export const DEFAULT_REFRESH_TOKEN_VALIDITY: Readonly<Record<RamOAuthAppType, number>> = {
    WebApp: 2592000,
    NativeApp: 7776000,
};
const APP_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const DISPLAY_NAME_MAX = 24;

/** Dify's OAuth callback path, appended to CONSOLE_API_URL (api/core/entities/mcp_provider.py). */
export function difyMcpOAuthCallbackUrl(consoleApiUrl: string): string {
    return `${consoleApiUrl.replace(/\/+$/, "")}/console/api/mcp/oauth/callback`;
}

/** Inputs after `check`: defaults resolved, so diffs compare like with like. */
export interface RamOAuthAppInputs {
    appName: string;
    displayName: string;
    appType: RamOAuthAppType;
    accessTokenValidity: number;
    refreshTokenValidity: number;
    redirectUris: string[];
    scopes: string[];
    requiredScopes: string[];
    protocolVersion: string;
    /**
     * Create an AppSecret (the OAuth client_secret) with the app. Default: true for WebApp, false for NativeApp.
     * UNCONFIRMED whether CreateAppSecret works on OAuth 2.1 apps, hence a switch.
     */
    createSecret: boolean;
    /** Ims endpoint: host (HTTPS) or URL with scheme. */
    endpoint: string;
}

/** What users (and the Resource class) pass: everything but the name may be left out. */
export type RamOAuthAppRawInputs = Partial<RamOAuthAppInputs> & { appName?: string };

export interface RamOAuthAppOutputs extends RamOAuthAppInputs {
    /** The OAuth client id. */
    appId: string;
    // The optional outputs are null (not left out) when there is no value: see OPTIONAL_OUTPUTS.
    accountId?: string | null;
    isMultiTenant?: boolean | null;
    secretRequired?: boolean | null;
    /** Present when createSecret: the AppSecretId, and the client secret itself (a Pulumi secret). */
    clientSecretId?: string | null;
    clientSecret?: string | null;
}

/**
 * Outputs that may have no value. They are reported as null rather than left out: during a preview the SDK
 * reads an output the engine did not report as unknown, so a NativeApp's missing clientSecret would show every
 * resource that uses it (the Dify MCP registration, and through its tools the agent app) as changing.
 */
const OPTIONAL_OUTPUTS: readonly string[] = ["accountId", "isMultiTenant", "secretRequired", "clientSecretId", "clientSecret"];

/** Output properties the Resource class marks secret. */
export const RAM_OAUTH_APP_SECRET_OUTPUTS = ["clientSecret"] as const;


function isStringArray(value: unknown): value is string[] {
    return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function validRedirectUriProblem(uri: string): string | undefined {
    if (uri.includes(";")) {
        return `"${uri}" contains ";", which the API uses as the list separator`;
    }
    let url: URL;
    try {
        url = new URL(uri);
    } catch {
        return `"${uri}" is not an absolute URL`;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
        return `"${uri}" must use http or https`;
    }
    if (url.hash !== "") {
        return `"${uri}" must not contain a fragment`;
    }
    return undefined;
}

/**
 * Validates inputs and fills in defaults. Values still unknown during preview are passed through unchecked.
 * Pure: tests call it directly.
 */
export function checkRamOAuthAppInputs(news: RamOAuthAppRawInputs): { inputs: RamOAuthAppInputs; failures: CheckFailure[] } {
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    const known = isKnown;

    const appName = news.appName;
    if (appName === undefined || appName === "") {
        fail("appName", "appName is required: up to 64 letters, digits, '.', '_' or '-', unique in the account");
    } else if (known(appName) && (typeof appName !== "string" || !APP_NAME_PATTERN.test(appName))) {
        fail("appName", `appName "${String(appName)}" must be 1-64 letters, digits, '.', '_' or '-'`);
    }

    const appType = news.appType ?? DEFAULT_RAM_OAUTH_APP_TYPE;
    if (known(appType) && !RAM_OAUTH_APP_TYPES.includes(appType)) {
        fail(
            "appType",
            `appType "${String(appType)}" is not allowed: use one of ${RAM_OAUTH_APP_TYPES.join(", ")} ` +
                "(the OpenAPI MCP server accepts only web and native applications)",
        );
    }

    let displayName = news.displayName;
    if (displayName === undefined || displayName === "") {
        displayName = typeof appName === "string" ? appName.slice(0, DISPLAY_NAME_MAX) : appName;
    } else if (known(displayName) && (typeof displayName !== "string" || [...displayName].length > DISPLAY_NAME_MAX)) {
        fail("displayName", `displayName must be at most ${DISPLAY_NAME_MAX} characters`);
    }

    const accessTokenValidity = news.accessTokenValidity ?? ACCESS_TOKEN_VALIDITY_RANGE.standard;
    if (
        known(accessTokenValidity) &&
        (!Number.isInteger(accessTokenValidity) ||
            accessTokenValidity < ACCESS_TOKEN_VALIDITY_RANGE.min ||
            accessTokenValidity > ACCESS_TOKEN_VALIDITY_RANGE.max)
    ) {
        fail(
            "accessTokenValidity",
            `accessTokenValidity must be an integer number of seconds from ${ACCESS_TOKEN_VALIDITY_RANGE.min} to ${ACCESS_TOKEN_VALIDITY_RANGE.max}, got ${String(accessTokenValidity)}`,
        );
    }

    const typeForDefaults: RamOAuthAppType = RAM_OAUTH_APP_TYPES.includes(appType) ? appType : DEFAULT_RAM_OAUTH_APP_TYPE;
    const refreshTokenValidity = news.refreshTokenValidity ?? DEFAULT_REFRESH_TOKEN_VALIDITY[typeForDefaults];
    if (
        known(refreshTokenValidity) &&
        (!Number.isInteger(refreshTokenValidity) ||
            refreshTokenValidity < REFRESH_TOKEN_VALIDITY_RANGE.min ||
            refreshTokenValidity > REFRESH_TOKEN_VALIDITY_RANGE.max)
    ) {
        fail(
            "refreshTokenValidity",
            `refreshTokenValidity must be an integer number of seconds from ${REFRESH_TOKEN_VALIDITY_RANGE.min} to ${REFRESH_TOKEN_VALIDITY_RANGE.max}, got ${String(refreshTokenValidity)}`,
        );
    }

    let redirectUris = news.redirectUris;
    if (redirectUris === undefined || (Array.isArray(redirectUris) && redirectUris.length === 0)) {
        fail("redirectUris", "redirectUris needs at least one URL, e.g. <CONSOLE_API_URL>/console/api/mcp/oauth/callback for Dify");
        redirectUris = [];
    } else if (!containsUnknown(redirectUris)) {
        if (!isStringArray(redirectUris)) {
            fail("redirectUris", "redirectUris must be a list of URLs");
        } else {
            for (const uri of redirectUris) {
                const problem = validRedirectUriProblem(uri);
                if (problem) {
                    fail("redirectUris", `redirectUris: ${problem}`);
                }
            }
            redirectUris = sortedSet(redirectUris);
        }
    }

    let scopes = news.scopes ?? [OPENID_SCOPE, MCP_SERVER_SCOPE];
    if (!containsUnknown(scopes)) {
        if (!isStringArray(scopes) || scopes.some((scope) => scope === "" || scope.includes(";"))) {
            fail("scopes", "scopes must be a list of non-empty scope names without ';'");
        } else {
            if (!scopes.includes(MCP_SERVER_SCOPE)) {
                fail("scopes", `scopes must include "${MCP_SERVER_SCOPE}" (required by the OpenAPI MCP server), got [${scopes.join(", ")}]`);
            }
            scopes = sortedSet([OPENID_SCOPE, ...scopes]);
        }
    }

    let requiredScopes = news.requiredScopes ?? [MCP_SERVER_SCOPE];
    if (!containsUnknown(requiredScopes)) {
        if (!isStringArray(requiredScopes)) {
            fail("requiredScopes", "requiredScopes must be a list of scope names");
        } else {
            requiredScopes = sortedSet(requiredScopes);
            if (!containsUnknown(scopes) && isStringArray(scopes)) {
                const extra = requiredScopes.filter((scope) => !(scopes as string[]).includes(scope));
                if (extra.length > 0) {
                    fail("requiredScopes", `requiredScopes must be a subset of scopes; not in scopes: ${extra.join(", ")}`);
                }
            }
        }
    }

    const protocolVersion = news.protocolVersion ?? RAM_OAUTH_PROTOCOL_VERSION;
    if (known(protocolVersion) && protocolVersion !== RAM_OAUTH_PROTOCOL_VERSION) {
        fail("protocolVersion", `protocolVersion must be "${RAM_OAUTH_PROTOCOL_VERSION}" (the MCP server's custom OAuth needs OAuth 2.1), got "${String(protocolVersion)}"`);
    }

    const createSecret = news.createSecret ?? typeForDefaults === "WebApp";
    if (known(createSecret) && typeof createSecret !== "boolean") {
        fail("createSecret", "createSecret must be true or false");
    }

    const endpoint = news.endpoint ?? IMS_DEFAULT_ENDPOINT;
    if (known(endpoint)) {
        const problem = typeof endpoint === "string" ? endpointProblem(endpoint) : "endpoint must be a string";
        if (problem) {
            fail("endpoint", `endpoint: ${problem}`);
        }
    }

    return {
        inputs: {
            appName: appName as string,
            displayName: displayName as string,
            appType,
            accessTokenValidity,
            refreshTokenValidity,
            redirectUris,
            scopes,
            requiredScopes,
            protocolVersion,
            createSecret,
            endpoint,
        },
        failures,
    };
}

/** Properties whose change needs a new application (the API cannot update them). */
const REPLACE_PROPERTIES = ["appName", "appType", "protocolVersion"] as const;
/** Properties UpdateApplication changes (one call sends them all). */
const UPDATE_PROPERTIES = ["displayName", "accessTokenValidity", "refreshTokenValidity", "redirectUris", "scopes", "requiredScopes"] as const;
// Compared as sets. An array, not a Set: Pulumi's closure serializer does not revive module-level Sets.
const SET_PROPERTIES: readonly string[] = ["redirectUris", "scopes", "requiredScopes"];

type ComparedProperty = (typeof REPLACE_PROPERTIES)[number] | (typeof UPDATE_PROPERTIES)[number] | "createSecret" | "endpoint";

/** Properties whose desired value differs from the stored effective value. */
export function changedRamOAuthAppProperties(olds: Partial<RamOAuthAppOutputs>, news: RamOAuthAppInputs): ComparedProperty[] {
    const properties: ComparedProperty[] = [...REPLACE_PROPERTIES, ...UPDATE_PROPERTIES, "createSecret", "endpoint"];
    return properties.filter((property) => {
        const desired: unknown = news[property];
        const stored: unknown = olds[property];
        if (containsUnknown(desired)) {
            return true;
        }
        if (SET_PROPERTIES.includes(property)) {
            return !(isStringArray(stored) && isStringArray(desired) && sameSet(stored, desired));
        }
        return desired !== stored;
    });
}

/**
 * Diff of the stored outputs (effective settings) against the checked inputs. Name, type and protocol
 * version replace the app; when the name stays the same the old app must go first (names are unique).
 * The endpoint only says how to reach the API, so it updates in place without an API call.
 */
export function diffRamOAuthApp(olds: Partial<RamOAuthAppOutputs>, news: RamOAuthAppInputs): pulumi.dynamic.DiffResult {
    const changed = changedRamOAuthAppProperties(olds, news);
    const replaces = changed.filter((property) => (REPLACE_PROPERTIES as readonly string[]).includes(property));
    return {
        changes: changed.length > 0,
        replaces,
        deleteBeforeReplace: replaces.length > 0 && !replaces.includes("appName"),
    };
}

function joinList(values: readonly string[]): string {
    return values.join(";");
}

/** Merges what the API reports with the desired inputs (fields the API leaves out keep the desired value). */
function outputsFromApplication(app: ImsApplication | undefined, inputs: RamOAuthAppInputs, extra: Partial<RamOAuthAppOutputs>): RamOAuthAppOutputs {
    const scopes = app?.DelegatedScope?.PredefinedScopes?.PredefinedScope;
    const outputs: RamOAuthAppOutputs = {
        ...inputs,
        ...extra,
        appId: app?.AppId ?? extra.appId ?? "",
    };
    if (app) {
        outputs.appName = app.AppName ?? inputs.appName;
        outputs.displayName = app.DisplayName ?? inputs.displayName;
        outputs.appType = (app.AppType as RamOAuthAppType) ?? inputs.appType;
        outputs.accessTokenValidity = app.AccessTokenValidity ?? inputs.accessTokenValidity;
        outputs.refreshTokenValidity = app.RefreshTokenValidity ?? inputs.refreshTokenValidity;
        outputs.redirectUris = app.RedirectUris?.RedirectUri ? sortedSet(app.RedirectUris.RedirectUri) : inputs.redirectUris;
        outputs.scopes = scopes ? sortedSet(scopes.map((scope) => scope.Name)) : inputs.scopes;
        outputs.requiredScopes = scopes ? sortedSet(scopes.filter((scope) => scope.Required).map((scope) => scope.Name)) : inputs.requiredScopes;
        // UNCONFIRMED that the API reports ProtocolVersion; keep the known value when it does not.
        outputs.protocolVersion = app.ProtocolVersion ?? inputs.protocolVersion;
        if (app.AccountId !== undefined) outputs.accountId = app.AccountId;
        if (app.IsMultiTenant !== undefined) outputs.isMultiTenant = app.IsMultiTenant;
        if (app.SecretRequired !== undefined) outputs.secretRequired = app.SecretRequired;
    }
    // The engine's dynamic-provider host converts outputs with protobuf's Struct.fromJavaScript, which throws
    // "Unexpected struct type" on an undefined value (e.g. no clientSecret on a NativeApp).
    const record = outputs as unknown as Record<string, unknown>;
    for (const key of OPTIONAL_OUTPUTS) {
        record[key] ??= null;
    }
    for (const key of Object.keys(record)) {
        if (record[key] === undefined) {
            delete record[key];
        }
    }
    return outputs;
}

function inputsFromOutputs(outputs: RamOAuthAppOutputs): RamOAuthAppInputs {
    return {
        appName: outputs.appName,
        displayName: outputs.displayName,
        appType: outputs.appType,
        accessTokenValidity: outputs.accessTokenValidity,
        refreshTokenValidity: outputs.refreshTokenValidity,
        redirectUris: outputs.redirectUris,
        scopes: outputs.scopes,
        requiredScopes: outputs.requiredScopes,
        protocolVersion: outputs.protocolVersion,
        createSecret: outputs.createSecret,
        endpoint: outputs.endpoint,
    };
}

function imsFor(endpoint: string): ImsApi {
    return imsApi(createAlibabaApiClient({ endpoint }));
}

/**
 * CreateApplication has no idempotency token. When a retried create (after a 5xx or a dropped connection)
 * is answered "already exists", the first attempt most likely created the app: adopt it by its unique name.
 */
async function createApplicationOnce(ims: ImsApi, inputs: RamOAuthAppInputs): Promise<ImsApplication> {
    try {
        return await ims.createApplication({
            AppName: inputs.appName,
            DisplayName: inputs.displayName,
            AppType: inputs.appType,
            AccessTokenValidity: inputs.accessTokenValidity,
            RefreshTokenValidity: inputs.refreshTokenValidity,
            RedirectUris: joinList(inputs.redirectUris),
            PredefinedScopes: joinList(inputs.scopes),
            RequiredScopes: joinList(inputs.requiredScopes),
            ProtocolVersion: inputs.protocolVersion,
            // Not in the SDK model; aliyun-cli sends it for its working MCP app. UNCONFIRMED whether required.
            GrantTypes: ["authorization_code", "refresh_token"],
        });
    } catch (err) {
        const ambiguous = isAlibabaApiError(err) && err.retriedAfter.some((code) => !code.includes("Throttling"));
        if (ambiguous && isApiErrorCode(err, "EntityAlreadyExists")) {
            const existing = (await ims.listApplications()).find((app) => app.AppName === inputs.appName);
            if (existing) {
                return existing;
            }
        }
        if (isApiErrorCode(err, "EntityAlreadyExists")) {
            throw new Error(
                `${err.message}. An application named "${inputs.appName}" already exists in this account: ` +
                    "choose another appName or delete the existing application.",
            );
        }
        throw err;
    }
}

/** The dynamic provider. Every method builds its own API client; nothing is kept between calls. */
export const ramOAuthApplicationProvider: pulumi.dynamic.ResourceProvider<RamOAuthAppRawInputs, RamOAuthAppOutputs> = {
    async check(_olds: RamOAuthAppRawInputs, news: RamOAuthAppRawInputs) {
        const { inputs, failures } = checkRamOAuthAppInputs(news);
        return { inputs: { ...news, ...inputs }, failures };
    },

    async diff(_id: string, olds: RamOAuthAppOutputs, news: RamOAuthAppRawInputs) {
        return diffRamOAuthApp(olds, checkRamOAuthAppInputs(news).inputs);
    },

    async create(raw: RamOAuthAppRawInputs) {
        const inputs = checkRamOAuthAppInputs(raw).inputs;
        const ims = imsFor(inputs.endpoint);
        const app = await createApplicationOnce(ims, inputs);
        const extra: Partial<RamOAuthAppOutputs> = {};
        if (inputs.createSecret) {
            try {
                const secret = await ims.createAppSecret(app.AppId);
                extra.clientSecretId = secret.AppSecretId;
                extra.clientSecret = secret.AppSecretValue;
            } catch (err) {
                // Keep create transactional: an app without the secret the user asked for is removed again.
                const removed = await ims.deleteApplication(app.AppId).then(
                    () => true,
                    () => false,
                );
                if (!removed && err instanceof Error) {
                    err.message += ` (application ${app.AppId} "${inputs.appName}" was created but could not be removed: delete it in the RAM console)`;
                }
                throw err;
            }
        }
        return { id: app.AppId, outs: outputsFromApplication(app, inputs, extra) };
    },

    // ReadResult types `inputs` as the outputs type; ours are the checked inputs, hence the untyped result.
    async read(id: string, props?: RamOAuthAppOutputs): Promise<pulumi.dynamic.ReadResult> {
        const old = props ?? ({} as Partial<RamOAuthAppOutputs>);
        const endpoint = old.endpoint ?? IMS_DEFAULT_ENDPOINT;
        let app: ImsApplication;
        try {
            app = await imsFor(endpoint).getApplication(id);
        } catch (err) {
            if (isApiErrorCode(err, IMS_APPLICATION_NOT_FOUND)) {
                // An empty id tells the engine the resource is gone (refresh drops it from the state).
                return { id: "" };
            }
            throw err;
        }
        const base = checkRamOAuthAppInputs({ ...old, appName: old.appName ?? app.AppName, endpoint }).inputs;
        const outputs = outputsFromApplication(app, base, {
            clientSecretId: old.clientSecretId,
            clientSecret: old.clientSecret,
        });
        // Read stays one API call: the secret is not re-read (AppSecretValue is only returned at creation).
        return { id, props: outputs, inputs: inputsFromOutputs(outputs) };
    },

    async update(id: string, olds: RamOAuthAppOutputs, raw: RamOAuthAppRawInputs) {
        const inputs = checkRamOAuthAppInputs(raw).inputs;
        const changed = changedRamOAuthAppProperties(olds, inputs);
        const ims = imsFor(inputs.endpoint);
        let app: ImsApplication | undefined;
        if (changed.some((property) => (UPDATE_PROPERTIES as readonly string[]).includes(property))) {
            // One call with every updatable setting: the New* lists overwrite whole sets anyway.
            app = await ims.updateApplication({
                AppId: id,
                NewDisplayName: inputs.displayName,
                NewAccessTokenValidity: inputs.accessTokenValidity,
                NewRefreshTokenValidity: inputs.refreshTokenValidity,
                NewRedirectUris: joinList(inputs.redirectUris),
                NewPredefinedScopes: joinList(inputs.scopes),
                NewRequiredScopes: joinList(inputs.requiredScopes),
            });
        }
        const extra: Partial<RamOAuthAppOutputs> = {
            appId: id,
            accountId: olds.accountId,
            isMultiTenant: olds.isMultiTenant,
            secretRequired: olds.secretRequired,
            clientSecretId: olds.clientSecretId,
            clientSecret: olds.clientSecret,
        };
        if (inputs.createSecret && !olds.clientSecretId) {
            const secret = await ims.createAppSecret(id);
            extra.clientSecretId = secret.AppSecretId;
            extra.clientSecret = secret.AppSecretValue;
        } else if (!inputs.createSecret && olds.clientSecretId) {
            await ims.deleteAppSecret(id, olds.clientSecretId).catch((err: unknown) => {
                if (!isApiErrorCode(err, "EntityNotExist")) {
                    throw err;
                }
            });
            extra.clientSecretId = undefined;
            extra.clientSecret = undefined;
        }
        // UpdateApplication returns the application; when it does not, the desired settings are the effective ones.
        return { outs: outputsFromApplication(app, inputs, extra) };
    },

    async delete(id: string, props: RamOAuthAppOutputs) {
        try {
            // Deleting the application deletes its AppSecrets with it.
            await imsFor(props.endpoint ?? IMS_DEFAULT_ENDPOINT).deleteApplication(id);
        } catch (err) {
            if (!isApiErrorCode(err, IMS_APPLICATION_NOT_FOUND)) {
                throw err;
            }
        }
    },
};

export interface RamOAuthApplicationArgs {
    /** Unique in the account: up to 64 letters, digits, '.', '_' or '-'. Changing it replaces the app. */
    appName: pulumi.Input<string>;
    /** Shown on the consent page; up to 24 characters. Default: appName (truncated). */
    displayName?: pulumi.Input<string>;
    /** `NativeApp` (default, PKCE without secret) or `WebApp`. Changing it replaces the app. */
    appType?: pulumi.Input<RamOAuthAppType>;
    /** Seconds, 900–10800. Default 3600. */
    accessTokenValidity?: pulumi.Input<number>;
    /** Seconds, 7200–31536000. Default: 2592000 (WebApp) / 7776000 (NativeApp). */
    refreshTokenValidity?: pulumi.Input<number>;
    /** OAuth callback URLs. Default: Dify's callback derived from `consoleApiUrl`. */
    redirectUris?: pulumi.Input<pulumi.Input<string>[]>;
    /** Dify's CONSOLE_API_URL (e.g. `http://203.0.113.10`); used when `redirectUris` is not given. */
    consoleApiUrl?: pulumi.Input<string>;
    /** Scopes; must include `/acs/mcp-server`; `openid` is always added. Default: openid, /acs/mcp-server. */
    scopes?: pulumi.Input<pulumi.Input<string>[]>;
    /** Scopes the user cannot untick at consent; a subset of scopes. Default: /acs/mcp-server. */
    requiredScopes?: pulumi.Input<pulumi.Input<string>[]>;
    /** Create an AppSecret (client secret). Default: true for WebApp, false for NativeApp. */
    createSecret?: pulumi.Input<boolean>;
    /** Ims endpoint host or URL. Default `ims.aliyuncs.com`. */
    endpoint?: pulumi.Input<string>;
}

/**
 * A RAM OAuth 2.1 application (Ims CreateApplication). Credentials come from the Alibaba Cloud default
 * credential chain of the machine running `pulumi`, never from inputs.
 */
export class RamOAuthApplication extends pulumi.dynamic.Resource {
    /** The OAuth client id (AppId). */
    declare public readonly appId: pulumi.Output<string>;
    declare public readonly appName: pulumi.Output<string>;
    declare public readonly displayName: pulumi.Output<string>;
    declare public readonly appType: pulumi.Output<RamOAuthAppType>;
    declare public readonly accessTokenValidity: pulumi.Output<number>;
    declare public readonly refreshTokenValidity: pulumi.Output<number>;
    declare public readonly redirectUris: pulumi.Output<string[]>;
    declare public readonly scopes: pulumi.Output<string[]>;
    declare public readonly requiredScopes: pulumi.Output<string[]>;
    declare public readonly protocolVersion: pulumi.Output<string>;
    declare public readonly createSecret: pulumi.Output<boolean>;
    declare public readonly endpoint: pulumi.Output<string>;
    declare public readonly accountId: pulumi.Output<string | null | undefined>;
    declare public readonly isMultiTenant: pulumi.Output<boolean | null | undefined>;
    declare public readonly secretRequired: pulumi.Output<boolean | null | undefined>;
    declare public readonly clientSecretId: pulumi.Output<string | null | undefined>;
    /** The OAuth client secret when `createSecret`; always a Pulumi secret. */
    declare public readonly clientSecret: pulumi.Output<string | null | undefined>;

    constructor(name: string, args: RamOAuthApplicationArgs, opts?: pulumi.CustomResourceOptions) {
        const redirectUris =
            args.redirectUris ??
            (args.consoleApiUrl !== undefined
                ? pulumi.output(args.consoleApiUrl).apply((url) => [difyMcpOAuthCallbackUrl(url)])
                : undefined);
        if (redirectUris === undefined) {
            throw new Error(`RamOAuthApplication ${name}: give redirectUris or consoleApiUrl`);
        }
        super(
            ramOAuthApplicationProvider,
            name,
            {
                appName: args.appName,
                displayName: args.displayName,
                appType: args.appType,
                accessTokenValidity: args.accessTokenValidity,
                refreshTokenValidity: args.refreshTokenValidity,
                redirectUris,
                scopes: args.scopes,
                requiredScopes: args.requiredScopes,
                protocolVersion: RAM_OAUTH_PROTOCOL_VERSION,
                createSecret: args.createSecret,
                endpoint: args.endpoint,
                appId: undefined,
                accountId: undefined,
                isMultiTenant: undefined,
                secretRequired: undefined,
                clientSecretId: undefined,
                clientSecret: undefined,
            },
            {
                ...opts,
                additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...RAM_OAUTH_APP_SECRET_OUTPUTS],
            },
            "alibaba",
            "RamOAuthApplication",
        );
    }
}

