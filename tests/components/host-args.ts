// The DifyHost settings the component tests start from (a 2 vCPU / 4 GiB Ubuntu host in cn-hangzhou-j); each
// test overrides what it is about.
import * as pulumi from "@pulumi/pulumi";
import { DifyHost, type DifyHostArgs, type DifyHostSettings } from "../../components/dify-host";
import { settle, valueOf } from "./pulumi-mocks";

export const BASE_HOST_ARGS: DifyHostArgs = {
    settings: {
        namePrefix: "dify-test",
        instanceChargeType: "PostPaid",
        systemDiskCategory: "cloud_essd",
        systemDiskSize: 60,
        dataDiskCategory: "cloud_essd",
        dataDiskSize: 100,
        eipBandwidthMbps: 100,
        difyVersion: "1.14.1",
        registryMirrors: [],
        readinessTimeoutMinutes: 45,
        region: "cn-hangzhou",
    },
    network: { zoneId: "cn-hangzhou-j", vswitchId: "vsw-1", securityGroupId: "sg-1" },
    instance: { instanceType: "ecs.c7.large", imageId: "ubuntu_22_04_x64_20G_alibase_20260522.vhd", imageFromLookup: true },
    tags: { project: "dify-mcp-stack", stack: "test" },
};

/** BASE_HOST_ARGS with some of its settings replaced. */
export function hostArgsWith(settings: Partial<DifyHostSettings>): DifyHostArgs {
    return { ...BASE_HOST_ARGS, settings: { ...BASE_HOST_ARGS.settings, ...settings } };
}

/**
 * Builds a DifyHost under the mocks, recording each child's resource options (ignoreChanges, dependsOn, …) in
 * `options` by resource name, and waits until its resources are registered.
 */
export async function buildHostRecordingOptions(name: string, args: DifyHostArgs, options: Map<string, pulumi.CustomResourceOptions>): Promise<DifyHost> {
    const built = new DifyHost(name, args, {
        transformations: [
            (resource) => {
                options.set(resource.name, resource.opts as pulumi.CustomResourceOptions);
                return undefined;
            },
        ],
    });
    await valueOf(built.mcpOAuthCallbackUrl);
    await settle();
    return built;
}
