// Dify's release files resolve from one place: DIFY_RELEASES_DIR, else ../shared, else a download by tag,
// each verified against the pinned digest; when none works the error names all three ways.
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentDigest, difyReleaseDir, difyReleaseResolver, PINNED_DIFY_RELEASES } from "./dify-release";

const TAG = "1.8.0";
let scratch: string;
let server: ChildProcess;
let baseUrl: string;
/** What the loopback "GitHub" serves: files below this folder, by URL path. */
let served: string;

// The resolver downloads synchronously (curl), so the server must live in another process.
const SERVER = `
const http = require("http"), fs = require("fs"), path = require("path");
const [root, log] = process.argv.slice(1);
http.createServer((req, res) => {
    fs.appendFileSync(log, req.url + "\\n");
    const file = path.join(root, path.normalize(req.url));
    if (!fs.existsSync(file)) { res.writeHead(404); res.end("no such tag"); return; }
    res.writeHead(200, { "Content-Type": "application/gzip" });
    fs.createReadStream(file).pipe(res);
}).listen(0, "127.0.0.1", function () { console.log(this.address().port); });
`;

function requestCount(): number {
    const log = path.join(scratch, "requests.log");
    return fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0;
}

function serve(urlPath: string, tarball: Buffer): void {
    fs.mkdirSync(path.dirname(path.join(served, urlPath)), { recursive: true });
    fs.writeFileSync(path.join(served, urlPath), tarball);
}

/** A GitHub-style tarball (one dify-<tag>/ top folder) of the given docker/ folder. */
function tarballOf(dockerDir: string, edit?: (dir: string) => void): Buffer {
    const root = fs.mkdtempSync(path.join(scratch, "tar-"));
    const top = path.join(root, `dify-${TAG}`);
    fs.mkdirSync(top);
    fs.cpSync(dockerDir, path.join(top, "docker"), { recursive: true });
    fs.writeFileSync(path.join(top, "docker", "unpinned.txt"), "not part of the pin\n");
    fs.mkdirSync(path.join(top, "web"));
    fs.writeFileSync(path.join(top, "web", "README.md"), "other parts of the release\n");
    edit?.(path.join(top, "docker"));
    const file = path.join(root, "release.tar.gz");
    execFileSync("tar", ["-czf", file, "-C", root, `dify-${TAG}`]);
    return fs.readFileSync(file);
}

beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "dify-release-"));
    served = path.join(scratch, "served");
    fs.mkdirSync(served);
    server = spawn(process.execPath, ["-e", SERVER, served, path.join(scratch, "requests.log")], { stdio: ["ignore", "pipe", "inherit"] });
    const port = await new Promise<string>((resolve) => server.stdout?.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
    baseUrl = `http://127.0.0.1:${port}`;
});
afterAll(() => {
    server.kill();
    fs.rmSync(scratch, { recursive: true, force: true });
});

function isolated(name: string, downloadPath: string, releasesDir?: string) {
    return difyReleaseResolver({
        releasesDir,
        sharedDir: path.join(scratch, name, "no-shared"),
        downloadUrl: `${baseUrl}${downloadPath}`,
        cacheDir: path.join(scratch, name, "cache"),
    });
}

describe("Dify release files", () => {
    it("resolves every pinned release part of this project, verified against its digest", () => {
        for (const [tag, parts] of Object.entries(PINNED_DIFY_RELEASES)) {
            for (const [part, pin] of Object.entries(parts)) {
                const dir = difyReleaseDir(tag, part as "docker" | "api");
                expect(contentDigest(dir, pin?.files)).toBe(pin?.digest);
            }
        }
    });

    it("prefers DIFY_RELEASES_DIR, and passes over a copy that differs from the release", () => {
        const source = difyReleaseDir(TAG, "docker");
        const good = path.join(scratch, "good");
        fs.cpSync(source, path.join(good, TAG, "docker"), { recursive: true });
        expect(isolated("env", "/none/{tag}", good)(TAG, "docker")).toBe(path.join(good, TAG, "docker"));

        const edited = path.join(scratch, "edited");
        fs.cpSync(source, path.join(edited, TAG, "docker"), { recursive: true });
        fs.appendFileSync(path.join(edited, TAG, "docker", ".env.example"), "EXTRA=1\n");
        expect(() => isolated("edited", "/none/{tag}", edited)(TAG, "docker")).toThrow(/DIFY_RELEASES_DIR: .* has digest [0-9a-f]{64}, not the pinned/);
    });

    it("downloads the release by tag when nothing local has it, keeps only the pinned files, and downloads once", () => {
        serve(`/ok/${TAG}.tar.gz`, tarballOf(difyReleaseDir(TAG, "docker")));
        const before = requestCount();
        const resolve = isolated("download", "/ok/{tag}.tar.gz");
        const dir = resolve(TAG, "docker");
        expect(dir).toBe(path.join(scratch, "download", "cache", TAG, "docker"));
        expect(fs.readdirSync(dir).sort()).toEqual([".env.example", "docker-compose.yaml"]);
        expect(contentDigest(dir, PINNED_DIFY_RELEASES[TAG].docker?.files)).toBe(PINNED_DIFY_RELEASES[TAG].docker?.digest);
        // A new resolver (another test process) finds the verified download in the cache.
        expect(isolated("download", "/ok/{tag}.tar.gz")(TAG, "docker")).toBe(dir);
        expect(requestCount() - before).toBe(1);
    });

    it("refuses a download that differs from the pinned release, naming the three ways", () => {
        serve(`/tampered/${TAG}.tar.gz`, tarballOf(difyReleaseDir(TAG, "docker"), (docker) => {
            fs.appendFileSync(path.join(docker, "docker-compose.yaml"), "# changed\n");
        }));
        const resolve = isolated("tampered", "/tampered/{tag}.tar.gz");
        expect(() => resolve(TAG, "docker")).toThrow(/does not match the pinned digest/);
        expect(fs.existsSync(path.join(scratch, "tampered", "cache", TAG, "docker"))).toBe(false);
    });

    it("fails when none of the three ways works, and names each of them", () => {
        const resolve = isolated("nothing", "/missing/{tag}.tar.gz");
        let message = "";
        try {
            resolve(TAG, "docker");
        } catch (err) {
            message = (err as Error).message;
        }
        expect(message).toMatch(/set DIFY_RELEASES_DIR/);
        expect(message).toMatch(/\.\.\/shared\/fixtures\/dify\/1\.8\.0\/docker/);
        expect(message).toMatch(/download .*\/missing\/1\.8\.0\.tar\.gz/);
        expect(message).toMatch(/404/);
        expect(() => resolve("0.9.9", "docker")).toThrow(/No pinned digest for Dify 0\.9\.9/);
    });
});
