import * as pulumi from "@pulumi/pulumi";

/**
 * Pulumi's dynamic-provider host hands results to the engine as protobuf Structs, and
 * `Struct.fromJavaScript` throws "Unexpected struct type." on an `undefined` anywhere in them. A provider whose
 * optional outputs are absent must leave the keys out, not set them to `undefined`.
 */
export function withoutUndefined<T>(value: T): T {
    if (Array.isArray(value)) {
        return value.map((item) => withoutUndefined(item)) as unknown as T;
    }
    if (value !== null && typeof value === "object") {
        const kept: Record<string, unknown> = {};
        for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
            if (item !== undefined) {
                kept[key] = withoutUndefined(item);
            }
        }
        return kept as T;
    }
    return value;
}

/** Wraps a provider so every property bag it returns to the engine (outs, props, inputs) is Struct-safe. */
export function engineSafeProvider<Inputs, Outputs>(
    inner: pulumi.dynamic.ResourceProvider<Inputs, Outputs>,
): pulumi.dynamic.ResourceProvider<Inputs, Outputs> {
    // Methods reach the wrapped provider through `inner` (not destructured locals): Pulumi's closure
    // serializer captures plain object references reliably.
    const wrapped: pulumi.dynamic.ResourceProvider<Inputs, Outputs> = {
        ...inner,
        async create(inputs: Inputs) {
            const result = await inner.create(inputs);
            return { ...result, outs: withoutUndefined(result.outs) };
        },
    };
    if (inner.read) {
        wrapped.read = async (id: string, props?: Outputs) => withoutUndefined(await inner.read!(id, props));
    }
    if (inner.update) {
        wrapped.update = async (id: string, olds: Outputs, news: Inputs) => withoutUndefined(await inner.update!(id, olds, news));
    }
    return wrapped;
}
