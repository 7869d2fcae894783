// Dify's release files (its `docker/` and `api/` folders at a tag), for the tests that run against Dify's real
// files. One place resolves them, in this order:
//   1. DIFY_RELEASES_DIR: a folder laid out as <tag>/<part>/ (the layout of ../shared/fixtures/dify);
//   2. ../shared/fixtures/dify/<tag>/<part> beside the project (the developers' machines and CI have it);
//   3. the release downloaded from GitHub by tag into .cache/dify-releases/<tag>/<part>.
// Whatever the source, the files are checked against the content digest pinned below, so a test never runs
// against a folder that differs from the release. When none of the three works, the error names all three.
//
// Why a content digest and not the tarball's SHA-256: the digest pins exactly the files the tests read, so it
// can be checked for the folders we already have (a tarball's bytes depend on how GitHub compressed it); it
// is the SHA-256 of a manifest, one line "<sha256 of file>  <path>" per file, sorted by path.
// The docker/ pins are the stack's own (rules/dify-releases.ts: the bootstrap verifies a fetched release against
// them with the same manifest); only the api/ pin, which the tests alone use, is kept here.
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../../scripts/project-root";
import { DIFY_RELEASES } from "../../rules/dify-releases";

export type DifyReleasePart = "docker" | "api";

interface PinnedPart {
    /** SHA-256 of the manifest of the files below. */
    digest: string;
    /** The files pinned, relative to the part's folder; absent: every file in the folder. */
    files?: readonly string[];
}

/** The api/ folders the tests use (Dify's real API server), pinned; the bootstrap never uses api/. */
const PINNED_API_FOLDERS: Readonly<Record<string, PinnedPart>> = {
    "1.14.1": { digest: "b1b105ab2c00cf39af5cd15f01a8700990ac7fcc6f23c332355922aedba08a0e" },
};

/**
 * What the tests use of each release, pinned: docker/ as rules/dify-releases.ts pins it (1.8.0, the oldest
 * supported release, only its compose file and `.env.example`; 1.14.1, the newest, whole), and api/ from above.
 */
export const PINNED_DIFY_RELEASES: Readonly<Record<string, Partial<Record<DifyReleasePart, PinnedPart>>>> = Object.fromEntries(
    Object.entries(DIFY_RELEASES).map(([tag, pin]) => {
        const parts: Partial<Record<DifyReleasePart, PinnedPart>> = { docker: { digest: pin.digest, files: pin.files } };
        if (PINNED_API_FOLDERS[tag]) {
            parts.api = PINNED_API_FOLDERS[tag];
        }
        return [tag, parts];
    }),
);

/** `{tag}` stands for the release tag. */
export const DIFY_RELEASE_DOWNLOAD_URL = "https://github.com/langgenius/dify/archive/refs/tags/{tag}.tar.gz";

/** Where a resolver looks; the defaults are the project's, tests substitute their own. */
export interface DifyReleaseSources {
    /** A folder laid out as <tag>/<part>/ (default: $DIFY_RELEASES_DIR). */
    releasesDir?: string;
    /** The shared fixtures beside the project (default: ../shared/fixtures/dify). */
    sharedDir: string;
    /** The release tarball URL with `{tag}` (default: GitHub's archive by tag). */
    downloadUrl: string;
    /** Where downloads are kept (default: .cache/dify-releases). */
    cacheDir: string;
}

export const DEFAULT_DIFY_RELEASE_SOURCES: DifyReleaseSources = {
    releasesDir: process.env.DIFY_RELEASES_DIR || undefined,
    sharedDir: path.resolve(PROJECT_ROOT, "../shared/fixtures/dify"),
    downloadUrl: DIFY_RELEASE_DOWNLOAD_URL,
    cacheDir: path.join(PROJECT_ROOT, ".cache", "dify-releases"),
};

function listFiles(root: string): string[] {
    const files: string[] = [];
    const walk = (dir: string, prefix: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
            if (entry.isDirectory()) {
                walk(path.join(dir, entry.name), relative);
            } else if (entry.isFile() || entry.isSymbolicLink()) {
                files.push(relative);
            }
        }
    };
    walk(root, "");
    return files.sort();
}

/** The content digest of `files` (default: every file) below `root`; a missing file makes it differ. */
export function contentDigest(root: string, files?: readonly string[]): string {
    const manifest = (files ? [...files].sort() : listFiles(root))
        .map((file) => {
            const full = path.join(root, file);
            const content = fs.existsSync(full) ? fs.readFileSync(full) : Buffer.from(`missing:${file}`);
            return `${createHash("sha256").update(content).digest("hex")}  ${file}\n`;
        })
        .join("");
    return createHash("sha256").update(manifest).digest("hex");
}

function pinFor(tag: string, part: DifyReleasePart): PinnedPart {
    const pin = PINNED_DIFY_RELEASES[tag]?.[part];
    if (!pin) {
        const known = Object.entries(PINNED_DIFY_RELEASES)
            .flatMap(([t, parts]) => Object.keys(parts).map((p) => `${t}/${p}`))
            .join(", ");
        throw new Error(`No pinned digest for Dify ${tag} ${part}/ (pinned: ${known}); add docker/ pins to rules/dify-releases.ts, api/ pins to tests/harness/dify-release.ts.`);
    }
    return pin;
}

/** Whether `dir` holds exactly the pinned files of the release; a reason when it does not. */
function verify(dir: string, tag: string, part: DifyReleasePart): string | undefined {
    if (!fs.existsSync(dir)) {
        return `${dir} does not exist`;
    }
    const pin = pinFor(tag, part);
    const digest = contentDigest(dir, pin.files);
    return digest === pin.digest ? undefined : `${dir} has digest ${digest}, not the pinned ${pin.digest}`;
}

/** Downloads the release tarball and extracts `part` into the cache; returns the folder or throws why not. */
function download(sources: DifyReleaseSources, tag: string, part: DifyReleasePart): string {
    const target = path.join(sources.cacheDir, tag, part);
    if (!verify(target, tag, part)) {
        return target;
    }
    const url = sources.downloadUrl.replace("{tag}", tag);
    fs.mkdirSync(sources.cacheDir, { recursive: true });
    const scratch = fs.mkdtempSync(path.join(sources.cacheDir, `.${tag}-`));
    try {
        const tarball = path.join(scratch, "release.tar.gz");
        // curl: a plain, bounded download with no shell; fails on HTTP errors.
        execFileSync("curl", ["-fsSL", "--max-time", "600", "--retry", "2", "-o", tarball, url], { stdio: "pipe" });
        const extracted = path.join(scratch, "x");
        fs.mkdirSync(extracted);
        // GitHub's tarballs hold one top folder (dify-<tag>/); take only <part>/ below it.
        execFileSync("tar", ["-xzf", tarball, "-C", extracted, "--strip-components=1", "--wildcards", `*/${part}/*`], { stdio: "pipe" });
        const reason = verify(path.join(extracted, part), tag, part);
        if (reason) {
            throw new Error(`the download from ${url} does not match the pinned digest (${reason})`);
        }
        fs.rmSync(target, { recursive: true, force: true });
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const pinnedFiles = pinFor(tag, part).files;
        if (pinnedFiles) {
            // Keep only what was verified: nothing unpinned reaches a test.
            for (const file of pinnedFiles) {
                fs.mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
                fs.copyFileSync(path.join(extracted, part, file), path.join(target, file));
            }
        } else {
            fs.renameSync(path.join(extracted, part), target);
        }
        return target;
    } catch (err) {
        const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
        throw new Error(stderr ? `${url}: ${stderr}` : err instanceof Error ? err.message : String(err));
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

/** Resolves release folders from `sources` (see the top of this file), remembering what it verified. */
export function difyReleaseResolver(sources: DifyReleaseSources): (tag: string, part: DifyReleasePart) => string {
    const resolved = new Map<string, string>();
    return (tag, part) => {
        const key = `${tag}/${part}`;
        const known = resolved.get(key);
        if (known) {
            return known;
        }
        pinFor(tag, part);
        const tried: string[] = [];
        const candidates: [string, string | undefined][] = [
            ["DIFY_RELEASES_DIR", sources.releasesDir ? path.join(sources.releasesDir, tag, part) : undefined],
            ["../shared", path.join(sources.sharedDir, tag, part)],
        ];
        for (const [source, dir] of candidates) {
            if (dir === undefined) {
                tried.push(`${source} is not set`);
                continue;
            }
            const reason = verify(dir, tag, part);
            if (!reason) {
                resolved.set(key, dir);
                return dir;
            }
            tried.push(`${source}: ${reason}`);
        }
        try {
            const dir = download(sources, tag, part);
            resolved.set(key, dir);
            return dir;
        } catch (err) {
            tried.push(`download: ${err instanceof Error ? err.message : String(err)}`);
        }
        throw new Error(
            `Dify ${tag}'s ${part}/ folder is needed and could not be found. Provide it one of three ways: ` +
                `(1) set DIFY_RELEASES_DIR to a folder holding ${tag}/${part}/; ` +
                `(2) keep the project beside ../shared/fixtures/dify/${tag}/${part}/; ` +
                `(3) let the tests download ${sources.downloadUrl.replace("{tag}", tag)} into ${sources.cacheDir} (needs that host). ` +
                `Tried: ${tried.join("; ")}.`,
        );
    };
}

/**
 * The folder holding Dify's `part` (docker/ or api/) at `tag`, verified against the pinned digest. Throws,
 * naming the three ways to provide it, when none works: never returns a folder that was not verified.
 */
export const difyReleaseDir = difyReleaseResolver(DEFAULT_DIFY_RELEASE_SOURCES);
