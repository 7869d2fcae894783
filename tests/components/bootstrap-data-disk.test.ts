// The data disk steps of the shipped bootstrap, run for real: blkid and wipefs probe disk images made with the
// real mkfs.ext4, sfdisk and mkswap; stand-ins take the place of lsblk (it lists block devices only; the stand-in
// asks partx, which reads images), systemctl and mountpoint. The generated systemd units are checked with
// systemd-analyze verify. Then the INIT_PASSWORD scrub against the fake Dify console.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { requireTool, runBootstrapFunctions, runBootstrapFunctionsAsync, runTool } from "./tooling";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";
import { DifyConsoleServer, startDifyConsoleServer } from "../servers/dify-console-server";
import { probeDify, setupDify } from "../../dynamic-providers/dify/transport";

const script = compactScript(readBootstrapScript());
const SERIAL = "bp1datadisk0001";
const SBIN = `${process.env.PATH}:/usr/sbin:/sbin`;
let workDir: string;

/** The stand-ins every disk test uses; mkfs.ext4 logs its arguments, then runs the real one. */
function diskStubs(extra: Record<string, string> = {}): Record<string, string> {
    return {
        lsblk: `
device="\${@: -1}"
name="$(basename "$device")"
echo "$name"
partx -g -o NR "$device" 2>/dev/null | sed "s/^ */\${name}p/"`,
        "mkfs.ext4": `echo "mkfs.ext4 $*" >> "$WORK/commands.log"; PATH="${SBIN}" exec mkfs.ext4 "$@"`,
        systemctl: `echo "systemctl $*" >> "$WORK/commands.log"`,
        mountpoint: "exit 0",
        ...extra,
    };
}

/** A 64 MiB disk image, prepared by `prepare` (a shell command given the path as $1), seen as the data disk. */
function makeDisk(prepare = ""): string {
    const image = path.join(workDir, "vdb");
    fs.writeFileSync(image, "");
    fs.truncateSync(image, 64 * 1024 * 1024);
    if (prepare) {
        const made = runTool("bash", ["-c", prepare, "bash", image], { env: { PATH: SBIN } });
        expect(made.status, made.stderr).toBe(0);
    }
    fs.mkdirSync(path.join(workDir, "by-id"), { recursive: true });
    fs.symlinkSync(image, path.join(workDir, "by-id", `virtio-${SERIAL}`));
    return image;
}

function digest(file: string): string {
    return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function run(snippet: string, stubs = diskStubs(), env: Record<string, string> = {}) {
    return runBootstrapFunctions(snippet, { workDir, script, stubs, env: { WORK: workDir, ...env } });
}

function commands(): string {
    const log = path.join(workDir, "commands.log");
    return fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
}

/** The file name systemd gives the mount unit of the test's data mount point. */
function mountUnitName(): string {
    return runTool("systemd-escape", ["-p", "--suffix=mount", path.join(workDir, "data")]).stdout.trim();
}

function probe(image: string): string {
    return runTool("blkid", ["-p", "-o", "export", image], { env: { PATH: SBIN } }).stdout;
}

beforeAll(() => {
    for (const tool of ["blkid", "wipefs", "partx", "mkfs.ext4", "sfdisk", "mkswap", "systemd-escape", "systemd-analyze"]) {
        requireTool(tool);
    }
});

beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bootstrap-disk-"));
    fs.mkdirSync(path.join(workDir, "state"));
});

describe("the data disk: formatted only when blank", () => {
    it("formats a blank disk as ext4 and mounts it by its new UUID", () => {
        const image = makeDisk();
        const result = run(`mount_data_disk ${SERIAL}`);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(commands()).toContain(`mkfs.ext4 -q -L dify-data ${image}`);
        const uuid = /^UUID=(.+)$/m.exec(probe(image))?.[1];
        expect(probe(image)).toMatch(/^TYPE=ext4$/m);
        const unit = fs.readFileSync(path.join(workDir, "systemd", mountUnitName()), "utf8");
        expect(unit).toContain(`What=/dev/disk/by-uuid/${uuid}\n`);
        expect(result.stdout).toContain(`data disk ${image} was blank, mounting it`);
    });

    it("mounts a disk with an ext4 file system of ours as it is, without formatting", () => {
        const image = makeDisk(`mkfs.ext4 -q -L dify-data "$1"`);
        const before = digest(image);
        const uuid = /^UUID=(.+)$/m.exec(probe(image))?.[1];
        const result = run(`mount_data_disk ${SERIAL}`);
        expect(result.status, result.stdout + result.stderr).toBe(0);
        expect(commands()).not.toContain("mkfs");
        expect(digest(image)).toBe(before);
        expect(fs.readFileSync(path.join(workDir, "systemd", mountUnitName()), "utf8")).toContain(`What=/dev/disk/by-uuid/${uuid}\n`);
        expect(result.stdout).toContain("was ext4, mounting it");
    });

    it("mounts a whole-disk xfs file system without formatting", () => {
        // No mkfs.xfs here: blkid and wipefs report what they would for one.
        const image = makeDisk();
        const stubs = diskStubs({
            blkid: `case "$*" in *UUID*) echo 11111111-2222-3333-4444-555555555555;; *) printf 'TYPE=xfs\\nUUID=11111111-2222-3333-4444-555555555555\\n';; esac`,
            wipefs: "echo xfs",
        });
        const result = run(`mount_data_disk ${SERIAL}`, stubs);
        expect(result.status, result.stdout + result.stderr).toBe(0);
        expect(commands()).not.toContain("mkfs");
        expect(fs.readFileSync(path.join(workDir, "systemd", mountUnitName()), "utf8")).toContain("What=/dev/disk/by-uuid/11111111-2222-3333-4444-555555555555\n");
        expect(fs.existsSync(image)).toBe(true);
    });

    const refused: Array<[string, string, RegExp]> = [
        ["another file system's signature (swap)", `mkswap -q "$1" >/dev/null`, /signatures: swap/],
        ["a partition table with a partition", `printf 'label: gpt\\n,32M\\n' | sfdisk -q "$1" >/dev/null`, /signatures: PMBR gpt, partitions: vdbp1/],
        ["an empty partition table", `printf 'label: dos\\n' | sfdisk -q "$1" >/dev/null`, /signatures: dos/],
        ["an ext4 file system under a partition table", `mkfs.ext4 -q "$1" && printf 'label: dos\\n' | sfdisk -q --wipe never "$1" >/dev/null`, /signatures: dos ext4/],
    ];
    for (const [what, prepare, carries] of refused) {
        it(`refuses a disk with ${what}: not formatted, not mounted, the bootstrap marked failed`, () => {
            const image = makeDisk(prepare);
            const before = digest(image);
            const result = run(`mount_data_disk ${SERIAL}`);
            expect(result.status).not.toBe(0);
            expect(commands()).not.toContain("mkfs");
            expect(commands()).not.toContain("systemctl");
            expect(digest(image)).toBe(before);
            expect(fs.existsSync(path.join(workDir, "systemd"))).toBe(false);
            const failed = fs.readFileSync(path.join(workDir, "state", "failed"), "utf8");
            expect(failed).toContain(`refusing the data disk ${image}, which is not blank (`);
            expect(failed).toMatch(carries);
            expect(failed).toContain("nothing was written to it");
            expect(result.stdout).toContain(`dify-bootstrap: refusing the data disk ${image}`);
        });
    }

    it("refuses a disk when any one of blkid, wipefs and lsblk sees something", () => {
        const blank = { blkid: "exit 2", wipefs: "true", lsblk: 'echo "$(basename "${@: -1}")"' };
        const cases: Array<[string, Record<string, string>, string]> = [
            ["wipefs", { ...blank, wipefs: "echo crypto_LUKS" }, "signatures: crypto_LUKS, partitions: none, blkid -p exit 2"],
            ["lsblk", { ...blank, lsblk: 'echo vdb; echo "dify-vg-data"' }, "signatures: none, partitions: dify-vg-data, blkid -p exit 2"],
            ["blkid", { ...blank, blkid: "echo TYPE=LVM2_member; exit 0" }, "signatures: none, partitions: none, blkid -p exit 0"],
            ["blkid (ambivalent)", { ...blank, blkid: "exit 8" }, "signatures: none, partitions: none, blkid -p exit 8"],
        ];
        for (const [who, stubs, carries] of cases) {
            fs.rmSync(path.join(workDir, "by-id"), { recursive: true, force: true });
            fs.rmSync(path.join(workDir, "state", "failed"), { force: true });
            makeDisk();
            const result = run(`mount_data_disk ${SERIAL}`, diskStubs(stubs));
            expect(result.status, who).not.toBe(0);
            expect(commands(), who).not.toContain("mkfs");
            expect(fs.readFileSync(path.join(workDir, "state", "failed"), "utf8"), who).toContain(`(${carries})`);
        }
    });

    it("refuses a disk whose signatures cannot be listed, instead of taking it for blank", () => {
        const image = makeDisk();
        const result = run(`mount_data_disk ${SERIAL}`, diskStubs({ wipefs: "echo 'wipefs: cannot open' >&2; exit 1" }));
        expect(result.status).not.toBe(0);
        expect(commands()).not.toContain("mkfs");
        expect(fs.readFileSync(path.join(workDir, "state", "failed"), "utf8")).toContain("which is not blank (unknown: probing it failed)");
        expect(fs.existsSync(image)).toBe(true);
    });

    it("fails when the mount unit does not mount the disk", () => {
        makeDisk(`mkfs.ext4 -q "$1"`);
        const result = run(`mount_data_disk ${SERIAL}`, diskStubs({ mountpoint: "exit 1" }));
        expect(result.status).not.toBe(0);
        expect(fs.readFileSync(path.join(workDir, "state", "failed"), "utf8")).toContain(`${mountUnitName()} did not mount the data disk`);
    });
});

describe("systemd units: /data before Docker, on every boot", () => {
    function installed() {
        makeDisk(`mkfs.ext4 -q "$1"`);
        const result = run(`mount_data_disk ${SERIAL}`);
        expect(result.status, result.stdout + result.stderr).toBe(0);
        return path.join(workDir, "systemd");
    }

    it("writes a mount unit, a docker.service drop-in requiring it, and enables the mount before Docker exists", () => {
        const dir = installed();
        const dataMount = path.join(workDir, "data");
        const unit = mountUnitName();
        expect(fs.readFileSync(path.join(dir, unit), "utf8")).toMatch(new RegExp(`^\\[Mount\\]\\nWhat=/dev/disk/by-uuid/[0-9a-f-]{36}\\nWhere=${dataMount}\\n\\[Install\\]\\nWantedBy=multi-user.target\\n$`));
        expect(fs.readFileSync(path.join(dir, "docker.service.d", "dify-data.conf"), "utf8")).toBe(`[Unit]\nRequiresMountsFor=${dataMount}\n`);
        expect(commands()).toContain(`systemctl daemon-reload\nsystemctl enable --now ${unit} dify-init-password.timer\n`);
        // No fstab line (its "nofail" let Docker start before the disk was there).
        expect(readBootstrapScript()).not.toMatch(/\/etc\/fstab/);
        // The disk is mounted before Docker is installed (the package starts Docker).
        const main = readBootstrapScript().slice(readBootstrapScript().indexOf("main() {"));
        expect(main.indexOf("mount_data_disk")).toBeLessThan(main.indexOf("install_docker"));
    });

    it("passes systemd-analyze verify, with docker.service standing in for Docker's unit", () => {
        const dir = installed();
        fs.writeFileSync(path.join(dir, "docker.service"), "[Unit]\nDescription=stand-in for Docker\n[Service]\nExecStart=/bin/true\n");
        const units = [mountUnitName(), "docker.service", "dify-init-password.service", "dify-init-password.timer"].map((u) => path.join(dir, u));
        const verify = runTool("systemd-analyze", ["verify", "--man=no", ...units], { env: { PATH: SBIN, SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_COLOR: "0" } });
        expect(verify.stderr).toBe("");
        expect(verify.stdout).toBe("");
        expect(verify.status).toBe(0);
        // The check catches a broken unit: a mount unit whose name does not match its Where=.
        fs.renameSync(path.join(dir, mountUnitName()), path.join(dir, "wrong-name.mount"));
        const broken = runTool("systemd-analyze", ["verify", "--man=no", path.join(dir, "wrong-name.mount")], { env: { PATH: SBIN, SYSTEMD_UNIT_PATH: `${dir}:` } });
        expect(broken.status).not.toBe(0);
        expect(broken.stderr).toMatch(/Where= setting doesn't match unit name/);
    });

    it("runs the INIT_PASSWORD scrub from the shipped script every minute", () => {
        const dir = installed();
        expect(fs.readFileSync(path.join(dir, "dify-init-password.service"), "utf8")).toBe(
            `[Unit]\nAfter=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/bash ${path.join(workDir, "bootstrap.sh")} scrub-init-password\n`,
        );
        expect(fs.readFileSync(path.join(dir, "dify-init-password.timer"), "utf8")).toContain("OnUnitActiveSec=1min\n");
    });
});

describe("INIT_PASSWORD leaves Dify once the first admin exists", () => {
    const INIT = "Init-Pass=word/&12";
    let realCurl: string;
    let fresh: DifyConsoleServer;
    let older: DifyConsoleServer;

    beforeAll(async () => {
        requireTool("curl");
        realCurl = runTool("bash", ["-c", "command -v curl"]).stdout.trim();
        fresh = await startDifyConsoleServer({ version: "1.14.1", initPassword: INIT });
        older = await startDifyConsoleServer({ version: "1.8.0", initPassword: INIT });
    });
    afterAll(async () => {
        await fresh.close();
        await older.close();
    });

    /** A Dify install as the bootstrap leaves it: .env with INIT_PASSWORD, the settings file, the done marker. */
    function installedDify(done = true) {
        const docker = path.join(workDir, "opt-dify", "docker");
        fs.mkdirSync(docker, { recursive: true });
        fs.writeFileSync(path.join(docker, ".env"), `CONSOLE_API_URL=http://198.51.100.23\nINIT_PASSWORD=${INIT}\nSECRET_KEY=kept\n`);
        fs.writeFileSync(path.join(workDir, "bootstrap.env"), `DIFY_VERSION='1.14.1'\nDIFY_INIT_PASSWORD='${INIT}'\nDIFY_DOMAIN=''\n`);
        if (done) {
            fs.writeFileSync(path.join(workDir, "state", "done"), "2026-01-01T00:00:00Z\n");
        }
        return docker;
    }

    /** curl sent to the fake console instead of port 80; docker and systemctl log what they are asked. */
    function scrubStubs(server: DifyConsoleServer, composeFails = false): Record<string, string> {
        return {
            curl: `args=(); for a in "$@"; do args+=("\${a/http:\\/\\/127.0.0.1\\//${server.url}/}"); done; exec ${realCurl} "\${args[@]}"`,
            docker: `echo "docker $* (in $PWD)" >> "$WORK/commands.log"; ${composeFails ? "exit 1" : "exit 0"}`,
            systemctl: `echo "systemctl $*" >> "$WORK/commands.log"`,
        };
    }

    function scrub(server: DifyConsoleServer, composeFails = false) {
        return runBootstrapFunctionsAsync("scrub_init_password", { workDir, script, stubs: scrubStubs(server, composeFails), env: { WORK: workDir } });
    }

    function envFile(docker: string): string {
        return fs.readFileSync(path.join(docker, ".env"), "utf8");
    }

    it("keeps INIT_PASSWORD while the first admin does not exist, and does nothing before the bootstrap is done", async () => {
        const docker = installedDify(false);
        expect((await scrub(fresh)).status).toBe(0);
        fs.writeFileSync(path.join(workDir, "state", "done"), "now\n");
        const result = await scrub(fresh);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(envFile(docker)).toContain(`INIT_PASSWORD=${INIT}\n`);
        expect(commands()).toBe("");
    });

    it("keeps it, and the timer, while the console does not answer", async () => {
        const docker = installedDify();
        const result = await runBootstrapFunctionsAsync("scrub_init_password", {
            workDir,
            script,
            stubs: { ...scrubStubs(fresh), curl: "exit 7" },
            env: { WORK: workDir },
        });
        expect(result.status).toBe(0);
        expect(envFile(docker)).toContain(`INIT_PASSWORD=${INIT}\n`);
        expect(commands()).toBe("");
    });

    for (const [version, server] of [
        ["1.14.1", () => fresh],
        ["1.8.0", () => older],
    ] as const) {
        it(`removes it from .env and the settings file, recreates the containers and stops the timer once Dify ${version} is set up`, async () => {
            const docker = installedDify();
            const endpoint = { url: server().url };
            await setupDify(endpoint, await probeDify(endpoint), { email: "ops@example.com", name: "Ops", password: "Adm1n-Passw0rd-x", initPassword: INIT });
            const result = await scrub(server());
            expect(result.stderr).toBe("");
            expect(result.status).toBe(0);
            expect(envFile(docker)).toBe("CONSOLE_API_URL=http://198.51.100.23\nINIT_PASSWORD=\nSECRET_KEY=kept\n");
            const settings = runTool("bash", ["-c", `. "${path.join(workDir, "bootstrap.env")}"; printf '[%s]' "$DIFY_INIT_PASSWORD"`]);
            expect(settings.stdout).toBe("[]");
            expect(fs.readFileSync(path.join(workDir, "bootstrap.env"), "utf8")).not.toContain(INIT);
            expect(commands()).toBe(`docker compose up -d (in ${docker})\nsystemctl disable --now dify-init-password.timer\n`);
            expect(result.stdout).toContain("the first admin exists: INIT_PASSWORD removed");
        });
    }

    it("asks the console over https once nginx serves it (port 80 then only answers with a redirect)", () => {
        const docker = installedDify();
        fs.appendFileSync(path.join(docker, ".env"), "NGINX_HTTPS_ENABLED=true\n");
        // Port 80 answers 301 with an empty body, which curl -f takes for success; only https has the answer.
        const curl = `echo "curl $*" >> "$WORK/curl.log"; case " $* " in *" -k "*"https://127.0.0.1/console/api/setup"*) echo '{"step": "finished"}' ;; *) exit 0 ;; esac`;
        const result = runBootstrapFunctions("scrub_init_password", {
            workDir,
            script,
            stubs: { curl, docker: `echo "docker $*" >> "$WORK/commands.log"`, systemctl: `echo "systemctl $*" >> "$WORK/commands.log"` },
            env: { WORK: workDir },
        });
        expect(result.status).toBe(0);
        expect(envFile(docker)).toContain("INIT_PASSWORD=\n");
        expect(fs.readFileSync(path.join(workDir, "curl.log"), "utf8")).toContain("https://127.0.0.1/console/api/setup");
    });

    it("waits for the bootstrap to finish, even when the console reports setup finished", () => {
        const docker = installedDify(false);
        const result = runBootstrapFunctions("scrub_init_password", {
            workDir,
            script,
            stubs: { curl: `echo '{"step":"finished"}'`, docker: `echo "docker $*" >> "$WORK/commands.log"`, systemctl: `echo "systemctl $*" >> "$WORK/commands.log"` },
            env: { WORK: workDir },
        });
        expect(result.status).toBe(0);
        expect(envFile(docker)).toContain(`INIT_PASSWORD=${INIT}\n`);
        expect(commands()).toBe("");
    });

    it("reads the console's answer with or without spaces", () => {
        installedDify();
        for (const answer of ['{"step": "finished", "setup_at": "2026-01-01T00:00:00"}', '{"step":"finished"}']) {
            fs.rmSync(path.join(workDir, "commands.log"), { force: true });
            installedDify();
            const result = runBootstrapFunctions("scrub_init_password", {
                workDir,
                script,
                stubs: { curl: `echo '${answer}'`, docker: `echo "docker $*" >> "$WORK/commands.log"`, systemctl: `echo "systemctl $*" >> "$WORK/commands.log"` },
                env: { WORK: workDir },
            });
            expect(result.status).toBe(0);
            expect(commands()).toContain("docker compose up -d");
        }
    });

    it("keeps the timer when recreating the containers fails, and finishes on the next run", async () => {
        const docker = installedDify();
        const endpoint = { url: fresh.url };
        if (!fresh.isSetUp()) {
            await setupDify(endpoint, await probeDify(endpoint), { email: "ops@example.com", name: "Ops", password: "Adm1n-Passw0rd-x", initPassword: INIT });
        }
        const failing = await scrub(fresh, true);
        expect(failing.status).not.toBe(0);
        expect(envFile(docker)).toContain("INIT_PASSWORD=\n");
        expect(commands()).not.toContain("systemctl");
        const again = await scrub(fresh);
        expect(again.status).toBe(0);
        expect(commands()).toBe(`docker compose up -d (in ${docker})\ndocker compose up -d (in ${docker})\nsystemctl disable --now dify-init-password.timer\n`);
    });

    it("is what the shipped script does when run as dify-init-password.service runs it", async () => {
        const docker = installedDify();
        const endpoint = { url: fresh.url };
        if (!fresh.isSetUp()) {
            await setupDify(endpoint, await probeDify(endpoint), { email: "ops@example.com", name: "Ops", password: "Adm1n-Passw0rd-x", initPassword: INIT });
        }
        const result = await runBootstrapFunctionsAsync(`DIFY_BOOTSTRAP_SOURCE_ONLY=0 bash "$0" scrub-init-password`, {
            workDir,
            script,
            stubs: scrubStubs(fresh),
            env: { WORK: workDir },
        });
        expect(result.status, result.stderr).toBe(0);
        expect(envFile(docker)).toContain("INIT_PASSWORD=\n");
        expect(fs.readFileSync(path.join(workDir, "bootstrap.log"), "utf8")).toContain("INIT_PASSWORD removed");
    });
});
