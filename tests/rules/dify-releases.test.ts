// The pinned Dify releases (rules/dify-releases.ts) against the real release folders, and the bootstrap's digest
// (bootstrap.sh's release_digest, run by bash) against the harness's (contentDigest): the instance must compute
// exactly the value the table holds, or it would refuse the real release (or accept another).
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DIFY_RELEASES, PINNED_DIFY_VERSIONS, difyReleasePin, releaseVerification } from "../../rules/dify-releases";
import { DIFY_IMAGE_VERSIONS } from "../../rules/dify-images";
import { CONFIG_DEFAULTS } from "../../config/stack-config";
import { PINNED_DIFY_RELEASES, contentDigest, difyReleaseDir } from "../harness/dify-release";
import { runBootstrapFunctions } from "../components/tooling";
import { compactScript, readBootstrapScript } from "../../components/bootstrap/userdata";

const script = compactScript(readBootstrapScript());
const scratch: string[] = [];
afterAll(() => {
    for (const dir of scratch) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

function tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    scratch.push(dir);
    return dir;
}

/** bootstrap.sh's release_digest of `dir` (of `files` in it, when given), computed by bash. */
function bashDigest(dir: string, files: readonly string[] = []): string {
    const result = runBootstrapFunctions(`release_digest "$@"`, { workDir: tempDir("release-digest-"), script, args: [dir, ...files] });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return result.stdout.trim();
}

describe("the pinned Dify releases", () => {
    it("pins the default release and every release whose images are listed, each with a well-formed pin", () => {
        expect(PINNED_DIFY_VERSIONS).toContain(CONFIG_DEFAULTS.difyVersion);
        for (const version of DIFY_IMAGE_VERSIONS) {
            expect(difyReleasePin(version), version).toBeDefined();
        }
        for (const [version, pin] of Object.entries(DIFY_RELEASES)) {
            expect(pin.digest, version).toMatch(/^[0-9a-f]{64}$/);
            // One space-separated setting on the instance: no spaces, and relative to docker/.
            for (const file of pin.files ?? []) {
                expect(file, version).toMatch(/^[^\s/][^\s]*$/);
            }
            if (pin.commit !== undefined) {
                expect(pin.commit, version).toMatch(/^[0-9a-f]{40}$/);
            }
        }
        expect(difyReleasePin("1.13.0")).toBeUndefined();
        expect(difyReleasePin("toString")).toBeUndefined();
    });

    it("pins 1.14.1's whole docker/ folder and only two files of 1.8.0's", () => {
        expect(DIFY_RELEASES["1.14.1"].files).toBeUndefined();
        expect(DIFY_RELEASES["1.8.0"].files).toEqual([".env.example", "docker-compose.yaml"]);
    });

    it("is the one table: the tests' release harness takes its docker/ pins from it", () => {
        for (const [version, pin] of Object.entries(DIFY_RELEASES)) {
            expect(PINNED_DIFY_RELEASES[version]?.docker).toEqual({ digest: pin.digest, files: pin.files });
        }
        expect(Object.keys(PINNED_DIFY_RELEASES).sort()).toEqual([...PINNED_DIFY_VERSIONS].sort());
    });

    it("hands the bootstrap a release's pin, and nothing for a release without one", () => {
        expect(releaseVerification("1.14.1")).toEqual({ releaseDigest: DIFY_RELEASES["1.14.1"].digest, releaseFiles: undefined, releaseCommit: undefined });
        expect(releaseVerification("1.8.0").releaseFiles).toEqual([".env.example", "docker-compose.yaml"]);
        expect(releaseVerification("1.13.0")).toEqual({});
    });
});

describe("the bootstrap's content digest", () => {
    it.each(PINNED_DIFY_VERSIONS)("is the pinned value for the real docker/ folder of %s", (version) => {
        const pin = DIFY_RELEASES[version];
        const dir = difyReleaseDir(version, "docker");
        expect(bashDigest(dir, pin.files)).toBe(pin.digest);
        expect(contentDigest(dir, pin.files)).toBe(pin.digest);
    });

    it("differs when one byte of one file changes", () => {
        const copy = tempDir("release-copy-");
        fs.cpSync(difyReleaseDir("1.14.1", "docker"), copy, { recursive: true });
        const file = path.join(copy, "nginx", "conf.d", "default.conf.template");
        fs.chmodSync(file, 0o644);
        const bytes = fs.readFileSync(file);
        bytes[10] ^= 1;
        fs.writeFileSync(file, bytes);
        expect(bashDigest(copy)).not.toBe(DIFY_RELEASES["1.14.1"].digest);
        expect(bashDigest(copy)).toBe(contentDigest(copy));
    });

    it("is byte for byte the harness's manifest digest: byte-order sorting, nested and odd names, missing files", () => {
        const dir = tempDir("release-names-");
        const files = ["b", "a-b", "a/b", "a/a", "A", ".hidden", "a b/c d.txt", "z/y/x/w", "Z_", "é.txt", "[x]*?", "back\\slash", "empty"];
        for (const [index, file] of files.entries()) {
            fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
            fs.writeFileSync(path.join(dir, file), file === "empty" ? "" : `content ${index}\n`);
        }
        fs.mkdirSync(path.join(dir, "empty-dir"));
        fs.symlinkSync("b", path.join(dir, "link-to-b"));
        expect(bashDigest(dir)).toBe(contentDigest(dir));
        // A list of files, in any order, with one missing.
        const listed = ["z/y/x/w", "A", "missing/file", "a-b"];
        expect(bashDigest(dir, listed)).toBe(contentDigest(dir, listed));
        // Adding a file changes the digest of the whole folder, not that of a list.
        const before = bashDigest(dir);
        fs.writeFileSync(path.join(dir, "extra"), "x");
        expect(bashDigest(dir)).not.toBe(before);
        expect(bashDigest(dir, listed)).toBe(contentDigest(dir, listed));
    });
});
