// Runs the pack's policies on captured registrations the way @pulumi/policy's analyzer server calls them
// (policy/node_modules/@pulumi/policy/server.js): validateResource once per resource with
// { type, props, urn, name, opts, ... } where props are the checked inputs wrapped in the SDK's
// unknownCheckingProxy; validateStack once with every resource (props: outputs, with parent, dependencies and
// propertyDependencies resolved to the resource objects); an UnknownValueError becomes an advisory
// "can't run … during preview", as the SDK reports it.
import {
    policies as packPolicies,
    type Policies,
    type PolicyResource,
    type ResourceValidationArgs,
    type ResourceValidationPolicy,
    type StackValidationArgs,
    type StackValidationPolicy,
} from "../../policy/rules";
import type { CapturedResource } from "./capture/protocol";

// The SDK's own proxy and unknown sentinels (policy/ is its own npm project; its typings omit the internals).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const proxy = require("../../policy/node_modules/@pulumi/policy/proxy") as {
    unknownCheckingProxy<T extends object>(props: T): T;
    UnknownValueError: new (...args: unknown[]) => Error;
    unknownStringValue: string;
    unknownArrayValue: string;
};

/** What the engine would get for a property still unknown in a preview (a string-typed one). */
export const UNKNOWN_STRING = proxy.unknownStringValue;

export interface Finding {
    policy: string;
    enforcementLevel: string;
    message: string;
    urn?: string;
}

const STACK_URN_TYPE = "pulumi:pulumi:Stack";

function options(resource: CapturedResource) {
    return {
        protect: resource.protect,
        ignoreChanges: resource.ignoreChanges,
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
        parent: resource.parent,
    };
}

/** The engine analyses a resource's inputs after its provider's Check: for dynamic resources those are captured. */
export function analysedInputs(resource: CapturedResource): Record<string, unknown> {
    return resource.checkedInputs ?? resource.inputs;
}

function notApplicable(reason?: string): never {
    throw new Error(`not applicable: ${reason}`);
}

export function resourceArgs(resource: CapturedResource): ResourceValidationArgs {
    const props = proxy.unknownCheckingProxy(structuredClone(analysedInputs(resource)));
    return {
        type: resource.type,
        props,
        urn: resource.urn,
        name: resource.name,
        opts: options(resource),
        stackTags: new Map(),
        isType: () => false,
        asType: () => undefined,
        getConfig: <T extends object>() => ({}) as T,
        notApplicable,
    };
}

export function stackArgs(resources: readonly CapturedResource[]): StackValidationArgs {
    const byUrn = new Map<string, PolicyResource>();
    const policyResources = resources.map((resource) => {
        const policyResource: PolicyResource = {
            type: resource.type,
            props: proxy.unknownCheckingProxy(structuredClone(resource.outputs)),
            urn: resource.urn,
            name: resource.name,
            opts: options(resource),
            dependencies: [],
            propertyDependencies: {},
            isType: () => false,
            asType: () => undefined,
        };
        byUrn.set(resource.urn, policyResource);
        return policyResource;
    });
    resources.forEach((resource, i) => {
        const policyResource = policyResources[i];
        if (resource.parent !== undefined && byUrn.has(resource.parent)) {
            policyResource.parent = byUrn.get(resource.parent);
        }
        policyResource.dependencies = resource.dependencies.flatMap((urn) => byUrn.get(urn) ?? []);
        for (const [property, urns] of Object.entries(resource.propertyDependencies)) {
            policyResource.propertyDependencies[property] = urns.flatMap((urn) => byUrn.get(urn) ?? []);
        }
    });
    return { resources: policyResources, stackTags: new Map(), getConfig: <T extends object>() => ({}) as T, notApplicable };
}

function isStackPolicy(policy: ResourceValidationPolicy | StackValidationPolicy): policy is StackValidationPolicy {
    return "validateStack" in policy;
}

/**
 * The pack as the tests run it. POLICY_TESTS_WITHOUT=<policy name> drops one policy, to check that some test
 * fails without it (every policy is load-bearing).
 */
function defaultPolicies(): Policies {
    const without = process.env.POLICY_TESTS_WITHOUT;
    return without ? packWithout(without) : packPolicies;
}

/** Runs the pack (or the given policies) on the resources and returns every violation, as the SDK would report it. */
export async function runPack(resources: readonly CapturedResource[], policies: Policies = defaultPolicies()): Promise<Finding[]> {
    const findings: Finding[] = [];
    const analysed = resources.filter((r) => r.type !== STACK_URN_TYPE);
    for (const policy of policies) {
        const level = policy.enforcementLevel ?? "mandatory"; // the pack's default (policy/index.ts)
        if (level === "disabled") {
            continue;
        }
        const report = (message: string, urn?: string) => findings.push({ policy: policy.name, enforcementLevel: level, message, urn });
        const cannotRun = (error: unknown, urn?: string) => {
            if (error instanceof proxy.UnknownValueError) {
                findings.push({ policy: policy.name, enforcementLevel: "advisory", message: `can't run policy '${policy.name}' during preview: ${error.message}`, urn });
                return;
            }
            throw error;
        };
        if (isStackPolicy(policy)) {
            try {
                await policy.validateStack(stackArgs(analysed), report);
            } catch (error) {
                cannotRun(error);
            }
            continue;
        }
        const validations = policy.validateResource === undefined ? [] : Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
        for (const resource of analysed) {
            for (const validate of validations) {
                try {
                    await validate(resourceArgs(resource), (message) => report(message, resource.urn));
                } catch (error) {
                    cannotRun(error, resource.urn);
                }
            }
        }
    }
    return findings;
}

/** The pack without one policy: to show that a test's finding comes from that policy and no other. */
export function packWithout(name: string): Policies {
    const rest = packPolicies.filter((policy) => policy.name !== name);
    if (rest.length === packPolicies.length) {
        throw new Error(`the pack has no policy named ${name}`);
    }
    return rest;
}

/** "policy: message" lines, for readable assertions. */
export function lines(findings: readonly Finding[]): string[] {
    return findings.map((f) => `${f.policy}: ${f.message}`);
}

/** Names of the policies that reported, sorted and deduplicated. */
export function policiesReporting(findings: readonly Finding[]): string[] {
    return [...new Set(findings.map((f) => f.policy))].sort();
}

/** Replaces input and output properties with the preview's "unknown" marker, as a first preview would see them. */
export function withUnknown(resource: CapturedResource, keys: readonly string[]): CapturedResource {
    const mark = (bag: Record<string, unknown> | undefined) =>
        bag === undefined ? undefined : { ...bag, ...Object.fromEntries(keys.map((key) => [key, UNKNOWN_STRING])) };
    return { ...resource, inputs: mark(resource.inputs)!, checkedInputs: mark(resource.checkedInputs), outputs: mark(resource.outputs)! };
}
