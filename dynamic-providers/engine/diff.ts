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
