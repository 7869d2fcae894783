import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";

export interface DifyNetworkArgs {
    /** Prefix of the resource names (`<prefix>-vpc`, `<prefix>-vswitch`). Changing it renames both in place. */
    namePrefix: pulumi.Input<string>;
    /**
     * CIDR of the VPC, e.g. 172.16.0.0/16 (the `vpcCidr` setting, default 172.16.0.0/16). Changing it updates the
     * VPC's block in place (VPC ModifyVpcAttribute); the new block must still contain the vSwitch's.
     */
    vpcCidr: pulumi.Input<string>;
    /**
     * CIDR of the vSwitch, inside the VPC's (the `vswitchCidr` setting, default 172.16.0.0/24). Changing it
     * replaces the vSwitch (the new one is created first, so the blocks must not overlap) and moves the instance
     * to it in place (a restart and a new private address). DifyHost's data disk takes its zone from the
     * vSwitch, unknown until the new one exists, so the plan also replaces the disk, which `protectDataDisk` stops.
     */
    vswitchCidr: pulumi.Input<string>;
    /**
     * The zone that offers the chosen instance type (the `zoneId` setting, or the placement's choice): an ECS
     * instance can only use a vSwitch of its own zone. Changing it replaces the vSwitch, and the host's data disk
     * cannot follow (see DifyHostNetwork.zoneId).
     */
    zoneId: pulumi.Input<string>;
    /** Tags on the VPC and the vSwitch (index.ts: the `tags` setting plus the stack's own). Updated in place. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** A VPC with one vSwitch in the zone the host runs in. */
export class DifyNetwork extends pulumi.ComponentResource {
    readonly vpc: alicloud.vpc.Network;
    readonly vswitch: alicloud.vpc.Switch;
    readonly vpcId: pulumi.Output<string>;
    readonly vswitchId: pulumi.Output<string>;
    readonly zoneId: pulumi.Output<string>;

    constructor(name: string, args: DifyNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:DifyNetwork", name, {}, opts);

        this.vpc = new alicloud.vpc.Network(
            `${name}-vpc`,
            {
                vpcName: pulumi.interpolate`${args.namePrefix}-vpc`,
                cidrBlock: args.vpcCidr,
                description: "Dify host network (dify-mcp-stack)",
                tags: args.tags,
            },
            { parent: this },
        );
        this.vswitch = new alicloud.vpc.Switch(
            `${name}-vswitch`,
            {
                vswitchName: pulumi.interpolate`${args.namePrefix}-vswitch`,
                vpcId: this.vpc.id,
                cidrBlock: args.vswitchCidr,
                zoneId: args.zoneId,
                tags: args.tags,
            },
            { parent: this },
        );

        this.vpcId = this.vpc.id;
        this.vswitchId = this.vswitch.id;
        this.zoneId = this.vswitch.zoneId;
        this.registerOutputs({ vpcId: this.vpcId, vswitchId: this.vswitchId, zoneId: this.zoneId });
    }
}
