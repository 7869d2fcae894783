// The resources the project's real code registers, captured under Pulumi mocks in a child process
// (capture/run-capture.cjs: the real index.ts, or real components and dynamic resources built by
// capture/scenarios.ts), for the policy tests to feed to the pack.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type CaptureRequest, type CaptureResult, type CapturedResource } from "./capture/protocol";

export type { CaptureCase, CaptureRequest, CaptureResult, CapturedResource } from "./capture/protocol";

const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
const CAPTURE_ENTRY = path.join(__dirname, "capture", "run-capture.cjs");
const CAPTURE_TIMEOUT_MS = 180_000;

function captureEnvironment(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const key of ["PATH", "HOME", "TMPDIR", "LANG"]) {
        if (process.env[key] !== undefined) {
            env[key] = process.env[key];
        }
    }
    // Mocks answer every registration and lookup; nothing may reach a cloud API or a metadata address.
    env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = "true";
    env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = "true";
    env.PULUMI_SKIP_UPDATE_CHECK = "true";
    return env;
}

/** Runs one capture and returns every registration; throws with the process output when the run fails. */
export async function captureRegistrations(request: CaptureRequest, options: { allowErrors?: boolean } = {}): Promise<CaptureResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-capture-"));
    const requestFile = path.join(dir, "request.json");
    const resultFile = path.join(dir, "result.json");
    fs.writeFileSync(requestFile, JSON.stringify(request));
    try {
        const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
            const child = spawn(process.execPath, [CAPTURE_ENTRY, requestFile, resultFile], {
                env: captureEnvironment(),
                // As the engine runs a program and its dynamic-provider host: in the project, whose node_modules the
                // revived providers' requires resolve against.
                cwd: PROJECT_ROOT,
            });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
            child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
            const timer = setTimeout(() => child.kill("SIGKILL"), CAPTURE_TIMEOUT_MS);
            child.on("error", reject);
            child.on("close", (exitCode) => {
                clearTimeout(timer);
                resolve({ code: exitCode, stdout, stderr });
            });
        });
        if (code !== 0 || !fs.existsSync(resultFile)) {
            throw new Error(`capture run failed (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}`);
        }
        const result = JSON.parse(fs.readFileSync(resultFile, "utf8")) as CaptureResult;
        const checkErrors = result.resources.filter((r) => r.checkError !== undefined).map((r) => `${r.urn}: ${r.checkError}`);
        if (!options.allowErrors && (result.errors.length > 0 || checkErrors.length > 0)) {
            throw new Error(`the captured program failed:\n${[...result.errors, ...checkErrors].join("\n")}`);
        }
        return result;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * The resources of one case of a capture: the components name every child `<name>-…`, so a case's resources are
 * the ones named `name` or `name-…` (case names are chosen so that none is such a prefix of another).
 */
export function resourcesOfCase(resources: readonly CapturedResource[], name: string): CapturedResource[] {
    return resources.filter((r) => r.name === name || r.name.startsWith(`${name}-`));
}

/** The one resource of `type` (optionally also matching `where`); throws unless there is exactly one. */
export function theOne(resources: readonly CapturedResource[], type: string, where: (r: CapturedResource) => boolean = () => true): CapturedResource {
    const found = resources.filter((r) => r.type === type && where(r));
    if (found.length !== 1) {
        throw new Error(`expected one ${type}, found ${found.length}: ${found.map((r) => r.name).join(", ")}`);
    }
    return found[0];
}

/**
 * A copy of a captured resource with some input properties changed (a value of `undefined` removes the property),
 * keeping its name and URN, so every join of the stack (propertyDependencies) still holds. Changes apply to the
 * inputs, the checked inputs and the outputs alike.
 */
export function withChanges(resource: CapturedResource, changes: Record<string, unknown>): CapturedResource {
    const apply = (bag: Record<string, unknown> | undefined) => {
        if (bag === undefined) {
            return undefined;
        }
        const copy = structuredClone(bag);
        for (const [key, value] of Object.entries(changes)) {
            if (value === undefined) {
                delete copy[key];
            } else {
                copy[key] = value;
            }
        }
        return copy;
    };
    return {
        ...structuredClone(resource),
        inputs: apply(resource.inputs)!,
        checkedInputs: apply(resource.checkedInputs),
        outputs: apply(resource.outputs)!,
    };
}

/** withChanges, with a name and URN of its own: for spellings the components never write, beside the original. */
export function variantOf(resource: CapturedResource, suffix: string, changes: Record<string, unknown>): CapturedResource {
    const name = `${resource.name}-${suffix}`;
    return { ...withChanges(resource, changes), name, urn: `${resource.urn.slice(0, resource.urn.lastIndexOf("::"))}::${name}` };
}
