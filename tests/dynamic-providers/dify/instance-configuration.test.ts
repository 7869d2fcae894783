// DifyInstanceConfiguration the engine's way (serialized, in its own process, signing its calls) against the fake
// Alibaba API server, whose registered instance runs every Cloud Assistant command with bash in a scratch
// directory: the REAL shipped bootstrap (compactScript(readBootstrapScript()), `main` as a whole, started detached
// by the apply command) runs there with stand-ins on PATH for docker, git, systemctl, curl, blkid, wipefs, lsblk and
// mountpoint, and a stand-in Dify answers on the public URL with the version `docker compose up -d` last started.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { AddressInfo } from "net";
import { AlibabaProviderFixture, startAlibabaProviderFixture } from "../../servers/alibaba-provider-fixture";
import { bashRunner } from "../../servers/cloud-assistant-runner";
import { BootstrapSettings, compactScript, readBootstrapScript, renderBootstrapApplication, renderBootstrapConfig } from "../../../components/bootstrap/userdata";
import {
    changedSettings,
    diffDifyInstanceConfiguration,
    DifyInstanceConfigurationInputs,
    DifyInstanceConfigurationOutputs,
} from "../../../dynamic-providers/dify/instance-configuration";

const ACCESS_KEY_ID = "test-ak-instance-configuration";
const ACCESS_KEY_SECRET = "instance-configuration-secret-0123456789";
const INSTANCE_ID = "i-bp1upgradeinplace";
const DISK_ID = "d-bp1datadiskupgrade";
const INIT = "Init-Pass/9&x";
const VERSION_A = "1.13.3";
const VERSION_B = "1.14.1";
const script = readBootstrapScript();

let fixture: AlibabaProviderFixture;
let workDir: string;
let dify: { url: string; close(): Promise<void> };
/** When the instance received the command that writes the settings and starts the bootstrap, and the call log's length then. */
let appliedAt: number | undefined;
let appliedMark: number | undefined;

/** The settings of "release" A or B, as DifyBootstrap renders them (unpinned: the stand-in git serves no real release). */
function settings(version: string): BootstrapSettings {
    return { difyVersion: version, publicUrl: dify.url, initPassword: INIT, dataDiskId: DISK_ID, registryMirrors: [] };
}

function inputs(version: string, overrides: Partial<DifyInstanceConfigurationInputs> = {}): DifyInstanceConfigurationInputs {
    const application = renderBootstrapApplication(settings(version), script);
    return {
        instanceId: INSTANCE_ID,
        regionId: "cn-hangzhou",
        ecsEndpoint: fixture.server.url,
        dataDiskId: DISK_ID,
        difyUrl: dify.url,
        difyVersion: version,
        publicUrl: dify.url,
        registryMirrors: [],
        scriptDigest: application.scriptDigest,
        settingsDigest: application.settingsDigest,
        bootstrapConfig: application.config,
        bootstrapScript: application.script,
        timeoutSeconds: 120,
        pollIntervalSeconds: 0.2,
        ...overrides,
    };
}

function outputs(version: string): DifyInstanceConfigurationOutputs {
    const given = inputs(version);
    return { ...given, appliedSettingsDigest: given.settingsDigest, reportedDifyVersion: version };
}

/** Dify's public URL: 502 until a `docker compose up -d` ran, then Dify's setup answer with the version it started. */
async function startDifyStandIn(): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer((req, res) => {
        const running = path.join(workDir, "running-version");
        if (!fs.existsSync(running)) {
            res.writeHead(502, { "Content-Type": "text/html" }).end("<html><h1>502 Bad Gateway</h1></html>");
            return;
        }
        const version = fs.readFileSync(running, "utf8").trim();
        res.writeHead(200, { "Content-Type": "application/json", "X-Version": version }).end(JSON.stringify({ step: "finished" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((resolve) => server.close(() => resolve())),
    };
}

/** The stand-ins: each logs to commands.log; `migration` says what the api container's log reports. */
function stubs(migration: string): Record<string, string> {
    return {
        docker: `echo "docker $*" >> "$WORK/commands.log"
case "$*" in
  "compose version --short") echo 2.29.1 ;;
  "compose config --images") printf 'langgenius/dify-api:%s\\nredis:6-alpine\\n' "$(cat VERSION)" ;;
  # Slow enough that a status read (about a second each) sees the pulls.
  "pull -q "*) /bin/sleep 1.5; echo "docker.io/$3" ;;
  "image inspect"*) echo 500000000 ;;
  "compose up -d") cp VERSION "$WORK/running-version" ;;
  "compose logs --no-color api") printf 'Running migrations\\n%s\\n' "${migration}" ;;
esac
exit 0`,
        // A clone of the tag: the files prepare_dify needs, the tag in VERSION, a release .env.example with a key
        // the old one lacked.
        git: `echo "git $*" >> "$WORK/commands.log"
[ "$1" = clone ] || exit 0
tag="" target=""
while [ "$#" -gt 0 ]; do case "$1" in --branch) tag="$2"; shift 2 ;; *) target="$1"; shift ;; esac; done
mkdir -p "$target/docker/volumes/app/storage" "$target/docker/nginx"
echo "$tag" > "$target/docker/VERSION"
echo "services: {}" > "$target/docker/docker-compose.yaml"
printf 'CONSOLE_API_URL=\\nCONSOLE_WEB_URL=\\nSERVICE_API_URL=\\nAPP_API_URL=\\nAPP_WEB_URL=\\nFILES_URL=\\nSECRET_KEY=sk-default\\nDB_PASSWORD=difyai123456\\nREDIS_PASSWORD=difyai123456\\nCELERY_BROKER_URL=redis://:difyai123456@redis:6379/1\\nINIT_PASSWORD=\\nEXPOSE_PLUGIN_DEBUGGING_PORT=5003\\nRELEASE_KEY=%s\\n' "$tag" > "$target/docker/.env.example"`,
        curl: `case "$*" in *127.0.0.1/console/api/setup*) echo '{"step": "finished"}' ;; *) exit 22 ;; esac`,
        systemctl: `echo "systemctl $*" >> "$WORK/commands.log"`,
        mountpoint: "exit 0",
        blkid: `case "$*" in "-p -s UUID -o value "*) echo 1111-2222 ;; *) printf 'UUID=1111-2222\\nTYPE=ext4\\n' ;; esac`,
        wipefs: "echo ext4",
        lsblk: "echo vdb",
        // The bootstrap's retry pauses; Node does the waiting here.
        sleep: "exit 0",
    };
}

/** The bootstrap's paths in workDir, the stand-ins first on PATH, and setsid instead of systemd-run. */
function instanceEnvironment(): Record<string, string> {
    return {
        PATH: `${path.join(workDir, "stub-bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        WORK: workDir,
        DIFY_BOOTSTRAP_STATE_DIR: path.join(workDir, "state"),
        DIFY_BOOTSTRAP_LOG: path.join(workDir, "bootstrap.log"),
        DIFY_BOOTSTRAP_CONFIG: path.join(workDir, "etc", "bootstrap.env"),
        DIFY_BOOTSTRAP_SCRIPT: path.join(workDir, "sbin", "dify-bootstrap.sh"),
        DIFY_BOOTSTRAP_DATA_MOUNT: path.join(workDir, "data"),
        DIFY_BOOTSTRAP_DIFY_DIR: path.join(workDir, "opt-dify"),
        DIFY_BOOTSTRAP_DISK_BY_ID: path.join(workDir, "by-id"),
        DIFY_BOOTSTRAP_DOCKER_ETC: path.join(workDir, "etc-docker"),
        DIFY_BOOTSTRAP_SYSTEMD_DIR: path.join(workDir, "systemd"),
        DIFY_BOOTSTRAP_DETACH: "setsid -f",
    };
}

/**
 * An instance that ran version A's bootstrap to the end: its settings file (with INIT_PASSWORD), its script, the
 * release tree with .env, the secrets on the data disk, and a "done" status carrying A's digest.
 */
function instanceRunning(version: string, migration = "Database migration successful") {
    const stubDir = path.join(workDir, "stub-bin");
    fs.mkdirSync(stubDir, { recursive: true });
    for (const [name, body] of Object.entries(stubs(migration))) {
        fs.writeFileSync(path.join(stubDir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    const application = renderBootstrapApplication(settings(version), script);
    for (const dir of ["etc", "sbin", "state", "data/dify/volumes", "by-id", "etc-docker", "systemd", "opt-dify/docker"]) {
        fs.mkdirSync(path.join(workDir, dir), { recursive: true });
    }
    fs.writeFileSync(path.join(workDir, "etc", "bootstrap.env"), renderBootstrapConfig({ ...settings(version), settingsDigest: application.settingsDigest }));
    fs.writeFileSync(path.join(workDir, "sbin", "dify-bootstrap.sh"), "#!/bin/bash\necho old script\n");
    fs.writeFileSync(
        path.join(workDir, "data", "dify", "secrets.env"),
        ["SECRET_KEY=kept-secret-key-0001", "DB_PASSWORD=0123abcd4567", "REDIS_PASSWORD=89efcafe0123", "SANDBOX_API_KEY=sandbox-kept-1", "PLUGIN_DAEMON_KEY=daemon-kept-1", "PLUGIN_DIFY_INNER_API_KEY=inner-kept-1", "WEAVIATE_API_KEY=weaviate-kept-1", ""].join("\n"),
    );
    fs.writeFileSync(path.join(workDir, "disk.img"), "");
    fs.symlinkSync(path.join(workDir, "disk.img"), path.join(workDir, "by-id", `virtio-${DISK_ID.slice(2)}`));
    const docker = path.join(workDir, "opt-dify", "docker");
    fs.writeFileSync(path.join(docker, "VERSION"), `${version}\n`);
    fs.writeFileSync(path.join(docker, "docker-compose.yaml"), "services: {}\n");
    fs.writeFileSync(path.join(docker, ".env"), `SECRET_KEY=kept-secret-key-0001\nINIT_PASSWORD=${INIT}\nRELEASE_KEY=${version}\n`);
    fs.writeFileSync(path.join(workDir, "opt-dify", ".dify-release-verified"), `${version} unverified\n`);
    fs.writeFileSync(path.join(workDir, "running-version"), `${version}\n`);
    fs.writeFileSync(
        path.join(workDir, "state", "status"),
        `state=done\nstep=Dify is up\ndetail=Dify ${version}\nupdated=2026-01-01T00:00:00Z\nsettings=${application.settingsDigest}\n`,
    );
    const run = bashRunner({ env: instanceEnvironment() });
    fixture.server.addInstance(INSTANCE_ID, {
        run: async (command, signal) => {
            if (command.includes("DIFY_SETTINGS_END")) {
                appliedAt = Date.now();
                appliedMark = fixture.server.mark();
            }
            return run(command, signal);
        },
    });
    fixture.server.addDisk(DISK_ID, { snapshotMs: 400 });
}

/** Waits until the detached bootstrap is over (its status says done or failed), so nothing outlives the test. */
async function bootstrapSettled(): Promise<void> {
    const status = path.join(workDir, "state", "status");
    if (!fs.existsSync(status)) return;
    for (let i = 0; i < 200; i++) {
        if (/^state=(done|failed)$/m.test(fs.existsSync(status) ? fs.readFileSync(status, "utf8") : "")) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

function progressSince(from: number): string[] {
    const prefix = `Dify on ${INSTANCE_ID}: `;
    return fixture.provider
        .output()
        .slice(from)
        .split("\n")
        .filter((line) => line.startsWith(prefix))
        .map((line) => line.slice(prefix.length));
}

beforeAll(async () => {
    fixture = await startAlibabaProviderFixture({
        module: "dynamic-providers/dify/instance-configuration",
        exportName: "difyInstanceConfigurationProvider",
        accessKeyId: ACCESS_KEY_ID,
        accessKeySecret: ACCESS_KEY_SECRET,
    });
});

afterAll(async () => {
    await fixture?.close();
});

beforeEach(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "instance-configuration-"));
    appliedAt = undefined;
    appliedMark = undefined;
    dify = await startDifyStandIn();
});

afterEach(async () => {
    await bootstrapSettled();
    await dify.close();
    fixture.server.removeInstance(INSTANCE_ID);
    fs.rmSync(workDir, { recursive: true, force: true });
});

describe("upgrading the running instance in place", () => {
    it("snapshots the data disk first, applies the new settings with the real bootstrap, and records what Dify reports", async () => {
        instanceRunning(VERSION_A);
        const mark = fixture.server.mark();
        const snapshotsBefore = fixture.server.snapshots().length;
        const from = fixture.provider.output().length;
        const result = await fixture.provider.call<{ outs: DifyInstanceConfigurationOutputs }>("update", `${INSTANCE_ID}-configuration`, outputs(VERSION_A), inputs(VERSION_B));
        const wanted = inputs(VERSION_B);

        // The snapshot: of the data disk, kept 7 days, done before the instance was touched.
        const [snapshot, ...others] = fixture.server.snapshots().slice(snapshotsBefore);
        expect(others).toEqual([]);
        expect(snapshot).toMatchObject({ SourceDiskId: DISK_ID, RetentionDays: 7 });
        expect(snapshot.SnapshotName).toMatch(new RegExp(`^dify-before-${VERSION_B.replace(/\./g, "\\.")}-\\d{14}$`));
        // The call log up to the RunCommand that started the bootstrap (its run began once that call was logged).
        const beforeApply = fixture.server.calls.slice(mark, appliedMark).map((call) => call.action);
        expect(beforeApply[beforeApply.length - 1]).toBe("RunCommand");
        expect(beforeApply).toContain("CreateSnapshot");
        expect(beforeApply.filter((action) => action === "DescribeSnapshots").length).toBeGreaterThan(0);
        expect(fixture.server.calls.slice(appliedMark).map((call) => call.action)).not.toContain("DescribeSnapshots");
        expect(appliedAt).toBeGreaterThanOrEqual(snapshot.doneAt);
        // No secret went through Cloud Assistant.
        for (const invocation of fixture.server.invocationsOf(INSTANCE_ID)) {
            expect(invocation.Script).not.toContain(INIT);
        }

        // The instance's files: B's settings with the instance's own INIT_PASSWORD line, the shipped script.
        const config = fs.readFileSync(path.join(workDir, "etc", "bootstrap.env"), "utf8");
        expect(config).toBe(`${wanted.bootstrapConfig}DIFY_INIT_PASSWORD='${INIT}'\n`);
        expect(fs.readFileSync(path.join(workDir, "sbin", "dify-bootstrap.sh"), "utf8")).toBe(compactScript(script).trimEnd() + "\n");

        // What the real bootstrap did: the new release, .env from its .env.example with the kept secrets, images
        // pulled before `up -d`, Docker not restarted.
        const env = fs.readFileSync(path.join(workDir, "opt-dify", "docker", ".env"), "utf8");
        expect(env).toContain(`RELEASE_KEY=${VERSION_B}\n`);
        expect(env).toContain("SECRET_KEY=kept-secret-key-0001\n");
        expect(env).toContain(`CONSOLE_API_URL=${dify.url}\n`);
        expect(env).toContain(`INIT_PASSWORD=${INIT}\n`);
        const commands = fs.readFileSync(path.join(workDir, "commands.log"), "utf8").split("\n");
        expect(commands).toContain(`git clone -q --depth 1 --branch ${VERSION_B} https://github.com/langgenius/dify.git ${path.join(workDir, "opt-dify")}`);
        expect(commands.indexOf(`docker pull -q langgenius/dify-api:${VERSION_B}`)).toBeLessThan(commands.indexOf("docker compose up -d"));
        expect(commands).not.toContain("systemctl restart docker.service");
        const status = fs.readFileSync(path.join(workDir, "state", "status"), "utf8");
        expect(status).toContain("state=done\n");
        expect(status).toContain(`settings=${wanted.settingsDigest}\n`);

        // up's output: each step as it came.
        const lines = progressSince(from);
        expect(lines[0]).toBe(`applying new settings: Dify ${VERSION_A} → ${VERSION_B}`);
        expect(lines).toEqual(
            expect.arrayContaining([
                expect.stringMatching(new RegExp(`^snapshotting the data disk ${DISK_ID} before the change: s-`)),
                `started the bootstrap for Dify ${VERSION_B}`,
                `Dify ${VERSION_B} is up with the new settings`,
            ]),
        );
        expect(lines).toContainEqual(expect.stringMatching(/^pulling images \(\d\/2: /));
        expect(lines.indexOf(`started the bootstrap for Dify ${VERSION_B}`)).toBeLessThan(lines.findIndex((line) => line.startsWith("pulling images")));

        expect(result.outs).toMatchObject({
            difyVersion: VERSION_B,
            appliedSettingsDigest: wanted.settingsDigest,
            lastSnapshotId: snapshot.SnapshotId,
            reportedDifyVersion: VERSION_B,
        });
        // The next up: the same inputs, no change.
        expect(await fixture.provider.call("diff", `${INSTANCE_ID}-configuration`, result.outs, wanted)).toMatchObject({ changes: false, replaces: [] });
    }, 120_000);

    it("fails with the failed step and the log's tail when the upgrade does not come back, naming the snapshot", async () => {
        instanceRunning(VERSION_A, 'Database migration failed: (psycopg2.OperationalError) password 0123abcd4567 refused');
        const snapshotsBefore = fixture.server.snapshots().length;
        const error = await fixture.provider.call("update", `${INSTANCE_ID}-configuration`, outputs(VERSION_A), inputs(VERSION_B)).then(
            () => undefined,
            (err: Error) => err,
        );
        const [snapshot] = fixture.server.snapshots().slice(snapshotsBefore);
        expect(error?.message).toContain(`The bootstrap on instance ${INSTANCE_ID} failed at "migrating the database"`);
        expect(error?.message).toMatch(/Dify's database migration failed: Database migration failed: \(psycopg2\.OperationalError\)/);
        expect(error?.message).toContain(`snapshot ${snapshot.SnapshotId}`);
        expect(error?.message).toContain("Last lines of /var/log/dify-bootstrap.log (secrets redacted)");
        expect(error?.message).toMatch(/step: pulling images/);
        for (const secret of ["0123abcd4567", INIT, "kept-secret-key-0001"]) {
            expect(error?.message).not.toContain(secret);
        }
    }, 120_000);

    it("does nothing on create when the instance already reports these settings done", async () => {
        instanceRunning(VERSION_B);
        const mark = fixture.server.mark();
        const runs = fixture.server.invocationsOf(INSTANCE_ID).length;
        const from = fixture.provider.output().length;
        const result = await fixture.provider.call<{ id: string; outs: DifyInstanceConfigurationOutputs }>("create", inputs(VERSION_B));
        const counts = fixture.server.countSince(mark);
        expect(counts.byAction.CreateSnapshot).toBeUndefined();
        expect(counts.byAction.RunCommand).toBe(1);
        expect(fixture.server.invocationsOf(INSTANCE_ID).slice(runs).map((invocation) => invocation.Name)).toEqual(["dify-bootstrap-status"]);
        expect(result).toMatchObject({ id: `${INSTANCE_ID}-configuration`, outs: { appliedSettingsDigest: inputs(VERSION_B).settingsDigest, reportedDifyVersion: VERSION_B } });
        expect(result.outs.lastSnapshotId).toBeUndefined();
        expect(progressSince(from)).toEqual([`runs these settings already (Dify ${VERSION_B})`]);
    });

    it("applies the settings once on create when the instance's bootstrap wrote no digest (a stack from before)", async () => {
        instanceRunning(VERSION_B);
        fs.writeFileSync(path.join(workDir, "state", "status"), "state=done\nstep=Dify is up\ndetail=Dify 1.14.1\nupdated=2026-01-01T00:00:00Z\n");
        const snapshotsBefore = fixture.server.snapshots().length;
        const result = await fixture.provider.call<{ outs: DifyInstanceConfigurationOutputs }>("create", inputs(VERSION_B));
        expect(fixture.server.snapshots().slice(snapshotsBefore)).toHaveLength(1);
        expect(result.outs.appliedSettingsDigest).toBe(inputs(VERSION_B).settingsDigest);
        // The same release stays (its verified tree is kept), so nothing was fetched.
        expect(fs.readFileSync(path.join(workDir, "commands.log"), "utf8")).not.toContain("git clone");
    }, 120_000);
});

describe("what a preview says", () => {
    it("refuses a downgrade at check, saying to restore the pre-upgrade snapshot instead", async () => {
        const result = await fixture.provider.call<{ failures: { property: string; reason: string }[] }>("check", inputs(VERSION_B), inputs(VERSION_A));
        expect(result.failures).toHaveLength(1);
        expect(result.failures[0].property).toBe("difyVersion");
        expect(result.failures[0].reason).toMatch(new RegExp(`Dify ${VERSION_A} is older than ${VERSION_B}.*migrations only go forward.*restore the data disk from the snapshot.*dify-before-${VERSION_B}-`));
        // An upgrade and a first create pass.
        expect((await fixture.provider.call<{ failures: unknown[] }>("check", inputs(VERSION_A), inputs(VERSION_B))).failures).toEqual([]);
        expect((await fixture.provider.call<{ failures: unknown[] }>("check", {}, inputs(VERSION_A))).failures).toEqual([]);
    });

    it("refuses a settings file that carries INIT_PASSWORD", async () => {
        const bad = inputs(VERSION_B);
        const result = await fixture.provider.call<{ failures: { property: string }[] }>("check", {}, { ...bad, bootstrapConfig: `${bad.bootstrapConfig}DIFY_INIT_PASSWORD='${INIT}'\n` });
        expect(result.failures.map((failure) => failure.property)).toEqual(["bootstrapConfig"]);
    });

    it("names the changed setting and never replaces for settings; only a new instance replaces", () => {
        const olds = outputs(VERSION_A);
        expect(changedSettings(olds, inputs(VERSION_B))).toEqual(["difyVersion", "settingsDigest"]);
        expect(diffDifyInstanceConfiguration(olds, inputs(VERSION_B))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
        expect(changedSettings(olds, inputs(VERSION_A, { registryMirrors: ["https://mirror.example.com"] }))).toEqual(["registryMirrors"]);
        expect(diffDifyInstanceConfiguration(olds, inputs(VERSION_A))).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
        // Timing only: a state update, nothing applied.
        expect(diffDifyInstanceConfiguration(olds, inputs(VERSION_A, { timeoutSeconds: 600 }))).toMatchObject({ changes: true, replaces: [] });
        expect(changedSettings(olds, inputs(VERSION_A, { timeoutSeconds: 600 }))).toEqual([]);
        expect(diffDifyInstanceConfiguration(olds, inputs(VERSION_A, { instanceId: "i-new" })).replaces).toEqual(["instanceId"]);
    });

    it("updates the state only for a timing change", async () => {
        instanceRunning(VERSION_A);
        const mark = fixture.server.mark();
        const result = await fixture.provider.call<{ outs: DifyInstanceConfigurationOutputs }>("update", `${INSTANCE_ID}-configuration`, outputs(VERSION_A), inputs(VERSION_A, { timeoutSeconds: 600 }));
        expect(fixture.server.countSince(mark).total).toBe(0);
        expect(result.outs).toMatchObject({ timeoutSeconds: 600, appliedSettingsDigest: inputs(VERSION_A).settingsDigest });
    });
});
