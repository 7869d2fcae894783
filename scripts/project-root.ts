// The repository root, from any module in it, whether run from source (vitest) or compiled into dist/ (the
// npm scripts): shell scripts, Python files and caches are found from here, never next to a compiled file.
import * as fs from "fs";
import * as path from "path";

function findRoot(start: string): string {
    for (let dir = start; ; dir = path.dirname(dir)) {
        if (path.basename(dir) !== "dist" && fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "Pulumi.yaml"))) {
            return dir;
        }
        if (path.dirname(dir) === dir) {
            throw new Error(`no project root (package.json beside Pulumi.yaml) above ${start}`);
        }
    }
}

export const PROJECT_ROOT = findRoot(__dirname);
