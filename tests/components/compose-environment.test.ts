// What Docker Compose really hands each Dify container after the bootstrap has edited a release's docker/
// folder: the shipped bootstrap's own functions (prepare_dify, start_dify) run on a copy of the release with
// every option the stack can set, a stub `docker` records each `docker compose` call (and the .env at that
// moment), and the real Compose renders the project of every `up` call with that call's files and profiles.
// Each Dify Python service's rendered environment (the services running the langgenius/dify-api image) is
// then loaded into Dify's own settings class, configs.DifyConfig from Dify 1.14.1, in Dify's Python
// environment, as the container does at import; any validation error would crash-loop that container.
//
// The stub, the renderings and the DifyConfig loading are tests/harness/compose-bootstrap.ts's (shared with
// compose-environment-ha.test.ts, the `ha` roles).
//
// Needs Docker Compose >= 2.24 (bash scripts/compose-cli.sh) and Dify's Python environment
// (tests/harness/dify-python-env.sh, built on first use); without either the tests fail, saying how to get it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseEnv, runBootstrapFunctions } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { composeCli, splitComposeArgs } from "../harness/compose";
import {
    ComposeCall,
    DIFY_API_IMAGE,
    DIFY_VERSIONS,
    DOCKER_STUB,
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
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";
import { CERTBOT_IMAGE } from "../../rules/certbot";

// Values the stack can produce: the INIT_PASSWORD alphabet of components/dify-bootstrap.ts ("-_=/&." besides
// letters and digits) and a pip index URL with a query.
const INIT_PASSWORD = "Kq7-_=/&.mZ3pW9xR2tY5uV8";
const PIP_MIRROR = "https://mirrors.aliyun.com/pypi/simple/?a=1&b=/c";

interface Scenario {
    name: string;
    env: Record<string, string>;
    publicUrl: string;
    /** HTTPS (not plainHttp): the bootstrap gets a certificate, then turns nginx to HTTPS. */
    https: boolean;
}

const SCENARIOS: Scenario[] = [
    {
        name: "the EIP over HTTPS (the default)",
        publicUrl: "https://198.51.100.23",
        https: true,
        env: { DIFY_PUBLIC_URL: "https://198.51.100.23", DIFY_INIT_PASSWORD: INIT_PASSWORD, DIFY_PIP_MIRROR_URL: PIP_MIRROR, DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE },
    },
    {
        name: "the EIP over plain HTTP (plainHttp)",
        publicUrl: "http://198.51.100.23",
        https: false,
        env: { DIFY_PUBLIC_URL: "http://198.51.100.23", DIFY_INIT_PASSWORD: INIT_PASSWORD, DIFY_PIP_MIRROR_URL: PIP_MIRROR, DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE },
    },
    {
        name: "a domain with HTTPS",
        publicUrl: "https://dify.example.com",
        https: true,
        env: {
            DIFY_PUBLIC_URL: "https://dify.example.com",
            DIFY_INIT_PASSWORD: INIT_PASSWORD,
            DIFY_PIP_MIRROR_URL: PIP_MIRROR,
            DIFY_DOMAIN: "dify.example.com",
            DIFY_CERT_EMAIL: "ops@example.com",
            DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE,
        },
    },
];

interface Deployment {
    dockerDir: string;
    calls: ComposeCall[];
    renders: Rendered[];
    secrets: Map<string, string>;
    files: Map<string, string>;
    /** The arguments of the one `docker run` (the certbot image), when there was one. */
    certbotArgs?: string[];
}

/** Runs the bootstrap's prepare_dify and start_dify on a copy of the release, then renders every `up`. */
function deploy(tag: string, scenario: Scenario, workDir: string): Deployment {
    composeCli(); // fail first, with how to get Compose, when there is none
    const dockerDir = path.join(workDir, "opt-dify", "docker");
    if (!fs.existsSync(dockerDir)) {
        fs.cpSync(difyReleaseDir(tag, "docker"), dockerDir, { recursive: true });
    }
    const callsDir = path.join(workDir, "compose-calls");
    fs.rmSync(callsDir, { recursive: true, force: true });
    fs.mkdirSync(callsDir);
    const result = runBootstrapFunctions(`prepare_dify; start_dify`, {
        workDir,
        script: compactScript(readBootstrapScript()),
        env: { ...scenario.env, COMPOSE_CALLS: callsDir },
        stubs: { docker: DOCKER_STUB },
    });
    expect(result.stderr).toBe("");
    expect(result.status, result.stdout).toBe(0);

    const calls: ComposeCall[] = readComposeCalls(callsDir);
    const files = topLevelFiles(dockerDir);
    const certbotRun = path.join(workDir, "certbot-run");
    const certbotArgs = fs.existsSync(certbotRun) ? fs.readFileSync(certbotRun, "utf8").split("\0").slice(0, -1) : undefined;

    // Each `up` rendered with its own options, and the .env and override file as they were when the bootstrap ran it.
    const renders: Rendered[] = renderUpCalls(calls, dockerDir);
    const secrets = parseEnv(fs.readFileSync(path.join(workDir, "data", "dify", "secrets.env"), "utf8"));
    return { dockerDir, calls, renders, secrets, files, certbotArgs };
}

/**
 * What the bootstrap sets, as each Dify Python service must get it: the rendered variable, where the service
 * has it, and DifyConfig's parsed value, where it is a DifyConfig field (INIT_PASSWORD and APP_API_URL, for
 * example, are read elsewhere).
 */
function expectedSettings(scenario: Scenario, secrets: Map<string, string>): Record<string, string> {
    const url = scenario.publicUrl;
    return {
        CONSOLE_API_URL: url,
        CONSOLE_WEB_URL: url,
        SERVICE_API_URL: url,
        APP_API_URL: url,
        APP_WEB_URL: url,
        FILES_URL: url,
        TRIGGER_URL: url,
        SECRET_KEY: secrets.get("SECRET_KEY")!,
        DB_PASSWORD: secrets.get("DB_PASSWORD")!,
        REDIS_PASSWORD: secrets.get("REDIS_PASSWORD")!,
        CELERY_BROKER_URL: `redis://:${secrets.get("REDIS_PASSWORD")}@redis:6379/1`,
        CODE_EXECUTION_API_KEY: secrets.get("SANDBOX_API_KEY")!,
        PLUGIN_DAEMON_KEY: secrets.get("PLUGIN_DAEMON_KEY")!,
        INNER_API_KEY_FOR_PLUGIN: secrets.get("PLUGIN_DIFY_INNER_API_KEY")!,
        WEAVIATE_API_KEY: secrets.get("WEAVIATE_API_KEY")!,
        INIT_PASSWORD: INIT_PASSWORD,
        PIP_MIRROR_URL: PIP_MIRROR,
        PLUGIN_REMOTE_INSTALL_PORT: "5003",
    };
}

describe.each(DIFY_VERSIONS)("Dify %s: what Compose hands each container", (tag) => {
    describe.each(SCENARIOS)("with $name", (scenario) => {
        let workDir: string;
        let deployed: Deployment | undefined;
        let setupError: unknown;
        // A failed set-up (no Compose, say) fails every test with its message instead of skipping them.
        const deployment = (): Deployment => {
            if (!deployed) {
                throw setupError ?? new Error("the set-up did not run");
            }
            return deployed;
        };

        beforeAll(() => {
            workDir = fs.mkdtempSync(path.join(os.tmpdir(), `dify-compose-${tag}-`));
            try {
                deployed = deploy(tag, scenario, workDir);
            } catch (err) {
                setupError = err;
            }
        }, 120_000);
        afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

        it("starts Dify with `up` and renders each `up` with the real Compose", () => {
            const current = deployment();
            const commands = current.calls.map((call) => splitComposeArgs(call.args).command);
            expect(commands).toContain("up");
            expect(current.renders.length).toBeGreaterThan(0);
            for (const call of current.calls) {
                expect(call.cwd).toBe(current.dockerDir);
            }
            // The release's certbot service (unpinned image, never renews) is not used: the bootstrap runs its own.
            for (const render of current.renders) {
                expect(render.globals, render.label).toEqual([]);
                expect(Object.keys(render.project.services), render.label).not.toContain("certbot");
            }
        });

        it(scenario.https ? "serves HTTPS once the certificate is there, port 80 only redirecting and answering ACME" : "serves plain HTTP on port 80, no certificate", () => {
            const current = deployment();
            const { dockerDir } = current;
            const released = [
                { mode: "ingress", target: 80, published: "80", protocol: "tcp" },
                { mode: "ingress", target: 443, published: "443", protocol: "tcp" },
            ];
            if (!scenario.https) {
                expect(current.renders).toHaveLength(1);
                const nginx = current.renders[0].project.services.nginx;
                expect(nginx.environment?.NGINX_HTTPS_ENABLED).toBe("false");
                expect(nginx.environment?.NGINX_ENABLE_CERTBOT_CHALLENGE).toBe("false");
                expect(nginx.ports).toEqual(released);
                expect(current.certbotArgs).toBeUndefined();
                expect(current.files.has("nginx-https-redirect.conf")).toBe(false);
                return;
            }
            // First over HTTP, nginx answering the challenge from the webroot certbot writes into; then HTTPS.
            expect(current.renders.map((r) => r.label)).toEqual(["docker compose up -d", "docker compose up -d --no-deps --force-recreate nginx"]);
            const [before, after] = current.renders.map((r) => r.project.services.nginx);
            expect(before.environment).toMatchObject({ NGINX_HTTPS_ENABLED: "false", NGINX_ENABLE_CERTBOT_CHALLENGE: "true" });
            expect(before.ports).toEqual(released);
            expect(after.environment).toMatchObject({
                NGINX_HTTPS_ENABLED: "true",
                NGINX_ENABLE_CERTBOT_CHALLENGE: "true",
                // nginx's entrypoint serves /etc/letsencrypt/live/<CERTBOT_DOMAIN>/<files>: certbot's lineage "dify".
                CERTBOT_DOMAIN: "dify",
                NGINX_SSL_CERT_FILENAME: "fullchain.pem",
                NGINX_SSL_CERT_KEY_FILENAME: "privkey.pem",
                NGINX_SSL_PROTOCOLS: "TLSv1.2 TLSv1.3",
                NGINX_SERVER_NAME: scenario.env.DIFY_DOMAIN ?? "_",
                NGINX_PORT: "80",
                NGINX_SSL_PORT: "443",
            });
            // Host port 80 reaches the redirect server (8080), not Dify's own server, which keeps container port 80.
            expect(after.ports).toEqual([
                { mode: "ingress", target: 8080, published: "80", protocol: "tcp" },
                { mode: "ingress", target: 443, published: "443", protocol: "tcp" },
            ]);
            const redirect = current.files.get("nginx-https-redirect.conf") ?? "";
            expect(redirect).toContain("    listen 8080 default_server;\n");
            expect(redirect).toMatch(/location \/\.well-known\/acme-challenge\/ \{\s*root \/var\/www\/html;\s*\}/);
            expect(redirect).toMatch(/location \/ \{\s*return 301 https:\/\/\$host\$request_uri;\s*\}/);
            const volumes = (after.volumes ?? []).map((v) => ({ source: v.source, target: v.target, read_only: v.read_only ?? false }));
            expect(volumes).toContainEqual({
                source: path.join(dockerDir, "nginx-https-redirect.conf"),
                target: "/etc/nginx/conf.d/https-redirect.conf",
                read_only: true,
            });
            // nginx reads what certbot wrote: the same host directories, where the certbot image has them too.
            const certbot = current.certbotArgs ?? [];
            for (const [dir, target] of [["conf", "/etc/letsencrypt"], ["www", "/var/www/html"]]) {
                const source = path.join(dockerDir, "volumes", "certbot", dir);
                expect(volumes).toContainEqual({ source, target, read_only: false });
                expect(certbot).toContain(`${source}:${target}`);
            }
            expect(certbot.slice(0, 3)).toEqual(["run", "--rm", "--pull"]);
            expect(certbot).toContain(CERTBOT_IMAGE);
            const name = scenario.env.DIFY_DOMAIN ?? "198.51.100.23";
            expect(certbot.join(" ")).toContain(scenario.env.DIFY_DOMAIN ? `-d ${name}` : `--ip-address ${name} --preferred-profile shortlived`);
        });

        it("gives every Dify Python service an environment that Dify's DifyConfig accepts, with the values we set", () => {
            const current = deployment();
            const expected = expectedSettings(scenario, current.secrets);
            const fields = Object.keys(expected);
            const problems: string[] = [];
            const parsed = new Set<string>();
            let checked = 0;
            for (const render of current.renders) {
                for (const [service, definition] of Object.entries(render.project.services)) {
                    if (!definition.image?.startsWith(DIFY_API_IMAGE)) {
                        continue;
                    }
                    checked++;
                    const environment = containerEnvironment(definition.environment);
                    const where = `Dify ${tag}, ${render.label}, service ${service}`;
                    const result = loadIntoDifyConfig(environment, fields);
                    for (const error of result.errors) {
                        problems.push(
                            `${where}: DifyConfig rejects ${error.variable}=${JSON.stringify(environment[error.variable] ?? null)}: ${error.message}`,
                        );
                    }
                    for (const [name, value] of Object.entries(expected)) {
                        if (!(name in environment)) {
                            continue;
                        }
                        if (environment[name] !== value) {
                            problems.push(`${where}: gets ${name}=${JSON.stringify(environment[name])}, not ${JSON.stringify(value)}`);
                        }
                        if (result.values && name in result.values && String(result.values[name]) !== value) {
                            problems.push(
                                `${where}: DifyConfig parsed ${name} as ${JSON.stringify(result.values[name])}, not ${JSON.stringify(value)}`,
                            );
                        }
                    }
                    if (result.values) {
                        parsed.add(service);
                        expect(Object.keys(result.values), where).toEqual(expect.arrayContaining(["CONSOLE_API_URL", "SECRET_KEY"]));
                    }
                }
            }
            expect(problems).toEqual([]);
            // api, worker and (in newer releases) worker_beat and api_websocket, in every render.
            expect(checked).toBeGreaterThanOrEqual(2 * current.renders.length);
            expect([...parsed]).toEqual(expect.arrayContaining(["api", "worker"]));
        }, 300_000);

        it("gives plugin_daemon the ports and keys the bootstrap set", () => {
            const current = deployment();
            const { secrets } = current;
            for (const render of current.renders) {
                const daemon = containerEnvironment(render.project.services.plugin_daemon?.environment);
                const api = containerEnvironment(render.project.services.api?.environment);
                expect(daemon.SERVER_KEY, render.label).toBe(secrets.get("PLUGIN_DAEMON_KEY"));
                expect(api.PLUGIN_DAEMON_KEY, render.label).toBe(secrets.get("PLUGIN_DAEMON_KEY"));
                expect(daemon.DIFY_INNER_API_KEY, render.label).toBe(secrets.get("PLUGIN_DIFY_INNER_API_KEY"));
                expect(api.INNER_API_KEY_FOR_PLUGIN, render.label).toBe(secrets.get("PLUGIN_DIFY_INNER_API_KEY"));
                expect(daemon.DB_PASSWORD, render.label).toBe(secrets.get("DB_PASSWORD"));
                expect(daemon.REDIS_PASSWORD, render.label).toBe(secrets.get("REDIS_PASSWORD"));
                expect(daemon.PIP_MIRROR_URL, render.label).toBe(PIP_MIRROR);
                // The install task is not marked failed 3 minutes in (PYTHON_ENV_INIT_TIMEOUT + 60 s) while uv downloads.
                expect(daemon.PYTHON_ENV_INIT_TIMEOUT, render.label).toBe("600");
                if (tag !== "1.8.0") {
                    // Daemon 0.5.8+ reads it (1.8.0 ships an older daemon, and no .env in its environment): with a
                    // mirror, plugins with a uv.lock resolve against the mirror instead of `uv sync --frozen`.
                    expect(daemon.PLUGIN_IGNORE_UV_LOCK, render.label).toBe("true");
                }
                expect(daemon.SERVER_PORT, render.label).toBe("5002");
                expect(daemon.PLUGIN_REMOTE_INSTALLING_PORT, render.label).toBe("5003");
                expect(api.PLUGIN_DAEMON_URL, render.label).toBe("http://plugin_daemon:5002");
                // What the console shows plugin developers as the debugging port: a port, not an address.
                expect(api.PLUGIN_REMOTE_INSTALL_PORT, render.label).toBe("5003");
            }
        });

        it("publishes none of Dify's internal ports beyond loopback", () => {
            const current = deployment();
            const problems: string[] = [];
            for (const render of current.renders) {
                for (const [service, definition] of Object.entries(render.project.services)) {
                    if (definition.network_mode === "host") {
                        problems.push(`${render.label}: ${service} uses the host's network, so all its ports are public`);
                    }
                    for (const port of definition.ports ?? []) {
                        const ports = [port.target, ...publishedPorts(port.published)];
                        if (ports.some((p) => PRIVATE_PORTS.includes(p)) && !isLoopback(port.host_ip)) {
                            problems.push(
                                `${render.label}: ${service} publishes ${port.host_ip ?? "0.0.0.0"}:${port.published ?? "(any)"}->${port.target}`,
                            );
                        }
                    }
                }
            }
            expect(problems).toEqual([]);
            // The plugin debugging port stays reachable from the host (over an SSH tunnel), on loopback only, and
            // the override replaced the release's 0.0.0.0 mapping rather than adding to it.
            for (const render of current.renders) {
                expect(render.project.services.plugin_daemon?.ports, render.label).toEqual([
                    { mode: "ingress", host_ip: "127.0.0.1", target: 5003, published: "5003", protocol: "tcp" },
                ]);
            }
        });

        it("writes the same files and renders the same projects on a rebuilt instance (same data disk)", () => {
            const current = deployment();
            // A rebuilt instance has a fresh system disk (a new release copy in /opt/dify) and the old data disk.
            fs.rmSync(path.join(workDir, "opt-dify"), { recursive: true, force: true });
            const again = deploy(tag, scenario, workDir);
            expect(again.secrets).toEqual(current.secrets);
            expect(again.files).toEqual(current.files);
            expect(again.renders.map((r) => r.project)).toEqual(current.renders.map((r) => r.project));
        });
    });
});
