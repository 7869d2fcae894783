// RAM OAuth 2.1 application (Ims 2019-08-15), the "Custom OAuth" client of the OpenAPI MCP server that Dify
// signs in with. There is no such resource in @pulumi/alicloud, hence this dynamic provider. What the app may be
// is rules/ram-oauth-app.ts; the Ims requests and the outputs read back are ram-oauth-app-ims.ts.
import * as pulumi from "@pulumi/pulumi";
import { endpointProblem, isApiErrorCode } from "./client";
import { type CheckFailure, type CheckedInputs, isStringArray } from "../engine/check";
import { sameSet, sortedSet } from "../engine/diff";
import { containsUnknown, isKnown } from "../engine/unknown";
import { IMS_APPLICATION_NOT_FOUND, IMS_DEFAULT_ENDPOINT, ImsApplication } from "./ims-api";
import {
    createApplicationOnce,
    createSecretOrRemoveApp,
    enforcedSettings,
    imsFor,
    inputsFromOutputs,
    outputsFromApplication,
    reconcileSecret,
    updateApplication,
} from "./ram-oauth-app-ims";
import {
    ACCESS_TOKEN_VALIDITY_RANGE,
    DEFAULT_RAM_OAUTH_APP_TYPE,
    DEFAULT_REFRESH_TOKEN_VALIDITY,
    MCP_SERVER_SCOPE,
    RAM_APP_NAME_PATTERN,
    RAM_APP_NAME_RULE,
    RAM_OAUTH_APP_TYPES,
    RAM_OAUTH_PROTOCOL_VERSION,
    REFRESH_TOKEN_VALIDITY_RANGE,
    RamOAuthAppType,
} from "../../rules/ram-oauth-app";
import { difyMcpOAuthCallbackUrl } from "../../rules/oauth-callback";

/** RAM's default scope, which cannot be removed; always part of the desired set so diffs stay stable. */
const OPENID_SCOPE = "openid";
const DISPLAY_NAME_MAX = 24;

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
    // The optional outputs are null (not left out) when there is no value: see OPTIONAL_OUTPUTS (ram-oauth-app-ims.ts).
    accountId?: string | null;
    /** As the API reports it; always false for apps this provider made or updated (enforcedSettings). */
    isMultiTenant?: boolean | null;
    /** As the API reports it: true for a WebApp, else whether createSecret. */
    secretRequired?: boolean | null;
    /** Present when createSecret: the AppSecretId, and the client secret itself (a Pulumi secret). */
    clientSecretId?: string | null;
    clientSecret?: string | null;
}

/** Output properties the Resource class marks secret. */
export const RAM_OAUTH_APP_SECRET_OUTPUTS = ["clientSecret"] as const;

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
export function checkRamOAuthAppInputs(news: RamOAuthAppRawInputs): CheckedInputs<RamOAuthAppInputs> {
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    const known = isKnown;
    const checkValidity = (property: string, seconds: unknown, range: { min: number; max: number }) => {
        if (known(seconds) && !(Number.isInteger(seconds) && (seconds as number) >= range.min && (seconds as number) <= range.max)) {
            fail(property, `${property} must be an integer number of seconds from ${range.min} to ${range.max}, got ${String(seconds)}`);
        }
    };

    const appName = news.appName;
    if (appName === undefined || appName === "") {
        fail("appName", `appName is required: ${RAM_APP_NAME_RULE}, unique in the account`);
    } else if (known(appName) && (typeof appName !== "string" || !RAM_APP_NAME_PATTERN.test(appName))) {
        fail("appName", `appName "${String(appName)}" must be ${RAM_APP_NAME_RULE}`);
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
    checkValidity("accessTokenValidity", accessTokenValidity, ACCESS_TOKEN_VALIDITY_RANGE);

    const typeForDefaults: RamOAuthAppType = RAM_OAUTH_APP_TYPES.includes(appType) ? appType : DEFAULT_RAM_OAUTH_APP_TYPE;
    const refreshTokenValidity = news.refreshTokenValidity ?? DEFAULT_REFRESH_TOKEN_VALIDITY[typeForDefaults];
    checkValidity("refreshTokenValidity", refreshTokenValidity, REFRESH_TOKEN_VALIDITY_RANGE);

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
/**
 * Properties UpdateApplication changes (one call sends them all). The last two are outputs, not inputs: the
 * settings the provider enforces (enforcedSettings), compared with what the API last reported.
 */
const UPDATE_PROPERTIES = ["displayName", "accessTokenValidity", "refreshTokenValidity", "redirectUris", "scopes", "requiredScopes", "isMultiTenant", "secretRequired"] as const;
// Compared as sets. An array, not a Set: Pulumi's closure serializer does not revive module-level Sets.
const SET_PROPERTIES: readonly string[] = ["redirectUris", "scopes", "requiredScopes"];
// Reported by the API: a stored null (not reported) is not drift.
const ENFORCED_PROPERTIES: readonly string[] = ["isMultiTenant", "secretRequired"];

type ComparedProperty = (typeof REPLACE_PROPERTIES)[number] | (typeof UPDATE_PROPERTIES)[number] | "createSecret" | "endpoint";

/** Properties whose desired value differs from the stored effective value. */
function changedRamOAuthAppProperties(olds: Partial<RamOAuthAppOutputs>, news: RamOAuthAppInputs): ComparedProperty[] {
    const properties: ComparedProperty[] = [...REPLACE_PROPERTIES, ...UPDATE_PROPERTIES, "createSecret", "endpoint"];
    const desiredValues: RamOAuthAppInputs & ReturnType<typeof enforcedSettings> = { ...news, ...enforcedSettings(news) };
    return properties.filter((property) => {
        const desired: unknown = desiredValues[property];
        const stored: unknown = olds[property];
        if (containsUnknown(desired)) {
            return true;
        }
        if (ENFORCED_PROPERTIES.includes(property)) {
            return typeof stored === "boolean" && stored !== desired;
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
 * The endpoint only says how to reach the API, so it updates in place without an API call. An app reported
 * multi-tenant (every NativeApp made before IsMultiTenant=false was sent), or whose SecretRequired does not
 * match, is updated in place.
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
        const secret = inputs.createSecret ? await createSecretOrRemoveApp(ims, app, inputs.appName) : {};
        return { id: app.AppId, outs: outputsFromApplication(app, inputs, secret) };
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
        const updating = changed.some((property) => (UPDATE_PROPERTIES as readonly string[]).includes(property));
        const app = updating ? await updateApplication(ims, id, inputs) : undefined;
        const extra: Partial<RamOAuthAppOutputs> = {
            appId: id,
            accountId: olds.accountId,
            ...(updating ? enforcedSettings(inputs) : { isMultiTenant: olds.isMultiTenant, secretRequired: olds.secretRequired }),
            ...(await reconcileSecret(ims, id, inputs.createSecret, olds)),
        };
        // UpdateApplication returns the application; when it does not, the settings sent are the effective ones.
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
    /**
     * Create an AppSecret (client secret). Default: true for WebApp, false for NativeApp. A NativeApp requires
     * its secret (SecretRequired) exactly when it has one. Exactly one secret is made, even when the answer to
     * CreateAppSecret is lost and the call retried: extra secrets are deleted again.
     */
    createSecret?: pulumi.Input<boolean>;
    /** Ims endpoint host or URL. Default `ims.aliyuncs.com`. */
    endpoint?: pulumi.Input<string>;
}

/**
 * A RAM OAuth 2.1 application (Ims CreateApplication). Credentials come from the Alibaba Cloud default
 * credential chain of the machine running `pulumi`, never from inputs.
 *
 * Never multi-tenant: created with IsMultiTenant=false, so other Alibaba Cloud accounts cannot install the app.
 * A stack whose NativeApp was created before that (the API's default makes NativeApps multi-tenant) shows one
 * in-place update of this resource at its next preview, which sends UpdateApplication with NewIsMultiTenant=false.
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

