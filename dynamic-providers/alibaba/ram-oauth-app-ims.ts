// The Ims side of the RAM OAuth application provider (ram-oauth-app.ts): the requests built from its checked
// inputs, the outputs read back from an application, a create that adopts what a retried call already made, and
// the AppSecret that `createSecret` asks for. Nothing is kept between calls.
import { createAlibabaApiClient, isAlibabaApiError, isApiErrorCode } from "./client";
import { sortedSet } from "../engine/diff";
import { ImsApi, ImsApplication, imsApi } from "./ims-api";
import type { RamOAuthAppType } from "../../rules/ram-oauth-app";
import type { RamOAuthAppInputs, RamOAuthAppOutputs } from "./ram-oauth-app";

/**
 * Outputs that may have no value. They are reported as null rather than left out: during a preview the SDK
 * reads an output the engine did not report as unknown, so a NativeApp's missing clientSecret would show every
 * resource that uses it (the Dify MCP registration, and through its tools the agent app) as changing.
 */
const OPTIONAL_OUTPUTS: readonly string[] = ["accountId", "isMultiTenant", "secretRequired", "clientSecretId", "clientSecret"];

type SecretOutputs = Pick<RamOAuthAppOutputs, "clientSecretId" | "clientSecret">;

export function imsFor(endpoint: string): ImsApi {
    return imsApi(createAlibabaApiClient({ endpoint }));
}

function joinList(values: readonly string[]): string {
    return values.join(";");
}

/**
 * CreateApplication has no idempotency token. When a retried create (after a 5xx or a dropped connection)
 * is answered "already exists", the first attempt most likely created the app: adopt it by its unique name.
 */
export async function createApplicationOnce(ims: ImsApi, inputs: RamOAuthAppInputs): Promise<ImsApplication> {
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

/** One UpdateApplication with every updatable setting: the New* lists overwrite whole sets anyway. */
export function updateApplication(ims: ImsApi, id: string, inputs: RamOAuthAppInputs): Promise<ImsApplication | undefined> {
    return ims.updateApplication({
        AppId: id,
        NewDisplayName: inputs.displayName,
        NewAccessTokenValidity: inputs.accessTokenValidity,
        NewRefreshTokenValidity: inputs.refreshTokenValidity,
        NewRedirectUris: joinList(inputs.redirectUris),
        NewPredefinedScopes: joinList(inputs.scopes),
        NewRequiredScopes: joinList(inputs.requiredScopes),
    });
}

/**
 * The AppSecret of a just-created application. Keeps create transactional: when the secret the user asked for
 * cannot be made, the application is removed again.
 */
export async function createSecretOrRemoveApp(ims: ImsApi, app: ImsApplication, appName: string): Promise<SecretOutputs> {
    try {
        const secret = await ims.createAppSecret(app.AppId);
        return { clientSecretId: secret.AppSecretId, clientSecret: secret.AppSecretValue };
    } catch (err) {
        const removed = await ims.deleteApplication(app.AppId).then(
            () => true,
            () => false,
        );
        if (!removed && err instanceof Error) {
            err.message += ` (application ${app.AppId} "${appName}" was created but could not be removed: delete it in the RAM console)`;
        }
        throw err;
    }
}

/** Creates the AppSecret `createSecret` now asks for, or deletes the one it no longer wants; else keeps the old. */
export async function reconcileSecret(ims: ImsApi, id: string, createSecret: boolean, olds: SecretOutputs): Promise<SecretOutputs> {
    if (createSecret && !olds.clientSecretId) {
        const secret = await ims.createAppSecret(id);
        return { clientSecretId: secret.AppSecretId, clientSecret: secret.AppSecretValue };
    }
    if (!createSecret && olds.clientSecretId) {
        await ims.deleteAppSecret(id, olds.clientSecretId).catch((err: unknown) => {
            if (!isApiErrorCode(err, "EntityNotExist")) {
                throw err;
            }
        });
        return { clientSecretId: undefined, clientSecret: undefined };
    }
    return { clientSecretId: olds.clientSecretId, clientSecret: olds.clientSecret };
}

/** Merges what the API reports with the desired inputs (fields the API leaves out keep the desired value). */
export function outputsFromApplication(app: ImsApplication | undefined, inputs: RamOAuthAppInputs, extra: Partial<RamOAuthAppOutputs>): RamOAuthAppOutputs {
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

/** The checked inputs a read reports: the outputs without what only the API knows. */
export function inputsFromOutputs(outputs: RamOAuthAppOutputs): RamOAuthAppInputs {
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
