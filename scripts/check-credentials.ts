/**
 * Which Alibaba Cloud credentials a deployment will sign with, checked before anything is installed or deployed
 * (scripts/up.sh runs it right after the build, before the Pulumi CLI, plugins or any `pulumi` command):
 *   node dist/scripts/check-credentials.js [<stack>]        or   npm run --silent check:credentials -- <stack>
 *
 * Two providers sign Alibaba Cloud calls, and they look for credentials differently:
 *   - this project's dynamic providers (the RAM OAuth app and the OpenAPI MCP server) use `@alicloud/credentials`'
 *     default chain: environment, OIDC, aliyun CLI profile, credentials file, ECS RAM role, credentials URI, with
 *     ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY before it when only those are set (dynamic-providers/alibaba/client.ts);
 *   - the `alicloud` provider (terraform-provider-alicloud's providerConfigure, v1.285) takes an access key from the
 *     stack config or the environment, an aliyun CLI profile only when one is named, then a credentials URI, an ECS
 *     RAM role only when its name is given, and OIDC only through the stack config `alicloud:assumeRoleWithOidc`.
 * For each it prints the source it will use (for access keys the key id's first 4 and last 2 characters, never a
 * secret). When either finds nothing it exits 1, listing where it looked, in order, and the ways to provide
 * credentials. Exit codes: 0 both found, 1 not, 2 usage.
 *
 * Nothing is exchanged over the network: OIDC, RAM-role, SSO and URI sources are reported as configured, not tried.
 * The one exception is the ECS instance metadata address, which the chain queries when nothing before it is found:
 * it is probed only when ALIBABA_CLOUD_ECS_METADATA_DISABLED is unset, and the report says that it was.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import {
    CLIProfileCredentialsProvider,
    CredentialsProvider,
    ECSRAMRoleCredentialsProvider,
    EnvironmentVariableCredentialsProvider,
    OIDCRoleArnCredentialsProvider,
    ProfileCredentialsProvider,
} from "@alicloud/credentials";
// The library's own readers, so that files are parsed exactly as the chain parses them.
import { getConfiguration } from "@alicloud/credentials/dist/src/providers/cli_profile";
import { loadIni } from "@alicloud/credentials/dist/src/util/utils";
import { PROJECT_ROOT } from "./project-root";

const METADATA_ADDRESS = "100.100.100.200";

/** An access key id as it may be shown: its first 4 and last 2 characters. */
export function maskKeyId(id: string): string {
    return id.length >= 8 ? `${id.slice(0, 4)}...${id.slice(-2)}` : "...";
}

/** Where one provider's credentials come from. */
export interface Resolution {
    /** The source it will use, e.g. `environment (ALIBABA_CLOUD_ACCESS_KEY_ID, …)`; undefined when none. */
    readonly source?: string;
    /** The access key id, masked, when it is known before any exchange. */
    readonly keyId?: string;
    /** What kind of source, for advice that fits it. */
    readonly kind?: "environment" | "oidc" | "cli-profile" | "credentials-file" | "ecs-role" | "uri" | "stack-config";
    /** The profile or role name, when the source has one. */
    readonly name?: string;
    /** Every place looked at before the source (or all of them), in order, with what was there. */
    readonly looked: readonly string[];
    /** Remarks to print whatever the outcome (the metadata probe, for one). */
    readonly notes: readonly string[];
}

function errorMessage(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

type Env = NodeJS.ProcessEnv;

/** How a provider built by a profile will get credentials: only static keys are read now, nothing is exchanged. */
async function describeProvider(inner: CredentialsProvider, label: string, sourceKeyId: string | undefined) {
    switch (inner.getProviderName()) {
        case "static_ak":
        case "static_sts":
            return { source: label, keyId: (await inner.getCredentials()).accessKeyId };
        case "ram_role_arn":
            return { source: `${label}: assumes a RAM role with it when the providers run`, keyId: sourceKeyId };
        case "ecs_ram_role":
            return { source: `${label}: an ECS RAM role, from instance metadata when the providers run` };
        default:
            return { source: `${label}: ${inner.getProviderName()}, exchanged when the providers run` };
    }
}

/**
 * The credential chain of this project's dynamic providers, in its order; stops at the first source that would
 * give credentials, as the chain does.
 */
export async function resolveDefaultChain(): Promise<Resolution> {
    const env = process.env; // the library reads process.env itself
    const looked: string[] = [];
    const notes: string[] = [];
    const result = (found: Omit<Resolution, "looked" | "notes">): Resolution => ({
        ...found,
        keyId: found.keyId ? maskKeyId(found.keyId) : undefined,
        looked,
        notes,
    });

    // 0. dynamic-providers/alibaba/client.ts: the alicloud provider's variables when only those are set.
    if (!env.ALIBABA_CLOUD_ACCESS_KEY_ID && env.ALICLOUD_ACCESS_KEY && env.ALICLOUD_SECRET_KEY) {
        const names = ["ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", ...(env.ALICLOUD_SECURITY_TOKEN ? ["ALICLOUD_SECURITY_TOKEN"] : [])];
        return result({ kind: "environment", source: `environment (${names.join(", ")})`, keyId: env.ALICLOUD_ACCESS_KEY });
    }

    // 1. Environment.
    try {
        const credentials = await EnvironmentVariableCredentialsProvider.builder().build().getCredentials();
        const names = ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", ...(credentials.securityToken ? ["ALIBABA_CLOUD_SECURITY_TOKEN"] : [])];
        return result({ kind: "environment", source: `environment (${names.join(", ")})`, keyId: credentials.accessKeyId });
    } catch {
        const state = env.ALIBABA_CLOUD_ACCESS_KEY_ID
            ? "ALIBABA_CLOUD_ACCESS_KEY_ID is set, ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"
            : env.ALICLOUD_ACCESS_KEY || env.ALICLOUD_SECRET_KEY
              ? "only one of ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY is set"
              : "not set";
        looked.push(`environment ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY): ${state}`);
    }

    // 2. OIDC role (the token is exchanged with STS when the providers run; here only the token file is read).
    const oidcNames = ["ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"];
    let oidcConfigured = false;
    try {
        OIDCRoleArnCredentialsProvider.builder().build();
        oidcConfigured = true;
    } catch {
        const missing = oidcNames.filter((name) => !env[name]);
        looked.push(`OIDC (${oidcNames.join(", ")}): ${missing.length === oidcNames.length ? "not set" : `${missing.join(", ")} not set`}`);
    }
    if (oidcConfigured) {
        const tokenFile = env.ALIBABA_CLOUD_OIDC_TOKEN_FILE as string;
        try {
            fs.readFileSync(tokenFile);
            return result({
                kind: "oidc",
                source: `OIDC: role ${env.ALIBABA_CLOUD_ROLE_ARN}, token file ${tokenFile} (exchanged with STS when the providers run)`,
            });
        } catch (err) {
            looked.push(`OIDC: the token file ${tokenFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
        }
    }

    // 3. aliyun CLI profile: ALIBABA_CLOUD_PROFILE, else the file's "current".
    const cliFile = path.join(os.homedir(), ".aliyun", "config.json");
    if ((env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED ?? "").toLowerCase() === "true") {
        looked.push("aliyun CLI profile: disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true");
    } else if (!fs.existsSync(cliFile)) {
        looked.push(`aliyun CLI profile in ${cliFile}: no such file`);
    } else {
        let name: string | undefined;
        try {
            const configuration = await getConfiguration(cliFile);
            name = env.ALIBABA_CLOUD_PROFILE || configuration.current;
            if (!name) {
                throw new Error('no profile named (ALIBABA_CLOUD_PROFILE is not set and the file has no "current")');
            }
            // The chain's own construction of the profile's provider (it validates the fields; no request is made).
            // Private in the typings, stable in 2.4.x; the tests exercise it.
            const cli = CLIProfileCredentialsProvider.builder().build() as unknown as {
                getCredentialsProvider(conf: unknown, profileName: string): CredentialsProvider;
            };
            const inner = cli.getCredentialsProvider(configuration, name);
            const profile = configuration.profiles.find((p) => p.name === name);
            const found = await describeProvider(inner, `aliyun CLI profile "${name}" in ${cliFile} (mode ${profile?.mode})`, profile?.access_key_id);
            return result({ kind: "cli-profile", name, ...found });
        } catch (err) {
            looked.push(`aliyun CLI profile${name ? ` "${name}"` : ""} in ${cliFile}: ${errorMessage(err)}`);
        }
    }

    // 4. Credentials file (INI): ALIBABA_CLOUD_CREDENTIALS_FILE or ~/.alibabacloud/credentials, profile
    //    ALIBABA_CLOUD_PROFILE or "default".
    const iniFile = env.ALIBABA_CLOUD_CREDENTIALS_FILE || path.join(os.homedir(), ".alibabacloud", "credentials");
    const iniProfile = env.ALIBABA_CLOUD_PROFILE || "default";
    if (!fs.existsSync(iniFile)) {
        looked.push(`credentials file ${iniFile}: no such file`);
    } else {
        try {
            const ini = (await loadIni(iniFile)) as Record<string, Record<string, string> | undefined>;
            const inner = ProfileCredentialsProvider.builder().build().getCredentialsProvider(ini);
            const section = ini[iniProfile] ?? {};
            const found = await describeProvider(inner, `credentials file ${iniFile}, profile [${iniProfile}] (type ${section.type})`, section.access_key_id);
            return result({ kind: "credentials-file", name: iniProfile, ...found });
        } catch (err) {
            looked.push(`credentials file ${iniFile}, profile [${iniProfile}]: ${errorMessage(err)}`);
        }
    }

    // 5. ECS RAM role from instance metadata: the only step that needs a request to know.
    const disabled = env.ALIBABA_CLOUD_ECS_METADATA_DISABLED;
    if (disabled !== undefined) {
        looked.push(
            disabled.toLowerCase() === "true"
                ? `ECS RAM role (instance metadata, ${METADATA_ADDRESS}): not probed, ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`
                : `ECS RAM role (instance metadata, ${METADATA_ADDRESS}): not probed because ALIBABA_CLOUD_ECS_METADATA_DISABLED is set ` +
                  `("${disabled}"); only "true" disables it for the providers, which will query it`,
        );
    } else {
        const role = env.ALIBABA_CLOUD_ECS_METADATA;
        try {
            const credentials = await ECSRAMRoleCredentialsProvider.builder()
                .withRoleName(role as string)
                .build()
                .getCredentials();
            notes.push(`probed the ECS instance metadata address ${METADATA_ADDRESS} for a RAM role: found one`);
            return result({ kind: "ecs-role", name: role, source: `ECS RAM role${role ? ` "${role}"` : ""} (instance metadata, probed now)`, keyId: credentials.accessKeyId });
        } catch (err) {
            looked.push(
                `ECS RAM role: probed the instance metadata address ${METADATA_ADDRESS}, no role (${errorMessage(err)}); ` +
                    "set ALIBABA_CLOUD_ECS_METADATA_DISABLED=true to skip the probe off ECS",
            );
        }
    }

    // 6. Credentials URI.
    if (env.ALIBABA_CLOUD_CREDENTIALS_URI) {
        let where = "(unparsable)";
        try {
            where = new URL(env.ALIBABA_CLOUD_CREDENTIALS_URI).origin;
        } catch {
            // shown as unparsable; the providers will fail on it too
        }
        return result({ kind: "uri", source: `credentials URI ${where} (ALIBABA_CLOUD_CREDENTIALS_URI, fetched when the providers run)` });
    }
    looked.push("credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI): not set");
    return result({});
}

/** A provider setting: the first of the stack config key and the environment variables that is set. */
interface Setting {
    readonly from: string;
    readonly value: string;
    /** A secret stack config value: set, but unreadable here. */
    readonly encrypted?: boolean;
}

function setting(config: Record<string, unknown>, key: string, envNames: readonly string[], env: Env): Setting | undefined {
    const raw = config[`alicloud:${key}`];
    if (raw !== null && typeof raw === "object" && "secure" in raw) {
        return { from: `alicloud:${key}`, value: "", encrypted: true };
    }
    if ((typeof raw === "string" && raw !== "") || typeof raw === "number") {
        return { from: `alicloud:${key}`, value: String(raw) };
    }
    const name = envNames.find((n) => env[n]);
    return name ? { from: name, value: env[name] as string } : undefined;
}

function expandHome(file: string, env: Env): string {
    return file === "~" || file.startsWith("~/") ? path.join(env.HOME ?? os.homedir(), file.slice(1)) : file;
}

/**
 * The `alicloud` provider's sources, in terraform-provider-alicloud's order (providerConfigure and
 * getConfigFromProfile): access key from the stack config or environment, else from a named aliyun CLI profile;
 * then the profile's own exchange (ChainableRamRoleArn, CloudSSO, External, OAuth); a credentials URI; a named
 * ECS RAM role; `alicloud:assumeRoleWithOidc`.
 */
export function resolveAlicloudProvider(config: Record<string, unknown>, env: Env = process.env): Resolution {
    const looked: string[] = [];
    const accessKey = setting(config, "accessKey", ["ALICLOUD_ACCESS_KEY", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABACLOUD_ACCESS_KEY_ID"], env);
    const secretKey = setting(config, "secretKey", ["ALICLOUD_SECRET_KEY", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABACLOUD_ACCESS_KEY_SECRET"], env);
    const securityToken = setting(config, "securityToken", ["ALICLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABACLOUD_SECURITY_TOKEN"], env);
    const profileName = setting(config, "profile", ["ALICLOUD_PROFILE", "ALIBABA_CLOUD_PROFILE"], env);
    const profileFileSetting = setting(config, "sharedCredentialsFile", ["ALICLOUD_SHARED_CREDENTIALS_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE"], env);
    const profileFile = expandHome(profileFileSetting?.value || path.join(env.HOME ?? os.homedir(), ".aliyun", "config.json"), env);

    // The named profile, as getConfigFromProfile reads it (a missing or unreadable file means no profile).
    let profile: Record<string, unknown> | undefined;
    let profileProblem = "none named";
    if (profileName) {
        profileProblem = `no profile "${profileName.value}" in ${profileFile}`;
        try {
            const parsed = JSON.parse(fs.readFileSync(profileFile, "utf8")) as { profiles?: Record<string, unknown>[] };
            profile = (parsed.profiles ?? []).find((p) => p.name === profileName.value);
        } catch (err) {
            profileProblem = `${profileFile} cannot be read as an aliyun CLI config.json (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`;
        }
    }
    const mode = typeof profile?.mode === "string" ? profile.mode : "";
    const profileLabel = `aliyun CLI profile "${profileName?.value}" in ${profileFile} (mode ${mode}, named by ${profileName?.from})`;
    const fromProfile = (key: string): Setting | undefined => {
        if (!profile || !mode || mode === "ChainableRamRoleArn") {
            return undefined;
        }
        const allowed =
            key === "access_key_id" || key === "access_key_secret"
                ? mode !== "EcsRamRole"
                : key === "ram_role_name"
                  ? mode === "EcsRamRole"
                  : key === "sts_token"
                    ? mode === "StsToken"
                    : mode === "RamRoleArn"; // ram_role_arn
        const value = profile[key];
        return allowed && typeof value === "string" && value !== "" ? { from: profileLabel, value } : undefined;
    };

    const id = accessKey ?? fromProfile("access_key_id");
    const secret = secretKey ?? fromProfile("access_key_secret");
    const roleArn = fromProfile("ram_role_arn");
    const assumeRole = config["alicloud:assumeRole"];
    const assumes = roleArn ? `, then assumes the RAM role ${roleArn.value}` : assumeRole ? ", then assumes the RAM role in alicloud:assumeRole" : "";
    if (id && secret) {
        const token = securityToken ?? fromProfile("sts_token");
        const parts = [id, secret, ...(token ? [token] : [])];
        const named = parts.filter((s) => s.from !== profileLabel).map((s) => s.from);
        const kind = id.from === profileLabel ? "cli-profile" : id.from.startsWith("alicloud:") ? "stack-config" : "environment";
        const source = parts.some((s) => s.from === profileLabel)
            ? `${profileLabel}${named.length > 0 ? ` with ${named.join(", ")}` : ""}`
            : `${kind === "stack-config" ? "stack config" : "environment"} (${named.join(", ")})`;
        return {
            kind,
            name: kind === "cli-profile" ? profileName?.value : undefined,
            source: `${source}${id.encrypted ? ", encrypted" : ""}${assumes}`,
            keyId: id.encrypted ? undefined : maskKeyId(id.value),
            looked,
            notes: [],
        };
    }
    looked.push(
        "access key: alicloud:accessKey/alicloud:secretKey, ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY, " +
            `ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET: ${id ? "no secret" : secret ? "no key id" : "not set"}`,
    );
    if (["ChainableRamRoleArn", "CloudSSO", "External", "OAuth"].includes(mode)) {
        return { kind: "cli-profile", name: profileName?.value, source: `${profileLabel}, exchanged when the provider runs`, looked, notes: [] };
    }
    looked.push(
        "aliyun CLI profile, read only when named (alicloud:profile, ALICLOUD_PROFILE, ALIBABA_CLOUD_PROFILE): " +
            (profile ? `profile "${profileName?.value}" (mode ${mode || "none"}) gives no credentials` : profileProblem),
    );

    const uri = setting(config, "credentialsUri", ["ALICLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_CREDENTIALS_URI"], env);
    if (uri) {
        return { kind: "uri", source: `credentials URI (${uri.from}, fetched when the provider runs)`, looked, notes: [] };
    }
    looked.push("credentials URI (alicloud:credentialsUri, ALICLOUD_CREDENTIALS_URI, ALIBABA_CLOUD_CREDENTIALS_URI): not set");

    const ecsRole = setting(config, "ecsRoleName", ["ALICLOUD_ECS_ROLE_NAME", "ALIBABA_CLOUD_ECS_METADATA"], env) ?? fromProfile("ram_role_name");
    if (ecsRole && !id) {
        return {
            kind: "ecs-role",
            name: ecsRole.value,
            source: `ECS RAM role "${ecsRole.value}" (${ecsRole.from}; from instance metadata when the provider runs)${assumes}`,
            looked,
            notes: [],
        };
    }
    looked.push(
        "ECS RAM role, used only when named (alicloud:ecsRoleName, ALICLOUD_ECS_ROLE_NAME, ALIBABA_CLOUD_ECS_METADATA): " +
            (ecsRole ? `"${ecsRole.value}" is ignored while an access key id is set without its secret` : "not set"),
    );

    if (config["alicloud:assumeRoleWithOidc"]) {
        return { kind: "oidc", source: "OIDC (stack config alicloud:assumeRoleWithOidc, exchanged with STS when the provider runs)", looked, notes: [] };
    }
    looked.push("OIDC, read only from the stack config alicloud:assumeRoleWithOidc (not from the OIDC variables alone): not set");
    return { looked, notes: [] };
}

const DYNAMIC = "OAuth app and MCP server providers (@alicloud/credentials default chain)";
const ALICLOUD = "alicloud provider (VPC, ECS, disks, EIP, ...)";

export const WAYS_TO_PROVIDE = [
    "environment: export ALIBABA_CLOUD_ACCESS_KEY_ID=<id> ALIBABA_CLOUD_ACCESS_KEY_SECRET=<secret> (plus ALIBABA_CLOUD_SECURITY_TOKEN=<token> for STS credentials)",
    "aliyun CLI profile: aliyun configure --profile <name>, then export ALIBABA_CLOUD_PROFILE=<name> (the alicloud provider reads a profile only when it is named)",
    "OIDC in CI: the GitOps workflows exchange GitHub's OIDC token for STS credentials and export them as the variables above; " +
        "elsewhere set ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE, and for the alicloud provider " +
        "the stack config alicloud:assumeRoleWithOidc (roleArn, oidcProviderArn, oidcTokenFile)",
    "ECS RAM role: on an ECS instance with a RAM role attached, export ALIBABA_CLOUD_ECS_METADATA=<role name>",
] as const;

/** Advice for the alicloud provider when the chain found something it does not read. */
function alicloudAdvice(chain: Resolution): string | undefined {
    switch (chain.kind) {
        case "cli-profile":
            return `export ALIBABA_CLOUD_PROFILE=${chain.name} so that the alicloud provider reads the profile the chain found`;
        case "ecs-role":
            return "export ALIBABA_CLOUD_ECS_METADATA=<the instance's RAM role name>: the alicloud provider uses an ECS RAM role only when named";
        case "credentials-file":
            return "the alicloud provider does not read the credentials file: use the environment or a named aliyun CLI profile";
        case "oidc":
            return "set the stack config alicloud:assumeRoleWithOidc: the alicloud provider does not read the OIDC variables alone";
        case "uri":
            return "export ALICLOUD_CREDENTIALS_URI or set alicloud:credentialsUri as well";
        default:
            return undefined;
    }
}

export interface Report {
    readonly ok: boolean;
    /** Lines for stdout (what was found). */
    readonly out: string[];
    /** Lines for stderr (what is missing and how to provide it). */
    readonly err: string[];
}

export function buildReport(stack: string | undefined, chain: Resolution, alicloud: Resolution): Report {
    const out: string[] = [];
    const err: string[] = [];
    for (const [who, resolution] of [[DYNAMIC, chain], [ALICLOUD, alicloud]] as const) {
        if (resolution.source) {
            out.push(`  ${who}: ${resolution.source}${resolution.keyId ? `, access key ${resolution.keyId}` : ""}`);
        }
    }
    if (out.length > 0) {
        out.unshift(`check-credentials: Alibaba Cloud credentials${stack ? ` for stack ${stack}` : ""}:`);
    }
    for (const note of [...chain.notes, ...alicloud.notes]) {
        out.push(`  note: ${note}`);
    }
    if (chain.keyId && alicloud.keyId && chain.keyId !== alicloud.keyId) {
        out.push(`  warning: the two sign as different identities (${chain.keyId} and ${alicloud.keyId})`);
    }
    for (const [who, resolution] of [[DYNAMIC, chain], [ALICLOUD, alicloud]] as const) {
        if (!resolution.source) {
            err.push(`check-credentials: no Alibaba Cloud credentials found for the ${who}. Looked, in its order:`);
            resolution.looked.forEach((line, i) => err.push(`  ${i + 1}. ${line}`));
        }
    }
    if (err.length > 0) {
        const advice = !alicloud.source ? alicloudAdvice(chain) : undefined;
        if (advice) {
            err.push(`Fix: ${advice}.`);
        }
        if (!chain.source && alicloud.source) {
            err.push("Fix: the OAuth app and MCP server providers read no alicloud:* stack config: provide credentials one of the ways below.");
        }
        err.push("Ways to provide credentials (each serves both providers):", ...WAYS_TO_PROVIDE.map((way) => `  - ${way}`));
    }
    return { ok: err.length === 0, out, err };
}

/** The stack's `config:` map from Pulumi.<stack>.yaml (encrypted values stay `{secure: …}`). */
function readStackConfig(root: string, stack: string): Record<string, unknown> {
    const file = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new Error(`no stack file ${file}; copy Pulumi.dev.yaml to start one`);
    }
    return ((yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> }).config ?? {};
}

async function main(argv: string[]): Promise<number> {
    if (argv.length > 1 || argv.some((arg) => arg.startsWith("-"))) {
        process.stderr.write("usage: node dist/scripts/check-credentials.js [<stack>]\n");
        return 2;
    }
    const stack = argv[0];
    let config: Record<string, unknown> = {};
    if (stack) {
        try {
            config = readStackConfig(process.env.DIFY_STACK_PROJECT_DIR ?? PROJECT_ROOT, stack);
        } catch (err) {
            process.stderr.write(`check-credentials: ${errorMessage(err)}\n`);
            return 2;
        }
    }
    const report = buildReport(stack, await resolveDefaultChain(), resolveAlicloudProvider(config));
    if (report.out.length > 0) {
        process.stdout.write(`${report.out.join("\n")}\n`);
    }
    if (report.err.length > 0) {
        process.stderr.write(`${report.err.join("\n")}\n`);
    }
    return report.ok ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => {
            process.exitCode = code;
        },
        (err: unknown) => {
            process.stderr.write(`check-credentials: ${errorMessage(err)}\n`);
            process.exitCode = 2;
        },
    );
}
