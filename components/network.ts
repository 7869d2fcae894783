import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";

export interface DifyNetworkArgs {
    /** Prefix of the resource names. */
    namePrefix: pulumi.Input<string>;
    /** CIDR of the VPC, e.g. 172.16.0.0/16. */
    vpcCidr: pulumi.Input<string>;
    /** CIDR of the vSwitch, inside the VPC's. */
    vswitchCidr: pulumi.Input<string>;
    /** The zone that offers the chosen instance type: an ECS instance can only use a vSwitch of its own zone. */
    zoneId: pulumi.Input<string>;
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
