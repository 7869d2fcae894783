// Security group rules as the policies read them: a rule's protocol, ports and sources, the group it belongs to,
// and the entries of a prefix list it names. Shared by the pack's network policies (rules.ts) and the ha tier's
// (ha-rules.ts); like the rest of the pack it reads plain property bags.
import type { PolicyResource, ReportViolation } from "@pulumi/policy";
import { type AddressBlock, parseAddressBlock } from "./addresses";
import { ECS_PREFIX_LIST } from "./resource-types";

// ---------------------------------------------------------------------------------------------------------
// Security group rules: how a rule is read

export interface PortRange {
    from: number;
    to: number;
}

const ALL_PORTS: PortRange = { from: 1, to: 65535 };

/**
 * Parses an Alibaba `portRange` ("22/22", "1/65535"); unset, empty or "-1/-1" (the provider's default, "all
 * ports" for protocol all) means every port. Anything else is undefined: the pack refuses what it cannot read.
 */
export function parsePortRange(portRange: string | undefined): PortRange | undefined {
    if (portRange === undefined || portRange === "" || portRange === "-1/-1") {
        return ALL_PORTS;
    }
    const match = /^(\d{1,5})\/(\d{1,5})$/.exec(portRange);
    if (!match) {
        return undefined;
    }
    const from = Math.max(1, Number(match[1]));
    const to = Number(match[2]);
    return to > 65535 || from > to ? undefined : { from, to };
}

/** The part of a SecurityGroupRule's inputs these policies read (see alicloud.ecs.SecurityGroupRuleArgs). */
export interface SecurityGroupRuleProps {
    type?: string;
    ipProtocol?: string;
    portRange?: string;
    cidrIp?: string;
    ipv6CidrIp?: string;
    prefixListId?: string;
    sourceSecurityGroupId?: string;
    securityGroupId?: string;
    policy?: string;
}

export type Transport = "tcp" | "udp";
/** The provider's protocols (ipProtocol) and the port spaces each opens; ICMP, ICMPv6 and GRE have no ports. */
export const PROTOCOL_TRANSPORTS: Readonly<Record<string, readonly Transport[]>> = {
    tcp: ["tcp"],
    udp: ["udp"],
    all: ["tcp", "udp"],
    icmp: [],
    icmpv6: [],
    gre: [],
};

/** A rule's source field as written, and the block it names (undefined when it cannot be read). */
export interface RuleSource {
    field: "cidrIp" | "ipv6CidrIp";
    text: string;
    block?: AddressBlock;
}

/** A security group rule as the policies understand it. */
export interface ReadRule {
    /** Ingress with policy accept: the only rules that open anything. */
    opensIngress: boolean;
    protocol: string;
    /** Port spaces the rule opens; an unknown protocol counts as both (the provider rejects it anyway). */
    transports: readonly Transport[];
    portRangeText: string;
    /** Undefined when `portRange` cannot be read. */
    ports?: PortRange;
    /** The CIDR sources (cidrIp, ipv6CidrIp): in either field either family is read, so "::/0" in cidrIp counts. */
    sources: RuleSource[];
    /** Properties whose values are unknown (a preview); only a guarded read reports them instead of throwing. */
    unknown: string[];
}

export function lower(value: unknown): string {
    return typeof value === "string" ? value.toLowerCase() : "";
}

export function text(value: unknown): string | undefined {
    return value === undefined || value === null || value === "" ? undefined : String(value);
}

/**
 * Reads a rule's props. Case is ignored in type/protocol/policy; a missing policy is the provider's "accept".
 * `guarded`: a value still unknown in a preview (the SDK's props throw UnknownValueError when read) is listed in
 * `unknown` instead of aborting the whole stack policy.
 */
export function readRule(props: SecurityGroupRuleProps, guarded = false): ReadRule {
    const unknown: string[] = [];
    const read = (key: keyof SecurityGroupRuleProps): unknown => {
        if (!guarded) {
            return props[key];
        }
        try {
            return props[key];
        } catch {
            unknown.push(key);
            return undefined;
        }
    };
    const protocol = lower(read("ipProtocol"));
    const portRange = read("portRange") as string | undefined;
    const sources: RuleSource[] = [];
    for (const field of ["cidrIp", "ipv6CidrIp"] as const) {
        const value = text(read(field));
        if (value !== undefined) {
            sources.push({ field, text: value, block: parseAddressBlock(value) });
        }
    }
    // Anything but egress is treated as ingress, anything but drop as accept: fail closed.
    const opensIngress = lower(read("type")) !== "egress" && lower(read("policy")) !== "drop";
    return {
        opensIngress,
        protocol,
        transports: isKnownProtocol(protocol) ? PROTOCOL_TRANSPORTS[protocol] : ["tcp", "udp"],
        portRangeText: portRange ?? "-1/-1",
        ports: parsePortRange(portRange),
        sources,
        unknown,
    };
}

export function isKnownProtocol(protocol: string): boolean {
    return Object.hasOwn(PROTOCOL_TRANSPORTS, protocol);
}

/**
 * True when a rule's source is a prefix list: the provider uses `prefixListId` only when none of cidrIp,
 * ipv6CidrIp and sourceSecurityGroupId is set. (A sourceSecurityGroupId still unknown in a preview is a group.)
 */
export function usesPrefixList(props: SecurityGroupRuleProps, rule: ReadRule): boolean {
    if (rule.sources.length > 0 || !("prefixListId" in props)) {
        return false;
    }
    try {
        return text(props.sourceSecurityGroupId) === undefined;
    } catch {
        return false;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Rules across the stack

/** The resources a property's value came from, when they are in the stack. */
export function dependenciesOf(resource: PolicyResource, property: string): PolicyResource[] {
    return resource.propertyDependencies?.[property] ?? [];
}

/**
 * The security group a rule belongs to: the group resource its securityGroupId came from (known even in a first
 * preview, when the id is not), or else the id itself (a group outside the stack).
 */
export function securityGroupOf(resource: PolicyResource): { key: string; label: string } {
    const groups = dependenciesOf(resource, "securityGroupId");
    if (groups.length > 0) {
        return { key: groups.map((group) => group.urn).join(","), label: groups.map((group) => group.name).join(",") };
    }
    let id = "(unknown)";
    try {
        id = String(resource.props.securityGroupId ?? "(none)");
    } catch {
        // still unknown in a preview and not from a resource of this stack: all such rules form one group
    }
    return { key: `id:${id}`, label: id };
}

/**
 * The blocks a prefix-list rule admits: the entries of the alicloud.ecs.EcsPrefixList (of this stack) its
 * prefixListId came from. Undefined, after reporting it, when the list is not in the stack: the pack cannot see
 * whom such a rule lets in. Entries the pack cannot parse are reported and left out.
 */
export function prefixListBlocks(resource: PolicyResource, reportViolation?: ReportViolation): AddressBlock[] | undefined {
    const lists = dependenciesOf(resource, "prefixListId").filter((list) => list.type === ECS_PREFIX_LIST);
    if (lists.length === 0) {
        let listId = "(unknown)";
        try {
            listId = String(resource.props.prefixListId);
        } catch {
            // still unknown in a preview, and not from a resource of this stack
        }
        reportViolation?.(
            `ingress rule ${resource.name} admits prefix list ${listId}, which is not ` +
                "declared in this stack, so the pack cannot see who it lets in; use cidrIp, or an alicloud.ecs.EcsPrefixList of this stack",
            resource.urn,
        );
        return undefined;
    }
    const listed: AddressBlock[] = [];
    for (const list of lists) {
        const entries = Array.isArray(list.props.entries) ? (list.props.entries as Array<{ cidr?: unknown }>) : [];
        for (const entry of entries) {
            const cidr = text(entry?.cidr);
            const parsed = cidr === undefined ? undefined : parseAddressBlock(cidr);
            if (parsed !== undefined) {
                listed.push({ ...parsed, text: `${cidr} (prefix list ${list.name})` });
            } else {
                reportViolation?.(`prefix list ${list.name} has an entry "${cidr}" the pack cannot parse`, list.urn);
            }
        }
    }
    return listed;
}
