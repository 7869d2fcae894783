// Which Alibaba Cloud APIs an OpenAPI MCP server exposes (its `apis` input): the default, the check, and the one
// order in which inputs, API answers and stored state are compared (the API treats selections as sets).
import { isStringArray } from "../engine/check";
import { sortedSet } from "../engine/diff";
import type { McpApiSelection } from "../../rules/openapi-mcp";

/** The console's limit on the APIs one MCP server exposes. */
const MAX_MCP_APIS = 30;
const API_VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const PRODUCT_PATTERN = /^[A-Za-z][A-Za-z0-9-]*$/;
const API_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9]*$/;

/** ECS read-only calls: enough for "list my ECS instances and their status" prompts. */
const DEFAULT_MCP_APIS: readonly McpApiSelection[] = [
    { product: "Ecs", apiVersion: "2014-05-26", selectors: ["DescribeRegions", "DescribeInstances", "DescribeInstanceStatus"] },
];

/** A copy of the default selection: checked inputs never share the module's arrays. */
export function defaultMcpApis(): McpApiSelection[] {
    return DEFAULT_MCP_APIS.map((api) => ({ ...api, selectors: [...api.selectors] }));
}

/** Merges selections of the same product and version and sorts everything: the API treats them as sets. */
export function normalizeMcpApis(apis: readonly McpApiSelection[]): McpApiSelection[] {
    const merged = new Map<string, McpApiSelection>();
    for (const api of apis) {
        const key = `${api.product}\u0000${api.apiVersion}`;
        const existing = merged.get(key);
        merged.set(key, {
            product: api.product,
            apiVersion: api.apiVersion,
            selectors: sortedSet([...(existing?.selectors ?? []), ...(api.selectors ?? [])]),
        });
    }
    return [...merged.values()].sort((a, b) =>
        a.product === b.product ? a.apiVersion.localeCompare(b.apiVersion) : a.product.localeCompare(b.product),
    );
}

/** Reports what is wrong with a known `apis` input through `fail` and returns it normalized (undefined when it is no list). */
export function checkMcpApis(apis: unknown, fail: (property: string, reason: string) => void): McpApiSelection[] | undefined {
    if (!Array.isArray(apis) || apis.length === 0) {
        fail("apis", "apis must list at least one { product, apiVersion, selectors } entry");
        return undefined;
    }
    for (const [index, api] of apis.entries()) {
        const entry = (api ?? {}) as Partial<McpApiSelection>;
        if (typeof entry.product !== "string" || !PRODUCT_PATTERN.test(entry.product)) {
            fail("apis", `apis[${index}].product must be a product code such as "Ecs", got ${JSON.stringify(entry.product)}`);
        }
        if (typeof entry.apiVersion !== "string" || !API_VERSION_PATTERN.test(entry.apiVersion)) {
            fail("apis", `apis[${index}].apiVersion must look like "2014-05-26", got ${JSON.stringify(entry.apiVersion)}`);
        }
        if (!isStringArray(entry.selectors) || entry.selectors.length === 0) {
            fail("apis", `apis[${index}].selectors must list at least one API name such as "DescribeInstances"`);
            continue;
        }
        for (const selector of entry.selectors) {
            if (!API_NAME_PATTERN.test(selector)) {
                fail("apis", `apis[${index}].selectors: "${selector}" is not an API name`);
            }
        }
    }
    const normalized = normalizeMcpApis(apis as McpApiSelection[]);
    const total = normalized.reduce((sum, api) => sum + api.selectors.length, 0);
    if (total > MAX_MCP_APIS) {
        fail("apis", `apis selects ${total} APIs; an MCP server exposes at most ${MAX_MCP_APIS}`);
    }
    return normalized;
}
