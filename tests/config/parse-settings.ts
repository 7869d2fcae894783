import { parseStackSettings } from "../../config/stack-config";

/** parseStackSettings over plain values, as `pulumi.Config.get` presents them (objects and arrays as JSON). */
export function parse(values: Record<string, unknown>, region: string | undefined = "cn-hangzhou") {
    const source = {
        get: (key: string) => {
            const value = values[key];
            if (value === undefined) {
                return undefined;
            }
            return typeof value === "string" ? value : JSON.stringify(value);
        },
    };
    return parseStackSettings(source, { stack: "dev", region });
}
