// What the bootstrap hands Docker Compose, for the tests that run the shipped bootstrap's own functions on a copy of
// a Dify release (tests/components/compose-environment.test.ts for `single`, compose-environment-ha.test.ts for the
// `ha` roles): a stub `docker` that records each `docker compose` call (and the .env and override at that moment),
// the real Compose rendering each `up` call's project, and Dify's own settings class (configs.DifyConfig from
// Dify 1.14.1, in Dify's Python environment) loading a rendered container environment as the container does.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { DifyPython, ensureDifyPython, runDifyPython } from "./dify-python";
import { ComposeProject, renderCompose, splitComposeArgs } from "./compose";
import type { ExternalServices } from "../../components/bootstrap/external-services";

/** The oldest and newest supported releases; DifyConfig always comes from the newest one's api/. */
export const DIFY_VERSIONS = ["1.8.0", "1.14.1"];
export const DIFY_CONFIG_VERSION = "1.14.1";
export const DIFY_API_IMAGE = "langgenius/dify-api:";
/** Ports of Dify's internal services (api, plugin daemon, plugin debugging, sandbox) that must not be public. */
export const PRIVATE_PORTS = [5001, 5002, 5003, 8194];

/**
 * Stands in for docker: records each `docker compose` call's directory, arguments, .env and override file, and
 * succeeds. Pulls succeed; `docker run` (the certbot image) records its arguments and leaves a certificate in the
 * directory it mounts at /etc/letsencrypt, as certbot would. With COMPOSE_REAL_CLI set, `docker compose config …`
 * is the real Compose (in a clean environment, as on the instance), for a bootstrap that asks Compose about the
 * project (the `ha` roles); it is not recorded.
 */
export const DOCKER_STUB = `
case "\${1:-}" in
  compose) ;;
  image | pull | tag) exit 0 ;;
  run)
    printf '%s\\0' "$@" >"$COMPOSE_CALLS/../certbot-run"
    for a in "$@"; do case "$a" in *:/etc/letsencrypt) conf="\${a%:/etc/letsencrypt}" ;; esac; done
    mkdir -p "$conf/live/dify" && echo certificate >"$conf/live/dify/fullchain.pem" && echo key >"$conf/live/dify/privkey.pem"
    exit 0 ;;
  *) echo "docker stub: unexpected call: docker $*" >&2; exit 1 ;;
esac
shift
if [ -n "\${COMPOSE_REAL_CLI:-}" ] && [ "\${1:-}" = config ]; then
  mkdir -p "$COMPOSE_CALLS/../compose-home"
  exec env -i PATH="$PATH" HOME="$COMPOSE_CALLS/../compose-home" DOCKER_CONFIG="$COMPOSE_CALLS/../compose-home/.docker" "$COMPOSE_REAL_CLI" "$@"
fi
n=$(find "$COMPOSE_CALLS" -mindepth 1 -maxdepth 1 -type d | wc -l)
call="$COMPOSE_CALLS/$(printf '%03d' "$n")"
mkdir -p "$call"
printf '%s' "$PWD" >"$call/cwd"
printf '%s\\0' "$@" >"$call/args"
if [ -f .env ]; then cp .env "$call/env"; fi
if [ -f docker-compose.override.yaml ]; then cp docker-compose.override.yaml "$call/override"; fi
`;

export interface ComposeCall {
    cwd: string;
    args: string[];
    env: string;
    /** docker-compose.override.yaml at the time of the call, if there was one. */
    override?: string;
}

export interface Rendered {
    /** The global options of the `up` call it renders, e.g. ["--profile", "certbot"]. */
    globals: string[];
    /** The services the `up` call names (none: the whole project). */
    services: string[];
    label: string;
    project: ComposeProject;
}

/** The files of the docker/ folder the bootstrap may write (not the release's own subfolders). */
export function topLevelFiles(dir: string): Map<string, string> {
    const files = new Map<string, string>();
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.isFile()) {
            files.set(entry.name, fs.readFileSync(path.join(dir, entry.name), "utf8"));
        }
    }
    return files;
}

/** The calls DOCKER_STUB recorded in `callsDir`, in order. */
export function readComposeCalls(callsDir: string): ComposeCall[] {
    return fs
        .readdirSync(callsDir)
        .sort()
        .map((name) => {
            const dir = path.join(callsDir, name);
            const override = path.join(dir, "override");
            return {
                cwd: fs.readFileSync(path.join(dir, "cwd"), "utf8"),
                args: fs.readFileSync(path.join(dir, "args"), "utf8").split("\0").slice(0, -1),
                env: fs.readFileSync(path.join(dir, "env"), "utf8"),
                override: fs.existsSync(override) ? fs.readFileSync(override, "utf8") : undefined,
            };
        });
}

/**
 * Each distinct `up` call rendered by the real Compose with its own options, and the .env and override file as they
 * were when the bootstrap ran it (`renderUp` renders one); afterwards `dockerDir` has its final .env and override
 * again.
 */
export function renderUpCalls(
    calls: ComposeCall[],
    dockerDir: string,
    renderUp: (cwd: string, globals: string[], services: string[]) => ComposeProject = (cwd, globals) => renderCompose(cwd, globals),
): Rendered[] {
    const finalEnv = fs.readFileSync(path.join(dockerDir, ".env"), "utf8");
    const overrideFile = path.join(dockerDir, "docker-compose.override.yaml");
    const finalOverride = fs.existsSync(overrideFile) ? fs.readFileSync(overrideFile, "utf8") : undefined;
    const renders: Rendered[] = [];
    const seen = new Set<string>();
    for (const call of calls) {
        const { globals, command, rest } = splitComposeArgs(call.args);
        const key = JSON.stringify([call.cwd, globals, call.env, call.override]);
        if (command !== "up" || seen.has(key)) {
            continue;
        }
        seen.add(key);
        fs.writeFileSync(path.join(call.cwd, ".env"), call.env);
        if (call.override === undefined) {
            fs.rmSync(path.join(call.cwd, "docker-compose.override.yaml"), { force: true });
        } else {
            fs.writeFileSync(path.join(call.cwd, "docker-compose.override.yaml"), call.override);
        }
        const services = rest.filter((arg) => !arg.startsWith("-"));
        renders.push({
            globals,
            services,
            label: `docker compose ${[...globals, command, ...rest].join(" ")}`,
            project: renderUp(call.cwd, globals, services),
        });
    }
    fs.writeFileSync(path.join(dockerDir, ".env"), finalEnv);
    if (finalOverride !== undefined) {
        fs.writeFileSync(overrideFile, finalOverride);
    }
    return renders;
}

/** Dify's Python environment, or an error naming how to get it. */
export function difyPython(): DifyPython {
    try {
        return ensureDifyPython(DIFY_CONFIG_VERSION);
    } catch (err) {
        throw new Error(
            `Dify ${DIFY_CONFIG_VERSION}'s Python environment is needed to load the rendered settings into DifyConfig and ` +
                "could not be had: it needs Python 3.12 (python3.12 on PATH, pyenv, or DIFY_PYTHON) and PyPI; build it with " +
                `"bash tests/harness/dify-python-env.sh <Dify ${DIFY_CONFIG_VERSION} api/ folder>" (the tests call it themselves). ` +
                `Cause: ${err instanceof Error ? err.message : String(err)}`,
        );
    }
}

/**
 * Imports Dify's `configs` (which builds `dify_config = DifyConfig()`, as every API and worker process does at
 * start) with exactly the rendered environment: from an empty working directory, because DifyConfig also
 * reads a `.env` file in the working directory (model_config env_file=".env" in configs/app_config.py).
 * Prints JSON: the validation errors, or the parsed values of those of `fields` that DifyConfig has.
 */
function loadScript(apiDir: string, fields: string[]): string {
    return `
import json, os, sys, tempfile
sys.path.insert(0, ${JSON.stringify(apiDir)})
scratch = tempfile.mkdtemp()
os.chdir(scratch)
from pydantic import ValidationError

def plain(value):
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)

try:
    import configs
except ValidationError as error:
    errors = [
        {"variable": ".".join(str(part) for part in e["loc"]), "message": e["msg"], "input": repr(e.get("input"))}
        for e in error.errors()
    ]
    print(json.dumps({"errors": errors}))
    sys.exit(0)
finally:
    os.rmdir(scratch)
config = configs.dify_config
fields = type(config).model_fields
print(json.dumps({"errors": [], "values": {name: plain(getattr(config, name)) for name in ${JSON.stringify(fields)} if name in fields}}))
`;
}

export interface DifyConfigResult {
    errors: { variable: string; message: string; input: string }[];
    values?: Record<string, unknown>;
}

const configResults = new Map<string, DifyConfigResult>();

/** Loads one rendered environment into DifyConfig (cached by content: renders often repeat an environment). */
export function loadIntoDifyConfig(environment: Record<string, string>, fields: string[]): DifyConfigResult {
    const key = createHash("sha256").update(JSON.stringify([environment, fields])).digest("hex");
    const known = configResults.get(key);
    if (known) {
        return known;
    }
    const python = difyPython();
    const output = runDifyPython(python, loadScript(python.apiDir, fields), { env: environment });
    const result = JSON.parse(output.trim().split("\n").pop()!) as DifyConfigResult;
    configResults.set(key, result);
    return result;
}

/** The variables a container really gets: compose renders unset ones as null, and those are not set. */
export function containerEnvironment(environment: Record<string, string | null> | undefined): Record<string, string> {
    return Object.fromEntries(
        Object.entries(environment ?? {}).filter((entry): entry is [string, string] => entry[1] !== null),
    );
}

export function publishedPorts(published: string | undefined): number[] {
    const match = /^(\d+)(?:-(\d+))?$/.exec(published ?? "");
    if (!match) {
        return [];
    }
    const first = Number(match[1]);
    const last = Number(match[2] ?? match[1]);
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

export function isLoopback(hostIp: string | undefined): boolean {
    return hostIp !== undefined && (hostIp.startsWith("127.") || hostIp === "::1" || hostIp === "localhost");
}

/**
 * An `ha` node's external services as the app tier would hand them over, with realistic (long) values: RDS and
 * Tair endpoints, an OSS bucket, a RAM AccessKey, keys of the shapes the renderer takes (base64 with "+", "/", "=").
 */
export const HA_EXTERNAL_SERVICES: ExternalServices = {
    database: {
        host: "pgm-bp1x2y3z4a5b6c7d8e9f.pg.rds.aliyuncs.com",
        port: 5432,
        username: "dify_production_account",
        password: "Vq8rT2mK7xN4pL9wZ3cB6hJ1dF5gS0aY",
        database: "dify",
        pluginDatabase: "dify_plugin",
    },
    redis: {
        host: "r-bp1a2b3c4d5e6f7g8h.redis.rds.aliyuncs.com",
        port: 6379,
        password: "Hn4Rw8Kc2Zp6Tv0Xm3Qs7Ld1Fb5Gj9Ye",
    },
    storage: {
        bucket: "dify-production-files-cn-hangzhou-0123456789",
        region: "cn-hangzhou",
        endpoint: "https://oss-cn-hangzhou-internal.aliyuncs.com",
        accessKeyId: "TestKeyQw3Er4Ty5Ui6Op7AsDf",
        accessKeySecret: "Zx8Cv7Bn6Mq5Wl4Ek3Rj2Th1Yg0UfAp",
    },
    secrets: {
        secretKey: "u7+Kp2/Wq9xZ3vN6mB1cR8tY4hL0sD5fG7jA2eQ9wX3k/Pz1V+oI6uT8yR4bN=",
        pluginDaemonKey: "Aq1Sw2De3Fr4Gt5Hy6Ju7Ki8Lo9P0+Zx/Cv1Bn2Mq3Wl4Ek5Rj6Th7Yg8Uf9Ip0=",
        pluginInnerApiKey: "Pl0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1+Xc/Vb2Nm3Lk4Jh5Gf6Ds7Aq8Sw9De0=",
    },
    pluginDaemonUrl: "http://plugin-daemon.dify-production.internal:5002",
};

/** Every secret of HA_EXTERNAL_SERVICES (what must never show outside the user data and the node's root files). */
export function haSecretValues(services: ExternalServices = HA_EXTERNAL_SERVICES): string[] {
    return [
        services.database.password,
        services.redis.password,
        services.storage.accessKeyId,
        services.storage.accessKeySecret,
        services.secrets.secretKey,
        services.secrets.pluginDaemonKey,
        services.secrets.pluginInnerApiKey,
    ];
}
