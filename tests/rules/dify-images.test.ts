// The image table (rules/dify-images.ts) against Dify's real release files, rendered by the real Compose CLI:
// `docker compose config --images` in a copy of each release's docker/ folder with its .env.example as .env (as the
// bootstrap's prepare_dify leaves it), with the default profiles, plus the pinned certbot image (rules/certbot.ts).
// `config` needs no Docker engine. Needs Docker Compose >= 2.24 (bash scripts/compose-cli.sh) and the release
// folders (tests/harness/dify-release.ts); without either the test fails, saying how to get it.
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { composeCli } from "../harness/compose";
import { difyReleaseDir } from "../harness/dify-release";
import {
    DIFY_IMAGES,
    DIFY_IMAGE_VERSIONS,
    difyImages,
    dockerHubRepositories,
    exactTagsRegexp,
    parseDockerHubImage,
} from "../../rules/dify-images";
import { CERTBOT_IMAGE } from "../../rules/certbot";

const scratch: string[] = [];
afterAll(() => {
    for (const dir of scratch) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

/** The release's docker/ folder, copied, with .env from .env.example. */
function preparedDockerDir(tag: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dify-images-${tag}-`));
    scratch.push(dir);
    fs.cpSync(difyReleaseDir(tag, "docker"), dir, { recursive: true });
    fs.copyFileSync(path.join(dir, ".env.example"), path.join(dir, ".env"));
    return dir;
}

/** `docker compose <globals> config --images` in `cwd`, with a minimal environment (the project's .env decides). */
function composeImages(cwd: string, globals: string[]): string[] {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "compose-home-"));
    scratch.push(home);
    const result = spawnSync(composeCli(), [...globals, "config", "--images"], {
        cwd,
        encoding: "utf8",
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, DOCKER_CONFIG: path.join(home, ".docker") },
    });
    expect(result.status, result.stderr).toBe(0);
    return result.stdout.split("\n").filter((line) => line.trim() !== "");
}

describe("the images of each Dify release (rules/dify-images.ts)", () => {
    it("lists 1.8.0 and 1.14.1, the oldest and newest releases the tests pin", () => {
        expect(DIFY_IMAGE_VERSIONS).toEqual(["1.8.0", "1.14.1"]);
        expect(difyImages("1.13.0")).toBeUndefined();
        expect(difyImages("constructor")).toBeUndefined();
    });

    it.each(DIFY_IMAGE_VERSIONS.map((version) => [version]))(
        "Dify %s: the table is what docker compose config --images prints for the default profiles, plus the pinned certbot",
        (version) => {
            const dir = preparedDockerDir(version);
            const defaults = composeImages(dir, []);
            // The release's certbot profile (an unpinned certbot/certbot) is not started; the bootstrap runs its own.
            expect(defaults.filter((image) => image.startsWith("certbot/"))).toEqual([]);
            const pulled = [...new Set([...defaults, CERTBOT_IMAGE])].sort();
            expect([...DIFY_IMAGES[version]]).toEqual(pulled);
        },
    );

    it("has only Docker Hub images, each repository once", () => {
        for (const version of DIFY_IMAGE_VERSIONS) {
            const images = DIFY_IMAGES[version];
            expect(images.every((image) => parseDockerHubImage(image) !== undefined), version).toBe(true);
            expect(dockerHubRepositories(images).every((repo) => repo.tags.length === 1), version).toBe(true);
        }
    });
});

describe("Docker Hub names", () => {
    it("splits official, namespaced and untagged images as Docker Hub names them", () => {
        expect(parseDockerHubImage("nginx:latest")).toEqual({ namespace: "library", repository: "nginx", tag: "latest" });
        expect(parseDockerHubImage("langgenius/dify-api:1.14.1")).toEqual({ namespace: "langgenius", repository: "dify-api", tag: "1.14.1" });
        expect(parseDockerHubImage("certbot/certbot")).toEqual({ namespace: "certbot", repository: "certbot", tag: "latest" });
        expect(parseDockerHubImage("langgenius/dify-plugin-daemon:0.6.0-local")?.tag).toBe("0.6.0-local");
    });

    it("refuses what is not a Docker Hub name: another registry, a digest, more parts", () => {
        expect(parseDockerHubImage("ghcr.io/x/y:1")).toBeUndefined();
        expect(parseDockerHubImage("localhost/x:1")).toBeUndefined();
        expect(parseDockerHubImage("registry:5000/x")).toBeUndefined();
        expect(parseDockerHubImage("nginx@sha256:0123")).toBeUndefined();
        expect(parseDockerHubImage("a/b/c:1")).toBeUndefined();
        expect(() => dockerHubRepositories(["ghcr.io/x/y:1"])).toThrow("is not a Docker Hub image reference");
    });

    it("groups the images by repository and writes a pattern that matches exactly their tags", () => {
        const repositories = dockerHubRepositories(DIFY_IMAGES["1.14.1"]);
        expect(repositories.map((repo) => `${repo.namespace}/${repo.repository}`)).toEqual([
            "certbot/certbot",
            "langgenius/dify-api",
            "langgenius/dify-plugin-daemon",
            "langgenius/dify-sandbox",
            "langgenius/dify-web",
            "library/busybox",
            "library/nginx",
            "library/postgres",
            "library/redis",
            "semitechnologies/weaviate",
            "ubuntu/squid",
        ]);
        expect(exactTagsRegexp(["1.14.1"])).toBe("^1\\.14\\.1$");
        expect(exactTagsRegexp(["0.6.0-local"])).toBe("^0\\.6\\.0-local$");
        expect(exactTagsRegexp(["1.0", "2.0"])).toBe("^(1\\.0|2\\.0)$");
        const pattern = new RegExp(exactTagsRegexp(["1.14.1"]));
        expect(pattern.test("1.14.1")).toBe(true);
        expect(pattern.test("1x14y1")).toBe(false);
        expect(pattern.test("1.14.10")).toBe(false);
    });
});
