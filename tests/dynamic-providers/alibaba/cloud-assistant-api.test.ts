// Our typed Cloud Assistant calls (cloud-assistant-api.ts) through the real signed client (client.ts) against
// the fake Alibaba API server, whose registered instances run the scripts with bash in a scratch directory.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAlibabaApiClient, isAlibabaApiError } from "../../../dynamic-providers/alibaba/client";
import {
    COMMAND_CONTENT_MAX_BASE64_BYTES,
    CloudAssistantApi,
    InvocationResult,
    NOT_READY_RESULT_CODES,
    cloudAssistantApi,
    ecsEndpoint,
    isInstanceNotReadyError,
    isNotReadyResult,
    isTerminalInvocationStatus,
} from "../../../dynamic-providers/alibaba/cloud-assistant-api";
import { AlibabaApiServer, startAlibabaApiServer } from "../../servers/alibaba-api-server";
import { bashRunner } from "../../servers/cloud-assistant-runner";

const ACCESS_KEY_ID = "test-ak-cloud-assistant";
const ACCESS_KEY_SECRET = "cloud-assistant-test-secret-0123456789";
const REGION = "cn-hangzhou";

let server: AlibabaApiServer;
let api: CloudAssistantApi;
let scratch: string;

beforeAll(async () => {
    // The client reads the default credential chain when it is built; the test process is its own (forks pool).
    process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = ACCESS_KEY_ID;
    process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = ACCESS_KEY_SECRET;
    process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true";
    process.env.ALIBABA_API_RETRY_MAX_ATTEMPTS = "4";
    process.env.ALIBABA_API_RETRY_BASE_DELAY_MS = "1";
    process.env.ALIBABA_API_RETRY_MAX_DELAY_MS = "5";
    server = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET });
    api = cloudAssistantApi(createAlibabaApiClient({ endpoint: server.url }));
});

afterAll(async () => {
    await server?.close();
});

beforeEach(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cloud-assistant-api-"));
    return () => fs.rmSync(scratch, { recursive: true, force: true });
});

/** Polls DescribeInvocationResults until the run is over. */
async function waitForResult(invokeId: string, instanceId: string): Promise<InvocationResult> {
    const deadline = Date.now() + 30_000;
    for (;;) {
        const result = await api.describeInvocationResult({ regionId: REGION, invokeId, instanceId });
        if (result && isTerminalInvocationStatus(result.status)) return result;
        if (Date.now() > deadline) throw new Error(`no result for ${invokeId}: ${JSON.stringify(result)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

function run(instanceId: string, script: string, name = "test-script") {
    return api.runShellScript({ regionId: REGION, instanceId, script, timeoutSeconds: 60, name });
}

describe("ecsEndpoint", () => {
    it("follows the SDK: cn-hangzhou (and the finance regions) from its map, the others ecs.<region>.aliyuncs.com", () => {
        expect(ecsEndpoint("cn-hangzhou")).toBe("ecs-cn-hangzhou.aliyuncs.com");
        expect(ecsEndpoint("cn-shanghai-finance-1")).toBe("ecs-cn-hangzhou.aliyuncs.com");
        expect(ecsEndpoint("cn-shenzhen-finance-1")).toBe("ecs-cn-hangzhou.aliyuncs.com");
        expect(ecsEndpoint("cn-north-2-gov-1")).toBe("ecs.aliyuncs.com");
        expect(ecsEndpoint("ap-southeast-1")).toBe("ecs.ap-southeast-1.aliyuncs.com");
        expect(ecsEndpoint("cn-beijing")).toBe("ecs.cn-beijing.aliyuncs.com");
        expect(() => ecsEndpoint("cn-beijing/../x")).toThrow(/not a region id/);
    });
});

describe("running a shell script", () => {
    it("runs the script on the instance and reads its output (stdout and stderr) and exit code back", async () => {
        server.addInstance("i-run-ok", { run: bashRunner({ env: { WORK: scratch } }) });
        // Characters a query encoder could get wrong: "+", "&", "=", "%", quotes, newlines, non-ASCII.
        const script = [
            'printf "%s\\n" "a+b&c=d 100% \\"quoted\\" \'single\'" > "$WORK/written"',
            'echo "to stdout: 1+1=2 & ümlaut ✓"',
            'echo "to stderr" >&2',
            'test -z "${HOME:-}" && echo "clean environment"',
            "exit 0",
        ].join("\n");
        const { invokeId, commandId } = await run("i-run-ok", script, "write-a-file");
        expect(invokeId).toMatch(/^t-/);
        expect(commandId).toMatch(/^c-/);

        const result = await waitForResult(invokeId, "i-run-ok");
        expect(result).toEqual({ status: "Success", exitCode: 0, output: "to stdout: 1+1=2 & ümlaut ✓\nto stderr\nclean environment\n" });
        expect(fs.readFileSync(path.join(scratch, "written"), "utf8")).toBe("a+b&c=d 100% \"quoted\" 'single'\n");
        // The server decoded exactly the script that was sent.
        expect(server.invocation(invokeId)).toMatchObject({ Script: script, Name: "write-a-file", Timeout: 60, KeepCommand: false, InstanceId: "i-run-ok" });
    });

    it("a failing script reports Failed / ExitCodeNonzero with its exit code and output", async () => {
        server.addInstance("i-run-fail", { run: bashRunner() });
        const { invokeId } = await run("i-run-fail", 'echo "about to fail"; echo "why: disk full" >&2; exit 3');
        const result = await waitForResult(invokeId, "i-run-fail");
        expect(result).toMatchObject({ status: "Failed", exitCode: 3, errorCode: "ExitCodeNonzero", output: "about to fail\nwhy: disk full\n" });
        expect(result.errorInfo).toBeTruthy();
        expect(isNotReadyResult(result)).toBe(false);
        expect(result.dropped).toBeUndefined();
    });

    it("answers Running (without an exit code) until the script ends", async () => {
        let finish: (value: { output: string; exitCode: number }) => void = () => undefined;
        server.addInstance("i-run-slow", { run: () => new Promise((resolve) => (finish = resolve)) });
        const { invokeId } = await run("i-run-slow", "sleep 1");
        const running = await api.describeInvocationResult({ regionId: REGION, invokeId, instanceId: "i-run-slow" });
        expect(running).toEqual({ status: "Running", output: "" });
        finish({ output: "done\n", exitCode: 0 });
        await server.runsSettled();
        expect(await api.describeInvocationResult({ regionId: REGION, invokeId, instanceId: "i-run-slow" })).toEqual({ status: "Success", exitCode: 0, output: "done\n" });
    });

    it("knows no result for an unknown run, or for another instance", async () => {
        server.addInstance("i-run-other", {});
        const { invokeId } = await run("i-run-other", "true");
        await server.runsSettled();
        expect(await api.describeInvocationResult({ regionId: REGION, invokeId: "t-hz0doesnotexist", instanceId: "i-run-other" })).toBeUndefined();
        expect(await api.describeInvocationResult({ regionId: REGION, invokeId, instanceId: "i-run-ok" })).toBeUndefined();
    });

    it("cuts the output at 24 KB and says how much was dropped", async () => {
        server.addInstance("i-run-loud", { run: bashRunner() });
        const { invokeId } = await run("i-run-loud", "head -c 30000 /dev/zero | tr '\\0' x");
        const result = await waitForResult(invokeId, "i-run-loud");
        expect(result.output).toBe("x".repeat(24 * 1024));
        expect(result.dropped).toBe(30000 - 24 * 1024);
    });

    it("sends exactly the SDK's parameter names", async () => {
        server.addInstance("i-run-params", {});
        const mark = server.mark();
        const { invokeId } = await run("i-run-params", "true");
        await server.runsSettled();
        await api.describeInvocationResult({ regionId: REGION, invokeId, instanceId: "i-run-params" });
        await api.cloudAssistantStatus({ regionId: REGION, instanceId: "i-run-params" });
        expect(server.calls.slice(mark).map((call) => [call.product, call.action, call.kind, call.status, call.parameters])).toEqual([
            ["Ecs", "RunCommand", "write", 200, ["CommandContent", "ContentEncoding", "InstanceId.1", "KeepCommand", "Name", "RegionId", "Timeout", "Type"]],
            ["Ecs", "DescribeInvocationResults", "read", 200, ["ContentEncoding", "InstanceId", "InvokeId", "RegionId"]],
            ["Ecs", "DescribeCloudAssistantStatus", "read", 200, ["InstanceId.1", "RegionId"]],
        ]);
    });

    it("refuses a script whose Base64 exceeds 24 KB before sending it; one at the limit runs", async () => {
        server.addInstance("i-run-big", { run: bashRunner() });
        // 18432 bytes of script are exactly 24576 bytes of Base64.
        const atLimit = `${"#".repeat(18432 - 12)}\necho limit\n`;
        expect(Buffer.from(atLimit).toString("base64").length).toBe(COMMAND_CONTENT_MAX_BASE64_BYTES);
        const { invokeId } = await run("i-run-big", atLimit);
        expect(await waitForResult(invokeId, "i-run-big")).toMatchObject({ status: "Success", output: "limit\n" });

        const mark = server.mark();
        const error = await run("i-run-big", `${atLimit}#`).then(
            () => undefined,
            (err: unknown) => err as Error,
        );
        expect(error).toBeInstanceOf(Error);
        expect(error?.message).toContain("24 KB");
        expect(isAlibabaApiError(error)).toBe(false);
        expect(server.countSince(mark).total).toBe(0);
    });

    it("refuses a timeout outside 10..86400 s before sending it", async () => {
        const mark = server.mark();
        for (const timeoutSeconds of [9, 86_401, 30.5]) {
            await expect(api.runShellScript({ regionId: REGION, instanceId: "i-run-ok", script: "true", timeoutSeconds, name: "t" })).rejects.toThrow(/timeoutSeconds/);
        }
        expect(server.countSince(mark).total).toBe(0);
    });

    it("retries throttling like every other call", async () => {
        server.addInstance("i-run-throttled", {});
        server.injectFault({ kind: "throttling", count: 2, actions: ["RunCommand"] });
        const mark = server.mark();
        const { invokeId } = await run("i-run-throttled", "true");
        expect(invokeId).toMatch(/^t-/);
        expect(server.countSince(mark).byAction).toEqual({ RunCommand: 3 });
        expect(server.invocationsOf("i-run-throttled")).toHaveLength(1);
    });
});

describe("an instance that is not ready", () => {
    it("an offline agent: RunCommand is refused as not ready (403 InvalidInstance.NotMatch, not retried), and the status says so", async () => {
        server.addInstance("i-booting", { agentOnline: false, run: bashRunner() });
        expect(await api.cloudAssistantStatus({ regionId: REGION, instanceId: "i-booting" })).toEqual({ online: false, everReported: false });

        const mark = server.mark();
        const error = await run("i-booting", "true").catch((err: unknown) => err);
        expect(isInstanceNotReadyError(error)).toBe(true);
        expect(error).toMatchObject({ code: "InvalidInstance.NotMatch", statusCode: 403, operation: "Ecs.RunCommand", attempts: 1 });
        expect(server.countSince(mark).byAction).toEqual({ RunCommand: 1 });
        expect(server.invocationsOf("i-booting")).toEqual([]);

        server.setAgentOnline("i-booting", true);
        const online = await api.cloudAssistantStatus({ regionId: REGION, instanceId: "i-booting" });
        expect(online).toMatchObject({ online: true, everReported: true });
        expect(online?.version).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        expect(online?.lastHeartbeatTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
        const { invokeId } = await run("i-booting", "echo up");
        expect(await waitForResult(invokeId, "i-booting")).toMatchObject({ status: "Success", output: "up\n" });

        server.setAgentOnline("i-booting", false);
        const offline = await api.cloudAssistantStatus({ regionId: REGION, instanceId: "i-booting" });
        expect(offline).toMatchObject({ online: false, everReported: true, version: online?.version });
    });

    it("an unknown instance: no status, and RunCommand's 404 InvalidInstance.NotFound also counts as not ready", async () => {
        expect(await api.cloudAssistantStatus({ regionId: REGION, instanceId: "i-nonexistent" })).toBeUndefined();
        const error = await run("i-nonexistent", "true").catch((err: unknown) => err);
        expect(error).toMatchObject({ code: "InvalidInstance.NotFound", statusCode: 404 });
        expect(isInstanceNotReadyError(error)).toBe(true);
    });

    it("isInstanceNotReadyError is false for other errors; the result codes of a not-ready agent are listed", async () => {
        server.injectFault({ kind: "throttling", count: 10, actions: ["RunCommand"] });
        const throttled = await run("i-run-ok", "true").catch((err: unknown) => err);
        server.clearFaults();
        expect(throttled).toMatchObject({ code: "Throttling.User" });
        expect(isInstanceNotReadyError(throttled)).toBe(false);
        expect(isInstanceNotReadyError(new Error("InvalidInstance.NotMatch"))).toBe(false);
        expect([...NOT_READY_RESULT_CODES].sort()).toEqual(["ClientIsUpgrading", "ClientNotResponse", "ClientNotRunning", "DeliveryTimeout", "InstanceNotRunning"]);
        expect(isNotReadyResult({ errorCode: "ClientNotRunning" })).toBe(true);
        expect(isNotReadyResult({ errorCode: undefined })).toBe(false);
    });
});
