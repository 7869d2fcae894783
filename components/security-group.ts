import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";

export interface DifySecurityGroupArgs {
    /** Prefix of the group's name (`<prefix>-sg`). Changing it renames the group in place. */
    namePrefix: pulumi.Input<string>;
    /**
     * The VPC the group belongs to. Changing it replaces the group and all its rules (the host then moves to the
     * new group in place).
     */
    vpcId: pulumi.Input<string>;
    /**
     * Who may reach Dify over HTTP(S): the `allowedCidrs` setting, default 0.0.0.0/0. One rule per port and block,
     * named after both, so changing the list creates and deletes only the rules of the blocks added or removed.
     */
    allowedCidrs: string[];
    /**
     * When set, SSH (22) is open to this CIDR only; when unset (default), 22 stays closed. Changing it creates the
     * new block's rule and deletes the old one's; setting or unsetting it adds or removes the rule.
     */
    adminCidr?: string;
    /**
     * Opens 443 as well as 80 (index.ts: unless `plainHttp`, Dify serves HTTPS, on the domain or the EIP; port 80
     * then only redirects to https and answers Let's Encrypt's HTTP challenge). Turning it on or off creates or
     * deletes the 443 rules; the 80 rules stay.
     */
    httpsEnabled: boolean;
    /** Tags on the group (its rules take none). Updated in place. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** One ingress rule as the component creates it; exported so tests and policies can reason about the set. */
export interface IngressRule {
    port: number;
    cidr: string;
    description: string;
}

/**
 * The ingress the Dify host needs, and nothing else: 80 (and 443 unless plain HTTP) from the allowed CIDRs, 22 from the
 * admin CIDR only. Dify's host-published debug ports (5001, 5002, 5003, 8194) are never opened.
 */
export function difyIngressRules(args: Pick<DifySecurityGroupArgs, "allowedCidrs" | "adminCidr" | "httpsEnabled">): IngressRule[] {
    const ports = args.httpsEnabled ? [80, 443] : [80];
    const rules: IngressRule[] = [];
    for (const port of ports) {
        for (const cidr of args.allowedCidrs) {
            rules.push({ port, cidr, description: port === 80 ? "Dify over HTTP" : "Dify over HTTPS" });
        }
    }
    if (args.adminCidr !== undefined) {
        rules.push({ port: 22, cidr: args.adminCidr, description: "SSH from the admin network" });
    }
    return rules;
}

/** Turns a CIDR into a stable piece of a resource name. */
function cidrSlug(cidr: string): string {
    return cidr.replace(/[./]/g, "-");
}

/** A security group for the Dify host. Egress stays the default (all allowed): Docker pulls and plugins need it. */
export class DifySecurityGroup extends pulumi.ComponentResource {
    readonly securityGroup: alicloud.ecs.SecurityGroup;
    readonly rules: alicloud.ecs.SecurityGroupRule[];
    readonly securityGroupId: pulumi.Output<string>;

    constructor(name: string, args: DifySecurityGroupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:DifySecurityGroup", name, {}, opts);

        this.securityGroup = new alicloud.ecs.SecurityGroup(
            `${name}-sg`,
            {
                securityGroupName: pulumi.interpolate`${args.namePrefix}-sg`,
                vpcId: args.vpcId,
                description: "Dify host: HTTP(S) from allowed networks, SSH from the admin network only",
                securityGroupType: "normal",
                innerAccessPolicy: "Drop",
                tags: args.tags,
            },
            { parent: this },
        );
        this.rules = difyIngressRules(args).map(
            (rule) =>
                new alicloud.ecs.SecurityGroupRule(
                    `${name}-in-${rule.port}-${cidrSlug(rule.cidr)}`,
                    {
                        securityGroupId: this.securityGroup.id,
                        type: "ingress",
                        ipProtocol: "tcp",
                        portRange: `${rule.port}/${rule.port}`,
                        cidrIp: rule.cidr,
                        policy: "accept",
                        priority: 1,
                        nicType: "intranet",
                        description: rule.description,
                    },
                    { parent: this },
                ),
        );

        this.securityGroupId = this.securityGroup.id;
        this.registerOutputs({ securityGroupId: this.securityGroupId });
    }
}
