// The Dify releases the stack deploys, each pinned to the content of what the bootstrap runs from it. No imports:
// the stack config (which refuses a difyVersion missing here), the host (which hands the pin to the instance's
// bootstrap) and the tests' release harness (tests/harness/dify-release.ts) share it.
//
// What is pinned: the content digest of the release's `docker/` folder, the only part of the release the bootstrap
// uses (it runs Compose there, as root). The digest is the SHA-256 of a manifest with one line
// "<sha256 of the file>  <path>\n" per file, paths relative to docker/ (no "./"), sorted by path in byte order;
// a pinned file that is missing counts as the content "missing:<path>". bootstrap.sh's release_digest computes it
// the same way on the instance, tests/harness/dify-release.ts's contentDigest in the tests, and
// tests/rules/dify-releases.test.ts checks that both give the values below for the real release folders.
//
// Why a content digest rather than the commit SHA and the tarball's SHA-256: the bootstrap fetches the release
// from GitHub (git clone), else from the Gitee mirror (git clone), else as GitHub's tarball. A content digest
// verifies the files whichever source delivered them; a commit SHA covers only the clones, and a tarball's
// SHA-256 only the tarball (whose bytes depend on how GitHub compresses it, not on the release).
//
// The commit SHAs and tarball SHA-256s could not be obtained when these pins were made (no access to GitHub from
// where the project was built). To add a release's commit: `git ls-remote https://github.com/langgenius/dify
// refs/tags/<tag> 'refs/tags/<tag>^{}'` (the `^{}` line, when there is one, is the commit of an annotated tag),
// cross-checked against `git ls-remote https://gitee.com/dify_ai/dify ...`; set it as `commit` below. The bootstrap
// then also checks `git rev-parse HEAD` of a clone against it (the tarball is covered by the digest alone).
//
// To add a release: its docker/ folder from the tag (e.g. DIFY_RELEASES_DIR=<dir> holding <tag>/docker/), its
// digest from contentDigest(dir) in tests/harness/dify-release.ts, and a row here; the tests then check it.

/** One pinned release: what the bootstrap verifies a fetched release against. */
export interface DifyReleasePin {
    /** The content digest of the release's docker/ folder (or of `files` in it): see the top of this file. */
    digest: string;
    /**
     * The files of docker/ the digest covers, relative to docker/ (no spaces: the bootstrap takes them as one
     * space-separated setting). Absent: every file in docker/, so a file added to the folder fails the check too.
     */
    files?: readonly string[];
    /** The commit the release tag points to, when known (40 hex digits); see the top of this file. */
    commit?: string;
}

/**
 * The supported releases. 1.14.1 (the default `difyVersion`) pins its whole docker/ folder. 1.8.0, the oldest
 * supported release, pins only docker/.env.example and docker/docker-compose.yaml, the files the stack was checked
 * against: the other files of its docker/ folder (nginx, certbot and other templates the containers mount) are NOT
 * verified for 1.8.0. Pin its whole folder (drop `files`) once a complete copy is at hand.
 */
export const DIFY_RELEASES: Readonly<Record<string, DifyReleasePin>> = {
    "1.8.0": {
        digest: "1088118029af088c5808038f876f39c0685ddd2d6f3e8c5f4209c9c33d6a9f09",
        files: [".env.example", "docker-compose.yaml"],
    },
    "1.14.1": {
        digest: "7395d2e54c84b8650edf4d0b9ab55449a1c1ad7f384d8ac741ee7ecb3dc851c5",
    },
};

/** The pinned Dify versions, as listed. */
export const PINNED_DIFY_VERSIONS: readonly string[] = Object.keys(DIFY_RELEASES);

/** The pin of a Dify release, or undefined when the stack has none. */
export function difyReleasePin(version: string): DifyReleasePin | undefined {
    return Object.prototype.hasOwnProperty.call(DIFY_RELEASES, version) ? DIFY_RELEASES[version] : undefined;
}

/**
 * What the bootstrap gets of a release's pin (components/bootstrap/userdata.ts's BootstrapSettings): nothing for
 * a release without one, which the bootstrap then does not verify (the stack config allows that only with
 * allowUnpinnedDifyVersion).
 */
export function releaseVerification(version: string): { releaseDigest?: string; releaseFiles?: readonly string[]; releaseCommit?: string } {
    const pin = difyReleasePin(version);
    return pin === undefined ? {} : { releaseDigest: pin.digest, releaseFiles: pin.files, releaseCommit: pin.commit };
}
