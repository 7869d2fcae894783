// OpenAPI MCP server (OpenAPIExplorer 2024-11-30): exposes chosen Alibaba Cloud APIs as MCP tools, signed in
// through a RAM OAuth application ("Custom OAuth"). `alicloud.OpenApiExplorerApiMcpServer` exists but does not
// output the endpoint URLs Dify needs, hence this dynamic provider. Its `apis` input is checked and ordered by
// mcp-api-selection.ts; the name rule and the sites are in rules/.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { createAlibabaApiClient, endpointProblem, isApiErrorCode } from "./client";
import { type CheckFailure, type CheckedInputs, isStringArray } from "../engine/check";
import { sameSet, sortedSet } from "../engine/diff";
import { containsUnknown, isKnown } from "../engine/unknown";
import {
    MCP_SERVER_NOT_FOUND,
    McpLanguage,
    McpPublicAccess,
    McpServerDescription,
    McpServerSettings,
    McpServerUrls,
    OPENAPI_MCP_ENDPOINTS,
    OpenApiMcpApi,
    openApiMcpApi,
} from "./openapi-mcp-api";
import { checkMcpApis, defaultMcpApis, normalizeMcpApis } from "./mcp-api-selection";
import { ALIBABA_CLOUD_SITES, AlibabaCloudSite, DEFAULT_ALIBABA_CLOUD_SITE, McpApiSelection } from "../../rules/openapi-mcp";
import { MCP_SERVER_NAME_PATTERN, MCP_SERVER_NAME_RULE } from "../../rules/mcp-names";

const MCP_LANGUAGES: readonly McpLanguage[] = ["ZH_CN", "EN_US"];
const MCP_PUBLIC_ACCESS_VALUES: readonly McpPublicAccess[] = ["on", "off", "follow"];

/** The managed server settings (language and publicAccess left out: the API's default, not managed). */
export interface OpenApiMcpServerInputs extends McpServerSettings {
    /** Unique per account; part of the endpoint URL. Changing it replaces the server. */
    name: string;
    site: AlibabaCloudSite;
    /** API host or URL; default from `site`. */
    endpoint: string;
}

export type OpenApiMcpServerRawInputs = Partial<OpenApiMcpServerInputs>;

export interface OpenApiMcpServerOutputs extends OpenApiMcpServerInputs {
    serverId: string;
    /** `mcp` is the Streamable HTTP endpoint (what Dify needs); `sse` the SSE one. */
    urls: McpServerUrls;
    createTime?: string;
    updateTime?: string;
}

/** Validates inputs and fills in defaults; unknown (preview) values pass through unchecked. Pure. */
export function checkOpenApiMcpServerInputs(news: OpenApiMcpServerRawInputs): CheckedInputs<OpenApiMcpServerInputs> {
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    const known = isKnown;

    const name = news.name;
    if (name === undefined || name === "") {
        fail("name", `name is required: ${MCP_SERVER_NAME_RULE}`);
    } else if (known(name) && (typeof name !== "string" || !MCP_SERVER_NAME_PATTERN.test(name))) {
        fail("name", `name "${String(name)}" must be ${MCP_SERVER_NAME_RULE}`);
    }

    let apis: McpApiSelection[] = news.apis ?? defaultMcpApis();
    if (!containsUnknown(apis)) {
        apis = checkMcpApis(apis, fail) ?? apis;
    }

    if (known(news.language) && !MCP_LANGUAGES.includes(news.language as McpLanguage)) {
        fail("language", `language "${String(news.language)}" is not allowed: use one of ${MCP_LANGUAGES.join(", ")}`);
    }
    if (known(news.publicAccess) && !MCP_PUBLIC_ACCESS_VALUES.includes(news.publicAccess as McpPublicAccess)) {
        fail("publicAccess", `publicAccess "${String(news.publicAccess)}" is not allowed: use one of ${MCP_PUBLIC_ACCESS_VALUES.join(", ")}`);
    }
    for (const property of ["description", "instructions", "oauthClientId"] as const) {
        if (known(news[property]) && typeof news[property] !== "string") {
            fail(property, `${property} must be a string`);
        }
    }
    if (news.oauthClientId === "") {
        fail("oauthClientId", "oauthClientId must be a RAM OAuth application id; leave it out to use Alibaba Cloud's official OAuth");
    }
    let systemTools = news.systemTools;
    if (known(systemTools)) {
        if (!isStringArray(systemTools)) {
            fail("systemTools", "systemTools must be a list of tool names, e.g. FetchRamActionDetails");
        } else {
            systemTools = sortedSet(systemTools);
        }
    }

    const site = news.site ?? DEFAULT_ALIBABA_CLOUD_SITE;
    if (known(site) && !ALIBABA_CLOUD_SITES.includes(site)) {
        fail("site", `site "${String(site)}" is not allowed: use one of ${ALIBABA_CLOUD_SITES.join(", ")}`);
    }
    const endpoint = news.endpoint ?? OPENAPI_MCP_ENDPOINTS[ALIBABA_CLOUD_SITES.includes(site) ? site : DEFAULT_ALIBABA_CLOUD_SITE];
    if (known(endpoint)) {
        const problem = typeof endpoint === "string" ? endpointProblem(endpoint) : "endpoint must be a string";
        if (problem) {
            fail("endpoint", `endpoint: ${problem}`);
        }
    }

    const inputs: OpenApiMcpServerInputs = { name: name as string, apis, site, endpoint };
    if (news.description !== undefined) inputs.description = news.description;
    if (news.language !== undefined) inputs.language = news.language;
    if (news.instructions !== undefined) inputs.instructions = news.instructions;
    if (systemTools !== undefined) inputs.systemTools = systemTools;
    if (news.publicAccess !== undefined) inputs.publicAccess = news.publicAccess;
    if (news.oauthClientId !== undefined) inputs.oauthClientId = news.oauthClientId;
    return { inputs, failures };
}

type ComparedProperty =
    | "name"
    | "endpoint"
    | "apis"
    | "description"
    | "instructions"
    | "systemTools"
    | "oauthClientId"
    | "language"
    | "publicAccess";

const REPLACE_PROPERTIES: readonly ComparedProperty[] = ["name", "endpoint"];

/** Properties whose desired value differs from the stored effective value. */
function changedOpenApiMcpServerProperties(olds: Partial<OpenApiMcpServerOutputs>, news: OpenApiMcpServerInputs): ComparedProperty[] {
    const changed: ComparedProperty[] = [];
    const differs = (property: ComparedProperty, same: (desired: unknown, stored: unknown) => boolean) => {
        const desired: unknown = news[property];
        const stored: unknown = olds[property];
        if (containsUnknown(desired) || !same(desired, stored)) {
            changed.push(property);
        }
    };
    const sameText = (a: unknown, b: unknown) => (a ?? "") === (b ?? "");
    differs("name", (a, b) => a === b);
    differs("endpoint", (a, b) => a === b);
    differs("apis", (a, b) => Array.isArray(b) && JSON.stringify(normalizeMcpApis(a as McpApiSelection[])) === JSON.stringify(normalizeMcpApis(b as McpApiSelection[])));
    differs("description", sameText);
    differs("instructions", sameText);
    differs("systemTools", (a, b) => sameSet((a as string[] | undefined) ?? [], isStringArray(b) ? b : []));
    // Left out = the official OAuth app, the same as an empty id.
    differs("oauthClientId", sameText);
    // Left out = the API default, which is not managed: no change whatever the server holds.
    differs("language", (a, b) => a === undefined || a === b);
    differs("publicAccess", (a, b) => a === undefined || a === b);
    return changed;
}

/**
 * Name and endpoint replace the server (the name is fixed, and whether servers are visible through the other
 * site's host is UNCONFIRMED); everything else is one PATCH. Names are unique per account, so a replacement
 * that keeps the name deletes the old server first; a rename creates the new one first, so the old URL keeps
 * working until its users move on.
 */
export function diffOpenApiMcpServer(olds: Partial<OpenApiMcpServerOutputs>, news: OpenApiMcpServerInputs): pulumi.dynamic.DiffResult {
    const changed = changedOpenApiMcpServerProperties(olds, news);
    const replaces = changed.filter((property) => REPLACE_PROPERTIES.includes(property));
    return {
        changes: changed.length > 0,
        replaces,
        deleteBeforeReplace: replaces.length > 0 && !replaces.includes("name"),
    };
}

function settingsForCreate(inputs: OpenApiMcpServerInputs): McpServerSettings {
    const settings: McpServerSettings = { apis: inputs.apis };
    if (inputs.description !== undefined) settings.description = inputs.description;
    if (inputs.language !== undefined) settings.language = inputs.language;
    if (inputs.instructions !== undefined) settings.instructions = inputs.instructions;
    if (inputs.systemTools !== undefined) settings.systemTools = inputs.systemTools;
    if (inputs.publicAccess !== undefined) settings.publicAccess = inputs.publicAccess;
    if (inputs.oauthClientId !== undefined) settings.oauthClientId = inputs.oauthClientId;
    return settings;
}

/** The full desired body: cleared texts and lists are sent empty so a replacing PATCH and a merging one agree. */
function settingsForUpdate(olds: Partial<OpenApiMcpServerOutputs>, inputs: OpenApiMcpServerInputs): Partial<McpServerSettings> {
    const settings: Partial<McpServerSettings> = {
        apis: inputs.apis,
        description: inputs.description ?? "",
        instructions: inputs.instructions ?? "",
        systemTools: inputs.systemTools ?? [],
    };
    if (inputs.language !== undefined) settings.language = inputs.language;
    if (inputs.publicAccess !== undefined) settings.publicAccess = inputs.publicAccess;
    if (inputs.oauthClientId !== undefined) {
        settings.oauthClientId = inputs.oauthClientId;
    } else if (olds.oauthClientId) {
        // Back to the official OAuth app. UNCONFIRMED that an empty id does this; it is the only documented lever.
        settings.oauthClientId = "";
    }
    return settings;
}

function outputsFromDescription(server: McpServerDescription, base: OpenApiMcpServerInputs): OpenApiMcpServerOutputs {
    const outputs: OpenApiMcpServerOutputs = {
        ...base,
        serverId: server.id,
        name: server.name ?? base.name,
        apis: Array.isArray(server.apis) ? normalizeMcpApis(server.apis) : base.apis,
        urls: server.urls ?? {},
    };
    const optional = { description: server.description, language: server.language, instructions: server.instructions, publicAccess: server.publicAccess, oauthClientId: server.oauthClientId };
    for (const [key, value] of Object.entries(optional)) {
        const property = key as keyof typeof optional;
        if (value === undefined || value === null || value === "") {
            delete outputs[property];
        } else {
            (outputs as unknown as Record<string, unknown>)[property] = value;
        }
    }
    if (Array.isArray(server.systemTools) && server.systemTools.length > 0) {
        outputs.systemTools = sortedSet(server.systemTools);
    } else {
        delete outputs.systemTools;
    }
    if (server.createTime) outputs.createTime = server.createTime;
    if (server.updateTime) outputs.updateTime = server.updateTime;
    return outputs;
}

function inputsFromOutputs(outputs: OpenApiMcpServerOutputs): OpenApiMcpServerInputs {
    const { serverId: _serverId, urls: _urls, createTime: _createTime, updateTime: _updateTime, ...inputs } = outputs;
    return inputs;
}

function mcpFor(endpoint: string): OpenApiMcpApi {
    return openApiMcpApi(createAlibabaApiClient({ endpoint }));
}

/** The dynamic provider. Every method builds its own API client; nothing is kept between calls. */
export const openApiMcpServerProvider: pulumi.dynamic.ResourceProvider<OpenApiMcpServerRawInputs, OpenApiMcpServerOutputs> = {
    async check(_olds: OpenApiMcpServerRawInputs, news: OpenApiMcpServerRawInputs) {
        const { inputs, failures } = checkOpenApiMcpServerInputs(news);
        return { inputs: { ...news, ...inputs }, failures };
    },

    async diff(_id: string, olds: OpenApiMcpServerOutputs, news: OpenApiMcpServerRawInputs) {
        return diffOpenApiMcpServer(olds, checkOpenApiMcpServerInputs(news).inputs);
    },

    async create(raw: OpenApiMcpServerRawInputs) {
        const inputs = checkOpenApiMcpServerInputs(raw).inputs;
        const mcp = mcpFor(inputs.endpoint);
        // One token for every retry of this create: the API answers a repeat with the server it already made.
        const created = await mcp.createApiMcpServer(inputs.name, settingsForCreate(inputs), crypto.randomUUID());
        let urls: McpServerUrls | undefined = created.urls;
        let times: Pick<OpenApiMcpServerOutputs, "createTime" | "updateTime"> = {};
        if (!urls?.mcp) {
            // Older API versions may not return the URLs on create.
            const server = await mcp.getApiMcpServer(created.id);
            urls = server.urls;
            times = { createTime: server.createTime, updateTime: server.updateTime };
        }
        const outs: OpenApiMcpServerOutputs = { ...inputs, serverId: created.id, urls: urls ?? {}, ...times };
        return { id: created.id, outs };
    },

    // ReadResult types `inputs` as the outputs type; ours are the checked inputs, hence the untyped result.
    async read(id: string, props?: OpenApiMcpServerOutputs): Promise<pulumi.dynamic.ReadResult> {
        const old = props ?? ({} as Partial<OpenApiMcpServerOutputs>);
        const base = checkOpenApiMcpServerInputs(old).inputs;
        let server: McpServerDescription;
        try {
            server = await mcpFor(base.endpoint).getApiMcpServer(id);
        } catch (err) {
            if (isApiErrorCode(err, MCP_SERVER_NOT_FOUND)) {
                // An empty id tells the engine the resource is gone (refresh drops it from the state).
                return { id: "" };
            }
            throw err;
        }
        const outputs = outputsFromDescription(server, base);
        return { id, props: outputs, inputs: inputsFromOutputs(outputs) };
    },

    async update(id: string, olds: OpenApiMcpServerOutputs, raw: OpenApiMcpServerRawInputs) {
        const inputs = checkOpenApiMcpServerInputs(raw).inputs;
        const changed = changedOpenApiMcpServerProperties(olds, inputs);
        if (changed.length > 0) {
            await mcpFor(inputs.endpoint).updateApiMcpServer(id, settingsForUpdate(olds, inputs), crypto.randomUUID());
        }
        // PATCH answers only a request id; the URLs depend on the (unchanged) name and id.
        const outs: OpenApiMcpServerOutputs = {
            ...inputs,
            serverId: id,
            urls: olds.urls ?? {},
        };
        if (olds.createTime) outs.createTime = olds.createTime;
        return { outs };
    },

    async delete(id: string, props: OpenApiMcpServerOutputs) {
        const endpoint = checkOpenApiMcpServerInputs(props).inputs.endpoint;
        try {
            await mcpFor(endpoint).deleteApiMcpServer(id, crypto.randomUUID());
        } catch (err) {
            if (!isApiErrorCode(err, MCP_SERVER_NOT_FOUND)) {
                throw err;
            }
        }
    },
};

export interface McpApiSelectionArgs {
    product: pulumi.Input<string>;
    apiVersion: pulumi.Input<string>;
    selectors: pulumi.Input<pulumi.Input<string>[]>;
}

export interface OpenApiMcpServerArgs {
    /** 3–64 lowercase letters, digits, '_' or '-', not starting with a digit; unique per account. Changing it replaces the server. */
    name: pulumi.Input<string>;
    /** APIs exposed as tools (at most 30). Default: ECS DescribeRegions, DescribeInstances, DescribeInstanceStatus. */
    apis?: pulumi.Input<pulumi.Input<McpApiSelectionArgs>[]>;
    description?: pulumi.Input<string>;
    /** `ZH_CN` or `EN_US`; left out = the API default. */
    language?: pulumi.Input<McpLanguage>;
    /** MCP `instructions` sent to clients. */
    instructions?: pulumi.Input<string>;
    /** System tools, e.g. `FetchRamActionDetails`. */
    systemTools?: pulumi.Input<pulumi.Input<string>[]>;
    /** `on`, `off` or `follow` (the account setting); left out = the API default. */
    publicAccess?: pulumi.Input<McpPublicAccess>;
    /** AppId of a RAM OAuth application (web or native, scope /acs/mcp-server). Left out = official OAuth. */
    oauthClientId?: pulumi.Input<string>;
    /** `china` (default, openapi-mcp.cn-hangzhou.aliyuncs.com) or `international` (openapi-mcp.ap-southeast-1.aliyuncs.com). */
    site?: pulumi.Input<AlibabaCloudSite>;
    /** Explicit API host or URL; overrides `site`. */
    endpoint?: pulumi.Input<string>;
}

/**
 * An OpenAPI MCP server. Credentials come from the Alibaba Cloud default credential chain of the machine
 * running `pulumi`, never from inputs.
 */
export class OpenApiMcpServer extends pulumi.dynamic.Resource {
    declare public readonly serverId: pulumi.Output<string>;
    /** `urls.mcp`: the Streamable HTTP endpoint to give Dify; `urls.sse`: the SSE endpoint. */
    declare public readonly urls: pulumi.Output<McpServerUrls>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly apis: pulumi.Output<McpApiSelection[]>;
    declare public readonly description: pulumi.Output<string | undefined>;
    declare public readonly language: pulumi.Output<McpLanguage | undefined>;
    declare public readonly instructions: pulumi.Output<string | undefined>;
    declare public readonly systemTools: pulumi.Output<string[] | undefined>;
    declare public readonly publicAccess: pulumi.Output<McpPublicAccess | undefined>;
    declare public readonly oauthClientId: pulumi.Output<string | undefined>;
    declare public readonly site: pulumi.Output<AlibabaCloudSite>;
    declare public readonly endpoint: pulumi.Output<string>;
    declare public readonly createTime: pulumi.Output<string | undefined>;

    constructor(name: string, args: OpenApiMcpServerArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            openApiMcpServerProvider,
            name,
            {
                name: args.name,
                apis: args.apis,
                description: args.description,
                language: args.language,
                instructions: args.instructions,
                systemTools: args.systemTools,
                publicAccess: args.publicAccess,
                oauthClientId: args.oauthClientId,
                site: args.site,
                endpoint: args.endpoint,
                serverId: undefined,
                urls: undefined,
                createTime: undefined,
            },
            opts,
            "alibaba",
            "OpenApiMcpServer",
        );
    }

    /** `urls.mcp`, the Streamable HTTP endpoint to register in Dify. */
    get mcpUrl(): pulumi.Output<string> {
        return this.urls.apply((urls) => {
            if (!urls?.mcp) {
                throw new Error("the OpenAPI MCP API returned no urls.mcp for this server");
            }
            return urls.mcp;
        });
    }
}
