// What Docker Compose really hands each container of an `ha` node (roles app and singleton), as
// compose-environment.test.ts shows it for `single`: the shipped script of the role (bootstrap.sh with ha-node.sh,
// as the user data ships it) runs its own prepare_dify and start_dify on a copy of a Dify release with the settings
// file the renderer writes, a stub `docker` records each `docker compose` call (`docker compose config`, which the
// ha bootstrap asks about the project, is the real Compose), and the real Compose renders the project of the `up`
// call. Each Dify Python service's environment is loaded into Dify's own DifyConfig (Dify 1.14.1), as the
// container does at import.
//
// Needs Docker Compose >= 2.24 (bash scripts/compose-cli.sh) and Dify's Python environment
// (tests/harness/dify-python-env.sh, built on first use); without either the tests fail, saying how to get it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseEnv, runBootstrapFunctions } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { ComposeProject, composeCli, renderCompose, splitComposeArgs } from "../harness/compose";
import {
    ComposeCall,
    DIFY_API_IMAGE,
    DIFY_VERSIONS,
    DOCKER_STUB,
    HA_EXTERNAL_SERVICES,
    PRIVATE_PORTS,
    Rendered,
    containerEnvironment,
    isLoopback,
    loadIntoDifyConfig,
    publishedPorts,
    readComposeCalls,
    renderUpCalls,
    topLevelFiles,
} from "../harness/compose-bootstrap";
import { BootstrapSettings, bootstrapScriptFor, compactScript, renderBootstrapConfig } from "../../components/bootstrap/userdata";
import { DifyNodeRole, HA_ROLE_SERVICES } from "../../components/bootstrap/external-services";
import { releaseVerification } from "../../rules/dify-releases";

type HaRole = Exclude<DifyNodeRole, "single">;
const ROLES: HaRole[] = ["app", "singleton"];
const DOMAIN = "dify-production.platform-team.example-corporation.com.cn";
const PUBLIC_URL = `https://${DOMAIN}`;
const INIT_PASSWORD = "Kq7-_=/&.mZ3pW9xR2tY5uV8";
const PIP_MIRROR = "https://mirrors.aliyun.com/pypi/simple/?a=1&b=/c";
const { database, redis, storage, secrets } = HA_EXTERNAL_SERVICES;

/** Dify's own data services, and the vector stores and databases of its compose file: none may run on an ha node. */
const DATA_CONTAINERS = ["db", "db_postgres", "db_mysql", "redis", "weaviate", "pgvector", "pgvecto-rs", "qdrant", "milvus-standalone", "etcd", "minio", "oceanbase", "seekdb", "elasticsearch", "opensearch", "chroma", "certbot", "init_permissions"];

function settingsFor(tag: string, role: HaRole): BootstrapSettings {
    return {
        difyVersion: tag,
        publicUrl: PUBLIC_URL,
        initPassword: INIT_PASSWORD,
        role,
        domain: DOMAIN,
        externalServices: HA_EXTERNAL_SERVICES,
        registryMirrors: [],
        pipMirrorUrl: PIP_MIRROR,
        ...releaseVerification(tag),
    };
}

interface Deployment {
    dockerDir: string;
    calls: ComposeCall[];
    renders: Rendered[];
    /** Each `up` call's project rendered whole (no services named), with the same .env and override. */
    projects: ComposeProject[];
    env: Map<string, string>;
    files: Map<string, string>;
    /** What the chown stand-in was asked to do, one call a line. */
    chowns: string[];
}

/** Runs the role's prepare_dify and start_dify, with the settings file the renderer writes, then renders the `up`. */
function deploy(tag: string, role: HaRole, workDir: string): Deployment {
    const cli = composeCli(); // fail first, with how to get Compose, when there is none
    const dockerDir = path.join(workDir, "opt-dify", "docker");
    fs.cpSync(difyReleaseDir(tag, "docker"), dockerDir, { recursive: true });
    const callsDir = path.join(workDir, "compose-calls");
    fs.mkdirSync(callsDir);
    fs.writeFileSync(path.join(workDir, "bootstrap.env"), renderBootstrapConfig(settingsFor(tag, role)));
    const chownLog = path.join(workDir, "chown-calls");
    const result = runBootstrapFunctions(`. "$CONFIG_FILE"; prepare_dify; start_dify`, {
        workDir,
        script: compactScript(bootstrapScriptFor(role)),
        env: { COMPOSE_CALLS: callsDir, COMPOSE_REAL_CLI: cli },
        // Not root in CI: the stand-in records what the bootstrap would chown.
        stubs: { docker: DOCKER_STUB, chown: `printf '%s\\n' "$*" >>"${chownLog}"` },
    });
    expect(result.stderr).toBe("");
    expect(result.status, result.stdout).toBe(0);
    const calls = readComposeCalls(callsDir);
    const projects: ComposeProject[] = [];
    const renders = renderUpCalls(calls, dockerDir, (cwd, globals, services) => {
        projects.push(renderCompose(cwd, globals));
        return renderCompose(cwd, globals, services);
    });
    return {
        dockerDir,
        calls,
        renders,
        projects,
        env: parseEnv(fs.readFileSync(path.join(dockerDir, ".env"), "utf8")),
        files: topLevelFiles(dockerDir),
        chowns: fs.existsSync(chownLog) ? fs.readFileSync(chownLog, "utf8").trim().split("\n") : [],
    };
}

/**
 * What each Dify Python service of the role must get: the variable (where the service has it) and DifyConfig's
 * parsed value (where it is a field). PLUGIN_DAEMON_URL is a pydantic HttpUrl, which DifyConfig gives back with
 * a trailing "/", as a URL parser does.
 */
function expectedSettings(role: HaRole): Record<string, string> {
    return {
        CONSOLE_API_URL: PUBLIC_URL,
        CONSOLE_WEB_URL: PUBLIC_URL,
        SERVICE_API_URL: PUBLIC_URL,
        APP_API_URL: PUBLIC_URL,
        APP_WEB_URL: PUBLIC_URL,
        FILES_URL: PUBLIC_URL,
        INTERNAL_FILES_URL: "http://api:5001",
        DB_TYPE: "postgresql",
        DB_HOST: database.host,
        DB_PORT: String(database.port),
        DB_USERNAME: database.username,
        DB_PASSWORD: database.password,
        DB_DATABASE: database.database,
        REDIS_HOST: redis.host,
        REDIS_PORT: String(redis.port),
        REDIS_USERNAME: "",
        REDIS_PASSWORD: redis.password,
        REDIS_DB: "0",
        CELERY_BROKER_URL: `redis://:${redis.password}@${redis.host}:${redis.port}/1`,
        STORAGE_TYPE: "aliyun-oss",
        ALIYUN_OSS_BUCKET_NAME: storage.bucket,
        ALIYUN_OSS_ACCESS_KEY: storage.accessKeyId,
        ALIYUN_OSS_SECRET_KEY: storage.accessKeySecret,
        ALIYUN_OSS_ENDPOINT: storage.endpoint,
        ALIYUN_OSS_REGION: storage.region,
        ALIYUN_OSS_AUTH_VERSION: "v4",
        ALIYUN_OSS_PATH: "dify",
        VECTOR_STORE: "pgvector",
        PGVECTOR_HOST: database.host,
        PGVECTOR_PORT: String(database.port),
        PGVECTOR_USER: database.username,
        PGVECTOR_PASSWORD: database.password,
        PGVECTOR_DATABASE: database.database,
        SECRET_KEY: secrets.secretKey,
        PLUGIN_DAEMON_KEY: secrets.pluginDaemonKey,
        INNER_API_KEY_FOR_PLUGIN: secrets.pluginInnerApiKey,
        PLUGIN_DAEMON_URL: role === "app" ? HA_EXTERNAL_SERVICES.pluginDaemonUrl : "http://plugin_daemon:5002",
        MIGRATION_ENABLED: role === "singleton" ? "true" : "false",
        INIT_PASSWORD,
        PIP_MIRROR_URL: PIP_MIRROR,
        ENABLE_COLLABORATION_MODE: "false",
    };
}

/**
 * Settings a Dify Python service must have in its environment: 1.8.0 has no DB_TYPE and no collaboration mode, and
 * worker_beat, which only schedules tasks, gets no key for the plugin daemon's calls.
 */
function requiredVariables(tag: string, service: string): string[] {
    const absent = [...(tag === "1.8.0" ? ["DB_TYPE", "ENABLE_COLLABORATION_MODE"] : []), ...(service === "worker_beat" ? ["INNER_API_KEY_FOR_PLUGIN"] : [])];
    return Object.keys(expectedSettings("app")).filter((name) => !absent.includes(name));
}

/** DifyConfig fields that must parse to our values (the settings Dify reads for its stores and the plugin daemon). */
const DIFY_CONFIG_FIELDS = [
    "DB_HOST",
    "DB_PORT",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_DATABASE",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "CELERY_BROKER_URL",
    "STORAGE_TYPE",
    "ALIYUN_OSS_BUCKET_NAME",
    "ALIYUN_OSS_ACCESS_KEY",
    "ALIYUN_OSS_SECRET_KEY",
    "ALIYUN_OSS_ENDPOINT",
    "ALIYUN_OSS_REGION",
    "ALIYUN_OSS_AUTH_VERSION",
    "ALIYUN_OSS_PATH",
    "VECTOR_STORE",
    "PGVECTOR_HOST",
    "PGVECTOR_PORT",
    "PGVECTOR_USER",
    "PGVECTOR_PASSWORD",
    "PGVECTOR_DATABASE",
    "PLUGIN_DAEMON_URL",
    "SECRET_KEY",
    "PLUGIN_DAEMON_KEY",
    "INNER_API_KEY_FOR_PLUGIN",
    "CONSOLE_API_URL",
    "INTERNAL_FILES_URL",
];

/** DifyConfig's form of a value: HttpUrl fields come back normalized. */
function parsedForm(name: string, value: string): string {
    return name === "PLUGIN_DAEMON_URL" ? new URL(value).href : value;
}

describe.each(DIFY_VERSIONS)("Dify %s on an ha node: what Compose hands each container", (tag) => {
    describe.each(ROLES)("role %s", (role) => {
        let workDir: string;
        let deployed: Deployment | undefined;
        let setupError: unknown;
        const services = HA_ROLE_SERVICES[role];
        // A failed set-up (no Compose, say) fails every test with its message instead of skipping them.
        const deployment = (): Deployment => {
            if (!deployed) {
                throw setupError ?? new Error("the set-up did not run");
            }
            return deployed;
        };

        beforeAll(() => {
            workDir = fs.mkdtempSync(path.join(os.tmpdir(), `dify-compose-ha-${role}-${tag}-`));
            try {
                deployed = deploy(tag, role, workDir);
            } catch (err) {
                setupError = err;
            }
        }, 180_000);
        afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

        it("starts exactly the role's services with one `up`; Dify's databases, Redis and vector stores stay off", () => {
            const current = deployment();
            const ups = current.calls.filter((call) => splitComposeArgs(call.args).command === "up");
            expect(ups.map((call) => call.args)).toEqual([["up", "-d", ...services]]);
            expect(current.renders).toHaveLength(1);
            const [render] = current.renders;
            expect(render.globals).toEqual([]);
            expect(render.services).toEqual([...services]);
            // What `up <services>` starts (the services and their dependencies) and the whole default project (what a
            // plain `docker compose up -d`, as scrub_init_password runs it, would start): the role's services only.
            expect(Object.keys(render.project.services).sort()).toEqual([...services].sort());
            expect(Object.keys(current.projects[0].services).sort()).toEqual([...services].sort());
            for (const project of [render.project, current.projects[0]]) {
                for (const off of DATA_CONTAINERS) {
                    expect(Object.keys(project.services)).not.toContain(off);
                }
                for (const [name, service] of Object.entries(project.services)) {
                    expect(Object.keys((service as { depends_on?: object }).depends_on ?? {}), name).not.toEqual(
                        expect.arrayContaining(["redis"]),
                    );
                }
            }
            expect(current.env.get("COMPOSE_PROFILES")).toBe("");
            // The storage volume's owner, init_permissions' one job (the api runs as uid 1001 from 1.10.1).
            expect(current.chowns).toEqual([`-R 1001:1001 ${path.join(current.dockerDir, "volumes", "app", "storage")}`]);
        });

        it("gives every Dify Python service an environment that DifyConfig accepts, with our database, Redis, OSS, pgvector and plugin daemon", () => {
            const current = deployment();
            const expected = expectedSettings(role);
            const problems: string[] = [];
            const checked: string[] = [];
            for (const render of current.renders) {
                for (const [service, definition] of Object.entries(render.project.services)) {
                    if (!definition.image?.startsWith(DIFY_API_IMAGE)) {
                        continue;
                    }
                    checked.push(service);
                    const environment = containerEnvironment(definition.environment);
                    const where = `Dify ${tag}, ${role} node, service ${service}`;
                    const result = loadIntoDifyConfig(environment, Object.keys(expected));
                    for (const error of result.errors) {
                        problems.push(`${where}: DifyConfig rejects ${error.variable}=${JSON.stringify(environment[error.variable] ?? null)}: ${error.message}`);
                    }
                    const required = requiredVariables(tag, service);
                    for (const name of required) {
                        if (!(name in environment)) {
                            problems.push(`${where}: has no ${name}`);
                        }
                    }
                    for (const [name, value] of Object.entries(expected)) {
                        if (name in environment && environment[name] !== value) {
                            problems.push(`${where}: gets ${name}=${JSON.stringify(environment[name])}, not ${JSON.stringify(value)}`);
                        }
                        if (result.values && name in result.values && name in environment && String(result.values[name]) !== parsedForm(name, value)) {
                            problems.push(`${where}: DifyConfig parsed ${name} as ${JSON.stringify(result.values[name])}, not ${JSON.stringify(value)}`);
                        }
                    }
                    for (const name of DIFY_CONFIG_FIELDS.filter((field) => required.includes(field))) {
                        if (!result.values || !(name in result.values)) {
                            problems.push(`${where}: DifyConfig has no ${name}`);
                        } else if (String(result.values[name]) !== parsedForm(name, expected[name])) {
                            problems.push(`${where}: DifyConfig has ${name}=${JSON.stringify(result.values[name])}, not ${JSON.stringify(expected[name])}`);
                        }
                    }
                }
            }
            expect(problems).toEqual([]);
            expect(checked.sort()).toEqual(role === "app" ? ["api", "worker"] : ["api", "worker_beat"]);
        }, 300_000);

        it(role === "singleton" ? "runs the plugin daemon on our PostgreSQL, Redis and OSS bucket, its callbacks to its own api" : "sends the plugin daemon's calls to the singleton", () => {
            const current = deployment();
            const [render] = current.renders;
            const api = containerEnvironment(render.project.services.api?.environment);
            expect(api.PLUGIN_DAEMON_KEY).toBe(secrets.pluginDaemonKey);
            expect(api.INNER_API_KEY_FOR_PLUGIN).toBe(secrets.pluginInnerApiKey);
            if (role === "app") {
                expect(render.project.services.plugin_daemon).toBeUndefined();
                expect(api.PLUGIN_DAEMON_URL).toBe(HA_EXTERNAL_SERVICES.pluginDaemonUrl);
                return;
            }
            const daemon = containerEnvironment(render.project.services.plugin_daemon?.environment);
            expect(daemon).toMatchObject({
                DB_HOST: database.host,
                DB_PORT: String(database.port),
                DB_USERNAME: database.username,
                DB_PASSWORD: database.password,
                DB_DATABASE: database.pluginDatabase,
                REDIS_HOST: redis.host,
                REDIS_PORT: String(redis.port),
                REDIS_PASSWORD: redis.password,
                PLUGIN_STORAGE_TYPE: "aliyun_oss",
                PLUGIN_STORAGE_OSS_BUCKET: storage.bucket,
                ALIYUN_OSS_REGION: storage.region,
                ALIYUN_OSS_ENDPOINT: storage.endpoint,
                ALIYUN_OSS_ACCESS_KEY_ID: storage.accessKeyId,
                ALIYUN_OSS_ACCESS_KEY_SECRET: storage.accessKeySecret,
                ALIYUN_OSS_AUTH_VERSION: "v4",
                ALIYUN_OSS_PATH: "plugin-daemon",
                SERVER_PORT: "5002",
                SERVER_KEY: secrets.pluginDaemonKey,
                DIFY_INNER_API_URL: "http://api:5001",
                DIFY_INNER_API_KEY: secrets.pluginInnerApiKey,
                PYTHON_ENV_INIT_TIMEOUT: "600",
                PIP_MIRROR_URL: PIP_MIRROR,
            });
            if (tag !== "1.8.0") {
                // 1.8.0's daemon gets only the variables its compose file lists, DB_TYPE not among them.
                expect(daemon.DB_TYPE).toBe("postgresql");
            }
        });

        it(role === "singleton" ? "publishes the plugin daemon's 5002 to the VPC and nothing else beyond loopback" : "publishes nginx's port 80 and none of Dify's internal ports", () => {
            const current = deployment();
            const problems: string[] = [];
            const [render] = current.renders;
            for (const [service, definition] of Object.entries(render.project.services)) {
                if (definition.network_mode === "host") {
                    problems.push(`${service} uses the host's network, so all its ports are public`);
                }
                for (const port of definition.ports ?? []) {
                    const ports = [port.target, ...publishedPorts(port.published)];
                    const daemonPort = role === "singleton" && service === "plugin_daemon" && port.target === 5002 && port.published === "5002";
                    if (ports.some((p) => PRIVATE_PORTS.includes(p)) && !isLoopback(port.host_ip) && !daemonPort) {
                        problems.push(`${service} publishes ${port.host_ip ?? "0.0.0.0"}:${port.published ?? "(any)"}->${port.target}`);
                    }
                }
            }
            expect(problems).toEqual([]);
            const published = Object.fromEntries(
                Object.entries(render.project.services)
                    .filter(([, definition]) => (definition.ports ?? []).length > 0)
                    .map(([service, definition]) => [service, definition.ports]),
            );
            if (role === "singleton") {
                expect(published).toEqual({
                    api: [{ mode: "ingress", host_ip: "127.0.0.1", target: 5001, published: "5001", protocol: "tcp" }],
                    plugin_daemon: [
                        { mode: "ingress", target: 5002, published: "5002", protocol: "tcp" },
                        { mode: "ingress", host_ip: "127.0.0.1", target: 5003, published: "5003", protocol: "tcp" },
                    ],
                });
            } else {
                // Plain HTTP inside the VPC: the load balancer terminates TLS; no 443, no redirect.
                expect(published).toEqual({ nginx: [{ mode: "ingress", target: 80, published: "80", protocol: "tcp" }] });
                expect(containerEnvironment(render.project.services.nginx.environment)).toMatchObject({
                    NGINX_HTTPS_ENABLED: "false",
                    NGINX_ENABLE_CERTBOT_CHALLENGE: "false",
                });
                expect(current.files.has("nginx-https-redirect.conf")).toBe(false);
            }
        });

        it(role === "app" ? "has nginx send plugin endpoints (/e/) to the singleton, resolved per request" : "runs no nginx", () => {
            const current = deployment();
            const [render] = current.renders;
            if (role === "singleton") {
                expect(render.project.services.nginx).toBeUndefined();
                expect(current.files.has("nginx-ha-default.conf.template")).toBe(false);
                return;
            }
            const template = path.join(current.dockerDir, "nginx", "conf.d", "default.conf.template");
            const mounts = (render.project.services.nginx.volumes ?? []).map((v) => `${v.source}:${v.target}:${v.read_only ?? false}`);
            if (!fs.existsSync(template)) {
                // The 1.8.0 fixture pins only the compose file and .env.example: nothing to copy, nothing mounted.
                expect(current.files.has("nginx-ha-default.conf.template")).toBe(false);
                return;
            }
            const released = fs.readFileSync(template, "utf8");
            const copy = current.files.get("nginx-ha-default.conf.template") ?? "";
            expect(released).toContain("proxy_pass http://plugin_daemon:5002;");
            expect(copy).not.toContain("http://plugin_daemon");
            expect(copy).toBe(
                released.replace(
                    "proxy_pass http://plugin_daemon:5002;",
                    `resolver 127.0.0.11 valid=30s ipv6=off; set $dify_plugin_daemon ${HA_EXTERNAL_SERVICES.pluginDaemonUrl}; proxy_pass $dify_plugin_daemon;`,
                ),
            );
            expect(mounts).toContain(`${path.join(current.dockerDir, "nginx-ha-default.conf.template")}:/etc/nginx/conf.d/default.conf.template:true`);
            // The release's conf.d stays mounted (the entrypoint writes default.conf there).
            expect(mounts).toContain(`${path.join(current.dockerDir, "nginx", "conf.d")}:/etc/nginx/conf.d:false`);
        });
    });
});
