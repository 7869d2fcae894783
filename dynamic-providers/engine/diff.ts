// Comparisons every provider's diff() makes.
import { containsUnknown } from "./unknown";

/** True when `key` may change: its new value is (partly) unknown, or differs from the old one as JSON. */
export function differs<T extends object>(olds: Partial<T>, news: Partial<T>, key: keyof T): boolean {
    return containsUnknown(news[key]) || JSON.stringify(olds[key] ?? null) !== JSON.stringify(news[key] ?? null);
}

/** Sorted copy without duplicates: for comparing lists the API treats as sets. */
export function sortedSet(values: readonly string[] | undefined): string[] {
    return [...new Set(values ?? [])].sort();
}

export function sameSet(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
    const left = sortedSet(a);
    const right = sortedSet(b);
    return left.length === right.length && left.every((value, index) => value === right[index]);
}

/**
 * Like `differs`, for a value fixed for a key (an OAuth client's secret for its client id, an MCP server's URL for
 * the server's id). While a resource is being updated, a preview cannot know its outputs (the dynamic-provider host
 * does not report which stay stable), so its dependents see them as unknown. When the key is known and the same as
 * before, an unknown value is not a change: it cannot have changed. `up` compares the real value again.
 */
export function differsUnlessPinned<T extends object>(olds: Partial<T>, news: Partial<T>, key: keyof T, pin: keyof T): boolean {
    const pinHeld = olds[pin] !== undefined && !containsUnknown(news[pin]) && JSON.stringify(olds[pin]) === JSON.stringify(news[pin]);
    if (pinHeld && containsUnknown(news[key]) && !containsUnknown(olds[key])) {
        return false;
    }
    return differs(olds, news, key);
}
