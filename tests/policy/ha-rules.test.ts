// The ha topology's guardrails (policy/ha-rules.ts), fed an ha stack as property bags in the shape the engine
// registers them: @pulumi/alicloud 3.108's input names (each bag is type-checked against the class's Args), type
// tokens, and propertyDependencies from the resource a value came from. The whole pack runs on them
// (policy-sdk.ts, as the policy SDK calls it): a compliant stack passes every policy, and each change below is
// reported by exactly the policy it breaks, with a message naming what is wrong.
import type * as alicloud from "@pulumi/alicloud";
import { beforeAll, describe, expect, it } from "vitest";
import { policies } from "../../policy/rules";
import {
    ECS_INSTANCE,
    ECS_LAUNCH_TEMPLATE,
    EIP_ASSOCIATION,
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
} from "../../policy/resource-types";
import { whitelistProblems } from "../../policy/ha-rules";
import { type Finding, lines, packWithout, policiesReporting, runPack, withUnknown } from "./policy-sdk";
import { captureRegistrations, theOne, withChanges } from "./registered-resources";
import type { CapturedResource } from "./registered-resources";

const HA_POLICIES = [
    "rds-multi-zone",
    "rds-backups",
    "rds-not-public",
    "redis-multi-zone",
    "redis-not-public",
    "oss-bucket-private",
    "oss-bucket-encrypted",
    "app-nodes-no-public-ip",
    "ha-instances-no-public-ip",
    "app-nodes-ingress-from-vpc",
];

const NAT_GATEWAY = "alicloud:vpc/natGateway:NatGateway";
const EIP_ADDRESS = "alicloud:ecs/eipAddress:EipAddress";

/** A registered resource: `inputs` as the program passes them, `deps` the resources each input came from. */
function bag(type: string, name: string, inputs: object, deps: Record<string, CapturedResource[]> = {}): CapturedResource {
    const propertyDependencies = Object.fromEntries(Object.entries(deps).map(([key, from]) => [key, from.map((r) => r.urn)]));
    return {
        urn: `urn:pulumi:ha::dify-mcp-stack::${type}::${name}`,
        type,
        name,
        custom: true,
        protect: false,
        ignoreChanges: [],
        dependencies: [...new Set(Object.values(deps).flat().map((r) => r.urn))],
        propertyDependencies,
        inputs: { ...inputs },
        outputs: { ...inputs },
    };
}

const ZONE_A = "cn-hangzhou-h";
const ZONE_B = "cn-hangzhou-i";
const LB_CIDRS = ["172.16.0.0/24", "172.16.1.0/24"];
const APP_CIDRS = ["172.16.10.0/24", "172.16.11.0/24"];

/** The ha stack as ha/* registers it (the parts the pack reads), every guardrail satisfied. */
function haStack(): CapturedResource[] {
    const vpc = bag(VPC, "dify-vpc", { cidrBlock: "172.16.0.0/16", vpcName: "dify" } satisfies alicloud.vpc.NetworkArgs);
    const appSg = bag(SECURITY_GROUP, "dify-app-sg", { vpcId: "vpc-1" } satisfies alicloud.ecs.SecurityGroupArgs, { vpcId: [vpc] });
    const singletonSg = bag(SECURITY_GROUP, "dify-singleton-sg", { vpcId: "vpc-1" } satisfies alicloud.ecs.SecurityGroupArgs, { vpcId: [vpc] });
    const rule = (name: string, group: CapturedResource, args: Omit<alicloud.ecs.SecurityGroupRuleArgs, "securityGroupId">) =>
        bag(SECURITY_GROUP_RULE, name, { securityGroupId: "sg-1", policy: "accept", ...args } satisfies alicloud.ecs.SecurityGroupRuleArgs, {
            securityGroupId: [group],
        });
    const rules = [
        ...LB_CIDRS.map((cidrIp, i) => rule(`dify-app-in-80-lb${i}`, appSg, { type: "ingress", ipProtocol: "tcp", portRange: "80/80", cidrIp })),
        ...APP_CIDRS.map((cidrIp, i) => rule(`dify-singleton-in-5002-app${i}`, singletonSg, { type: "ingress", ipProtocol: "tcp", portRange: "5002/5002", cidrIp })),
        rule("dify-app-out-all", appSg, { type: "egress", ipProtocol: "all", portRange: "-1/-1", cidrIp: "0.0.0.0/0" }),
    ];
    const nat = bag(NAT_GATEWAY, "dify-nat", { vpcId: "vpc-1", natType: "Enhanced", paymentType: "PayAsYouGo", vswitchId: "vsw-app-a" } satisfies alicloud.vpc.NatGatewayArgs, { vpcId: [vpc] });
    const natEip = bag(EIP_ADDRESS, "dify-nat-eip", { internetChargeType: "PayByTraffic" } satisfies alicloud.ecs.EipAddressArgs);
    const natEipAssociation = bag(EIP_ASSOCIATION, "dify-nat-eip-assoc", { allocationId: "eip-1", instanceId: "ngw-1", instanceType: "Nat" } satisfies alicloud.ecs.EipAssociationArgs, {
        allocationId: [natEip],
        instanceId: [nat],
    });
    const singleton = bag(ECS_INSTANCE, "dify-singleton", {
        instanceType: "ecs.g7.large",
        imageId: "ubuntu_24_04_x64_20G_alibase_20250101.vhd",
        vswitchId: "vsw-app-a",
        securityGroups: ["sg-singleton"],
        internetMaxBandwidthOut: 0,
        tags: { "dify-version": "1.14.1", role: "singleton" },
    } satisfies alicloud.ecs.InstanceArgs, { securityGroups: [singletonSg] });
    // DifyAppTier launches its nodes from a launch template (it carries httpTokens; a scaling configuration cannot).
    const template = bag(ECS_LAUNCH_TEMPLATE, "dify-nodes-template", {
        launchTemplateName: "dify-app-node",
        instanceType: "ecs.g7.large",
        imageId: "ubuntu_24_04_x64_20G_alibase_20250101.vhd",
        vpcId: "vpc-1",
        securityGroupIds: ["sg-app"],
        internetMaxBandwidthOut: 0,
        httpTokens: "required",
    } satisfies alicloud.ecs.EcsLaunchTemplateArgs, { vpcId: [vpc], securityGroupIds: [appSg] });
    const group = bag(SCALING_GROUP, "dify-nodes", {
        minSize: 2,
        maxSize: 3,
        vswitchIds: ["vsw-app-a", "vsw-app-b"],
        multiAzPolicy: "PRIORITY",
        launchTemplateId: "lt-1",
        launchTemplateVersion: "Latest",
        healthCheckType: "ECS",
    } satisfies alicloud.ess.ScalingGroupArgs, { launchTemplateId: [template] });
    const rds = bag(RDS_INSTANCE, "dify-rds", {
        engine: "PostgreSQL",
        engineVersion: "16.0",
        instanceType: "pg.n2.2c.2m",
        instanceStorage: 50,
        category: "HighAvailability",
        zoneId: ZONE_A,
        zoneIdSlaveA: ZONE_B,
        vswitchId: "vsw-data-a,vsw-data-b",
        securityIps: APP_CIDRS,
    } satisfies alicloud.rds.InstanceArgs);
    const backup = bag(RDS_BACKUP_POLICY, "dify-rds-backup", { instanceId: "pgm-1", backupRetentionPeriod: 7, enableBackupLog: true } satisfies alicloud.rds.BackupPolicyArgs, {
        instanceId: [rds],
    });
    const redis = bag(REDIS_INSTANCE, "dify-redis", {
        instanceClass: "redis.master.small.default",
        engineVersion: "7.0",
        zoneId: ZONE_A,
        secondaryZoneId: ZONE_B,
        vswitchId: "vsw-data-a",
        securityIps: APP_CIDRS,
    } satisfies alicloud.kvstore.InstanceArgs);
    const bucket = bag(OSS_BUCKET, "dify-files", {
        bucket: "dify-ha-files-7f3a",
        redundancyType: "ZRS",
        serverSideEncryptionRule: { sseAlgorithm: "AES256" },
        versioning: { status: "Enabled" },
    } satisfies alicloud.oss.BucketArgs);
    const bucketAcl = bag(OSS_BUCKET_ACL, "dify-files-acl", { bucket: "dify-ha-files-7f3a", acl: "private" } satisfies alicloud.oss.BucketAclArgs, { bucket: [bucket] });
    const publicAccessBlock = bag(OSS_BUCKET_PUBLIC_ACCESS_BLOCK, "dify-files-pab", { bucket: "dify-ha-files-7f3a", blockPublicAccess: true } satisfies alicloud.oss.BucketPublicAccessBlockArgs, {
        bucket: [bucket],
    });
    return [vpc, appSg, singletonSg, ...rules, nat, natEip, natEipAssociation, singleton, template, group, rds, backup, redis, bucket, bucketAcl, publicAccessBlock];
}

function named(resources: readonly CapturedResource[], name: string): CapturedResource {
    const found = resources.find((r) => r.name === name);
    if (found === undefined) {
        throw new Error(`no resource ${name}`);
    }
    return found;
}

/** The stack with one resource's inputs (and outputs) changed in place; `undefined` removes a property. */
function changed(name: string, changes: Record<string, unknown>, resources = haStack()): CapturedResource[] {
    return resources.map((r) => (r.name === name ? withChanges(r, changes) : r));
}

function without(name: string, resources = haStack()): CapturedResource[] {
    return resources.filter((r) => r.name !== name);
}

const mandatory = (findings: readonly Finding[]) => findings.filter((f) => f.enforcementLevel === "mandatory");

/** The one finding the change causes, as "policy: message". */
async function onlyFinding(resources: readonly CapturedResource[]): Promise<string> {
    const findings = await runPack(resources);
    expect(lines(findings)).toHaveLength(1);
    return lines(findings)[0];
}

describe("the ha stack", () => {
    it("passes the whole pack when every guardrail is met", async () => {
        expect(await runPack(haStack())).toEqual([]);
    });

    it("the pack lists every ha policy, and each is load-bearing", async () => {
        const names = policies.map((p) => p.name);
        expect(names).toEqual(expect.arrayContaining(HA_POLICIES));
        for (const name of HA_POLICIES) {
            expect(() => packWithout(name)).not.toThrow();
        }
    });

    it("in a first preview (ids unknown) resources are still joined through propertyDependencies", async () => {
        const preview = haStack().map((r) => {
            switch (r.type) {
                case RDS_BACKUP_POLICY:
                    return withUnknown(r, ["instanceId"]);
                case OSS_BUCKET_ACL:
                case OSS_BUCKET_PUBLIC_ACCESS_BLOCK:
                    return withUnknown(r, ["bucket"]);
                case SECURITY_GROUP_RULE:
                    return withUnknown(r, ["securityGroupId"]);
                case ECS_LAUNCH_TEMPLATE:
                    return withUnknown(r, ["vpcId", "securityGroupIds"]);
                case SCALING_GROUP:
                    return withUnknown(r, ["launchTemplateId"]);
                case OSS_BUCKET:
                    return withUnknown(r, ["bucket"]);
                default:
                    return r;
            }
        });
        expect(await runPack(preview)).toEqual([]);
        // …and a missing backup policy is still seen.
        expect(policiesReporting(await runPack(preview.filter((r) => r.type !== RDS_BACKUP_POLICY)))).toEqual(["rds-backups"]);
    });
});

describe("rds-multi-zone", () => {
    const prefix = "rds-multi-zone: the RDS instance is not highly available across zones: ";
    it.each([
        [{ category: "Basic" }, 'category is "Basic"; use HighAvailability (a primary and a standby that takes over automatically): Basic has a single node'],
        [{ category: undefined }, "category is not set; use HighAvailability"],
        [{ zoneIdSlaveA: undefined }, "zoneIdSlaveA is not set, so the standby shares the primary's zone and goes down with it"],
        [{ zoneIdSlaveA: ZONE_A }, `zoneIdSlaveA is ${ZONE_A}, the primary's zoneId; put the standby in the other zone`],
        [{ zoneIdSlaveA: "Auto" }, 'zoneIdSlaveA is "Auto", which may put the standby in the primary\'s zone; name the second zone'],
        [{ zoneId: undefined }, "zoneId is not set; name the primary's zone so that the standby's can differ"],
        [{ haConfig: "Manual" }, 'haConfig is "Manual": a failed primary would wait for a person; leave it "Auto"'],
    ])("%j: reported", async (changes, problem) => {
        const line = await onlyFinding(changed("dify-rds", changes));
        expect(line.startsWith(prefix), line).toBe(true);
        expect(line).toContain(problem);
    });

    it.each([[{ category: "AlwaysOn" }], [{ category: "cluster" }], [{ category: "highavailability" }], [{ haConfig: "Auto" }]])("%j: allowed", async (changes) => {
        expect(await runPack(changed("dify-rds", changes))).toEqual([]);
    });
});

describe("rds-backups", () => {
    it("an RDS instance without a BackupPolicy of its own", async () => {
        expect(await onlyFinding(without("dify-rds-backup"))).toBe(
            "rds-backups: RDS instance dify-rds has no alicloud.rds.BackupPolicy; declare one with its instanceId (backupRetentionPeriod " +
                "of at least 7 days, enableBackupLog true) so that its backups and point-in-time restore are part of the stack",
        );
    });

    it("a BackupPolicy for another instance does not count", async () => {
        const resources = haStack();
        const other = bag(RDS_INSTANCE, "other-rds", { ...named(resources, "dify-rds").inputs });
        const backup = named(resources, "dify-rds-backup");
        const rebound = { ...backup, propertyDependencies: { instanceId: [other.urn] } };
        const findings = await runPack([...resources.filter((r) => r !== backup), other, rebound]);
        expect(lines(findings)).toEqual([expect.stringMatching(/^rds-backups: RDS instance dify-rds has no alicloud\.rds\.BackupPolicy/)]);
    });

    it.each([
        [{ backupRetentionPeriod: 3 }, "rds-backups: backup policy dify-rds-backup: backupRetentionPeriod is 3 days, fewer than 7"],
        [{ backupRetentionPeriod: undefined, retentionPeriod: 5 }, "rds-backups: backup policy dify-rds-backup: backupRetentionPeriod is 5 days, fewer than 7"],
        [{ enableBackupLog: false }, "rds-backups: backup policy dify-rds-backup: enableBackupLog is false, so the instance cannot be restored to a point in time"],
    ])("%j: reported", async (changes, expected) => {
        expect(await onlyFinding(changed("dify-rds-backup", changes))).toBe(expected);
    });

    it.each([[{ backupRetentionPeriod: 30 }], [{ backupRetentionPeriod: undefined }], [{ enableBackupLog: undefined }]])("%j: allowed (unset means the provider's 7 days / log backups on)", async (changes) => {
        expect(await runPack(changed("dify-rds-backup", changes))).toEqual([]);
    });
});

describe("rds-not-public", () => {
    it("an alicloud.rds.Connection (a public connection string)", async () => {
        const resources = haStack();
        const connection = bag(RDS_PUBLIC_CONNECTION, "dify-rds-public", { instanceId: "pgm-1", connectionPrefix: "dify-public" } satisfies alicloud.rds.ConnectionArgs, {
            instanceId: [named(resources, "dify-rds")],
        });
        expect(await onlyFinding([...resources, connection])).toBe(
            "rds-not-public: alicloud.rds.Connection allocates an internet connection string for the RDS instance; the database " +
                "is reached only over its private endpoint inside the VPC: remove it",
        );
    });

    it("an alicloud.rds.DbInstanceEndpointAddress (a public endpoint address)", async () => {
        const address = bag(RDS_ENDPOINT_ADDRESS, "dify-rds-endpoint-public", {
            dbInstanceId: "pgm-1",
            dbInstanceEndpointId: "ep-1",
            connectionStringPrefix: "dify-public",
            port: "5432",
        } satisfies alicloud.rds.DbInstanceEndpointAddressArgs);
        expect(await onlyFinding([...haStack(), address])).toMatch(/^rds-not-public: alicloud\.rds\.DbInstanceEndpointAddress gives an RDS endpoint a public address/);
    });

    it.each([
        [["0.0.0.0/0"], "securityIps includes 0.0.0.0/0, which admits the whole internet; list the app vSwitch CIDRs only"],
        [[...APP_CIDRS, "0.0.0.0/1"], "securityIps includes 0.0.0.0/1, which admits the whole internet"],
        [`${APP_CIDRS[0]},0.0.0.0/0`, "securityIps includes 0.0.0.0/0"],
        [["any"], 'securityIps entry "any" cannot be read; write an IPv4 address or CIDR block (10.0.1.0/24)'],
    ])("securityIps %j: reported", async (securityIps, problem) => {
        const line = await onlyFinding(changed("dify-rds", { securityIps }));
        expect(line.startsWith("rds-not-public: the RDS instance's whitelist is open: "), line).toBe(true);
        expect(line).toContain(problem);
    });
});

describe("redis-multi-zone", () => {
    const prefix = "redis-multi-zone: the Redis instance is not a master-replica pair across zones: ";
    it.each([
        [{ secondaryZoneId: undefined }, "secondaryZoneId is not set, so the replica shares the master's zone and goes down with it"],
        [{ secondaryZoneId: ZONE_A }, `secondaryZoneId is ${ZONE_A}, the master's zoneId; put the replica in the other zone`],
        [{ nodeType: "STAND_ALONE" }, 'nodeType is "STAND_ALONE": there is no replica to fail over to; use MASTER_SLAVE'],
        [{ zoneId: undefined }, "zoneId is not set; name the master's zone so that the replica's can differ"],
    ])("%j: reported", async (changes, problem) => {
        expect(await onlyFinding(changed("dify-redis", changes))).toBe(prefix + problem);
    });

    it.each([[{ nodeType: "MASTER_SLAVE" }], [{ zoneId: undefined, availabilityZone: ZONE_A }]])("%j: allowed", async (changes) => {
        expect(await runPack(changed("dify-redis", changes))).toEqual([]);
    });
});

describe("redis-not-public", () => {
    it("an alicloud.kvstore.Connection (a public connection string)", async () => {
        const resources = haStack();
        const connection = bag(REDIS_PUBLIC_CONNECTION, "dify-redis-public", {
            instanceId: "r-1",
            connectionStringPrefix: "dify-redis-public",
            port: "6379",
        } satisfies alicloud.kvstore.ConnectionArgs, { instanceId: [named(resources, "dify-redis")] });
        expect(await onlyFinding([...resources, connection])).toBe(
            "redis-not-public: alicloud.kvstore.Connection allocates a public connection string for the Redis instance; it is " +
                "reached only over its private endpoint inside the VPC: remove it",
        );
    });

    it.each([
        [{ enablePublic: true }, "redis-not-public: the Redis instance is open: enablePublic is true (a public connection string)"],
        [{ securityIps: ["0.0.0.0"] }, "redis-not-public: the Redis instance is open: securityIps includes 0.0.0.0, which admits the whole internet; list the app vSwitch CIDRs only"],
        [{ securityIps: [...APP_CIDRS, "0.0.0.0/0"] }, "redis-not-public: the Redis instance is open: securityIps includes 0.0.0.0/0, which admits the whole internet; list the app vSwitch CIDRs only"],
    ])("%j: reported", async (changes, expected) => {
        expect(await onlyFinding(changed("dify-redis", changes))).toBe(expected);
    });

    it("reads whitelists the way Alibaba takes them: list items or comma-separated, bare addresses", () => {
        expect(whitelistProblems(["10.0.0.1", "172.16.10.0/24,172.16.11.0/24"])).toEqual([]);
        expect(whitelistProblems("127.0.0.1")).toEqual([]);
        expect(whitelistProblems(undefined)).toEqual([]);
        expect(whitelistProblems(["10.0.0.0/8"])).toEqual([]);
        expect(whitelistProblems(["10.0.0.0/7"])).toHaveLength(1);
    });
});

describe("oss-bucket-private", () => {
    it.each([
        ["dify-files", { acl: "public-read" }, 'oss-bucket-private: bucket dify-files has acl "public-read"; Dify\'s files must not be readable by anyone: use "private"'],
        ["dify-files-acl", { acl: "public-read-write" }, 'oss-bucket-private: BucketAcl dify-files-acl sets acl "public-read-write" on bucket dify-files; use "private"'],
        ["dify-files-pab", { blockPublicAccess: false }, "oss-bucket-private: BucketPublicAccessBlock dify-files-pab for bucket dify-files has blockPublicAccess false; set it to true"],
    ])("%s with %j: reported", async (name, changes, expected) => {
        expect(await onlyFinding(changed(name, changes))).toBe(expected);
    });

    it("a bucket without a BucketPublicAccessBlock", async () => {
        expect(await onlyFinding(without("dify-files-pab"))).toBe(
            "oss-bucket-private: bucket dify-files has no alicloud.oss.BucketPublicAccessBlock; add one with blockPublicAccess true " +
                "so that no ACL or bucket policy can make it public",
        );
    });

    it("a public access block for another bucket does not count; one naming the bucket by name does", async () => {
        const resources = haStack();
        const block = named(resources, "dify-files-pab");
        const elsewhere = { ...block, propertyDependencies: {}, inputs: { ...block.inputs, bucket: "other" }, outputs: { ...block.outputs, bucket: "other" } };
        expect(policiesReporting(await runPack([...resources.filter((r) => r !== block), elsewhere]))).toEqual(["oss-bucket-private"]);
        const byName = { ...block, propertyDependencies: {} };
        expect(await runPack([...resources.filter((r) => r !== block), byName])).toEqual([]);
    });

    it("no BucketAcl at all is fine (buckets are private unless made otherwise)", async () => {
        expect(await runPack(without("dify-files-acl"))).toEqual([]);
    });
});

describe("oss-bucket-encrypted", () => {
    it("a bucket without server-side encryption", async () => {
        expect(await onlyFinding(changed("dify-files", { serverSideEncryptionRule: undefined }))).toBe(
            "oss-bucket-encrypted: bucket dify-files is not encrypted at rest (no serverSideEncryptionRule); set " +
                'serverSideEncryptionRule { sseAlgorithm: "AES256" } (or "KMS"), or add an alicloud.oss.BucketServerSideEncryption',
        );
    });

    it("encryption as its own resource (alicloud.oss.BucketServerSideEncryption) counts", async () => {
        const resources = changed("dify-files", { serverSideEncryptionRule: undefined });
        const encryption = bag(OSS_BUCKET_ENCRYPTION, "dify-files-sse", { bucket: "dify-ha-files-7f3a", sseAlgorithm: "KMS" } satisfies alicloud.oss.BucketServerSideEncryptionArgs, {
            bucket: [named(resources, "dify-files")],
        });
        expect(await runPack([...resources, encryption])).toEqual([]);
    });
});

describe("app-nodes-no-public-ip", () => {
    const expected =
        "app-nodes-no-public-ip: internetMaxBandwidthOut is 5, which gives every app node launched from it a public IP address; " +
        "app nodes are reached only through the load balancer and go out through the NAT gateway: set it to 0";

    it("a launch template with public bandwidth", async () => {
        expect(await onlyFinding(changed("dify-nodes-template", { internetMaxBandwidthOut: 5 }))).toBe(expected);
    });

    it("a scaling configuration with public bandwidth (a group launching from one instead)", async () => {
        const resources = haStack();
        const configuration = bag(SCALING_CONFIGURATION, "dify-nodes-config", {
            scalingGroupId: "asg-1",
            instanceType: "ecs.g7.large",
            imageId: "ubuntu_24_04_x64_20G_alibase_20250101.vhd",
            securityGroupIds: ["sg-app"],
            internetMaxBandwidthOut: 0,
            active: true,
        } satisfies alicloud.ess.ScalingConfigurationArgs, {
            scalingGroupId: [named(resources, "dify-nodes")],
            securityGroupIds: [named(resources, "dify-app-sg")],
        });
        expect(await runPack([...resources, configuration])).toEqual([]);
        expect(await onlyFinding(changed("dify-nodes-config", { internetMaxBandwidthOut: 5 }, [...resources, configuration]))).toBe(expected);
    });

    it("unset is no public IP", async () => {
        expect(await runPack(changed("dify-nodes-template", { internetMaxBandwidthOut: undefined }))).toEqual([]);
    });
});

describe("ha-instances-no-public-ip", () => {
    it("the singleton with public bandwidth", async () => {
        expect(await onlyFinding(changed("dify-singleton", { internetMaxBandwidthOut: 10 }))).toBe(
            "ha-instances-no-public-ip: ECS instance dify-singleton has internetMaxBandwidthOut 10, a public IP address; in the ha " +
                "topology instances are reached only through the load balancer or the VPC: set it to 0",
        );
    });

    it("an EIP bound to the singleton (the NAT gateway's EIP is fine)", async () => {
        const resources = haStack();
        const eip = bag(EIP_ADDRESS, "dify-singleton-eip", { internetChargeType: "PayByTraffic" } satisfies alicloud.ecs.EipAddressArgs);
        const association = bag(EIP_ASSOCIATION, "dify-singleton-eip-assoc", { allocationId: "eip-2", instanceId: "i-1" } satisfies alicloud.ecs.EipAssociationArgs, {
            allocationId: [eip],
            instanceId: [named(resources, "dify-singleton")],
        });
        expect(await onlyFinding([...resources, eip, association])).toBe(
            "ha-instances-no-public-ip: EIP association dify-singleton-eip-assoc binds a public address to ECS instance dify-singleton; " +
                "in the ha topology instances are reached only through the load balancer or the VPC: remove it",
        );
    });

    it("without an Auto Scaling group (the single topology) an instance may have its EIP", async () => {
        const resources = haStack().filter((r) => r.type !== SCALING_GROUP && r.type !== ECS_LAUNCH_TEMPLATE);
        const eip = bag(EIP_ADDRESS, "dify-eip", { internetChargeType: "PayByTraffic" } satisfies alicloud.ecs.EipAddressArgs);
        const association = bag(EIP_ASSOCIATION, "dify-eip-assoc", { allocationId: "eip-2", instanceId: "i-1" } satisfies alicloud.ecs.EipAssociationArgs, {
            allocationId: [eip],
            instanceId: [named(resources, "dify-singleton")],
        });
        expect(await runPack([...resources, eip, association])).toEqual([]);
    });
});

describe("app-nodes-ingress-from-vpc", () => {
    const policy = "app-nodes-ingress-from-vpc";
    const ofPolicy = (findings: readonly Finding[]) => lines(findings.filter((f) => f.policy === policy));

    it("the app group opened to the internet on 80: reported (HTTP without HTTPS is advised against too)", async () => {
        const findings = await runPack(changed("dify-app-in-80-lb0", { cidrIp: "0.0.0.0/0" }));
        expect(policiesReporting(mandatory(findings))).toEqual([policy]);
        expect(ofPolicy(findings)).toEqual([
            "app-nodes-ingress-from-vpc: ingress rule dify-app-in-80-lb0 of security group dify-app-sg (used by dify-nodes-template) admits " +
                "0.0.0.0/0 on tcp 80/80, outside VPC dify-vpc (172.16.0.0/16); app nodes are reached only through the load balancer: " +
                "admit the load balancer's vSwitch CIDRs instead",
        ]);
    });

    it.each([
        ["dify-app-in-80-lb1", { cidrIp: "203.0.113.0/24" }, "admits 203.0.113.0/24 on tcp 80/80, outside VPC dify-vpc (172.16.0.0/16)"],
        ["dify-singleton-in-5002-app0", { cidrIp: "192.168.0.0/24" }, "security group dify-singleton-sg (used by dify-singleton) admits 192.168.0.0/24 on tcp 5002/5002"],
        ["dify-singleton-in-5002-app1", { cidrIp: undefined, ipv6CidrIp: "2408:4000::/32" }, "admits 2408:4000::/32 on tcp 5002/5002"],
    ])("%s with %j: reported", async (name, changes, problem) => {
        const line = await onlyFinding(changed(name, changes));
        expect(line.startsWith(`${policy}: ingress rule ${name} `), line).toBe(true);
        expect(line).toContain(problem);
    });

    it("a source in the VPC's secondary CIDR block is inside the VPC", async () => {
        const resources = changed("dify-vpc", { secondaryCidrBlocks: ["192.168.0.0/16"] }, changed("dify-singleton-in-5002-app0", { cidrIp: "192.168.0.0/24" }));
        expect(await runPack(resources)).toEqual([]);
    });

    it("a group whose VPC is not in the stack is held to the private ranges", async () => {
        const orphan = (resources: CapturedResource[]) =>
            resources.map((r) => (r.name === "dify-app-sg" ? { ...r, propertyDependencies: {}, dependencies: [] } : r));
        expect(await runPack(orphan(changed("dify-app-in-80-lb0", { cidrIp: "10.1.0.0/24" })))).toEqual([]);
        expect(await onlyFinding(orphan(changed("dify-app-in-80-lb0", { cidrIp: "100.64.0.0/24" })))).toContain(
            "admits 100.64.0.0/24 on tcp 80/80, outside the private ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
        );
    });

    it("a launch template whose security group is not in the stack", async () => {
        const resources = haStack().map((r) => (r.name === "dify-nodes-template" ? { ...r, propertyDependencies: { vpcId: r.propertyDependencies.vpcId } } : r));
        const outside = changed("dify-nodes-template", { securityGroupIds: ["sg-outside"] }, resources);
        expect(await onlyFinding(outside)).toBe(
            'app-nodes-ingress-from-vpc: dify-nodes-template uses security group ["sg-outside"], which is not declared in this stack, so ' +
                "the pack cannot see who reaches its instances; use a security group of this stack",
        );
    });

    it("egress rules and sources that are other security groups are not the question", async () => {
        const resources = changed("dify-app-in-80-lb0", { cidrIp: undefined, sourceSecurityGroupId: "sg-lb" });
        expect(await runPack(resources)).toEqual([]);
    });
});

// The real program (index.ts with topology ha, captured under mocks as the engine receives it) against the whole
// pack: what `pulumi preview --policy-pack policy` would report for a default ha stack.
describe("the real ha program", () => {
    const HA_CONFIG = {
        "alicloud:region": "cn-hangzhou",
        topology: "ha",
        domain: "dify.example.com",
        certificateId: "12345-cn-hangzhou",
        adminEmail: "ops@example.com",
        dashscopeApiKey: "sk-test-0123456789abcdef",
    };
    let program: CapturedResource[];

    beforeAll(async () => {
        const captured = await captureRegistrations({ program: { config: HA_CONFIG, secretKeys: ["dashscopeApiKey"] } });
        expect(captured.errors).toEqual([]);
        program = captured.resources;
    }, 240_000);

    it("passes every policy of the pack", async () => {
        expect(program.map((r) => r.type)).toEqual(expect.arrayContaining([RDS_INSTANCE, REDIS_INSTANCE, OSS_BUCKET, SCALING_GROUP, ECS_LAUNCH_TEMPLATE]));
        expect(await runPack(program)).toEqual([]);
    });

    /** The program with one resource's properties changed (same URN, so every join still holds). */
    const programWith = (resource: CapturedResource, changes: Record<string, unknown>) =>
        program.map((r) => (r === resource ? withChanges(r, changes) : r));

    it("is stopped when its RDS standby shares the primary's zone, or the singleton gets a public address", async () => {
        const rds = theOne(program, RDS_INSTANCE);
        const sameZone = programWith(rds, { zoneIdSlaveA: rds.inputs.zoneId });
        expect(policiesReporting(await runPack(sameZone))).toEqual(["rds-multi-zone"]);
        const singleton = theOne(program, ECS_INSTANCE);
        const publicSingleton = programWith(singleton, { internetMaxBandwidthOut: 10 });
        expect(policiesReporting(await runPack(publicSingleton))).toContain("ha-instances-no-public-ip");
    });
});
