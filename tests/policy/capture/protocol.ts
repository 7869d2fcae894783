// What a capture run is asked to do and what it answers (shared by the test side and the capture process).
import type { LookupAnswers } from "../../components/pulumi-mocks";

/** Every dynamic resource type starts with this ("pulumi-nodejs:dynamic:Resource" or ".../<module>:<Type>"). */
export const DYNAMIC_TYPE_PREFIX = "pulumi-nodejs:dynamic";

/** One component (or dynamic resource) built directly by a scenario of scenarios.ts, named `name`. */
export interface CaptureCase {
    scenario: string;
    name: string;
    args?: Record<string, unknown>;
}

export interface CaptureRequest {
    /** Runs the real index.ts with this stack config (keys without a namespace are the project's). */
    program?: { config: Record<string, string>; secretKeys?: string[] };
    /** Builds these cases, each with its own resource names, in the same run. */
    cases?: CaptureCase[];
    lookups?: LookupAnswers;
    /** Runs the mocks as a preview (default false, as the component tests do). */
    preview?: boolean;
}

/** One RegisterResource request as the mock monitor received it, and its answer. */
export interface CapturedResource {
    urn: string;
    type: string;
    name: string;
    parent?: string;
    custom: boolean;
    protect: boolean;
    /** The resource option: the engine resets these inputs to their old values before Check and analysis. */
    ignoreChanges: string[];
    provider?: string;
    dependencies: string[];
    /** Input property name → URNs of the resources its value came from. */
    propertyDependencies: Record<string, string[]>;
    /** The inputs as registered (secrets unwrapped). */
    inputs: Record<string, unknown>;
    /** Dynamic resources: the inputs after the provider's own Check, which is what the engine analyses. */
    checkedInputs?: Record<string, unknown>;
    checkFailures?: Array<{ property: string; reason: string }>;
    checkError?: string;
    /** The state the mocks answered with (inputs plus canned outputs): what stack policies see as props. */
    outputs: Record<string, unknown>;
}

export interface CaptureResult {
    resources: CapturedResource[];
    /** Exceptions and unhandled rejections of the program or scenarios. */
    errors: string[];
}
