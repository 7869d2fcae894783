// Typed calls of Cloud Assistant (product Ecs, version 2014-05-26, RPC style): RunCommand,
// DescribeInvocationResults and DescribeCloudAssistantStatus. Parameter and field names are the wire names of
// Alibaba's official SDK models (Python alibabacloud-ecs20140526 7.11.8, npm @alicloud/ecs20140526 7.11.6 sends
// the same), and only parameters those models define are sent; all travel in the query (POST "/"), lists as
// `Name.1`, `Name.2`, … Signing, retries and errors are handled by `AlibabaApiClient` (client.ts).
//
// RAM actions needed: ecs:RunCommand (on acs:ecs:{region}:{account}:instance/{id} and …:command/*),
// ecs:DescribeInvocationResults and ecs:DescribeCloudAssistantStatus (system policies
// AliyunECSAssistantFullAccess / AliyunECSAssistantReadonlyAccess). RunCommand runs the script as root by
// default: holding ecs:RunCommand on an instance is effectively root on it, so grant it on the instances
// concerned only.
import { AlibabaApiClient, ApiResponse, QueryValue, isApiErrorCode, AlibabaApiError } from "./client";

export const ECS_VERSION = "2014-05-26";

/**
 * The SDK's `_endpoint_map` entries that concern public (including finance and government) regions. Every
 * other region follows the SDK's "regional" rule, `ecs.<region>.aliyuncs.com`. A plain object, not a Map:
 * Pulumi's closure serializer does not revive module-level Maps or Sets.
 */
const ECS_ENDPOINT_MAP: Readonly<Record<string, string>> = {
    "cn-hangzhou": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-shanghai-finance-1": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-shenzhen-finance-1": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-north-2-gov-1": "ecs.aliyuncs.com",
};

/** The ECS endpoint of a region, as the official SDK picks it (cn-hangzhou → ecs-cn-hangzhou.aliyuncs.com). */
export function ecsEndpoint(regionId: string): string {
    const region = regionId.trim();
    if (!/^[a-z0-9-]+$/.test(region)) {
        throw new Error(`regionId "${regionId}" is not a region id (like cn-hangzhou)`);
    }
    return ECS_ENDPOINT_MAP[region] ?? `ecs.${region}.aliyuncs.com`;
}

/** RunCommand: "the size of the Base64-encoded command content cannot exceed 24 KB" (SDK 7.11.8). */
export const COMMAND_CONTENT_MAX_BASE64_BYTES = 24 * 1024;
/** DescribeInvocationResults: `Output` is cut at 24 KB, the size cut off is in `Dropped`. */
export const OUTPUT_MAX_BYTES = 24 * 1024;
/** RunCommand `Timeout` range (seconds): at least 10 (InvokeCommand docs), at most 86400 (CreateCommand docs). */
export const COMMAND_TIMEOUT_MIN_SECONDS = 10;
export const COMMAND_TIMEOUT_MAX_SECONDS = 86_400;

/** `InvocationStatus` of one instance's run, as documented (DescribeInvocationResults). */
export type InvocationStatus =
    | "Pending"
    | "Invalid"
    | "Aborted"
    | "Running"
    | "Success"
    | "Failed"
    | "Error"
    | "Timeout"
    | "Cancelled"
    | "Stopping"
    | "Terminated"
    | "Scheduled";

/** The statuses after which a one-shot run will not change any more. */
export const TERMINAL_INVOCATION_STATUSES: readonly InvocationStatus[] = ["Success", "Failed", "Error", "Timeout", "Cancelled", "Terminated", "Invalid", "Aborted"];

export function isTerminalInvocationStatus(status: InvocationStatus): boolean {
    return TERMINAL_INVOCATION_STATUSES.includes(status);
}

/**
 * `InvocationResult.ErrorCode` values that mean "the instance or its agent is not ready yet" (still booting, agent
 * not started or upgrading): running the command again later may succeed. The other documented codes
 * (ExitCodeNonzero, ExecutionTimeout, InstanceNotExists, …) are final. A plain array, for the closure serializer.
 */
export const NOT_READY_RESULT_CODES: readonly string[] = ["ClientNotRunning", "ClientNotResponse", "ClientIsUpgrading", "DeliveryTimeout", "InstanceNotRunning"];

/** Whether a finished run failed only because the instance or its agent was not ready (see NOT_READY_RESULT_CODES). */
export function isNotReadyResult(result: Pick<InvocationResult, "errorCode">): boolean {
    return result.errorCode !== undefined && NOT_READY_RESULT_CODES.includes(result.errorCode);
}

/**
 * Whether a RunCommand API error means the instance cannot take commands yet: an HTTP 4xx answer whose code
 * starts with `InvalidInstance.`. The documented one is 403 `InvalidInstance.NotMatch` ("check whether the
 * instance's status meets the execution conditions": not Running, or its agent not online); other
 * `InvalidInstance.*` codes (`InvalidInstance.NotFound` for an instance just created, the third-party-only
 * `InvalidInstance.NotRunning`) are treated alike. Callers retry these until a deadline of their own.
 */
export function isInstanceNotReadyError(err: unknown): err is AlibabaApiError {
    return isApiErrorCode(err, "InvalidInstance") && err.code !== "InvalidInstance" && err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500;
}

export interface RunShellScriptParams {
    regionId: string;
    instanceId: string;
    /** The script, run by the agent as a shell script (as root, in /root, unless the image says otherwise). */
    script: string;
    /** 10 to 86400; the agent kills the script after it. */
    timeoutSeconds: number;
    /** The command's name (at most 128 characters), shown in the console. */
    name: string;
}

export interface RunShellScriptResult {
    /** `t-…`: pass to describeInvocationResult. */
    invokeId: string;
    /** `c-…`: the (not kept) command. */
    commandId: string;
}

/** One instance's result of one run. */
export interface InvocationResult {
    status: InvocationStatus;
    /** The script's exit code, once the run is over (absent while it runs). */
    exitCode?: number;
    /** stdout and stderr, decoded from Base64 as UTF-8; at most OUTPUT_MAX_BYTES. */
    output: string;
    /** e.g. ExitCodeNonzero, ExecutionTimeout, ClientNotRunning; absent when there is none. */
    errorCode?: string;
    errorInfo?: string;
    /** Bytes of output cut off beyond OUTPUT_MAX_BYTES; absent when nothing was. */
    dropped?: number;
}

export interface CloudAssistantStatus {
    /** `CloudAssistantStatus` is "true": the agent sent a heartbeat within the last 2 minutes. */
    online: boolean;
    /** The agent has reported at least once (it has a version or a heartbeat time). An inference, not documented. */
    everReported: boolean;
    version?: string;
    lastHeartbeatTime?: string;
}

interface RunCommandResponse {
    CommandId?: string;
    InvokeId?: string;
}

interface InvocationResultBody {
    InstanceId?: string;
    InvokeId?: string;
    InvocationStatus?: string;
    Output?: string;
    ExitCode?: number;
    ErrorCode?: string;
    ErrorInfo?: string;
    Dropped?: number;
}

interface DescribeInvocationResultsResponse {
    Invocation?: { InvocationResults?: { InvocationResult?: InvocationResultBody[] } };
}

interface DescribeCloudAssistantStatusResponse {
    InstanceCloudAssistantStatusSet?: {
        InstanceCloudAssistantStatus?: {
            InstanceId?: string;
            CloudAssistantStatus?: string;
            CloudAssistantVersion?: string;
            LastHeartbeatTime?: string;
        }[];
    };
}

function rpc<T>(client: AlibabaApiClient, action: string, query: Record<string, QueryValue>): Promise<ApiResponse<T>> {
    return client.call<T>({
        product: "Ecs",
        action,
        version: ECS_VERSION,
        style: "RPC",
        method: "POST",
        pathname: "/",
        query,
    });
}

function nonEmpty(value: string | undefined): string | undefined {
    return value === undefined || value === "" ? undefined : value;
}

/** CommandContent for a script: Base64 of its UTF-8 bytes. Throws, naming the limit, when it is too large. */
export function encodeShellScript(script: string): string {
    const encoded = Buffer.from(script, "utf8").toString("base64");
    if (encoded.length > COMMAND_CONTENT_MAX_BASE64_BYTES) {
        throw new Error(
            `the script is too large for Cloud Assistant: its Base64 encoding is ${encoded.length} bytes, the limit is 24 KB ` +
                `(${COMMAND_CONTENT_MAX_BASE64_BYTES} bytes of Base64, about 18 KB of script)`,
        );
    }
    return encoded;
}

/** Cloud Assistant calls bound to one client (whose endpoint is `ecsEndpoint(regionId)`). */
export function cloudAssistantApi(client: AlibabaApiClient) {
    return {
        /**
         * Runs a shell script once on one instance (RunCommand, Type RunShellScript, the command not kept). An
         * instance that cannot take commands yet fails with an error for which `isInstanceNotReadyError` is true.
         */
        runShellScript: async (params: RunShellScriptParams): Promise<RunShellScriptResult> => {
            // Base64, not PlainText: the script travels in the URL query, and Base64 leaves nothing (newlines, "+",
            // quotes, non-ASCII) to the query encoders of the two ends.
            const content = encodeShellScript(params.script);
            const timeout = params.timeoutSeconds;
            if (!Number.isInteger(timeout) || timeout < COMMAND_TIMEOUT_MIN_SECONDS || timeout > COMMAND_TIMEOUT_MAX_SECONDS) {
                throw new Error(`timeoutSeconds must be an integer from ${COMMAND_TIMEOUT_MIN_SECONDS} to ${COMMAND_TIMEOUT_MAX_SECONDS}, got ${timeout}`);
            }
            const body = (
                await rpc<RunCommandResponse>(client, "RunCommand", {
                    RegionId: params.regionId,
                    Type: "RunShellScript",
                    CommandContent: content,
                    ContentEncoding: "Base64",
                    InstanceId: [params.instanceId],
                    Timeout: timeout,
                    Name: params.name,
                    KeepCommand: false,
                })
            ).body;
            if (!body.InvokeId || !body.CommandId) {
                throw new Error(`RunCommand answered without InvokeId or CommandId (${JSON.stringify(body)})`);
            }
            return { invokeId: body.InvokeId, commandId: body.CommandId };
        },

        /** The run's result on the instance, or undefined when the API knows no such run (or not yet). */
        describeInvocationResult: async (params: { regionId: string; invokeId: string; instanceId: string }): Promise<InvocationResult | undefined> => {
            const body = (
                await rpc<DescribeInvocationResultsResponse>(client, "DescribeInvocationResults", {
                    RegionId: params.regionId,
                    InvokeId: params.invokeId,
                    InstanceId: params.instanceId,
                    // Base64, the API's documented default, decoded here: it carries the output's bytes exactly
                    // (control characters, invalid UTF-8 cut at the 24 KB limit), where PlainText puts them into
                    // JSON text as the server sees fit.
                    ContentEncoding: "Base64",
                })
            ).body;
            const results = body.Invocation?.InvocationResults?.InvocationResult ?? [];
            const result = results.find((item) => item.InstanceId === params.instanceId && (item.InvokeId === undefined || item.InvokeId === params.invokeId));
            if (!result || !result.InvocationStatus) {
                return undefined;
            }
            // A status this module does not know passes through as it is (typed as the documented ones).
            const status = result.InvocationStatus as InvocationStatus;
            const answer: InvocationResult = { status, output: Buffer.from(result.Output ?? "", "base64").toString("utf8") };
            if (typeof result.ExitCode === "number" && isTerminalInvocationStatus(status)) answer.exitCode = result.ExitCode;
            const errorCode = nonEmpty(result.ErrorCode);
            if (errorCode !== undefined) answer.errorCode = errorCode;
            const errorInfo = nonEmpty(result.ErrorInfo);
            if (errorInfo !== undefined) answer.errorInfo = errorInfo;
            if (typeof result.Dropped === "number" && result.Dropped > 0) answer.dropped = result.Dropped;
            return answer;
        },

        /** The instance's agent status, or undefined when the API lists no such instance. */
        cloudAssistantStatus: async (params: { regionId: string; instanceId: string }): Promise<CloudAssistantStatus | undefined> => {
            const body = (
                await rpc<DescribeCloudAssistantStatusResponse>(client, "DescribeCloudAssistantStatus", {
                    RegionId: params.regionId,
                    InstanceId: [params.instanceId],
                })
            ).body;
            const item = body.InstanceCloudAssistantStatusSet?.InstanceCloudAssistantStatus?.find((entry) => entry.InstanceId === params.instanceId);
            if (!item) {
                return undefined;
            }
            const version = nonEmpty(item.CloudAssistantVersion);
            const lastHeartbeatTime = nonEmpty(item.LastHeartbeatTime);
            const status: CloudAssistantStatus = {
                // A STRING "true"/"false" on the wire; compared case-insensitively in case a boolean ever comes.
                online: String(item.CloudAssistantStatus).toLowerCase() === "true",
                everReported: version !== undefined || lastHeartbeatTime !== undefined,
            };
            if (version !== undefined) status.version = version;
            if (lastHeartbeatTime !== undefined) status.lastHeartbeatTime = lastHeartbeatTime;
            return status;
        },
    };
}

export type CloudAssistantApi = ReturnType<typeof cloudAssistantApi>;
