// The one shape every pure check function returns; the provider's check() hands it to the engine as is.
import type * as pulumi from "@pulumi/pulumi";

/** A refused input: the property it names and why (the SDK's own type). */
export type CheckFailure = pulumi.dynamic.CheckFailure;

/** Inputs with defaults filled in, and what is wrong with them (empty when nothing is). */
export interface CheckedInputs<T> {
    inputs: T;
    failures: CheckFailure[];
}

/** A list of strings: what check() accepts for list inputs. */
export function isStringArray(value: unknown): value is string[] {
    return Array.isArray(value) && value.every((item) => typeof item === "string");
}
