// Guardrail policies for dify-mcp-stack. index.ts serves them as a CrossGuard policy pack; tests call the
// pure checks and the policies' validateResource functions directly.
//
// Resources are matched by type token and read as plain property bags, so the pack needs neither
// @pulumi/alicloud nor the project's dynamic providers' packages installed.
import type {
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
} from "@pulumi/policy";

// Re-exported so tests outside policy/ (whose node_modules is policy/node_modules) can name them.
export type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
// The project's own ordering of Dify tags; the module has no dependencies, so the pack still loads on its own.
import { compareDifyVersions, parseDifyVersion } from "../dynamic-providers/dify-version";

export const SECURITY_GROUP_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule";
export const ECS_INSTANCE = "alicloud:ecs/instance:Instance";
export const OSS_BUCKET = "alicloud:oss/bucket:Bucket";
export const OSS_BUCKET_ACL = "alicloud:oss/bucketAcl:BucketAcl";
/** A `pulumi.dynamic.Resource` registered without a module and type name has this type. */
export const DYNAMIC_RESOURCE = "pulumi-nodejs:dynamic:Resource";
/** The project's dynamic resources register as `pulumi-nodejs:dynamic/<module>:<Type>`. */
export const NAMED_DYNAMIC_RESOURCE_PREFIX = "pulumi-nodejs:dynamic/";

export function isDynamicResource(type: string): boolean {
    return type === DYNAMIC_RESOURCE || type.startsWith(NAMED_DYNAMIC_RESOURCE_PREFIX);
}

export const MIN_VCPU = 2;
export const MIN_MEMORY_GIB = 4;
export const MIN_DIFY_VERSION = "1.8.0";
export const MCP_SCOPE = "/acs/mcp-server";
export const OAUTH_PROTOCOL_VERSION = "2.1";
/** Ports that may be reachable from anywhere: Dify's web entry points. */
export const PUBLIC_PORTS: readonly number[] = [80, 443];
/** Tag the Dify bootstrap sets on the ECS instance. */
export const DIFY_VERSION_TAG = "dify-version";
/** Optional tags giving an instance's size when its type name is not in the table below. */
export const VCPU_TAG = "cpu-cores";
export const MEMORY_TAG = "memory-gib";

const WORLD_CIDRS = new Set(["0.0.0.0/0", "::/0"]);

// ---------------------------------------------------------------------------------------------------------
// Security group rules

export interface PortRange {
    from: number;
    to: number;
}

/** Parses an Alibaba `portRange` ("22/22", "1/65535"); a missing range or "-1/-1" means every port. */
export function parsePortRange(portRange: string | undefined): PortRange | undefined {
    if (portRange === undefined || portRange.trim() === "" || portRange.trim() === "-1/-1") {
        return { from: 1, to: 65535 };
    }
    const match = /^(\d+)\/(\d+)$/.exec(portRange.trim());
    if (!match) {
        return undefined;
    }
    return { from: Number(match[1]), to: Number(match[2]) };
}

/** The part of a SecurityGroupRule's inputs these policies read. */
export interface SecurityGroupRuleProps {
    type?: string;
    ipProtocol?: string;
    portRange?: string;
    cidrIp?: string;
    ipv6CidrIp?: string;
    policy?: string;
}

/** True when the rule lets traffic in from any address. */
export function opensToWorld(rule: SecurityGroupRuleProps): boolean {
    if (rule.type !== "ingress" || (rule.policy ?? "accept") !== "accept") {
        return false;
    }
    return WORLD_CIDRS.has(rule.cidrIp ?? "") || WORLD_CIDRS.has(rule.ipv6CidrIp ?? "");
}

/** Port-carrying protocols; ICMP and GRE have no ports to expose. */
function carriesPorts(ipProtocol: string | undefined): boolean {
    return ipProtocol === "tcp" || ipProtocol === "udp" || ipProtocol === "all";
}

/** Returns why the rule exposes SSH to the world, or undefined when it does not. */
export function checkSshExposure(rule: SecurityGroupRuleProps): string | undefined {
    if (!opensToWorld(rule) || !(rule.ipProtocol === "tcp" || rule.ipProtocol === "all")) {
        return undefined;
    }
    const range = parsePortRange(rule.portRange);
    if (range === undefined) {
        return `portRange "${rule.portRange}" cannot be parsed; use "from/to", e.g. "443/443"`;
    }
    if (range.from <= 22 && 22 <= range.to) {
        const source = WORLD_CIDRS.has(rule.cidrIp ?? "") ? rule.cidrIp : rule.ipv6CidrIp;
        return `ingress ${rule.ipProtocol} ${rule.portRange ?? "(all ports)"} from ${source} opens SSH (port 22) to the ` +
            "internet; restrict cidrIp to your admin network or use Cloud Assistant / a bastion instead";
    }
    return undefined;
}

/** Returns why the rule opens a non-web port to the world, or undefined when it does not. */
export function checkWorldOpenPorts(rule: SecurityGroupRuleProps): string | undefined {
    if (!opensToWorld(rule) || !carriesPorts(rule.ipProtocol)) {
        return undefined;
    }
    const range = parsePortRange(rule.portRange);
    if (range === undefined) {
        return `portRange "${rule.portRange}" cannot be parsed; use "from/to", e.g. "443/443"`;
    }
    const onlyWebPorts = range.from === range.to && PUBLIC_PORTS.includes(range.from);
    if (onlyWebPorts) {
        return undefined;
    }
    const source = WORLD_CIDRS.has(rule.cidrIp ?? "") ? rule.cidrIp : rule.ipv6CidrIp;
    return `ingress ${rule.ipProtocol} ${rule.portRange ?? "(all ports)"} from ${source} opens ports other than ` +
        `${PUBLIC_PORTS.join("/")} to the internet; only single-port rules for ${PUBLIC_PORTS.join(" or ")} may use ` +
        `${source}`;
}

// ---------------------------------------------------------------------------------------------------------
// ECS instance size

/** GiB of memory per vCPU for the ECS families whose type names do not spell it out (ecs.<family>.<size>). */
const MEMORY_PER_VCPU_BY_FAMILY: Readonly<Record<string, number>> = {
    ic5: 1,
    c5: 2, c6: 2, c6a: 2, c6e: 2, c6t: 2, c7: 2, c7a: 2, c7t: 2, c7se: 2, c8i: 2, c8a: 2, c8y: 2, c8ae: 2, c9i: 2,
    c9a: 2, hfc5: 2, hfc6: 2, hfc7: 2, hfc8i: 2, sn1: 2, sn1ne: 2, n4: 2,
    g5: 4, g5ne: 4, g6: 4, g6a: 4, g6e: 4, g6t: 4, g7: 4, g7a: 4, g7t: 4, g7se: 4, g8i: 4, g8a: 4, g8y: 4, g8ae: 4,
    g9i: 4, g9a: 4, hfg5: 4, hfg6: 4, hfg7: 4, hfg8i: 4, sn2: 4, sn2ne: 4, mn4: 4,
    r5: 8, r6: 8, r6a: 8, r6e: 8, r7: 8, r7a: 8, r7t: 8, r7se: 8, r8i: 8, r8a: 8, r8y: 8, r8ae: 8, r9i: 8, r9a: 8,
    hfr6: 8, hfr7: 8, hfr8i: 8, se1: 8, se1ne: 8,
};

export interface InstanceSize {
    vcpu: number;
    memoryGib: number;
}

function vcpusOfSize(size: string): number | undefined {
    if (size === "small") return 1;
    if (size === "large") return 2;
    if (size === "xlarge") return 4;
    const multiple = /^(\d+)xlarge$/.exec(size);
    return multiple ? 4 * Number(multiple[1]) : undefined;
}

/**
 * Size of an ECS instance type from its name, or undefined when the name is not understood.
 * Handles `ecs.<family>.<size>` for the families in the table and the families that spell the
 * CPU:memory ratio in the name (`ecs.u1-c1m2.large`, `ecs.t6-c1m1.large`, `ecs.e-c1m4.xlarge`, `ecs.t5-lc1m2.small`).
 */
export function instanceTypeSize(instanceType: string): InstanceSize | undefined {
    const match = /^ecs\.([a-z0-9]+)(?:-l?c(\d+)m(\d+))?\.([a-z0-9]+)$/.exec(instanceType.trim().toLowerCase());
    if (!match) {
        return undefined;
    }
    const [, family, cpuPart, memoryPart, size] = match;
    const vcpu = vcpusOfSize(size);
    if (vcpu === undefined) {
        return undefined;
    }
    if (cpuPart !== undefined && memoryPart !== undefined) {
        return { vcpu, memoryGib: (vcpu * Number(memoryPart)) / Number(cpuPart) };
    }
    const perVcpu = MEMORY_PER_VCPU_BY_FAMILY[family];
    return perVcpu === undefined ? undefined : { vcpu, memoryGib: vcpu * perVcpu };
}

/** The part of an ECS Instance's inputs these policies read. */
export interface InstanceProps {
    instanceType?: string;
    tags?: Record<string, string>;
}

/** Returns why the instance is too small (or cannot be sized), or undefined when it is large enough. */
export function checkInstanceSize(instance: InstanceProps): string | undefined {
    const instanceType = instance.instanceType;
    if (instanceType === undefined || instanceType === "") {
        return "instanceType is not set";
    }
    let size = instanceTypeSize(instanceType);
    let source = `instance type ${instanceType}`;
    if (size === undefined) {
        const vcpu = Number(instance.tags?.[VCPU_TAG]);
        const memoryGib = Number(instance.tags?.[MEMORY_TAG]);
        if (!(vcpu > 0 && memoryGib > 0)) {
            return `instance type ${instanceType} is not in the policy's size table; either pick a listed family ` +
                `(c/g/r 5-9 generations, u1/e/t5/t6 with -cXmY names) or tag the instance with "${VCPU_TAG}" and ` +
                `"${MEMORY_TAG}" from alicloud.ecs.getInstanceTypes (cpuCoreCount, memorySize)`;
        }
        size = { vcpu, memoryGib };
        source = `instance type ${instanceType} (size from tags ${VCPU_TAG}/${MEMORY_TAG})`;
    }
    if (size.vcpu < MIN_VCPU || size.memoryGib < MIN_MEMORY_GIB) {
        return `${source} has ${size.vcpu} vCPU and ${size.memoryGib} GiB; Dify needs at least ${MIN_VCPU} vCPU ` +
            `and ${MIN_MEMORY_GIB} GiB`;
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Dify version

/**
 * True when `version` is the release `minimum` or later: a pre-release (1.8.0-rc1) comes before its release, a
 * Dify fix tag (1.8.0-fix.1) after it. Unparsable versions ("latest") are never acceptable.
 */
export function difyVersionAtLeast(version: string, minimum: string): boolean {
    return parseDifyVersion(version) !== undefined && compareDifyVersions(version, minimum) >= 0;
}

/** Returns why the instance's Dify version is not acceptable, or undefined when it is. */
export function checkDifyVersion(instance: InstanceProps): string | undefined {
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
// RAM OAuth application (a dynamic resource)

/** The properties of the RAM OAuth app dynamic resource these policies read. */
export interface OAuthAppProps {
    protocolVersion?: string;
    scopes?: string[];
    appType?: string;
}

/**
 * The RAM OAuth app is the dynamic resource whose properties include `protocolVersion`, `scopes` and `appType`
 * (told by its properties, so an app registered under another type name is still checked).
 */
export function isOAuthApp(type: string, props: Record<string, unknown>): boolean {
    return isDynamicResource(type) && "protocolVersion" in props && "scopes" in props && "appType" in props;
}

/** Returns why the OAuth app cannot serve the MCP server, or undefined when it can. */
export function checkOAuthApp(app: OAuthAppProps): string | undefined {
    const problems: string[] = [];
    if (app.protocolVersion !== OAUTH_PROTOCOL_VERSION) {
        problems.push(`protocolVersion is "${app.protocolVersion}", must be "${OAUTH_PROTOCOL_VERSION}" (OAuth 2.1)`);
    }
    const scopes = Array.isArray(app.scopes) ? app.scopes : [];
    if (!scopes.includes(MCP_SCOPE)) {
        problems.push(`scopes [${scopes.join(", ")}] must include "${MCP_SCOPE}"`);
    }
    return problems.length === 0 ? undefined : problems.join("; ");
}

// ---------------------------------------------------------------------------------------------------------
// OSS buckets

const PUBLIC_ACLS = new Set(["public-read", "public-read-write"]);

/** Returns why the bucket (or bucket ACL resource) is public, or undefined when it is not. */
export function checkBucketAcl(acl: string | undefined): string | undefined {
    if (acl !== undefined && PUBLIC_ACLS.has(acl)) {
        return `acl "${acl}" makes the bucket readable by anyone; use "private" and signed URLs`;
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Policies

const enforcementLevel: EnforcementLevel = "mandatory";

function onType(type: string, check: (props: Record<string, unknown>) => string | undefined) {
    return (args: ResourceValidationArgs, reportViolation: ReportViolation): void => {
        if (args.type !== type) {
            return;
        }
        const message = check(args.props);
        if (message !== undefined) {
            reportViolation(message);
        }
    };
}

export const sshNotOpenToWorld: ResourceValidationPolicy = {
    name: "ssh-not-open-to-world",
    description: "No security group rule may open SSH (port 22) to 0.0.0.0/0 or ::/0.",
    enforcementLevel,
    validateResource: onType(SECURITY_GROUP_RULE, (props) => checkSshExposure(props as SecurityGroupRuleProps)),
};

export const onlyWebPortsOpenToWorld: ResourceValidationPolicy = {
    name: "only-web-ports-open-to-world",
    description: "Only ports 80 and 443 may be reachable from 0.0.0.0/0 or ::/0.",
    enforcementLevel,
    validateResource: onType(SECURITY_GROUP_RULE, (props) => checkWorldOpenPorts(props as SecurityGroupRuleProps)),
};

export const instanceMinimumSize: ResourceValidationPolicy = {
    name: "instance-minimum-size",
    description: `ECS instances need at least ${MIN_VCPU} vCPU and ${MIN_MEMORY_GIB} GiB of memory to run Dify.`,
    enforcementLevel,
    validateResource: onType(ECS_INSTANCE, (props) => checkInstanceSize(props as InstanceProps)),
};

export const difyVersionMinimum: ResourceValidationPolicy = {
    name: "dify-version-minimum",
    description: `The ECS instance's "${DIFY_VERSION_TAG}" tag must name Dify ${MIN_DIFY_VERSION} or later.`,
    enforcementLevel,
    validateResource: onType(ECS_INSTANCE, (props) => checkDifyVersion(props as InstanceProps)),
};

export const oauthAppMcpReady: ResourceValidationPolicy = {
    name: "oauth-app-mcp-ready",
    description: `The RAM OAuth app must use OAuth ${OAUTH_PROTOCOL_VERSION} and grant the ${MCP_SCOPE} scope.`,
    enforcementLevel,
    validateResource: (args, reportViolation) => {
        if (!isOAuthApp(args.type, args.props)) {
            return;
        }
        const message = checkOAuthApp(args.props as OAuthAppProps);
        if (message !== undefined) {
            reportViolation(message);
        }
    },
};

export const noPublicBucket: ResourceValidationPolicy = {
    name: "no-public-bucket",
    description: "OSS buckets must not be public-read or public-read-write.",
    enforcementLevel,
    validateResource: [
        onType(OSS_BUCKET, (props) => checkBucketAcl(props.acl as string | undefined)),
        onType(OSS_BUCKET_ACL, (props) => checkBucketAcl(props.acl as string | undefined)),
    ],
};

export const policies: ResourceValidationPolicy[] = [
    sshNotOpenToWorld,
    onlyWebPortsOpenToWorld,
    instanceMinimumSize,
    difyVersionMinimum,
    oauthAppMcpReady,
    noPublicBucket,
];
