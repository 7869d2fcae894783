// What the stack config and the OpenAPI MCP server provider both say about the server: the Alibaba Cloud sites
// and the shape of an API selection. No imports: the config parser reads them without loading the provider.

/** Which Alibaba Cloud site the account belongs to; it decides the API host. */
export type AlibabaCloudSite = "china" | "international";
export const ALIBABA_CLOUD_SITES: readonly AlibabaCloudSite[] = ["china", "international"];
export const DEFAULT_ALIBABA_CLOUD_SITE: AlibabaCloudSite = "china";

/** APIs of one product and version that the MCP server exposes as tools. */
export interface McpApiSelection {
    /** Product code as in the OpenAPI portal, e.g. `Ecs`. */
    product: string;
    /** e.g. `2014-05-26`. */
    apiVersion: string;
    /** API names, e.g. `DescribeInstances`. */
    selectors: string[];
}
