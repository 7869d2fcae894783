// Typed calls of the RAM OAuth application API (product Ims, version 2019-08-15, RPC style). Parameter and
// field names are the wire names used by `@alicloud/ims20190815`; all parameters travel in the query string.
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
    /** Not in the SDK's response model; returned by the console API. UNCONFIRMED that GetApplication has it. */
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
    IsMultiTenant?: boolean;
    SecretRequired?: boolean;
    ProtocolVersion?: string;
    /** Undocumented (not in the SDK model); aliyun-cli sends it for its MCP app. Flattened to GrantTypes.N. */
    GrantTypes?: string[];
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
        createAppSecret: async (appId: string) =>
            (await rpc<{ AppSecret: ImsAppSecret }>(client, "CreateAppSecret", { AppId: appId })).body.AppSecret,
        deleteAppSecret: async (appId: string, appSecretId: string): Promise<void> => {
            await rpc(client, "DeleteAppSecret", { AppId: appId, AppSecretId: appSecretId });
        },
    };
}

export type ImsApi = ReturnType<typeof imsApi>;
