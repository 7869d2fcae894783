import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import { DifyBootstrap } from "./dify-bootstrap";
import { CONFIG_DEFAULTS, DiskCategory, InstanceChargeType, mcpOAuthCallbackUrl } from "../config/stack-config";
import { DifyReadiness } from "../dynamic-providers/dify/readiness";

export interface DifyHostArgs {
    namePrefix: pulumi.Input<string>;
    zoneId: pulumi.Input<string>;
    vswitchId: pulumi.Input<string>;
    securityGroupId: pulumi.Input<string>;
    instanceType: pulumi.Input<string>;
    /** vCPUs and memory (GiB) of the instance type as the region reports them; tagged for the policy pack. */
    instanceCpuCores?: pulumi.Input<number>;
    instanceMemoryGib?: pulumi.Input<number>;
    imageId: pulumi.Input<string>;
    /** True when `imageId` came from a family lookup: later lookups must not rebuild the system disk. */
    imageFromLookup: boolean;
    instanceChargeType: InstanceChargeType;
    systemDiskCategory: pulumi.Input<DiskCategory>;
    systemDiskSize: pulumi.Input<number>;
    dataDiskCategory: pulumi.Input<DiskCategory>;
    dataDiskSize: pulumi.Input<number>;
    /** Keep daily automatic snapshots of the data disk this many days; default 7, 0: no snapshot policy. */
    dataDiskSnapshotRetentionDays?: number;
    /** Protect the data disk from deletion and replacement (Pulumi `protect`); default true. */
    protectDataDisk?: boolean;
    /** Create the data disk encrypted; default true. Applies to a new disk only (see DifyHost). */
    encryptDataDisk?: boolean;
    /** The KMS key that encrypts a new data disk; unset: the region's default key for ECS disks. */
    dataDiskKmsKeyId?: pulumi.Input<string>;
    /** Instance metadata only with a session token (security hardening mode); default true. */
    requireMetadataTokens?: boolean;
    eipBandwidthMbps: pulumi.Input<number>;
    /** An OpenSSH public key for root; without it the instance has no login key. */
    sshPublicKey?: pulumi.Input<string>;
    difyVersion: pulumi.Input<string>;
    domain?: pulumi.Input<string>;
    certEmail?: pulumi.Input<string>;
    registryMirrors?: pulumi.Input<pulumi.Input<string>[]>;
    pipMirrorUrl?: pulumi.Input<string>;
    /** How long `pulumi up` waits for Dify to answer. */
    readinessTimeoutMinutes: pulumi.Input<number>;
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * The ECS host that runs Dify: an EIP allocated before the instance (so its address goes into Dify's URLs), a
 * separate data disk for Dify's volumes that outlives the instance, the instance with the bootstrap user data,
 * and a wait until Dify answers on the EIP.
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
        const tags = args.tags;
        const encrypt = args.encryptDataDisk ?? true;

        this.eip = new alicloud.ecs.EipAddress(
            `${name}-eip`,
            {
                addressName: pulumi.interpolate`${args.namePrefix}-eip`,
                bandwidth: pulumi.output(args.eipBandwidthMbps).apply(String),
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
                diskName: pulumi.interpolate`${args.namePrefix}-data`,
                description: "Dify volumes and secrets; survives instance replacement",
                zoneId: args.zoneId,
                category: args.dataDiskCategory,
                size: args.dataDiskSize,
                deleteWithInstance: false,
                deleteAutoSnapshot: false,
                encrypted: encrypt,
                kmsKeyId: encrypt ? args.dataDiskKmsKeyId : undefined,
                tags,
            },
            { parent: this, protect: args.protectDataDisk ?? true, ignoreChanges: ["encrypted", "kmsKeyId"] },
        );
        if (encrypt) {
            warnAboutKeptDisk(this.dataDisk, args.dataDiskKmsKeyId);
        }

        const retentionDays = args.dataDiskSnapshotRetentionDays ?? CONFIG_DEFAULTS.dataDiskSnapshotRetentionDays;
        if (retentionDays > 0) {
            const policy = new alicloud.ecs.AutoSnapshotPolicy(
                `${name}-snapshots`,
                {
                    autoSnapshotPolicyName: pulumi.interpolate`${args.namePrefix}-data-daily`,
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
                difyVersion: args.difyVersion,
                publicAddress: this.eip.ipAddress,
                domain: args.domain,
                certEmail: args.certEmail,
                dataDiskId: this.dataDisk.id,
                registryMirrors: args.registryMirrors,
                pipMirrorUrl: args.pipMirrorUrl,
            },
            { parent: this },
        );

        const keyPair =
            args.sshPublicKey !== undefined
                ? new alicloud.ecs.EcsKeyPair(
                      `${name}-key`,
                      { keyPairName: pulumi.interpolate`${args.namePrefix}-admin`, publicKey: args.sshPublicKey, tags },
                      { parent: this },
                  )
                : undefined;

        this.instance = new alicloud.ecs.Instance(
            `${name}-instance`,
            {
                instanceName: pulumi.interpolate`${args.namePrefix}-host`,
                hostName: pulumi.interpolate`${args.namePrefix}-host`,
                instanceType: args.instanceType,
                imageId: args.imageId,
                vswitchId: args.vswitchId,
                securityGroups: [args.securityGroupId],
                instanceChargeType: args.instanceChargeType,
                systemDiskCategory: args.systemDiskCategory,
                systemDiskSize: args.systemDiskSize,
                // The EIP is the public address; no second, system-assigned one.
                internetMaxBandwidthOut: 0,
                // Security hardening mode: metadata (user data with INIT_PASSWORD, RAM credentials) only after
                // PUT /latest/api/token, which a GET forged through Dify (SSRF) cannot do. cloud-init 23.2.2+ uses it.
                httpEndpoint: "enabled",
                httpTokens: args.requireMetadataTokens === false ? "optional" : "required",
                keyName: keyPair?.keyPairName,
                userData: this.bootstrap.userData.apply((text) => Buffer.from(text, "utf8").toString("base64")),
                // The release tag and the size are on the instance for operators and for the policy pack's rules.
                tags: pulumi
                    .all([tags ?? {}, args.difyVersion, args.instanceCpuCores, args.instanceMemoryGib])
                    .apply(([base, version, cpus, memory]) => ({
                        ...base,
                        "dify-version": version,
                        ...(cpus !== undefined ? { "cpu-cores": String(cpus) } : {}),
                        ...(memory !== undefined ? { "memory-gib": String(memory) } : {}),
                    })),
            },
            {
                parent: this,
                // The bootstrap runs once per instance: a changed user data (e.g. a new Dify version) needs a new
                // instance, which finds its data and secrets on the data disk. The old one goes first so the disk
                // is free to move.
                replaceOnChanges: ["userData"],
                deleteBeforeReplace: true,
                // A newer image of the family must not rebuild the system disk.
                ignoreChanges: args.imageFromLookup ? ["imageId"] : [],
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
                timeoutSeconds: pulumi.output(args.readinessTimeoutMinutes).apply((minutes) => minutes * 60),
            },
            { parent: this, dependsOn: [attachment, association] },
        );

        this.instanceId = this.instance.id;
        this.publicIp = this.eip.ipAddress;
        this.mcpOAuthCallbackUrl = this.difyUrl.apply(mcpOAuthCallbackUrl);
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
