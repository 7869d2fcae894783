import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import * as random from "@pulumi/random";
import type { ExternalDatabase, ExternalObjectStorage, ExternalRedis } from "../bootstrap/external-services";
import type { ZonePair } from "./network";

/** Each field of T as an Output: pulumi.output(x) turns it into one Output<T> (secret when any field is). */
export type OutputsOf<T> = { readonly [K in keyof T]: pulumi.Output<T[K]> };

/** The RDS PostgreSQL settings (the `rds*` settings). */
export interface HaRdsArgs {
    /**
     * A high-availability PostgreSQL class on cloud disks (the `rdsInstanceClass` setting, e.g. pg.n2.2c.2m).
     * Changing it resizes the instance in place (a brief switchover).
     */
    instanceClass: pulumi.Input<string>;
    /** ESSD storage in GB (the `rdsStorageGb` setting, default 50). Growing it is in place; RDS cannot shrink it. */
    storageGb: pulumi.Input<number>;
    /**
     * The PostgreSQL major version (the `rdsEngineVersion` setting, default "16.0"). Changing it asks RDS for a major
     * upgrade of the instance.
     */
    engineVersion: pulumi.Input<string>;
    /** Days RDS keeps data and log backups, 7..730 (the `rdsBackupRetentionDays` setting, default 7). In place. */
    backupRetentionDays: pulumi.Input<number>;
}

/** The Tair/Redis settings (the `redis*` settings). */
export interface HaRedisArgs {
    /**
     * A standard master-replica class (the `redisInstanceClass` setting, 1 GB by default). Changing it resizes the
     * instance in place (connections drop briefly).
     */
    instanceClass: pulumi.Input<string>;
    /** The Redis version (the `redisEngineVersion` setting, default "7.0"). Raising it upgrades in place. */
    engineVersion: pulumi.Input<string>;
}

export interface DifyDataTierArgs {
    /**
     * Prefix of the names: `<prefix>-pg`, `<prefix>-redis`, the RAM user `<prefix>-oss`, its policy
     * `<prefix>-oss-bucket`, and the bucket `<prefix>-files-<8 random characters>`. Changing it renames the instances,
     * user and policy in place; the bucket keeps its first name (renaming a bucket means a new, empty one).
     */
    namePrefix: pulumi.Input<string>;
    /** The region (e.g. cn-hangzhou): the OSS endpoint is built from it. Changing it means a new stack. */
    region: pulumi.Input<string>;
    /**
     * The two distinct zones, [zone A, zone B] (DifyHaNetwork.zoneIds): RDS's primary and Redis's master in A, their
     * standby and replica in B. Changing them replaces both instances (their data is lost).
     */
    zoneIds: ZonePair<pulumi.Input<string>>;
    /** The data tier's vSwitches, [zone A, zone B] (DifyHaNetwork.dataVswitchIds). Changing them replaces both instances. */
    dataVswitchIds: ZonePair<pulumi.Input<string>>;
    /**
     * The app tier's blocks (DifyHaNetwork.appCidrs): the only addresses in the RDS and Redis whitelists. Updated in
     * place.
     */
    appCidrs: ZonePair<string>;
    rds: HaRdsArgs;
    redis: HaRedisArgs;
    /**
     * Days OSS keeps a file's overwritten or deleted versions (versioning is on), default 30: long enough to recover
     * a file, short enough that deletions free space. Updated in place.
     */
    keepDeletedFilesDays?: number;
    /** Tags on the instances, bucket, RAM user and policy (databases, accounts and keys take none). In place. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The RDS account Dify, the plugin daemon and pgvector use. */
export const HA_DB_USERNAME = "dify";
/** Dify's database; pgvector's tables live there too (PGVECTOR_DATABASE). */
export const HA_DB_NAME = "dify";
/** The plugin daemon's database. */
export const HA_PLUGIN_DB_NAME = "dify_plugin";
/** The private endpoints' default ports, used until the instances report theirs. */
export const HA_DB_DEFAULT_PORT = 5432;
export const HA_REDIS_DEFAULT_PORT = 6379;

/**
 * The OSS actions Dify's storage driver (oss2: put_object, get_object, object_exists, delete_object) and the plugin
 * daemon's (dify-cloud-kit: PutObject, GetObject, IsObjectExist, GetObjectMeta, ListObjects, DeleteObject) need.
 * HeadObject and GetObjectMeta are authorized by oss:GetObject.
 */
export const HA_OSS_OBJECT_ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject"] as const;
export const HA_OSS_BUCKET_ACTIONS = ["oss:ListObjects"] as const;

/** The RAM policy document of the storage user (pure): those actions on that one bucket and its objects, nothing else. */
export function haOssPolicyDocument(bucket: string): string {
    return JSON.stringify({
        Version: "1",
        Statement: [
            { Effect: "Allow", Action: [...HA_OSS_BUCKET_ACTIONS], Resource: [`acs:oss:*:*:${bucket}`] },
            { Effect: "Allow", Action: [...HA_OSS_OBJECT_ACTIONS], Resource: [`acs:oss:*:*:${bucket}/*`] },
        ],
    });
}

/** The VPC-internal OSS endpoint of a region (pure): nodes reach OSS without the NAT gateway. */
export function ossInternalEndpoint(region: string): string {
    return `https://oss-${region}-internal.aliyuncs.com`;
}

/**
 * The bucket's name (pure): `<prefix>-files-<suffix>`, the prefix shortened if needed so the whole stays within OSS's
 * 63 characters (3..63 lowercase letters, digits and "-", starting and ending with a letter or digit). The random
 * suffix makes it globally unique.
 */
export function haBucketName(namePrefix: string, suffix: string): string {
    const tail = `-files-${suffix}`;
    const prefix = namePrefix.slice(0, 63 - tail.length).replace(/-+$/, "");
    const name = `${prefix}${tail}`;
    if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
        throw new Error(`DifyDataTier: "${name}" is not a valid OSS bucket name (from namePrefix "${namePrefix}")`);
    }
    return name;
}

/**
 * Passwords of letters and digits only: RDS and Tair want three of upper, lower, digits, special; "letters and digits"
 * keeps them usable unescaped in connection URLs (CELERY_BROKER_URL, SQLALCHEMY's DSN). 24 fits both services'
 * 8..32. The results go on wrapped in pulumi.secret as well: they stay secret on the wire and in state without
 * relying on the engine applying the random provider's own secret marking.
 */
const PASSWORD_RULES = { length: 24, special: false, upper: true, lower: true, numeric: true, minUpper: 2, minLower: 2, minNumeric: 2 };

const BACKUP_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/**
 * The managed services of the `ha` topology: RDS PostgreSQL (high availability across the two zones) with Dify's and
 * the plugin daemon's databases, Tair/Redis master-replica across the two zones, and a private OSS bucket with a RAM
 * user that can use that bucket only. Reachable from the app tier only; nothing has a public endpoint.
 *
 * Destroying the stack removes all of it, data included: no deletion or release protection, and the bucket is
 * emptied (every version) first. What RDS keeps of its backups after a release is RDS's own setting: the provider's
 * releasedKeepPolicy applies to MySQL only, so the stack leaves it alone.
 */
export class DifyDataTier extends pulumi.ComponentResource {
    readonly rdsInstance: alicloud.rds.Instance;
    readonly rdsAccount: alicloud.rds.RdsAccount;
    readonly redisInstance: alicloud.kvstore.Instance;
    readonly bucket: alicloud.oss.Bucket;
    readonly storageUser: alicloud.ram.User;
    readonly storagePolicy: alicloud.ram.Policy;
    readonly accessKey: alicloud.ram.AccessKey;

    /** ExternalDatabase, each field an Output; `password` is secret. Known once the account owns both databases. */
    readonly database: OutputsOf<ExternalDatabase>;
    /** ExternalRedis, each field an Output; `password` is secret. */
    readonly redis: OutputsOf<ExternalRedis>;
    /** ExternalObjectStorage, each field an Output; `accessKeyId` and `accessKeySecret` are secret. */
    readonly storage: OutputsOf<ExternalObjectStorage>;
    readonly rdsInstanceId: pulumi.Output<string>;
    readonly redisInstanceId: pulumi.Output<string>;
    readonly bucketName: pulumi.Output<string>;

    constructor(name: string, args: DifyDataTierArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:ha:DifyDataTier", name, {}, opts);

        const [zoneA, zoneB] = args.zoneIds;
        if (typeof zoneA === "string" && zoneA === zoneB) {
            throw new Error(`DifyDataTier: zoneIds must be two different zones, got "${zoneA}" twice`);
        }
        const keepDays = args.keepDeletedFilesDays ?? 30;
        if (!Number.isInteger(keepDays) || keepDays < 1) {
            throw new Error(`DifyDataTier: keepDeletedFilesDays is ${keepDays}; allowed: a whole number of days, 1 or more`);
        }
        const whitelist = [...args.appCidrs];

        // --- RDS PostgreSQL ---
        this.rdsInstance = new alicloud.rds.Instance(
            `${name}-pg`,
            {
                instanceName: pulumi.interpolate`${args.namePrefix}-pg`,
                engine: "PostgreSQL",
                engineVersion: args.rds.engineVersion,
                instanceType: args.rds.instanceClass,
                instanceStorage: args.rds.storageGb,
                dbInstanceStorageType: "cloud_essd",
                category: "HighAvailability",
                instanceChargeType: "Postpaid",
                // Primary in zone A, standby in zone B; the vSwitches in the same order, comma-separated.
                zoneId: zoneA,
                zoneIdSlaveA: zoneB,
                vswitchId: pulumi.interpolate`${args.dataVswitchIds[0]},${args.dataVswitchIds[1]}`,
                securityIps: whitelist,
                // Destroy must remove the instance. No public endpoint: none is created without rds.Connection.
                deletionProtection: false,
                // SSL stays off: traffic never leaves the VPC, and Dify's and the daemon's DSNs carry no sslmode.
                tags: args.tags,
            },
            { parent: this },
        );
        const backupPolicy = new alicloud.rds.BackupPolicy(
            `${name}-pg-backup`,
            {
                instanceId: this.rdsInstance.id,
                backupRetentionPeriod: args.rds.backupRetentionDays,
                preferredBackupPeriods: BACKUP_DAYS,
                // Log backups give point-in-time recovery; their retention may not exceed the data backups'.
                enableBackupLog: true,
                logBackupRetentionPeriod: args.rds.backupRetentionDays,
            },
            { parent: this },
        );
        const dbPassword = new random.RandomPassword(`${name}-pg-password`, PASSWORD_RULES, { parent: this });
        // A privileged account: RDS PostgreSQL installs extensions (pgvector's CREATE EXTENSION vector, run at
        // bootstrap) only for privileged accounts, and pgvector is not a trusted extension a normal owner could add.
        this.rdsAccount = new alicloud.rds.RdsAccount(
            `${name}-pg-account`,
            {
                dbInstanceId: this.rdsInstance.id,
                accountName: HA_DB_USERNAME,
                accountPassword: pulumi.secret(dbPassword.result),
                accountType: "Super",
                accountDescription: "Dify and its plugin daemon (dify-mcp-stack)",
            },
            { parent: this },
        );
        const databases = [HA_DB_NAME, HA_PLUGIN_DB_NAME].map(
            (dbName) =>
                new alicloud.rds.Database(
                    `${name}-pg-db-${dbName.replace(/_/g, "-")}`,
                    {
                        instanceId: this.rdsInstance.id,
                        dataBaseName: dbName,
                        characterSet: "UTF8",
                        description: dbName === HA_DB_NAME ? "Dify and its pgvector store" : "Dify plugin daemon",
                    },
                    { parent: this },
                ),
        );
        // The account becomes the databases' owner, so Dify's migrations own what they create (PostgreSQL 15+ no
        // longer lets everyone create in the public schema).
        const privilege = new alicloud.rds.AccountPrivilege(
            `${name}-pg-privilege`,
            {
                instanceId: this.rdsInstance.id,
                accountName: this.rdsAccount.accountName,
                dbNames: databases.map((db) => db.dataBaseName),
                privilege: "DBOwner",
            },
            { parent: this },
        );

        // --- Tair/Redis ---
        const redisPassword = new random.RandomPassword(`${name}-redis-password`, PASSWORD_RULES, { parent: this });
        this.redisInstance = new alicloud.kvstore.Instance(
            `${name}-redis`,
            {
                dbInstanceName: pulumi.interpolate`${args.namePrefix}-redis`,
                instanceType: "Redis",
                engineVersion: args.redis.engineVersion,
                instanceClass: args.redis.instanceClass,
                paymentType: "PostPaid",
                // Master in zone A (on its vSwitch), replica in zone B: a zone loss fails over to the replica.
                zoneId: zoneA,
                secondaryZoneId: zoneB,
                vswitchId: args.dataVswitchIds[0],
                securityIps: whitelist,
                password: pulumi.secret(redisPassword.result),
                // Password required inside the VPC too. No public endpoint (that needs kvstore.Connection). SSL stays
                // off: traffic never leaves the VPC, and the provider supports it only for cluster or 2.8 instances.
                vpcAuthMode: "Open",
                instanceReleaseProtection: false,
                tags: args.tags,
            },
            { parent: this },
        );

        // --- OSS ---
        const suffix = new random.RandomString(
            `${name}-bucket-suffix`,
            { length: 8, upper: false, lower: true, numeric: true, special: false },
            { parent: this },
        );
        this.bucket = new alicloud.oss.Bucket(
            `${name}-files`,
            {
                bucket: pulumi.all([args.namePrefix, suffix.result]).apply(([prefix, s]) => haBucketName(prefix, s)),
                storageClass: "Standard",
                // Zone-redundant: the files survive the loss of a zone, as RDS and Redis do. Fixed at creation.
                redundancyType: "ZRS",
                versioning: { status: "Enabled" },
                serverSideEncryptionRule: { sseAlgorithm: "AES256" },
                lifecycleRules: [
                    { id: "expire-noncurrent-versions", enabled: true, noncurrentVersionExpirations: [{ days: keepDays }] },
                ],
                // Destroy empties the bucket (every version and delete marker) so it can be removed.
                forceDestroy: true,
                tags: args.tags,
            },
            // A new name would mean a new, empty bucket: a renamed prefix keeps the first one.
            { parent: this, ignoreChanges: ["bucket"] },
        );
        const acl = new alicloud.oss.BucketAcl(`${name}-files-acl`, { bucket: this.bucket.bucket, acl: "private" }, { parent: this });
        const publicAccessBlock = new alicloud.oss.BucketPublicAccessBlock(
            `${name}-files-public-access-block`,
            { bucket: this.bucket.bucket, blockPublicAccess: true },
            { parent: this },
        );
        this.storageUser = new alicloud.ram.User(
            `${name}-oss-user`,
            {
                name: pulumi.interpolate`${args.namePrefix}-oss`,
                displayName: pulumi.interpolate`${args.namePrefix}-oss`,
                comments: "Dify ha nodes: the Dify files bucket only (dify-mcp-stack)",
                // Destroy removes the user with its key and policy attachment.
                force: true,
                tags: args.tags,
            },
            { parent: this },
        );
        this.storagePolicy = new alicloud.ram.Policy(
            `${name}-oss-policy`,
            {
                policyName: pulumi.interpolate`${args.namePrefix}-oss-bucket`,
                policyDocument: this.bucket.bucket.apply(haOssPolicyDocument),
                description: "Read, write, delete and list the Dify files bucket, nothing else",
                force: true,
                tags: args.tags,
            },
            { parent: this },
        );
        const attachment = new alicloud.ram.UserPolicyAttachment(
            `${name}-oss-policy-attachment`,
            { userName: this.storageUser.name, policyName: this.storagePolicy.policyName, policyType: "Custom" },
            { parent: this },
        );
        // `secret` is the key's secret: kept secret in state (the SDK asks for this too) and in every output below.
        this.accessKey = new alicloud.ram.AccessKey(
            `${name}-oss-access-key`,
            { userName: this.storageUser.name, status: "Active" },
            { parent: this, additionalSecretOutputs: ["secret"] },
        );

        // --- Outputs ---
        // Fields that are known only once their resource is ready for use carry that resource's id along.
        const after = <T>(value: pulumi.Output<T>, ...ready: pulumi.Output<unknown>[]): pulumi.Output<T> =>
            pulumi.all([value, ...ready]).apply(([v]) => v as T);
        const granted = [privilege.id, backupPolicy.id];
        this.database = {
            host: this.rdsInstance.connectionString,
            port: this.rdsInstance.port.apply((port) => (port ? Number(port) : HA_DB_DEFAULT_PORT)),
            username: after(this.rdsAccount.accountName, ...granted),
            password: pulumi.secret(after(dbPassword.result, ...granted)),
            database: after(databases[0].dataBaseName, ...granted),
            pluginDatabase: after(databases[1].dataBaseName, ...granted),
        };
        this.redis = {
            host: this.redisInstance.connectionDomain,
            port: this.redisInstance.privateConnectionPort.apply((port) => (port ? Number(port) : HA_REDIS_DEFAULT_PORT)),
            password: pulumi.secret(after(redisPassword.result, this.redisInstance.id)),
        };
        const usable = [acl.id, publicAccessBlock.id, attachment.id];
        this.storage = {
            bucket: after(this.bucket.bucket, ...usable),
            region: pulumi.output(args.region),
            endpoint: pulumi.output(args.region).apply(ossInternalEndpoint),
            accessKeyId: pulumi.secret(after(this.accessKey.id, ...usable)),
            accessKeySecret: pulumi.secret(after(this.accessKey.secret, ...usable)),
        };
        this.rdsInstanceId = this.rdsInstance.id;
        this.redisInstanceId = this.redisInstance.id;
        this.bucketName = this.bucket.bucket;

        this.registerOutputs({
            database: this.database,
            redis: this.redis,
            storage: this.storage,
            rdsInstanceId: this.rdsInstanceId,
            redisInstanceId: this.redisInstanceId,
            bucketName: this.bucketName,
        });
    }
}
