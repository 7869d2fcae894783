import * as pulumi from "@pulumi/pulumi";
import { DifyNetwork } from "./components/network";
import { DifySecurityGroup } from "./components/security-group";
import { DifyHost } from "./components/dify-host";
import { resolveImageId, resolvePlacement } from "./components/placement";
import { parseStackSettings } from "./components/stack-config";

// Read and validate every setting first, so a bad value fails `pulumi preview` before anything is planned.
const config = new pulumi.Config();
const { settings, warnings } = parseStackSettings(
    { get: (key) => config.get(key) },
    { stack: pulumi.getStack(), region: new pulumi.Config("alicloud").get("region") ?? process.env.ALICLOUD_REGION },
);
for (const warning of warnings) {
    pulumi.log.warn(warning);
}

const tags = { "managed-by": "pulumi", project: pulumi.getProject(), stack: pulumi.getStack(), ...settings.tags };

const placement = resolvePlacement(settings);

const network = new DifyNetwork("dify", {
    namePrefix: settings.namePrefix,
    vpcCidr: settings.vpcCidr,
    vswitchCidr: settings.vswitchCidr,
    zoneId: placement.zoneId,
    tags,
});

const securityGroup = new DifySecurityGroup("dify", {
    namePrefix: settings.namePrefix,
    vpcId: network.vpcId,
    allowedCidrs: settings.allowedCidrs,
    adminCidr: settings.adminCidr,
    httpsEnabled: settings.domain !== undefined,
    tags,
});

const host = new DifyHost("dify", {
    namePrefix: settings.namePrefix,
    zoneId: network.zoneId,
    vswitchId: network.vswitchId,
    securityGroupId: securityGroup.securityGroupId,
    instanceType: placement.instanceType,
    instanceCpuCores: placement.cpuCoreCount,
    instanceMemoryGib: placement.memorySize,
    imageId: resolveImageId(settings, placement.instanceType),
    imageFromLookup: settings.imageId === undefined,
    instanceChargeType: settings.instanceChargeType,
    systemDiskCategory: settings.systemDiskCategory,
    systemDiskSize: settings.systemDiskSize,
    dataDiskCategory: settings.dataDiskCategory,
    dataDiskSize: settings.dataDiskSize,
    dataDiskSnapshotRetentionDays: settings.dataDiskSnapshotRetentionDays,
    protectDataDisk: settings.protectDataDisk,
    eipBandwidthMbps: settings.eipBandwidthMbps,
    sshPublicKey: settings.sshPublicKey,
    difyVersion: settings.difyVersion,
    domain: settings.domain,
    certEmail: settings.certEmail,
    registryMirrors: settings.registryMirrors,
    pipMirrorUrl: settings.pipMirrorUrl,
    readinessTimeoutMinutes: settings.readinessTimeoutMinutes,
    tags,
});

export const difyUrl = host.difyUrl;
export const difyConsoleUrl = pulumi.interpolate`${host.difyUrl}/apps`;
export const publicIp = host.publicIp;
export const instanceId = host.instanceId;
export const instanceType = placement.instanceType;
export const zoneId = network.zoneId;
export const dataDiskId = host.dataDiskId;
export const mcpOAuthCallbackUrl = host.mcpOAuthCallbackUrl;
