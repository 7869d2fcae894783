// Lists the project's stacks (one Pulumi.<stack>.yaml per stack) for the GitOps workflows.
//
//   node dist/scripts/pulumi-stacks.js                 JSON array of every stack, e.g. ["dev","prod"]
//   node dist/scripts/pulumi-stacks.js --auto-deploy   only the stacks that opt in to `pulumi up` on merge to main
//
// A stack opts in with the config key `<project>:autoDeploy: true` in its Pulumi.<stack>.yaml
// (`pulumi config set autoDeploy true --stack <stack>`).
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";

export const AUTO_DEPLOY_KEY = "autoDeploy";
const DEFAULT_PROJECT = "dify-mcp-stack";

// Stack names the workflows can pass safely as a CLI argument and use in a concurrency group.
const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/** The project name from Pulumi.yaml (config keys are namespaced with it). */
export function projectName(root: string): string {
    const file = path.join(root, "Pulumi.yaml");
    if (!fs.existsSync(file)) {
        return DEFAULT_PROJECT;
    }
    const project = yaml.load(fs.readFileSync(file, "utf8")) as { name?: unknown } | null;
    return typeof project?.name === "string" ? project.name : DEFAULT_PROJECT;
}

/** Every stack with a Pulumi.<stack>.yaml in root, sorted. */
export function listStacks(root: string): string[] {
    return fs.readdirSync(root)
        .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
        .filter((stack): stack is string => stack !== undefined)
        .map((stack) => {
            if (!STACK_NAME.test(stack)) {
                throw new Error(`Pulumi.${stack}.yaml: stack names may only use letters, digits, ".", "_" and "-"`);
            }
            return stack;
        })
        .sort();
}

/** True when the stack's config sets `<project>:autoDeploy` to true (YAML boolean or the string "true"). */
export function autoDeploys(root: string, stack: string): boolean {
    const file = path.join(root, `Pulumi.${stack}.yaml`);
    const settings = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
    const value = settings?.config?.[`${projectName(root)}:${AUTO_DEPLOY_KEY}`];
    return value === true || value === "true";
}

/** The stacks that `pulumi up` on merge to main. */
export function autoDeployStacks(root: string): string[] {
    return listStacks(root).filter((stack) => autoDeploys(root, stack));
}

function main(argv: string[]): void {
    const unknown = argv.filter((arg) => arg !== "--auto-deploy" && !arg.startsWith("--root="));
    if (unknown.length > 0) {
        throw new Error(`unknown arguments: ${unknown.join(" ")} (expected --auto-deploy, --root=DIR)`);
    }
    const rootArg = argv.find((arg) => arg.startsWith("--root="));
    const root = rootArg ? path.resolve(rootArg.slice("--root=".length)) : process.cwd();
    const stacks = argv.includes("--auto-deploy") ? autoDeployStacks(root) : listStacks(root);
    process.stdout.write(`${JSON.stringify(stacks)}\n`);
}

if (require.main === module) {
    main(process.argv.slice(2));
}
