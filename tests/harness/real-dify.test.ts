// Dify's real API server (1.14.1) started by tests/harness/real-dify.ts: what it answers, that two instances
// are isolated, that the network guard is active inside Dify's worker, and that close() leaves nothing behind.
import axios from "axios";
import { execFileSync } from "child_process";
import * as fs from "fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectToDify, encodeLoginPassword } from "../../dynamic-providers/dify/session";
import { parseSetCookies, probeDify } from "../../dynamic-providers/dify/transport";
import { RealDify, startRealDify } from "./real-dify";

const INIT_PASSWORD = "init-Passw0rd-1";
const FIRST_ADMIN = { email: "first.admin@example.com", name: "First Admin", password: "First-Passw0rd-1" };
const SECOND_ADMIN = { email: "second.admin@example.com", name: "Second Admin", password: "Second-Passw0rd-2" };

const raw = (dify: RealDify) => axios.create({ baseURL: `${dify.url}/console/api`, validateStatus: () => true, timeout: 60_000 });

function cookiesOf(headers: Record<string, unknown>): Map<string, string> {
    const setCookie = headers["set-cookie"];
    return parseSetCookies(Array.isArray(setCookie) ? setCookie : setCookie ? [String(setCookie)] : []);
}

/** Every live process whose command line mentions one of `needles`, as "pid args". */
function processesMentioning(needles: string[]): string[] {
    return execFileSync("ps", ["-e", "-o", "pid=,args="], { encoding: "utf8" })
        .split("\n")
        .filter((line) => needles.some((needle) => line.includes(needle)))
        .filter((line) => !line.includes(" ps -e "));
}

/** Every live process that belongs to this test process's harness: its temporary root in cmdline, env or cwd. */
function harnessProcesses(): string[] {
    const marker = `real-dify-${process.pid}-`;
    const found: string[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) {
            continue;
        }
        try {
            const state = fs.readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]?.[0];
            if (state === "Z") {
                continue;
            }
            const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
            const environ = fs.readFileSync(`/proc/${entry}/environ`, "utf8");
            const cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
            if ([cmdline, environ, cwd].some((text) => text.includes(marker))) {
                found.push(`${entry} ${cmdline.slice(0, 120)}`);
            }
        } catch {
            // gone meanwhile, or not ours to read
        }
    }
    return found;
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

describe("a real Dify that cannot start", () => {
    it("fails with the tail of Dify's log and leaves nothing running", async () => {
        const started = Date.now();
        const failure = await startRealDify({ pluginDaemon: false, env: { SQLALCHEMY_POOL_SIZE: "not-a-number" } }).then(
            (dify) => dify.close().then(() => new Error("started")),
            (err: Error) => err,
        );
        expect(failure.message).toMatch(/Dify's API exited/);
        // Dify's own complaint, from its log: pydantic refusing the setting.
        expect(failure.message).toMatch(/SQLALCHEMY_POOL_SIZE/);
        console.log(`failed start detected in ${(Date.now() - started) / 1000} s`);
        expect(harnessProcesses()).toEqual([]);
        expect(fs.readdirSync("/tmp").filter((name) => name.startsWith(`real-dify-${process.pid}-`))).toEqual([]);
    }, 600_000);
});

describe("Dify's real API server on 127.0.0.1", () => {
    // `fresh`: INIT_PASSWORD set, not set up. `ready`: set up through startRealDify's `admin`, without the
    // plugin daemon. Started together, so the shared cluster and template are used concurrently.
    let fresh: RealDify;
    let ready: RealDify;

    beforeAll(async () => {
        const started = await Promise.allSettled([
            startRealDify({ initPassword: INIT_PASSWORD }),
            startRealDify({ admin: SECOND_ADMIN, pluginDaemon: false }),
        ]);
        for (const result of started) {
            if (result.status === "fulfilled") {
                console.log(`real Dify ${result.value.url} (database ${result.value.databaseName}) timings (s): ${JSON.stringify(result.value.timings)}`);
            }
        }
        const failed = started.find((result) => result.status === "rejected") as PromiseRejectedResult | undefined;
        if (failed) {
            await Promise.all(started.map((result) => (result.status === "fulfilled" ? result.value.close() : undefined)));
            throw failed.reason;
        }
        [fresh, ready] = started.map((result) => (result as PromiseFulfilledResult<RealDify>).value);
    }, 1_200_000);

    afterAll(async () => {
        await Promise.all([fresh?.close(), ready?.close()]);
    }, 120_000);

    it("answers GET /console/api/setup as Dify 1.14.1, not set up yet", async () => {
        const answer = await raw(fresh).get("/setup");
        expect(answer.status).toBe(200);
        expect(answer.headers["x-version"]).toBe("1.14.1");
        expect(answer.data).toMatchObject({ step: "not_started" });
        expect(fresh.version).toBe("1.14.1");
        expect(await probeDify({ url: fresh.url })).toEqual({ version: "1.14.1", setupStep: "not_started" });
    });

    it("refuses a wrong INIT_PASSWORD and setup without it, accepts the right one, and setup stores the admin", async () => {
        const api = raw(fresh);
        const wrong = await api.post("/init", { password: "not-the-init-password" });
        // /init and /setup are FastOpenAPI routes since 1.12: Dify's error code (init_validate_failed,
        // not_init_validated) does not survive, only FastOpenAPI's shape with the status.
        expect(wrong.status).toBe(401);
        expect(wrong.data).toEqual({ error: { type: "authentication_error", message: "Unauthorized", status: 401 } });

        const unvalidated = await api.post("/setup", FIRST_ADMIN);
        expect(unvalidated.status).toBe(401);
        expect(unvalidated.data).toMatchObject({ error: { status: 401 } });
        expect(await fresh.sql("select count(*) from accounts")).toBe("0");

        const right = await api.post("/init", { password: INIT_PASSWORD });
        expect(right.status).toBe(201);
        const session = cookiesOf(right.headers).get("session");
        expect(session).toBeTruthy();

        const setup = await api.post("/setup", FIRST_ADMIN, { headers: { Cookie: `session=${session}` } });
        expect(setup.status).toBe(201);
        expect(setup.data).toEqual({ result: "success" });
        expect(await fresh.sql("select email || '|' || name from accounts")).toBe(`${FIRST_ADMIN.email}|${FIRST_ADMIN.name}`);
        expect(await fresh.sql("select role from tenant_account_joins")).toBe("owner");
        expect((await api.get("/setup")).data).toMatchObject({ step: "finished" });
        expect((await api.post("/setup", FIRST_ADMIN, { headers: { Cookie: `session=${session}` } })).status).toBe(403);
    });

    it("logs in with the base64 password, sets access/refresh/CSRF cookies and requires X-CSRF-Token", async () => {
        const api = raw(fresh);
        const login = await api.post("/login", { email: FIRST_ADMIN.email, password: encodeLoginPassword("1.14.1", FIRST_ADMIN.password), remember_me: true });
        expect(login.status).toBe(200);
        expect(login.data).toEqual({ result: "success" });
        const cookies = cookiesOf(login.headers);
        expect([...cookies.keys()].sort()).toEqual(expect.arrayContaining(["access_token", "csrf_token", "refresh_token"]));
        const jar = `access_token=${cookies.get("access_token")}; csrf_token=${cookies.get("csrf_token")}`;

        const withoutCsrf = await api.get("/account/profile", { headers: { Cookie: jar } });
        expect(withoutCsrf.status).toBe(401);
        const withCsrf = await api.get("/account/profile", { headers: { Cookie: jar, "X-CSRF-Token": cookies.get("csrf_token")! } });
        expect(withCsrf.status).toBe(200);
        expect(withCsrf.data).toMatchObject({ email: FIRST_ADMIN.email, name: FIRST_ADMIN.name });

        // The project's own client against the real server.
        const console_ = await connectToDify({ url: fresh.url }, FIRST_ADMIN);
        expect(console_.authentication).toBe("cookie");
        const workspaces = await console_.get<{ workspaces: { name: string; current: boolean }[] }>("/workspaces");
        expect(workspaces.workspaces).toEqual([expect.objectContaining({ name: `${FIRST_ADMIN.name}'s Workspace`, current: true })]);
        // Successful logins leave Dify's own traces in this instance's Redis.
        expect(Number(await fresh.redis("dbsize"))).toBeGreaterThan(0);
    });

    it("starts instances that share nothing: the admin of one does not exist in the other", async () => {
        expect(ready.databaseName).not.toBe(fresh.databaseName);
        expect(ready.ports.redis).not.toBe(fresh.ports.redis);
        expect(await probeDify({ url: ready.url })).toEqual({ version: "1.14.1", setupStep: "finished" });
        expect(await ready.sql(`select count(*) from accounts where email = '${SECOND_ADMIN.email}'`)).toBe("1");
        expect(await ready.sql(`select count(*) from accounts where email = '${FIRST_ADMIN.email}'`)).toBe("0");
        expect(await fresh.sql(`select count(*) from accounts where email = '${SECOND_ADMIN.email}'`)).toBe("0");

        const second = await connectToDify({ url: ready.url }, SECOND_ADMIN);
        expect(await second.get("/account/profile")).toMatchObject({ email: SECOND_ADMIN.email });
        const elsewhere = await raw(ready).post("/login", { email: FIRST_ADMIN.email, password: encodeLoginPassword("1.14.1", FIRST_ADMIN.password) });
        expect(elsewhere.status).not.toBe(200);
        expect(elsewhere.data?.result).not.toBe("success");
    });

    it("wires the plugin daemon: the stand-in answers Dify's daemon calls; without it, only daemon routes fail", async () => {
        expect(fresh.pluginDaemon).toBeDefined();
        expect(fresh.env.PLUGIN_DAEMON_URL).toBe(fresh.pluginDaemon!.url);
        expect(ready.pluginDaemon).toBeUndefined();
        const daemon = fresh.pluginDaemon as unknown as {
            calls(): Promise<{ method: string; path: string }[]>;
            clearCalls(): Promise<void>;
        };
        // Start-up, /init, /setup and /login: which of them needed the daemon.
        console.log(`daemon calls before tool-providers: ${JSON.stringify((await daemon.calls()).map((call) => `${call.method} ${call.path}`))}`);
        await daemon.clearCalls();
        const withDaemon = await connectToDify({ url: fresh.url }, FIRST_ADMIN);
        const withoutDaemon = await connectToDify({ url: ready.url }, SECOND_ADMIN);
        // Tool providers: Dify asks the daemon for the plugin tools of the workspace.
        const listed = await withDaemon.get<unknown[]>("/workspaces/current/tool-providers");
        expect(Array.isArray(listed)).toBe(true);
        const tenant = await fresh.sql("select id from tenants");
        expect((await daemon.calls()).map((call) => `${call.method} ${call.path}`)).toContain(`GET /plugin/${tenant}/management/tools`);
        const failure = await withoutDaemon.get("/workspaces/current/tool-providers").catch((err: Error) => err);
        expect(failure).toBeInstanceOf(Error);
        expect(String((failure as Error).message)).toMatch(/plugin daemon/i);
        // MCP providers are Dify's own: no daemon needed.
        expect(await withoutDaemon.get("/workspaces/current/tools/mcp")).toEqual([]);
    });

    it("keeps Dify's worker on loopback: a connection elsewhere is refused by the guard and recorded", async () => {
        const console_ = await connectToDify({ url: ready.url }, SECOND_ADMIN);
        // 192.0.2.1 is TEST-NET-1 (documentation only): even unguarded nothing would answer.
        await console_
            .post("/workspaces/current/tool-provider/mcp", {
                server_url: "http://192.0.2.1/mcp",
                name: "guarded",
                icon: "🔒",
                icon_type: "emoji",
                icon_background: "",
                server_identifier: "guarded",
                configuration: { timeout: 5, sse_read_timeout: 5 },
            })
            .catch(() => undefined);
        expect(ready.refusedConnections().join("\n")).toContain("192.0.2.1");
        // The instance with nothing to reach tried nothing.
        expect(fresh.refusedConnections()).toEqual([]);
    });

    it("close() stops every process it started and drops the database", async () => {
        const instances = [fresh, ready];
        const pids = instances.flatMap((dify) => dify.processIds());
        expect(pids.length).toBeGreaterThanOrEqual(4); // gunicorn master + worker, redis, for each
        const postgresPort = fresh.ports.postgres;
        const needles = instances
            .flatMap((dify) => [`127.0.0.1:${dify.ports.api}`, `127.0.0.1:${dify.ports.redis}`])
            .concat([`-p ${postgresPort}`, `real-dify-watchdog ${process.pid} `]);
        expect(processesMentioning(needles).length).toBeGreaterThan(0);
        const homes = instances.map((dify) => dify.logs.api.replace(/\/api\.log$/, ""));
        expect(harnessProcesses().length).toBeGreaterThanOrEqual(pids.length);

        await ready.close();
        expect(ready.processIds()).toEqual([]);
        expect(await fresh.sql(`select count(*) from pg_database where datname = '${ready.databaseName}'`)).toBe("0");
        await fresh.close();

        expect(pids.filter(alive)).toEqual([]);
        expect(processesMentioning(needles)).toEqual([]);
        expect(harnessProcesses()).toEqual([]);
        expect(homes.filter((home) => fs.existsSync(home))).toEqual([]);
    }, 120_000);
});
