// Typed calls of the RAM OAuth application API (product Ims, version 2019-08-15, RPC style). Parameter and
// field names are the wire names of Alibaba's official SDK models (`@alicloud/ims20190815` 2.3.2, Python
// alibabacloud-ims20190815 3.5.0), and only parameters those models define are sent; all travel in the query.
// Signing, retries and errors are handled by `AlibabaApiClient` (alibaba-openapi-client.ts).
import { AlibabaApiClient, ApiResponse, QueryValue } from "./client";

export const IMS_VERSION = "2019-08-15";
/** Central endpoint (the SDK's "central" endpoint rule). International-site accounts may need
 * `ims.ap-southeast-1.aliyuncs.com` (what aliyun-cli uses); UNCONFIRMED whether the central one serves them. */
export const IMS_DEFAULT_ENDPOINT = "ims.aliyuncs.com";

export type ImsAppType = "WebApp" | "NativeApp" | "ServerApp";

/** `Application` as returned by CreateApplication, GetApplication, UpdateApplication and ListApplications. */
export interface ImsApplication {
    AppId: string;
    AppName: string;
    AppType: ImsAppType;
    DisplayName: string;
    AccountId?: string;
    CreateDate?: string;
    UpdateDate?: string;
    AccessTokenValidity?: number;
    RefreshTokenValidity?: number;
    IsMultiTenant?: boolean;
    SecretRequired?: boolean;
    /** In the SDK's response models of CreateApplication, GetApplication and UpdateApplication. */
    ProtocolVersion?: string;
    RedirectUris?: { RedirectUri?: string[] };
    DelegatedScope?: {
        PredefinedScopes?: { PredefinedScope?: { Name: string; Description?: string; Required?: boolean }[] };
    };
}

export interface ImsAppSecret {
    AppId: string;
    AppSecretId: string;
    AppSecretValue?: string;
    CreateDate?: string;
}

/** What CreateAppSecret answered, and the codes of attempts that were retried before (a retried create may
 *  have made a secret of its own whose answer was lost). */
export interface CreatedAppSecret {
    secret: ImsAppSecret;
    retriedAfter: readonly string[];
}

/** The parameters of CreateApplication, all that the SDK's request model defines. */
export interface CreateApplicationParams {
    AppName: string;
    DisplayName: string;
    AppType: ImsAppType;
    AccessTokenValidity?: number;
    RefreshTokenValidity?: number;
    /** `;`-separated. */
    RedirectUris?: string;
    /** `;`-separated. */
    PredefinedScopes?: string;
    /** `;`-separated subset of PredefinedScopes. */
    RequiredScopes?: string;
    /** Whether other accounts may install the app. API default: true for NativeApp and ServerApp. */
    IsMultiTenant?: boolean;
    /** Forced to true for WebApp (and ServerApp); NativeApp default false. */
    SecretRequired?: boolean;
    ProtocolVersion?: string;
}

export interface UpdateApplicationParams {
    AppId: string;
    NewDisplayName?: string;
    NewAccessTokenValidity?: number;
    NewRefreshTokenValidity?: number;
    NewRedirectUris?: string;
    /** Overwrites the whole set. */
    NewPredefinedScopes?: string;
    /** Overwrites the whole set. */
    NewRequiredScopes?: string;
    NewIsMultiTenant?: boolean;
    NewSecretRequired?: boolean;
}

/** Error code of GetApplication/DeleteApplication for an application that does not exist. */
export const IMS_APPLICATION_NOT_FOUND = "EntityNotExist.Application";

function rpc<T>(client: AlibabaApiClient, action: string, query: Record<string, QueryValue>): Promise<ApiResponse<T>> {
    return client.call<T>({
        product: "Ims",
        action,
        version: IMS_VERSION,
        style: "RPC",
        method: "POST",
        pathname: "/",
        query,
    });
}

/** Ims calls bound to one client. */
export function imsApi(client: AlibabaApiClient) {
    return {
        createApplication: async (params: CreateApplicationParams) =>
            (await rpc<{ Application: ImsApplication }>(client, "CreateApplication", { ...params })).body.Application,
        getApplication: async (appId: string) =>
            (await rpc<{ Application: ImsApplication }>(client, "GetApplication", { AppId: appId })).body.Application,
        updateApplication: async (params: UpdateApplicationParams) =>
            (await rpc<{ Application?: ImsApplication }>(client, "UpdateApplication", { ...params })).body.Application,
        deleteApplication: async (appId: string): Promise<void> => {
            await rpc(client, "DeleteApplication", { AppId: appId });
        },
        listApplications: async () =>
            (await rpc<{ Applications?: { Application?: ImsApplication[] } }>(client, "ListApplications", {})).body
                .Applications?.Application ?? [],
        createAppSecret: async (appId: string): Promise<CreatedAppSecret> => {
            const response = await rpc<{ AppSecret: ImsAppSecret }>(client, "CreateAppSecret", { AppId: appId });
            return { secret: response.body.AppSecret, retriedAfter: response.retriedAfter };
        },
        /** The app's secrets, without their values (AppSecretValue is only ever answered by CreateAppSecret). */
        listAppSecretIds: async (appId: string): Promise<ImsAppSecret[]> =>
            (await rpc<{ AppSecrets?: { AppSecret?: ImsAppSecret[] } }>(client, "ListAppSecretIds", { AppId: appId })).body.AppSecrets?.AppSecret ?? [],
        deleteAppSecret: async (appId: string, appSecretId: string): Promise<void> => {
            await rpc(client, "DeleteAppSecret", { AppId: appId, AppSecretId: appSecretId });
        },
    };
}

export type ImsApi = ReturnType<typeof imsApi>;
