import * as pulumi from "@pulumi/pulumi";

/**
 * Stands in for the DifyReadiness dynamic resource under Pulumi mocks. Vitest loads project modules through its
 * own module system, which closure serialization cannot capture; the real provider is exercised the way the
 * engine runs it in tests/dynamic-providers/dify-readiness.test.ts. This stub records the wiring.
 */
export class DifyReadiness extends pulumi.CustomResource {
    declare readonly difyUrl: pulumi.Output<string>;
    declare readonly setupStep: pulumi.Output<string>;
    declare readonly difyVersion: pulumi.Output<string>;

    constructor(name: string, args: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
        super("dify-mcp-stack:test:DifyReadiness", name, { ...args, setupStep: undefined, difyVersion: undefined }, opts);
    }
}
