import { beforeEach, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { MOCK_ACCESS_KEY_SECRET, MOCK_ALNUM_PASSWORD, RegisteredResource, cloudOutputs, installMocks, mockResourceId, settle, valueOf } from "../pulumi-mocks";
import {
    DifyDataTier,
    DifyDataTierArgs,
    HA_OSS_BUCKET_ACTIONS,
    HA_OSS_OBJECT_ACTIONS,
    haBucketName,
    haOssPolicyDocument,
    ossInternalEndpoint,
} from "../../../components/ha/data-tier";
import { haTierCidrs } from "../../../components/ha/network";

/** Pulumi's wire form of a secret: { [SECRET_SIGNATURE]: SECRET_SIG, value }. */
const SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const ZONES: [string, string] = ["cn-hangzhou-j", "cn-hangzhou-k"];
const APP_CIDRS = haTierCidrs("172.16.0.0/16").app;

let registered: RegisteredResource[];

beforeEach(() => {
    registered = installMocks();
});

function args(overrides: Partial<DifyDataTierArgs> = {}): DifyDataTierArgs {
    return {
        namePrefix: "dify-ha",
        region: "cn-hangzhou",
        zoneIds: ZONES,
        dataVswitchIds: ["vsw-data-a", "vsw-data-b"],
        appCidrs: APP_CIDRS,
        rds: { instanceClass: "pg.n2.2c.2m", storageGb: 50, engineVersion: "16.0", backupRetentionDays: 7 },
        redis: { instanceClass: "redis.shard.small.2.ce", engineVersion: "7.0" },
        tags: { stack: "test" },
        ...overrides,
    };
}

async function build(overrides: Partial<DifyDataTierArgs> = {}) {
    const tier = new DifyDataTier("dt", args(overrides));
    await settle();
    const one = (type: string) => {
        const found = registered.filter((r) => r.type === type);
        expect(found, type).toHaveLength(1);
        return found[0].inputs;
    };
    const all = (type: string) => registered.filter((r) => r.type === type);
    return { tier, one, all };
}

describe("DifyDataTier: RDS PostgreSQL", () => {
    it("is a high-availability PostgreSQL instance on ESSD with primary and standby in the two zones' data vSwitches", async () => {
        const { one } = await build();
        const rds = one("alicloud:rds/instance:Instance");
        expect(rds).toMatchObject({
            engine: "PostgreSQL",
            engineVersion: "16.0",
            category: "HighAvailability",
            instanceType: "pg.n2.2c.2m",
            instanceStorage: 50,
            dbInstanceStorageType: "cloud_essd",
            zoneId: ZONES[0],
            zoneIdSlaveA: ZONES[1],
            vswitchId: "vsw-data-a,vsw-data-b",
            instanceName: "dify-ha-pg",
            tags: { stack: "test" },
        });
        expect(rds.zoneId).not.toBe(rds.zoneIdSlaveA);
    });

    it("admits only the app tier's blocks and can be destroyed", async () => {
        const { one } = await build();
        const rds = one("alicloud:rds/instance:Instance");
        expect(rds.securityIps).toEqual(APP_CIDRS);
        expect(rds.deletionProtection).toBe(false);
        expect(registered.some((r) => r.type === "alicloud:rds/connection:Connection")).toBe(false);
    });

    it("backs up daily with log backups, for the configured retention", async () => {
        const { one } = await build({ rds: { instanceClass: "pg.n2.2c.2m", storageGb: 50, engineVersion: "16.0", backupRetentionDays: 14 } });
        expect(one("alicloud:rds/backupPolicy:BackupPolicy")).toMatchObject({
            instanceId: "dt-pg-id",
            backupRetentionPeriod: 14,
            enableBackupLog: true,
            logBackupRetentionPeriod: 14,
            preferredBackupPeriods: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        });
    });

    it("creates the dify account (privileged, for CREATE EXTENSION vector) owning databases dify and dify_plugin", async () => {
        const { one, all } = await build();
        expect(one("alicloud:rds/rdsAccount:RdsAccount")).toMatchObject({
            dbInstanceId: "dt-pg-id",
            accountName: "dify",
            accountType: "Super",
            accountPassword: MOCK_ALNUM_PASSWORD,
        });
        expect(all("alicloud:rds/database:Database").map((r) => [r.inputs.dataBaseName, r.inputs.characterSet])).toEqual([
            ["dify", "UTF8"],
            ["dify_plugin", "UTF8"],
        ]);
        expect(one("alicloud:rds/accountPrivilege:AccountPrivilege")).toMatchObject({
            instanceId: "dt-pg-id",
            accountName: "dify",
            dbNames: ["dify", "dify_plugin"],
            privilege: "DBOwner",
        });
    });

    it("generates the account's password from letters and digits within RDS's 8..32", async () => {
        const { all } = await build();
        const password = all("random:index/randomPassword:RandomPassword").find((r) => r.name === "dt-pg-password")?.inputs;
        expect(password).toMatchObject({ special: false, upper: true, lower: true, numeric: true });
        expect(password?.length).toBeGreaterThanOrEqual(8);
        expect(password?.length).toBeLessThanOrEqual(32);
        expect(Number(password?.minUpper) >= 1 && Number(password?.minLower) >= 1 && Number(password?.minNumeric) >= 1).toBe(true);
    });

    it("outputs the ExternalDatabase fields, the password only as a secret", async () => {
        const { tier } = await build();
        const database = await valueOf(pulumi.output(tier.database));
        expect(database).toEqual({
            host: "pgm-dt-pg.pg.rds.aliyuncs.com",
            port: 5432,
            username: "dify",
            password: MOCK_ALNUM_PASSWORD,
            database: "dify",
            pluginDatabase: "dify_plugin",
        });
        expect(await pulumi.isSecret(tier.database.password)).toBe(true);
        expect(await pulumi.isSecret(tier.database.host)).toBe(false);
        expect(await valueOf(tier.rdsInstanceId)).toBe("dt-pg-id");
    });
});

describe("DifyDataTier: Tair/Redis", () => {
    it("is a Redis instance with its master in zone A's data vSwitch and its replica in zone B", async () => {
        const { one } = await build();
        const redis = one("alicloud:kvstore/instance:Instance");
        expect(redis).toMatchObject({
            instanceType: "Redis",
            engineVersion: "7.0",
            instanceClass: "redis.shard.small.2.ce",
            zoneId: ZONES[0],
            secondaryZoneId: ZONES[1],
            vswitchId: "vsw-data-a",
            dbInstanceName: "dify-ha-redis",
            tags: { stack: "test" },
        });
        expect(redis.zoneId).not.toBe(redis.secondaryZoneId);
    });

    it("admits only the app tier's blocks, requires its password and has no public endpoint", async () => {
        const { one } = await build();
        const redis = one("alicloud:kvstore/instance:Instance");
        expect(redis.securityIps).toEqual(APP_CIDRS);
        expect(redis.vpcAuthMode).toBe("Open");
        expect(redis.password).toBe(MOCK_ALNUM_PASSWORD);
        expect(redis.enablePublic).toBeUndefined();
        expect(redis.instanceReleaseProtection).toBe(false);
        expect(registered.some((r) => r.type === "alicloud:kvstore/connection:Connection")).toBe(false);
        const password = registered.find((r) => r.name === "dt-redis-password")?.inputs;
        expect(password).toMatchObject({ special: false, length: 24 });
    });

    it("outputs the ExternalRedis fields, the password only as a secret", async () => {
        const { tier } = await build();
        expect(await valueOf(pulumi.output(tier.redis))).toEqual({ host: "r-dt-redis.redis.rds.aliyuncs.com", port: 6379, password: MOCK_ALNUM_PASSWORD });
        expect(await pulumi.isSecret(tier.redis.password)).toBe(true);
        expect(await pulumi.isSecret(tier.redis.host)).toBe(false);
        expect(await valueOf(tier.redisInstanceId)).toBe("dt-redis-id");
    });
});

describe("DifyDataTier: OSS", () => {
    it("keeps the bucket private, versioned, encrypted, zone-redundant and blocked from public access", async () => {
        const { one } = await build();
        const bucket = one("alicloud:oss/bucket:Bucket");
        expect(bucket).toMatchObject({
            bucket: "dify-ha-files-k3x9q2ab",
            redundancyType: "ZRS",
            versioning: { status: "Enabled" },
            serverSideEncryptionRule: { sseAlgorithm: "AES256" },
            forceDestroy: true,
        });
        expect(bucket.acl).toBeUndefined();
        expect(one("alicloud:oss/bucketAcl:BucketAcl")).toEqual({ bucket: "dify-ha-files-k3x9q2ab", acl: "private" });
        expect(one("alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock")).toEqual({
            bucket: "dify-ha-files-k3x9q2ab",
            blockPublicAccess: true,
        });
        expect(bucket.lifecycleRules).toEqual([
            expect.objectContaining({ enabled: true, noncurrentVersionExpirations: [{ days: 30 }] }),
        ]);
    });

    it("names the bucket from the prefix and a random suffix, within OSS's 63 lowercase characters", async () => {
        const { one } = await build();
        expect(one("random:index/randomString:RandomString")).toMatchObject({ length: 8, upper: false, special: false });
        const long = haBucketName(`d${"x".repeat(39)}-`, "k3x9q2ab");
        expect(long.length).toBeLessThanOrEqual(63);
        expect(long).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
        expect(long).not.toContain("--");
        expect(haBucketName("a".repeat(60), "k3x9q2ab")).toHaveLength(63);
    });

    it("gives the storage user a policy on that bucket and its objects only, with only the drivers' actions", async () => {
        const { one } = await build();
        expect(one("alicloud:ram/user:User")).toMatchObject({ name: "dify-ha-oss", force: true });
        const policy = one("alicloud:ram/policy:Policy");
        const document = JSON.parse(String(policy.policyDocument)) as { Statement: Array<{ Effect: string; Action: string[]; Resource: string[] }> };
        const resources = document.Statement.flatMap((s) => s.Resource);
        expect(resources.sort()).toEqual(["acs:oss:*:*:dify-ha-files-k3x9q2ab", "acs:oss:*:*:dify-ha-files-k3x9q2ab/*"]);
        const actions = document.Statement.flatMap((s) => s.Action);
        expect(actions.sort()).toEqual([...HA_OSS_BUCKET_ACTIONS, ...HA_OSS_OBJECT_ACTIONS].sort());
        expect(actions.some((a) => a.includes("*"))).toBe(false);
        expect(document.Statement.every((s) => s.Effect === "Allow")).toBe(true);
        expect(one("alicloud:ram/userPolicyAttachment:UserPolicyAttachment")).toEqual({
            userName: "dify-ha-oss",
            policyName: "dify-ha-oss-bucket",
            policyType: "Custom",
        });
        expect(one("alicloud:ram/accessKey:AccessKey")).toMatchObject({ userName: "dify-ha-oss" });
        expect(JSON.parse(haOssPolicyDocument("b")).Statement[1].Resource).toEqual(["acs:oss:*:*:b/*"]);
    });

    it("outputs the ExternalObjectStorage fields, with the AccessKey id and secret only as secrets", async () => {
        const { tier } = await build();
        expect(await valueOf(pulumi.output(tier.storage))).toEqual({
            bucket: "dify-ha-files-k3x9q2ab",
            region: "cn-hangzhou",
            endpoint: "https://oss-cn-hangzhou-internal.aliyuncs.com",
            accessKeyId: mockResourceId("alicloud:ram/accessKey:AccessKey", "dt-oss-access-key"),
            accessKeySecret: MOCK_ACCESS_KEY_SECRET,
        });
        expect(await pulumi.isSecret(tier.storage.accessKeySecret)).toBe(true);
        expect(await pulumi.isSecret(tier.storage.accessKeyId)).toBe(true);
        expect(await pulumi.isSecret(tier.storage.bucket)).toBe(false);
        expect(await valueOf(tier.bucketName)).toBe("dify-ha-files-k3x9q2ab");
        expect(ossInternalEndpoint("ap-southeast-1")).toBe("https://oss-ap-southeast-1-internal.aliyuncs.com");
    });
});

describe("DifyDataTier: as a whole", () => {
    it("opens nothing to 0.0.0.0/0 and keeps every secret a secret", async () => {
        const { tier } = await build();
        for (const type of ["alicloud:rds/instance:Instance", "alicloud:kvstore/instance:Instance"]) {
            const ips = registered.find((r) => r.type === type)?.inputs.securityIps as string[];
            expect(ips).not.toContain("0.0.0.0/0");
            expect(ips.every((ip) => APP_CIDRS.includes(ip))).toBe(true);
        }
        const secrets = [tier.database.password, tier.redis.password, tier.storage.accessKeySecret, tier.storage.accessKeyId];
        expect(await Promise.all(secrets.map((s) => pulumi.isSecret(s)))).toEqual([true, true, true, true]);
        // Combined, as a consumer would: the whole value is secret.
        expect(await pulumi.isSecret(pulumi.output(tier.database))).toBe(true);
        expect(await pulumi.isSecret(pulumi.output(tier.storage))).toBe(true);
    });

    it("sends the RDS and Redis passwords to the provider as secrets (the mock monitor's view)", async () => {
        // installMocks records plain values; this monitor keeps Pulumi's wire form to see which inputs are secret.
        const wire: Array<{ type: string; inputs: Record<string, unknown> }> = [];
        pulumi.runtime.setMocks(
            {
                newResource: (mock) => {
                    wire.push({ type: mock.type, inputs: mock.inputs });
                    return { id: `${mock.name}-id`, state: { ...mock.inputs, ...cloudOutputs(mock) } };
                },
                call: () => ({}),
            },
            "dify-mcp-stack",
            "test",
            false,
        );
        new DifyDataTier("wire", args());
        await settle();
        const isWireSecret = (value: unknown) =>
            typeof value === "object" && value !== null && SECRET_SIGNATURE in value && (value as Record<string, unknown>)[SECRET_SIGNATURE] === SECRET_SIG;
        const inputOf = (type: string, key: string) => wire.find((r) => r.type === type)?.inputs[key];
        expect(isWireSecret(inputOf("alicloud:rds/rdsAccount:RdsAccount", "accountPassword"))).toBe(true);
        expect(isWireSecret(inputOf("alicloud:kvstore/instance:Instance", "password"))).toBe(true);
        expect(isWireSecret(inputOf("alicloud:kvstore/instance:Instance", "securityIps"))).toBe(false);
    });

    it("refuses the same zone twice", () => {
        expect(() => new DifyDataTier("twice", args({ zoneIds: ["z-a", "z-a"] }))).toThrow(/two different zones/);
    });
});
