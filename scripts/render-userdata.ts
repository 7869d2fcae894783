/**
 * Prints the exact cloud-init user data a stack's config produces, before anything is deployed, and only that on
 * stdout (warnings and errors go to stderr):
 *   ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] [--image-registry <host>] > user-data.yaml
 * (the script builds dist/ when it is stale, then runs this file; `npm run --silent render:userdata -- …` is the same).
 * Values that exist only after deployment (the EIP address, the data disk id, the Pulumi-generated
 * INIT_PASSWORD) are shown as placeholders unless given. With imageSource acr the registry's address comes from
 * the ACR instance's name, which only a cloud lookup knows: a placeholder host (said so on stderr) unless
 * `--image-registry` gives it.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { CONFIG_NAMESPACE, StackConfigError, difyPublicUrl, parseStackSettings } from "../config/stack-config";
import { renderUserData } from "../components/bootstrap/userdata";
import { releaseVerification } from "../rules/dify-releases";
import { REGISTRY_HOST_PATTERN, acrVpcRegistryHost } from "../rules/image-source";

const projectRoot = path.resolve(__dirname, "..", "..");

export const PLACEHOLDER_ADDRESS = "EIP-ADDRESS";
export const PLACEHOLDER_DISK_ID = "d-DATA-DISK-ID";
export const PLACEHOLDER_INIT_PASSWORD = "GENERATED-AT-DEPLOY";
/** Stands for the ACR instance's name in the placeholder registry host of imageSource acr. */
export const PLACEHOLDER_ACR_INSTANCE_NAME = "ACR-INSTANCE-NAME";

interface Options {
    stack: string;
    publicIp?: string;
    dataDiskId?: string;
    imageRegistry?: string;
    root: string;
}

const USAGE =
    "usage: ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] [--image-registry <host>] > user-data.yaml";

function parseArgs(argv: string[]): Options {
    const options: Options = { stack: "", root: process.env.DIFY_STACK_PROJECT_DIR ?? projectRoot };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "--public-ip" || arg === "--data-disk-id" || arg === "--image-registry") {
            const value = argv[++i];
            if (value === undefined || value.startsWith("--")) {
                throw new Error(`${arg} needs a value; ${USAGE}`);
            }
            if (arg === "--public-ip") {
                options.publicIp = value;
            } else if (arg === "--data-disk-id") {
                options.dataDiskId = value;
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

export function renderForStack(options: Options): string {
    const values = readStackConfig(options.root, options.stack);
    const { settings, warnings } = parseStackSettings(
        { get: (key) => values.get(`${CONFIG_NAMESPACE}:${key}`) },
        { stack: options.stack, region: values.get("alicloud:region") ?? process.env.ALICLOUD_REGION },
    );
    for (const warning of warnings) {
        process.stderr.write(`warning: ${warning}\n`);
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

if (require.main === module) {
    try {
        process.stdout.write(renderForStack(parseArgs(process.argv.slice(2))));
    } catch (error) {
        const message = error instanceof StackConfigError || error instanceof Error ? error.message : String(error);
        process.stderr.write(`${message}\n`);
        process.exit(1);
    }
}
