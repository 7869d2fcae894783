/**
 * Prints the exact cloud-init user data a stack's config produces, before anything is deployed, and only that on
 * stdout (warnings and errors go to stderr):
 *   ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] > user-data.yaml
 * (the script builds dist/ when it is stale, then runs this file; `npm run --silent render:userdata -- …` is the same).
 * Values that exist only after deployment (the EIP address, the data disk id, the Pulumi-generated
 * INIT_PASSWORD) are shown as placeholders unless given.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { CONFIG_NAMESPACE, StackConfigError, difyPublicUrl, parseStackSettings } from "../config/stack-config";
import { renderUserData } from "../components/bootstrap/userdata";

const projectRoot = path.resolve(__dirname, "..", "..");

export const PLACEHOLDER_ADDRESS = "EIP-ADDRESS";
export const PLACEHOLDER_DISK_ID = "d-DATA-DISK-ID";
export const PLACEHOLDER_INIT_PASSWORD = "GENERATED-AT-DEPLOY";

interface Options {
    stack: string;
    publicIp?: string;
    dataDiskId?: string;
    root: string;
}

const USAGE = "usage: ./scripts/render-userdata.sh <stack> [--public-ip <address>] [--data-disk-id <d-…>] > user-data.yaml";

function parseArgs(argv: string[]): Options {
    const options: Options = { stack: "", root: process.env.DIFY_STACK_PROJECT_DIR ?? projectRoot };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "--public-ip" || arg === "--data-disk-id") {
            const value = argv[++i];
            if (value === undefined || value.startsWith("--")) {
                throw new Error(`${arg} needs a value; ${USAGE}`);
            }
            if (arg === "--public-ip") {
                options.publicIp = value;
            } else {
                options.dataDiskId = value;
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
    return renderUserData({
        difyVersion: settings.difyVersion,
        publicUrl: difyPublicUrl(options.publicIp ?? PLACEHOLDER_ADDRESS, settings.domain),
        initPassword: PLACEHOLDER_INIT_PASSWORD,
        dataDiskId: options.dataDiskId ?? PLACEHOLDER_DISK_ID,
        domain: settings.domain,
        certEmail: settings.certEmail,
        registryMirrors: settings.registryMirrors,
        pipMirrorUrl: settings.pipMirrorUrl,
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
