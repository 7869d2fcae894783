import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import { canonicalCidr, parseIpv4Cidr } from "../../rules/input-rules";

/** The three tiers of the `ha` network: the load balancer, the Dify nodes, the managed data services. */
export type HaTier = "lb" | "app" | "data";

/** Two of something, one per zone: [zone A, zone B]. */
export type ZonePair<T> = [T, T];

/** The vSwitch blocks of each tier, [zone A, zone B]. Plain strings: security rules and whitelists are built from them. */
export type HaTierCidrs = Record<HaTier, ZonePair<string>>;

/**
 * Where each tier's two /24 blocks sit in the VPC, counted in /24 blocks from its start: zone A at the index, zone B
 * right after it. For 172.16.0.0/16: lb 172.16.0.0/24 and 172.16.1.0/24, app 172.16.10.0/24 and 172.16.11.0/24, data
 * 172.16.20.0/24 and 172.16.21.0/24. The gaps leave room for more zones or tiers without renumbering.
 */
export const HA_TIER_BLOCK_INDEX: Readonly<Record<HaTier, number>> = { lb: 0, app: 10, data: 20 };

/** Each vSwitch is a /24 (251 usable addresses: ALB, up to 21 ESS nodes and the singleton fit many times over). */
export const HA_VSWITCH_PREFIX = 24;

/** The longest VPC prefix that holds the blocks: the highest index (data, zone B: 21) needs 22 /24s, a /19 has 32. */
export const HA_MAX_VPC_PREFIX = 19;

/**
 * The tier blocks of a VPC (pure; see HA_TIER_BLOCK_INDEX for the scheme). Throws when the VPC block is not a
 * canonical IPv4 CIDR (no host bits) or is smaller than a /19.
 */
export function haTierCidrs(vpcCidr: string): HaTierCidrs {
    const vpc = parseIpv4Cidr(vpcCidr);
    if (vpc === undefined || canonicalCidr(vpc) !== vpcCidr) {
        throw new Error(`DifyHaNetwork: vpcCidr "${vpcCidr}" is not an IPv4 CIDR block without host bits, such as 172.16.0.0/16`);
    }
    if (vpc.prefix > HA_MAX_VPC_PREFIX) {
        throw new Error(
            `DifyHaNetwork: vpcCidr "${vpcCidr}" is too small for the ha topology's six /${HA_VSWITCH_PREFIX} vSwitches; ` +
                `allowed: a prefix of /${HA_MAX_VPC_PREFIX} or shorter, such as 172.16.0.0/16`,
        );
    }
    const block = (index: number) =>
        canonicalCidr({ address: (vpc.address + index * 2 ** (32 - HA_VSWITCH_PREFIX)) >>> 0, prefix: HA_VSWITCH_PREFIX });
    const pair = (tier: HaTier): ZonePair<string> => [block(HA_TIER_BLOCK_INDEX[tier]), block(HA_TIER_BLOCK_INDEX[tier] + 1)];
    return { lb: pair("lb"), app: pair("app"), data: pair("data") };
}

export interface DifyHaNetworkArgs {
    /**
     * Prefix of the resource names (`<prefix>-vpc`, `<prefix>-<tier>-<a|b>`, `<prefix>-nat`, `<prefix>-nat-eip`).
     * Changing it renames them in place.
     */
    namePrefix: pulumi.Input<string>;
    /**
     * CIDR of the VPC (the `vpcCidr` setting, default 172.16.0.0/16), /19 or larger: the six vSwitch blocks are
     * derived from it by `haTierCidrs`. Plain, because the security rules and the data services' whitelists are
     * built from the derived blocks. Changing it replaces every vSwitch (their blocks move) and so everything in them.
     */
    vpcCidr: string;
    /**
     * The two distinct zones (the `haZoneIds` setting, or the first two the placement offers): [zone A, zone B]. Each
     * tier has one vSwitch per zone; the NAT gateway sits in zone A's app vSwitch. Changing one replaces that zone's
     * vSwitches and everything in them (and the NAT gateway for zone A).
     */
    zoneIds: ZonePair<pulumi.Input<string>>;
    /**
     * Peak bandwidth of the NAT gateway's EIP in Mbit/s, 1..200, default 100. The EIP is pay-by-traffic, so the cap
     * costs nothing by itself; it bounds how fast nodes pull images and packages. Updated in place.
     */
    natBandwidthMbps?: number;
    /** Tags on the VPC, vSwitches, NAT gateway and EIP. Updated in place. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

const ZONE_SUFFIXES = ["a", "b"] as const;

/**
 * The `ha` topology's VPC: per zone one vSwitch for each tier (lb: the ALB; app: ESS nodes and the singleton; data:
 * RDS and Redis), and an enhanced internet NAT gateway with an EIP and one SNAT entry per app vSwitch. App nodes have
 * no public address, yet pull images, fetch the Dify release, reach PyPI and the OpenAPI MCP server: only through the
 * NAT. The lb and data tiers get no SNAT entry: nothing there starts connections to the internet.
 */
export class DifyHaNetwork extends pulumi.ComponentResource {
    readonly vpc: alicloud.vpc.Network;
    readonly vswitches: Record<HaTier, ZonePair<alicloud.vpc.Switch>>;
    readonly natGateway: alicloud.vpc.NatGateway;
    readonly natEip: alicloud.ecs.EipAddress;
    readonly snatEntries: ZonePair<alicloud.vpc.SnatEntry>;

    readonly vpcId: pulumi.Output<string>;
    /** The zones as the vSwitches report them: [zone A, zone B]. */
    readonly zoneIds: ZonePair<pulumi.Output<string>>;
    readonly lbVswitchIds: ZonePair<pulumi.Output<string>>;
    readonly appVswitchIds: ZonePair<pulumi.Output<string>>;
    readonly dataVswitchIds: ZonePair<pulumi.Output<string>>;
    /** The tier blocks, plain: [zone A, zone B]. */
    readonly lbCidrs: ZonePair<string>;
    readonly appCidrs: ZonePair<string>;
    readonly dataCidrs: ZonePair<string>;
    readonly natGatewayId: pulumi.Output<string>;
    /** The public address app nodes leave through (e.g. for an allow list on the far side). */
    readonly natEipAddress: pulumi.Output<string>;

    constructor(name: string, args: DifyHaNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:ha:DifyHaNetwork", name, {}, opts);

        const cidrs = haTierCidrs(args.vpcCidr);
        const [zoneA, zoneB] = args.zoneIds;
        if (typeof zoneA === "string" && zoneA === zoneB) {
            throw new Error(`DifyHaNetwork: zoneIds must be two different zones, got "${zoneA}" twice`);
        }
        const bandwidth = args.natBandwidthMbps ?? 100;
        if (!Number.isInteger(bandwidth) || bandwidth < 1 || bandwidth > 200) {
            throw new Error(`DifyHaNetwork: natBandwidthMbps is ${bandwidth}; allowed: an integer from 1 to 200`);
        }

        this.vpc = new alicloud.vpc.Network(
            `${name}-vpc`,
            {
                vpcName: pulumi.interpolate`${args.namePrefix}-vpc`,
                cidrBlock: args.vpcCidr,
                description: "Dify ha network (dify-mcp-stack): lb, app and data tiers in two zones",
                tags: args.tags,
            },
            { parent: this },
        );

        const vswitchPair = (tier: HaTier): ZonePair<alicloud.vpc.Switch> => {
            const make = (zone: 0 | 1) =>
                new alicloud.vpc.Switch(
                    `${name}-${tier}-${ZONE_SUFFIXES[zone]}`,
                    {
                        vswitchName: pulumi.interpolate`${args.namePrefix}-${tier}-${ZONE_SUFFIXES[zone]}`,
                        vpcId: this.vpc.id,
                        cidrBlock: cidrs[tier][zone],
                        zoneId: args.zoneIds[zone],
                        description: `Dify ha ${tier} tier, zone ${ZONE_SUFFIXES[zone].toUpperCase()}`,
                        tags: args.tags,
                    },
                    { parent: this },
                );
            return [make(0), make(1)];
        };
        this.vswitches = { lb: vswitchPair("lb"), app: vswitchPair("app"), data: vswitchPair("data") };

        // Enhanced is the only NAT type new gateways get; creating it adds the VPC's 0.0.0.0/0 route to it.
        this.natGateway = new alicloud.vpc.NatGateway(
            `${name}-nat`,
            {
                natGatewayName: pulumi.interpolate`${args.namePrefix}-nat`,
                vpcId: this.vpc.id,
                vswitchId: this.vswitches.app[0].id,
                natType: "Enhanced",
                networkType: "internet",
                paymentType: "PayAsYouGo",
                internetChargeType: "PayByLcu",
                description: "Outbound internet for the Dify ha app tier (images, release, PyPI, OpenAPI MCP)",
                tags: args.tags,
            },
            { parent: this },
        );
        this.natEip = new alicloud.ecs.EipAddress(
            `${name}-nat-eip`,
            {
                addressName: pulumi.interpolate`${args.namePrefix}-nat-eip`,
                paymentType: "PayAsYouGo",
                internetChargeType: "PayByTraffic",
                bandwidth: String(bandwidth),
                description: "Source address of the Dify ha app tier's outbound traffic",
                tags: args.tags,
            },
            { parent: this },
        );
        const association = new alicloud.ecs.EipAssociation(
            `${name}-nat-eip-association`,
            { allocationId: this.natEip.id, instanceId: this.natGateway.id, instanceType: "Nat" },
            { parent: this },
        );
        // An SNAT entry can only use an address already bound to the gateway.
        const snat = (zone: 0 | 1) =>
            new alicloud.vpc.SnatEntry(
                `${name}-snat-app-${ZONE_SUFFIXES[zone]}`,
                {
                    snatTableId: this.natGateway.snatTableIds,
                    sourceVswitchId: this.vswitches.app[zone].id,
                    snatIp: this.natEip.ipAddress,
                    snatEntryName: pulumi.interpolate`${args.namePrefix}-app-${ZONE_SUFFIXES[zone]}`,
                },
                { parent: this, dependsOn: [association] },
            );
        this.snatEntries = [snat(0), snat(1)];

        const ids = (tier: HaTier): ZonePair<pulumi.Output<string>> => [this.vswitches[tier][0].id, this.vswitches[tier][1].id];
        this.vpcId = this.vpc.id;
        this.zoneIds = [this.vswitches.app[0].zoneId, this.vswitches.app[1].zoneId];
        this.lbVswitchIds = ids("lb");
        this.appVswitchIds = ids("app");
        this.dataVswitchIds = ids("data");
        this.lbCidrs = cidrs.lb;
        this.appCidrs = cidrs.app;
        this.dataCidrs = cidrs.data;
        this.natGatewayId = this.natGateway.id;
        // Known once the SNAT entries exist: whoever reads it can rely on outbound traffic working.
        this.natEipAddress = pulumi
            .all([this.natEip.ipAddress, this.snatEntries[0].id, this.snatEntries[1].id])
            .apply(([address]) => address);

        this.registerOutputs({
            vpcId: this.vpcId,
            zoneIds: this.zoneIds,
            lbVswitchIds: this.lbVswitchIds,
            appVswitchIds: this.appVswitchIds,
            dataVswitchIds: this.dataVswitchIds,
            lbCidrs: this.lbCidrs,
            appCidrs: this.appCidrs,
            dataCidrs: this.dataCidrs,
            natGatewayId: this.natGatewayId,
            natEipAddress: this.natEipAddress,
        });
    }
}
