// A `single` stack must keep every URN it had before the `ha` topology existed: a changed URN is a delete and a
// create to Pulumi (a new instance, a new data disk) unless an alias says otherwise. The URNs of the default
// single program are pinned in single-urns.txt; when a change means to add or rename a resource, regenerate the
// file (UPDATE_SINGLE_URNS=1) and say in the commit what existing stacks will see.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, expect, it } from "vitest";
import { importProgram } from "./program-under-mocks";
import { installMocks, settle, valueOf } from "./pulumi-mocks";

const PINNED = path.join(__dirname, "single-urns.txt");
const urns: string[] = [];

beforeAll(async () => {
    pulumi.runtime.setAllConfig(
        {
            "alicloud:region": "cn-hangzhou",
            "dify-mcp-stack:adminEmail": "ops@example.com",
            "dify-mcp-stack:dashscopeApiKey": "sk-test-0123456789abcdef",
        },
        ["dify-mcp-stack:dashscopeApiKey"],
    );
    installMocks();
    // The mock monitor names each resource's URN in its answer; record them as it answers.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(request: unknown, callback: (error: Error | null, response?: { getUrn(): string }) => void): void;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (request, callback) =>
        register(request, (error, response) => {
            if (response !== undefined) {
                urns.push(response.getUrn());
            }
            callback(error, response);
        });
    const program = await importProgram();
    await valueOf(program.agentAppId);
    await settle();
});

it("keeps the URN of every resource of a default single stack", async () => {
    const actual = [...new Set(urns)].sort();
    if (process.env.UPDATE_SINGLE_URNS === "1") {
        fs.writeFileSync(PINNED, actual.join("\n") + "\n");
    }
    const pinned = fs.readFileSync(PINNED, "utf8").trim().split("\n");
    expect(actual).toEqual(pinned);
});
