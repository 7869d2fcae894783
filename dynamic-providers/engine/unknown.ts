// What the Pulumi engine sends for a value not known yet (during `pulumi preview`): the SDK's own sentinel.
// check() must not validate it as a real value and diff() must report it as a possible change.
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";

/** True when the value, or anything inside it, is still unknown. */
export function containsUnknown(value: unknown): boolean {
    if (value === unknownValue) {
        return true;
    }
    if (Array.isArray(value)) {
        return value.some(containsUnknown);
    }
    if (value !== null && typeof value === "object") {
        return Object.values(value as Record<string, unknown>).some(containsUnknown);
    }
    return false;
}

/** True when the value was given and is wholly known: only then can check() validate it. */
export function isKnown(value: unknown): boolean {
    return value !== undefined && !containsUnknown(value);
}
