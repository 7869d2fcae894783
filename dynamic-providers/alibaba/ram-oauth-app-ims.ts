// The Ims side of the RAM OAuth application provider (ram-oauth-app.ts): the requests built from its checked
// inputs, the outputs read back from an application, a create that adopts what a retried call already made, and
// the one AppSecret that `createSecret` asks for. Nothing is kept between calls.
import { createAlibabaApiClient, failedWriteMayHaveApplied, isAlibabaApiError, isApiErrorCode, retriesMayHaveRepeated } from "./client";
import { sortedSet } from "../engine/diff";
import { CreatedAppSecret, ImsApi, ImsApplication, imsApi } from "./ims-api";
import { RAM_OAUTH_APP_MULTI_TENANT, type RamOAuthAppType, ramOAuthAppSecretRequired } from "../../rules/ram-oauth-app";
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

/** The settings the program does not expose but always sets: never multi-tenant; a secret required when there is one. */
export function enforcedSettings(inputs: Pick<RamOAuthAppInputs, "appType" | "createSecret">): { isMultiTenant: boolean; secretRequired: boolean } {
    return { isMultiTenant: RAM_OAUTH_APP_MULTI_TENANT, secretRequired: ramOAuthAppSecretRequired(inputs.appType, inputs.createSecret) };
}

/**
 * CreateApplication has no idempotency token. When a retried create (after a 5xx or a dropped connection)
 * is answered "already exists", the first attempt most likely created the app: adopt it by its unique name.
 * Sends every parameter of the SDK's request model but none beyond it (the grant types are the API's own).
 */
export async function createApplicationOnce(ims: ImsApi, inputs: RamOAuthAppInputs): Promise<ImsApplication> {
    const enforced = enforcedSettings(inputs);
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
            IsMultiTenant: enforced.isMultiTenant,
            SecretRequired: enforced.secretRequired,
        });
    } catch (err) {
        const ambiguous = isAlibabaApiError(err) && retriesMayHaveRepeated(err.retriedAfter);
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

/**
 * One UpdateApplication with every updatable setting, the enforced ones included (NewIsMultiTenant=false makes
 * an app created multi-tenant private): the New* lists overwrite whole sets anyway.
 */
export function updateApplication(ims: ImsApi, id: string, inputs: RamOAuthAppInputs): Promise<ImsApplication | undefined> {
    const enforced = enforcedSettings(inputs);
    return ims.updateApplication({
        AppId: id,
        NewDisplayName: inputs.displayName,
        NewAccessTokenValidity: inputs.accessTokenValidity,
        NewRefreshTokenValidity: inputs.refreshTokenValidity,
        NewRedirectUris: joinList(inputs.redirectUris),
        NewPredefinedScopes: joinList(inputs.scopes),
        NewRequiredScopes: joinList(inputs.requiredScopes),
        NewIsMultiTenant: enforced.isMultiTenant,
        NewSecretRequired: enforced.secretRequired,
    });
}

/** Deletes these secrets of the app; returns the ids that could not be deleted (one already gone counts as deleted). */
async function deleteAppSecrets(ims: ImsApi, appId: string, secretIds: readonly string[]): Promise<string[]> {
    const left: string[] = [];
    for (const secretId of secretIds) {
        await ims.deleteAppSecret(appId, secretId).catch((err: unknown) => {
            if (!isApiErrorCode(err, "EntityNotExist")) {
                left.push(secretId);
            }
        });
    }
    return left;
}

/**
 * Deletes the app's secrets that are not in `before` (nor `keep`). Returns what may be left over, in words, or
 * undefined when nothing is.
 */
async function removeNewSecrets(ims: ImsApi, appId: string, before: readonly string[], keep?: string): Promise<string | undefined> {
    let ids: string[];
    try {
        ids = (await ims.listAppSecretIds(appId)).map((secret) => secret.AppSecretId).filter((id) => !before.includes(id) && id !== keep);
    } catch (err) {
        return `the AppSecrets of application ${appId} could not be listed (${(err as Error).message}): look for one too many in the RAM console`;
    }
    const left = await deleteAppSecrets(ims, appId, ids);
    return left.length > 0 ? `AppSecrets ${left.join(", ")} of application ${appId} could not be removed: delete them in the RAM console` : undefined;
}

/**
 * Creates one AppSecret and leaves no other behind. CreateAppSecret has no idempotency token and the client
 * retries it after a 5xx or a dropped connection, so an attempt whose answer was lost may have made a secret
 * nobody knows (and that stays valid). The ids listed first tell which secrets are new: after a create that was
 * retried that way, every new secret but the one answered is deleted; after a create that failed but may have
 * been carried out, every new secret is, and the failure is reported (the next run starts clean). Either way
 * the app holds exactly the secret returned, or none of this call's. `existing`: the app's secret ids when
 * they are known without asking (a just-created app has none), else they are listed.
 */
export async function createAppSecretOnce(ims: ImsApi, appId: string, existing?: readonly string[]): Promise<SecretOutputs> {
    const before = existing ?? (await ims.listAppSecretIds(appId)).map((secret) => secret.AppSecretId);
    let created: CreatedAppSecret;
    try {
        created = await ims.createAppSecret(appId);
    } catch (err) {
        const leftover = failedWriteMayHaveApplied(err) ? await removeNewSecrets(ims, appId, before) : undefined;
        if (leftover && err instanceof Error) {
            err.message += ` (${leftover})`;
        }
        throw err;
    }
    const { secret, retriedAfter } = created;
    if (retriesMayHaveRepeated(retriedAfter)) {
        const leftover = await removeNewSecrets(ims, appId, before, secret.AppSecretId);
        if (leftover) {
            // Not keeping a secret beside others we could not remove: this one goes too, and the run fails.
            const notRemoved = await deleteAppSecrets(ims, appId, [secret.AppSecretId]);
            throw new Error(
                `Ims.CreateAppSecret was retried (after ${retriedAfter.join(", ")}) and may have made more than one secret; ${leftover}` +
                    (notRemoved.length > 0 ? `, and AppSecret ${secret.AppSecretId} as well` : ""),
            );
        }
    }
    return { clientSecretId: secret.AppSecretId, clientSecret: secret.AppSecretValue };
}

/**
 * The AppSecret of a just-created application. Keeps create transactional: when the secret the user asked for
 * cannot be made, the application is removed again (its secrets go with it). The app was made by this create
 * (or, adopted, by its first attempt), so it has no secret yet: nothing to list first.
 */
export async function createSecretOrRemoveApp(ims: ImsApi, app: ImsApplication, appName: string): Promise<SecretOutputs> {
    try {
        return await createAppSecretOnce(ims, app.AppId, []);
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
        return createAppSecretOnce(ims, id);
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
        // In the SDK's response models; an answer without it keeps the known value.
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
