import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { StackSettings } from "../../config/stack-config";
import type { HaPlacement } from "../../config/placement";
import { AcrImageMirror } from "../acr-image-mirror";
import { DifyHaNetwork } from "./network";
import { DifyHaSecurityGroups } from "./security-groups";
import { DifyDataTier } from "./data-tier";
import { DifyAppTier } from "./app-tier";
import type { ZonePair } from "./network";

export interface DifyHaArgs {
    /**
     * The parsed stack settings with `topology: "ha"` (config/stack-config.ts documents each setting and what changing
     * it does); `settings.ha` must be set.
     */
    settings: StackSettings;
    /** The instance type and the two zones (resolveHaZones). Changing the zones replaces every zonal resource. */
    placement: pulumi.Input<HaPlacement>;
    /** The system image of every node (resolveImageId for the placement's type). */
    imageId: pulumi.Input<string>;
    /** Tags on every taggable resource (index.ts: the `tags` setting plus the stack's own). Updated in place. */
    tags: Record<string, string>;
}

/**
 * The `ha` topology: DifyHaNetwork (three tiers in two zones, NAT for egress), DifyHaSecurityGroups (each tier admits
 * only the one before it), DifyDataTier (RDS PostgreSQL HA with pgvector, Tair/Redis master-replica, a private OSS
 * bucket with its own RAM user) and DifyAppTier (ALB, one ESS group of app nodes per zone, the singleton). The keys
 * every node must share (SECRET_KEY, the plugin daemon's) are generated here, once, as secrets.
 */
export class DifyHa extends pulumi.ComponentResource {
    readonly network: DifyHaNetwork;
    readonly securityGroups: DifyHaSecurityGroups;
    readonly dataTier: DifyDataTier;
    readonly appTier: DifyAppTier;
    readonly imageMirror?: AcrImageMirror;
    /** https://<domain>. */
    readonly difyUrl: pulumi.Output<string>;
    /** Dify's OAuth callback for the RAM app (follows the domain). */
    readonly mcpOAuthCallbackUrl: pulumi.Output<string>;
    /** INIT_PASSWORD of the nodes (secret). */
    readonly initPassword: pulumi.Output<string>;
    /** The ALB's DNS name, and what to do with it. */
    readonly albDnsName: pulumi.Output<string>;
    readonly dnsInstructions: pulumi.Output<string>;
    readonly zoneIds: pulumi.Output<ZonePair<string>>;
    /** What Dify's own resources wait for: the singleton done (migrated) and its plugin daemon's record in place. */
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: DifyHaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:ha:DifyHa", name, {}, opts);
        const { settings, tags } = args;
        const ha = settings.ha;
        if (settings.topology !== "ha" || ha === undefined || settings.domain === undefined) {
            throw new Error("DifyHa: the settings must be those of topology ha, with domain and certificateId");
        }
        const placement = pulumi.output(args.placement);
        const zoneA = placement.zoneIds.apply((zones) => zones[0]);
        const zoneB = placement.zoneIds.apply((zones) => zones[1]);

        this.network = new DifyHaNetwork(
            name,
            { namePrefix: settings.namePrefix, vpcCidr: settings.vpcCidr, zoneIds: [zoneA, zoneB], tags },
            { parent: this },
        );
        this.securityGroups = new DifyHaSecurityGroups(
            name,
            {
                namePrefix: settings.namePrefix,
                vpcId: this.network.vpcId,
                lbCidrs: this.network.lbCidrs,
                appCidrs: this.network.appCidrs,
                allowedCidrs: settings.allowedCidrs,
                tags,
            },
            { parent: this },
        );
        this.dataTier = new DifyDataTier(
            name,
            {
                namePrefix: settings.namePrefix,
                region: settings.region,
                zoneIds: [zoneA, zoneB],
                dataVswitchIds: this.network.dataVswitchIds,
                appCidrs: this.network.appCidrs,
                rds: {
                    instanceClass: ha.rdsInstanceClass,
                    storageGb: ha.rdsStorageGb,
                    engineVersion: ha.rdsEngineVersion,
                    backupRetentionDays: ha.rdsBackupRetentionDays,
                },
                redis: { instanceClass: ha.redisInstanceClass, engineVersion: ha.redisEngineVersion },
                tags,
            },
            { parent: this },
        );

        // imageSource acr: the registry's VPC endpoint in zone A's app vSwitch, where the nodes pull from.
        this.imageMirror =
            settings.imageSource === "acr" && settings.acrInstanceId !== undefined
                ? new AcrImageMirror(
                      name,
                      {
                          instanceId: settings.acrInstanceId,
                          region: settings.region,
                          difyVersion: settings.difyVersion,
                          vpcId: this.network.vpcId,
                          vswitchId: this.network.appVswitchIds[0],
                          platform: settings.cpuArchitecture === "arm64" ? "linux/arm64" : "linux/amd64",
                      },
                      { parent: this },
                  )
                : undefined;

        // One value for every node: sessions signed on one node are checked on another, and the api nodes and the
        // singleton's plugin daemon authenticate each other with these.
        const sharedKey = (suffix: string, length: number) =>
            new random.RandomPassword(`${name}-${suffix}`, { length, special: false }, { parent: this }).result;
        const secrets = {
            secretKey: sharedKey("secret-key", 48),
            pluginDaemonKey: sharedKey("plugin-daemon-key", 48),
            pluginInnerApiKey: sharedKey("plugin-inner-api-key", 48),
        };
        const { database, redis, storage } = this.dataTier;
        const externalServices = pulumi.secret(
            pulumi.output({
                database: pulumi.output(database),
                redis: pulumi.output(redis),
                storage: pulumi.output(storage),
                secrets: pulumi.output(secrets),
            }),
        );

        this.appTier = new DifyAppTier(
            name,
            {
                namePrefix: settings.namePrefix,
                region: settings.region,
                domain: settings.domain,
                certificateId: ha.certificateId,
                difyVersion: settings.difyVersion,
                registryMirrors: settings.registryMirrors,
                pipMirrorUrl: settings.pipMirrorUrl,
                imageRegistry: this.imageMirror?.registryHost,
                allowUnpinnedDifyVersion: settings.allowUnpinnedDifyVersion,
                requireMetadataTokens: settings.requireMetadataTokens,
                instance: {
                    instanceType: placement.instanceType,
                    cpuCores: placement.cpuCoreCount,
                    memoryGib: placement.memorySize,
                    imageId: args.imageId,
                    imageFromLookup: settings.imageId === undefined,
                    systemDiskCategory: settings.systemDiskCategory,
                    systemDiskSize: settings.systemDiskSize,
                },
                network: {
                    vpcId: this.network.vpcId,
                    zoneIds: [zoneA, zoneB],
                    lbVswitchIds: this.network.lbVswitchIds,
                    appVswitchIds: this.network.appVswitchIds,
                    appSecurityGroupId: this.securityGroups.appSecurityGroupId,
                    singletonSecurityGroupId: this.securityGroups.singletonSecurityGroupId,
                    albSecurityGroupId: this.securityGroups.albSecurityGroupId,
                },
                appNodeCount: ha.appNodeCount,
                externalServices,
                readinessTimeoutMinutes: settings.readinessTimeoutMinutes,
                dnsZone: ha.dnsZone,
                tags,
            },
            { parent: this },
        );

        this.difyUrl = this.appTier.difyUrl;
        this.mcpOAuthCallbackUrl = this.appTier.mcpOAuthCallbackUrl;
        this.initPassword = this.appTier.initPassword;
        this.albDnsName = this.appTier.albDnsName;
        this.dnsInstructions = this.appTier.dnsInstructions;
        this.zoneIds = placement.zoneIds;
        this.ready = [this.appTier.readiness, this.appTier.pluginDaemonRecord];
        this.registerOutputs({
            difyUrl: this.difyUrl,
            mcpOAuthCallbackUrl: this.mcpOAuthCallbackUrl,
            initPassword: this.initPassword,
            albDnsName: this.albDnsName,
            dnsInstructions: this.dnsInstructions,
        });
    }
}
