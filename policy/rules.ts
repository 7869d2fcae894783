// Guardrail policies for dify-mcp-stack. index.ts serves them as a CrossGuard policy pack; tests/policy feeds them
// the resources the project's real components register (captured under Pulumi mocks), the way the policy SDK
// calls them.
//
// Resources are matched by type token and read as plain property bags, so the pack needs neither
// @pulumi/alicloud nor the project's dynamic providers' packages installed. The rules the project already has
// are imported from its dependency-free rule modules (rules/) rather than restated: CIDR parsing and the widest
// allowed block (input-rules.ts), instance sizing (instance-size.ts) and the tags the host sets for it
// (instance-tags.ts), the Dify version order and minimum (dify-version.ts), what the RAM OAuth app must be
// (ram-oauth-app.ts). The pack imports nothing else of the project's. Type tokens are in resource-types.ts, how a
// security group rule is read in security-group-rules.ts, and the ha topology's policies (RDS, Redis, OSS, app
// nodes behind the load balancer) in ha-rules.ts.
//
// What the engine hands the pack: `validateResource` gets a resource's inputs after its provider's Check (for the
// alicloud provider defaults such as policy "accept" are filled in; for the project's dynamic resources their own
// `check` fills appType, scopes, …); `validateStack` gets every resource's outputs, with `propertyDependencies`
// telling which resource a property's value came from. Values still unknown during a preview raise the SDK's
// UnknownValueError, which it reports as an advisory "can't run during preview"; the stack policies below find
// security groups and prefix lists through propertyDependencies so that they do not trip over the ids a first
// preview cannot know.
import type {
    EnforcementLevel,
    Policies,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";

// Re-exported so tests outside policy/ (whose node_modules is policy/node_modules) can name them.
export type {
    Policies,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
import { MIN_DIFY_VERSION, compareDifyVersions, parseDifyVersion } from "../rules/dify-version";
import { type InstanceSize, MIN_MEMORY_GIB, MIN_VCPUS, instanceTypeSizeFromName, isLargeEnoughForDify } from "../rules/instance-size";
import { DIFY_VERSION_TAG, MEMORY_TAG, VCPU_TAG } from "../rules/instance-tags";
import { MCP_SERVER_SCOPE, RAM_OAUTH_APP_TYPES, RAM_OAUTH_PROTOCOL_VERSION } from "../rules/ram-oauth-app";
import { type AddressBlock, type AddressFamily, coverMostOfInternet, isWorldWideBlock, shareOfInternet } from "./addresses";
import { haPolicies } from "./ha-rules";
import { ECS_DISK, ECS_INSTANCE, SECURITY_GROUP_RULE } from "./resource-types";
import {
    type PortRange,
    PROTOCOL_TRANSPORTS,
    type ReadRule,
    type RuleSource,
    type SecurityGroupRuleProps,
    isKnownProtocol,
    prefixListBlocks,
    readRule,
    securityGroupOf,
    text,
    usesPrefixList,
} from "./security-group-rules";

export { ECS_DISK, ECS_INSTANCE, SECURITY_GROUP_RULE } from "./resource-types";
export { type PortRange, parsePortRange } from "./security-group-rules";

/** A `pulumi.dynamic.Resource` registered without a module and type name has this type. */
export const DYNAMIC_RESOURCE = "pulumi-nodejs:dynamic:Resource";
/** The project's dynamic resources register as `pulumi-nodejs:dynamic/<module>:<Type>`. */
const NAMED_DYNAMIC_RESOURCE_PREFIX = "pulumi-nodejs:dynamic/";
/** dynamic-providers/alibaba/ram-oauth-app.ts registers the RAM OAuth app under this type. */
export const RAM_OAUTH_APP = "pulumi-nodejs:dynamic/alibaba:RamOAuthApplication";

function isDynamicResource(type: string): boolean {
    return type === DYNAMIC_RESOURCE || type.startsWith(NAMED_DYNAMIC_RESOURCE_PREFIX);
}

/** Ports that may be reachable from anywhere: Dify's web entry points, over TCP. */
const PUBLIC_PORTS: readonly number[] = [80, 443];
const HTTP_PORT = 80;
const HTTPS_PORT = 443;
const SSH_PORT = 22;

// ---------------------------------------------------------------------------------------------------------
// Security group rules, one at a time

function covers(range: PortRange, port: number): boolean {
    return range.from <= port && port <= range.to;
}

/** The rule's sources that on their own open more than the single-block share of the internet. */
function worldWideSources(rule: ReadRule): RuleSource[] {
    return rule.sources.filter((source) => source.block !== undefined && isWorldWideBlock(source.block));
}

function describeSources(sources: readonly RuleSource[]): string {
    return sources.map((source) => `${source.field} ${source.text}`).join(" and ");
}

/** Returns why the rule cannot be checked (a port range or source the pack cannot read), or undefined. */
function checkRuleReadable(props: SecurityGroupRuleProps): string | undefined {
    const rule = readRule(props);
    if (!rule.opensIngress) {
        return undefined;
    }
    const problems: string[] = [];
    if (!isKnownProtocol(rule.protocol)) {
        problems.push(`ipProtocol "${props.ipProtocol}" is not one of ${Object.keys(PROTOCOL_TRANSPORTS).join(", ")}`);
    }
    if (rule.ports === undefined) {
        problems.push(`portRange "${props.portRange}" cannot be parsed; use "from/to", e.g. "443/443", or "-1/-1" for all`);
    }
    for (const source of rule.sources.filter((s) => s.block === undefined)) {
        problems.push(`${source.field} "${source.text}" cannot be parsed; write an IPv4 block in decimal (203.0.113.0/24) or an IPv6 block (2001:db8::/32)`);
    }
    return problems.length === 0 ? undefined : `ingress rule cannot be checked: ${problems.join("; ")}`;
}

/** Returns why the rule exposes SSH to the world, or undefined when it does not. */
function checkSshExposure(props: SecurityGroupRuleProps): string | undefined {
    const rule = readRule(props);
    const world = worldWideSources(rule);
    if (!rule.opensIngress || world.length === 0 || !rule.transports.includes("tcp") || rule.ports === undefined) {
        return undefined;
    }
    if (!covers(rule.ports, SSH_PORT)) {
        return undefined;
    }
    return `ingress ${rule.protocol} ${rule.portRangeText} from ${describeSources(world)} opens SSH (port 22) to the ` +
        "internet; restrict the source to your admin network (adminCidr) or use Cloud Assistant / a bastion instead";
}

/** Returns why the rule opens a port other than TCP 80/443 to the world, or undefined when it does not. */
function checkWorldOpenPorts(props: SecurityGroupRuleProps): string | undefined {
    const rule = readRule(props);
    const world = worldWideSources(rule);
    if (!rule.opensIngress || world.length === 0 || rule.transports.length === 0 || rule.ports === undefined) {
        return undefined;
    }
    const onlyWebPort = rule.protocol === "tcp" && rule.ports.from === rule.ports.to && PUBLIC_PORTS.includes(rule.ports.from);
    if (onlyWebPort) {
        return undefined;
    }
    return `ingress ${rule.protocol} ${rule.portRangeText} from ${describeSources(world)} opens ports other than ` +
        `TCP ${PUBLIC_PORTS.join("/")} to the internet; only single-port TCP rules for ${PUBLIC_PORTS.join(" or ")} may ` +
        "have a source that wide";
}

// ---------------------------------------------------------------------------------------------------------
// Security group rules across the stack (stack policies)

/** One rule, read for the stack-wide checks, with the security group it belongs to. */
interface StackRule {
    resource: PolicyResource;
    rule: ReadRule;
    group: string;
    groupLabel: string;
    /** Every block the rule admits (its own sources and, for a prefix-list rule, the list's entries). */
    blocks: AddressBlock[];
    /** The blocks the per-rule policies do not already report (not world-wide on their own, or from a prefix list). */
    unreportedBlocks: AddressBlock[];
}

/** Reads every ingress rule of the stack; a rule whose prefix list is not in the stack is reported and skipped. */
function stackRules(args: StackValidationArgs, reportViolation?: ReportViolation): StackRule[] {
    const rules: StackRule[] = [];
    for (const resource of args.resources) {
        if (resource.type !== SECURITY_GROUP_RULE) {
            continue;
        }
        const rule = readRule(resource.props as SecurityGroupRuleProps, true);
        // Unknown sources or ports (a preview) are the per-rule policies' to report, as the SDK's advisory.
        if (rule.unknown.length > 0 || !rule.opensIngress || rule.ports === undefined || rule.transports.length === 0) {
            continue;
        }
        const own = rule.sources.flatMap((source) => (source.block === undefined ? [] : [source.block]));
        let listed: AddressBlock[] = [];
        if (usesPrefixList(resource.props as SecurityGroupRuleProps, rule)) {
            const blocks = prefixListBlocks(resource, reportViolation);
            if (blocks === undefined) {
                continue;
            }
            listed = blocks;
        }
        const { key, label } = securityGroupOf(resource);
        rules.push({
            resource,
            rule,
            group: key,
            groupLabel: label,
            blocks: [...own, ...listed],
            unreportedBlocks: [...own.filter((b) => !isWorldWideBlock(b)), ...listed],
        });
    }
    return rules;
}

/** Port intervals on which the set of rules covering a port stays the same (exempt ports get intervals of their own). */
function portIntervals(rules: readonly StackRule[], splitAt: readonly number[]): PortRange[] {
    const cuts = new Set<number>([1, 65536]);
    for (const { rule } of rules) {
        cuts.add(rule.ports!.from);
        cuts.add(rule.ports!.to + 1);
    }
    for (const port of splitAt) {
        cuts.add(port);
        cuts.add(port + 1);
    }
    const sorted = [...cuts].filter((p) => p >= 1 && p <= 65536).sort((a, b) => a - b);
    return sorted.slice(0, -1).map((from, i) => ({ from, to: sorted[i + 1] - 1 }));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
    const groups = new Map<string, T[]>();
    for (const item of items) {
        groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
    }
    return groups;
}

const FAMILIES: readonly AddressFamily[] = ["ipv4", "ipv6"];

function portsText(range: PortRange): string {
    return range.from === range.to ? `${range.from}` : `${range.from}-${range.to}`;
}

function namesOf(rules: readonly StackRule[]): string {
    const names = rules.map((r) => r.resource.name);
    return names.length <= 4 ? names.join(", ") : `${names.slice(0, 4).join(", ")} and ${names.length - 4} more`;
}

/**
 * Finds ports that several rules of one security group together open to most of the internet (at least half of
 * IPv4, or of IPv6's global unicast space), through blocks no single-rule policy reports: 0.0.0.0/8 + 1.0.0.0/8 +
 * … up to 128 blocks, a prefix list holding 0.0.0.0/0 or a pair of /1s, and so on. TCP 80 and 443 are exempt.
 */
function checkWorldOpenAcrossRules(args: StackValidationArgs, reportViolation: ReportViolation): void {
    for (const [, rules] of groupBy(stackRules(args, reportViolation), (r) => r.group)) {
        for (const transport of ["tcp", "udp"] as const) {
            const applicable = rules.filter((r) => r.rule.transports.includes(transport));
            let previous: { range: PortRange; rules: StackRule[]; family: AddressFamily } | undefined;
            const flush = () => {
                if (previous !== undefined) {
                    const blocks = previous.rules.flatMap((r) => r.unreportedBlocks);
                    const ssh = covers(previous.range, SSH_PORT) ? " (SSH)" : "";
                    reportViolation(
                        `${previous.rules.length} ingress rule(s) of security group ${previous.rules[0].groupLabel} (${namesOf(previous.rules)}) ` +
                            `together open ${transport.toUpperCase()} ${portsText(previous.range)}${ssh} to ` +
                            `${shareOfInternet(blocks, previous.family)} of the ${previous.family === "ipv4" ? "IPv4" : "IPv6"} internet ` +
                            `(${blocks.map((b) => b.text).slice(0, 6).join(", ")}${blocks.length > 6 ? ", …" : ""}); only TCP ` +
                            `${PUBLIC_PORTS.join("/")} may be open that widely`,
                        previous.rules[0].resource.urn,
                    );
                    previous = undefined;
                }
            };
            for (const range of portIntervals(applicable, transport === "tcp" ? PUBLIC_PORTS : [])) {
                if (transport === "tcp" && range.from === range.to && PUBLIC_PORTS.includes(range.from)) {
                    flush();
                    continue;
                }
                const active = applicable.filter((r) => covers(r.rule.ports!, range.from) && r.unreportedBlocks.length > 0);
                const family = FAMILIES.find((f) => coverMostOfInternet(active.flatMap((r) => r.unreportedBlocks), f));
                if (family === undefined) {
                    flush();
                    continue;
                }
                const contributing = active.filter((r) => r.unreportedBlocks.some((b) => b.family === family));
                const same = previous !== undefined && previous.family === family && previous.range.to + 1 === range.from &&
                    previous.rules.length === contributing.length && previous.rules.every((r, i) => r === contributing[i]);
                if (same) {
                    previous!.range = { from: previous!.range.from, to: range.to };
                } else {
                    flush();
                    previous = { range, rules: contributing, family };
                }
            }
            flush();
        }
    }
}

/** True when the rules (all of one group) admit most of the internet, in either family, on TCP `port`. */
function worldOpenOnTcp(rules: readonly StackRule[], port: number): StackRule[] {
    const open = rules.filter((r) => r.rule.transports.includes("tcp") && covers(r.rule.ports!, port));
    const blocks = open.flatMap((r) => r.blocks);
    const wide = blocks.some(isWorldWideBlock) || FAMILIES.some((family) => coverMostOfInternet(blocks, family));
    return wide ? open.filter((r) => r.blocks.length > 0) : [];
}

/**
 * Finds security groups that let the internet reach port 80 but not 443: DifySecurityGroup opens 443 unless the
 * stack opted out of HTTPS (plainHttp); then Dify's console, its sign-in and the MCP OAuth callback travel as
 * plain HTTP.
 */
function checkHttpWithoutHttps(args: StackValidationArgs, reportViolation: ReportViolation): void {
    for (const [, rules] of groupBy(stackRules(args), (r) => r.group)) {
        const http = worldOpenOnTcp(rules, HTTP_PORT);
        if (http.length === 0 || worldOpenOnTcp(rules, HTTPS_PORT).length > 0) {
            continue;
        }
        reportViolation(
            `security group ${http[0].groupLabel} lets the internet reach port ${HTTP_PORT} (${namesOf(http)}) but not ` +
                `${HTTPS_PORT}: Dify's console, sign-in and OAuth callback go over plain HTTP. Unset dify-mcp-stack:plainHttp ` +
                "(HTTPS with a Let's Encrypt certificate for the EIP or the domain, which opens 443), or narrow allowedCidrs to your own networks",
            http[0].resource.urn,
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// ECS instance size

/** The part of an ECS Instance's inputs these policies read. */
interface InstanceProps {
    instanceType?: string;
    tags?: Record<string, string>;
    dataDisks?: Array<{ encrypted?: boolean | string; name?: string }>;
}

/** Returns why the instance is too small (or cannot be sized), or undefined when it is large enough. */
function checkInstanceSize(instance: InstanceProps): string | undefined {
    const instanceType = instance.instanceType;
    if (instanceType === undefined || instanceType === "") {
        return "instanceType is not set";
    }
    let size: InstanceSize | undefined = instanceTypeSizeFromName(instanceType);
    let source = `instance type ${instanceType}`;
    if (size === undefined) {
        const vcpus = Number(instance.tags?.[VCPU_TAG]);
        const memoryGib = Number(instance.tags?.[MEMORY_TAG]);
        if (!(vcpus > 0 && memoryGib > 0)) {
            return `instance type ${instanceType} cannot be sized from its name (c/g/r families, -c1mN names) and the ` +
                `instance has no "${VCPU_TAG}"/"${MEMORY_TAG}" tags; DifyHost sets them from alicloud.ecs.getInstanceTypes ` +
                "(cpuCoreCount, memorySize)";
        }
        size = { vcpus, memoryGib };
        source = `instance type ${instanceType} (size from tags ${VCPU_TAG}/${MEMORY_TAG})`;
    }
    if (!isLargeEnoughForDify(size)) {
        return `${source} has ${size.vcpus} vCPU and ${size.memoryGib} GiB; Dify needs at least ${MIN_VCPUS} vCPU ` +
            `and ${MIN_MEMORY_GIB} GiB`;
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Dify version

/**
 * True when `version` is the release `minimum` or later: a pre-release (1.8.0-rc1) comes before its release, a
 * Dify fix tag (1.8.0-fix.1) after it. Unparsable versions ("latest") are never acceptable. The config parser
 * judges difyVersion against MIN_DIFY_VERSION by the same order; rules/dify-version.ts's own difyVersionAtLeast
 * is another rule (feature thresholds, where a release candidate already counts).
 */
export function difyVersionAtLeast(version: string, minimum: string): boolean {
    return parseDifyVersion(version) !== undefined && compareDifyVersions(version, minimum) >= 0;
}

/** Returns why the instance's Dify version is not acceptable, or undefined when it is. */
function checkDifyVersion(instance: InstanceProps): string | undefined {
    const version = instance.tags?.[DIFY_VERSION_TAG];
    if (version === undefined || version === "") {
        return `the instance has no "${DIFY_VERSION_TAG}" tag; the Dify bootstrap sets it to the pinned Dify release`;
    }
    if (!parseDifyVersion(version)) {
        return `tag ${DIFY_VERSION_TAG}="${version}" is not a release number; pin a Dify release such as ` +
            `${MIN_DIFY_VERSION} (moving tags like "latest" cannot be checked)`;
    }
    if (!difyVersionAtLeast(version, MIN_DIFY_VERSION)) {
        return `Dify ${version} is older than ${MIN_DIFY_VERSION}, the first release this stack supports ` +
            "(MCP tools need it)";
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Disks
//
// A disk's encryption is fixed when it is created; changing `encrypted` replaces the disk with a new, empty one.
// DifyHost therefore creates its data disk encrypted and pins the flag with `ignoreChanges: ["encrypted",
// "kmsKeyId"]`, keeping a disk that predates encryption. The engine resets ignored inputs to their old values
// before Check and analysis, so for such a kept disk the pack sees no `encrypted` at all. Blocking it would
// leave the stack no way forward but losing Dify's data; it is reported as advisory instead (from the disk's
// actual state, by a stack policy), and every other disk must be created encrypted.

function isEncrypted(value: unknown): boolean {
    return value === true || value === "true";
}

/** True when the resource pins its encryption with ignoreChanges: its inputs are what the disk was created with. */
function encryptionPinned(opts: { ignoreChanges?: readonly string[] } | undefined): boolean {
    return (opts?.ignoreChanges ?? []).includes("encrypted");
}

/** Returns why a disk is not encrypted, or undefined when it is. */
function checkDiskEncrypted(props: { encrypted?: unknown; kmsKeyId?: unknown }): string | undefined {
    if (isEncrypted(props.encrypted)) {
        return undefined;
    }
    return `the disk is not encrypted (encrypted is ${props.encrypted === undefined ? "not set" : JSON.stringify(props.encrypted)}); ` +
        "Dify's volumes and generated secrets live on it: create it with encrypted: true (optionally kmsKeyId for your " +
        "own KMS key; DifyHost does unless dify-mcp-stack:encryptDataDisk is false)";
}

/** The resource check: a disk that pins `encrypted` and has none in its inputs predates encryption (see above). */
function validateDiskEncrypted(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    if (args.type !== ECS_DISK || (encryptionPinned(args.opts) && !("encrypted" in args.props))) {
        return;
    }
    const message = checkDiskEncrypted(args.props);
    if (message !== undefined) {
        reportViolation(message);
    }
}

/**
 * Reports disks kept unencrypted: pinned by ignoreChanges, existing (their state, read from the cloud, has a
 * createTime) and not encrypted in that state. A disk still to be created is data-disk-encrypted's to judge.
 */
function checkKeptUnencryptedDisks(args: StackValidationArgs, reportViolation: ReportViolation): void {
    for (const disk of args.resources) {
        if (disk.type !== ECS_DISK || !encryptionPinned(disk.opts)) {
            continue;
        }
        let encrypted: unknown;
        let createTime: unknown;
        try {
            createTime = disk.props.createTime;
            encrypted = disk.props.encrypted;
        } catch {
            continue; // unknown in a preview: the disk does not exist yet
        }
        if (text(createTime) !== undefined && !isEncrypted(encrypted)) {
            reportViolation(
                `data disk ${disk.name} is not encrypted and is kept as it is: its encryption was fixed when it was created ` +
                    "(it predates encrypted data disks), and re-creating it would lose Dify's data. To encrypt Dify's data, move " +
                    "it to a disk created from an encrypted copy of a snapshot of this one",
                disk.urn,
            );
        }
    }
}

/** Returns why an instance's inline data disks are not all encrypted, or undefined. */
function checkInstanceDataDisks(instance: InstanceProps): string | undefined {
    const disks = Array.isArray(instance.dataDisks) ? instance.dataDisks : [];
    const plain = disks.map((disk, i) => ({ disk, i })).filter(({ disk }) => !isEncrypted(disk?.encrypted));
    if (plain.length === 0) {
        return undefined;
    }
    return `inline data disk(s) ${plain.map(({ disk, i }) => disk?.name ?? `#${i}`).join(", ")} are not encrypted; set ` +
        "encrypted: true on each entry of dataDisks";
}

// ---------------------------------------------------------------------------------------------------------
// RAM OAuth application (a dynamic resource)

/** The properties of the RAM OAuth app dynamic resource these policies read. */
export interface OAuthAppProps {
    protocolVersion?: string;
    scopes?: string[];
    appType?: string;
}

/**
 * The RAM OAuth app: the dynamic resource registered under the project's type token, or any dynamic resource
 * with the app's own properties (`protocolVersion`, and `appType` or `scopes`). No stack registers such a copy;
 * the second test is kept so that a program registering the provider under another type name is still checked.
 */
export function isOAuthApp(type: string, props: Record<string, unknown>): boolean {
    return type === RAM_OAUTH_APP ||
        (isDynamicResource(type) && "protocolVersion" in props && ("appType" in props || "scopes" in props));
}

/** Returns why the OAuth app cannot serve the MCP server, or undefined when it can. */
export function checkOAuthApp(app: OAuthAppProps): string | undefined {
    const problems: string[] = [];
    if (app.protocolVersion !== RAM_OAUTH_PROTOCOL_VERSION) {
        problems.push(`protocolVersion is "${app.protocolVersion}", must be "${RAM_OAUTH_PROTOCOL_VERSION}" (OAuth 2.1)`);
    }
    const scopes = Array.isArray(app.scopes) ? app.scopes : [];
    if (!scopes.includes(MCP_SERVER_SCOPE)) {
        problems.push(`scopes [${scopes.join(", ")}] must include "${MCP_SERVER_SCOPE}"`);
    }
    return problems.length === 0 ? undefined : problems.join("; ");
}

/** Returns why the OAuth app's type is not one a person signs in with, or undefined when it is. */
function checkOAuthAppType(app: OAuthAppProps): string | undefined {
    if (app.appType !== undefined && (RAM_OAUTH_APP_TYPES as readonly string[]).includes(app.appType)) {
        return undefined;
    }
    const shown = app.appType === undefined ? "not set" : `"${app.appType}"`;
    return `appType is ${shown}; must be ${RAM_OAUTH_APP_TYPES.join(" or ")}: the OpenAPI MCP server only accepts apps a ` +
        "person signs in to (a ServerApp has no user sign-in and is rejected as the MCP server's OAuth client)";
}

// ---------------------------------------------------------------------------------------------------------
// Policies

const enforcementLevel: EnforcementLevel = "mandatory";

function onTypes(types: readonly string[], check: (props: Record<string, unknown>) => string | undefined) {
    return (args: ResourceValidationArgs, reportViolation: ReportViolation): void => {
        if (!types.includes(args.type)) {
            return;
        }
        const message = check(args.props);
        if (message !== undefined) {
            reportViolation(message);
        }
    };
}

const securityGroupRuleReadable: ResourceValidationPolicy = {
    name: "security-group-rule-readable",
    description: "Every ingress rule's protocol, port range and CIDR sources must be in a form the pack can check.",
    enforcementLevel,
    validateResource: onTypes([SECURITY_GROUP_RULE], (props) => checkRuleReadable(props as SecurityGroupRuleProps)),
};

const sshNotOpenToWorld: ResourceValidationPolicy = {
    name: "ssh-not-open-to-world",
    description: "No security group rule may open SSH (port 22) to the internet: a source shorter than IPv4 /8 " +
        "(0.0.0.0/0, 0.0.0.0/1, …) or covering more than a /11 of IPv6's 2000::/3 (::/0, ::/1, 2000::/3, …).",
    enforcementLevel,
    validateResource: onTypes([SECURITY_GROUP_RULE], (props) => checkSshExposure(props as SecurityGroupRuleProps)),
};

const onlyWebPortsOpenToWorld: ResourceValidationPolicy = {
    name: "only-web-ports-open-to-world",
    description: "Only TCP 80 and 443 may be reachable from a source as wide as the internet (IPv4 shorter than /8, " +
        "IPv6 wider than a /11 of 2000::/3), one port per rule.",
    enforcementLevel,
    validateResource: onTypes([SECURITY_GROUP_RULE], (props) => checkWorldOpenPorts(props as SecurityGroupRuleProps)),
};

const noWorldOpenAcrossRules: StackValidationPolicy = {
    name: "no-world-open-across-rules",
    description: "The ingress rules of one security group may not together open a port other than TCP 80/443 to at " +
        "least half of the internet (2^31 IPv4 addresses, or half of IPv6's 2000::/3), whether through many blocks " +
        "or an alicloud.ecs.EcsPrefixList; a prefix list from outside the stack cannot be checked and is refused.",
    enforcementLevel,
    validateStack: checkWorldOpenAcrossRules,
};

const httpNeedsHttps: StackValidationPolicy = {
    name: "http-needs-https",
    description: "A security group that lets the internet reach port 80 must let it reach 443 too (HTTPS with " +
        "Let's Encrypt, the default). Advisory, since plain HTTP (plainHttp) is a supported opt-out; raise it to " +
        "mandatory with --policy-pack-config.",
    enforcementLevel: "advisory",
    validateStack: checkHttpWithoutHttps,
};

const dataDiskEncrypted: ResourceValidationPolicy = {
    name: "data-disk-encrypted",
    description: "ECS data disks (alicloud.ecs.EcsDisk and an instance's inline dataDisks) must be created with " +
        "encrypted: true. A disk that pins `encrypted` with ignoreChanges and predates " +
        "it is left to data-disk-kept-unencrypted.",
    enforcementLevel,
    validateResource: [validateDiskEncrypted, onTypes([ECS_INSTANCE], (props) => checkInstanceDataDisks(props as InstanceProps))],
};

const dataDiskKeptUnencrypted: StackValidationPolicy = {
    name: "data-disk-kept-unencrypted",
    description: "Advisory: an existing data disk created before encryption and kept (its `encrypted` pinned by " +
        "ignoreChanges, as DifyHost does) is still unencrypted.",
    enforcementLevel: "advisory",
    validateStack: checkKeptUnencryptedDisks,
};

const instanceMinimumSize: ResourceValidationPolicy = {
    name: "instance-minimum-size",
    description: `ECS instances need at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB of memory to run Dify.`,
    enforcementLevel,
    validateResource: onTypes([ECS_INSTANCE], (props) => checkInstanceSize(props as InstanceProps)),
};

const difyVersionMinimum: ResourceValidationPolicy = {
    name: "dify-version-minimum",
    description: `The ECS instance's "${DIFY_VERSION_TAG}" tag must name Dify ${MIN_DIFY_VERSION} or later.`,
    enforcementLevel,
    validateResource: onTypes([ECS_INSTANCE], (props) => checkDifyVersion(props as InstanceProps)),
};

function onOAuthApp(check: (app: OAuthAppProps) => string | undefined) {
    return (args: ResourceValidationArgs, reportViolation: ReportViolation): void => {
        if (!isOAuthApp(args.type, args.props)) {
            return;
        }
        const message = check(args.props as OAuthAppProps);
        if (message !== undefined) {
            reportViolation(message);
        }
    };
}

const oauthAppMcpReady: ResourceValidationPolicy = {
    name: "oauth-app-mcp-ready",
    description: `The RAM OAuth app must use OAuth ${RAM_OAUTH_PROTOCOL_VERSION} and grant the ${MCP_SERVER_SCOPE} scope.`,
    enforcementLevel,
    validateResource: onOAuthApp(checkOAuthApp),
};

const oauthAppUserSignIn: ResourceValidationPolicy = {
    name: "oauth-app-user-sign-in",
    description: `The RAM OAuth app must be a ${RAM_OAUTH_APP_TYPES.join(" or ")}, never a ServerApp.`,
    enforcementLevel,
    validateResource: onOAuthApp(checkOAuthAppType),
};

export const policies: Policies = [
    securityGroupRuleReadable,
    sshNotOpenToWorld,
    onlyWebPortsOpenToWorld,
    noWorldOpenAcrossRules,
    httpNeedsHttps,
    dataDiskEncrypted,
    dataDiskKeptUnencrypted,
    instanceMinimumSize,
    difyVersionMinimum,
    oauthAppMcpReady,
    oauthAppUserSignIn,
    ...haPolicies,
];
