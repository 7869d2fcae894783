// The program (index.ts) under Pulumi's mocks, with every dynamic resource it creates replaced by its stub
// (dynamic-stubs.ts: the real ones cannot be serialized from inside vitest). One list, so a new dynamic resource
// is stubbed for every program test at once.
import { vi } from "vitest";
import type * as pulumi from "@pulumi/pulumi";

/** Module (relative to this folder) and exported class of each dynamic resource index.ts creates. */
const DYNAMIC_RESOURCES: ReadonlyArray<readonly [string, string]> = [
    ["../../dynamic-providers/dify/readiness", "DifyReadiness"],
    ["../../dynamic-providers/dify/instance-configuration", "DifyInstanceConfiguration"],
    ["../../dynamic-providers/alibaba/ram-oauth-app", "RamOAuthApplication"],
    ["../../dynamic-providers/alibaba/openapi-mcp-server", "OpenApiMcpServer"],
    ["../../dynamic-providers/dify/admin", "DifyAdmin"],
    ["../../dynamic-providers/dify/model-provider", "DifyModelProvider"],
    ["../../dynamic-providers/dify/mcp-tool-provider", "DifyMcpToolProvider"],
    ["../../dynamic-providers/dify/agent-app", "DifyAgentApp"],
];

export type Program = Record<string, pulumi.Output<unknown>>;

/** Imports index.ts (once per test file) with the stubs in place; set the config and the mocks first. */
export async function importProgram(): Promise<Program> {
    for (const [modulePath, className] of DYNAMIC_RESOURCES) {
        vi.doMock(modulePath, async (original: () => Promise<Record<string, unknown>>) => ({
            ...(await original()),
            [className]: ((await import("./dynamic-stubs")) as Record<string, unknown>)[className],
        }));
    }
    return (await import("../../index")) as unknown as Program;
}
