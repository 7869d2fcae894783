import { DIFY_VERSION_THRESHOLDS, MIN_DIFY_VERSION, compareDifyVersions } from "../rules/dify-version";
import { MIN_MEMORY_GIB, MIN_VCPUS, instanceTypeSizeFromName, isLargeEnoughForDify } from "../rules/instance-size";
import { DIFY_VERSION_TAG, MEMORY_TAG, VCPU_TAG } from "../rules/instance-tags";
import {
    Ipv4Cidr,
    MIN_ALLOWED_PREFIX,
    SPECIAL_CHARACTERS_TEXT,
    VPC_PRIVATE_RANGES,
    canonicalCidr,
    cidrContains,
    cidrsOverlap,
    httpsUrlProblem,
    parseIpv4Cidr,
    shownUrl,
} from "../rules/input-rules";
import { EMAIL_RULE, isEmailAddress } from "../rules/email";
import { RDS_BACKUP_RETENTION_DAYS } from "../rules/managed-services";
import { DIFY_IMAGE_VERSIONS, difyImages } from "../rules/dify-images";
import { PINNED_DIFY_VERSIONS, difyReleasePin } from "../rules/dify-releases";
import { ACR_INSTANCE_ID_PATTERN, ACR_INSTANCE_ID_RULE, DEFAULT_REGISTRY_MIRRORS, IMAGE_SOURCES, type ImageSource } from "../rules/image-source";

/**
 * Typed, validated stack settings. `index.ts` reads them from Pulumi config; the user-data preview script reads
 * them from the stack's YAML file. Both go through `parseStackSettings`, so a bad value fails the same way at
 * `pulumi preview` and in `npm run render:userdata`, with a message that names the key and what is allowed.
 */

/** The project's config namespace (the `name:` in Pulumi.yaml). */
export const CONFIG_NAMESPACE = "dify-mcp-stack";

/** Reads one raw config value; objects and arrays arrive as JSON text, as `pulumi.Config.get` returns them. */
export interface ConfigSource {
    get(key: string): string | undefined;
}

export type InstanceChargeType = "PostPaid" | "PrePaid";
const INSTANCE_CHARGE_TYPES: readonly InstanceChargeType[] = ["PostPaid", "PrePaid"];

export type DiskCategory = "cloud_essd" | "cloud_auto" | "cloud_essd_entry" | "cloud_efficiency" | "cloud_ssd";
const DISK_CATEGORIES: readonly DiskCategory[] = [
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
    "cloud_efficiency",
    "cloud_ssd",
];

export type CpuArchitecture = "x86_64" | "arm64";
const CPU_ARCHITECTURES: readonly CpuArchitecture[] = ["x86_64", "arm64"];

/** Public image families the bootstrap supports (the exact family names: shorter forms return no image). */
const IMAGE_FAMILIES = {
    "acs:ubuntu_22_04_x64": "ubuntu",
    "acs:ubuntu_24_04_x64": "ubuntu",
    "acs:alibaba_cloud_linux_3_2104_lts_x64": "alinux",
} as const;
export type ImageFamily = keyof typeof IMAGE_FAMILIES;

/**
 * Public image ids of the systems the bootstrap installs Docker on (bootstrap.sh's install_docker: "ubuntu" and
 * "alinux"), as Alibaba names them: ubuntu_22_04_x64_20G_alibase_20240220.vhd, ubuntu_24_04_arm64_20G_alibase_…,
 * aliyun_3_x64_20G_alibase_20241103.vhd, aliyun_3_arm64_20G_pro_alibase_….vhd. Group 2 is the architecture.
 * A custom image ("m-…") says nothing about its system without an API call, so preview cannot check it and it is
 * refused; "nocloud" images are for running outside ECS and do not read ECS user data.
 */
const SUPPORTED_IMAGE_ID_PATTERN = /^(ubuntu_(?:22|24)_04|aliyun_3(?:_\d+)?)_(?:[a-z0-9]+_)*?(x64|arm64)_\d+G(?:_[a-z0-9]+)*\.vhd$/;

/**
 * The tags the stack sets itself: index.ts puts managed-by, project and stack on every resource, and the host puts
 * dify-version, cpu-cores and memory-gib on the instance (the policy pack reads them). A user tag may not replace them.
 */
const STACK_TAG_KEYS: readonly string[] = ["managed-by", "project", "stack", DIFY_VERSION_TAG, VCPU_TAG, MEMORY_TAG];
/** Alibaba Cloud allows at most 20 tags on a resource; the instance carries the stack's own tags as well. */
const MAX_TAGS_PER_RESOURCE = 20;
const MAX_USER_TAGS = MAX_TAGS_PER_RESOURCE - STACK_TAG_KEYS.length;

/** A VPC is one of VPC_PRIVATE_RANGES or a block inside one, /8 to /28. */
const VPC_PREFIX_RANGE = { min: 8, max: 28 } as const;
/** Alibaba's vSwitch mask: /16 to /29. */
const VSWITCH_PREFIX_RANGE = { min: 16, max: 29 } as const;
/** adminCidr: SSH stays open to at most a /16 (65,536 addresses). */
const MIN_ADMIN_PREFIX = 16;

/**
 * Current general-purpose x86 families with 2 vCPU / 4 GiB or more, best first. No burstable (t5/t6) and no
 * shared/economy types: Dify's nine containers need steady CPU.
 */
export const DEFAULT_INSTANCE_TYPE_PREFERENCES: readonly string[] = [
    "ecs.u1-c1m2.large",
    "ecs.c9i.large",
    "ecs.c8i.large",
    "ecs.c8a.large",
    "ecs.c7.large",
    "ecs.c7a.large",
    "ecs.c6.large",
    "ecs.g7.large",
    "ecs.g6.large",
];

/** The first release with the preset OAuth client that Alibaba's "Custom OAuth" MCP servers need. */
const PRESET_OAUTH_CLIENT_DIFY_VERSION = DIFY_VERSION_THRESHOLDS.mcpPresetOAuthClient;

/**
 * How Dify is deployed: `single`, one ECS instance with its data disk, an EIP and Let's Encrypt (the default,
 * and what every stack before the setting existed is); or `ha`, app nodes in an auto scaling group across two
 * zones behind an ALB that terminates HTTPS, with the state in ApsaraDB RDS for PostgreSQL (High-availability
 * Edition), Tair (Redis OSS-compatible) master-replica and OSS.
 */
export type Topology = "single" | "ha";
export const TOPOLOGIES: readonly Topology[] = ["single", "ha"];

/**
 * RDS PostgreSQL major versions the stack offers: the versions whose RDS instances provide pgvector (Dify's
 * vector store in `ha`), which ApsaraDB RDS has for PostgreSQL 14 or later ("Use pgvector", ApsaraDB RDS docs:
 * https://www.alibabacloud.com/help/en/rds/apsaradb-rds-for-postgresql/pgvector-use-guide).
 */
export type RdsEngineVersion = "14.0" | "15.0" | "16.0" | "17.0";
export const RDS_ENGINE_VERSIONS: readonly RdsEngineVersion[] = ["14.0", "15.0", "16.0", "17.0"];

/** Redis Open-Source Edition major versions a Tair (Redis OSS-compatible) instance may run for Dify's cache and queue. */
export type RedisEngineVersion = "5.0" | "6.0" | "7.0";
export const REDIS_ENGINE_VERSIONS: readonly RedisEngineVersion[] = ["5.0", "6.0", "7.0"];

/**
 * The settings of topology `ha` (`StackSettings.ha`, present only then). Each one is a config key of its own;
 * with topology `single` they are ignored, and preview warns about each one set to something else than its default.
 */
export interface HaSettings {
    /**
     * Setting `certificateId`, required: the Certificate Management Service certificate the ALB's HTTPS listener
     * serves for `domain`, in the form ALB listeners take: the certificate's numeric id, "-" and the region of the
     * certificate service, e.g. `12345-cn-hangzhou` (China site) or `12345-ap-southeast-1` (international site).
     * Changing it swaps the listener's certificate in place.
     */
    certificateId: string;
    /**
     * Setting `haZoneIds`: the two zones (of the region, distinct) for the vSwitches, the app nodes, the ALB, and
     * the RDS and Redis primary/secondary. Unset (default): the first two zones, in sorted order, that offer the
     * chosen instance type (`resolveHaZones`). Changing them replaces the zone-bound resources.
     */
    zoneIds?: [string, string];
    /**
     * Setting `haAppNodeCount`, 2-20, default 2: the app nodes the scaling group keeps (its minimum size; the
     * maximum is one more, the surge of a rolling refresh). Changing it resizes the group in place.
     */
    appNodeCount: number;
    /**
     * Setting `rdsInstanceClass`: the class of the RDS for PostgreSQL High-availability Edition instance. Default
     * `pg.n2.2c.2m` (general-purpose, 2 cores, 4 GB); a Basic Edition class (code ending in `.1` or `.1m`) is
     * refused. Changing it changes the instance's specification in place (a transient disconnection).
     */
    rdsInstanceClass: string;
    /** Setting `rdsStorageGb`, 20-32000 GB, default 50: the instance's ESSD storage; it only grows, in place. */
    rdsStorageGb: number;
    /**
     * Setting `rdsEngineVersion`, default `16.0`; one of `RDS_ENGINE_VERSIONS` (PostgreSQL with pgvector). Choose
     * it before the first `pulumi up`: the provider upgrades only MySQL's major version in place, so a PostgreSQL
     * major upgrade is RDS's own procedure, not a config change.
     */
    rdsEngineVersion: RdsEngineVersion;
    /** Setting `rdsBackupRetentionDays`, 7-730, default 7: days RDS keeps its automatic backups; updated in place. */
    rdsBackupRetentionDays: number;
    /**
     * Setting `redisInstanceClass`: the class of the Tair (Redis OSS-compatible) instance. Default
     * `redis.shard.small.2.ce` (Redis Open-Source Edition, cloud native, standard architecture, 1 GB; created as
     * master-replica). Changing it changes the specification in place.
     */
    redisInstanceClass: string;
    /** Setting `redisEngineVersion`, default `7.0`; one of `REDIS_ENGINE_VERSIONS`. */
    redisEngineVersion: RedisEngineVersion;
    /**
     * Setting `dnsZone`: an Alibaba Cloud DNS zone of the account that `domain` is a name inside (e.g. example.com
     * for dify.example.com). Set: the stack creates the CNAME `domain` → the ALB's DNS name. Unset (default): you
     * create that record yourself (the stack output dnsInstructions says what).
     */
    dnsZone?: string;
}

export interface StackSettings {
    /** Alibaba Cloud region, e.g. cn-hangzhou. */
    region: string;
    /**
     * Prefix of every cloud resource name: 2-41 lowercase letters, digits and "-", starting with a letter.
     * Default `dify-<stack>`. Changing it renames the resources in place (the instance's host name too, which
     * reboots it); the SSH key pair, whose name is fixed at creation, is replaced and re-bound to the instance.
     */
    namePrefix: string;
    zoneId?: string;
    instanceType?: string;
    instanceTypePreferences: string[];
    cpuArchitecture: CpuArchitecture;
    imageFamily: ImageFamily;
    /** A pinned image id; otherwise the newest image of `imageFamily` at first deploy, kept afterwards. */
    imageId?: string;
    /**
     * How the instance is billed: `PostPaid` (pay-as-you-go, default) or `PrePaid` (subscription). Changing it
     * converts the running instance in place (ECS ModifyInstanceChargeType, which Alibaba limits within a month);
     * the EIP stays pay-as-you-go.
     */
    instanceChargeType: InstanceChargeType;
    /**
     * Category of the system disk (the OS, Docker and Dify's images; none of Dify's data). Default `cloud_essd`.
     * The provider cannot change it in place: changing it replaces the instance (the old one is deleted first),
     * the new one runs the bootstrap again and finds Dify's data and secrets on the kept data disk.
     */
    systemDiskCategory: DiskCategory;
    /**
     * Size of the system disk in GiB, 40-500 (Dify's images take 5-6 GB unpacked). Default 60. Changing it
     * resizes the disk in place (ECS ResizeDisk, online); a disk only grows, so a smaller size fails at `pulumi up`.
     */
    systemDiskSize: number;
    /**
     * Category of the data disk that keeps Dify's volumes and secrets. Default `cloud_essd`. Changing it converts
     * the disk in place (ECS ModifyDiskSpec, for the conversions ECS offers); the data stays.
     */
    dataDiskCategory: DiskCategory;
    /**
     * Size of the data disk in GiB, 20-32768. Default 100. Changing it resizes the disk in place (ECS ResizeDisk);
     * a disk only grows, so a smaller size fails at `pulumi up`. The ext4 file system on it is not grown for you.
     */
    dataDiskSize: number;
    /**
     * Days to keep the data disk's daily automatic snapshots (03:00 UTC+8; snapshot storage is billed), 0-65536;
     * 0 means no snapshot policy. Default 7. Changing the number updates the policy in place; 0 deletes the policy
     * and its attachment to the disk (no more snapshots are taken), and a number again creates them.
     */
    dataDiskSnapshotRetentionDays: number;
    /**
     * Pulumi `protect` on the data disk, default true: `pulumi destroy`, and any change that would replace the
     * disk, stop with an error before deleting it. Changing it changes nothing in the cloud: `pulumi up` records it
     * (the disk previews as [diff: ~protect]), and only then may a destroy delete the disk and Dify's data.
     */
    protectDataDisk: boolean;
    /**
     * Create the data disk encrypted (with `dataDiskKmsKeyId`, or the region's default ECS key), default true.
     * Applies only when the disk is created: a disk's encryption is fixed and a new disk would be empty, so the
     * host ignores it afterwards and changing it changes no resource. While the disk is unencrypted and this is
     * true, every preview warns; set it to false to keep such a disk knowingly.
     */
    encryptDataDisk: boolean;
    /**
     * A customer KMS key (key-… or a UUID) that encrypts a new data disk; needs `encryptDataDisk`. Unset (default):
     * the region's default key for ECS. Like `encryptDataDisk` it applies only when the disk is created: changing
     * it later changes no resource, and every preview warns while the disk has another key.
     */
    dataDiskKmsKeyId?: string;
    /**
     * Instance metadata only in security hardening mode (HttpTokens required: a token from PUT
     * /latest/api/token first), so a request forged through Dify cannot read the user data (INIT_PASSWORD) or RAM
     * credentials; needs cloud-init 23.2.2 or later in the image. Default true; false allows plain GETs again.
     * Changing it updates the instance's metadata options in place (ECS ModifyInstanceMetadataOptions).
     */
    requireMetadataTokens: boolean;
    /**
     * Bandwidth cap of the EIP in Mbit/s, 1-200. Default 100: the EIP is pay-by-traffic and inbound traffic is
     * free, so a high cap speeds up the image pull at no fixed cost. Changing it updates the EIP in place; its
     * address stays.
     */
    eipBandwidthMbps: number;
    vpcCidr: string;
    vswitchCidr: string;
    allowedCidrs: string[];
    adminCidr?: string;
    /**
     * An OpenSSH public key for root, imported as the key pair `<namePrefix>-admin` and bound to the instance
     * (SSH also needs `adminCidr`). Unset (default): no key pair, and the instance has no login key. Adding one
     * later binds it in place (ECS reboots a running instance); removing it deletes the key pair. A changed key
     * is only recorded: the provider neither updates a key pair's public key nor replaces the key pair for it.
     */
    sshPublicKey?: string;
    /**
     * The Dify release tag the bootstrap deploys (no "v"), 1.8.0 or later; default `CONFIG_DEFAULTS.difyVersion`.
     * Also the instance's `dify-version` tag. Changing it upgrades the running instance in place
     * (DifyInstanceConfiguration, through Cloud Assistant): the data disk is snapshotted first (kept 7 days), the
     * bootstrap runs again with the new release (keeping .env's secrets and the settings), pulls the images, and
     * recreates the containers (Dify is down for that and the database migration), and `pulumi up` waits for Dify
     * again. A lower version than the instance runs is refused (Dify's migrations only go forward).
     */
    difyVersion: string;
    /**
     * Deploy a `difyVersion` that rules/dify-releases.ts does not pin, default false. Each pinned release has the
     * content digest of its docker/ folder, which the bootstrap checks whatever it fetched against (refusing a
     * mismatch); a version without a pin is refused at preview unless this is true, and then the bootstrap runs
     * the release as fetched, unverified (preview warns). It is not in the user data: it changes no resource.
     */
    allowUnpinnedDifyVersion: boolean;
    /**
     * Serve Dify on https://<domain> with a Let's Encrypt certificate (the classic 90-day profile, renewed by a
     * timer on the instance) instead of https://<EIP>; the name must point at the EIP (mainland regions need ICP
     * filing), and `certEmail` is required. Unset (default): HTTPS on the EIP itself, with a Let's Encrypt IP
     * certificate (`shortlived` profile, about 6 days, renewed twice a day when due). Refused with `plainHttp`.
     * Changing it changes Dify's URLs, applied to the running instance (see `difyVersion`); Dify's URL
     * and the RAM app's redirect URI follow.
     */
    domain?: string;
    /**
     * The e-mail address Let's Encrypt sends certificate notices to; required with `domain`, optional without
     * (certbot then registers without an address). Unset by default. It is in the bootstrap's settings, so
     * changing it is applied to the running instance (see `difyVersion`).
     */
    certEmail?: string;
    /**
     * Serve Dify over plain HTTP on http://<EIP>, without a certificate: an explicit opt-out, default false. Every
     * preview warns, naming what then crosses the network in clear text (INIT_PASSWORD, the admin password at
     * each sign-in, session cookies, the DashScope key as it is set in Dify, the OAuth authorization code).
     * Refused with `domain`. Changing it changes Dify's URLs, applied to the running instance (see
     * `difyVersion`); Dify's URL, the RAM app's redirect URI and the security group's 443 rules follow.
     */
    plainHttp: boolean;
    /**
     * Where Dify's images come from:
     * - `docker-hub`: Docker Hub directly (default outside mainland China, cn-hongkong included);
     * - `registry-mirror`: Docker Hub through the registry mirrors of `registryMirrors`, written into the Docker
     *   daemon's daemon.json (default in mainland-China regions, and whenever `registryMirrors` is set);
     * - `acr`: copies of the release's images (rules/dify-images.ts) in the existing ACR Enterprise Edition
     *   instance `acrInstanceId`, which the stack fills with artifact subscription rules and links to the VPC
     *   (components/acr-image-mirror.ts); needs a `difyVersion` listed there, and a manual first sync.
     * Changing it is applied to the running instance (see `difyVersion`); to or from `acr` it also
     * creates or deletes the registry's namespaces, repositories, rules and VPC link.
     */
    imageSource: ImageSource;
    /**
     * The ACR Enterprise Edition instance (`cri-…`) of imageSource `acr`, in the stack's region; required with
     * `acr`, refused otherwise. Unset by default: the stack never buys one (Enterprise Edition is prepaid).
     * Changing it replaces the namespaces, repositories, rules and VPC link (they belong to an instance), and the
     * registry's address in the bootstrap's settings, which is applied to the running instance.
     */
    acrInstanceId?: string;
    /**
     * The Docker Hub mirrors (https URLs) the host's Docker daemon uses: with imageSource `registry-mirror`, the
     * `registryMirrors` setting, or `DEFAULT_REGISTRY_MIRRORS` (https://mirrors-ssl.aliyuncs.com/, the mirror
     * Alibaba's own Compute Nest Dify template writes into daemon.json in cn-* regions) when it is unset; with
     * the other sources none (setting it is refused). Changing the list is applied to the running
     * instance (see `difyVersion`).
     */
    registryMirrors: string[];
    /**
     * The PyPI index Dify's plugin daemon and sandbox install from. Default: https://mirrors.aliyun.com/pypi/simple
     * in mainland-China regions, none elsewhere. Changing it is applied to the running instance
     * (see `difyVersion`).
     */
    pipMirrorUrl?: string;
    /**
     * How long `pulumi up` waits for Dify to answer on its public URL after a new instance or URL, 5-180 minutes.
     * Default 45. Changing it only updates the wait's recorded settings: it applies to the next wait, and waits
     * for nothing now.
     */
    readinessTimeoutMinutes: number;
    tags: Record<string, string>;
    /**
     * `single` (default) or `ha`; see `Topology`. With `ha`, `domain` and `certificateId` are required, and
     * `plainHttp` and `adminCidr` are refused (the ALB terminates HTTPS; app nodes have no public address);
     * `zoneId` and `certEmail` are ignored (and left out here): `haZoneIds` places the nodes, and no Let's Encrypt
     * certificate is requested. The two are different sets of resources: switching a deployed stack does not move
     * Dify's data from one to the other.
     */
    topology: Topology;
    /** The settings of topology `ha`; present exactly when `topology` is `ha`. */
    ha?: HaSettings;
}

/** Non-fatal findings to show as warnings at preview. */
export interface ParsedStackSettings {
    settings: StackSettings;
    warnings: string[];
}

/** All problems of a stack's config at once, each naming the key and what is allowed. */
export class StackConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`Invalid stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "StackConfigError";
    }
}

const REGION_PATTERN = /^[a-z]{2,3}(-[a-z]+)+(-\d{1,2})?$/;
const DIFY_TAG_PATTERN = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.]+)?$/;
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const NAME_PREFIX_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
const INSTANCE_TYPE_PATTERN = /^ecs\.[a-z0-9-]+\.[a-z0-9]+$/;
/** KMS key ids: "key-" and letters and digits (current), or a UUID (older keys). */
const KMS_KEY_ID_PATTERN = /^(key-[a-z0-9]{8,64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** True for a Dify release tag as the bootstrap fetches it: "1.14.1", "1.10.1-fix.1" (no "v"). */
function isDifyReleaseTag(tag: string): boolean {
    return DIFY_TAG_PATTERN.test(tag);
}

/** Mainland China regions, where Docker Hub and PyPI need mirrors (Hong Kong is outside the firewall). */
export function isMainlandChinaRegion(region: string): boolean {
    return region.startsWith("cn-") && region !== "cn-hongkong";
}

/** True for burstable (t5/t6) and ARM (…y) families that the default selection avoids. */
export function isAvoidedFamily(instanceType: string, architecture: CpuArchitecture): boolean {
    const family = instanceType.split(".")[1] ?? "";
    const burstable = /^t\d/.test(family);
    const arm = /^[a-z]\d+y$/.test(family);
    return burstable || (arm && architecture !== "arm64");
}

/** Reads typed values, collecting a problem (key + allowed values) for each bad one. */
export class ConfigReader {
    readonly problems: string[] = [];

    constructor(private readonly source: ConfigSource) {}

    key(name: string): string {
        return `${CONFIG_NAMESPACE}:${name}`;
    }

    raw(name: string): string | undefined {
        const value = this.source.get(name);
        return value === undefined || value.trim() === "" ? undefined : value.trim();
    }

    string(name: string, fallback: string): string;
    string(name: string): string | undefined;
    string(name: string, fallback?: string): string | undefined {
        return this.raw(name) ?? fallback;
    }

    oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
        const value = this.raw(name);
        if (value === undefined) {
            return fallback;
        }
        if (!(allowed as readonly string[]).includes(value)) {
            this.problems.push(`${this.key(name)} is "${value}"; allowed: ${allowed.join(", ")}`);
            return fallback;
        }
        return value as T;
    }

    integer(name: string, fallback: number, min: number, max: number): number;
    integer(name: string, fallback: undefined, min: number, max: number): number | undefined;
    integer(name: string, fallback: number | undefined, min: number, max: number): number | undefined {
        const value = this.raw(name);
        if (value === undefined) {
            return fallback;
        }
        const parsed = Number(value);
        if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
            this.problems.push(`${this.key(name)} is "${value}"; allowed: a whole number from ${min} to ${max}`);
            return fallback;
        }
        return parsed;
    }

    boolean(name: string, fallback: boolean): boolean {
        const value = this.raw(name);
        if (value === undefined) {
            return fallback;
        }
        if (value !== "true" && value !== "false") {
            this.problems.push(`${this.key(name)} is "${value}"; allowed: true, false`);
            return fallback;
        }
        return value === "true";
    }

    stringList(name: string, fallback: string[]): string[] {
        const value = this.raw(name);
        if (value === undefined) {
            return fallback;
        }
        try {
            const parsed: unknown = JSON.parse(value);
            if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) {
                return parsed as string[];
            }
        } catch {
            // fall through to the problem below
        }
        this.problems.push(`${this.key(name)} must be a list of strings (YAML sequence)`);
        return fallback;
    }

    problem(name: string, message: string): void {
        this.problems.push(`${this.key(name)} ${message}`);
    }
}

/**
 * Reads one CIDR of a setting: decimal IPv4, no leading zeros, and canonical (no host bits set), or a problem
 * that suggests the canonical form. `listed` words the problem for an entry of a list ("contains").
 */
function readCidr(r: ConfigReader, key: string, value: string, example: string, listed = false): Ipv4Cidr | undefined {
    const verb = listed ? "contains" : "is";
    const cidr = parseIpv4Cidr(value);
    if (cidr === undefined) {
        r.problem(key, `${verb} ${JSON.stringify(value)}; allowed: an IPv4 CIDR block written in decimal such as ${example}`);
        return undefined;
    }
    const canonical = canonicalCidr(cidr);
    if (canonical !== value) {
        r.problem(key, `${verb} ${JSON.stringify(value)}, which has host bits set; allowed: the block's network address, "${canonical}"`);
        return undefined;
    }
    return cidr;
}

/** Number of addresses in a block, for messages. */
function addressCount(prefix: number): string {
    return (2 ** (32 - prefix)).toLocaleString("en-US");
}

const TAG_RULE =
    '"key=value" with a key of 1-128 and a value of at most 128 characters, neither starting with "aliyun" or "acs:" nor containing "http://" or "https://"';

/** Why one "key=value" tag is refused, or undefined. */
function tagProblem(key: string, value: string): string | undefined {
    if (/[\u0000-\u001f\u007f]/.test(key + value)) {
        return "has a control character";
    }
    if (key.length > 128) {
        return `has a key of ${key.length} characters (Alibaba Cloud allows 128)`;
    }
    if (value.length > 128) {
        return `has a value of ${value.length} characters (Alibaba Cloud allows 128)`;
    }
    if (/^(aliyun|acs:)/i.test(key) || /^(aliyun|acs:)/i.test(value)) {
        return 'starts its key or value with "aliyun" or "acs:" (reserved by Alibaba Cloud)';
    }
    if (/https?:\/\//i.test(key + "=" + value)) {
        return 'contains "http://" or "https://", which Alibaba Cloud refuses in tags';
    }
    if (STACK_TAG_KEYS.includes(key.toLowerCase())) {
        return `would replace the stack's own tag "${key.toLowerCase()}"`;
    }
    return undefined;
}

/** The defaults, also declared in Pulumi.yaml's `config:` block (a test keeps the two equal). */
export const CONFIG_DEFAULTS = {
    cpuArchitecture: "x86_64",
    imageFamily: "acs:ubuntu_22_04_x64",
    instanceChargeType: "PostPaid",
    systemDiskCategory: "cloud_essd",
    systemDiskSize: 60,
    dataDiskCategory: "cloud_essd",
    dataDiskSize: 100,
    dataDiskSnapshotRetentionDays: 7,
    protectDataDisk: true,
    encryptDataDisk: true,
    requireMetadataTokens: true,
    eipBandwidthMbps: 100,
    vpcCidr: "172.16.0.0/16",
    vswitchCidr: "172.16.0.0/24",
    allowedCidrs: ["0.0.0.0/0"],
    difyVersion: "1.14.1",
    allowUnpinnedDifyVersion: false,
    plainHttp: false,
    // Unset: imageSource and the region choose (DEFAULT_REGISTRY_MIRRORS with registry-mirror, none otherwise).
    registryMirrors: [] as string[],
    readinessTimeoutMinutes: 45,
    topology: "single",
    // Topology ha only (see HaSettings). Unset: the first two zones that offer the instance type.
    haZoneIds: [] as string[],
    haAppNodeCount: 2,
    // The default only; any RDS for PostgreSQL High-availability Edition class the region sells may be set.
    // pg.n2.2c.2m is the general-purpose 2 cores / 4 GB class of the High-availability series, standard edition
    // (Alibaba Cloud, ApsaraDB RDS for PostgreSQL "Primary instance types" 规格清单,
    // https://help.aliyun.com/document_detail/276990.htm: 高可用系列 通用型 pg.n2.2c.2m 2核 4GB; the Basic series has
    // pg.n2.2c.1m for the same size).
    rdsInstanceClass: "pg.n2.2c.2m",
    rdsStorageGb: 50,
    rdsEngineVersion: "16.0",
    rdsBackupRetentionDays: 7,
    // The default only: Redis Open-Source Edition, cloud native, standard (non-cluster) architecture, 1 GB
    // ("Instance types for Redis Open-Source Edition cloud native instances",
    // https://help.aliyun.com/en/redis/product-overview/instance-types-of-cloud-native-community-edition-instances:
    // 1 GB, redis.shard.small.2.ce). Cloud native, the current deployment mode, rather than the classic
    // redis.master.small.default (1 GB master-replica), whose offer of Redis 7.0 is not confirmed.
    redisInstanceClass: "redis.shard.small.2.ce",
    redisEngineVersion: "7.0",
} as const;

/** The settings only topology ha reads; with single, preview warns about each one set to a non-default value. */
const HA_ONLY_SETTINGS = [
    "certificateId",
    "haZoneIds",
    "haAppNodeCount",
    "rdsInstanceClass",
    "rdsStorageGb",
    "rdsEngineVersion",
    "rdsBackupRetentionDays",
    "redisInstanceClass",
    "redisEngineVersion",
    "dnsZone",
] as const;

/**
 * Certificate ids as ALB listeners take them from Certificate Management Service: the certificate's numeric id,
 * "-" and the region of the certificate service (cn-hangzhou on the China site, ap-southeast-1 on the
 * international site), e.g. 12345-cn-hangzhou.
 */
const CERTIFICATE_ID_PATTERN = /^[1-9]\d{0,19}-[a-z]{2,3}(-[a-z]+)+(-\d{1,2})?$/;
const CERTIFICATE_ID_RULE =
    'the Certificate Management Service certificate id as ALB listeners take it: the certificate\'s numeric id, "-" and the region of the certificate service, e.g. 12345-cn-hangzhou (China site) or 12345-ap-southeast-1 (international site)';
/** RDS PostgreSQL class codes, e.g. pg.n2.2c.2m; a last part of 1 or 1m is a Basic Edition (single-node) class. */
const RDS_INSTANCE_CLASS_PATTERN = /^pg\.[a-z0-9]+(\.[a-z0-9]+)+$/;
const RDS_BASIC_CLASS_PATTERN = /\.1m?$/;
const RDS_INSTANCE_CLASS_RULE =
    "the code of an ApsaraDB RDS for PostgreSQL High-availability Edition class the region sells, such as pg.n2.2c.2m (2 cores, 4 GB)";
/** Tair (Redis OSS-compatible) class codes of Redis Open-Source Edition, e.g. redis.shard.small.2.ce. */
const REDIS_INSTANCE_CLASS_PATTERN = /^redis\.[a-z0-9]+(\.[a-z0-9]+)+$/;
const REDIS_INSTANCE_CLASS_RULE =
    "the code of a Redis Open-Source Edition class of Tair (Redis OSS-compatible), such as redis.shard.small.2.ce (cloud native, standard architecture, 1 GB)";

/** True when a setting is given a value other than its declared default (which pulumi.Config returns when unset). */
function setToNonDefault(r: ConfigReader, name: string): boolean {
    const value = r.raw(name);
    if (value === undefined) {
        return false;
    }
    const declared = (CONFIG_DEFAULTS as Record<string, unknown>)[name];
    if (declared === undefined) {
        return true;
    }
    if (Array.isArray(declared)) {
        try {
            return JSON.stringify(JSON.parse(value)) !== JSON.stringify(declared);
        } catch {
            return true;
        }
    }
    return typeof declared === "number" ? Number(value) !== declared : value !== declared;
}

/** A major version as RDS and Tair name them ("16.0"); a YAML number such as 16 arrives as "16". */
function majorVersion(value: string): string {
    return /^\d+$/.test(value) ? `${value}.0` : value;
}

function versionSetting<T extends string>(r: ConfigReader, name: string, allowed: readonly T[], fallback: T, why: string): T {
    const value = r.raw(name);
    if (value === undefined) {
        return fallback;
    }
    const version = majorVersion(value);
    if (!(allowed as readonly string[]).includes(version)) {
        r.problem(name, `is "${value}"; allowed: ${allowed.join(", ")} (${why})`);
        return fallback;
    }
    return version as T;
}

/** A zone id of the region: the region id and a zone letter, e.g. cn-hangzhou-h or ap-southeast-1a. */
function isZoneOfRegion(zoneId: string, region: string): boolean {
    return zoneId.startsWith(region) && /^-?[a-z]$/.test(zoneId.slice(region.length));
}

function zoneExamples(region: string): string {
    return /\d$/.test(region) ? `${region}a and ${region}b` : `${region}-h and ${region}-i`;
}

/**
 * The settings of topology ha, with their problems; with single, a warning naming each ha setting that is set
 * (they are ignored, and not checked).
 */
function readHaSettings(
    r: ConfigReader,
    warnings: string[],
    context: { topology: Topology; region: string | undefined; domain: string | undefined; adminCidr: string | undefined },
): HaSettings | undefined {
    const d = CONFIG_DEFAULTS;
    if (context.topology !== "ha") {
        const ignored = HA_ONLY_SETTINGS.filter((name) => setToNonDefault(r, name));
        if (ignored.length > 0) {
            warnings.push(
                `${r.key("topology")} is single, so ${ignored.map((name) => r.key(name)).join(", ")} ${ignored.length === 1 ? "is" : "are"} ignored: ` +
                    `${ignored.length === 1 ? "it applies" : "they apply"} only with topology ha. Remove ${ignored.length === 1 ? "it" : "them"}, or set ${r.key("topology")} to ha.`,
            );
        }
        return undefined;
    }

    // The ALB terminates TLS for `domain` with this certificate; nothing on the nodes requests one.
    if (context.domain === undefined) {
        r.problem("domain", `is not set but ${r.key("topology")} is ha; allowed: the DNS name Dify is served on, such as dify.example.com, which the certificate certificateId covers`);
    }
    const certificateId = r.string("certificateId");
    if (certificateId === undefined) {
        r.problem("certificateId", `is not set but ${r.key("topology")} is ha, whose ALB serves HTTPS for domain with it; allowed: ${CERTIFICATE_ID_RULE}`);
    } else if (!CERTIFICATE_ID_PATTERN.test(certificateId)) {
        r.problem("certificateId", `is ${JSON.stringify(certificateId)}; allowed: ${CERTIFICATE_ID_RULE}`);
    }
    if (context.adminCidr !== undefined) {
        r.problem(
            "adminCidr",
            `is set but ${r.key("topology")} is ha, whose app nodes have no public address (only the ALB is reachable from the internet), so there is nothing for SSH from ${context.adminCidr} to reach; allowed with topology ha: unset`,
        );
    }

    let zoneIds: [string, string] | undefined;
    const zones = r.stringList("haZoneIds", [...d.haZoneIds]);
    if (zones.length > 0) {
        const region = context.region;
        const rule = `two distinct zone ids of the region${region ? `, such as ${zoneExamples(region)}` : ""}, or unset for the first two zones that offer the instance type`;
        const foreign = region === undefined ? [] : zones.filter((zone) => !isZoneOfRegion(zone, region));
        if (zones.length !== 2) {
            r.problem("haZoneIds", `has ${zones.length} zone${zones.length === 1 ? "" : "s"} (${zones.join(", ")}); allowed: ${rule}`);
        } else if (foreign.length > 0) {
            r.problem("haZoneIds", `contains "${foreign[0]}", which is not a zone id of ${region}; allowed: ${rule}`);
        } else if (zones[0] === zones[1]) {
            r.problem("haZoneIds", `names "${zones[0]}" twice, and one zone is no protection against its outage; allowed: ${rule}`);
        } else {
            zoneIds = [zones[0], zones[1]];
        }
    }

    const appNodeCount = r.integer("haAppNodeCount", d.haAppNodeCount, 2, 20);

    const rdsInstanceClass = r.string("rdsInstanceClass", d.rdsInstanceClass);
    if (!RDS_INSTANCE_CLASS_PATTERN.test(rdsInstanceClass)) {
        r.problem("rdsInstanceClass", `is ${JSON.stringify(rdsInstanceClass)}; allowed: ${RDS_INSTANCE_CLASS_RULE}`);
    } else if (RDS_BASIC_CLASS_PATTERN.test(rdsInstanceClass)) {
        r.problem(
            "rdsInstanceClass",
            `is "${rdsInstanceClass}", a Basic Edition class (one node, no standby in the second zone: its code ends in .1 or .1m); allowed: ${RDS_INSTANCE_CLASS_RULE}`,
        );
    }
    const rdsStorageGb = r.integer("rdsStorageGb", d.rdsStorageGb, 20, 32000);
    const rdsEngineVersion = versionSetting(r, "rdsEngineVersion", RDS_ENGINE_VERSIONS, d.rdsEngineVersion, "the RDS PostgreSQL versions with pgvector, Dify's vector store");
    const rdsBackupRetentionDays = r.integer("rdsBackupRetentionDays", d.rdsBackupRetentionDays, RDS_BACKUP_RETENTION_DAYS.min, RDS_BACKUP_RETENTION_DAYS.max);

    const redisInstanceClass = r.string("redisInstanceClass", d.redisInstanceClass);
    if (!REDIS_INSTANCE_CLASS_PATTERN.test(redisInstanceClass)) {
        r.problem("redisInstanceClass", `is ${JSON.stringify(redisInstanceClass)}; allowed: ${REDIS_INSTANCE_CLASS_RULE}`);
    }
    const redisEngineVersion = versionSetting(r, "redisEngineVersion", REDIS_ENGINE_VERSIONS, d.redisEngineVersion, "Redis Open-Source Edition major versions");

    // The stack's record is a CNAME, which cannot sit at a zone's apex (beside its SOA and NS records).
    const dnsZone = r.string("dnsZone")?.toLowerCase();
    if (dnsZone !== undefined) {
        const rule = "the Alibaba Cloud DNS zone that domain is a name inside, such as example.com for dify.example.com, or unset to create the record yourself";
        if (!DOMAIN_PATTERN.test(dnsZone)) {
            r.problem("dnsZone", `is ${JSON.stringify(dnsZone)}; allowed: ${rule}`);
        } else if (context.domain !== undefined && context.domain === dnsZone) {
            r.problem("dnsZone", `is "${dnsZone}", the same name as domain, and the stack's CNAME record cannot be at the zone's apex; allowed: ${rule}`);
        } else if (context.domain !== undefined && !context.domain.endsWith(`.${dnsZone}`)) {
            r.problem("dnsZone", `is "${dnsZone}", but domain "${context.domain}" is not a name inside it; allowed: ${rule}`);
        }
    } else if (context.domain !== undefined) {
        // The first `up` waits for https://<domain>, which only answers once the name points at the new ALB.
        warnings.push(
            `${r.key("dnsZone")} is not set, so the stack does not create the DNS record for ${context.domain}: once the ALB exists, ` +
                `create a CNAME ${context.domain} → the ALB's DNS name (ALB console, or the stack output albDnsName) before ` +
                `${r.key("readinessTimeoutMinutes")} runs out, or pulumi up stops waiting for Dify and needs running again. ` +
                `Set ${r.key("dnsZone")} when the domain's zone is in Alibaba Cloud DNS to have the stack create it.`,
        );
    }

    return {
        certificateId: certificateId ?? "",
        zoneIds,
        appNodeCount,
        rdsInstanceClass,
        rdsStorageGb,
        rdsEngineVersion,
        rdsBackupRetentionDays,
        redisInstanceClass,
        redisEngineVersion,
        dnsZone,
    };
}

/**
 * Reads and validates every setting. Throws `StackConfigError` listing all problems; returns warnings for
 * accepted-but-risky values (Dify 1.8–1.9).
 */
export function parseStackSettings(source: ConfigSource, context: { stack: string; region?: string }): ParsedStackSettings {
    const r = new ConfigReader(source);
    const warnings: string[] = [];
    const d = CONFIG_DEFAULTS;

    const region = context.region?.trim();
    if (!region) {
        r.problems.push(`alicloud:region is not set; set it with "pulumi config set alicloud:region cn-hangzhou"`);
    } else if (!REGION_PATTERN.test(region)) {
        r.problems.push(`alicloud:region is "${region}"; allowed: an Alibaba Cloud region id such as cn-hangzhou or ap-southeast-1`);
    }

    const namePrefix = r.string("namePrefix", `dify-${context.stack}`.toLowerCase().replace(/[^a-z0-9-]/g, "-"));
    if (!NAME_PREFIX_PATTERN.test(namePrefix)) {
        r.problem("namePrefix", `is "${namePrefix}"; allowed: 2-41 lowercase letters, digits and "-", starting with a letter`);
    }
    // single (default) or ha; ha's own settings are read at the end (readHaSettings).
    const topology = r.oneOf("topology", TOPOLOGIES, d.topology);
    const ha = topology === "ha";

    const cpuArchitecture = r.oneOf("cpuArchitecture", CPU_ARCHITECTURES, d.cpuArchitecture);
    const instanceType = r.string("instanceType");
    if (instanceType !== undefined) {
        if (!INSTANCE_TYPE_PATTERN.test(instanceType)) {
            r.problem("instanceType", `is "${instanceType}"; allowed: an ECS instance type such as ecs.c7.large`);
        } else {
            const size = instanceTypeSizeFromName(instanceType);
            if (size && !isLargeEnoughForDify(size)) {
                r.problem(
                    "instanceType",
                    `is "${instanceType}" (${size.vcpus} vCPU, ${size.memoryGib} GiB); Dify needs at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB, e.g. ecs.c7.large or ecs.u1-c1m2.large`,
                );
            }
        }
    }
    const instanceTypePreferences = r.stringList("instanceTypePreferences", [...DEFAULT_INSTANCE_TYPE_PREFERENCES]);
    for (const preferred of instanceTypePreferences) {
        const size = instanceTypeSizeFromName(preferred);
        if (!INSTANCE_TYPE_PATTERN.test(preferred) || (size && !isLargeEnoughForDify(size))) {
            r.problem("instanceTypePreferences", `contains "${preferred}"; allowed: ECS instance types of at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB`);
        }
    }

    const imageFamily = r.oneOf("imageFamily", Object.keys(IMAGE_FAMILIES) as ImageFamily[], d.imageFamily);
    const imageId = r.string("imageId");
    if (imageId !== undefined) {
        const image = SUPPORTED_IMAGE_ID_PATTERN.exec(imageId);
        const imageArchitecture = image?.[2] === "arm64" ? "arm64" : "x86_64";
        if (image === null || /_nocloud_/.test(imageId)) {
            r.problem(
                "imageId",
                `is ${JSON.stringify(imageId)}; allowed: a public image id of a system the bootstrap supports (Ubuntu 22.04 or 24.04, Alibaba Cloud Linux 3), such as ubuntu_22_04_x64_20G_alibase_20240220.vhd or aliyun_3_x64_20G_alibase_20241103.vhd, or unset to use imageFamily (a custom image's system cannot be checked at preview)`,
            );
        } else if (imageArchitecture !== cpuArchitecture) {
            r.problem("imageId", `is ${JSON.stringify(imageId)}, an ${imageArchitecture} image, but cpuArchitecture is ${cpuArchitecture}; allowed: an image of the ${cpuArchitecture === "arm64" ? "arm64" : "x64"} architecture`);
        }
    }
    const instanceChargeType = r.oneOf("instanceChargeType", INSTANCE_CHARGE_TYPES, d.instanceChargeType);
    const systemDiskCategory = r.oneOf("systemDiskCategory", DISK_CATEGORIES, d.systemDiskCategory);
    const systemDiskSize = r.integer("systemDiskSize", d.systemDiskSize, 40, 500);
    const dataDiskCategory = r.oneOf("dataDiskCategory", DISK_CATEGORIES, d.dataDiskCategory);
    const dataDiskSize = r.integer("dataDiskSize", d.dataDiskSize, 20, 32768);
    // 0 means no snapshot policy.
    const dataDiskSnapshotRetentionDays = r.integer("dataDiskSnapshotRetentionDays", d.dataDiskSnapshotRetentionDays, 0, 65536);
    const protectDataDisk = r.boolean("protectDataDisk", d.protectDataDisk);
    const encryptDataDisk = r.boolean("encryptDataDisk", d.encryptDataDisk);
    const dataDiskKmsKeyId = r.string("dataDiskKmsKeyId");
    if (dataDiskKmsKeyId !== undefined) {
        if (!KMS_KEY_ID_PATTERN.test(dataDiskKmsKeyId)) {
            r.problem("dataDiskKmsKeyId", `is ${JSON.stringify(dataDiskKmsKeyId)}; allowed: a KMS key id such as key-hzz62f1cb66fa42qo9abc or 0e478b7a-4262-4802-b8cb-00d3fb408e2b`);
        } else if (!encryptDataDisk) {
            r.problem("dataDiskKmsKeyId", "is set but encryptDataDisk is false; allowed: unset, or encryptDataDisk true");
        }
    }
    const requireMetadataTokens = r.boolean("requireMetadataTokens", d.requireMetadataTokens);
    const eipBandwidthMbps = r.integer("eipBandwidthMbps", d.eipBandwidthMbps, 1, 200);

    // The VPC: one of Alibaba's private ranges or a block inside one (Alibaba also takes custom public ranges;
    // the stack refuses them, as they would hide those internet addresses from the host). The vSwitch inside it.
    const vpcCidr = r.string("vpcCidr", d.vpcCidr);
    const vswitchCidr = r.string("vswitchCidr", d.vswitchCidr);
    const vpc = readCidr(r, "vpcCidr", vpcCidr, "172.16.0.0/16");
    const privateRanges = VPC_PRIVATE_RANGES.map((range) => parseIpv4Cidr(range) as Ipv4Cidr);
    const vpcRule = `a block of ${VPC_PRIVATE_RANGES.join(", ")} (Alibaba Cloud's private VPC ranges) with a prefix from /${VPC_PREFIX_RANGE.min} to /${VPC_PREFIX_RANGE.max}, such as 172.16.0.0/16`;
    const vpcAllowed = vpc !== undefined && privateRanges.some((range) => cidrContains(range, vpc)) && vpc.prefix <= VPC_PREFIX_RANGE.max;
    if (vpc !== undefined && !vpcAllowed) {
        r.problem("vpcCidr", `is "${vpcCidr}"; allowed: ${vpcRule}`);
    }
    const vswitch = readCidr(r, "vswitchCidr", vswitchCidr, "172.16.0.0/24");
    if (vswitch !== undefined) {
        if (vswitch.prefix < VSWITCH_PREFIX_RANGE.min || vswitch.prefix > VSWITCH_PREFIX_RANGE.max) {
            r.problem("vswitchCidr", `is "${vswitchCidr}"; allowed: a prefix from /${VSWITCH_PREFIX_RANGE.min} to /${VSWITCH_PREFIX_RANGE.max} inside vpcCidr, such as 172.16.0.0/24`);
        } else if (vpc !== undefined && vpcAllowed && !cidrContains(vpc, vswitch)) {
            r.problem("vswitchCidr", `is "${vswitchCidr}", outside vpcCidr "${vpcCidr}"; allowed: a block inside vpcCidr, such as ${canonicalCidr({ address: vpc.address, prefix: Math.max(vpc.prefix, 24) })}`);
        }
    }

    // Who may reach Dify: non-overlapping blocks of /8 or longer, or the whole internet as exactly 0.0.0.0/0.
    const allowedCidrs = r.stringList("allowedCidrs", [...d.allowedCidrs]);
    if (allowedCidrs.length === 0) {
        r.problem("allowedCidrs", "is empty; allowed: one or more IPv4 CIDR blocks (default 0.0.0.0/0) that may reach Dify on 80/443");
    }
    const allowed: Array<{ text: string; cidr: Ipv4Cidr }> = [];
    for (const text of allowedCidrs) {
        const cidr = readCidr(r, "allowedCidrs", text, "203.0.113.0/24", true);
        if (cidr === undefined) {
            continue;
        }
        if (cidr.prefix > 0 && cidr.prefix < MIN_ALLOWED_PREFIX) {
            r.problem(
                "allowedCidrs",
                `contains "${text}", which opens ${addressCount(cidr.prefix)} addresses, most of the internet; allowed: blocks of /${MIN_ALLOWED_PREFIX} or longer, or exactly 0.0.0.0/0 for everyone`,
            );
            continue;
        }
        const earlier = allowed.find((other) => cidrsOverlap(other.cidr, cidr));
        if (earlier?.text === text) {
            r.problem("allowedCidrs", `contains "${text}" twice; allowed: each block once`);
        } else if (earlier !== undefined) {
            r.problem("allowedCidrs", `contains "${earlier.text}" and "${text}", which overlap; allowed: blocks that do not overlap (keep the larger one)`);
        }
        allowed.push({ text, cidr });
    }
    // SSH: at most a /16, never the whole internet.
    const adminCidr = r.string("adminCidr");
    if (adminCidr !== undefined) {
        const admin = readCidr(r, "adminCidr", adminCidr, "203.0.113.7/32");
        if (admin?.prefix === 0) {
            r.problem("adminCidr", `is "${adminCidr}", which opens SSH to the whole internet; allowed: your own address range, e.g. 203.0.113.7/32`);
        } else if (admin !== undefined && admin.prefix < MIN_ADMIN_PREFIX) {
            r.problem(
                "adminCidr",
                `is "${adminCidr}", which opens SSH to ${addressCount(admin.prefix)} addresses; allowed: /${MIN_ADMIN_PREFIX} or longer, your own address range, e.g. 203.0.113.7/32`,
            );
        }
    }
    const sshPublicKey = r.string("sshPublicKey");
    if (sshPublicKey !== undefined && !/^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/.test(sshPublicKey)) {
        r.problem("sshPublicKey", "is not an OpenSSH public key; allowed: one line such as \"ssh-ed25519 AAAA... you@host\"");
    }

    const difyVersion = r.string("difyVersion", d.difyVersion);
    if (!isDifyReleaseTag(difyVersion)) {
        r.problem("difyVersion", `is "${difyVersion}"; allowed: a Dify release tag without "v", ${MIN_DIFY_VERSION} or later, e.g. 1.14.1`);
    } else if (compareDifyVersions(difyVersion, MIN_DIFY_VERSION) < 0) {
        r.problem("difyVersion", `is "${difyVersion}"; allowed: ${MIN_DIFY_VERSION} or later (MCP tools arrived in 1.6, OAuth to MCP servers in 1.8.0)`);
    } else if (compareDifyVersions(difyVersion, PRESET_OAUTH_CLIENT_DIFY_VERSION) < 0) {
        warnings.push(
            `${CONFIG_NAMESPACE}:difyVersion is ${difyVersion}: Dify before ${PRESET_OAUTH_CLIENT_DIFY_VERSION} cannot use a preset OAuth client, so the MCP server must offer dynamic client registration; use ${PRESET_OAUTH_CLIENT_DIFY_VERSION} or later for Alibaba's Custom OAuth.`,
        );
    }
    // Only a pinned release is verified on the instance (rules/dify-releases.ts); another one needs the opt-out.
    const allowUnpinnedDifyVersion = r.boolean("allowUnpinnedDifyVersion", d.allowUnpinnedDifyVersion);
    // (A version refused above gets no second problem.)
    if (isDifyReleaseTag(difyVersion) && compareDifyVersions(difyVersion, MIN_DIFY_VERSION) >= 0 && difyReleasePin(difyVersion) === undefined) {
        if (!allowUnpinnedDifyVersion) {
            r.problem(
                "difyVersion",
                `is "${difyVersion}", which the stack has no pinned digest for, so the bootstrap could not verify the release it fetches; allowed: ${PINNED_DIFY_VERSIONS.join(", ")} (rules/dify-releases.ts), or set ${r.key("allowUnpinnedDifyVersion")} to true to deploy it unverified`,
            );
        } else {
            warnings.push(
                `${CONFIG_NAMESPACE}:difyVersion is ${difyVersion}, which the stack has no pinned digest for (pinned: ${PINNED_DIFY_VERSIONS.join(", ")}); with ${r.key("allowUnpinnedDifyVersion")} the bootstrap runs the release it fetches from GitHub, Gitee or the tarball without verifying it.`,
            );
        }
    }

    const domain = r.string("domain")?.toLowerCase();
    const certEmail = r.string("certEmail");
    if (domain !== undefined && !DOMAIN_PATTERN.test(domain)) {
        r.problem("domain", `is "${domain}"; allowed: a DNS name such as dify.example.com that points at the stack's ${ha ? "ALB" : "EIP"}`);
    }
    // Let's Encrypt is single's; with ha the ALB serves certificateId and certEmail is ignored.
    if (!ha && domain !== undefined && certEmail === undefined) {
        r.problem("certEmail", `is not set but domain is; allowed: the e-mail address Let's Encrypt sends certificate notices to`);
    }
    if (!ha && certEmail !== undefined && !isEmailAddress(certEmail)) {
        r.problem("certEmail", `is ${JSON.stringify(certEmail)}; allowed: ${EMAIL_RULE}`);
    }
    // HTTPS by default, with or without a domain; plain HTTP only when asked for, and never for a domain.
    const plainHttp = r.boolean("plainHttp", d.plainHttp);
    if (plainHttp && ha) {
        r.problem(
            "plainHttp",
            `is true but ${r.key("topology")} is ha, where the ALB terminates HTTPS on 443 with certificateId (port 80 only redirects to https), and the app nodes have no public address to serve plain HTTP on; allowed with topology ha: false (the default)`,
        );
    } else if (plainHttp && domain !== undefined) {
        r.problem("plainHttp", `is true but ${r.key("domain")} is set, and a domain is always served over HTTPS; allowed: plainHttp false (the default), or no domain`);
    } else if (plainHttp) {
        warnings.push(
            `${r.key("plainHttp")} is true: Dify is served on http://<EIP> without TLS, so these cross the network in clear text: ` +
                "the INIT_PASSWORD (when the stack creates the first admin), the admin password at every sign-in, the session cookies " +
                "of every request, the DashScope API key as the stack sets it in Dify, and the OAuth authorization code Alibaba Cloud " +
                `sends to the callback. Leave ${r.key("plainHttp")} unset for HTTPS with a Let's Encrypt certificate for the EIP.`,
        );
    }
    // Let's Encrypt checks each issuance and renewal from its own, unpublished addresses over port 80.
    if (!ha && !plainHttp && allowedCidrs.length > 0 && !allowedCidrs.includes("0.0.0.0/0")) {
        warnings.push(
            `${r.key("allowedCidrs")} does not include 0.0.0.0/0, but Let's Encrypt validates every certificate (first issuance and each renewal) ` +
                "by fetching http://<name>/.well-known/acme-challenge/ from its own addresses, which it does not publish: unless they are " +
                "inside allowedCidrs, the bootstrap cannot get a certificate and fails at \"requesting a certificate\". Port 80 only redirects to " +
                "https and answers that challenge.",
        );
    }

    // Mirrors end up in daemon.json, Dify's .env (which Compose interpolates: no "$") and shell variables.
    const urlRule = `without credentials, query or fragment, and without ${SPECIAL_CHARACTERS_TEXT}`;
    const registryMirrors = r.stringList("registryMirrors", [...d.registryMirrors]);
    registryMirrors.forEach((mirror, index) => {
        const problem = httpsUrlProblem(mirror);
        if (problem !== undefined) {
            r.problem("registryMirrors", `contains ${shownUrl(mirror)}, which ${problem}; allowed: https URLs of Docker Hub mirrors such as https://xxxx.mirror.aliyuncs.com, ${urlRule}`);
        } else if (registryMirrors.indexOf(mirror) !== index) {
            r.problem("registryMirrors", `contains ${shownUrl(mirror)} twice; allowed: each mirror once`);
        }
    });
    // Where the images come from: the mirror by default in mainland regions (and whenever mirrors are given; an
    // empty list, Pulumi.yaml's declared default, counts as unset), Docker Hub elsewhere, or an ACR instance.
    const mirrorsGiven = registryMirrors.length > 0;
    const mainland = region !== undefined && isMainlandChinaRegion(region);
    const imageSource = r.oneOf("imageSource", IMAGE_SOURCES, mirrorsGiven || mainland ? "registry-mirror" : "docker-hub");
    if (mirrorsGiven && imageSource !== "registry-mirror") {
        r.problem(
            "registryMirrors",
            `is set but ${r.key("imageSource")} is ${imageSource}, which ${imageSource === "acr" ? "pulls the images from the ACR instance" : "pulls from Docker Hub directly"}; allowed: registryMirrors unset, or imageSource registry-mirror`,
        );
    }
    const acrInstanceId = r.string("acrInstanceId");
    if (acrInstanceId !== undefined && !ACR_INSTANCE_ID_PATTERN.test(acrInstanceId)) {
        r.problem("acrInstanceId", `is ${JSON.stringify(acrInstanceId)}; allowed: ${ACR_INSTANCE_ID_RULE}`);
    } else if (acrInstanceId !== undefined && imageSource !== "acr") {
        r.problem("acrInstanceId", `is set but ${r.key("imageSource")} is ${imageSource}; allowed: unset, or imageSource acr`);
    }
    if (imageSource === "acr") {
        if (acrInstanceId === undefined) {
            r.problem(
                "acrInstanceId",
                `is not set but ${r.key("imageSource")} is acr; allowed: ${ACR_INSTANCE_ID_RULE} (the stack does not buy one: Enterprise Edition is prepaid only)`,
            );
        }
        const versionAccepted = isDifyReleaseTag(difyVersion) && compareDifyVersions(difyVersion, MIN_DIFY_VERSION) >= 0;
        if (versionAccepted && difyImages(difyVersion) === undefined) {
            r.problem(
                "difyVersion",
                `is "${difyVersion}", whose images the stack does not list, and ${r.key("imageSource")} is acr, which copies exactly those images; allowed with acr: ${DIFY_IMAGE_VERSIONS.join(", ")} (rules/dify-images.ts), or imageSource registry-mirror or docker-hub`,
            );
        }
    }
    const effectiveMirrors = imageSource !== "registry-mirror" ? [] : mirrorsGiven ? registryMirrors : [...DEFAULT_REGISTRY_MIRRORS];

    const pipMirrorUrl =
        r.string("pipMirrorUrl") ?? (mainland ? "https://mirrors.aliyun.com/pypi/simple" : undefined);
    const pipProblem = pipMirrorUrl === undefined ? undefined : httpsUrlProblem(pipMirrorUrl);
    if (pipMirrorUrl !== undefined && pipProblem !== undefined) {
        r.problem("pipMirrorUrl", `is ${shownUrl(pipMirrorUrl)}, which ${pipProblem}; allowed: an https URL of a PyPI simple index such as https://mirrors.aliyun.com/pypi/simple/, ${urlRule}`);
    }

    const readinessTimeoutMinutes = r.integer("readinessTimeoutMinutes", d.readinessTimeoutMinutes, 5, 180);

    // Tags: Alibaba Cloud's rules, at most 20 on a resource counting the stack's own, which they may not replace.
    const tagMap = new Map<string, string>();
    for (const entry of r.stringList("tags", [])) {
        const eq = entry.indexOf("=");
        if (eq <= 0) {
            r.problem("tags", `contains ${JSON.stringify(entry)}; allowed: "key=value" strings`);
            continue;
        }
        const key = entry.slice(0, eq);
        const value = entry.slice(eq + 1);
        const problem = tagProblem(key, value);
        if (problem !== undefined) {
            r.problem("tags", `contains ${JSON.stringify(entry)}, which ${problem}; allowed: ${TAG_RULE}, with a key other than the stack's own (${STACK_TAG_KEYS.join(", ")})`);
        } else if (tagMap.has(key)) {
            r.problem("tags", `sets the key "${key}" twice; allowed: each key once`);
        } else {
            tagMap.set(key, value);
        }
    }
    const tags: Record<string, string> = Object.fromEntries(tagMap);
    if (tagMap.size > MAX_USER_TAGS) {
        r.problem(
            "tags",
            `has ${tagMap.size} tags; allowed: at most ${MAX_USER_TAGS} (Alibaba Cloud allows ${MAX_TAGS_PER_RESOURCE} on a resource, and the stack sets ${STACK_TAG_KEYS.length} itself: ${STACK_TAG_KEYS.join(", ")})`,
        );
    }

    const haSettings = readHaSettings(r, warnings, { topology, region, domain, adminCidr });
    if (ha) {
        // Single's placement and certificate settings: the nodes go in haZoneIds, the ALB serves certificateId.
        if (r.string("zoneId") !== undefined) {
            warnings.push(
                `${r.key("zoneId")} is set but ${r.key("topology")} is ha, which ignores it: the nodes, the ALB and the databases go in the two zones of ${r.key("haZoneIds")} (unset: the first two zones that offer the instance type).`,
            );
        }
        if (certEmail !== undefined) {
            warnings.push(
                `${r.key("certEmail")} is set but ${r.key("topology")} is ha, which ignores it: the ALB serves the certificate ${r.key("certificateId")}, and no Let's Encrypt certificate is requested.`,
            );
        }
    }

    if (r.problems.length > 0) {
        throw new StackConfigError(r.problems);
    }
    return {
        warnings,
        settings: {
            region: region as string,
            namePrefix,
            zoneId: ha ? undefined : r.string("zoneId"),
            instanceType,
            instanceTypePreferences,
            cpuArchitecture,
            imageFamily,
            imageId,
            instanceChargeType,
            systemDiskCategory,
            systemDiskSize,
            dataDiskCategory,
            dataDiskSize,
            dataDiskSnapshotRetentionDays,
            protectDataDisk,
            encryptDataDisk,
            dataDiskKmsKeyId,
            requireMetadataTokens,
            eipBandwidthMbps,
            vpcCidr,
            vswitchCidr,
            allowedCidrs,
            adminCidr,
            sshPublicKey,
            difyVersion,
            allowUnpinnedDifyVersion,
            domain,
            certEmail: ha ? undefined : certEmail,
            plainHttp,
            imageSource,
            acrInstanceId,
            registryMirrors: effectiveMirrors,
            pipMirrorUrl,
            readinessTimeoutMinutes,
            tags,
            topology,
            ...(haSettings !== undefined ? { ha: haSettings } : {}),
        },
    };
}

/**
 * The public base URL of the Dify console: https://<domain> with a domain, otherwise https://<EIP> (a Let's
 * Encrypt IP certificate), or http://<EIP> with the `plainHttp` opt-out.
 */
export function difyPublicUrl(address: string, settings: Pick<StackSettings, "domain" | "plainHttp">): string {
    if (settings.domain) {
        return `https://${settings.domain}`;
    }
    return settings.plainHttp ? `http://${address}` : `https://${address}`;
}

