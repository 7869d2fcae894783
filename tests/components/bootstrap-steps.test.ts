// The bootstrap's steps other than the .env editing, run for real with stand-ins for the commands that would
// touch the machine (git, curl, chown, systemctl) and the script's paths pointed into a scratch directory.
import { beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runBootstrapFunctions } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";
import { DIFY_RELEASES } from "../../rules/dify-releases";
import { CERTBOT_IMAGE } from "../../rules/certbot";

/** The release folder (holding docker/) the fake git "clones". */
const fixture = path.dirname(difyReleaseDir("1.14.1", "docker"));
const script = compactScript(readBootstrapScript());
let workDir: string;

function run(snippet: string, stubs: Record<string, string> = {}, env: Record<string, string> = {}) {
    return runBootstrapFunctions(snippet, { workDir, script, stubs, env });
}

/**
 * A `git` that "clones" the fixture release (or fails, per GIT_FAILS): the real, pinned docker/ folder, unchanged,
 * so the bootstrap's verification against the pinned digest passes (tests/components/bootstrap-verify.test.ts
 * covers the refusals).
 */
const FAKE_GIT = `
case "$1" in
  clone)
    for url in "$@"; do :; done
    target="$url"
    for a in "$@"; do case "$a" in https://*) src="$a";; esac; done
    echo "$src" >> "$FAKE_LOG"
    case " $GIT_FAILS " in *" $src "*) exit 128;; esac
    mkdir -p "$target/docker" && cp -r "$FIXTURE/docker/." "$target/docker/" && chmod -R u+w "$target" ;;
esac`;
/** The release's own sandbox configuration, which must reach the data disk. */
const shippedSandboxConfig = () => fs.readFileSync(path.join(fixture, "docker", "volumes", "sandbox", "conf", "config.yaml"), "utf8");

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
    const env = () => ({ FIXTURE: fixture, FAKE_LOG: path.join(workDir, "git.log"), DIFY_RELEASE_DIGEST: DIFY_RELEASES["1.14.1"].digest });

    it("clones the pinned tag from GitHub and keeps shipped volume files on the data disk", () => {
        const result = run(`fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR" && link_volumes_to_data_disk`, { git: FAKE_GIT, chown: 'echo "$@" >> "$FAKE_LOG.chown"' }, env());
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(fs.readFileSync(path.join(workDir, "git.log"), "utf8").trim()).toBe("https://github.com/langgenius/dify.git");
        const volumes = path.join(workDir, "opt-dify", "docker", "volumes");
        expect(fs.lstatSync(volumes).isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(volumes)).toBe(path.join(workDir, "data", "dify", "volumes"));
        expect(fs.readFileSync(path.join(workDir, "data", "dify", "volumes", "sandbox", "conf", "config.yaml"), "utf8")).toBe(shippedSandboxConfig());
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

    // Run again on a running instance (DifyInstanceConfiguration), it must not restart every container for nothing.
    it("does not restart a running Docker when daemon.json is unchanged, and starts one that is not running", () => {
        const log = path.join(workDir, "systemctl.log");
        const mirrors = { DIFY_REGISTRY_MIRRORS: "https://a.mirror.aliyuncs.com" };
        expect(run(`configure_docker`, { systemctl: "true" }, mirrors).status).toBe(0);
        const daemon = fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8");
        const again = run(`configure_docker`, { systemctl: `echo "$@" >> "${log}"` }, mirrors);
        expect(again.status).toBe(0);
        expect(fs.readFileSync(log, "utf8")).toBe("enable docker.service docker.socket\nis-active --quiet docker.service\n");
        expect(again.stdout).toContain("not restarting it");
        expect(fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8")).toBe(daemon);
        fs.rmSync(log);
        // Docker not active: (re)started even though nothing changed.
        expect(run(`configure_docker`, { systemctl: `echo "$@" >> "${log}"; [ "$1" != is-active ]` }, mirrors).status).toBe(0);
        expect(fs.readFileSync(log, "utf8")).toBe("enable docker.service docker.socket\nis-active --quiet docker.service\nrestart docker.service\n");
    });

    it("restarts Docker for changed mirrors, and removes the mirrors it wrote once there are none", () => {
        const log = path.join(workDir, "systemctl.log");
        const systemctl = { systemctl: `echo "$@" >> "${log}"` };
        expect(run(`configure_docker`, systemctl, { DIFY_REGISTRY_MIRRORS: "https://a.mirror.aliyuncs.com" }).status).toBe(0);
        expect(run(`configure_docker`, systemctl, { DIFY_REGISTRY_MIRRORS: "https://b.mirror.aliyuncs.com" }).status).toBe(0);
        expect(JSON.parse(fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8"))).toEqual({ "registry-mirrors": ["https://b.mirror.aliyuncs.com"] });
        expect(run(`configure_docker`, systemctl).status).toBe(0);
        expect(fs.existsSync(path.join(workDir, "etc-docker", "daemon.json"))).toBe(false);
        expect(fs.readFileSync(log, "utf8").match(/^restart docker\.service$/gm)).toHaveLength(3);
        // A daemon.json of another shape (someone's own settings) is left alone.
        fs.writeFileSync(path.join(workDir, "etc-docker", "daemon.json"), '{ "log-driver": "json-file" }\n');
        expect(run(`configure_docker`, systemctl).status).toBe(0);
        expect(fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8")).toBe('{ "log-driver": "json-file" }\n');
    });
});

describe("pulling Dify's images", () => {
    /** A docker that lists images as Compose would and logs every pull and tag. */
    const DOCKER = `
case "$*" in
  "compose config --images") printf 'langgenius/dify-api:1.14.1\\npostgres:15-alpine\\nlanggenius/dify-api:1.14.1\\n' ;;
  "image inspect"*) echo 500000000 ;;
  pull*|tag*) echo "$*" >> "$DOCKER_LOG" ;;
  *) echo "unexpected: docker $*" >&2; exit 1 ;;
esac`;
    const pulls = () => fs.readFileSync(path.join(workDir, "docker.log"), "utf8").trim().split("\n");

    beforeEach(() => fs.mkdirSync(path.join(workDir, "opt-dify", "docker"), { recursive: true }));

    it("pulls each image once, with the count and the bytes so far in the status", () => {
        const result = run(`pull_images && cat "$DIFY_BOOTSTRAP_STATE_DIR/status"`, { docker: DOCKER }, { DOCKER_LOG: path.join(workDir, "docker.log") });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(pulls()).toEqual(["pull -q langgenius/dify-api:1.14.1", "pull -q postgres:15-alpine"]);
        expect(result.stdout).toContain("step: pulling images (2/2: postgres:15-alpine (0.5 GB so far))");
        expect(result.stdout).toContain("pulled 2 images, 1.0 GB");
    });

    it("with HTTPS, pulls the pinned certbot image too, from the same place; with plain HTTP, not", () => {
        const https = { DOCKER_LOG: path.join(workDir, "docker.log"), DIFY_PUBLIC_URL: "https://198.51.100.23", DIFY_CERTBOT_IMAGE: CERTBOT_IMAGE };
        expect(run(`pull_images`, { docker: DOCKER }, https).status).toBe(0);
        expect(pulls()).toEqual(["pull -q certbot/certbot:v5.8.0", "pull -q langgenius/dify-api:1.14.1", "pull -q postgres:15-alpine"]);
        fs.rmSync(path.join(workDir, "docker.log"));
        expect(run(`pull_images`, { docker: DOCKER }, { ...https, DIFY_IMAGE_REGISTRY: "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com" }).status).toBe(0);
        expect(pulls().slice(0, 2)).toEqual([
            "pull -q dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/certbot/certbot:v5.8.0",
            "tag dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/certbot/certbot:v5.8.0 certbot/certbot:v5.8.0",
        ]);
        fs.rmSync(path.join(workDir, "docker.log"));
        run(`pull_images`, { docker: DOCKER }, { ...https, DIFY_PUBLIC_URL: "http://198.51.100.23" });
        expect(pulls().some((line) => line.includes("certbot"))).toBe(false);
    });

    it("with an image registry, pulls Docker Hub's images from it and tags them with their own names", () => {
        const result = run(`pull_images`, { docker: DOCKER }, { DOCKER_LOG: path.join(workDir, "docker.log"), DIFY_IMAGE_REGISTRY: "dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com" });
        expect(result.status).toBe(0);
        expect(pulls()).toEqual([
            "pull -q dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/langgenius/dify-api:1.14.1",
            "tag dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/langgenius/dify-api:1.14.1 langgenius/dify-api:1.14.1",
            "pull -q dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/library/postgres:15-alpine",
            "tag dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com/library/postgres:15-alpine postgres:15-alpine",
        ]);
    });

    it("leaves images of other registries where they are", () => {
        const result = run(`image_source quay.io/coreos/etcd:v3.5.5; echo; image_source localhost:5000/x; echo; image_registry quay.io/coreos/etcd:v3.5.5`, {}, {
            DIFY_IMAGE_REGISTRY: "r.example.com",
        });
        expect(result.stdout).toBe("quay.io/coreos/etcd:v3.5.5\nlocalhost:5000/x\nquay.io");
    });
});
