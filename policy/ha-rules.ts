// Guardrails for the `ha` topology: the data tier in managed services (RDS PostgreSQL, Tair/Redis, OSS) must
// survive the loss of a zone and never face the internet, and the app nodes must be reachable only through the
// load balancer. Matched by type token and read as plain property bags (see rules.ts); the input names are
// @pulumi/alicloud 3.108's.
//
// Resource policies read one resource's inputs. Where a rule joins resources (an RDS instance and its backup
// policy, a bucket and its public access block, an ECS instance and an EIP bound to it, app nodes and their
// security groups' rules) it is a stack policy, and it follows propertyDependencies, not ids: a first preview
// knows which resource a value came from before it knows the value. Values still unknown in a preview are skipped
// by the stack policies (they are judged again at `pulumi up`), never guessed.
//
// The single topology has none of these resources but ECS instances, EIPs and security groups; the rules about
// those apply only to an ha stack (one with an Auto Scaling group), so the single host keeps its EIP.
import type {
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
import { type AddressBlock, isWorldWideBlock, parseAddressBlock } from "./addresses";
import { VPC_PRIVATE_RANGES } from "../rules/input-rules";
import { RDS_BACKUP_RETENTION_DAYS } from "../rules/managed-services";
import {
    ECS_INSTANCE,
    ECS_LAUNCH_TEMPLATE,
    EIP_ASSOCIATION,
    LAUNCH_TEMPLATE,
    OSS_BUCKET,
    OSS_BUCKET_ACL,
    OSS_BUCKET_ENCRYPTION,
    OSS_BUCKET_PUBLIC_ACCESS_BLOCK,
    RDS_BACKUP_POLICY,
    RDS_ENDPOINT_ADDRESS,
    RDS_INSTANCE,
    RDS_PUBLIC_CONNECTION,
    REDIS_INSTANCE,
    REDIS_PUBLIC_CONNECTION,
    SCALING_CONFIGURATION,
    SCALING_GROUP,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    VPC,
} from "./resource-types";
import {
    type SecurityGroupRuleProps,
    dependenciesOf,
    lower,
    prefixListBlocks,
    readRule,
    securityGroupOf,
    text,
    usesPrefixList,
} from "./security-group-rules";

/** Alibaba's shortest backup retention, and the config parser's lower bound for rdsBackupRetentionDays. */
export const MIN_BACKUP_RETENTION_DAYS = RDS_BACKUP_RETENTION_DAYS.min;
/** RDS editions with a standby that takes over automatically (Basic has one node). */
export const RDS_HA_CATEGORIES: readonly string[] = ["HighAvailability", "AlwaysOn", "cluster", "Finance"];
// VPC_PRIVATE_RANGES (rules/input-rules.ts): the app nodes' allowed sources when the stack declares no VPC.
/** Server-side encryption algorithms OSS accepts. */
const SSE_ALGORITHMS: readonly string[] = ["AES256", "KMS", "SM4"];

function shown(value: unknown): string {
    return value === undefined || value === null || value === "" ? "not set" : JSON.stringify(value);
}

/** A stack resource's property as the stack policies read it: `unknown` while a preview cannot know it yet. */
type Read = { known: true; value: unknown } | { known: false };

function read(resource: PolicyResource, key: string): Read {
    try {
        return { known: true, value: resource.props[key] };
    } catch {
        return { known: false };
    }
}

/** The value when it is known and set, else undefined. */
function known(resource: PolicyResource, key: string): unknown {
    const result = read(resource, key);
    return result.known ? result.value : undefined;
}

function isTrue(value: unknown): boolean {
    return value === true || value === "true";
}

function isFalse(value: unknown): boolean {
    return value === false || value === "false";
}

/** True when `resource` took `property` from `target` (the engine's propertyDependencies). */
function dependsOn(resource: PolicyResource, property: string, target: PolicyResource): boolean {
    return dependenciesOf(resource, property).some((r) => r.urn === target.urn);
}

function ofType(args: StackValidationArgs, type: string): PolicyResource[] {
    return args.resources.filter((r) => r.type === type);
}

// ---------------------------------------------------------------------------------------------------------
// IP whitelists (RDS and Redis securityIps)

/**
 * The entries of a whitelist that admit the world (a block wider than /8, `0.0.0.0/0`, or the bare `0.0.0.0`
 * Alibaba treats as "everyone") or cannot be read. Entries may be list items or comma-separated in one string.
 */
export function whitelistProblems(ips: unknown, field = "securityIps"): string[] {
    const items = Array.isArray(ips) ? ips : ips === undefined || ips === null ? [] : [ips];
    const entries = items.flatMap((item) => String(item).split(",")).map((e) => e.trim()).filter((e) => e !== "");
    const problems: string[] = [];
    for (const entry of entries) {
        const block = parseAddressBlock(entry);
        if (entry === "0.0.0.0" || (block !== undefined && isWorldWideBlock(block))) {
            problems.push(`${field} includes ${entry}, which admits the whole internet; list the app vSwitch CIDRs only`);
        } else if (block === undefined) {
            problems.push(`${field} entry "${entry}" cannot be read; write an IPv4 address or CIDR block (10.0.1.0/24)`);
        }
    }
    return problems;
}

// ---------------------------------------------------------------------------------------------------------
// RDS

/** The part of alicloud.rds.InstanceArgs these policies read. */
export interface RdsInstanceProps {
    category?: string;
    zoneId?: string;
    zoneIdSlaveA?: string;
    haConfig?: string;
    securityIps?: string[] | string;
}

/** Returns why the RDS instance would not survive the loss of its zone, or undefined. */
export function checkRdsMultiZone(rds: RdsInstanceProps): string | undefined {
    const problems: string[] = [];
    const category = text(rds.category);
    if (category === undefined || !RDS_HA_CATEGORIES.some((c) => c.toLowerCase() === category.toLowerCase())) {
        problems.push(`category is ${shown(rds.category)}; use HighAvailability (a primary and a standby that takes over ` +
            "automatically): Basic has a single node");
    }
    const zone = text(rds.zoneId);
    const standby = text(rds.zoneIdSlaveA);
    if (zone === undefined) {
        problems.push("zoneId is not set; name the primary's zone so that the standby's can differ");
    }
    if (standby === undefined) {
        problems.push("zoneIdSlaveA is not set, so the standby shares the primary's zone and goes down with it");
    } else if (standby.toLowerCase() === "auto") {
        problems.push('zoneIdSlaveA is "Auto", which may put the standby in the primary\'s zone; name the second zone');
    } else if (zone !== undefined && standby === zone) {
        problems.push(`zoneIdSlaveA is ${standby}, the primary's zoneId; put the standby in the other zone`);
    }
    if (lower(rds.haConfig) === "manual") {
        problems.push('haConfig is "Manual": a failed primary would wait for a person; leave it "Auto"');
    }
    return problems.length === 0 ? undefined : `the RDS instance is not highly available across zones: ${problems.join("; ")}`;
}

/** Returns why the RDS resource opens the database to the internet, or undefined. */
export function checkRdsNotPublic(type: string, props: Record<string, unknown>): string | undefined {
    if (type === RDS_PUBLIC_CONNECTION) {
        return "alicloud.rds.Connection allocates an internet connection string for the RDS instance; the database is " +
            "reached only over its private endpoint inside the VPC: remove it";
    }
    if (type === RDS_ENDPOINT_ADDRESS) {
        return "alicloud.rds.DbInstanceEndpointAddress gives an RDS endpoint a public address; the database is reached " +
            "only inside the VPC: remove it";
    }
    const problems = whitelistProblems(props.securityIps);
    return problems.length === 0 ? undefined : `the RDS instance's whitelist is open: ${problems.join("; ")}`;
}

/**
 * Every RDS instance has an alicloud.rds.BackupPolicy of its own (its instanceId taken from it), keeping backups
 * at least MIN_BACKUP_RETENTION_DAYS days and log backups on (point-in-time restore needs them).
 */
function checkRdsBackups(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const policies = ofType(args, RDS_BACKUP_POLICY);
    for (const rds of ofType(args, RDS_INSTANCE)) {
        if (!policies.some((policy) => dependsOn(policy, "instanceId", rds))) {
            reportViolation(
                `RDS instance ${rds.name} has no alicloud.rds.BackupPolicy; declare one with its instanceId (backupRetentionPeriod ` +
                    `of at least ${MIN_BACKUP_RETENTION_DAYS} days, enableBackupLog true) so that its backups and point-in-time ` +
                    "restore are part of the stack",
                rds.urn,
            );
        }
    }
    for (const policy of policies) {
        // backupRetentionPeriod replaced retentionPeriod (deprecated since provider 1.69.0); either may be set.
        const retention = known(policy, "backupRetentionPeriod") ?? known(policy, "retentionPeriod");
        const problems: string[] = [];
        if (retention !== undefined && retention !== null && !(Number(retention) >= MIN_BACKUP_RETENTION_DAYS)) {
            problems.push(`backupRetentionPeriod is ${retention} days, fewer than ${MIN_BACKUP_RETENTION_DAYS}`);
        }
        if (isFalse(known(policy, "enableBackupLog"))) {
            problems.push("enableBackupLog is false, so the instance cannot be restored to a point in time");
        }
        if (problems.length > 0) {
            reportViolation(`backup policy ${policy.name}: ${problems.join("; ")}`, policy.urn);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tair / Redis

/** The part of alicloud.kvstore.InstanceArgs these policies read. */
export interface RedisInstanceProps {
    nodeType?: string;
    zoneId?: string;
    /** Deprecated spelling of zoneId. */
    availabilityZone?: string;
    secondaryZoneId?: string;
    enablePublic?: boolean | string;
    securityIps?: string[] | string;
}

/** Returns why the Redis instance would not survive the loss of its zone, or undefined. */
export function checkRedisMultiZone(redis: RedisInstanceProps): string | undefined {
    const problems: string[] = [];
    if (lower(redis.nodeType) === "stand_alone") {
        problems.push('nodeType is "STAND_ALONE": there is no replica to fail over to; use MASTER_SLAVE');
    }
    const zone = text(redis.zoneId) ?? text(redis.availabilityZone);
    const secondary = text(redis.secondaryZoneId);
    if (zone === undefined) {
        problems.push("zoneId is not set; name the master's zone so that the replica's can differ");
    }
    if (secondary === undefined) {
        problems.push("secondaryZoneId is not set, so the replica shares the master's zone and goes down with it");
    } else if (zone !== undefined && secondary === zone) {
        problems.push(`secondaryZoneId is ${secondary}, the master's zoneId; put the replica in the other zone`);
    }
    return problems.length === 0 ? undefined : `the Redis instance is not a master-replica pair across zones: ${problems.join("; ")}`;
}

/** Returns why the Redis resource opens the cache to the internet, or undefined. */
export function checkRedisNotPublic(type: string, props: Record<string, unknown>): string | undefined {
    if (type === REDIS_PUBLIC_CONNECTION) {
        return "alicloud.kvstore.Connection allocates a public connection string for the Redis instance; it is reached " +
            "only over its private endpoint inside the VPC: remove it";
    }
    const problems = isTrue(props.enablePublic) ? ["enablePublic is true (a public connection string)"] : [];
    problems.push(...whitelistProblems(props.securityIps));
    return problems.length === 0 ? undefined : `the Redis instance is open: ${problems.join("; ")}`;
}

// ---------------------------------------------------------------------------------------------------------
// OSS

/** True when `resource` (an ACL, public access block or encryption of a bucket) names `bucket`. */
function belongsToBucket(resource: PolicyResource, bucket: PolicyResource): boolean {
    if (dependsOn(resource, "bucket", bucket)) {
        return true;
    }
    const name = text(known(resource, "bucket"));
    return name !== undefined && (name === text(known(bucket, "bucket")) || name === text(known(bucket, "id")));
}

function bucketLabel(resource: PolicyResource): string {
    const names = dependenciesOf(resource, "bucket").map((b) => b.name);
    return names.length > 0 ? names.join(",") : text(known(resource, "bucket")) ?? "(unknown)";
}

/**
 * Buckets are private: no canned ACL but "private" (on the bucket or an alicloud.oss.BucketAcl), and an
 * alicloud.oss.BucketPublicAccessBlock with blockPublicAccess true for each, so that no later ACL or bucket policy
 * can make Dify's files public.
 */
function checkBucketsPrivate(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const blocks = ofType(args, OSS_BUCKET_PUBLIC_ACCESS_BLOCK);
    for (const bucket of ofType(args, OSS_BUCKET)) {
        const acl = text(known(bucket, "acl"));
        if (acl !== undefined && acl !== "private") {
            reportViolation(`bucket ${bucket.name} has acl "${acl}"; Dify's files must not be readable by anyone: use "private"`, bucket.urn);
        }
        if (!blocks.some((block) => belongsToBucket(block, bucket))) {
            reportViolation(
                `bucket ${bucket.name} has no alicloud.oss.BucketPublicAccessBlock; add one with blockPublicAccess true so that ` +
                    "no ACL or bucket policy can make it public",
                bucket.urn,
            );
        }
    }
    for (const acl of ofType(args, OSS_BUCKET_ACL)) {
        const value = text(known(acl, "acl"));
        if (value !== undefined && value !== "private") {
            reportViolation(`BucketAcl ${acl.name} sets acl "${value}" on bucket ${bucketLabel(acl)}; use "private"`, acl.urn);
        }
    }
    for (const block of blocks) {
        const value = read(block, "blockPublicAccess");
        if (value.known && !isTrue(value.value)) {
            reportViolation(
                `BucketPublicAccessBlock ${block.name} for bucket ${bucketLabel(block)} has blockPublicAccess ${shown(value.value)}; set it to true`,
                block.urn,
            );
        }
    }
}

/** The bucket's own serverSideEncryptionRule algorithm: a string, "" when unset, undefined while unknown. */
function inlineSseAlgorithm(bucket: PolicyResource): string | undefined {
    try {
        const rule = bucket.props.serverSideEncryptionRule as { sseAlgorithm?: unknown } | undefined;
        return text(rule?.sseAlgorithm) ?? "";
    } catch {
        return undefined;
    }
}

function isSseAlgorithm(value: string | undefined): boolean {
    return value !== undefined && SSE_ALGORITHMS.includes(value.toUpperCase());
}

/** Buckets encrypt what they store: serverSideEncryptionRule, or an alicloud.oss.BucketServerSideEncryption. */
function checkBucketsEncrypted(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const encryptions = ofType(args, OSS_BUCKET_ENCRYPTION);
    for (const bucket of ofType(args, OSS_BUCKET)) {
        const inline = inlineSseAlgorithm(bucket);
        const separate = encryptions.filter((e) => belongsToBucket(e, bucket));
        if (inline === undefined || isSseAlgorithm(inline)) {
            continue;
        }
        if (separate.some((e) => !read(e, "sseAlgorithm").known || isSseAlgorithm(text(known(e, "sseAlgorithm"))))) {
            continue;
        }
        const why = inline === "" ? "no serverSideEncryptionRule" : `serverSideEncryptionRule.sseAlgorithm "${inline}"`;
        reportViolation(
            `bucket ${bucket.name} is not encrypted at rest (${why}${separate.length > 0 ? " and no BucketServerSideEncryption with a known algorithm" : ""}); ` +
                `set serverSideEncryptionRule { sseAlgorithm: "AES256" } (or "KMS"), or add an alicloud.oss.BucketServerSideEncryption`,
            bucket.urn,
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// App nodes: reachable only through the load balancer

/** What app nodes are launched from: an Auto Scaling configuration or a launch template. */
const NODE_TEMPLATES: readonly string[] = [SCALING_CONFIGURATION, ECS_LAUNCH_TEMPLATE, LAUNCH_TEMPLATE];

/** Returns why a scaling configuration or launch template gives its instances a public address, or undefined. */
export function checkNodeTemplateNoPublicIp(props: { internetMaxBandwidthOut?: unknown }): string | undefined {
    const bandwidth = Number(props.internetMaxBandwidthOut ?? 0);
    return bandwidth > 0
        ? `internetMaxBandwidthOut is ${props.internetMaxBandwidthOut}, which gives every app node launched from it a public IP ` +
            "address; app nodes are reached only through the load balancer and go out through the NAT gateway: set it to 0"
        : undefined;
}

/** An ha stack: its app nodes come from an Auto Scaling group. */
function isHaStack(args: StackValidationArgs): boolean {
    return args.resources.some((r) => r.type === SCALING_GROUP);
}

/** In an ha stack no ECS instance (the singleton) has a public IP address or an EIP bound to it. */
function checkHaInstancesNoPublicIp(args: StackValidationArgs, reportViolation: ReportViolation): void {
    if (!isHaStack(args)) {
        return; // the single host legitimately has an EIP
    }
    const associations = ofType(args, EIP_ASSOCIATION);
    for (const instance of ofType(args, ECS_INSTANCE)) {
        const bandwidth = known(instance, "internetMaxBandwidthOut");
        if (Number(bandwidth ?? 0) > 0) {
            reportViolation(
                `ECS instance ${instance.name} has internetMaxBandwidthOut ${bandwidth}, a public IP address; in the ha topology ` +
                    "instances are reached only through the load balancer or the VPC: set it to 0",
                instance.urn,
            );
        }
        for (const association of associations.filter((a) => dependsOn(a, "instanceId", instance))) {
            reportViolation(
                `EIP association ${association.name} binds a public address to ECS instance ${instance.name}; in the ha topology ` +
                    "instances are reached only through the load balancer or the VPC: remove it",
                association.urn,
            );
        }
    }
}

/**
 * The security groups of the app nodes: a scaling configuration's or launch template's, and (in an ha stack) the
 * ECS instances'.
 */
function appNodeGroups(args: StackValidationArgs, reportViolation: ReportViolation): Map<string, { group: PolicyResource; users: string[] }> {
    const groups = new Map<string, { group: PolicyResource; users: string[] }>();
    /** `properties` name security groups by id; `nested` hold them deeper (a launch template's networkInterfaces). */
    const add = (user: PolicyResource, properties: readonly string[], nested: readonly string[] = []) => {
        const found = [...properties, ...nested].flatMap((p) => dependenciesOf(user, p)).filter((g) => g.type === SECURITY_GROUP);
        for (const group of found) {
            const entry = groups.get(group.urn) ?? { group, users: [] };
            entry.users.push(user.name);
            groups.set(group.urn, entry);
        }
        if (found.length > 0) {
            return;
        }
        // A group not declared in this stack: its rules cannot be seen, so who reaches the nodes cannot be checked.
        const ids = properties.map((p) => read(user, p)).filter((r) => r.known && r.value !== undefined && r.value !== null && r.value !== "");
        if (ids.length > 0) {
            const shownIds = ids.map((r) => (r.known ? JSON.stringify(r.value) : "")).join(", ");
            reportViolation(
                `${user.name} uses security group ${shownIds}, which is not declared in this stack, so the pack cannot see who ` +
                    "reaches its instances; use a security group of this stack",
                user.urn,
            );
        }
    };
    for (const template of args.resources.filter((r) => NODE_TEMPLATES.includes(r.type))) {
        add(template, ["securityGroupId", "securityGroupIds"], ["networkInterfaces"]);
    }
    if (isHaStack(args)) {
        for (const instance of ofType(args, ECS_INSTANCE)) {
            add(instance, ["securityGroups"]);
        }
    }
    return groups;
}

/** The blocks a group's VPC is made of (cidrBlock and secondaryCidrBlocks), or the private ranges without one. */
function vpcBlocks(group: PolicyResource): { blocks: AddressBlock[]; label: string } {
    const vpcs = dependenciesOf(group, "vpcId").filter((r) => r.type === VPC);
    const texts = vpcs.flatMap((vpc) => {
        const secondary = known(vpc, "secondaryCidrBlocks");
        return [known(vpc, "cidrBlock"), ...(Array.isArray(secondary) ? secondary : [])];
    }).flatMap((t) => (typeof t === "string" && t !== "" ? [t] : []));
    const parsed = texts.flatMap((t) => parseAddressBlock(t) ?? []);
    if (parsed.length > 0) {
        return { blocks: parsed, label: `VPC ${vpcs.map((v) => v.name).join(",")} (${texts.join(", ")})` };
    }
    return { blocks: VPC_PRIVATE_RANGES.map((t) => parseAddressBlock(t)!), label: `the private ranges (${VPC_PRIVATE_RANGES.join(", ")})` };
}

function within(inner: AddressBlock, outer: AddressBlock): boolean {
    return inner.family === outer.family && outer.first <= inner.first && inner.first + inner.size <= outer.first + outer.size;
}

/**
 * The app nodes' (and in an ha stack the singleton's) security groups admit nothing from outside their VPC: no
 * rule of theirs has a CIDR or prefix-list source outside the VPC's blocks. The internet reaches Dify only through
 * the ALB, whose addresses are in the VPC's lb vSwitches.
 */
function checkAppNodesIngress(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const groups = appNodeGroups(args, reportViolation);
    if (groups.size === 0) {
        return;
    }
    for (const resource of ofType(args, SECURITY_GROUP_RULE)) {
        const owner = groups.get(securityGroupOf(resource).key);
        if (owner === undefined) {
            continue;
        }
        const rule = readRule(resource.props as SecurityGroupRuleProps, true);
        if (rule.unknown.length > 0 || !rule.opensIngress) {
            continue; // unknown in a preview: judged at `pulumi up`
        }
        // Unreadable sources and prefix lists outside the stack are reported by security-group-rule-readable and
        // no-world-open-across-rules.
        const blocks = rule.sources.flatMap((source) => source.block ?? []);
        if (usesPrefixList(resource.props as SecurityGroupRuleProps, rule)) {
            blocks.push(...(prefixListBlocks(resource) ?? []));
        }
        const vpc = vpcBlocks(owner.group);
        const outside = blocks.filter((block) => !vpc.blocks.some((allowed) => within(block, allowed)));
        if (outside.length > 0) {
            reportViolation(
                `ingress rule ${resource.name} of security group ${owner.group.name} (used by ${owner.users.join(", ")}) admits ` +
                    `${outside.map((b) => b.text).join(", ")} on ${rule.protocol} ${rule.portRangeText}, outside ${vpc.label}; app ` +
                    "nodes are reached only through the load balancer: admit the load balancer's vSwitch CIDRs instead",
                resource.urn,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Policies

const enforcementLevel: EnforcementLevel = "mandatory";

function onTypes(types: readonly string[], check: (type: string, props: Record<string, unknown>) => string | undefined) {
    return (args: ResourceValidationArgs, reportViolation: ReportViolation): void => {
        if (!types.includes(args.type)) {
            return;
        }
        const message = check(args.type, args.props);
        if (message !== undefined) {
            reportViolation(message);
        }
    };
}

const rdsMultiZone: ResourceValidationPolicy = {
    name: "rds-multi-zone",
    description: "RDS instances are High-availability Edition (or Cluster) with the standby in another zone " +
        "(zoneIdSlaveA set and different from zoneId) and automatic failover.",
    enforcementLevel,
    validateResource: onTypes([RDS_INSTANCE], (_, props) => checkRdsMultiZone(props as RdsInstanceProps)),
};

const rdsBackups: StackValidationPolicy = {
    name: "rds-backups",
    description: `Every RDS instance has an alicloud.rds.BackupPolicy keeping backups at least ${MIN_BACKUP_RETENTION_DAYS} ` +
        "days, with log backups (point-in-time restore) on.",
    enforcementLevel,
    validateStack: checkRdsBackups,
};

const rdsNotPublic: ResourceValidationPolicy = {
    name: "rds-not-public",
    description: "No public connection string or endpoint address for RDS, and no RDS whitelist entry as wide as " +
        "the internet (0.0.0.0/0).",
    enforcementLevel,
    validateResource: onTypes([RDS_INSTANCE, RDS_PUBLIC_CONNECTION, RDS_ENDPOINT_ADDRESS], checkRdsNotPublic),
};

const redisNotPublic: ResourceValidationPolicy = {
    name: "redis-not-public",
    description: "No public connection for Tair/Redis (alicloud.kvstore.Connection, enablePublic), and no whitelist " +
        "entry as wide as the internet (0.0.0.0/0, 0.0.0.0).",
    enforcementLevel,
    validateResource: onTypes([REDIS_INSTANCE, REDIS_PUBLIC_CONNECTION], checkRedisNotPublic),
};

const redisMultiZone: ResourceValidationPolicy = {
    name: "redis-multi-zone",
    description: "Tair/Redis instances are master-replica with the replica in a secondary zone (secondaryZoneId set " +
        "and different from zoneId).",
    enforcementLevel,
    validateResource: onTypes([REDIS_INSTANCE], (_, props) => checkRedisMultiZone(props as RedisInstanceProps)),
};

const ossBucketPrivate: StackValidationPolicy = {
    name: "oss-bucket-private",
    description: "OSS buckets are private (no ACL but private) and have a BucketPublicAccessBlock with " +
        "blockPublicAccess true.",
    enforcementLevel,
    validateStack: checkBucketsPrivate,
};

const ossBucketEncrypted: StackValidationPolicy = {
    name: "oss-bucket-encrypted",
    description: "OSS buckets encrypt objects at rest (serverSideEncryptionRule or a BucketServerSideEncryption: " +
        "AES256, KMS or SM4).",
    enforcementLevel,
    validateStack: checkBucketsEncrypted,
};

const nodeTemplateNoPublicIp: ResourceValidationPolicy = {
    name: "app-nodes-no-public-ip",
    description: "Auto Scaling configurations and launch templates give their instances no public IP address " +
        "(internetMaxBandwidthOut 0 or unset): app nodes are reached only through the load balancer.",
    enforcementLevel,
    validateResource: onTypes(NODE_TEMPLATES, (_, props) => checkNodeTemplateNoPublicIp(props)),
};

const haInstancesNoPublicIp: StackValidationPolicy = {
    name: "ha-instances-no-public-ip",
    description: "In an ha stack (one with an Auto Scaling group) no ECS instance has a public IP address or an EIP " +
        "bound to it. The single topology's host keeps its EIP.",
    enforcementLevel,
    validateStack: checkHaInstancesNoPublicIp,
};

const appNodesIngressFromVpc: StackValidationPolicy = {
    name: "app-nodes-ingress-from-vpc",
    description: "The security groups of Auto Scaling configurations and launch templates (and, in an ha stack, of the " +
        "ECS instances) admit " +
        "no source outside their VPC's CIDR blocks (or the private ranges), and are declared in the stack.",
    enforcementLevel,
    validateStack: checkAppNodesIngress,
};

/** The ha tier's policies, in the pack's list after the others. */
export const haPolicies = [
    rdsMultiZone,
    rdsBackups,
    rdsNotPublic,
    redisMultiZone,
    redisNotPublic,
    ossBucketPrivate,
    ossBucketEncrypted,
    nodeTemplateNoPublicIp,
    haInstancesNoPublicIp,
    appNodesIngressFromVpc,
];
