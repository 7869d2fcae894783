import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { INTEGRATION_DEFAULTS, parseIntegrationSettings } from "../../config/integration-config";
import { CONFIG_NAMESPACE, StackConfigError } from "../../config/stack-config";

function parse(values: Record<string, unknown>, stack = "dev") {
    return parseIntegrationSettings(
        { get: (key) => (values[key] === undefined ? undefined : typeof values[key] === "string" ? (values[key] as string) : JSON.stringify(values[key])) },
        { stack },
    );
}

function problems(values: Record<string, unknown>): string[] {
    try {
        parse(values);
    } catch (error) {
        expect(error).toBeInstanceOf(StackConfigError);
        return (error as StackConfigError).problems;
    }
    throw new Error("expected a rejection");
}

describe("integration settings", () => {
    it("needs only the admin e-mail; the rest has per-stack defaults", () => {
        const settings = parse({ adminEmail: "ops@example.com" }, "prod");
        expect(settings).toMatchObject({
            oauthAppName: "dify-mcp-prod",
            oauthAppType: "NativeApp",
            mcpServerName: "dify-prod",
            mcpSite: "china",
            llmModel: "qwen-plus",
            mcpServerIdentifier: "aliyun-openapi",
        });
        expect(settings.mcpApis).toBeUndefined();
        expect(parse({ adminEmail: "ops@example.com" }, "a-very-long-stack-name").mcpServerName).toHaveLength(16);
    });

    it("names each bad key with what is allowed", () => {
        const found = problems({ oauthAppType: "ServerApp", mcpSite: "eu", mcpServerIdentifier: "Bad Id", mcpServerName: "9lives" });
        expect(found.join("\n")).toContain(`${CONFIG_NAMESPACE}:adminEmail is not set`);
        expect(found.join("\n")).toContain(`${CONFIG_NAMESPACE}:oauthAppType is "ServerApp"; allowed: WebApp, NativeApp`);
        expect(found.join("\n")).toContain(`${CONFIG_NAMESPACE}:mcpSite is "eu"; allowed: china, international`);
        expect(found.join("\n")).toContain(`${CONFIG_NAMESPACE}:mcpServerIdentifier is "Bad Id"`);
        expect(found.join("\n")).toContain(`${CONFIG_NAMESPACE}:mcpServerName is "9lives"`);
        expect(problems({ adminEmail: "ops@example.com", oauthAccessTokenValidity: "60" })[0]).toContain("from 900 to 10800");
    });

    it("takes MCP server names of 3 to 64 lowercase letters, digits, _ and -, not starting with a digit", () => {
        const rule = 'allowed: 3-64 lowercase letters, digits, "_" and "-", not starting with a digit';
        for (const name of ["abc", `d${"x".repeat(63)}`, "-dify", "_dify_2"]) {
            expect(parse({ adminEmail: "ops@example.com", mcpServerName: name }).mcpServerName).toBe(name);
        }
        for (const name of ["ab", `d${"x".repeat(64)}`, "9lives", "0ab", "Dify", "dify.mcp"]) {
            expect(problems({ adminEmail: "ops@example.com", mcpServerName: name })).toEqual([`${CONFIG_NAMESPACE}:mcpServerName is "${name}"; ${rule}`]);
        }
    });

    it("reads the MCP API selection as a list of objects", () => {
        const apis = [{ product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeInstances"] }];
        expect(parse({ adminEmail: "ops@example.com", mcpApis: apis }).mcpApis).toEqual(apis);
        expect(problems({ adminEmail: "ops@example.com", mcpApis: ["Ecs"] })[0]).toContain("{product, apiVersion, selectors}");
    });

    it("keeps Pulumi.yaml's declared defaults equal to the code's", () => {
        const project = yaml.load(fs.readFileSync(path.resolve(__dirname, "../../Pulumi.yaml"), "utf8")) as {
            config: Record<string, { default?: unknown }>;
        };
        for (const [key, value] of Object.entries(INTEGRATION_DEFAULTS)) {
            const declared = project.config[`${CONFIG_NAMESPACE}:${key}`];
            expect(declared, `Pulumi.yaml declares ${key}`).toBeDefined();
            if (key !== "agentSystemPrompt") {
                expect(declared.default, `default of ${key}`).toEqual(value);
            }
        }
    });
});
