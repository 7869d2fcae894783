// Counts the Alibaba Cloud API calls each provider operation makes, against the local signature-verifying
// API server. The providers are serialized with pulumi.runtime.serializeFunction and revived with
// require-from-string, as the Pulumi engine's dynamic-provider host does.
// Usage: npm run bench:providers (builds first; runs dist/scripts/bench-providers.js).
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ramOAuthApplicationProvider } from "../dynamic-providers/alibaba/ram-oauth-app";
import { openApiMcpServerProvider } from "../dynamic-providers/alibaba/openapi-mcp-server";
import { AlibabaApiServer, startAlibabaApiServer } from "../tests/servers/alibaba-api-server";

const ACCESS_KEY_ID = "test-ak-benchmark-only";
const ACCESS_KEY_SECRET = "benchmark-only-secret-not-real-0001";

// Generic over the provider's own input/output types, reduced to what the benchmark drives.
interface DrivenProvider {
    check(olds: object, news: object): Promise<{ inputs?: object; failures?: { property: string; reason: string }[] }>;
    diff(id: string, olds: object, news: object): Promise<{ changes?: boolean; replaces?: string[] }>;
    create(inputs: object): Promise<{ id: string; outs?: object }>;
    read(id: string, props: object): Promise<{ id?: string; props?: object }>;
    update(id: string, olds: object, news: object): Promise<{ outs?: object }>;
    delete(id: string, props: object): Promise<void>;
}

/** Serializes and revives the provider like the engine, so the benchmark runs the code that ships. */
async function revive(provider: pulumi.dynamic.ResourceProvider): Promise<DrivenProvider> {
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    const requireFromString = require(require.resolve("require-from-string", { paths: [path.dirname(require.resolve("@pulumi/pulumi"))] })) as (code: string) => { handler: () => DrivenProvider };
    return requireFromString(serialized.text).handler();
}

interface Row {
    resource: string;
    operation: string;
    reads: number;
    writes: number;
    calls: string;
    target: string;
    ms: number;
}

async function measure(server: AlibabaApiServer, rows: Row[], resource: string, operation: string, target: { reads: number; writes: number }, run: () => Promise<unknown>): Promise<void> {
    const mark = server.mark();
    const started = process.hrtime.bigint();
    await run();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const counts = server.countSince(mark);
    const calls = Object.entries(counts.byAction).map(([action, count]) => `${action}×${count}`).join(", ") || "-";
    const met = counts.reads <= target.reads && counts.writes <= target.writes;
    rows.push({ resource, operation, reads: counts.reads, writes: counts.writes, calls, target: `${target.reads}r/${target.writes}w ${met ? "ok" : "OVER"}`, ms });
}

async function lifecycle(server: AlibabaApiServer, rows: Row[], resource: string, provider: DrivenProvider, raw: object, change: object, createWrites: number): Promise<void> {
    const checked = await provider.check({}, raw);
    if (checked.failures && checked.failures.length > 0) {
        throw new Error(`${resource}: check failed: ${JSON.stringify(checked.failures)}`);
    }
    const inputs = checked.inputs ?? raw;
    let id = "";
    let outs: object = {};
    await measure(server, rows, resource, "create", { reads: 0, writes: createWrites }, async () => {
        ({ id, outs = {} } = await provider.create(inputs));
    });
    await measure(server, rows, resource, "refresh (no drift)", { reads: 1, writes: 0 }, async () => {
        const read = await provider.read(id, outs);
        outs = read.props ?? outs;
    });
    await measure(server, rows, resource, "preview (no change)", { reads: 0, writes: 0 }, async () => {
        const diff = await provider.diff(id, outs, (await provider.check(inputs, raw)).inputs ?? raw);
        if (diff.changes) throw new Error(`${resource}: unexpected diff after refresh`);
    });
    const changed = (await provider.check(inputs, { ...raw, ...change })).inputs ?? raw;
    await measure(server, rows, resource, `update (${Object.keys(change).join(", ")})`, { reads: 0, writes: 1 }, async () => {
        const diff = await provider.diff(id, outs, changed);
        if (!diff.changes || (diff.replaces ?? []).length > 0) throw new Error(`${resource}: expected an in-place update`);
        outs = (await provider.update(id, outs, changed)).outs ?? outs;
    });
    await measure(server, rows, resource, "delete", { reads: 0, writes: 1 }, () => provider.delete(id, outs));
    await measure(server, rows, resource, "refresh (deleted)", { reads: 1, writes: 0 }, async () => {
        const read = await provider.read(id, outs);
        if (read.id) throw new Error(`${resource}: deleted resource still reads as present`);
    });
}

function printTable(rows: Row[]): void {
    const headers = ["resource", "operation", "reads", "writes", "calls", "target", "ms"];
    const cells = rows.map((row) => [row.resource, row.operation, String(row.reads), String(row.writes), row.calls, row.target, row.ms.toFixed(1)]);
    const widths = headers.map((header, index) => Math.max(header.length, ...cells.map((cell) => cell[index].length)));
    const line = (values: string[]) => `| ${values.map((value, index) => value.padEnd(widths[index])).join(" | ")} |`;
    console.log(line(headers));
    console.log(`|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`);
    for (const cell of cells) console.log(line(cell));
}

async function main(): Promise<void> {
    // Bench-only credentials for the local server; keep the real credential chain (profiles, ECS metadata) out.
    process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = ACCESS_KEY_ID;
    process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = ACCESS_KEY_SECRET;
    process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true";
    process.env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = "true";
    process.env.ALIBABA_API_RETRY_BASE_DELAY_MS ??= "5";

    const server = await startAlibabaApiServer({ accessKeyId: ACCESS_KEY_ID, accessKeySecret: ACCESS_KEY_SECRET });
    const rows: Row[] = [];
    try {
        const ram = await revive(ramOAuthApplicationProvider);
        const mcp = await revive(openApiMcpServerProvider);
        const redirectUris = ["http://203.0.113.10/console/api/mcp/oauth/callback"];
        await lifecycle(server, rows, "RamOAuthApplication (NativeApp)", ram, { appName: "bench-native", redirectUris, endpoint: server.url }, { displayName: "Bench" }, 1);
        // A web app's secret is a second object (CreateAppSecret): two writes is the API's minimum.
        await lifecycle(server, rows, "RamOAuthApplication (WebApp+secret)", ram, { appName: "bench-web", appType: "WebApp", redirectUris, endpoint: server.url }, { accessTokenValidity: 7200 }, 2);
        await lifecycle(server, rows, "OpenApiMcpServer", mcp, { name: "bench-mcp", oauthClientId: "4123456789012345678", endpoint: server.url }, { description: "Dify tools" }, 1);

        // Throttled create: how many calls a throttling burst costs (retries are counted as calls).
        server.injectFault({ kind: "throttling", count: 2, actions: ["CreateApiMcpServer"] });
        const throttled = (await mcp.check({}, { name: "bench-throttled", endpoint: server.url })).inputs ?? {};
        await measure(server, rows, "OpenApiMcpServer", "create, 2× Throttling.User", { reads: 0, writes: 3 }, () => mcp.create(throttled));
    } finally {
        await server.close();
    }
    printTable(rows);
    const total = server.countSince(0);
    console.log(`\n${total.total} API calls in all (${total.reads} reads, ${total.writes} writes, ${total.errors} answered with an error), every one signature-checked.`);
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
});
