import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import { DifyBootstrap } from "./dify-bootstrap";
import { CONFIG_DEFAULTS, type StackSettings } from "../config/stack-config";
import { DIFY_VERSION_TAG, MEMORY_TAG, VCPU_TAG } from "../rules/instance-tags";
import { difyMcpOAuthCallbackUrl } from "../rules/oauth-callback";
import { DifyReadiness } from "../dynamic-providers/dify/readiness";
import { DifyInstanceConfiguration } from "../dynamic-providers/dify/instance-configuration";

/** The stack settings the host must be given (config/stack-config.ts documents each). */
type RequiredHostSettingKey =
    | "namePrefix"
    | "instanceChargeType"
    | "systemDiskCategory"
    | "systemDiskSize"
    | "dataDiskCategory"
    | "dataDiskSize"
    | "dataDiskKmsKeyId"
    | "eipBandwidthMbps"
    | "sshPublicKey"
    | "difyVersion"
    | "domain"
    | "certEmail"
    | "pipMirrorUrl"
    | "readinessTimeoutMinutes"
    | "region";

/** The stack settings the host may be given: left out, each is its `CONFIG_DEFAULTS` value. */
type DefaultedHostSettingKey =
    | "dataDiskSnapshotRetentionDays"
    | "protectDataDisk"
    | "encryptDataDisk"
    | "requireMetadataTokens"
    | "registryMirrors"
    | "allowUnpinnedDifyVersion"
    | "plainHttp";

/**
 * The host's part of the parsed stack settings: index.ts passes `parseStackSettings(...).settings` as it is.
 * Each field is documented on `StackSettings` (what it is, its default, and what changing it does to a running
 * stack). dataDiskSnapshotRetentionDays, protectDataDisk, encryptDataDisk, requireMetadataTokens,
 * registryMirrors, allowUnpinnedDifyVersion and plainHttp may be left out, and then take their `CONFIG_DEFAULTS`
 * value.
 * The settings that are not the host's (placement, image family, network, tags) reach it resolved, through
 * `network`, `instance` and `tags`.
 */
export type DifyHostSettings = Pick<StackSettings, RequiredHostSettingKey> &
    Partial<Pick<StackSettings, DefaultedHostSettingKey>>;

/** Where the host is attached: the stack's DifyNetwork and DifySecurityGroup. */
export interface DifyHostNetwork {
    /**
     * The zone of the vSwitch, where the data disk is created. A disk cannot move zones: a new zone (or one not
     * known at preview, as with a new vSwitch) replaces the data disk with a new, empty one, which
     * `protectDataDisk` (default) refuses.
     */
    zoneId: pulumi.Input<string>;
    /**
     * The vSwitch the instance is attached to (in `zoneId`). Changing it moves the instance in place (ECS
     * ModifyInstanceVpcAttribute: the provider stops and starts it, and its private address changes); the
     * bootstrap does not run again.
     */
    vswitchId: pulumi.Input<string>;
    /**
     * The security group the instance joins. Changing it moves the instance in place (it joins the new group and
     * leaves the old one), without a restart.
     */
    securityGroupId: pulumi.Input<string>;
}

/** The instance type and image, as index.ts resolves them from the region (config/placement.ts). */
export interface DifyHostInstance {
    /**
     * The ECS instance type: the `instanceType` setting, or the first of `instanceTypePreferences` the region
     * offers. Changing it resizes the instance in place: the provider stops it, changes the type and starts it
     * again (Dify is down meanwhile; the bootstrap does not run again, and no data is lost).
     */
    instanceType: pulumi.Input<string>;
    /**
     * vCPUs of `instanceType` as the region reports them, tagged on the instance as `cpu-cores` for the policy
     * pack (which sizes types their name does not size by this tag). Unset: no tag. Changing it updates the tag
     * in place.
     */
    cpuCores?: pulumi.Input<number>;
    /** Memory (GiB) of `instanceType` as the region reports it, tagged as `memory-gib`; like `cpuCores`. */
    memoryGib?: pulumi.Input<number>;
    /**
     * The system image: the pinned `imageId` setting, or the newest image of `imageFamily` (resolveImageId).
     * With `imageFromLookup` later changes are ignored. Otherwise a new image rebuilds the system disk in place
     * (ECS ReplaceSystemDisk, the provider's default unless `alicloud:features` sets
     * `ecsInstance.replaceOnImageUpdate`, which replaces the instance instead): the instance keeps its id, EIP
     * and data disk, the system disk is new, and cloud-init runs the bootstrap again as on a first boot.
     */
    imageId: pulumi.Input<string>;
    /**
     * True when `imageId` came from the family lookup (no `imageId` setting): the instance then ignores changes
     * of `imageId`, so a newer public image of the family never rebuilds the system disk. Turning it off (pinning
     * an image) applies a pinned image that differs from the instance's as `imageId` describes; turning it on
     * keeps the image the instance has.
     */
    imageFromLookup: boolean;
}

/**
 * The arguments of DifyHost: the stack settings as parsed, what index.ts resolves from the region and the other
 * components (`network`, `instance`), and the tags.
 */
export interface DifyHostArgs {
    /** The host's stack settings, usually the whole parsed `StackSettings`. See `DifyHostSettings`. */
    settings: DifyHostSettings;
    /** The vSwitch (and its zone) and the security group the host is attached to. */
    network: DifyHostNetwork;
    /** The instance type, its size and the system image. */
    instance: DifyHostInstance;
    /**
     * Tags on every taggable resource of the host (EIP, data disk, snapshot policy, key pair, instance): index.ts
     * gives the `tags` setting plus managed-by, project and stack. The instance gets dify-version, cpu-cores and
     * memory-gib besides. Unset: only the instance's own tags. Changing them updates the tags in place.
     */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /**
     * The registry the bootstrap pulls Dify's images from under their Docker Hub names: for imageSource acr,
     * AcrImageMirror's `registryHost` (which also makes the instance wait for its rules and VPC link). Unset
     * (default): Docker Hub, through the `registryMirrors` setting when it has any. Changing it is applied to the
     * running instance (`configuration`; see `difyVersion` on StackSettings).
     */
    imageRegistry?: pulumi.Input<string>;
}

/**
 * The ECS host that runs Dify: an EIP allocated before the instance (so its address goes into Dify's URLs), a
 * separate data disk for Dify's volumes that outlives the instance, the instance with the bootstrap user data,
 * a wait until Dify answers on the EIP, and the instance's configuration, which applies new bootstrap settings (a
 * new Dify version) to the running instance instead of replacing it.
 *
 * The data disk is made to last: encrypted, protected (`pulumi destroy` stops at it until protectDataDisk is
 * turned off and `pulumi up` has run; Pulumi's `protect` rather than `retainOnDelete`, so that a destroy never
 * reports success while a billed disk stays behind, and a change that would replace the disk fails instead),
 * snapshotted daily, and never re-created for encryption: `encrypted` and `kmsKeyId` are fixed when a disk is
 * created and changing them replaces it with a new, empty one, so they are ignored after creation. A stack whose
 * disk predates encryption keeps it, and every preview warns until encryptDataDisk is set to false.
 */
export class DifyHost extends pulumi.ComponentResource {
    readonly eip: alicloud.ecs.EipAddress;
    readonly dataDisk: alicloud.ecs.EcsDisk;
    readonly bootstrap: DifyBootstrap;
    readonly instance: alicloud.ecs.Instance;
    readonly readiness: DifyReadiness;
    /** Which bootstrap settings the instance runs; applies new ones (a new difyVersion) in place. */
    readonly configuration: DifyInstanceConfiguration;

    readonly instanceId: pulumi.Output<string>;
    readonly publicIp: pulumi.Output<string>;
    /** Dify's public base URL (CONSOLE_API_URL). */
    readonly difyUrl: pulumi.Output<string>;
    /** The redirect URI the RAM OAuth application must register. */
    readonly mcpOAuthCallbackUrl: pulumi.Output<string>;
    /** INIT_PASSWORD (secret), needed once to create the first admin. */
    readonly initPassword: pulumi.Output<string>;
    readonly dataDiskId: pulumi.Output<string>;

    constructor(name: string, args: DifyHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:DifyHost", name, {}, opts);
        const { settings, network, instance, tags, imageRegistry } = args;
        const encrypt = settings.encryptDataDisk ?? CONFIG_DEFAULTS.encryptDataDisk;
        const requireTokens = settings.requireMetadataTokens ?? CONFIG_DEFAULTS.requireMetadataTokens;

        this.eip = new alicloud.ecs.EipAddress(
            `${name}-eip`,
            {
                addressName: `${settings.namePrefix}-eip`,
                bandwidth: String(settings.eipBandwidthMbps),
                // Inbound traffic is free, so pay-by-traffic with a high cap makes the multi-GB image pull fast.
                internetChargeType: "PayByTraffic",
                paymentType: "PayAsYouGo",
                tags,
            },
            { parent: this },
        );

        this.dataDisk = new alicloud.ecs.EcsDisk(
            `${name}-data`,
            {
                diskName: `${settings.namePrefix}-data`,
                description: "Dify volumes and secrets; survives instance replacement",
                zoneId: network.zoneId,
                category: settings.dataDiskCategory,
                size: settings.dataDiskSize,
                deleteWithInstance: false,
                deleteAutoSnapshot: false,
                encrypted: encrypt,
                kmsKeyId: encrypt ? settings.dataDiskKmsKeyId : undefined,
                tags,
            },
            {
                parent: this,
                protect: settings.protectDataDisk ?? CONFIG_DEFAULTS.protectDataDisk,
                ignoreChanges: ["encrypted", "kmsKeyId"],
            },
        );
        if (encrypt) {
            warnAboutKeptDisk(this.dataDisk, settings.dataDiskKmsKeyId);
        }

        const retentionDays = settings.dataDiskSnapshotRetentionDays ?? CONFIG_DEFAULTS.dataDiskSnapshotRetentionDays;
        if (retentionDays > 0) {
            const policy = new alicloud.ecs.AutoSnapshotPolicy(
                `${name}-snapshots`,
                {
                    autoSnapshotPolicyName: `${settings.namePrefix}-data-daily`,
                    // Every day at 03:00 (UTC+8).
                    repeatWeekdays: ["1", "2", "3", "4", "5", "6", "7"],
                    timePoints: ["3"],
                    retentionDays,
                    tags,
                },
                { parent: this },
            );
            new alicloud.ecs.EcsAutoSnapshotPolicyAttachment(
                `${name}-snapshots-data`,
                { autoSnapshotPolicyId: policy.id, diskId: this.dataDisk.id },
                { parent: this },
            );
        }

        this.bootstrap = new DifyBootstrap(
            `${name}-bootstrap`,
            {
                difyVersion: settings.difyVersion,
                publicAddress: this.eip.ipAddress,
                domain: settings.domain,
                certEmail: settings.certEmail,
                plainHttp: settings.plainHttp ?? CONFIG_DEFAULTS.plainHttp,
                dataDiskId: this.dataDisk.id,
                registryMirrors: settings.registryMirrors,
                pipMirrorUrl: settings.pipMirrorUrl,
                imageRegistry,
                allowUnpinnedDifyVersion: settings.allowUnpinnedDifyVersion,
            },
            { parent: this },
        );

        const keyPair =
            settings.sshPublicKey !== undefined
                ? new alicloud.ecs.EcsKeyPair(
                      `${name}-key`,
                      { keyPairName: `${settings.namePrefix}-admin`, publicKey: settings.sshPublicKey, tags },
                      { parent: this },
                  )
                : undefined;

        this.instance = new alicloud.ecs.Instance(
            `${name}-instance`,
            {
                instanceName: `${settings.namePrefix}-host`,
                hostName: `${settings.namePrefix}-host`,
                instanceType: instance.instanceType,
                imageId: instance.imageId,
                vswitchId: network.vswitchId,
                securityGroups: [network.securityGroupId],
                instanceChargeType: settings.instanceChargeType,
                systemDiskCategory: settings.systemDiskCategory,
                systemDiskSize: settings.systemDiskSize,
                // The EIP is the public address; no second, system-assigned one.
                internetMaxBandwidthOut: 0,
                // Security hardening mode: metadata (user data with INIT_PASSWORD, RAM credentials) only after
                // PUT /latest/api/token, which a GET forged through Dify (SSRF) cannot do. cloud-init 23.2.2+ uses it.
                httpEndpoint: "enabled",
                httpTokens: requireTokens ? "required" : "optional",
                keyName: keyPair?.keyPairName,
                userData: this.bootstrap.userData.apply((text) => Buffer.from(text, "utf8").toString("base64")),
                // The release tag and the size are on the instance for operators and for the policy pack's rules.
                tags: pulumi
                    .all([tags ?? {}, settings.difyVersion, instance.cpuCores, instance.memoryGib])
                    .apply(([base, version, cpus, memory]) => ({
                        ...base,
                        [DIFY_VERSION_TAG]: version,
                        ...(cpus !== undefined ? { [VCPU_TAG]: String(cpus) } : {}),
                        ...(memory !== undefined ? { [MEMORY_TAG]: String(memory) } : {}),
                    })),
            },
            {
                parent: this,
                // The bootstrap runs once per instance (cloud-init's runcmd), and the provider would apply a changed
                // user data by stopping and starting the instance without running it: changes are ignored, and
                // `configuration` applies new settings (e.g. a new Dify version) to the running instance. An instance
                // replaced for another reason boots with the user data in the state (ignoreChanges keeps the old),
                // and `configuration` brings it to the current settings. The old instance goes first so the disk is
                // free to move. A newer image of the family must not rebuild the system disk.
                deleteBeforeReplace: true,
                ignoreChanges: ["userData", ...(instance.imageFromLookup ? ["imageId"] : [])],
            },
        );

        const attachment = new alicloud.ecs.EcsDiskAttachment(
            `${name}-data-attachment`,
            { diskId: this.dataDisk.id, instanceId: this.instance.id, deleteWithInstance: false },
            { parent: this, deleteBeforeReplace: true },
        );

        const association = new alicloud.ecs.EipAssociation(
            `${name}-eip-association`,
            { allocationId: this.eip.id, instanceId: this.instance.id, instanceType: "EcsInstance" },
            { parent: this, deleteBeforeReplace: true },
        );

        this.difyUrl = this.bootstrap.publicUrl;
        this.readiness = new DifyReadiness(
            `${name}-ready`,
            {
                difyUrl: this.difyUrl,
                instanceId: this.instance.id,
                timeoutSeconds: settings.readinessTimeoutMinutes * 60,
                // The bootstrap's progress and failures come through Cloud Assistant in this region.
                regionId: settings.region,
            },
            { parent: this, dependsOn: [attachment, association] },
        );

        // After the first boot (readiness), the settings the instance runs: nothing to do for an instance that
        // booted with them; otherwise snapshot of the data disk, the bootstrap applied again, a wait for Dify.
        this.configuration = new DifyInstanceConfiguration(
            `${name}-configuration`,
            {
                instanceId: this.instance.id,
                regionId: settings.region,
                dataDiskId: this.dataDisk.id,
                difyUrl: this.difyUrl,
                difyVersion: settings.difyVersion,
                publicUrl: this.bootstrap.publicUrl,
                domain: settings.domain,
                certEmail: settings.certEmail,
                registryMirrors: settings.registryMirrors ?? [],
                pipMirrorUrl: settings.pipMirrorUrl,
                imageRegistry,
                scriptDigest: this.bootstrap.scriptDigest,
                settingsDigest: this.bootstrap.settingsDigest,
                bootstrapConfig: this.bootstrap.bootstrapConfig,
                bootstrapScript: this.bootstrap.bootstrapScript,
                timeoutSeconds: settings.readinessTimeoutMinutes * 60,
            },
            { parent: this, dependsOn: [this.readiness] },
        );

        this.instanceId = this.instance.id;
        this.publicIp = this.eip.ipAddress;
        this.mcpOAuthCallbackUrl = this.difyUrl.apply(difyMcpOAuthCallbackUrl);
        this.initPassword = this.bootstrap.initPassword;
        this.dataDiskId = this.dataDisk.id;
        this.registerOutputs({
            instanceId: this.instanceId,
            publicIp: this.publicIp,
            difyUrl: this.difyUrl,
            mcpOAuthCallbackUrl: this.mcpOAuthCallbackUrl,
            dataDiskId: this.dataDiskId,
        });
    }
}

/**
 * Warns at preview and up when the data disk is not what encryptDataDisk and dataDiskKmsKeyId ask for: a disk
 * created before them (or with other values) is kept as it is, since re-creating it would lose Dify's data.
 */
function warnAboutKeptDisk(disk: alicloud.ecs.EcsDisk, wantedKeyId: pulumi.Input<string> | undefined): void {
    pulumi.all([disk.id, disk.encrypted]).apply(([id, encrypted]) => {
        if (!encrypted) {
            pulumi.log.warn(
                `The data disk ${id} is not encrypted. It is kept as it is: encryption is fixed when a disk is created, and a new disk would be empty. ` +
                    "To keep it knowingly and silence this warning, set dify-mcp-stack:encryptDataDisk to false; to encrypt Dify's data, " +
                    "move it to a disk created from an encrypted copy of a snapshot of this one.",
                disk,
            );
        }
    });
    pulumi.all([disk.id, disk.encrypted, disk.kmsKeyId, wantedKeyId]).apply(([id, encrypted, keyId, wanted]) => {
        if (encrypted && wanted && keyId !== wanted) {
            pulumi.log.warn(
                `The data disk ${id} is encrypted with the KMS key ${keyId || "(the default key)"}, not dify-mcp-stack:dataDiskKmsKeyId ${wanted}. ` +
                    "It is kept as it is: the key is fixed when a disk is created, and a new disk would be empty.",
                disk,
            );
        }
    });
}
