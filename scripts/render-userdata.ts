/**
 * Prints the exact cloud-init user data a stack's config produces, before anything is deployed, and only that on
 * stdout (warnings, notes and errors go to stderr):
 *   ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] [--image-registry <host>] > user-data.yaml
 *   ./scripts/render-userdata.sh <stack> --role app|singleton [--image-registry <host>] > user-data.yaml   (topology ha)
 * (the script builds dist/ when it is stale, then runs this file; `npm run --silent render:userdata -- …` is the same).
 *
 * Topology single: the one host's user data. Values that exist only after deployment (the EIP address, the data
 * disk id, the Pulumi-generated INIT_PASSWORD) are shown as placeholders unless given.
 *
 * Topology ha: the user data of one of its two roles, which `--role` must name (app: the nodes behind the ALB;
 * singleton: the one node with the plugin daemon, worker_beat and the migrations), built as DifyAppTier builds its
 * bootstrap (publicUrl https://<domain>, no data disk; `--public-ip` and `--data-disk-id` are refused). What
 * DifyDataTier and DifyHa create at deployment is a placeholder of the shape the renderer checks, named on stderr:
 * the RDS and Redis hosts, the OSS bucket's random suffix, the RAM AccessKey id, and every password, key and secret
 * (INIT_PASSWORD included). What the config decides is real: the plugin daemon URL (from namePrefix), the OSS
 * region and internal endpoint (from the region), the database names, the username and the default ports. The
 * settings digest in it is therefore not the deployed one.
 *
 * With imageSource acr the registry's address comes from the ACR instance's name, which only a cloud lookup knows:
 * a placeholder host (said so on stderr) unless `--image-registry` gives it.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { CONFIG_NAMESPACE, StackConfigError, StackSettings, difyPublicUrl, parseStackSettings } from "../config/stack-config";
import { BootstrapSettings, HA_SECRET_SETTINGS, renderUserData } from "../components/bootstrap/userdata";
import { ExternalServices } from "../components/bootstrap/external-services";
// Types only here: the ha tiers' modules load @pulumi/alicloud (about a second), which only topology ha needs
// (haTiers loads them then), so rendering a single stack stays as quick as it was.
import type * as AppTier from "../components/ha/app-tier";
import type * as DataTier from "../components/ha/data-tier";
import { releaseVerification } from "../rules/dify-releases";
import { REGISTRY_HOST_PATTERN, acrVpcRegistryHost } from "../rules/image-source";

const projectRoot = path.resolve(__dirname, "..", "..");

export const PLACEHOLDER_ADDRESS = "EIP-ADDRESS";
export const PLACEHOLDER_DISK_ID = "d-DATA-DISK-ID";
export const PLACEHOLDER_INIT_PASSWORD = "GENERATED-AT-DEPLOY";
/** Stands for the ACR instance's name in the placeholder registry host of imageSource acr. */
export const PLACEHOLDER_ACR_INSTANCE_NAME = "ACR-INSTANCE-NAME";
/**
 * Topology ha: stand-ins for what DifyDataTier and DifyHa create at deployment, each of the shape the renderer
 * checks (userdata.ts). Every password, key and secret is PLACEHOLDER_INIT_PASSWORD ("GENERATED-AT-DEPLOY").
 */
export const PLACEHOLDER_DB_HOST = "RDS-PRIVATE-HOST";
export const PLACEHOLDER_REDIS_HOST = "REDIS-PRIVATE-HOST";
/** The bucket's random suffix (haBucketName): lowercase, as a bucket name must be. */
export const PLACEHOLDER_BUCKET_SUFFIX = "atdeploy";
/** The RAM AccessKey id: letters and digits only. */
export const PLACEHOLDER_ACCESS_KEY_ID = "CREATEDATDEPLOY";
/** The roles `--role` takes (topology ha). */
export const HA_ROLES = ["app", "singleton"] as const;
export type HaRole = (typeof HA_ROLES)[number];

interface Options {
    stack: string;
    publicIp?: string;
    dataDiskId?: string;
    imageRegistry?: string;
    role?: HaRole;
    root: string;
}

const USAGE =
    "usage: ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] [--image-registry <host>] > user-data.yaml\n" +
    "   or (topology ha): ./scripts/render-userdata.sh <stack> --role app|singleton [--image-registry <host>] > user-data.yaml";

function parseArgs(argv: string[]): Options {
    const options: Options = { stack: "", root: process.env.DIFY_STACK_PROJECT_DIR ?? projectRoot };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "--public-ip" || arg === "--data-disk-id" || arg === "--image-registry" || arg === "--role") {
            const value = argv[++i];
            if (value === undefined || value.startsWith("--")) {
                throw new Error(`${arg} needs a value; ${USAGE}`);
            }
            if (arg === "--public-ip") {
                options.publicIp = value;
            } else if (arg === "--data-disk-id") {
                options.dataDiskId = value;
            } else if (arg === "--role") {
                if (!(HA_ROLES as readonly string[]).includes(value)) {
                    throw new Error(`--role is ${JSON.stringify(value)}; allowed: ${HA_ROLES.join(" or ")} (the two roles of topology ha)`);
                }
                options.role = value as HaRole;
            } else if (!REGISTRY_HOST_PATTERN.test(value)) {
                throw new Error(
                    `--image-registry is ${JSON.stringify(value)}; allowed: a registry host without scheme or path, such as my-acr-registry-vpc.cn-hangzhou.cr.aliyuncs.com`,
                );
            } else {
                options.imageRegistry = value;
            }
        } else if (arg.startsWith("--")) {
            throw new Error(`unknown option ${arg}; ${USAGE}`);
        } else {
            options.stack = arg;
        }
    }
    if (!options.stack) {
        throw new Error(USAGE);
    }
    return options;
}

/** Reads Pulumi.<stack>.yaml's config the way `pulumi.Config.get` presents it: strings, objects as JSON. */
function readStackConfig(root: string, stack: string): Map<string, string> {
    const file = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new Error(`no stack file ${file}; create it with "pulumi stack init ${stack}" or copy Pulumi.dev.yaml`);
    }
    const parsed = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const values = new Map<string, string>();
    for (const [key, value] of Object.entries(parsed.config ?? {})) {
        if (value !== null && typeof value === "object" && "secure" in (value as object)) {
            continue; // encrypted values are not needed for the user data
        }
        values.set(key, typeof value === "string" ? value : JSON.stringify(value));
    }
    return values;
}

/** The ha tiers' modules, for their pure helpers and constants: loaded on first use (see the imports). */
function haTiers(): { appTier: typeof AppTier; dataTier: typeof DataTier } {
    return { appTier: require("../components/ha/app-tier"), dataTier: require("../components/ha/data-tier") };
}

/**
 * Topology ha: the external services of a node as DifyHa passes them to DifyAppTier (which adds the plugin daemon
 * URL), with placeholders for what DifyDataTier and DifyHa create at deployment and the real values the config
 * decides. Returns them with the note naming the placeholders.
 */
export function placeholderExternalServices(settings: StackSettings): { externalServices: ExternalServices; note: string } {
    const { appTier, dataTier } = haTiers();
    const { pluginDaemonUrl } = appTier;
    const { HA_DB_DEFAULT_PORT, HA_DB_NAME, HA_DB_USERNAME, HA_PLUGIN_DB_NAME, HA_REDIS_DEFAULT_PORT, haBucketName, ossInternalEndpoint } = dataTier;
    const secret = PLACEHOLDER_INIT_PASSWORD;
    const bucket = haBucketName(settings.namePrefix, PLACEHOLDER_BUCKET_SUFFIX);
    const externalServices: ExternalServices = {
        database: {
            host: PLACEHOLDER_DB_HOST,
            port: HA_DB_DEFAULT_PORT,
            username: HA_DB_USERNAME,
            password: secret,
            database: HA_DB_NAME,
            pluginDatabase: HA_PLUGIN_DB_NAME,
        },
        redis: { host: PLACEHOLDER_REDIS_HOST, port: HA_REDIS_DEFAULT_PORT, password: secret },
        storage: {
            bucket,
            region: settings.region,
            endpoint: ossInternalEndpoint(settings.region),
            accessKeyId: PLACEHOLDER_ACCESS_KEY_ID,
            accessKeySecret: secret,
        },
        secrets: { secretKey: secret, pluginDaemonKey: secret, pluginInnerApiKey: secret },
        pluginDaemonUrl: pluginDaemonUrl(settings.namePrefix),
    };
    const generated = ["DIFY_INIT_PASSWORD", ...HA_SECRET_SETTINGS.filter((key) => key !== "DIFY_OSS_ACCESS_KEY_ID")];
    const note =
        "values that exist only after deployment are placeholders: " +
        `DIFY_DB_HOST ${PLACEHOLDER_DB_HOST} (the RDS instance's private host), DIFY_REDIS_HOST ${PLACEHOLDER_REDIS_HOST}, ` +
        `DIFY_OSS_BUCKET ${bucket} ("${PLACEHOLDER_BUCKET_SUFFIX}" for the bucket's random suffix), DIFY_OSS_ACCESS_KEY_ID ${PLACEHOLDER_ACCESS_KEY_ID} (the RAM user's AccessKey), ` +
        `and ${PLACEHOLDER_INIT_PASSWORD} for ${generated.join(", ")}; DIFY_DB_PORT and DIFY_REDIS_PORT are the default ports ` +
        `(the instances' own once deployed), so DIFY_SETTINGS_DIGEST is not the deployed one`;
    return { externalServices, note };
}

export function renderForStack(options: Options): string {
    const values = readStackConfig(options.root, options.stack);
    const { settings, warnings } = parseStackSettings(
        { get: (key) => values.get(`${CONFIG_NAMESPACE}:${key}`) },
        { stack: options.stack, region: values.get("alicloud:region") ?? process.env.ALICLOUD_REGION },
    );
    for (const warning of warnings) {
        process.stderr.write(`warning: ${warning}\n`);
    }
    const ha = settings.topology === "ha";
    if (!ha && options.role !== undefined) {
        throw new Error(
            `--role applies to topology ha only; the stack's topology is ${settings.topology}, whose one host has no role: leave --role out`,
        );
    }
    if (ha) {
        if (options.role === undefined) {
            throw new Error(
                "the stack's topology is ha, whose nodes have one of two roles: give the one to render with --role app " +
                    "(the nodes behind the load balancer) or --role singleton (the one node with the plugin daemon, worker_beat and the migrations); " +
                    USAGE,
            );
        }
        if (options.publicIp !== undefined) {
            throw new Error(
                `--public-ip applies to topology single only; the stack's topology is ha, whose nodes have no public address (Dify's URL is https://<domain>)`,
            );
        }
        if (options.dataDiskId !== undefined) {
            throw new Error(
                `--data-disk-id applies to topology single only; the stack's topology is ha, whose nodes have no data disk (their state is in RDS, Redis and OSS)`,
            );
        }
    }
    let imageRegistry: string | undefined;
    if (settings.imageSource === "acr") {
        imageRegistry = options.imageRegistry ?? acrVpcRegistryHost(PLACEHOLDER_ACR_INSTANCE_NAME, settings.region);
        if (options.imageRegistry === undefined) {
            process.stderr.write(
                `note: imageSource is acr: DIFY_IMAGE_REGISTRY shows the placeholder ${imageRegistry}; the real host is the VPC endpoint of ` +
                    `${settings.acrInstanceId}, named after the instance, which a deployment looks up (give it with --image-registry <host>)\n`,
            );
        }
    } else if (options.imageRegistry !== undefined) {
        throw new Error(`--image-registry applies to imageSource acr only; the stack's imageSource is ${settings.imageSource}`);
    }
    if (ha) {
        return renderHaNode(settings, options.role!, imageRegistry);
    }
    return renderUserData({
        difyVersion: settings.difyVersion,
        publicUrl: difyPublicUrl(options.publicIp ?? PLACEHOLDER_ADDRESS, settings),
        initPassword: PLACEHOLDER_INIT_PASSWORD,
        dataDiskId: options.dataDiskId ?? PLACEHOLDER_DISK_ID,
        domain: settings.domain,
        certEmail: settings.certEmail,
        registryMirrors: settings.registryMirrors,
        pipMirrorUrl: settings.pipMirrorUrl,
        imageRegistry,
        // The release's pin from the one table, as DifyBootstrap adds it: the instance verifies what it fetches.
        ...releaseVerification(settings.difyVersion),
    });
}

/**
 * One node of topology ha, as DifyAppTier's bootstrapArgs and DifyBootstrap build it: served on https://<domain>
 * (publicAddress and domain are the stack's domain), no data disk, no certificate e-mail, the external services.
 */
function renderHaNode(settings: StackSettings, role: HaRole, imageRegistry: string | undefined): string {
    const domain = settings.domain;
    if (domain === undefined) {
        // parseStackSettings refuses topology ha without a domain; this only keeps the types honest.
        throw new Error(`${CONFIG_NAMESPACE}:domain is not set but ${CONFIG_NAMESPACE}:topology is ha`);
    }
    const { externalServices, note } = placeholderExternalServices(settings);
    const bootstrap: BootstrapSettings = {
        role,
        difyVersion: settings.difyVersion,
        publicUrl: `https://${domain}`,
        initPassword: PLACEHOLDER_INIT_PASSWORD,
        domain,
        externalServices,
        registryMirrors: settings.registryMirrors,
        pipMirrorUrl: settings.pipMirrorUrl,
        imageRegistry,
        ...releaseVerification(settings.difyVersion),
    };
    const userData = renderUserData(bootstrap);
    process.stderr.write(`note: topology ha, role ${role}: ${note}\n`);
    return userData;
}

if (require.main === module) {
    try {
        process.stdout.write(renderForStack(parseArgs(process.argv.slice(2))));
    } catch (error) {
        const message = error instanceof StackConfigError || error instanceof Error ? error.message : String(error);
        process.stderr.write(`${message}\n`);
        process.exit(1);
    }
}
