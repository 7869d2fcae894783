// Wall time and API calls of each Pulumi step for the e2e stack (tests/e2e/program): the real CLI and engine on a
// local file backend, the project's dynamic providers, Dify's real API server (1.14.1, tests/harness/real-dify.ts)
// behind a recording proxy that counts its console calls, the Alibaba-like API server and the loopback MCP server
// (tests/e2e/e2e-stack.ts). Prints one row per step; fails (exit 1) when a no-op `up` or a `refresh` without drift
// makes a write call.
// Usage: npm run bench:e2e (builds first; needs the CLI: bash scripts/pulumi-cli.sh, and PostgreSQL and Redis:
// scripts/test.sh installs them).
import { ApiCalls, assertSucceeded, createE2eStack, E2eStack, startE2eServers, StepResult } from "../tests/e2e/e2e-stack";

interface BenchStep {
    name: string;
    run: (stack: E2eStack) => Promise<StepResult>;
    /** Most write calls allowed (undefined: no target). */
    maxWrites?: number;
}

const STEPS: BenchStep[] = [
    { name: "preview (empty stack)", run: (stack) => stack.preview(), maxWrites: 0 },
    { name: "up (create all)", run: (stack) => stack.up() },
    { name: "up (no changes)", run: (stack) => stack.up(), maxWrites: 0 },
    { name: "refresh (no drift)", run: (stack) => stack.refresh(), maxWrites: 0 },
    { name: "destroy", run: (stack) => stack.destroy() },
];

function changes(result: StepResult): string {
    const summary = result.summary?.changeSummary ?? {};
    return Object.entries(summary).map(([op, count]) => `${op} ${count}`).join(", ") || "-";
}

function pad(text: string | number, width: number, right = false): string {
    const value = String(text);
    return right ? value.padStart(width) : value.padEnd(width);
}

function callColumns(calls: ApiCalls): string[] {
    return [`${calls.alibabaReads}/${calls.alibabaWrites}`, `${calls.difyReads}/${calls.difyWrites}/${calls.difyAuth}`, String(calls.reads), String(calls.writes)];
}

async function main(): Promise<void> {
    const servers = await startE2eServers();
    let stack: E2eStack | undefined;
    const rows: { step: BenchStep; result: StepResult }[] = [];
    try {
        stack = await createE2eStack(servers);
        const timings = servers.dify.timings;
        console.log(
            `Dify ${servers.dify.version} (real API server) started in ${servers.difyStartSeconds.toFixed(1)} s ` +
                `(API import ${timings.api.toFixed(1)} s${timings.templateBuilt ? ", database template built" : ""}); not counted below`,
        );
        console.log(`Pulumi ${stack.backend.cli.version}, backend ${stack.backend.url}`);
        console.log("up, refresh and destroy run with --skip-preview (the preview is measured on its own).\n");
        for (const step of STEPS) {
            rows.push({ step, result: assertSucceeded(await step.run(stack)) });
        }
    } finally {
        stack?.cleanup();
        await servers.close();
    }

    const header = ["step", "wall ms", "engine changes", "Alibaba r/w", "Dify r/w/auth", "reads", "writes", "target", "MCP (Dify→server)"];
    const widths = [22, 8, 18, 12, 14, 6, 7, 16, 18];
    console.log(header.map((cell, i) => pad(cell, widths[i], i === 1)).join("  "));
    let missed = false;
    for (const { step, result } of rows) {
        const met = step.maxWrites === undefined || result.calls.writes <= step.maxWrites;
        missed ||= !met;
        const target = step.maxWrites === undefined ? "-" : `${step.maxWrites} writes ${met ? "ok" : "MISSED"}`;
        const mcp = Object.values(result.calls.mcpByKind).reduce((sum, count) => sum + count, 0);
        const cells = [step.name, Math.round(result.ms), changes(result), ...callColumns(result.calls), target, mcp];
        console.log(cells.map((cell, i) => pad(cell, widths[i], i === 1)).join("  "));
    }
    console.log("\nWrite calls per step:");
    for (const { step, result } of rows) {
        console.log(`  ${pad(step.name, 22)}  ${result.writesDescribed}`);
    }
    console.log("\nDify auth = login and the unauthenticated GET /console/api/setup probes (each Dify resource signs in on its own).");
    console.log("Dify calls are counted at the proxy per route as the fake Dify counted them (POST /setup a write, POST plugin/list/latest-versions a read).");
    console.log("MCP = requests Dify made to the MCP server during the step (connection attempts, OAuth discovery, tool listing).");
    if (missed) {
        console.error("\nA no-op step made write calls (target: 0).");
        process.exitCode = 1;
    }
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
});
