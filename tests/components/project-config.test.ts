import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { CONFIG_NAMESPACE, parseStackSettings } from "../../config/stack-config";
import { parseIntegrationSettings } from "../../config/integration-config";

interface DeclaredKey {
    type?: string;
    default?: unknown;
    secret?: boolean;
}

const project = yaml.load(fs.readFileSync(path.resolve(__dirname, "../../Pulumi.yaml"), "utf8")) as {
    config: Record<string, DeclaredKey>;
};
/** Pulumi makes a declared key without a default required: only these may be. */
const REQUIRED = ["adminEmail", "dashscopeApiKey"];

describe("Pulumi.yaml's config block", () => {
    it("declares a type and a description for every key, and a default for every optional one", () => {
        for (const [key, declared] of Object.entries(project.config)) {
            const name = key.slice(`${CONFIG_NAMESPACE}:`.length);
            expect(key.startsWith(`${CONFIG_NAMESPACE}:`), key).toBe(true);
            expect(declared.type, key).toMatch(/^(string|integer|boolean|array)$/);
            expect((declared as { description?: string }).description, key).toBeTruthy();
            expect("default" in declared, `${key} has a default`).toBe(!REQUIRED.includes(name));
        }
    });

    it("gives the same settings with its defaults as the code gives with nothing set", () => {
        // What pulumi.Config.get returns when only the declared defaults apply.
        const fromDefaults = {
            get: (key: string) => {
                const declared = project.config[`${CONFIG_NAMESPACE}:${key}`];
                if (declared === undefined || !("default" in declared)) {
                    return key === "adminEmail" ? "ops@example.com" : undefined;
                }
                return typeof declared.default === "string" ? declared.default : JSON.stringify(declared.default);
            },
        };
        const nothingSet = { get: (key: string) => (key === "adminEmail" ? "ops@example.com" : undefined) };
        const context = { stack: "dev", region: "cn-hangzhou" };
        expect(parseStackSettings(fromDefaults, context)).toEqual(parseStackSettings(nothingSet, context));
        expect(parseIntegrationSettings(fromDefaults, context)).toEqual(parseIntegrationSettings(nothingSet, context));
    });

    it("marks the DashScope key secret", () => {
        expect(project.config[`${CONFIG_NAMESPACE}:dashscopeApiKey`].secret).toBe(true);
    });
});
