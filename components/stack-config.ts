import { compareDifyVersions } from "../dynamic-providers/dify-version";

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
export const INSTANCE_CHARGE_TYPES: readonly InstanceChargeType[] = ["PostPaid", "PrePaid"];

export type DiskCategory = "cloud_essd" | "cloud_auto" | "cloud_essd_entry" | "cloud_efficiency" | "cloud_ssd";
export const DISK_CATEGORIES: readonly DiskCategory[] = [
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
    "cloud_efficiency",
    "cloud_ssd",
];

export type CpuArchitecture = "x86_64" | "arm64";
export const CPU_ARCHITECTURES: readonly CpuArchitecture[] = ["x86_64", "arm64"];

/** Public image families the bootstrap supports (the exact family names: shorter forms return no image). */
export const IMAGE_FAMILIES = {
    "acs:ubuntu_22_04_x64": "ubuntu",
    "acs:ubuntu_24_04_x64": "ubuntu",
    "acs:alibaba_cloud_linux_3_2104_lts_x64": "alinux",
} as const;
export type ImageFamily = keyof typeof IMAGE_FAMILIES;

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

export const MIN_DIFY_VERSION = "1.8.0";
/** The first release with the preset OAuth client that Alibaba's "Custom OAuth" MCP servers need. */
export const PRESET_OAUTH_CLIENT_DIFY_VERSION = "1.10.0";
export const MIN_VCPUS = 2;
export const MIN_MEMORY_GIB = 4;

export interface StackSettings {
    /** Alibaba Cloud region, e.g. cn-hangzhou. */
    region: string;
    /** Prefix of every cloud resource name. */
    namePrefix: string;
    zoneId?: string;
    instanceType?: string;
    instanceTypePreferences: string[];
    cpuArchitecture: CpuArchitecture;
    imageFamily: ImageFamily;
    /** A pinned image id; otherwise the newest image of `imageFamily` at first deploy, kept afterwards. */
    imageId?: string;
    instanceChargeType: InstanceChargeType;
    systemDiskCategory: DiskCategory;
    systemDiskSize: number;
    dataDiskCategory: DiskCategory;
    dataDiskSize: number;
    /** Days to keep automatic snapshots of the data disk; unset means no snapshot policy. */
    dataDiskSnapshotRetentionDays?: number;
    /** Protects the data disk from `pulumi destroy` (Pulumi `protect`). */
    protectDataDisk: boolean;
    eipBandwidthMbps: number;
    vpcCidr: string;
    vswitchCidr: string;
    allowedCidrs: string[];
    adminCidr?: string;
    sshPublicKey?: string;
    difyVersion: string;
    domain?: string;
    certEmail?: string;
    registryMirrors: string[];
    pipMirrorUrl?: string;
    readinessTimeoutMinutes: number;
    tags: Record<string, string>;
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
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const NAME_PREFIX_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
const INSTANCE_TYPE_PATTERN = /^ecs\.[a-z0-9-]+\.[a-z0-9]+$/;

/** True for a Dify release tag as the bootstrap fetches it: "1.14.1", "1.10.1-fix.1" (no "v"). */
export function isDifyReleaseTag(tag: string): boolean {
    return DIFY_TAG_PATTERN.test(tag);
}

/** True for a well-formed IPv4 CIDR such as 203.0.113.0/24. */
export function isIpv4Cidr(value: string): boolean {
    const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
    if (!match) {
        return false;
    }
    const octets = match.slice(1, 5).map(Number);
    const prefix = Number(match[5]);
    return octets.every((o) => o <= 255) && prefix <= 32;
}

/** Mainland China regions, where Docker Hub and PyPI need mirrors (Hong Kong is outside the firewall). */
export function isMainlandChinaRegion(region: string): boolean {
    return region.startsWith("cn-") && region !== "cn-hongkong";
}

/**
 * vCPU count and memory (GiB) of an instance type, read from its name for the families whose naming is regular;
 * undefined for others (the deploy-time lookup checks those).
 */
export function instanceTypeSizeFromName(instanceType: string): { vcpus: number; memoryGib: number } | undefined {
    const match = /^ecs\.([a-z0-9-]+)\.(small|medium|large|xlarge|(\d+)xlarge)$/.exec(instanceType);
    if (!match) {
        return undefined;
    }
    const [, family, size, multiple] = match;
    const vcpus =
        size === "small" ? 1 : size === "medium" ? 1 : size === "large" ? 2 : size === "xlarge" ? 4 : 4 * Number(multiple);
    // Memory per vCPU: "c1m2" style names say it; otherwise the family letter does (c: 2, g: 4, r: 8 GiB).
    const ratio = /c1m(\d+)/.exec(family);
    let memoryPerVcpu: number | undefined;
    if (ratio) {
        memoryPerVcpu = Number(ratio[1]);
    } else if (/^c\d/.test(family)) {
        memoryPerVcpu = 2;
    } else if (/^g\d/.test(family)) {
        memoryPerVcpu = 4;
    } else if (/^r\d/.test(family)) {
        memoryPerVcpu = 8;
    }
    if (memoryPerVcpu === undefined || size === "small") {
        return undefined;
    }
    return { vcpus, memoryGib: vcpus * memoryPerVcpu };
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

/** The defaults, also declared in Pulumi.yaml's `config:` block (a test keeps the two equal). */
export const CONFIG_DEFAULTS = {
    cpuArchitecture: "x86_64",
    imageFamily: "acs:ubuntu_22_04_x64",
    instanceChargeType: "PostPaid",
    systemDiskCategory: "cloud_essd",
    systemDiskSize: 60,
    dataDiskCategory: "cloud_essd",
    dataDiskSize: 100,
    protectDataDisk: false,
    eipBandwidthMbps: 100,
    vpcCidr: "172.16.0.0/16",
    vswitchCidr: "172.16.0.0/24",
    allowedCidrs: ["0.0.0.0/0"],
    difyVersion: "1.14.1",
    registryMirrors: [] as string[],
    readinessTimeoutMinutes: 45,
} as const;

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

    const cpuArchitecture = r.oneOf("cpuArchitecture", CPU_ARCHITECTURES, d.cpuArchitecture);
    const instanceType = r.string("instanceType");
    if (instanceType !== undefined) {
        if (!INSTANCE_TYPE_PATTERN.test(instanceType)) {
            r.problem("instanceType", `is "${instanceType}"; allowed: an ECS instance type such as ecs.c7.large`);
        } else {
            const size = instanceTypeSizeFromName(instanceType);
            if (size && (size.vcpus < MIN_VCPUS || size.memoryGib < MIN_MEMORY_GIB)) {
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
        if (!INSTANCE_TYPE_PATTERN.test(preferred) || (size && (size.vcpus < MIN_VCPUS || size.memoryGib < MIN_MEMORY_GIB))) {
            r.problem("instanceTypePreferences", `contains "${preferred}"; allowed: ECS instance types of at least 2 vCPU and 4 GiB`);
        }
    }

    const imageFamily = r.oneOf("imageFamily", Object.keys(IMAGE_FAMILIES) as ImageFamily[], d.imageFamily);
    const imageId = r.string("imageId");
    const instanceChargeType = r.oneOf("instanceChargeType", INSTANCE_CHARGE_TYPES, d.instanceChargeType);
    const systemDiskCategory = r.oneOf("systemDiskCategory", DISK_CATEGORIES, d.systemDiskCategory);
    const systemDiskSize = r.integer("systemDiskSize", d.systemDiskSize, 40, 500);
    const dataDiskCategory = r.oneOf("dataDiskCategory", DISK_CATEGORIES, d.dataDiskCategory);
    const dataDiskSize = r.integer("dataDiskSize", d.dataDiskSize, 20, 32768);
    // 0 (the declared default) means no snapshot policy.
    const snapshotRetention = r.integer("dataDiskSnapshotRetentionDays", 0, 0, 65536);
    const dataDiskSnapshotRetentionDays = snapshotRetention > 0 ? snapshotRetention : undefined;
    const protectDataDisk = r.boolean("protectDataDisk", d.protectDataDisk);
    const eipBandwidthMbps = r.integer("eipBandwidthMbps", d.eipBandwidthMbps, 1, 200);

    const vpcCidr = r.string("vpcCidr", d.vpcCidr);
    const vswitchCidr = r.string("vswitchCidr", d.vswitchCidr);
    for (const [key, value] of [["vpcCidr", vpcCidr], ["vswitchCidr", vswitchCidr]] as const) {
        if (!isIpv4Cidr(value)) {
            r.problem(key, `is "${value}"; allowed: an IPv4 CIDR block such as 172.16.0.0/16`);
        }
    }

    const allowedCidrs = r.stringList("allowedCidrs", [...d.allowedCidrs]);
    if (allowedCidrs.length === 0) {
        r.problem("allowedCidrs", "is empty; allowed: one or more IPv4 CIDR blocks (default 0.0.0.0/0) that may reach Dify on 80/443");
    }
    for (const cidr of allowedCidrs) {
        if (!isIpv4Cidr(cidr)) {
            r.problem("allowedCidrs", `contains "${cidr}"; allowed: IPv4 CIDR blocks such as 203.0.113.0/24`);
        }
    }
    const adminCidr = r.string("adminCidr");
    if (adminCidr !== undefined) {
        if (!isIpv4Cidr(adminCidr)) {
            r.problem("adminCidr", `is "${adminCidr}"; allowed: an IPv4 CIDR block such as 203.0.113.7/32`);
        } else if (adminCidr.endsWith("/0")) {
            r.problem("adminCidr", `is "${adminCidr}", which opens SSH to the whole internet; allowed: your own address range, e.g. 203.0.113.7/32`);
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

    const domain = r.string("domain")?.toLowerCase();
    const certEmail = r.string("certEmail");
    if (domain !== undefined && !DOMAIN_PATTERN.test(domain)) {
        r.problem("domain", `is "${domain}"; allowed: a DNS name such as dify.example.com that points at the stack's EIP`);
    }
    if (domain !== undefined && certEmail === undefined) {
        r.problem("certEmail", `is not set but domain is; allowed: the e-mail address Let's Encrypt sends certificate notices to`);
    }
    if (certEmail !== undefined && !EMAIL_PATTERN.test(certEmail)) {
        r.problem("certEmail", `is "${certEmail}"; allowed: an e-mail address`);
    }

    const registryMirrors = r.stringList("registryMirrors", [...d.registryMirrors]);
    for (const mirror of registryMirrors) {
        if (!/^https:\/\/[^\s"'\\]+$/.test(mirror)) {
            r.problem("registryMirrors", `contains "${mirror}"; allowed: https:// URLs of Docker Hub mirrors`);
        }
    }
    const pipMirrorUrl =
        r.string("pipMirrorUrl") ?? (region && isMainlandChinaRegion(region) ? "https://mirrors.aliyun.com/pypi/simple" : undefined);
    if (pipMirrorUrl !== undefined && !/^https?:\/\/[^\s"'\\]+$/.test(pipMirrorUrl)) {
        r.problem("pipMirrorUrl", `is "${pipMirrorUrl}"; allowed: an http(s) URL of a PyPI simple index`);
    }

    const readinessTimeoutMinutes = r.integer("readinessTimeoutMinutes", d.readinessTimeoutMinutes, 5, 180);

    const tags: Record<string, string> = {};
    for (const entry of r.stringList("tags", [])) {
        const eq = entry.indexOf("=");
        if (eq <= 0) {
            r.problem("tags", `contains "${entry}"; allowed: "key=value" strings`);
            continue;
        }
        tags[entry.slice(0, eq)] = entry.slice(eq + 1);
    }

    if (r.problems.length > 0) {
        throw new StackConfigError(r.problems);
    }
    return {
        warnings,
        settings: {
            region: region as string,
            namePrefix,
            zoneId: r.string("zoneId"),
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
            eipBandwidthMbps,
            vpcCidr,
            vswitchCidr,
            allowedCidrs,
            adminCidr,
            sshPublicKey,
            difyVersion,
            domain,
            certEmail,
            registryMirrors,
            pipMirrorUrl,
            readinessTimeoutMinutes,
            tags,
        },
    };
}

/** The public base URL of the Dify console: https with a domain, otherwise http on the EIP. */
export function difyPublicUrl(address: string, domain?: string): string {
    return domain ? `https://${domain}` : `http://${address}`;
}

/** The redirect URI Dify uses for MCP OAuth; the RAM OAuth app must register exactly this. */
export function mcpOAuthCallbackUrl(publicUrl: string): string {
    return `${publicUrl}/console/api/mcp/oauth/callback`;
}
