// The bootstrap's steps other than the .env editing, run for real with stand-ins for the commands that would
// touch the machine (git, curl, chown, systemctl) and the script's paths pointed into a scratch directory.
import { beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runBootstrapFunctions } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";

/** The release folder (holding docker/) the fake git "clones". */
const fixture = path.dirname(difyReleaseDir("1.14.1", "docker"));
const script = compactScript(readBootstrapScript());
let workDir: string;

function run(snippet: string, stubs: Record<string, string> = {}, env: Record<string, string> = {}) {
    return runBootstrapFunctions(snippet, { workDir, script, stubs, env });
}

/** A `git` that "clones" the fixture release (or fails, per GIT_FAILS) and answers describe with the tag. */
const FAKE_GIT = `
case "$1" in
  clone)
    for url in "$@"; do :; done
    target="$url"
    for a in "$@"; do case "$a" in https://*) src="$a";; esac; done
    echo "$src" >> "$FAKE_LOG"
    case " $GIT_FAILS " in *" $src "*) exit 128;; esac
    mkdir -p "$target/docker" && cp -r "$FIXTURE/docker/." "$target/docker/"
    mkdir -p "$target/docker/volumes/sandbox/conf" && echo "shipped: config" > "$target/docker/volumes/sandbox/conf/config.yaml"
    echo "$TAG" > "$target/.tag" ;;
  -C) cat "$2/.tag" ;;
esac`;

beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bootstrap-steps-"));
});

describe("finding the data disk", () => {
    it("picks the disk whose serial is the disk id, not a partition or another disk", () => {
        const byId = path.join(workDir, "by-id");
        fs.mkdirSync(byId);
        fs.symlinkSync("../../vdc", path.join(byId, "virtio-bp1otherdisk"));
        fs.symlinkSync("../../vdb1", path.join(byId, "virtio-bp1datadisk-part1"));
        fs.symlinkSync("../../vdb", path.join(byId, "virtio-bp1datadisk"));
        const found = run(`find_data_disk bp1datadisk`);
        expect(found.status).toBe(0);
        expect(found.stdout.trim()).toBe(path.resolve(byId, "../../vdb"));
    });

    it("finds an NVMe disk by the serial inside its id, and reports a missing one", () => {
        const byId = path.join(workDir, "by-id");
        fs.mkdirSync(byId);
        fs.symlinkSync("../../nvme1n1", path.join(byId, "nvme-Alibaba_Cloud_Elastic_Block_Storage_bp1nvmedisk"));
        expect(run(`find_data_disk bp1nvmedisk`).stdout.trim()).toBe(path.resolve(byId, "../../nvme1n1"));
        expect(run(`find_data_disk bp1absent`).status).toBe(1);
    });
});

describe("fetching Dify and moving its volumes to the data disk", () => {
    const env = () => ({ FIXTURE: fixture, TAG: "1.14.1", FAKE_LOG: path.join(workDir, "git.log") });

    it("clones the pinned tag from GitHub and keeps shipped volume files on the data disk", () => {
        const result = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR" && link_volumes_to_data_disk`, { git: FAKE_GIT, chown: 'echo "$@" >> "$FAKE_LOG.chown"' }, env());
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(fs.readFileSync(path.join(workDir, "git.log"), "utf8").trim()).toBe("https://github.com/langgenius/dify.git");
        const volumes = path.join(workDir, "opt-dify", "docker", "volumes");
        expect(fs.lstatSync(volumes).isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(volumes)).toBe(path.join(workDir, "data", "dify", "volumes"));
        expect(fs.readFileSync(path.join(workDir, "data", "dify", "volumes", "sandbox", "conf", "config.yaml"), "utf8")).toBe("shipped: config\n");
        expect(fs.readFileSync(path.join(workDir, "git.log.chown"), "utf8")).toContain(`-R 1001:1001 ${path.join(workDir, "data", "dify", "volumes", "app", "storage")}`);
    });

    it("falls back to Gitee when GitHub fails, and does nothing when the tag is already there", () => {
        const first = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR"`, { git: FAKE_GIT, timeout: 'shift; "$@"' }, { ...env(), GIT_FAILS: "https://github.com/langgenius/dify.git" });
        expect(first.status).toBe(0);
        expect(first.stdout).toContain("fetched Dify 1.14.1 from Gitee");
        const again = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR"`, { git: FAKE_GIT }, env());
        expect(again.stdout).toContain("Dify 1.14.1 is already in");
    });

    it("keeps data already on the disk when a rebuilt instance links it again", () => {
        const kept = path.join(workDir, "data", "dify", "volumes", "sandbox", "conf");
        fs.mkdirSync(kept, { recursive: true });
        fs.writeFileSync(path.join(kept, "config.yaml"), "edited: by the operator\n");
        const result = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR" && link_volumes_to_data_disk`, { git: FAKE_GIT, chown: "true" }, env());
        expect(result.status).toBe(0);
        expect(fs.readFileSync(path.join(kept, "config.yaml"), "utf8")).toBe("edited: by the operator\n");
    });

    it("fails when every source fails", () => {
        const result = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR"`, { git: "exit 128", curl: "exit 22", timeout: 'shift; "$@"' }, env());
        expect(result.status).not.toBe(0);
    });
});

describe("waiting", () => {
    it("re-runs a check until it passes, and says what did not happen when time runs out", () => {
        const flag = path.join(workDir, "ready");
        const passes = run(`wait_until 5 1 "the flag appearing" test -e "${flag}"`, { sleep: `touch "${flag}"` });
        expect(passes.status).toBe(0);
        const fails = run(`wait_until 2 1 "the console answering" false`, { sleep: "true" });
        expect(fails.status).toBe(1);
        expect(fails.stdout).toMatch(/the console answering did not happen within 2s/);
    });
});

describe("Docker settings", () => {
    it("writes the registry mirrors as valid daemon.json and restarts Docker", () => {
        const log = path.join(workDir, "systemctl.log");
        const result = run(`configure_docker`, { systemctl: `echo "$@" >> "${log}"` }, { DIFY_REGISTRY_MIRRORS: "https://a.mirror.aliyuncs.com https://mirrors-ssl.aliyuncs.com/" });
        expect(result.status).toBe(0);
        const daemon = JSON.parse(fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8"));
        expect(daemon).toEqual({ "registry-mirrors": ["https://a.mirror.aliyuncs.com", "https://mirrors-ssl.aliyuncs.com/"] });
        expect(fs.readFileSync(log, "utf8")).toBe("enable docker.service docker.socket\nrestart docker.service\n");
    });

    it("leaves Docker's defaults alone without mirrors", () => {
        expect(run(`configure_docker`, { systemctl: "true" }).status).toBe(0);
        expect(fs.existsSync(path.join(workDir, "etc-docker", "daemon.json"))).toBe(false);
    });
});
