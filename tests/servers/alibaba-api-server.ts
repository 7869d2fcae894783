// A local stand-in for the Alibaba Cloud APIs the providers call, listening on 127.0.0.1 only:
//   * Ims 2019-08-15 (RPC): CreateApplication, GetApplication, UpdateApplication, DeleteApplication,
//     ListApplications, CreateAppSecret, GetAppSecret, DeleteAppSecret, ListAppSecretIds, ListPredefinedScopes.
//   * OpenAPIExplorer 2024-11-30 (ROA, JSON): POST/GET/PATCH/DELETE /apimcpserver, GET /apimcpservers.
//   * Ecs 2014-05-26 (RPC), Cloud Assistant: RunCommand, DescribeInvocationResults,
//     DescribeCloudAssistantStatus, on instances the tests register (`addInstance`) whose "agent" runs each
//     script with a function of theirs (e.g. `bashRunner` of cloud-assistant-runner.ts); and disk snapshots:
//     CreateSnapshot and DescribeSnapshots, of disks the tests register (`addDisk`). Ecs requests may only
//     carry the parameters the SDK's request models (alibabacloud-ecs20140526 7.11.8) define: stricter than the
//     real API, so that a misspelt name fails a test instead of being ignored.
// Like the real gateway it verifies the ACS3-HMAC-SHA256 signature of every request (canonical request as
// built by @alicloud/openapi-core's OpenApiUtil.getAuthorization), rejects replayed nonces and stale dates,
// validates parameters and ranges, keeps state and answers with Alibaba's response and error shapes
// (RPC: {RequestId, HostId, Code, Message, Recommend}; ROA: {requestId, hostId, code, message, recommend}).
// It reads what openapi-core and the official Python SDKs send alike ("+" or %20 for a space, true or True);
// alibaba-api-server.official-sdk.test.ts drives it with the Python SDKs themselves.
// It counts every request (reads vs writes, per action, with the parameter names it carried), can inject
// throttling and 5xx answers (before or after carrying the request out: a lost answer), and lets
// tests change or delete objects out of band. Error codes marked "invented" are not confirmed by any source.
import * as crypto from "crypto";
import * as http from "http";
import { AddressInfo } from "net";

export type ApiProduct = "Ims" | "OpenAPIExplorer" | "Ecs";

export interface AlibabaApiServerOptions {
    /** The only access key pair the server accepts. */
    accessKeyId: string;
    accessKeySecret: string;
    /** Account uid used in application records and MCP URLs. */
    accountId?: string;
    /** Maximum distance between x-acs-date and the server clock. Default 900 s, as Alibaba allows 15 min. */
    maxClockSkewSeconds?: number;
    /**
     * Origin of the MCP servers' URLs (`urls.mcp`/`urls.sse`), e.g. the loopback MCP server of
     * tests/servers/mcp-oauth-server.ts, so that a real client (Dify) can connect to the URLs handed out.
     * Default: `https://<the Host the server was created through>`, as the real API answers with its own host.
     */
    mcpBaseUrl?: string;
}

/** A RAM OAuth application as an authorization server knows its client (see `AlibabaApiServer.oauthClient`). */
export interface RamOAuthClient {
    /** The AppId. */
    clientId: string;
    redirectUris: string[];
    /** The app's current secrets (any one authenticates); present only for apps that need one (WebApp, or a
     *  NativeApp with SecretRequired), and then possibly empty. Absent: a public client (PKCE only). */
    clientSecrets?: string[];
    scopes: string[];
}

export interface RecordedCall {
    product: ApiProduct | "unknown";
    action: string;
    kind: "read" | "write";
    method: string;
    path: string;
    status: number;
    /** Error code when the answer was an error. */
    code?: string;
    requestId: string;
    /** Names of the parameters the request carried (query, form body and JSON body keys), sorted; absent when
     *  the request was refused before they were read (signature, injected fault before the handler). */
    parameters?: string[];
}

export interface CallCounts {
    reads: number;
    writes: number;
    total: number;
    /** Requests per action, e.g. { CreateApplication: 1 }. */
    byAction: Record<string, number>;
    /** Requests answered with an error (signature, validation, injected faults). */
    errors: number;
}

export interface FaultInjection {
    /** `throttling`: answer `Throttling.User`; `server-error`: answer 5xx `ServiceUnavailable`/`InternalError`. */
    kind: "throttling" | "server-error";
    /** How many matching requests get the fault. */
    count: number;
    /** Only requests for these actions (default: any action). */
    actions?: string[];
    /** Status of the answer: default 400 for throttling (as Ims answers Throttling.User), 503 for server errors. */
    status?: number;
    /** server-error only: carry the request out, then answer the error (the write happened, the client does not know). */
    afterCommit?: boolean;
}

/** Ims application as stored. */
export interface StoredApplication {
    AppId: string;
    AppName: string;
    DisplayName: string;
    AppType: "WebApp" | "NativeApp" | "ServerApp";
    AccountId: string;
    CreateDate: string;
    UpdateDate: string;
    AccessTokenValidity: number;
    RefreshTokenValidity: number;
    IsMultiTenant: boolean;
    SecretRequired: boolean;
    ProtocolVersion: string;
    RedirectUris: string[];
    PredefinedScopes: string[];
    RequiredScopes: string[];
}

export interface StoredAppSecret {
    AppId: string;
    AppSecretId: string;
    AppSecretValue: string;
    CreateDate: string;
}

export interface StoredMcpApi {
    product: string;
    apiVersion: string;
    selectors: string[];
}

export interface StoredMcpServer {
    id: string;
    name: string;
    description: string;
    language: string;
    instructions: string;
    oauthClientId?: string;
    publicAccess: string;
    systemTools: string[];
    apis: StoredMcpApi[];
    createTime: string;
    updateTime: string;
    /** The host the server was created through (used in its URLs). */
    host: string;
}

/** What a registered instance's Cloud Assistant agent does with a script: run it, answer its output and exit
 *  code. `signal` (always passed by the server) aborts when the run times out (Timeout) or the server closes. A rejection is an execution
 *  exception (InvocationStatus Error). */
export type CommandRunner = (script: string, signal?: AbortSignal) => Promise<{ output: string; exitCode: number }>;

export interface CloudAssistantInstanceOptions {
    /** Whether the agent is online (heartbeating); default true. RunCommand on an offline agent answers 403
     *  InvalidInstance.NotMatch. */
    agentOnline?: boolean;
    /** Runs each script; default: output "", exit code 0. */
    run?: CommandRunner;
}

/** A RunCommand's run on its instance as stored. */
export interface StoredInvocation {
    InvokeId: string;
    CommandId: string;
    InstanceId: string;
    RegionId: string;
    Name: string;
    /** The script, decoded. */
    Script: string;
    Timeout: number;
    KeepCommand: boolean;
    InvocationStatus: "Running" | "Success" | "Failed" | "Error" | "Timeout";
    ExitCode?: number;
    /** The whole output (the API answers at most 24 KB of it). */
    Output: string;
    ErrorCode: string;
    ErrorInfo: string;
    StartTime: string;
    FinishedTime?: string;
}

export interface DiskOptions {
    /** How long a new snapshot of the disk stays "progressing"; default 300 ms. */
    snapshotMs?: number;
    /** What its snapshots end as; default "accomplished". */
    snapshotOutcome?: "accomplished" | "failed";
    /** Size in GiB, as DescribeSnapshots reports SourceDiskSize; default 100. */
    sizeGib?: number;
}

/** A snapshot as stored (CreateSnapshot's parameters, decoded). */
export interface StoredSnapshot {
    SnapshotId: string;
    SnapshotName: string;
    Description: string;
    SourceDiskId: string;
    /** Absent: kept until deleted. */
    RetentionDays?: number;
    ClientToken?: string;
    CreationTime: string;
    /** When it stops progressing (ms since the epoch), and how it ends. */
    doneAt: number;
    outcome: "accomplished" | "failed";
}

interface StoredDisk {
    id: string;
    options: Required<DiskOptions>;
}

interface StoredInstance {
    id: string;
    agentOnline: boolean;
    /** Agent version and last heartbeat: absent until the agent first comes online. */
    version?: string;
    lastHeartbeat?: string;
    lastInvoked?: string;
    invocationCount: number;
    run: CommandRunner;
}

class ApiFailure extends Error {
    constructor(
        readonly status: number,
        readonly code: string,
        message: string,
    ) {
        super(message);
    }
}

const IMS_VERSION = "2019-08-15";
const MCP_VERSION = "2024-11-30";
const ECS_VERSION = "2014-05-26";
/** Agent version reported by fake instances (a made-up but plausible Linux agent version). */
const AGENT_VERSION = "2.2.3.857";
/** RunCommand: the Base64-encoded CommandContent is at most 24 KB; DescribeInvocationResults: Output is cut at 24 KB. */
const COMMAND_CONTENT_MAX = 24 * 1024;
const OUTPUT_MAX = 24 * 1024;

/** Every parameter of the three actions' request models (SDK 7.11.8, `*_with_options`), by action. List
 *  parameters (InstanceId of RunCommand and DescribeCloudAssistantStatus, Tag, ResourceTag) arrive as `Name.N`
 *  or `Name.N.Key`. */
const ECS_PARAMETERS: Record<string, { names: string[]; lists: string[] }> = {
    RunCommand: {
        names: [
            "ClientToken", "CommandContent", "ContainerId", "ContainerName", "ContentEncoding", "Description", "EnableParameter", "Frequency",
            "KeepCommand", "Launcher", "Name", "OssOutputDelivery", "OwnerAccount", "OwnerId", "Parameters", "RegionId", "RepeatMode",
            "ResourceGroupId", "ResourceOwnerAccount", "ResourceOwnerId", "TerminationMode", "Timed", "Timeout", "Type", "Username",
            "WindowsPasswordName", "WorkingDir",
        ],
        lists: ["InstanceId", "ResourceTag", "Tag"],
    },
    DescribeInvocationResults: {
        names: [
            "CommandId", "ContentEncoding", "IncludeHistory", "InstanceId", "InvokeId", "InvokeRecordStatus", "MaxResults", "NextToken",
            "OwnerAccount", "OwnerId", "PageNumber", "PageSize", "RegionId", "ResourceGroupId", "ResourceOwnerAccount", "ResourceOwnerId",
        ],
        lists: ["Tag"],
    },
    CreateSnapshot: {
        names: [
            "Category", "ClientToken", "Description", "DiskId", "InstantAccess", "InstantAccessRetentionDays", "OwnerAccount", "OwnerId",
            "ResourceGroupId", "ResourceOwnerAccount", "ResourceOwnerId", "RetentionDays", "SnapshotName", "StorageLocationArn",
        ],
        lists: ["Tag"],
    },
    DescribeSnapshots: {
        names: [
            "Category", "DiskId", "DryRun", "Encrypted", "InstanceId", "KMSKeyId", "MaxResults", "NextToken", "OwnerAccount", "OwnerId",
            "PageNumber", "PageSize", "RegionId", "ResourceGroupId", "ResourceOwnerAccount", "ResourceOwnerId", "SnapshotIds", "SnapshotLinkId",
            "SnapshotName", "SnapshotType", "SourceDiskType", "Status", "Usage",
        ],
        lists: ["Filter", "Tag"],
    },
    DescribeCloudAssistantStatus: {
        names: ["MaxResults", "NextToken", "OSType", "OwnerAccount", "OwnerId", "PageNumber", "PageSize", "RegionId", "ResourceOwnerAccount", "ResourceOwnerId"],
        lists: ["InstanceId"],
    },
};
const RECOMMEND = "https://api.aliyun.com/troubleshoot";

const IMS_ACTIONS = [
    "CreateApplication",
    "GetApplication",
    "UpdateApplication",
    "DeleteApplication",
    "ListApplications",
    "CreateAppSecret",
    "GetAppSecret",
    "DeleteAppSecret",
    "ListAppSecretIds",
    "ListPredefinedScopes",
];

/** ROA routes: method + path → action. */
const MCP_ROUTES: Record<string, string> = {
    "POST /apimcpserver": "CreateApiMcpServer",
    "GET /apimcpserver": "GetApiMcpServer",
    "PATCH /apimcpserver": "UpdateApiMcpServer",
    "DELETE /apimcpserver": "DeleteApiMcpServer",
    "GET /apimcpservers": "ListApiMcpServers",
};

/** Scopes offered to applications; `openid` is always granted and cannot be removed. */
const PREDEFINED_SCOPES: Record<string, string> = {
    openid: "Obtain the OpenID of the user (default, cannot be removed)",
    aliuid: "Obtain the Alibaba Cloud account ID of the user",
    profile: "Obtain the profile of the user",
    "/acs/mcp-server": "Access OpenAPI MCP servers",
    "/acs/ccc": "Access Cloud Contact Center",
    "/acs/alidns": "Access Alibaba Cloud DNS",
};

const SIGNED_HEADERS_REQUIRED = ["host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"];

/**
 * Readers of an RPC request's parameters, answering as the gateway does: MissingParameter for a required one that
 * is absent or empty, InvalidParameter.<code> for an integer out of its range (the exact code is invented).
 */
function rpcParameters(query: Record<string, string>, codeOf: (name: string) => string = (name) => name) {
    return {
        required(name: string): string {
            const value = query[name];
            if (value === undefined || value === "") {
                throw new ApiFailure(400, "MissingParameter", `The input parameter "${name}" that is mandatory for processing this request is not supplied.`);
            }
            return value;
        },
        integer(name: string, min: number, max: number): number | undefined {
            const raw = query[name];
            if (raw === undefined) return undefined;
            const value = Number(raw);
            if (raw.trim() === "" || !Number.isInteger(value) || value < min || value > max) {
                throw new ApiFailure(400, `InvalidParameter.${codeOf(name)}`, `The parameter ${name} is invalid: it must be an integer from ${min} to ${max}.`);
            }
            return value;
        },
    };
}

function isoNow(): string {
    return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function newRequestId(): string {
    return crypto.randomUUID().toUpperCase();
}

function sha256Hex(data: Buffer | string): string {
    return crypto.createHash("sha256").update(data).digest("hex");
}

/** openapi-core's `encode` for canonical query values. */
function acsEncode(value: string): string {
    return encodeURIComponent(value)
        .replace(/!/g, "%21")
        .replace(/'/g, "%27")
        .replace(/\(/g, "%28")
        .replace(/\)/g, "%29")
        .replace(/\*/g, "%2A");
}

/**
 * A query string (or form body) as the gateway reads it: "+" is a space, as in any form encoding. The official
 * Python SDKs send spaces that way (urlencode) while openapi-core sends %20; both sign the canonical query with
 * %20 (and a literal "+" as %2B), so a "+" must be decoded before the signature is recomputed.
 */
function parseRawQuery(raw: string): [string, string][] {
    if (raw === "") {
        return [];
    }
    const decode = (text: string) => decodeURIComponent(text.replace(/\+/g, "%20"));
    return raw.split("&").map((pair) => {
        const index = pair.indexOf("=");
        const key = index < 0 ? pair : pair.slice(0, index);
        const value = index < 0 ? "" : pair.slice(index + 1);
        return [decode(key), decode(value)];
    });
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(",") : value;
}

function isRead(action: string): boolean {
    return action.startsWith("Get") || action.startsWith("List") || action.startsWith("Describe");
}

function splitList(value: string | undefined): string[] {
    return value === undefined || value === "" ? [] : value.split(";").filter((item) => item !== "");
}

export class AlibabaApiServer {
    readonly accountId: string;
    private readonly options: Required<AlibabaApiServerOptions>;
    private readonly server: http.Server;
    private readonly recorded: RecordedCall[] = [];
    private readonly faults: FaultInjection[] = [];
    private readonly nonces = new Set<string>();
    private readonly apps = new Map<string, StoredApplication>();
    private readonly secrets = new Map<string, StoredAppSecret>();
    private readonly servers = new Map<string, StoredMcpServer>();
    private readonly clientTokens = new Map<string, { action: string; body: Record<string, unknown> }>();
    private readonly instances = new Map<string, StoredInstance>();
    private readonly invocations = new Map<string, StoredInvocation>();
    private readonly disks = new Map<string, StoredDisk>();
    private readonly snapshotStore = new Map<string, StoredSnapshot>();
    /** Aborts the runs still going (timeouts, close). */
    private readonly runsInFlight = new Map<string, AbortController>();
    private baseUrl = "";

    private constructor(options: AlibabaApiServerOptions) {
        this.options = { accountId: "1234567890123456", maxClockSkewSeconds: 900, mcpBaseUrl: "", ...options };
        this.accountId = this.options.accountId;
        // RunCommand's CommandContent (up to 24 KB of Base64) travels in the URL: more than Node's default 16 KB
        // header limit allows.
        this.server = http.createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
            const chunks: Buffer[] = [];
            req.on("data", (chunk: Buffer) => chunks.push(chunk));
            req.on("end", () => this.handle(req, Buffer.concat(chunks), res));
        });
    }

    static async start(options: AlibabaApiServerOptions): Promise<AlibabaApiServer> {
        const instance = new AlibabaApiServer(options);
        await new Promise<void>((resolve) => instance.server.listen(0, "127.0.0.1", resolve));
        const port = (instance.server.address() as AddressInfo).port;
        instance.baseUrl = `http://127.0.0.1:${port}`;
        return instance;
    }

    /** `http://127.0.0.1:<port>`: pass it as the providers' `endpoint`. */
    get url(): string {
        return this.baseUrl;
    }

    close(): Promise<void> {
        for (const controller of this.runsInFlight.values()) {
            controller.abort(new Error("the fake Alibaba API server closed"));
        }
        return new Promise((resolve) => {
            this.server.closeAllConnections();
            this.server.close(() => resolve());
        });
    }

    // ----- call accounting ---------------------------------------------------------------------------------

    /** Every request received so far, in order. */
    get calls(): readonly RecordedCall[] {
        return this.recorded;
    }

    /** A position in the call log, for `countSince`. */
    mark(): number {
        return this.recorded.length;
    }

    /** Counts the requests received since `mark` (default: all). */
    countSince(mark = 0): CallCounts {
        const counts: CallCounts = { reads: 0, writes: 0, total: 0, byAction: {}, errors: 0 };
        for (const call of this.recorded.slice(mark)) {
            counts.total++;
            if (call.kind === "read") counts.reads++;
            else counts.writes++;
            counts.byAction[call.action] = (counts.byAction[call.action] ?? 0) + 1;
            if (call.status >= 400) counts.errors++;
        }
        return counts;
    }

    /** Queues a fault for the next matching requests. */
    injectFault(fault: FaultInjection): void {
        this.faults.push({ ...fault });
    }

    /** Faults not used up yet. */
    pendingFaults(): number {
        return this.faults.reduce((sum, fault) => sum + fault.count, 0);
    }

    clearFaults(): void {
        this.faults.length = 0;
    }

    // ----- state, for assertions and out-of-band changes ---------------------------------------------------

    /** Registers an ECS instance for Cloud Assistant (in any region). Replaces an instance of the same id. */
    addInstance(instanceId: string, options: CloudAssistantInstanceOptions = {}): void {
        const online = options.agentOnline ?? true;
        const now = isoNow();
        this.instances.set(instanceId, {
            id: instanceId,
            agentOnline: online,
            version: online ? AGENT_VERSION : undefined,
            lastHeartbeat: online ? now : undefined,
            invocationCount: 0,
            run: options.run ?? (async () => ({ output: "", exitCode: 0 })),
        });
    }

    /** Registers a cloud disk ("d-…") that CreateSnapshot may snapshot (in any region). */
    addDisk(diskId: string, options: DiskOptions = {}): void {
        this.disks.set(diskId, { id: diskId, options: { snapshotMs: 300, snapshotOutcome: "accomplished", sizeGib: 100, ...options } });
    }

    /** The snapshots made so far, in order, as stored. */
    snapshots(): StoredSnapshot[] {
        return [...this.snapshotStore.values()].map((snapshot) => ({ ...snapshot }));
    }

    /** Forgets an instance (as if released): RunCommand then answers InvalidInstance.NotFound. Its runs stay. */
    removeInstance(instanceId: string): void {
        this.instances.delete(instanceId);
    }

    /** The agent comes online (reports its version, heartbeats) or goes offline (its last heartbeat stays). */
    setAgentOnline(instanceId: string, online: boolean): void {
        const instance = this.instances.get(instanceId);
        if (!instance) throw new Error(`no instance ${instanceId}`);
        if (online) {
            instance.version ??= AGENT_VERSION;
            instance.lastHeartbeat = isoNow();
        }
        instance.agentOnline = online;
    }

    /** A RunCommand's run as stored (its decoded script, status, whole output). */
    invocation(invokeId: string, instanceId?: string): StoredInvocation | undefined {
        const invocation = [...this.invocations.values()].find((item) => item.InvokeId === invokeId && (instanceId === undefined || item.InstanceId === instanceId));
        return invocation && { ...invocation };
    }

    invocationsOf(instanceId: string): StoredInvocation[] {
        return [...this.invocations.values()].filter((invocation) => invocation.InstanceId === instanceId).map((invocation) => ({ ...invocation }));
    }

    /** Resolves when no run is in flight any more. */
    async runsSettled(): Promise<void> {
        while (this.runsInFlight.size > 0) {
            await new Promise((resolve) => setTimeout(resolve, 10));
        }
    }

    application(appId: string): StoredApplication | undefined {
        const app = this.apps.get(appId);
        return app && structuredClone(app);
    }

    applications(): StoredApplication[] {
        return [...this.apps.values()].map((app) => structuredClone(app));
    }

    appSecrets(appId: string): StoredAppSecret[] {
        return [...this.secrets.values()].filter((secret) => secret.AppId === appId).map((secret) => ({ ...secret }));
    }

    mcpServer(id: string): StoredMcpServer | undefined {
        const server = this.servers.get(id);
        return server && structuredClone(server);
    }

    mcpServers(): StoredMcpServer[] {
        return [...this.servers.values()].map((server) => structuredClone(server));
    }

    /** Deletes an application (and its secrets) as someone in the console would. */
    deleteApplicationOutOfBand(appId: string): void {
        this.apps.delete(appId);
        for (const [id, secret] of this.secrets) {
            if (secret.AppId === appId) this.secrets.delete(id);
        }
    }

    updateApplicationOutOfBand(appId: string, patch: Partial<Omit<StoredApplication, "AppId">>): void {
        const app = this.apps.get(appId);
        if (!app) throw new Error(`no application ${appId}`);
        Object.assign(app, patch, { UpdateDate: isoNow() });
    }

    /**
     * The application `clientId` as an OAuth client, as Alibaba's authorization server trusts every RAM OAuth
     * application: its AppId is the client id, its RedirectUris the redirect URIs, and a WebApp (or a NativeApp
     * with SecretRequired) is a confidential client authenticated by one of its secrets. Undefined when there is
     * no such application (deleted apps stop being clients at once).
     */
    oauthClient(clientId: string): RamOAuthClient | undefined {
        const app = this.apps.get(clientId);
        if (!app) return undefined;
        const client: RamOAuthClient = { clientId: app.AppId, redirectUris: [...app.RedirectUris], scopes: [...app.PredefinedScopes] };
        if (app.AppType === "WebApp" || app.SecretRequired) {
            client.clientSecrets = this.appSecrets(app.AppId).map((secret) => secret.AppSecretValue);
        }
        return client;
    }

    /** The MCP server whose `urls.mcp` (or `urls.sse`) has this path, e.g. /accounts/<uid>/custom/<name>/id/<id>/mcp. */
    mcpServerByPath(urlPath: string): StoredMcpServer | undefined {
        for (const server of this.servers.values()) {
            const urls = this.mcpUrls(server);
            if (new URL(urls.mcp).pathname === urlPath || new URL(urls.sse).pathname === urlPath) {
                return structuredClone(server);
            }
        }
        return undefined;
    }

    deleteMcpServerOutOfBand(id: string): void {
        this.servers.delete(id);
    }

    updateMcpServerOutOfBand(id: string, patch: Partial<Omit<StoredMcpServer, "id">>): void {
        const server = this.servers.get(id);
        if (!server) throw new Error(`no MCP server ${id}`);
        Object.assign(server, patch, { updateTime: isoNow() });
    }

    // ----- request handling ----------------------------------------------------------------------------------

    private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
        const requestId = newRequestId();
        const rawUrl = req.url ?? "/";
        const queryIndex = rawUrl.indexOf("?");
        const path = queryIndex < 0 ? rawUrl : rawUrl.slice(0, queryIndex);
        const rawQuery = queryIndex < 0 ? "" : rawUrl.slice(queryIndex + 1);
        const method = (req.method ?? "GET").toUpperCase();
        const version = headerValue(req, "x-acs-version");
        const action = headerValue(req, "x-acs-action") ?? "";
        const product: ApiProduct | "unknown" =
            version === IMS_VERSION ? "Ims" : version === MCP_VERSION ? "OpenAPIExplorer" : version === ECS_VERSION ? "Ecs" : "unknown";
        // RPC requests go to "/", ROA ones to a resource path: that decides the error body's casing.
        const style = path === "/" ? "RPC" : "ROA";
        const call: RecordedCall = { product, action: action || `${method} ${path}`, kind: isRead(action) ? "read" : "write", method, path, status: 200, requestId };
        this.recorded.push(call);

        const send = (status: number, payload: Record<string, unknown>) => {
            call.status = status;
            const text = JSON.stringify(payload);
            res.writeHead(status, { "content-type": "application/json;charset=utf-8", "x-acs-request-id": requestId });
            res.end(text);
        };
        const sendError = (failure: ApiFailure) => {
            call.code = failure.code;
            const host = headerValue(req, "host") ?? "127.0.0.1";
            send(
                failure.status,
                style === "RPC"
                    ? { RequestId: requestId, HostId: host, Code: failure.code, Message: failure.message, Recommend: `${RECOMMEND}?q=${failure.code}` }
                    : { requestId, hostId: host, code: failure.code, message: failure.message, recommend: `${RECOMMEND}?q=${failure.code}` },
            );
        };

        try {
            this.verifySignature(req, method, path, rawQuery, body);
            const fault = this.takeFault(action);
            if (fault?.kind === "throttling") {
                throw new ApiFailure(fault.status ?? 400, "Throttling.User", "Request was denied due to user flow control.");
            }
            if (fault?.kind === "server-error" && !fault.afterCommit) {
                throw new ApiFailure(fault.status ?? 503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.");
            }
            const query = Object.fromEntries(parseRawQuery(rawQuery));
            let result: Record<string, unknown>;
            if ((product === "Ims" || product === "Ecs") && style === "RPC") {
                if (method !== "POST" && method !== "GET") {
                    throw new ApiFailure(400, "UnsupportedHTTPMethod", `This http method ${method} is not supported.`);
                }
                // RPC parameters may also arrive form-encoded in the body.
                const contentType = headerValue(req, "content-type") ?? "";
                if (contentType.startsWith("application/x-www-form-urlencoded") && body.length > 0) {
                    Object.assign(query, Object.fromEntries(parseRawQuery(body.toString("utf8"))));
                }
                call.parameters = Object.keys(query).sort();
                result = product === "Ims" ? this.handleIms(action, query) : this.handleEcs(action, query);
            } else if (product === "OpenAPIExplorer" && style === "ROA") {
                const routed = MCP_ROUTES[`${method} ${path}`];
                if (!routed || routed !== action) {
                    throw new ApiFailure(404, "InvalidAction.NotFound", `Specified api is not found, please check your url and method. (${method} ${path}, x-acs-action ${action})`);
                }
                let json: Record<string, unknown> = {};
                if (body.length > 0) {
                    try {
                        json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
                    } catch {
                        throw new ApiFailure(400, "InvalidParameter", "The request body is not valid JSON.");
                    }
                }
                call.parameters = [...Object.keys(query), ...Object.keys(json)].sort();
                result = this.handleMcp(action, query, json, headerValue(req, "host") ?? "127.0.0.1");
            } else if (product === "unknown") {
                throw new ApiFailure(400, "InvalidVersion", `Specified parameter Version "${version ?? ""}" is not valid.`);
            } else {
                throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
            }
            if (fault?.kind === "server-error" && fault.afterCommit) {
                throw new ApiFailure(fault.status ?? 500, "InternalError", "The request processing has failed due to some unknown error, exception or failure.");
            }
            send(200, style === "RPC" ? { RequestId: requestId, ...result } : { requestId, ...result });
        } catch (err) {
            if (err instanceof ApiFailure) {
                sendError(err);
            } else {
                sendError(new ApiFailure(500, "InternalError", `The request processing has failed: ${(err as Error).message}`));
            }
        }
    }

    private takeFault(action: string): FaultInjection | undefined {
        const fault = this.faults.find((candidate) => candidate.count > 0 && (!candidate.actions || candidate.actions.includes(action)));
        if (fault) {
            fault.count--;
            if (fault.count === 0) {
                this.faults.splice(this.faults.indexOf(fault), 1);
            }
        }
        return fault;
    }

    /** Recomputes the ACS3-HMAC-SHA256 signature exactly as openapi-core builds it and compares. */
    private verifySignature(req: http.IncomingMessage, method: string, path: string, rawQuery: string, body: Buffer): void {
        const incomplete = (detail: string) => new ApiFailure(400, "IncompleteSignature", `The request signature does not conform to Aliyun standards. ${detail}`);
        const authorization = headerValue(req, "authorization");
        if (!authorization) {
            throw incomplete("Authorization header is missing.");
        }
        const match = /^ACS3-HMAC-SHA256 (.+)$/.exec(authorization);
        if (!match) {
            throw incomplete("Only ACS3-HMAC-SHA256 is accepted.");
        }
        const fields: Record<string, string> = {};
        for (const part of match[1].split(",")) {
            const index = part.indexOf("=");
            if (index > 0) {
                fields[part.slice(0, index).trim()] = part.slice(index + 1).trim();
            }
        }
        const { Credential: accessKeyId, SignedHeaders: signedHeaderList, Signature: signature } = fields;
        if (!accessKeyId || !signedHeaderList || !signature) {
            throw incomplete("Credential, SignedHeaders and Signature are required.");
        }
        if (accessKeyId !== this.options.accessKeyId) {
            throw new ApiFailure(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
        }
        const signedHeaders = signedHeaderList.split(";");
        for (const required of SIGNED_HEADERS_REQUIRED) {
            if (!signedHeaders.includes(required)) {
                throw incomplete(`Header ${required} must be signed.`);
            }
        }
        for (const name of Object.keys(req.headers)) {
            if ((name.startsWith("x-acs-") || name === "content-type") && !signedHeaders.includes(name)) {
                throw incomplete(`Header ${name} must be signed.`);
            }
        }
        for (const name of signedHeaders) {
            if (headerValue(req, name) === undefined) {
                throw incomplete(`Signed header ${name} is missing.`);
            }
        }

        const hashedPayload = headerValue(req, "x-acs-content-sha256") ?? "";
        const canonicalQuery = parseRawQuery(rawQuery)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([key, value]) => `${key}=${acsEncode(value)}`)
            .join("&");
        const canonicalHeaders = signedHeaders.map((name) => `${name}:${(headerValue(req, name) ?? "").trim()}\n`).join("");
        const canonicalRequest = [method, path, canonicalQuery, canonicalHeaders, signedHeaders.join(";"), hashedPayload].join("\n");
        const stringToSign = `ACS3-HMAC-SHA256\n${sha256Hex(canonicalRequest)}`;
        const expected = crypto.createHmac("sha256", this.options.accessKeySecret).update(stringToSign).digest("hex");
        const given = Buffer.from(signature, "utf8");
        if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected, "utf8"))) {
            throw new ApiFailure(400, "SignatureDoesNotMatch", `Specified signature does not match our calculation. The server string to sign is: ${stringToSign}`);
        }
        if (hashedPayload !== sha256Hex(body)) {
            throw new ApiFailure(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation: x-acs-content-sha256 does not match the request body.");
        }

        const date = headerValue(req, "x-acs-date") ?? "";
        const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(date) ? Date.parse(date) : NaN;
        if (Number.isNaN(time)) {
            throw new ApiFailure(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.");
        }
        if (Math.abs(Date.now() - time) > this.options.maxClockSkewSeconds * 1000) {
            throw new ApiFailure(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.");
        }
        const nonce = headerValue(req, "x-acs-signature-nonce") ?? "";
        if (this.nonces.has(nonce)) {
            throw new ApiFailure(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
        }
        this.nonces.add(nonce);
    }

    // ----- Ecs: Cloud Assistant ----------------------------------------------------------------------------

    private handleEcs(action: string, query: Record<string, string>): Record<string, unknown> {
        const model = ECS_PARAMETERS[action];
        if (!model) {
            throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
        }
        for (const name of Object.keys(query)) {
            const listItem = /^([A-Za-z]+)\.\d+(?:\.[A-Za-z]+)?$/.exec(name);
            if (!model.names.includes(name) && !(listItem && model.lists.includes(listItem[1]))) {
                // Stricter than the real API: a name the SDK's request model does not define is refused.
                throw new ApiFailure(400, "InvalidParameter", `${name} is not a parameter of ${action} (ECS ${ECS_VERSION}).`); // invented code
            }
        }
        const { required, integer } = rpcParameters(query);
        // Case-insensitive: openapi-core sends true/false, the Python SDKs True/False.
        const boolean = (name: string): boolean | undefined => {
            const raw = query[name]?.toLowerCase();
            if (raw === undefined) return undefined;
            if (raw !== "true" && raw !== "false") {
                throw new ApiFailure(400, `InvalidParameter.${name}`, `The parameter ${name} must be true or false.`); // invented code
            }
            return raw === "true";
        };
        // A list parameter as the SDKs flatten it: Name.1, Name.2, … (in index order).
        const list = (name: string): string[] =>
            Object.keys(query)
                .map((key) => new RegExp(`^${name}\\.(\\d+)$`).exec(key))
                .filter((match): match is RegExpExecArray => match !== null)
                .sort((a, b) => Number(a[1]) - Number(b[1]))
                .map((match) => query[match[0]]);
        // Every action's request model has RegionId but CreateSnapshot's (its region is the endpoint's).
        const regionId = action === "CreateSnapshot" ? (query.RegionId ?? "") : required("RegionId");

        switch (action) {
            case "CreateSnapshot": {
                const diskId = required("DiskId");
                const name = query.SnapshotName ?? "";
                // The model's rules: 2-128 characters, starting with a letter, not with "auto" or http(s)://.
                if (query.SnapshotName !== undefined && (name.length < 2 || name.length > 128 || !/^\p{L}/u.test(name) || /^(auto|https?:\/\/)/i.test(name) || !/^[\p{L}0-9:_.-]+$/u.test(name))) {
                    throw new ApiFailure(400, "InvalidSnapshotName.Malformed", "The specified SnapshotName is wrongly formed."); // invented code
                }
                const description = query.Description ?? "";
                if (query.Description !== undefined && (description.length < 2 || description.length > 256 || /^https?:\/\//i.test(description))) {
                    throw new ApiFailure(400, "InvalidDescription.Malformed", "The specified Description is wrongly formed."); // invented code
                }
                const retentionDays = integer("RetentionDays", 1, 65536);
                boolean("InstantAccess");
                const clientToken = query.ClientToken;
                if (clientToken !== undefined) {
                    const earlier = [...this.snapshotStore.values()].find((snapshot) => snapshot.ClientToken === clientToken);
                    if (earlier) return { SnapshotId: earlier.SnapshotId };
                }
                const disk = this.disks.get(diskId);
                if (!disk) {
                    // Documented by ECS's disk actions (ResetDisk, DetachDisk, ...); not seen in CreateSnapshot's own table.
                    throw new ApiFailure(404, "InvalidDiskId.NotFound", "The specified disk does not exist.");
                }
                if ([...this.snapshotStore.values()].some((snapshot) => snapshot.SourceDiskId === diskId && Date.now() < snapshot.doneAt)) {
                    // The docs: no snapshot can be created "while a snapshot is being created for the disk".
                    throw new ApiFailure(403, "IncorrectDiskStatus.CreatingSnapshot", "A snapshot is being created for the disk."); // invented code
                }
                const snapshot: StoredSnapshot = {
                    SnapshotId: `s-${crypto.randomBytes(10).toString("hex")}`,
                    SnapshotName: name,
                    Description: description,
                    SourceDiskId: diskId,
                    CreationTime: isoNow(),
                    doneAt: Date.now() + disk.options.snapshotMs,
                    outcome: disk.options.snapshotOutcome,
                };
                if (retentionDays !== undefined) snapshot.RetentionDays = retentionDays;
                if (clientToken !== undefined) snapshot.ClientToken = clientToken;
                this.snapshotStore.set(snapshot.SnapshotId, snapshot);
                return { SnapshotId: snapshot.SnapshotId };
            }
            case "DescribeSnapshots": {
                let ids: string[] | undefined;
                if (query.SnapshotIds !== undefined) {
                    // "a JSON array that consists of up to 100 snapshot IDs".
                    try {
                        const parsed: unknown = JSON.parse(query.SnapshotIds);
                        if (!Array.isArray(parsed) || !parsed.every((id) => typeof id === "string") || parsed.length > 100) throw new Error("not a list");
                        ids = parsed as string[];
                    } catch {
                        throw new ApiFailure(400, "InvalidParameter.SnapshotIds", "SnapshotIds must be a JSON array of at most 100 snapshot ids."); // invented code
                    }
                }
                const status = query.Status ?? "all";
                if (!["progressing", "accomplished", "failed", "all"].includes(status)) {
                    throw new ApiFailure(400, "InvalidStatus.ValueNotSupported", "The specified Status is not supported."); // invented code
                }
                const maxResults = integer("MaxResults", 1, 100) ?? 10;
                const now = Date.now();
                const matching = [...this.snapshotStore.values()]
                    .map((snapshot) => ({ snapshot, state: now >= snapshot.doneAt ? snapshot.outcome : "progressing" }))
                    .filter(
                        ({ snapshot, state }) =>
                            (ids === undefined || ids.includes(snapshot.SnapshotId)) &&
                            (query.DiskId === undefined || snapshot.SourceDiskId === query.DiskId) &&
                            (status === "all" || state === status),
                    );
                return {
                    TotalCount: matching.length,
                    PageNumber: 1,
                    PageSize: maxResults,
                    NextToken: "",
                    Snapshots: {
                        Snapshot: matching.slice(0, maxResults).map(({ snapshot, state }) => {
                            const disk = this.disks.get(snapshot.SourceDiskId);
                            const total = disk?.options.snapshotMs ?? 1;
                            const elapsed = Math.min(total, Math.max(0, now - (snapshot.doneAt - total)));
                            const item: Record<string, unknown> = {
                                SnapshotId: snapshot.SnapshotId,
                                SnapshotName: snapshot.SnapshotName,
                                Description: snapshot.Description,
                                Status: state,
                                Progress: state === "accomplished" ? "100%" : `${Math.floor((100 * elapsed) / Math.max(total, 1))}%`,
                                RemainTime: state === "progressing" ? Math.ceil((snapshot.doneAt - now) / 1000) : 0,
                                Available: state === "accomplished",
                                SourceDiskId: snapshot.SourceDiskId,
                                SourceDiskSize: String(disk?.options.sizeGib ?? 100),
                                SourceDiskType: "data",
                                SourceStorageType: "disk",
                                Category: "standard",
                                SnapshotType: "user",
                                Usage: "none",
                                Encrypted: false,
                                RegionId: regionId,
                                CreationTime: snapshot.CreationTime,
                                LastModifiedTime: snapshot.CreationTime,
                                Tags: { Tag: [] },
                            };
                            if (snapshot.RetentionDays !== undefined) item.RetentionDays = snapshot.RetentionDays;
                            return item;
                        }),
                    },
                };
            }
            case "RunCommand": {
                const type = required("Type");
                if (type !== "RunShellScript" && type !== "RunBatScript" && type !== "RunPowerShellScript") {
                    throw new ApiFailure(403, "InvalidCmdType.NotFound", "The specified command type does not exist.");
                }
                const content = required("CommandContent");
                // Case-insensitive; an invalid value is treated as PlainText (as the SDK documents).
                const base64 = query.ContentEncoding?.toLowerCase() === "base64";
                if (base64 && (content.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(content))) {
                    throw new ApiFailure(400, "InvalidParameter.CommandContent", "CommandContent is not valid Base64 while ContentEncoding is Base64."); // invented code
                }
                const encodedLength = base64 ? content.length : Buffer.from(content, "utf8").toString("base64").length;
                if (encodedLength > COMMAND_CONTENT_MAX) {
                    // Documented for InvokeCommand/CreateCommand; the RunCommand table does not list it.
                    throw new ApiFailure(403, "CmdContent.ExceedLimit", "The length of the command content exceeds the upper limit (24 KB after Base64 encoding).");
                }
                const script = base64 ? Buffer.from(content, "base64").toString("utf8") : content;
                const timeout = integer("Timeout", 10, 86_400) ?? 60;
                const name = query.Name ?? "";
                if ([...name].length > 128) {
                    throw new ApiFailure(403, "CmdName.ExceedLimit", "The length of the command name exceeds the upper limit.");
                }
                if ([...(query.Description ?? "")].length > 512) {
                    throw new ApiFailure(403, "CmdDesc.ExceedLimit", "The length of the command description exceeds the upper limit.");
                }
                const keepCommand = boolean("KeepCommand") ?? false;
                boolean("EnableParameter");
                if (query.RepeatMode !== undefined && query.RepeatMode !== "Once") {
                    throw new ApiFailure(400, "InvalidParameter.RepeatMode", "This fake runs one-shot commands only (RepeatMode Once)."); // invented code
                }
                const instanceIds = list("InstanceId");
                if (instanceIds.length === 0) {
                    // The real API can also target instances by ResourceTag; the fake cannot.
                    throw new ApiFailure(400, "MissingParameter", 'The input parameter "InstanceId" that is mandatory for processing this request is not supplied.'); // invented for RunCommand
                }
                if (instanceIds.length > 100) {
                    throw new ApiFailure(403, "InstanceIds.ExceedLimit", "The number of instances exceeds the upper limit (100).");
                }
                const targets = instanceIds.map((id) => {
                    const instance = this.instances.get(id);
                    if (!instance) {
                        throw new ApiFailure(404, "InvalidInstance.NotFound", `The specified instance ${id} does not exist.`);
                    }
                    // Fake instances are Linux: a batch or PowerShell script does not match them, nor does an
                    // instance whose agent is not online (the documented advice: check the instance's status).
                    if (type !== "RunShellScript") {
                        throw new ApiFailure(403, "InvalidInstance.NotMatch", `The specified instance type does not match the command: ${id} runs Linux.`);
                    }
                    if (!instance.agentOnline) {
                        throw new ApiFailure(403, "InvalidInstance.NotMatch", `The specified instance type does not match the command: the Cloud Assistant agent of ${id} is not online.`);
                    }
                    return instance;
                });
                const clientToken = query.ClientToken;
                const earlier = clientToken !== undefined ? this.clientTokens.get(clientToken) : undefined;
                if (earlier && earlier.action === action) {
                    return earlier.body;
                }
                const suffix = () => crypto.randomBytes(8).toString("hex").slice(0, 13);
                const commandId = `c-${regionId.replace(/[^a-z]/g, "").slice(0, 2)}0${suffix()}`;
                const invokeId = `t-${regionId.replace(/[^a-z]/g, "").slice(0, 2)}0${suffix()}`;
                for (const instance of targets) {
                    this.startRun(instance, {
                        InvokeId: invokeId,
                        CommandId: commandId,
                        InstanceId: instance.id,
                        RegionId: regionId,
                        Name: name,
                        Script: script,
                        Timeout: timeout,
                        KeepCommand: keepCommand,
                        InvocationStatus: "Running",
                        Output: "",
                        ErrorCode: "",
                        ErrorInfo: "",
                        StartTime: isoNow(),
                    });
                }
                const body = { CommandId: commandId, InvokeId: invokeId };
                if (clientToken !== undefined) this.clientTokens.set(clientToken, { action, body });
                return body;
            }
            case "DescribeInvocationResults": {
                // Output (and CommandContent) are Base64 unless PlainText is asked for (the SDK's default: Base64).
                const plainText = query.ContentEncoding?.toLowerCase() === "plaintext";
                const maxResults = integer("MaxResults", 1, 50) ?? 10;
                boolean("IncludeHistory");
                const matching = [...this.invocations.values()].filter(
                    (invocation) =>
                        invocation.RegionId === regionId &&
                        (query.InvokeId === undefined || invocation.InvokeId === query.InvokeId) &&
                        (query.InstanceId === undefined || invocation.InstanceId === query.InstanceId) &&
                        (query.CommandId === undefined || invocation.CommandId === query.CommandId) &&
                        (query.InvokeRecordStatus === undefined || this.invokeRecordStatus(invocation) === query.InvokeRecordStatus),
                );
                return {
                    Invocation: {
                        InvocationResults: { InvocationResult: matching.slice(0, maxResults).map((invocation) => this.invocationResultBody(invocation, plainText)) },
                        TotalCount: matching.length,
                        PageNumber: 1,
                        PageSize: maxResults,
                        NextToken: "",
                    },
                };
            }
            case "DescribeCloudAssistantStatus": {
                const osType = query.OSType;
                if (osType !== undefined && osType !== "Windows" && osType !== "Linux" && osType !== "FreeBSD") {
                    throw new ApiFailure(400, "InvalidParameter.OSType", "OSType must be Windows, Linux or FreeBSD."); // invented code
                }
                const ids = list("InstanceId");
                if (ids.length > 100) {
                    throw new ApiFailure(400, "InvalidParameter.InstanceId", "At most 100 instance ids."); // invented code
                }
                const maxResults = integer("MaxResults", 1, 50) ?? 10;
                // Unknown ids are left out of the answer (UNCONFIRMED how the real API treats them).
                const chosen = (ids.length > 0 ? ids.map((id) => this.instances.get(id)) : [...this.instances.values()].slice(0, maxResults)).filter(
                    (instance): instance is StoredInstance => instance !== undefined && (osType === undefined || osType === "Linux"),
                );
                return {
                    TotalCount: chosen.length,
                    PageNumber: 1,
                    PageSize: maxResults,
                    NextToken: "",
                    InstanceCloudAssistantStatusSet: {
                        InstanceCloudAssistantStatus: chosen.map((instance) => {
                            const item: Record<string, unknown> = {
                                InstanceId: instance.id,
                                // A string, as the real API answers it.
                                CloudAssistantStatus: instance.agentOnline ? "true" : "false",
                                CloudAssistantVersion: instance.version ?? "",
                                ActiveTaskCount: this.invocationsOf(instance.id).filter((invocation) => invocation.InvocationStatus === "Running").length,
                                InvocationCount: instance.invocationCount,
                                OSType: "Linux",
                                SupportSessionManager: instance.agentOnline,
                            };
                            // An online agent heartbeats about every minute; an offline one keeps its last.
                            const heartbeat = instance.agentOnline ? isoNow() : instance.lastHeartbeat;
                            if (heartbeat !== undefined) item.LastHeartbeatTime = heartbeat;
                            if (instance.lastInvoked !== undefined) item.LastInvokedTime = instance.lastInvoked;
                            return item;
                        }),
                    },
                };
            }
            default:
                throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
        }
    }

    /** Starts the instance's runner on the script; the invocation is Running until it settles or times out. */
    private startRun(instance: StoredInstance, invocation: StoredInvocation): void {
        const key = `${invocation.InvokeId}/${invocation.InstanceId}`;
        this.invocations.set(key, invocation);
        instance.invocationCount++;
        instance.lastInvoked = invocation.StartTime;
        const controller = new AbortController();
        this.runsInFlight.set(key, controller);
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            controller.abort(new Error(`the command timed out after ${invocation.Timeout} s`));
        }, invocation.Timeout * 1000);
        timer.unref();
        const finish = (patch: Partial<StoredInvocation>) => {
            clearTimeout(timer);
            this.runsInFlight.delete(key);
            Object.assign(invocation, patch, { FinishedTime: isoNow() });
        };
        const outcome = Promise.resolve()
            .then(() => instance.run(invocation.Script, controller.signal))
            .then(
                (result) => ({ result, error: undefined }),
                (error: unknown) => ({ result: undefined, error }),
            );
        // Once aborted, the runner has a second to hand back what it has; then the run ends without it.
        const abandoned = new Promise<{ result: undefined; error: undefined }>((resolve) =>
            controller.signal.addEventListener("abort", () => setTimeout(() => resolve({ result: undefined, error: undefined }), 1000).unref(), { once: true }),
        );
        void Promise.race([outcome, abandoned]).then(({ result, error }) => {
            const output = result?.output ?? "";
            if (timedOut) {
                finish({ InvocationStatus: "Timeout", Output: output, ErrorCode: "ExecutionTimeout", ErrorInfo: "the command execution has timed out" });
            } else if (controller.signal.aborted) {
                finish({ InvocationStatus: "Error", Output: output, ErrorCode: "ExecutionInterrupted", ErrorInfo: "the command execution was interrupted" });
            } else if (result === undefined) {
                finish({ InvocationStatus: "Error", ErrorCode: "ExecutionException", ErrorInfo: `the command execution failed: ${(error as Error)?.message ?? String(error)}` });
            } else if (result.exitCode === 0) {
                finish({ InvocationStatus: "Success", ExitCode: 0, Output: output });
            } else {
                finish({
                    InvocationStatus: "Failed",
                    ExitCode: result.exitCode,
                    Output: output,
                    ErrorCode: "ExitCodeNonzero",
                    ErrorInfo: `the process exited with a non-zero exit code: ${result.exitCode}`,
                });
            }
        });
    }

    private invokeRecordStatus(invocation: StoredInvocation): string {
        return invocation.InvocationStatus === "Running" ? "Running" : invocation.InvocationStatus === "Success" ? "Finished" : "Failed";
    }

    private invocationResultBody(invocation: StoredInvocation, plainText: boolean): Record<string, unknown> {
        const bytes = Buffer.from(invocation.Output, "utf8");
        const kept = bytes.subarray(0, OUTPUT_MAX);
        const body: Record<string, unknown> = {
            CommandId: invocation.CommandId,
            InvokeId: invocation.InvokeId,
            InstanceId: invocation.InstanceId,
            InvocationStatus: invocation.InvocationStatus,
            InvokeRecordStatus: this.invokeRecordStatus(invocation),
            Output: plainText ? kept.toString("utf8") : kept.toString("base64"),
            Dropped: bytes.length - kept.length,
            ErrorCode: invocation.ErrorCode,
            ErrorInfo: invocation.ErrorInfo,
            StartTime: invocation.StartTime,
            StopTime: "",
            Repeats: 1,
            Username: "root",
            ContainerId: "",
            ContainerName: "",
            Launcher: "",
            TerminationMode: "Process",
            Tags: { Tag: [] },
        };
        if (invocation.ExitCode !== undefined) body.ExitCode = invocation.ExitCode;
        if (invocation.FinishedTime !== undefined) body.FinishedTime = invocation.FinishedTime;
        return body;
    }

    // ----- Ims ---------------------------------------------------------------------------------------------

    private handleIms(action: string, query: Record<string, string>): Record<string, unknown> {
        if (!IMS_ACTIONS.includes(action)) {
            throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
        }
        // UpdateApplication's New… parameters answer with the code of the parameter they set.
        const { required, integer } = rpcParameters(query, (name) => name.replace(/^New/, ""));
        // Case-insensitive: openapi-core sends true/false, the Python SDKs True/False (str() of a bool).
        const boolean = (name: string): boolean | undefined => {
            const raw = query[name]?.toLowerCase();
            if (raw === undefined) return undefined;
            if (raw !== "true" && raw !== "false") {
                throw new ApiFailure(400, `InvalidParameter.${name.replace(/^New/, "")}`, `The parameter ${name} must be true or false.`);
            }
            return raw === "true";
        };
        const scopes = (name: string): string[] | undefined => {
            if (query[name] === undefined) return undefined;
            const list = splitList(query[name]);
            for (const scope of list) {
                if (!(scope in PREDEFINED_SCOPES)) {
                    throw new ApiFailure(400, "InvalidParameter.Scope", `The scope ${scope} is not supported.`); // invented code
                }
            }
            return list;
        };
        const redirectUris = (name: string): string[] | undefined => {
            if (query[name] === undefined) return undefined;
            const list = splitList(query[name]);
            for (const uri of list) {
                if (!/^https?:\/\/[^\s#]+$/.test(uri)) {
                    throw new ApiFailure(400, "InvalidParameter.RedirectUris", `The redirect URI ${uri} is invalid.`); // invented code
                }
            }
            return list;
        };
        const findApp = (): StoredApplication => {
            const app = this.apps.get(required("AppId"));
            if (!app) {
                throw new ApiFailure(404, "EntityNotExist.Application", "The application does not exist.");
            }
            return app;
        };
        const withOpenid = (list: string[]) => (list.includes("openid") ? list : ["openid", ...list]);

        switch (action) {
            case "CreateApplication": {
                const appName = required("AppName");
                if (!/^[A-Za-z0-9._-]{1,64}$/.test(appName)) {
                    throw new ApiFailure(400, "InvalidParameter.AppName", "The parameter AppName is invalid."); // invented code
                }
                const displayName = required("DisplayName");
                if ([...displayName].length > 24) {
                    throw new ApiFailure(400, "InvalidParameter.DisplayName", "The parameter DisplayName exceeds 24 characters."); // invented code
                }
                const appType = required("AppType");
                if (appType !== "WebApp" && appType !== "NativeApp" && appType !== "ServerApp") {
                    throw new ApiFailure(400, "InvalidParameter.AppType", "The parameter AppType must be WebApp, NativeApp or ServerApp."); // invented code
                }
                const protocolVersion = query.ProtocolVersion ?? "2.0";
                if (protocolVersion !== "2.0" && protocolVersion !== "2.1") {
                    throw new ApiFailure(400, "InvalidParameter.ProtocolVersion", "The parameter ProtocolVersion must be 2.0 or 2.1."); // invented code
                }
                const predefined = withOpenid(scopes("PredefinedScopes") ?? []);
                const requiredScopes = scopes("RequiredScopes") ?? [];
                const extra = requiredScopes.filter((scope) => !predefined.includes(scope));
                if (extra.length > 0) {
                    throw new ApiFailure(400, "InvalidParameter.RequiredScopes", `RequiredScopes must be a subset of PredefinedScopes: ${extra.join(",")}`); // invented code
                }
                const uris = redirectUris("RedirectUris") ?? [];
                if (appType !== "ServerApp" && uris.length === 0) {
                    throw new ApiFailure(400, "MissingParameter", 'The input parameter "RedirectUris" that is mandatory for processing this request is not supplied.');
                }
                if ([...this.apps.values()].some((app) => app.AppName === appName)) {
                    throw new ApiFailure(409, "EntityAlreadyExists.Application", `The application ${appName} already exists.`); // code UNCONFIRMED
                }
                const now = isoNow();
                const app: StoredApplication = {
                    AppId: String(4_000_000_000_000_000_000n + BigInt(crypto.randomInt(1, 2 ** 47)) * 1000n + BigInt(crypto.randomInt(0, 1000))),
                    AppName: appName,
                    DisplayName: displayName,
                    AppType: appType,
                    AccountId: this.accountId,
                    CreateDate: now,
                    UpdateDate: now,
                    AccessTokenValidity: integer("AccessTokenValidity", 900, 10800) ?? 3600,
                    RefreshTokenValidity: integer("RefreshTokenValidity", 7200, 31536000) ?? (appType === "NativeApp" ? 7776000 : 2592000),
                    // The SDK model's defaults: multi-tenant (installable by other accounts) unless a WebApp.
                    IsMultiTenant: boolean("IsMultiTenant") ?? appType !== "WebApp",
                    // Forced on for web and server apps.
                    SecretRequired: appType === "NativeApp" ? (boolean("SecretRequired") ?? false) : true,
                    ProtocolVersion: protocolVersion,
                    RedirectUris: uris,
                    PredefinedScopes: predefined,
                    RequiredScopes: requiredScopes,
                };
                this.apps.set(app.AppId, app);
                return { Application: this.applicationBody(app) };
            }
            case "GetApplication":
                return { Application: this.applicationBody(findApp()) };
            case "UpdateApplication": {
                const app = findApp();
                const patch: Partial<StoredApplication> = {};
                if (query.NewDisplayName !== undefined) {
                    if (query.NewDisplayName === "" || [...query.NewDisplayName].length > 24) {
                        throw new ApiFailure(400, "InvalidParameter.DisplayName", "The parameter NewDisplayName must be 1-24 characters."); // invented code
                    }
                    patch.DisplayName = query.NewDisplayName;
                }
                const access = integer("NewAccessTokenValidity", 900, 10800);
                if (access !== undefined) patch.AccessTokenValidity = access;
                const refresh = integer("NewRefreshTokenValidity", 7200, 31536000);
                if (refresh !== undefined) patch.RefreshTokenValidity = refresh;
                const uris = redirectUris("NewRedirectUris");
                if (uris !== undefined) patch.RedirectUris = uris;
                const predefined = scopes("NewPredefinedScopes");
                if (predefined !== undefined) patch.PredefinedScopes = withOpenid(predefined);
                const requiredScopes = scopes("NewRequiredScopes");
                if (requiredScopes !== undefined) patch.RequiredScopes = requiredScopes;
                const multiTenant = boolean("NewIsMultiTenant");
                if (multiTenant !== undefined) patch.IsMultiTenant = multiTenant;
                const secretRequired = boolean("NewSecretRequired");
                if (secretRequired !== undefined && app.AppType === "NativeApp") patch.SecretRequired = secretRequired;
                const finalPredefined = patch.PredefinedScopes ?? app.PredefinedScopes;
                const finalRequired = patch.RequiredScopes ?? app.RequiredScopes;
                const extra = finalRequired.filter((scope) => !finalPredefined.includes(scope));
                if (extra.length > 0) {
                    throw new ApiFailure(400, "InvalidParameter.RequiredScopes", `RequiredScopes must be a subset of PredefinedScopes: ${extra.join(",")}`); // invented code
                }
                Object.assign(app, patch, { UpdateDate: isoNow() });
                return { Application: this.applicationBody(app) };
            }
            case "DeleteApplication": {
                const app = findApp();
                this.deleteApplicationOutOfBand(app.AppId);
                return {};
            }
            case "ListApplications":
                return { Applications: { Application: [...this.apps.values()].map((app) => this.applicationBody(app)) } };
            case "CreateAppSecret": {
                const app = findApp();
                if (this.appSecrets(app.AppId).length >= 2) {
                    throw new ApiFailure(409, "LimitExceeded.AppSecret", "An application can have at most 2 secrets."); // invented code
                }
                const secret: StoredAppSecret = {
                    AppId: app.AppId,
                    AppSecretId: crypto.randomBytes(12).toString("hex"),
                    AppSecretValue: crypto.randomBytes(33).toString("base64url"),
                    CreateDate: isoNow(),
                };
                this.secrets.set(secret.AppSecretId, secret);
                return { AppSecret: { ...secret } };
            }
            case "GetAppSecret":
            case "DeleteAppSecret": {
                const app = findApp();
                const secret = this.secrets.get(required("AppSecretId"));
                if (!secret || secret.AppId !== app.AppId) {
                    throw new ApiFailure(404, "EntityNotExist.AppSecret", "The application secret does not exist.");
                }
                if (action === "GetAppSecret") {
                    return { AppSecret: { ...secret } };
                }
                this.secrets.delete(secret.AppSecretId);
                return {};
            }
            case "ListAppSecretIds": {
                const app = findApp();
                return {
                    AppSecrets: {
                        AppSecret: this.appSecrets(app.AppId).map(({ AppId, AppSecretId, CreateDate }) => ({ AppId, AppSecretId, CreateDate })),
                    },
                };
            }
            case "ListPredefinedScopes":
                return {
                    PredefinedScopes: { PredefinedScope: Object.entries(PREDEFINED_SCOPES).map(([Name, Description]) => ({ Name, Description })) },
                };
            default:
                throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
        }
    }

    private applicationBody(app: StoredApplication): Record<string, unknown> {
        return {
            AppId: app.AppId,
            AppName: app.AppName,
            AppType: app.AppType,
            DisplayName: app.DisplayName,
            AccountId: app.AccountId,
            CreateDate: app.CreateDate,
            UpdateDate: app.UpdateDate,
            AccessTokenValidity: app.AccessTokenValidity,
            RefreshTokenValidity: app.RefreshTokenValidity,
            IsMultiTenant: app.IsMultiTenant,
            SecretRequired: app.SecretRequired,
            ProtocolVersion: app.ProtocolVersion,
            RedirectUris: { RedirectUri: [...app.RedirectUris] },
            DelegatedScope: {
                PredefinedScopes: {
                    PredefinedScope: app.PredefinedScopes.map((name) => ({
                        Name: name,
                        Description: PREDEFINED_SCOPES[name] ?? "",
                        Required: app.RequiredScopes.includes(name),
                    })),
                },
            },
        };
    }

    // ----- OpenAPIExplorer MCP servers ----------------------------------------------------------------------

    private handleMcp(action: string, query: Record<string, string>, body: Record<string, unknown>, host: string): Record<string, unknown> {
        const clientToken = action === "CreateApiMcpServer" ? body.clientToken : query.clientToken;
        if (clientToken !== undefined) {
            if (typeof clientToken !== "string" || clientToken.length > 64 || !/^[\x20-\x7e]+$/.test(clientToken)) {
                throw new ApiFailure(400, "InvalidParameter.ClientToken", "clientToken must be at most 64 ASCII characters."); // invented code
            }
            const earlier = this.clientTokens.get(clientToken);
            if (earlier && earlier.action === action) {
                // Idempotent repeat: same answer, no second effect.
                return earlier.body;
            }
        }
        const result = this.applyMcp(action, query, body, host);
        if (typeof clientToken === "string") {
            this.clientTokens.set(clientToken, { action, body: result });
        }
        return result;
    }

    private applyMcp(action: string, query: Record<string, string>, body: Record<string, unknown>, host: string): Record<string, unknown> {
        const findServer = (): StoredMcpServer => {
            const id = query.id;
            if (!id) {
                throw new ApiFailure(400, "MissingParameter.id", 'The input parameter "id" that is mandatory for processing this request is not supplied.');
            }
            const server = this.servers.get(id);
            if (!server) {
                throw new ApiFailure(404, "InvalidApiMcpServer.NotFound", `The specified ApiMcpServer ${id} does not exist.`);
            }
            return server;
        };
        switch (action) {
            case "CreateApiMcpServer": {
                const name = body.name;
                if (typeof name !== "string" || name === "") {
                    throw new ApiFailure(400, "MissingParameter.name", 'The input parameter "name" that is mandatory for processing this request is not supplied.');
                }
                if (!/^[a-z_-][a-z0-9_-]{2,63}$/.test(name)) {
                    throw new ApiFailure(400, "InvalidParameter.Name", "name must be 3-64 lowercase letters, digits, '_' or '-', not starting with a digit."); // invented code
                }
                if (body.apis === undefined) {
                    throw new ApiFailure(400, "MissingParameter.apis", 'The input parameter "apis" that is mandatory for processing this request is not supplied.');
                }
                if ([...this.servers.values()].some((server) => server.name === name)) {
                    throw new ApiFailure(409, "InvalidApiMcpServer.NameDuplicate", `An ApiMcpServer named ${name} already exists.`); // invented code
                }
                const now = isoNow();
                const server: StoredMcpServer = {
                    id: crypto.randomBytes(12).toString("base64url").slice(0, 16),
                    name,
                    description: "",
                    language: "ZH_CN",
                    instructions: "",
                    publicAccess: "follow",
                    systemTools: [],
                    apis: [],
                    createTime: now,
                    updateTime: now,
                    host,
                };
                this.applyMcpSettings(server, body, true);
                this.servers.set(server.id, server);
                return { id: server.id, urls: this.mcpUrls(server) };
            }
            case "GetApiMcpServer": {
                const server = findServer();
                return this.mcpServerBody(server);
            }
            case "UpdateApiMcpServer": {
                const server = findServer();
                // Validate everything before changing anything, like a transactional API.
                const copy = structuredClone(server);
                this.applyMcpSettings(copy, body, false);
                this.servers.set(server.id, { ...copy, updateTime: isoNow() });
                return {};
            }
            case "DeleteApiMcpServer": {
                const server = findServer();
                this.servers.delete(server.id);
                return {};
            }
            case "ListApiMcpServers": {
                const list = [...this.servers.values()].map((server) => this.mcpServerBody(server));
                return { apiMcpServers: list, maxResults: 20, totalCount: list.length };
            }
            default:
                throw new ApiFailure(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
        }
    }

    private applyMcpSettings(server: StoredMcpServer, body: Record<string, unknown>, creating: boolean): void {
        const invalid = (field: string, message: string) => new ApiFailure(400, `InvalidParameter.${field}`, message); // invented codes
        if (body.apis !== undefined || creating) {
            const apis = body.apis;
            if (!Array.isArray(apis) || apis.length === 0) {
                throw invalid("Apis", "apis must be a non-empty list.");
            }
            let total = 0;
            const stored: StoredMcpApi[] = [];
            for (const api of apis as Record<string, unknown>[]) {
                const { product, apiVersion, selectors } = api ?? {};
                if (typeof product !== "string" || product === "" || typeof apiVersion !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(apiVersion)) {
                    throw invalid("Apis", "every api needs product and apiVersion (YYYY-MM-DD).");
                }
                if (!Array.isArray(selectors) || selectors.length === 0 || !selectors.every((s) => typeof s === "string" && s !== "")) {
                    throw invalid("Apis", `api ${product} ${apiVersion} needs a non-empty selectors list.`);
                }
                total += selectors.length;
                stored.push({ product, apiVersion, selectors: [...(selectors as string[])] });
            }
            if (total > 30) {
                throw invalid("Apis", `An ApiMcpServer can expose at most 30 APIs, got ${total}.`);
            }
            server.apis = stored;
        }
        const text = (field: "description" | "instructions") => {
            const value = body[field];
            if (value === undefined) return;
            if (typeof value !== "string") throw invalid(field, `${field} must be a string.`);
            server[field] = value;
        };
        text("description");
        text("instructions");
        if (body.language !== undefined) {
            if (body.language !== "ZH_CN" && body.language !== "EN_US") throw invalid("Language", "language must be ZH_CN or EN_US.");
            server.language = body.language;
        }
        if (body.publicAccess !== undefined) {
            if (body.publicAccess !== "on" && body.publicAccess !== "off" && body.publicAccess !== "follow") {
                throw invalid("PublicAccess", "publicAccess must be on, off or follow.");
            }
            server.publicAccess = body.publicAccess;
        }
        if (body.systemTools !== undefined) {
            if (!Array.isArray(body.systemTools) || !body.systemTools.every((tool) => typeof tool === "string")) {
                throw invalid("SystemTools", "systemTools must be a list of names.");
            }
            server.systemTools = [...(body.systemTools as string[])];
        }
        if (body.oauthClientId !== undefined) {
            if (typeof body.oauthClientId !== "string") throw invalid("OauthClientId", "oauthClientId must be a string.");
            if (body.oauthClientId === "") {
                delete server.oauthClientId;
            } else {
                const app = this.apps.get(body.oauthClientId);
                // The API documents that only web and native apps with the /acs/mcp-server scope qualify.
                if (app && (app.AppType === "ServerApp" || !app.PredefinedScopes.includes("/acs/mcp-server"))) {
                    throw invalid("OauthClientId", "Only web and native applications are supported, and the OAuth scope must include /acs/mcp-server.");
                }
                server.oauthClientId = body.oauthClientId;
            }
        }
    }

    private mcpUrls(server: StoredMcpServer): Record<string, string> {
        const origin = this.options.mcpBaseUrl ? this.options.mcpBaseUrl.replace(/\/+$/, "") : `https://${server.host}`;
        const base = `${origin}/accounts/${this.accountId}/custom/${server.name}/id/${server.id}`;
        return { mcp: `${base}/mcp`, sse: `${base}/sse` };
    }

    private mcpServerBody(server: StoredMcpServer): Record<string, unknown> {
        const result: Record<string, unknown> = {
            id: server.id,
            name: server.name,
            description: server.description,
            language: server.language,
            instructions: server.instructions,
            publicAccess: server.publicAccess,
            enableAssumeRole: false,
            enableCustomVpcWhitelist: false,
            vpcWhitelists: [],
            apis: server.apis.map((api) => ({ ...api, selectors: [...api.selectors] })),
            apiInfos: server.apis.flatMap((api) => api.selectors.map((apiName) => ({ product: api.product, apiVersion: api.apiVersion, apiName }))),
            additionalApiDescriptions: [],
            prompts: [],
            systemTools: [...server.systemTools],
            terraformTools: [],
            sourceType: "custom",
            createTime: server.createTime,
            updateTime: server.updateTime,
            urls: this.mcpUrls(server),
        };
        if (server.oauthClientId !== undefined) {
            result.oauthClientId = server.oauthClientId;
        }
        return result;
    }
}

/** Starts a server on 127.0.0.1 with an ephemeral port. */
export function startAlibabaApiServer(options: AlibabaApiServerOptions): Promise<AlibabaApiServer> {
    return AlibabaApiServer.start(options);
}
