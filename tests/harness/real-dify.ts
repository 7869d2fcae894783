// Dify's real API server (its own code, its own Python environment, PostgreSQL, Redis) on 127.0.0.1, for the
// tests that must hold against Dify itself rather than against tests/servers/dify-console-server.ts.
//
//   const dify = await startRealDify({ initPassword: "init-1", admin: { email, name, password } });
//   ... dify.url (console API below /console/api), dify.sql("select ..."), dify.redis("keys", "*") ...
//   await dify.close();
//
// What runs, per call of startRealDify:
//   - a fresh database, CREATE DATABASE ... TEMPLATE dify_template, in this process's PostgreSQL cluster;
//   - its own Redis (no persistence): databases 0 (Dify) and 1 (Celery's broker; no worker runs, so queued
//     tasks just sit there);
//   - gunicorn with 1 gevent-websocket worker, as api/docker/entrypoint.sh starts the container
//     (`app:socketio_app`, Dify's gunicorn.conf.py, which patches psycopg2 and gRPC for gevent);
//   - the plugin daemon stand-in (tests/servers/plugin-daemon-stand-in.ts) unless `pluginDaemon` is false;
//     then PLUGIN_DAEMON_URL is a closed loopback port.
//
// Shared set-up, and why it is shaped this way (measured on this 2-core machine; the test prints the timings):
//   - Dify's 171 migrations (`flask db upgrade`) take 18 s on an idle machine, 25-45 s under load, so they run
//     once into a template *data directory* cached in .cache/real-dify/, keyed by the content of api/migrations/
//     and PostgreSQL's major version. It is built in a scratch folder and renamed into place only after a clean
//     shutdown, under a file lock (flock), so concurrent vitest workers wait for one build instead of racing,
//     and a killed build leaves nothing that looks finished. The alembic head is recorded and checked each time
//     a cluster starts from it.
//   - Each vitest worker process (test files run in forked workers) copies that data directory (52 MB) and
//     starts its own cluster (0.6-2 s), shared by every RealDify of that process and stopped with the last one;
//     each RealDify then gets CREATE DATABASE ... TEMPLATE (0.2-1 s). A cluster shared across processes would
//     need an owner to stop it and would outlive the run when a worker dies; one per process needs no
//     cross-process bookkeeping and costs a few tens of MB.
//   - What dominates is Dify itself: gunicorn's worker imports Dify for 12-15 s of CPU (15-20 s wall alone or
//     two at once when idle, up to 50 s under load). A worker holds about 420 MB (worker 375 MB + master 45 MB).
//   - Nothing is left running: every process is started in its own process group and stopped by group (the
//     API with SIGKILL: a gentle stop costs 5-12 s and the data is thrown away); a watchdog shell (one per Node
//     process, alive only while something runs) kills the groups and deletes the temporary files if the Node
//     process dies without closing (vitest killing a worker).
//
// The `ha` topology (Dify on managed services, several API servers on one database): startDifyExternalServices
// stands in for RDS PostgreSQL (an account that is not a superuser, owning empty `dify` and `dify_plugin`, allowed to
// create pgvector as RDS's privileged account is), Tair/Redis, the OSS bucket and the shared keys; its flask() runs
// `flask upgrade-db` as the singleton does, and startRealDify({ externalServices }) starts app nodes on them.
//   const services = await startDifyExternalServices();
//   await services.flask(["upgrade-db"]);
//   const node = await startRealDify({ externalServices: services, pluginDaemon: false });
//
// Network: Dify is given only loopback addresses, and every Python process started here (migrations, the API)
// loads real-dify/sitecustomize.py, an audit hook that refuses connections and name lookups aimed anywhere but
// loopback (refusals are logged; see refusedConnections()). The stand-in is started by its own module.
import { ChildProcess, execFile, execFileSync, spawn } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { probeDify, setupDify } from "../../dynamic-providers/dify/transport";
import { difyReleaseDir } from "./dify-release";
import { DifyPython, ensureDifyPython } from "./dify-python";
import { PROJECT_ROOT } from "../../scripts/project-root";
import { PluginDaemonStandIn, PluginDaemonStandInOptions, startPluginDaemonStandIn } from "../servers/plugin-daemon-stand-in";

export const REAL_DIFY_DEFAULT_TAG = "1.14.1";

/** The connections the loopback guard (sitecustomize.py) refused, one line each, from its log. */
function refusedConnectionsIn(guardLog: string): string[] {
    try {
        return fs.readFileSync(guardLog, "utf8").split("\n").filter(Boolean);
    } catch {
        return [];
    }
}

export interface RealDifyAdmin {
    email: string;
    name: string;
    password: string;
}

/** The plugin daemon stand-in attached to a RealDify (tests/servers/plugin-daemon-stand-in.ts). */
export type PluginDaemonStandInHandle = PluginDaemonStandIn;

export interface RealDifyOptions {
    /** Dify release (default 1.14.1); its api/ comes from difyReleaseDir, its Python from ensureDifyPython. */
    tag?: string;
    /** Dify's INIT_PASSWORD (at most 30 characters): /init must then be passed before /setup. */
    initPassword?: string;
    /** Set Dify up through its own API (POST /init with initPassword, then POST /setup) before returning. */
    admin?: RealDifyAdmin;
    /** Extra or overriding settings for Dify's API process (applied last). */
    env?: Record<string, string>;
    /**
     * Start the plugin daemon stand-in (default true);
     * false leaves it out (PLUGIN_DAEMON_URL is then a closed loopback port); an object is passed to
     * startPluginDaemonStandIn as its options.
     */
    pluginDaemon?: boolean | PluginDaemonStandInOptions;
    /** How long the API may take to answer GET /console/api/setup (default 300 s: importing Dify is slow). */
    startTimeoutSeconds?: number;
    /**
     * Run as an app node of the `ha` topology on these shared services (startDifyExternalServices): Dify connects to
     * their database as their account, to their Redis, with their storage, SECRET_KEY and vector store settings
     * (services.env), and MIGRATION_ENABLED stays false, so the database must be migrated already (by the
     * singleton: services.flask(["upgrade-db"])). No database or Redis of its own is made, and close() stops only
     * this instance's processes. Default: none (a fresh copy of the migrated template and a Redis of its own).
     */
    externalServices?: DifyExternalServices;
}

export interface RealDifyTimings {
    /** ensureDifyPython (0 when cached in this process, a stat otherwise; minutes when it builds). */
    environment: number;
    /** Starting this process's PostgreSQL cluster from the template (0 when it was already running, or with
     *  `externalServices`: then template, database and redis are 0 too). */
    postgres: number;
    /** Finding the migrated template data directory: a check when cached, else building it or waiting for
     *  another process that builds it (under the lock). */
    template: number;
    /** CREATE DATABASE ... TEMPLATE dify_template. */
    database: number;
    redis: number;
    pluginDaemon: number;
    /** From starting gunicorn until GET /console/api/setup answered. */
    api: number;
    /** POST /init and /setup (0 without `admin`). */
    setup: number;
    total: number;
    /** Whether this call built the template (a cold start). */
    templateBuilt: boolean;
}

export interface RealDify {
    /** Dify's web address, http://127.0.0.1:<port>; the console API is below /console/api. */
    readonly url: string;
    /** From the X-Version header of GET /console/api/setup. */
    readonly version: string;
    readonly tag: string;
    readonly python: DifyPython;
    readonly databaseName: string;
    readonly initPassword?: string;
    readonly admin?: RealDifyAdmin;
    /** The stand-in when started (see RealDifyOptions.pluginDaemon). */
    readonly pluginDaemon?: PluginDaemonStandInHandle;
    /** The exact environment Dify's API process was started with. */
    readonly env: Readonly<Record<string, string>>;
    readonly ports: { readonly api: number; readonly redis: number; readonly postgres: number };
    /** Where the logs are: Dify's API (gunicorn), its Redis, this process's PostgreSQL cluster. */
    readonly logs: { readonly api: string; readonly redis: string; readonly postgres: string };
    readonly timings: RealDifyTimings;
    /** psql against this instance's database (unaligned, tuples only, `|` between columns); throws on error. */
    sql(query: string): Promise<string>;
    /** redis-cli against this instance's Redis (database 0 unless `-n` is given), trimmed output. */
    redis(...args: string[]): Promise<string>;
    /** The last lines of Dify's API log (default 60). */
    logTail(lines?: number): string;
    /** The process ids of every process this instance started that is still alive (its own groups). */
    processIds(): number[];
    /** Non-loopback connections and name lookups the network guard refused in this instance's processes. */
    refusedConnections(): string[];
    /** Stops every process this instance started (and their children), drops its database (not the external
     *  services' one). Idempotent. */
    close(): Promise<void>;
}

/** Options of startDifyExternalServices. */
export interface DifyExternalServicesOptions {
    /** Dify release (default 1.14.1): its Python runs flask() and runPython(), its template gives alembicHead. */
    tag?: string;
    /**
     * The RDS account (default "dify_admin"): LOGIN, not a superuser, password-authenticated (scram-sha-256, a random
     * letters-and-digits password as the stack's), owner of both databases. It must not exist in this process's
     * cluster yet.
     */
    account?: string;
    /** Dify's database (default "dify"; it also holds pgvector's tables), created empty, owned by the account. */
    database?: string;
    /** The plugin daemon's database (default "dify_plugin"), created empty, owned by the account. */
    pluginDatabase?: string;
    /**
     * Extensions the account may CREATE though it is not a superuser (default ["vector"]), as ApsaraDB RDS lets its
     * privileged account create the extensions it supports: pgextwlist's whitelist, set for this account only
     * (ALTER ROLE ... SET). Extensions not listed follow PostgreSQL's own rule (only trusted ones). Each must be
     * installed (Debian's postgresql-<major>-<name>; pgvector's extension is "vector"), as must pgextwlist: a
     * missing one is an error naming the package, never a skip.
     */
    accountExtensions?: string[];
}

/**
 * The managed services of the `ha` topology, stood in for on 127.0.0.1 and shared by several Dify processes: an
 * RDS-like PostgreSQL (an account that is not a superuser, owning the empty databases `dify` and `dify_plugin`, in
 * this process's cluster), a Redis with a password (Tair), a storage folder (the OSS bucket) and the shared secrets.
 * Migrations are the caller's: flask(["upgrade-db"]) as the singleton runs them.
 */
export interface DifyExternalServices {
    readonly tag: string;
    readonly python: DifyPython;
    readonly postgres: {
        readonly port: number;
        readonly major: number;
        readonly account: string;
        readonly password: string;
        readonly database: string;
        readonly pluginDatabase: string;
    };
    readonly redisServer: { readonly port: number; readonly password: string };
    /** The head of this release's migrations, as the harness's template recorded it (`flask db upgrade`). */
    readonly alembicHead: string;
    /**
     * What every Dify process of the topology gets for these services, the singleton and the app nodes alike:
     * DB_*, REDIS_*, CELERY_BROKER_URL, storage (one folder for all), SECRET_KEY, INNER_API_KEY_FOR_PLUGIN, and the
     * vector store in Dify's database (VECTOR_STORE=pgvector, PGVECTOR_HOST/PORT/USER/PASSWORD/DATABASE).
     */
    readonly env: Readonly<Record<string, string>>;
    /** Redis's and the PostgreSQL cluster's logs, and the folder flask() and runPython() write theirs to. */
    readonly logs: { readonly redis: string; readonly postgres: string; readonly dir: string };
    readonly timings: { readonly environment: number; readonly template: number; readonly postgres: number; readonly account: number; readonly redis: number; readonly total: number };
    /**
     * psql (unaligned, tuples only, `|` between columns; throws on error) in `database` (default Dify's), as the
     * superuser (default) or as the RDS account with its password (`as: "account"`).
     */
    sql(query: string, options?: { as?: "superuser" | "account"; database?: string }): Promise<string>;
    /** redis-cli against the Redis (authenticated; database 0 unless `-n` is given), trimmed output. */
    redis(...args: string[]): Promise<string>;
    /**
     * Dify's `flask <args>` from its api/ folder with the whole environment of a Dify process on these services
     * and MIGRATION_ENABLED=true (`env` last): `flask upgrade-db` is what api/docker/entrypoint.sh runs then. Never
     * throws for a non-zero exit: resolves with the exit code (null: killed at the timeout, default 600 s), stdout and
     * stderr together, and the wall time.
     */
    flask(args: string[], options?: { env?: Record<string, string>; timeoutSeconds?: number }): Promise<{ code: number | null; output: string; seconds: number }>;
    /**
     * A Python script run in Dify's environment from its api/ folder (so `import configs`, `core...` work) with the
     * same environment as flask() (MIGRATION_ENABLED stays false; `env` last). Resolves with its stdout; throws with
     * its stderr's tail when it fails (or after `timeoutSeconds`, default 300).
     */
    runPython(script: string, options?: { env?: Record<string, string>; timeoutSeconds?: number }): Promise<string>;
    /** The process ids of every process the services started that is still alive (Redis, flask(), runPython()). */
    processIds(): number[];
    /** Non-loopback connections and name lookups the network guard refused in flask() and runPython(). */
    refusedConnections(): string[];
    /** Stops Redis and anything flask()/runPython() left, drops both databases and the account. Idempotent. */
    close(): Promise<void>;
}

// ------------------------------------------------------------------------------------------------------
// Constants.

const CACHE_ROOT = path.join(PROJECT_ROOT, ".cache", "real-dify");
/** The network guard; copied into the temporary root so Python's bytecode cache is not written into the repository. */
const GUARD_SOURCE = path.join(PROJECT_ROOT, "tests", "harness", "real-dify", "sitecustomize.py");
/** Bump when the way the template is built changes (not needed for a new Dify or PostgreSQL: both are in the key). */
const TEMPLATE_RECIPE = 1;
const TEMPLATE_DATABASE = "dify_template";
const PG_SUPERUSER = "postgres";
/** A loopback port nothing listens on (tcpmux; refused at once), for services that must not be reached. */
const CLOSED_LOOPBACK_URL = "http://127.0.0.1:1";

// ------------------------------------------------------------------------------------------------------
// Small helpers.

function seconds(since: number): number {
    return Math.round((Date.now() - since) / 10) / 100;
}

/** REAL_DIFY_DEBUG=1: progress lines on stderr. */
function debug(message: string): void {
    if (process.env.REAL_DIFY_DEBUG === "1") {
        process.stderr.write(`real-dify: ${message}\n`);
    }
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function which(command: string): string | undefined {
    for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])) {
        const candidate = path.join(dir, command);
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            return candidate;
        } catch {
            // next
        }
    }
    return undefined;
}

function tailOfFile(file: string, lines: number): string {
    try {
        const text = fs.readFileSync(file, "utf8");
        return text.split("\n").slice(-lines - 1).join("\n").trimEnd();
    } catch {
        return `(no log at ${file})`;
    }
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile(
            command,
            args,
            { env: options.env ?? { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }, cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 << 20 },
            (err, stdout, stderr) => {
                if (err) {
                    const detail = String(stderr || stdout || err.message).trim();
                    reject(new Error(`${path.basename(command)} ${args.join(" ")} failed: ${detail}`));
                } else {
                    resolve(stdout);
                }
            },
        );
    });
}

/** A port free on 127.0.0.1 right now (the kernel's choice); callers retry when someone takes it first. */
function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port;
            server.close(() => resolve(port));
        });
    });
}

/** The SHA-256 of every file below `root` (paths and contents), leaving out Python's bytecode caches. */
function folderDigest(root: string): string {
    const hash = createHash("sha256");
    const walk = (dir: string, prefix: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            if (entry.name === "__pycache__" || entry.name.endsWith(".pyc")) {
                continue;
            }
            const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
            if (entry.isDirectory()) {
                walk(path.join(dir, entry.name), relative);
            } else if (entry.isFile()) {
                hash.update(`${relative}\0`).update(fs.readFileSync(path.join(dir, entry.name))).update("\0");
            }
        }
    };
    walk(root, "");
    return hash.digest("hex");
}

// ------------------------------------------------------------------------------------------------------
// System tools: PostgreSQL and Redis from Debian's packages.

interface SystemTools {
    pgBin: string;
    pgMajor: number;
    psql: string;
    redisServer: string;
    redisCli: string;
    flock: string;
    /** As root (PostgreSQL refuses to run as root): setpriv and the unprivileged account PostgreSQL runs as. */
    dropTo?: { setpriv: string; user: string };
}

let systemTools: SystemTools | undefined;

function findPostgres(): { pgBin: string; pgMajor: number } | undefined {
    const base = "/usr/lib/postgresql";
    if (!fs.existsSync(base)) {
        return undefined;
    }
    const majors = fs
        .readdirSync(base)
        .map(Number)
        .filter((major) => major >= 13 && fs.existsSync(path.join(base, String(major), "bin", "postgres")))
        .sort((a, b) => b - a);
    return majors.length ? { pgBin: path.join(base, String(majors[0]), "bin"), pgMajor: majors[0] } : undefined;
}

function missingTools(): string[] {
    const missing: string[] = [];
    const pg = findPostgres();
    if (!pg) {
        missing.push("PostgreSQL server 13+ (Debian package postgresql: /usr/lib/postgresql/<major>/bin/postgres)");
    } else {
        for (const tool of ["initdb", "psql"]) {
            if (!fs.existsSync(path.join(pg.pgBin, tool))) {
                missing.push(`${tool} (in ${pg.pgBin})`);
            }
        }
    }
    if (!which("redis-server")) {
        missing.push("redis-server (Debian package redis-server)");
    }
    if (!which("redis-cli")) {
        missing.push("redis-cli (Debian package redis-tools)");
    }
    for (const tool of process.getuid?.() === 0 ? ["setpriv", "flock"] : ["flock"]) {
        if (!which(tool)) {
            missing.push(`${tool} (Debian package util-linux)`);
        }
    }
    return missing;
}

/** The account PostgreSQL runs as: postgres (the Debian package's), else nobody, else one created here. */
function postgresUser(): string {
    for (const user of ["postgres", "nobody"]) {
        try {
            execFileSync("id", ["-u", user], { stdio: "pipe" });
            return user;
        } catch {
            // next
        }
    }
    const user = "real-dify-pg";
    try {
        execFileSync("id", ["-u", user], { stdio: "pipe" });
    } catch {
        execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], { stdio: "pipe" });
    }
    return user;
}

/** Finds PostgreSQL and Redis, installing them with apt-get (as root) when missing; throws naming what is missing. */
function ensureSystemTools(): SystemTools {
    if (systemTools) {
        return systemTools;
    }
    let missing = missingTools();
    if (missing.length) {
        const isRoot = process.getuid?.() === 0;
        const aptGet = which("apt-get");
        if (!isRoot || !aptGet) {
            throw new Error(
                `The real-Dify harness needs: ${missing.join("; ")}. ` +
                    (aptGet ? "Install them (as root): apt-get install -y postgresql redis-server." : "Install PostgreSQL and Redis; no apt-get here."),
            );
        }
        process.stderr.write(`real-dify: installing PostgreSQL and Redis from Debian's packages (missing: ${missing.join("; ")})\n`);
        const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
        // Concurrent vitest workers: one apt-get at a time (dpkg's own lock would fail the others).
        const flock = which("flock");
        const aptInstall = [aptGet, "install", "-y", "--no-install-recommends", "postgresql", "redis-server", "redis-tools", "util-linux"];
        const install = () =>
            execFileSync(flock ?? aptInstall[0], flock ? [path.join(os.tmpdir(), "real-dify-apt.lock"), ...aptInstall] : aptInstall.slice(1), {
                env,
                stdio: ["ignore", "pipe", "pipe"],
                maxBuffer: 64 << 20,
            });
        try {
            install();
        } catch {
            try {
                execFileSync(aptGet, ["update"], { env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
                install();
            } catch (err) {
                const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split("\n").slice(-10).join("\n");
                throw new Error(`The real-Dify harness needs ${missing.join("; ")}, and apt-get could not install them: ${stderr || String(err)}`);
            }
        }
        missing = missingTools();
        if (missing.length) {
            throw new Error(`The real-Dify harness needs ${missing.join("; ")}; still missing after apt-get install postgresql redis-server.`);
        }
    }
    const pg = findPostgres()!;
    systemTools = {
        ...pg,
        psql: path.join(pg.pgBin, "psql"),
        redisServer: which("redis-server")!,
        redisCli: which("redis-cli")!,
        flock: which("flock")!,
        dropTo: process.getuid?.() === 0 ? { setpriv: which("setpriv")!, user: postgresUser() } : undefined,
    };
    return systemTools;
}

// ------------------------------------------------------------------------------------------------------
// Processes: each in its own group, tracked for the watchdog.

interface Supervised {
    child: ChildProcess;
    pid: number;
    log: string;
    exited: Promise<number | null>;
    exitCode: number | null | undefined;
}

interface ProcessState {
    /** This Node process's temporary root (clusters, instances, the watchdog's list). */
    root?: string;
    watchdog?: ChildProcess;
    groups: Set<number>;
    /** startRealDify calls in progress (the root must stay while they set up). */
    busy: number;
}

const processState: ProcessState = { groups: new Set(), busy: 0 };

function writeGroups(): void {
    if (!processState.root) {
        return;
    }
    const file = path.join(processState.root, "pgids");
    fs.writeFileSync(`${file}.tmp`, [...processState.groups].map((g) => `${g}\n`).join(""));
    fs.renameSync(`${file}.tmp`, file);
}

/** The process's temporary root, with its watchdog: kills the groups listed and deletes the root if Node dies. */
function processRoot(): string {
    if (processState.root && fs.existsSync(processState.root)) {
        return processState.root;
    }
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `real-dify-${process.pid}-`));
    // PostgreSQL (unprivileged) must traverse it to reach its data directory.
    fs.chmodSync(root, 0o711);
    processState.root = root;
    writeGroups();
    fs.mkdirSync(path.join(root, "python"));
    fs.copyFileSync(GUARD_SOURCE, path.join(root, "python", "sitecustomize.py"));
    // POSIX sh (dash): its kill takes no "--"; "-<pgid>" names the group.
    const script =
        'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
        'if [ -f "$2/pgids" ]; then for g in $(cat "$2/pgids"); do kill -KILL "-$g" 2>/dev/null; done; fi; rm -rf -- "$2"';
    const watchdog = spawn("/bin/sh", ["-c", script, "real-dify-watchdog", String(process.pid), root], { detached: true, stdio: "ignore" });
    watchdog.unref();
    processState.watchdog = watchdog;
    return root;
}

/** When nothing runs any more: stop the watchdog and delete the root, so a closed harness leaves nothing. */
function releaseProcessRootIfIdle(): void {
    if (processState.groups.size || activeCluster || processState.busy > 0) {
        return;
    }
    const { watchdog, root } = processState;
    processState.watchdog = undefined;
    processState.root = undefined;
    if (watchdog?.pid) {
        try {
            process.kill(-watchdog.pid, "SIGKILL");
        } catch {
            // gone
        }
    }
    if (root) {
        fs.rmSync(root, { recursive: true, force: true });
    }
}
process.once("exit", () => {
    for (const group of processState.groups) {
        try {
            process.kill(-group, "SIGKILL");
        } catch {
            // gone
        }
    }
    if (processState.watchdog?.pid) {
        try {
            process.kill(-processState.watchdog.pid, "SIGKILL");
        } catch {
            // gone
        }
    }
    if (processState.root) {
        fs.rmSync(processState.root, { recursive: true, force: true });
    }
});

/** Starts `command` in its own process group, output to `log` (stdout to `stdout` instead when given). */
function supervise(command: string, args: string[], options: { env: Record<string, string>; cwd: string; log: string; stdout?: string }): Supervised {
    const fd = fs.openSync(options.log, "a");
    const outFd = options.stdout ? fs.openSync(options.stdout, "a") : fd;
    let child: ChildProcess;
    try {
        child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", outFd, fd] });
    } finally {
        fs.closeSync(fd);
        if (outFd !== fd) {
            fs.closeSync(outFd);
        }
    }
    if (!child.pid) {
        throw new Error(`could not start ${command}`);
    }
    const pid = child.pid;
    processState.groups.add(pid);
    writeGroups();
    const supervised: Supervised = {
        child,
        pid,
        log: options.log,
        exitCode: undefined,
        exited: new Promise((resolve) => {
            child.once("exit", (code, signal) => {
                supervised.exitCode = code ?? (signal ? -1 : null);
                resolve(code);
            });
            child.once("error", () => {
                supervised.exitCode = -1;
                resolve(-1);
            });
        }),
    };
    return supervised;
}

/** The processes of group `pgid`; with `zombies` false, only those not yet dead (state Z: dead, not reaped). */
function groupMembers(pgid: number, zombies = false): number[] {
    try {
        return execFileSync("ps", ["-e", "-o", "pid=,pgid=,stat="], { encoding: "utf8" })
            .split("\n")
            .map((line) => line.trim().split(/\s+/))
            .filter(([pid, group, stat]) => Number(group) === pgid && Number(pid) > 0 && (zombies || !stat?.startsWith("Z")))
            .map(([pid]) => Number(pid));
    } catch {
        return [];
    }
}

/** Sends `signal` to the process (not its group), waits up to `graceMs`, then kills the whole group. */
async function stopGroup(proc: Supervised, signal: NodeJS.Signals, graceMs: number, toGroup = true): Promise<void> {
    if (proc.exitCode === undefined) {
        try {
            process.kill(toGroup ? -proc.pid : proc.pid, signal);
        } catch {
            // already gone
        }
        await Promise.race([proc.exited, sleep(graceMs)]);
    }
    // Whatever is left in the group (children that outlived their parent) goes too; then wait (bounded) until
    // the dead are reaped (by Node for our child, by init for orphans), so no pid of ours is left at all.
    for (let attempt = 0; attempt < 100 && groupMembers(proc.pid, true).length; attempt++) {
        if (groupMembers(proc.pid).length) {
            try {
                process.kill(-proc.pid, "SIGKILL");
            } catch {
                // only zombies left
            }
        }
        await sleep(100);
    }
    processState.groups.delete(proc.pid);
    writeGroups();
}

// ------------------------------------------------------------------------------------------------------
// A cross-process lock: flock(1) holds it while its `cat` reads our stdin; closing stdin (or dying) releases it.

async function withFileLock<T>(lockFile: string, body: () => Promise<T>): Promise<T> {
    const tools = ensureSystemTools();
    fs.mkdirSync(path.dirname(lockFile), { recursive: true });
    const holder = spawn(tools.flock, ["-x", lockFile, "/bin/sh", "-c", "echo locked; exec cat >/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
        let stderr = "";
        holder.stderr!.on("data", (chunk) => (stderr += chunk));
        holder.stdout!.once("data", () => resolve());
        holder.once("exit", (code) => reject(new Error(`flock ${lockFile} exited (${code}): ${stderr.trim()}`)));
        holder.once("error", reject);
    });
    try {
        return await body();
    } finally {
        holder.stdin!.end();
        await new Promise((resolve) => (holder.exitCode !== null ? resolve(undefined) : holder.once("exit", resolve)));
    }
}

// ------------------------------------------------------------------------------------------------------
// Dify's environment.

interface EnvironmentInputs {
    python: DifyPython;
    home: string;
    guardLog: string;
    postgresPort: number;
    database: string;
    redisPort?: number;
    apiUrl?: string;
    initPassword?: string;
    pluginDaemon?: { url: string; apiKey: string; marketplaceUrl?: string };
}

/**
 * The whole environment of a Dify process: nothing is inherited from the test's own environment, so a proxy
 * setting, a stray DB_HOST or GUNICORN_CMD_ARGS on the machine cannot change what runs.
 */
function difyEnvironment(inputs: EnvironmentInputs): Record<string, string> {
    const url = inputs.apiUrl ?? CLOSED_LOOPBACK_URL;
    const redisPort = String(inputs.redisPort ?? 1);
    const env: Record<string, string> = {
        PATH: `${path.dirname(inputs.python.python)}:/usr/local/bin:/usr/bin:/bin`,
        // gunicorn and libraries write below HOME; never into the real one.
        HOME: inputs.home,
        TMPDIR: inputs.home,
        // As api/docker/entrypoint.sh sets them.
        LANG: "C.UTF-8",
        LC_ALL: "C.UTF-8",
        PYTHONIOENCODING: "utf-8",
        PYTHONUNBUFFERED: "1",
        // The network guard (real-dify/sitecustomize.py).
        PYTHONPATH: path.join(processRoot(), "python"),
        REAL_DIFY_NETWORK_GUARD: "1",
        REAL_DIFY_GUARD_LOG: inputs.guardLog,
        FLASK_APP: "app.py",
        MODE: "api",
        DEPLOY_ENV: "PRODUCTION",
        LOG_LEVEL: "INFO",
        // Explicit, per instance and >= 32 bytes: with none Dify generates one and stores it in its storage
        // (configs/secret_key.py); shorter ones make PyJWT warn on every token. Signs sessions, JWTs, CSRF.
        SECRET_KEY: randomBytes(42).toString("base64"),
        MIGRATION_ENABLED: "false",
        DB_TYPE: "postgresql",
        DB_HOST: "127.0.0.1",
        DB_PORT: String(inputs.postgresPort),
        DB_USERNAME: PG_SUPERUSER,
        // The cluster trusts loopback connections; Dify still needs some password in its URL.
        DB_PASSWORD: "unused-trust-auth",
        DB_DATABASE: inputs.database,
        REDIS_HOST: "127.0.0.1",
        REDIS_PORT: redisPort,
        REDIS_USERNAME: "",
        REDIS_PASSWORD: "",
        REDIS_DB: "0",
        // Without it Celery's .delay() (mail, tool/workflow tasks) would look for amqp://localhost.
        CELERY_BROKER_URL: `redis://127.0.0.1:${redisPort}/1`,
        CELERY_BACKEND: "redis",
        STORAGE_TYPE: "opendal",
        OPENDAL_SCHEME: "fs",
        OPENDAL_FS_ROOT: path.join(inputs.home, "storage"),
        // The compose default (the deployed stack uses it); the client is only built when a dataset is indexed,
        // and then meets a closed port.
        VECTOR_STORE: "weaviate",
        WEAVIATE_ENDPOINT: CLOSED_LOOPBACK_URL,
        WEAVIATE_API_KEY: "unused",
        // Every address Dify prints or redirects to is the server itself (http: cookies get no __Host- prefix).
        CONSOLE_API_URL: url,
        CONSOLE_WEB_URL: url,
        SERVICE_API_URL: url,
        APP_API_URL: url,
        APP_WEB_URL: url,
        FILES_URL: url,
        INTERNAL_FILES_URL: url,
        TRIGGER_URL: url,
        CONSOLE_CORS_ALLOW_ORIGINS: "*",
        WEB_API_CORS_ALLOW_ORIGINS: "*",
        // No SSRF proxy: Dify then connects directly, so it reaches loopback MCP/OAuth servers in tests.
        SSRF_PROXY_HTTP_URL: "",
        SSRF_PROXY_HTTPS_URL: "",
        SSRF_PROXY_ALL_URL: "",
        // Plugin daemon: the stand-in, or a closed port (routes that do not need it still work).
        PLUGIN_DAEMON_URL: inputs.pluginDaemon?.url ?? CLOSED_LOOPBACK_URL,
        PLUGIN_DAEMON_KEY: inputs.pluginDaemon?.apiKey ?? "real-dify-no-daemon",
        PLUGIN_DAEMON_TIMEOUT: "30",
        // What compose passes as PLUGIN_DIFY_INNER_API_KEY; the API reads this name.
        INNER_API_KEY_FOR_PLUGIN: randomBytes(24).toString("hex"),
        PLUGIN_REMOTE_INSTALL_HOST: "127.0.0.1",
        ENDPOINT_URL_TEMPLATE: `${inputs.pluginDaemon?.url ?? CLOSED_LOOPBACK_URL}/e/{hook_id}`,
        MARKETPLACE_ENABLED: inputs.pluginDaemon?.marketplaceUrl ? "true" : "false",
        MARKETPLACE_API_URL: inputs.pluginDaemon?.marketplaceUrl ?? CLOSED_LOOPBACK_URL,
        // Defaults that would reach the Internet: creators.dify.ai, updates.dify.ai (GET /version; empty
        // means "no check"), tmpl.dify.ai (app and pipeline templates), sandbox:8194 (code nodes).
        CREATORS_PLATFORM_FEATURES_ENABLED: "false",
        CREATORS_PLATFORM_API_URL: CLOSED_LOOPBACK_URL,
        CHECK_UPDATE_URL: "",
        HOSTED_FETCH_APP_TEMPLATES_MODE: "builtin",
        HOSTED_FETCH_PIPELINE_TEMPLATES_MODE: "builtin",
        CODE_EXECUTION_ENDPOINT: CLOSED_LOOPBACK_URL,
        SENTRY_DSN: "",
        ENABLE_OTEL: "false",
        MAIL_TYPE: "",
    };
    if (inputs.initPassword !== undefined) {
        env.INIT_PASSWORD = inputs.initPassword;
    }
    return env;
}

// ------------------------------------------------------------------------------------------------------
// PostgreSQL: the cached template data directory, and this process's cluster.

interface TemplateInfo {
    dataDir: string;
    alembicHead: string;
    built: boolean;
    seconds: number;
}

interface StartedPostgres {
    proc: Supervised;
    port: number;
    dir: string;
}

/** psql as the superuser, or as `login` (a role and its password) when given. */
async function psql(port: number, database: string, query: string, timeoutMs = 60_000, login?: { user: string; password: string }): Promise<string> {
    const tools = ensureSystemTools();
    // -X: no ~/.psqlrc; -q -A -t: values only, unaligned; ON_ERROR_STOP: an SQL error is an exit status.
    const user = login?.user ?? PG_SUPERUSER;
    const args = ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query];
    const out = await run(tools.psql, args, {
        env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", PGCONNECT_TIMEOUT: "10", ...(login ? { PGPASSWORD: login.password } : {}) },
        timeoutMs,
    });
    return out.replace(/\n$/, "");
}

/** Starts a postmaster on `dataDir` (owned by the PostgreSQL user) on a free port, retrying if the port is taken. */
async function startPostgres(dataDir: string, log: string): Promise<StartedPostgres> {
    let lastError = "";
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        const settings = [
            "listen_addresses=127.0.0.1",
            // TCP only: no socket in /var/run/postgresql.
            "unix_socket_directories=",
            // Throw-away data: no durability needed.
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            // Several Dify instances per cluster, each with SQLAlchemy's pool (30 + 10 overflow, opened lazily).
            "max_connections=300",
            "shared_buffers=64MB",
        ];
        // setpriv exec()s postgres: the pid we hold is the postmaster's (signals reach it directly).
        const [command, args] = asPostgresUser("postgres", ["-D", dataDir, "-p", String(port), ...settings.flatMap((setting) => ["-c", setting])]);
        const proc = supervise(command, args, { env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" }, cwd: "/", log });
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline && proc.exitCode === undefined) {
            try {
                await psql(port, "postgres", "select 1", 5_000);
                return { proc, port, dir: path.dirname(dataDir) };
            } catch {
                await sleep(100);
            }
        }
        lastError = tailOfFile(log, 15);
        await stopGroup(proc, "SIGKILL", 1_000);
        if (!/already in use|could not bind/i.test(lastError)) {
            break;
        }
    }
    throw new Error(`PostgreSQL did not start on ${dataDir}:\n${lastError}`);
}

/** Fast shutdown (SIGINT): PostgreSQL ends with a checkpoint, so the data directory is clean. */
async function stopPostgres(pg: StartedPostgres): Promise<void> {
    await stopGroup(pg.proc, "SIGINT", 30_000, false);
}

function chownToPostgres(target: string): void {
    const dropTo = ensureSystemTools().dropTo;
    if (dropTo) {
        execFileSync("chown", ["-R", `${dropTo.user}:`, target], { stdio: "pipe" });
    }
}

/** A PostgreSQL program and its arguments, run as the unprivileged account when we are root. */
function asPostgresUser(program: string, args: string[]): [string, string[]] {
    const tools = ensureSystemTools();
    const binary = path.join(tools.pgBin, program);
    if (!tools.dropTo) {
        return [binary, args];
    }
    const { setpriv, user } = tools.dropTo;
    return [setpriv, [`--reuid=${user}`, `--regid=${user}`, "--clear-groups", binary, ...args]];
}

/** The cached, migrated template data directory for Dify `tag`, built under a lock when missing. */
async function ensureTemplate(tag: string, python: DifyPython): Promise<TemplateInfo> {
    const started = Date.now();
    const tools = ensureSystemTools();
    const migrations = path.join(difyReleaseDir(tag, "api"), "migrations");
    const key = createHash("sha256").update(`recipe=${TEMPLATE_RECIPE} pg=${tools.pgMajor} migrations=${folderDigest(migrations)}`).digest("hex").slice(0, 16);
    const home = path.join(CACHE_ROOT, `pg${tools.pgMajor}-${key}`);
    const metaFile = path.join(home, "template.json");
    const readMeta = (): TemplateInfo | undefined => {
        try {
            const meta = JSON.parse(fs.readFileSync(metaFile, "utf8")) as { alembicHead: string };
            const dataDir = path.join(home, "data");
            const complete = meta.alembicHead && fs.existsSync(path.join(dataDir, "PG_VERSION"));
            return complete ? { dataDir, alembicHead: meta.alembicHead, built: false, seconds: 0 } : undefined;
        } catch {
            return undefined;
        }
    };
    const cached = readMeta();
    if (cached) {
        return { ...cached, seconds: seconds(started) };
    }
    return withFileLock(path.join(CACHE_ROOT, ".template.lock"), async () => {
        const again = readMeta();
        if (again) {
            return { ...again, seconds: seconds(started) };
        }
        process.stderr.write(`real-dify: building the PostgreSQL template with Dify ${tag}'s migrations into ${home} (about a minute, once)\n`);
        const scratch = fs.mkdtempSync(path.join(processRoot(), "template-"));
        processState.busy++;
        let pg: StartedPostgres | undefined;
        try {
            chownToPostgres(scratch);
            const dataDir = path.join(scratch, "data");
            try {
                // Trust: only 127.0.0.1 can connect; -N: no fsync, the result is copied after a clean shutdown.
                const [command, args] = asPostgresUser("initdb", ["-D", dataDir, "-U", PG_SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-N"]);
                execFileSync(command, args, { cwd: "/", stdio: "pipe", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
            } catch (err) {
                throw new Error(`initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
            }
            const pgLog = path.join(scratch, "postgres.log");
            pg = await startPostgres(dataDir, pgLog);
            await psql(pg.port, "postgres", `CREATE DATABASE ${TEMPLATE_DATABASE}`);
            const migrationHome = path.join(scratch, "migrate");
            fs.mkdirSync(migrationHome);
            const env = difyEnvironment({
                python,
                home: migrationHome,
                guardLog: path.join(migrationHome, "guard.log"),
                postgresPort: pg.port,
                database: TEMPLATE_DATABASE,
            });
            // `flask db upgrade` (not `flask upgrade-db`): app.py then builds the migrations-only app (database
            // and Flask-Migrate), which needs neither Redis nor storage; upgrade-db would take a Redis lock.
            const migrationLog = path.join(migrationHome, "migrations.log");
            const migrate = supervise(path.join(path.dirname(python.python), "flask"), ["db", "upgrade"], { env, cwd: python.apiDir, log: migrationLog });
            const code = await Promise.race([migrate.exited, sleep(900_000).then(() => "timeout" as const)]);
            if (code !== 0) {
                await stopGroup(migrate, "SIGKILL", 1_000);
                throw new Error(`flask db upgrade failed (${code}):\n${tailOfFile(migrationLog, 40)}`);
            }
            processState.groups.delete(migrate.pid);
            writeGroups();
            const alembicHead = await psql(pg.port, TEMPLATE_DATABASE, "select version_num from alembic_version");
            if (!alembicHead) {
                throw new Error(`flask db upgrade left no alembic_version:\n${tailOfFile(migrationLog, 20)}`);
            }
            await stopPostgres(pg);
            pg = undefined;
            if (fs.existsSync(path.join(dataDir, "postmaster.pid"))) {
                throw new Error(`PostgreSQL did not shut down cleanly:\n${tailOfFile(pgLog, 20)}`);
            }
            // Into the cache: copy beside the final place, then one rename, so a reader sees all or nothing.
            // Staging folders left by a build that was killed are removed (only the lock holder makes them).
            fs.mkdirSync(CACHE_ROOT, { recursive: true });
            for (const entry of fs.readdirSync(CACHE_ROOT)) {
                if (entry.startsWith(".staging-")) {
                    fs.rmSync(path.join(CACHE_ROOT, entry), { recursive: true, force: true });
                }
            }
            const staging = fs.mkdtempSync(path.join(CACHE_ROOT, ".staging-"));
            execFileSync("cp", ["-a", dataDir, path.join(staging, "data")], { stdio: "pipe" });
            const seconds_ = seconds(started);
            const meta = { tag, alembicHead, postgresMajor: tools.pgMajor, recipe: TEMPLATE_RECIPE, builtAt: new Date().toISOString(), seconds: seconds_ };
            fs.writeFileSync(path.join(staging, "template.json"), JSON.stringify(meta, null, 2) + "\n");
            fs.rmSync(home, { recursive: true, force: true });
            fs.renameSync(staging, home);
            process.stderr.write(`real-dify: template built in ${seconds_} s (alembic head ${alembicHead})\n`);
            return { dataDir: path.join(home, "data"), alembicHead, built: true, seconds: seconds_ };
        } finally {
            if (pg) {
                await stopGroup(pg.proc, "SIGKILL", 1_000);
            }
            fs.rmSync(scratch, { recursive: true, force: true });
            processState.busy--;
        }
    });
}

interface Cluster {
    refs: number;
    ready: Promise<StartedPostgres>;
    /** Serializes CREATE DATABASE ... TEMPLATE (PostgreSQL refuses while the template is in use). */
    queue: Promise<unknown>;
    seconds: number;
}

let activeCluster: Cluster | undefined;

async function startCluster(template: TemplateInfo): Promise<StartedPostgres> {
    const dir = fs.mkdtempSync(path.join(processRoot(), "cluster-"));
    const dataDir = path.join(dir, "data");
    execFileSync("cp", ["-a", template.dataDir, dataDir], { stdio: "pipe" });
    chownToPostgres(dir);
    fs.chmodSync(dataDir, 0o700);
    const pg = await startPostgres(dataDir, path.join(dir, "postgres.log"));
    const head = await psql(pg.port, TEMPLATE_DATABASE, "select version_num from alembic_version").catch((err: Error) => `error: ${err.message}`);
    if (head !== template.alembicHead) {
        await stopGroup(pg.proc, "SIGKILL", 1_000);
        throw new Error(
            `The cached template ${template.dataDir} is not what was recorded (alembic head ${JSON.stringify(head)}, expected ${template.alembicHead}); ` +
                `delete ${path.dirname(template.dataDir)} and run again.`,
        );
    }
    return pg;
}

async function acquireCluster(template: TemplateInfo): Promise<{ cluster: Cluster; pg: StartedPostgres; started: boolean }> {
    let started = false;
    if (!activeCluster) {
        const begin = Date.now();
        const cluster: Cluster = { refs: 0, ready: startCluster(template), queue: Promise.resolve(), seconds: 0 };
        cluster.ready.then(
            () => (cluster.seconds = seconds(begin)),
            () => undefined,
        );
        activeCluster = cluster;
        started = true;
    }
    const cluster = activeCluster;
    cluster.refs++;
    try {
        return { cluster, pg: await cluster.ready, started };
    } catch (err) {
        await releaseCluster(cluster);
        throw err;
    }
}

async function releaseCluster(cluster: Cluster): Promise<void> {
    cluster.refs--;
    if (cluster.refs > 0) {
        return;
    }
    if (activeCluster === cluster) {
        activeCluster = undefined;
    }
    const pg = await cluster.ready.catch(() => undefined);
    if (pg) {
        // Immediate shutdown (SIGQUIT): the cluster is thrown away, so no checkpoint is worth waiting for.
        await stopGroup(pg.proc, "SIGQUIT", 10_000, false);
        fs.rmSync(pg.dir, { recursive: true, force: true });
    }
}

async function createDatabase(cluster: Cluster, pg: StartedPostgres, name: string): Promise<void> {
    const attempt = async () => {
        for (let tries = 0; ; tries++) {
            try {
                // FILE_COPY (PostgreSQL 15+; the only way before): 0.2 s here, against 1.8 s for the default
                // WAL_LOG, which writes the whole template (12 MB) to the WAL.
                const strategy = ensureSystemTools().pgMajor >= 15 ? " STRATEGY FILE_COPY" : "";
                await psql(pg.port, "postgres", `CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}${strategy}`);
                return;
            } catch (err) {
                // A backend that just left the template may still be counted for a moment.
                if (tries < 10 && /being accessed by other users/.test((err as Error).message)) {
                    await sleep(500);
                    continue;
                }
                throw err;
            }
        }
    };
    const run_ = cluster.queue.then(attempt, attempt);
    cluster.queue = run_.catch(() => undefined);
    await run_;
}

// ------------------------------------------------------------------------------------------------------
// Redis.

/** redis-cli's arguments for a password (none without one). */
function redisAuth(password: string | undefined): string[] {
    return password ? ["-a", password, "--no-auth-warning"] : [];
}

/** A Redis on a free loopback port; with `password`, clients must AUTH (as Tair's master-replica instances require). */
async function startRedis(dir: string, log: string, password?: string): Promise<{ proc: Supervised; port: number }> {
    const tools = ensureSystemTools();
    let lastError = "";
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        const proc = supervise(
            tools.redisServer,
            // No persistence (--save "", no AOF), loopback only, in the foreground (we hold its pid).
            ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "", "--appendonly", "no"]
                .concat(["--dir", dir, "--daemonize", "no", "--loglevel", "warning"])
                .concat(password ? ["--requirepass", password] : []),
            { env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }, cwd: dir, log },
        );
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline && proc.exitCode === undefined) {
            try {
                if ((await run(tools.redisCli, ["-h", "127.0.0.1", "-p", String(port), ...redisAuth(password), "ping"], { timeoutMs: 2_000 })).trim() === "PONG") {
                    return { proc, port };
                }
            } catch {
                // not yet
            }
            await sleep(50);
        }
        lastError = tailOfFile(log, 10);
        await stopGroup(proc, "SIGKILL", 1_000);
        if (!/in use/i.test(lastError)) {
            break;
        }
    }
    throw new Error(`Redis did not start:\n${lastError}`);
}

// ------------------------------------------------------------------------------------------------------
// The API.

/** One GET at a time (gunicorn accepts before its worker has imported Dify; requests queue meanwhile). */
function getSetup(url: string, timeoutMs: number): Promise<{ status: number; version?: string; body: string }> {
    return new Promise((resolve, reject) => {
        const request = http.get(`${url}/console/api/setup`, { timeout: timeoutMs }, (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk) => (body += chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, version: response.headers["x-version"] as string | undefined, body }));
            response.on("error", reject);
        });
        request.on("timeout", () => request.destroy(new Error("timeout")));
        request.on("error", reject);
    });
}

async function startApi(
    python: DifyPython,
    env: Record<string, string>,
    port: number,
    log: string,
    timeoutSeconds: number,
): Promise<{ proc: Supervised; version: string }> {
    const gunicorn = path.join(path.dirname(python.python), "gunicorn");
    // As api/docker/entrypoint.sh starts the container (SERVER_WORKER_* defaults); gunicorn reads Dify's
    // gunicorn.conf.py from the working directory, as in the container. No control socket: nothing uses it.
    const proc = supervise(
        gunicorn,
        [
            "--bind",
            `127.0.0.1:${port}`,
            "--workers",
            "1",
            "--worker-class",
            "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
            "--worker-connections",
            "10",
            "--timeout",
            "200",
            "--no-control-socket",
            "app:socketio_app",
        ],
        { env, cwd: python.apiDir, log },
    );
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + timeoutSeconds * 1000;
    let last = "";
    while (Date.now() < deadline) {
        if (proc.exitCode !== undefined) {
            await stopGroup(proc, "SIGKILL", 1_000);
            throw new Error(`Dify's API exited (${proc.exitCode}) before answering GET /console/api/setup. Its log ends:\n${tailOfFile(log, 60)}`);
        }
        try {
            const answer = await getSetup(url, Math.max(1_000, Math.min(60_000, deadline - Date.now())));
            if (answer.status === 200 && answer.version) {
                return { proc, version: answer.version };
            }
            // An answer from Dify itself that is not the setup step: it is up and broken (no database, ...).
            await stopGroup(proc, "SIGKILL", 1_000);
            throw new Error(
                `Dify's API answered GET /console/api/setup with HTTP ${answer.status} (X-Version ${answer.version ?? "missing"}): ` +
                    `${answer.body.slice(0, 300)}\nIts log ends:\n${tailOfFile(log, 60)}`,
            );
        } catch (err) {
            if ((err as Error).message.startsWith("Dify's API answered")) {
                throw err;
            }
            last = (err as Error).message;
        }
        await sleep(250);
    }
    await stopGroup(proc, "SIGKILL", 1_000);
    throw new Error(`Dify's API did not answer GET /console/api/setup within ${timeoutSeconds} s (last: ${last}). Its log ends:\n${tailOfFile(log, 60)}`);
}

// ------------------------------------------------------------------------------------------------------
// The plugin daemon stand-in.

function startStandIn(python: DifyPython, options: PluginDaemonStandInOptions | undefined): Promise<PluginDaemonStandInHandle> {
    return startPluginDaemonStandIn(python, options);
}

// ------------------------------------------------------------------------------------------------------
// startRealDify.

let instanceCounter = 0;

/** Starts Dify's real API server on 127.0.0.1 with a fresh database and Redis. See the top of this file. */
export async function startRealDify(options: RealDifyOptions = {}): Promise<RealDify> {
    const began = Date.now();
    const tag = options.tag ?? REAL_DIFY_DEFAULT_TAG;
    if (options.initPassword !== undefined && options.initPassword.length > 30) {
        throw new Error("INIT_PASSWORD must be at most 30 characters (Dify's limit)");
    }
    ensureSystemTools();
    processState.busy++;
    const cleanups: { name: string; step: () => Promise<void> }[] = [];
    const cleanUp = async () => {
        const errors: string[] = [];
        for (const { name, step } of cleanups.splice(0).reverse()) {
            const t = Date.now();
            try {
                await step();
            } catch (err) {
                errors.push(`${name}: ${(err as Error).message}`);
            }
            debug(`closed ${name} in ${seconds(t)} s`);
        }
        return errors;
    };
    try {
        let t = Date.now();
        const python = ensureDifyPython(tag);
        const environmentSeconds = python.seconds || seconds(t);
        if (fs.existsSync(path.join(python.apiDir, ".env"))) {
            throw new Error(`${python.apiDir}/.env exists: Dify would read settings from it; remove it`);
        }

        const services = options.externalServices;
        if (services && services.tag !== tag) {
            throw new Error(`The external services run Dify ${services.tag}'s Python; this instance is Dify ${tag}`);
        }
        const instance = ++instanceCounter;
        let templateSeconds = 0;
        let postgresSeconds = 0;
        let databaseSeconds = 0;
        let redisSeconds = 0;
        let templateBuilt = false;
        let databaseName: string;
        let postgresPort: number;
        let postgresLog: string;
        if (services) {
            // An app node: the services' database (already migrated) and Redis, shared with the other nodes.
            databaseName = services.postgres.database;
            postgresPort = services.postgres.port;
            postgresLog = services.logs.postgres;
        } else {
            t = Date.now();
            const template = await ensureTemplate(tag, python);
            templateSeconds = template.seconds;
            templateBuilt = template.built;

            const { cluster, pg, started: clusterStarted } = await acquireCluster(template);
            cleanups.push({ name: "postgres cluster reference", step: () => releaseCluster(cluster) });
            postgresSeconds = clusterStarted ? cluster.seconds || seconds(t) : 0;

            const freshDatabase = `dify_${process.pid}_${instance}_${randomBytes(3).toString("hex")}`;
            t = Date.now();
            await createDatabase(cluster, pg, freshDatabase);
            cleanups.push({ name: "database", step: () => psql(pg.port, "postgres", `DROP DATABASE IF EXISTS ${freshDatabase} WITH (FORCE)`).then(() => undefined) });
            databaseSeconds = seconds(t);
            databaseName = freshDatabase;
            postgresPort = pg.port;
            postgresLog = path.join(pg.dir, "postgres.log");
        }

        const home = fs.mkdtempSync(path.join(processRoot(), `instance-${instance}-`));
        cleanups.push({ name: "temporary files", step: async () => fs.rmSync(home, { recursive: true, force: true }) });
        const logs = { api: path.join(home, "api.log"), redis: services ? services.logs.redis : path.join(home, "redis.log"), postgres: postgresLog };
        const guardLog = path.join(home, "network-guard.log");

        let redis: { proc: Supervised; port: number } | undefined;
        if (!services) {
            t = Date.now();
            const redisDir = path.join(home, "redis");
            fs.mkdirSync(redisDir);
            const started = await startRedis(redisDir, logs.redis);
            redis = started;
            cleanups.push({ name: "redis", step: () => stopGroup(started.proc, "SIGTERM", 5_000) });
            redisSeconds = seconds(t);
        }
        const redisPort = services ? services.redisServer.port : redis!.port;

        t = Date.now();
        let pluginDaemon: PluginDaemonStandInHandle | undefined;
        if (options.pluginDaemon !== false) {
            pluginDaemon = await startStandIn(python, typeof options.pluginDaemon === "object" ? options.pluginDaemon : undefined);
            const handle = pluginDaemon;
            cleanups.push({ name: "plugin daemon stand-in", step: () => handle.close() });
        }
        const pluginDaemonSeconds = pluginDaemon ? seconds(t) : 0;

        t = Date.now();
        let api: { proc: Supervised; version: string } | undefined;
        let env: Record<string, string> = {};
        let apiPort = 0;
        for (let attempt = 0; attempt < 3 && !api; attempt++) {
            apiPort = await freePort();
            const base = difyEnvironment({
                python,
                home,
                guardLog,
                postgresPort,
                database: databaseName,
                redisPort,
                apiUrl: `http://127.0.0.1:${apiPort}`,
                initPassword: options.initPassword,
                pluginDaemon,
            });
            env = {
                ...(services ? withExternalServices(base, services.env) : base),
                // What the stand-in says Dify needs to use it (the same daemon/marketplace settings, kept authoritative).
                ...(pluginDaemon?.difyEnv ?? {}),
                ...(options.env ?? {}),
            };
            try {
                api = await startApi(python, env, apiPort, logs.api, options.startTimeoutSeconds ?? 300);
            } catch (err) {
                // Someone took the port between our check and gunicorn's bind: try another.
                if (attempt < 2 && /Connection in use|Address already in use/i.test((err as Error).message)) {
                    continue;
                }
                throw err;
            }
        }
        const apiProc = api!.proc;
        // SIGKILL at once: the instance is thrown away, and a gentle stop costs 5-12 s (gunicorn's gevent worker
        // waits for Dify's background threads and keep-alive connections).
        cleanups.push({ name: "api", step: () => stopGroup(apiProc, "SIGKILL", 5_000) });
        const apiSeconds = seconds(t);
        const url = `http://127.0.0.1:${apiPort}`;

        t = Date.now();
        if (options.admin) {
            const probe = await probeDify({ url });
            await setupDify({ url }, probe, { ...options.admin, initPassword: options.initPassword });
        }
        const setupSeconds = options.admin ? seconds(t) : 0;

        const tools = ensureSystemTools();
        let closed: Promise<void> | undefined;
        const groups = redis ? [apiProc.pid, redis.proc.pid] : [apiProc.pid];
        const dify: RealDify = {
            url,
            version: api!.version,
            tag,
            python,
            databaseName,
            initPassword: options.initPassword,
            admin: options.admin,
            pluginDaemon,
            env,
            ports: { api: apiPort, redis: redisPort, postgres: postgresPort },
            logs,
            timings: {
                environment: environmentSeconds,
                postgres: postgresSeconds,
                template: templateSeconds,
                database: databaseSeconds,
                redis: redisSeconds,
                pluginDaemon: pluginDaemonSeconds,
                api: apiSeconds,
                setup: setupSeconds,
                total: seconds(began),
                templateBuilt,
            },
            sql: (query: string) => psql(postgresPort, databaseName, query),
            redis: services
                ? (...args: string[]) => services.redis(...args)
                : async (...args: string[]) => (await run(tools.redisCli, ["-h", "127.0.0.1", "-p", String(redisPort), ...args], { timeoutMs: 30_000 })).trim(),
            logTail: (lines = 60) => tailOfFile(logs.api, lines),
            processIds: () => groups.flatMap((group) => groupMembers(group)),
            refusedConnections: () => refusedConnectionsIn(guardLog),
            close: () => {
                closed ??= (async () => {
                    const refused = dify.refusedConnections();
                    const errors = await cleanUp();
                    processState.busy--;
                    releaseProcessRootIfIdle();
                    if (refused.length) {
                        process.stderr.write(`real-dify: the network guard refused, in ${url}'s processes:\n  ${refused.join("\n  ")}\n`);
                    }
                    if (errors.length) {
                        throw new Error(`Closing the real Dify at ${url} failed: ${errors.join("; ")}`);
                    }
                })();
                return closed;
            },
        };
        return dify;
    } catch (err) {
        await cleanUp();
        processState.busy--;
        releaseProcessRootIfIdle();
        throw err;
    }
}

// ------------------------------------------------------------------------------------------------------
// The `ha` topology's managed services (RDS PostgreSQL, Tair/Redis, OSS) on 127.0.0.1: startDifyExternalServices.
//
// The RDS account: ApsaraDB RDS for PostgreSQL gives no superuser; its privileged account owns Dify's databases and
// may CREATE EXTENSION for the extensions RDS supports (pgvector among them), though pgvector's control file does
// not mark it trusted (so on plain PostgreSQL only a superuser may create it). pgextwlist is the same rule on plain
// PostgreSQL: loaded for this account alone (ALTER ROLE ... SET local_preload_libraries, a library in
// $libdir/plugins, the only place an account that is not a superuser may load one from), it runs CREATE EXTENSION
// of a whitelisted extension as the bootstrap superuser and refuses the others that are not trusted. The account
// gets nothing else (no CREATEDB, no CREATEROLE): what Dify does with it, it can do on RDS too. It logs in with a
// password (scram-sha-256, one pg_hba.conf line for this account ahead of the cluster's trust lines), so a wrong
// DB_PASSWORD or PGVECTOR_PASSWORD fails here as it would there.

/** Dify's settings for external services replace the harness's own (database, Redis, storage, keys, vector store). */
function withExternalServices(base: Record<string, string>, services: Readonly<Record<string, string>>): Record<string, string> {
    const env = { ...base, ...services };
    if (env.VECTOR_STORE !== "weaviate") {
        // The compose default's Weaviate settings mean nothing once the vector store is another.
        delete env.WEAVIATE_ENDPOINT;
        delete env.WEAVIATE_API_KEY;
    }
    return env;
}

/** Debian's package of a PostgreSQL extension for `major` (pgvector's extension is called "vector"). */
function debianExtensionPackage(major: number, extension: string): string {
    return `postgresql-${major}-${extension === "vector" ? "pgvector" : extension}`;
}

/** Letters and digits, as the stack's @pulumi/random passwords. */
function randomAlphanumeric(length: number): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length]).join("");
}

/** Waits for `proc` to exit, at most `ms`: its exit code, or "timeout". */
async function exitWithin(proc: Supervised, ms: number): Promise<number | null | "timeout"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
    try {
        return await Promise.race([proc.exited, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

const SQL_NAME = /^[a-z][a-z0-9_]{0,62}$/;
let servicesCounter = 0;

/** Starts the `ha` topology's managed services on 127.0.0.1 for Dify processes to share. See DifyExternalServices. */
export async function startDifyExternalServices(options: DifyExternalServicesOptions = {}): Promise<DifyExternalServices> {
    const began = Date.now();
    const tag = options.tag ?? REAL_DIFY_DEFAULT_TAG;
    const account = options.account ?? "dify_admin";
    const database = options.database ?? "dify";
    const pluginDatabase = options.pluginDatabase ?? "dify_plugin";
    const extensions = options.accountExtensions ?? ["vector"];
    for (const name of [account, database, pluginDatabase, ...extensions]) {
        if (!SQL_NAME.test(name)) {
            throw new Error(`${JSON.stringify(name)} is not a plain SQL name (a lowercase letter, then lowercase letters, digits or "_")`);
        }
    }
    const tools = ensureSystemTools();
    processState.busy++;
    const cleanups: { name: string; step: () => Promise<void> }[] = [];
    const cleanUp = async () => {
        const errors: string[] = [];
        for (const { name, step } of cleanups.splice(0).reverse()) {
            try {
                await step();
            } catch (err) {
                errors.push(`${name}: ${(err as Error).message}`);
            }
        }
        return errors;
    };
    try {
        const pluginLibrary = path.join(path.dirname(tools.pgBin), "lib", "plugins", "pgextwlist.so");
        if (extensions.length && !fs.existsSync(pluginLibrary)) {
            throw new Error(
                `The RDS stand-in needs pgextwlist for PostgreSQL ${tools.pgMajor} (${pluginLibrary} is missing): install Debian's package ` +
                    `${debianExtensionPackage(tools.pgMajor, "pgextwlist")} (scripts/test.sh installs it).`,
            );
        }
        let t = Date.now();
        const python = ensureDifyPython(tag);
        const environmentSeconds = python.seconds || seconds(t);
        t = Date.now();
        const template = await ensureTemplate(tag, python);
        const templateSeconds = template.seconds;
        t = Date.now();
        const { cluster, pg, started } = await acquireCluster(template);
        cleanups.push({ name: "postgres cluster reference", step: () => releaseCluster(cluster) });
        const postgresSeconds = started ? cluster.seconds || seconds(t) : 0;

        // Installed extensions, asked of the server itself (whatever the file layout).
        const available = (await psql(pg.port, "postgres", "select name from pg_available_extensions")).split("\n");
        const absent = extensions.filter((name) => !available.includes(name));
        if (absent.length) {
            throw new Error(
                `PostgreSQL ${tools.pgMajor} has no ${absent.map((name) => `"${name}" extension`).join(", ")}: install Debian's ` +
                    `${absent.map((name) => debianExtensionPackage(tools.pgMajor, name)).join(", ")} (scripts/test.sh installs it; on ` +
                    `Debian 12, whose archive has no pgvector, it builds the package from Debian 13's source package).`,
            );
        }

        t = Date.now();
        const password = randomAlphanumeric(24);
        await psql(pg.port, "postgres", `CREATE ROLE ${account} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${password}'`);
        cleanups.push({ name: "account", step: () => psql(pg.port, "postgres", `DROP ROLE IF EXISTS ${account}`).then(() => undefined) });
        for (const name of [database, pluginDatabase]) {
            // From template0: empty, as a database RDS creates.
            await psql(pg.port, "postgres", `CREATE DATABASE ${name} OWNER ${account} TEMPLATE template0 ENCODING 'UTF8'`);
            cleanups.push({ name: `database ${name}`, step: () => psql(pg.port, "postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined) });
        }
        if (extensions.length) {
            await psql(pg.port, "postgres", `ALTER ROLE ${account} SET local_preload_libraries = 'pgextwlist'`);
            await psql(pg.port, "postgres", `ALTER ROLE ${account} SET extwlist.extensions = '${extensions.join(",")}'`);
        }
        // Password logins for the account: one line ahead of the cluster's trust lines (edited synchronously, so
        // two services of this process cannot interleave), removed again on close.
        const hbaFile = path.join(pg.dir, "data", "pg_hba.conf");
        const hbaLine = `host all ${account} 127.0.0.1/32 scram-sha-256`;
        const editHba = async (add: boolean) => {
            const lines = fs.readFileSync(hbaFile, "utf8").split("\n").filter((line) => line !== hbaLine);
            fs.writeFileSync(hbaFile, (add ? [hbaLine, ...lines] : lines).join("\n"));
            await psql(pg.port, "postgres", "select pg_reload_conf()");
        };
        await editHba(true);
        cleanups.push({ name: "pg_hba.conf", step: () => editHba(false) });
        const asAccount = (query: string, db = database, secret = password) => psql(pg.port, db, query, 60_000, { user: account, password: secret });
        // The postmaster rereads pg_hba.conf when signalled: wait until a wrong password is refused.
        for (let attempt = 0; ; attempt++) {
            const refused = await asAccount("select 1", database, `${password}x`).then(
                () => undefined,
                (err: Error) => err.message,
            );
            if (refused && /password authentication failed/.test(refused)) {
                break;
            }
            if (attempt >= 50) {
                throw new Error(`PostgreSQL kept accepting a wrong password for ${account} after pg_hba.conf was changed (${refused ?? "accepted"})`);
            }
            await sleep(100);
        }
        const [superuser, whitelist] = (await asAccount(`select rolsuper, current_setting('extwlist.extensions', true) from pg_roles where rolname = current_user`)).split("|");
        if (superuser !== "f" || (extensions.length && whitelist !== extensions.join(","))) {
            throw new Error(`The account ${account} is not what the RDS stand-in needs (superuser ${superuser}, whitelist ${JSON.stringify(whitelist)})`);
        }
        const accountSeconds = seconds(t);

        const home = fs.mkdtempSync(path.join(processRoot(), `services-${++servicesCounter}-`));
        cleanups.push({ name: "temporary files", step: async () => fs.rmSync(home, { recursive: true, force: true }) });
        const runsDir = path.join(home, "runs");
        fs.mkdirSync(runsDir);
        const guardLog = path.join(home, "network-guard.log");

        t = Date.now();
        const redisPassword = randomAlphanumeric(24);
        const redisDir = path.join(home, "redis");
        fs.mkdirSync(redisDir);
        const redisLog = path.join(home, "redis.log");
        const redis = await startRedis(redisDir, redisLog, redisPassword);
        cleanups.push({ name: "redis", step: () => stopGroup(redis.proc, "SIGTERM", 5_000) });
        const redisSeconds = seconds(t);

        const env: Record<string, string> = {
            DB_TYPE: "postgresql",
            DB_HOST: "127.0.0.1",
            DB_PORT: String(pg.port),
            DB_USERNAME: account,
            DB_PASSWORD: password,
            DB_DATABASE: database,
            REDIS_HOST: "127.0.0.1",
            REDIS_PORT: String(redis.port),
            REDIS_USERNAME: "",
            REDIS_PASSWORD: redisPassword,
            REDIS_DB: "0",
            CELERY_BROKER_URL: `redis://:${redisPassword}@127.0.0.1:${redis.port}/1`,
            CELERY_BACKEND: "redis",
            // The OSS bucket: one folder every process shares (Dify keeps workspaces' private keys there).
            STORAGE_TYPE: "opendal",
            OPENDAL_SCHEME: "fs",
            OPENDAL_FS_ROOT: path.join(home, "storage"),
            SECRET_KEY: randomBytes(42).toString("base64"),
            INNER_API_KEY_FOR_PLUGIN: randomBytes(24).toString("hex"),
            // The vector store lives in Dify's database, reached as the same account.
            VECTOR_STORE: "pgvector",
            PGVECTOR_HOST: "127.0.0.1",
            PGVECTOR_PORT: String(pg.port),
            PGVECTOR_USER: account,
            PGVECTOR_PASSWORD: password,
            PGVECTOR_DATABASE: database,
        };

        const running = new Set<Supervised>();
        let runCounter = 0;
        const processEnv = (extra: Record<string, string> | undefined, migration: boolean) => ({
            ...withExternalServices(difyEnvironment({ python, home, guardLog, postgresPort: pg.port, database, redisPort: redis.port }), env),
            MIGRATION_ENABLED: migration ? "true" : "false",
            ...(extra ?? {}),
        });
        cleanups.push({
            name: "flask and python runs",
            step: async () => {
                await Promise.all([...running].map((proc) => stopGroup(proc, "SIGKILL", 1_000)));
            },
        });

        let closed: Promise<void> | undefined;
        const services: DifyExternalServices = {
            tag,
            python,
            postgres: { port: pg.port, major: tools.pgMajor, account, password, database, pluginDatabase },
            redisServer: { port: redis.port, password: redisPassword },
            alembicHead: template.alembicHead,
            env,
            logs: { redis: redisLog, postgres: path.join(pg.dir, "postgres.log"), dir: runsDir },
            timings: { environment: environmentSeconds, template: templateSeconds, postgres: postgresSeconds, account: accountSeconds, redis: redisSeconds, total: seconds(began) },
            sql: (query, sqlOptions = {}) =>
                sqlOptions.as === "account" ? asAccount(query, sqlOptions.database ?? database) : psql(pg.port, sqlOptions.database ?? database, query),
            redis: async (...args: string[]) =>
                (await run(tools.redisCli, ["-h", "127.0.0.1", "-p", String(redis.port), ...redisAuth(redisPassword), ...args], { timeoutMs: 30_000 })).trim(),
            flask: async (args, flaskOptions = {}) => {
                const started_ = Date.now();
                const log = path.join(runsDir, `flask-${++runCounter}.log`);
                const proc = supervise(path.join(path.dirname(python.python), "flask"), args, { env: processEnv(flaskOptions.env, true), cwd: python.apiDir, log });
                running.add(proc);
                const code = await exitWithin(proc, (flaskOptions.timeoutSeconds ?? 600) * 1000);
                await stopGroup(proc, "SIGKILL", 1_000);
                running.delete(proc);
                return { code: code === "timeout" ? null : code, output: fs.readFileSync(log, "utf8"), seconds: seconds(started_) };
            },
            runPython: async (script, pythonOptions = {}) => {
                const n = ++runCounter;
                const stdout = path.join(runsDir, `script-${n}.out`);
                const log = path.join(runsDir, `script-${n}.log`);
                // -c: the working directory (api/) comes first on sys.path, as for `flask`.
                const proc = supervise(python.python, ["-c", script], { env: processEnv(pythonOptions.env, false), cwd: python.apiDir, log, stdout });
                running.add(proc);
                const code = await exitWithin(proc, (pythonOptions.timeoutSeconds ?? 300) * 1000);
                await stopGroup(proc, "SIGKILL", 1_000);
                running.delete(proc);
                if (code !== 0) {
                    throw new Error(`Python in Dify's environment ${code === "timeout" ? "timed out" : `failed (${code})`}:\n${tailOfFile(log, 30)}`);
                }
                return fs.readFileSync(stdout, "utf8");
            },
            processIds: () => [redis.proc.pid, ...[...running].map((proc) => proc.pid)].flatMap((group) => groupMembers(group)),
            refusedConnections: () => refusedConnectionsIn(guardLog),
            close: () => {
                closed ??= (async () => {
                    const errors = await cleanUp();
                    processState.busy--;
                    releaseProcessRootIfIdle();
                    if (errors.length) {
                        throw new Error(`Closing the external services failed: ${errors.join("; ")}`);
                    }
                })();
                return closed;
            },
        };
        return services;
    } catch (err) {
        await cleanUp();
        processState.busy--;
        releaseProcessRootIfIdle();
        throw err;
    }
}
