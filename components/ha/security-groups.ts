import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import type { ZonePair } from "./network";

/** The `ha` topology's security groups: the ALB, the app nodes (ESS), the singleton. */
export type HaSecurityGroupRole = "alb" | "app" | "singleton";

/** One ingress rule as DifyHaSecurityGroups creates it; exported so tests and policies can reason about the set. */
export interface HaIngressRule {
    /** "tcp" for one port; "all" only for the ALB group's closing drop rule. */
    protocol: "tcp" | "all";
    /** The port, for tcp rules. */
    port?: number;
    cidr: string;
    policy: "accept" | "drop";
    /** 1 (highest) to 100 (lowest), as Alibaba Cloud orders security group rules. */
    priority: number;
    description: string;
}

/** Dify's nginx on the nodes (HTTP inside the VPC: the ALB terminates TLS). */
export const HA_APP_PORT = 80;
/** The plugin daemon on the singleton, called by every node's api. */
export const HA_PLUGIN_DAEMON_PORT = 5002;

export interface HaIngressRuleArgs {
    /** The lb tier's vSwitch blocks: the ALB reaches the nodes from its addresses there. */
    lbCidrs: ZonePair<string>;
    /** The app tier's vSwitch blocks: the nodes (and the singleton) live there. */
    appCidrs: ZonePair<string>;
    /** Who may reach the ALB: the stack's `allowedCidrs` setting (default 0.0.0.0/0). */
    allowedCidrs: string[];
}

/**
 * The ingress of each group, and nothing else (pure):
 * - alb: 443 (HTTPS) and 80 (redirect to HTTPS) from the allowed CIDRs, then a lowest-priority drop of everything.
 *   An ALB's own managed group admits all traffic, so without the drop rule the allow list would restrict nothing.
 * - app: 80 from the two lb blocks only (the ALB's forwarding and health checks).
 * - singleton: 5002 from the two app blocks only (the nodes' api calling the plugin daemon).
 * No 22 anywhere (nodes have no public address; Cloud Assistant needs no inbound port), and app and singleton admit
 * nothing from 0.0.0.0/0: an ECS security group denies what no rule accepts.
 */
export function haIngressRules(args: HaIngressRuleArgs): Record<HaSecurityGroupRole, HaIngressRule[]> {
    const accept = (port: number, cidr: string, description: string): HaIngressRule => ({
        protocol: "tcp",
        port,
        cidr,
        policy: "accept",
        priority: 1,
        description,
    });
    const alb: HaIngressRule[] = [];
    for (const port of [443, 80]) {
        for (const cidr of args.allowedCidrs) {
            alb.push(accept(port, cidr, port === 443 ? "Dify over HTTPS" : "HTTP, redirected to HTTPS"));
        }
    }
    alb.push({ protocol: "all", cidr: "0.0.0.0/0", policy: "drop", priority: 100, description: "Everything else to the ALB" });
    return {
        alb,
        app: args.lbCidrs.map((cidr) => accept(HA_APP_PORT, cidr, "Dify from the ALB")),
        singleton: args.appCidrs.map((cidr) => accept(HA_PLUGIN_DAEMON_PORT, cidr, "Plugin daemon from the Dify nodes")),
    };
}

export interface DifyHaSecurityGroupsArgs extends HaIngressRuleArgs {
    /** Prefix of the groups' names (`<prefix>-alb-sg`, `<prefix>-app-sg`, `<prefix>-singleton-sg`). Renamed in place. */
    namePrefix: pulumi.Input<string>;
    /** The `ha` VPC (DifyHaNetwork.vpcId). Changing it replaces the groups and their rules. */
    vpcId: pulumi.Input<string>;
    /** Tags on the groups (their rules take none). Updated in place. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** Turns a CIDR into a stable piece of a resource name. */
function cidrSlug(cidr: string): string {
    return cidr.replace(/[./]/g, "-");
}

const DESCRIPTIONS: Record<HaSecurityGroupRole, string> = {
    alb: "Dify ha ALB: 443 and 80 from the allowed networks only",
    app: "Dify ha nodes: HTTP from the ALB's vSwitches only",
    singleton: "Dify ha singleton: plugin daemon from the app vSwitches only",
};

/**
 * The tiered security groups of the `ha` topology (rules: `haIngressRules`). Egress stays the default (all allowed):
 * nodes pull images and packages through the NAT gateway, and reach RDS, Redis and OSS. Inner access is dropped: a
 * member reaches another member only through the rules. The ALB joins its group through
 * alb.LoadBalancerSecurityGroupAttachment (the app tier's job); the nodes and the singleton name theirs at launch.
 */
export class DifyHaSecurityGroups extends pulumi.ComponentResource {
    readonly groups: Record<HaSecurityGroupRole, alicloud.ecs.SecurityGroup>;
    readonly rules: alicloud.ecs.SecurityGroupRule[];
    readonly albSecurityGroupId: pulumi.Output<string>;
    readonly appSecurityGroupId: pulumi.Output<string>;
    readonly singletonSecurityGroupId: pulumi.Output<string>;

    constructor(name: string, args: DifyHaSecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:ha:DifyHaSecurityGroups", name, {}, opts);

        const group = (role: HaSecurityGroupRole) =>
            new alicloud.ecs.SecurityGroup(
                `${name}-${role}-sg`,
                {
                    securityGroupName: pulumi.interpolate`${args.namePrefix}-${role}-sg`,
                    vpcId: args.vpcId,
                    description: DESCRIPTIONS[role],
                    securityGroupType: "normal",
                    innerAccessPolicy: "Drop",
                    tags: args.tags,
                },
                { parent: this },
            );
        this.groups = { alb: group("alb"), app: group("app"), singleton: group("singleton") };

        const rules = haIngressRules(args);
        this.rules = (Object.keys(rules) as HaSecurityGroupRole[]).flatMap((role) =>
            rules[role].map(
                (rule) =>
                    new alicloud.ecs.SecurityGroupRule(
                        `${name}-${role}-in-${rule.policy}-${rule.port ?? rule.protocol}-${cidrSlug(rule.cidr)}`,
                        {
                            securityGroupId: this.groups[role].id,
                            type: "ingress",
                            ipProtocol: rule.protocol,
                            portRange: rule.port === undefined ? "-1/-1" : `${rule.port}/${rule.port}`,
                            cidrIp: rule.cidr,
                            policy: rule.policy,
                            priority: rule.priority,
                            nicType: "intranet",
                            description: rule.description,
                        },
                        { parent: this },
                    ),
            ),
        );

        this.albSecurityGroupId = this.groups.alb.id;
        this.appSecurityGroupId = this.groups.app.id;
        this.singletonSecurityGroupId = this.groups.singleton.id;
        this.registerOutputs({
            albSecurityGroupId: this.albSecurityGroupId,
            appSecurityGroupId: this.appSecurityGroupId,
            singletonSecurityGroupId: this.singletonSecurityGroupId,
        });
    }
}
