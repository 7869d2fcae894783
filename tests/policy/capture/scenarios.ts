// The project's real components and dynamic resources, built directly (bypassing the stack config parser, which
// refuses most of the bad settings the policy pack must still catch). Each scenario wires them as index.ts does;
// `args` (plain JSON) override the defaults below. Runs inside a capture process (run-capture.cjs).
import * as alicloud from "@pulumi/alicloud";
import { DifyNetwork } from "../../../components/network";
import { DifySecurityGroup, type DifySecurityGroupArgs } from "../../../components/security-group";
import {
    DifyHost,
    type DifyHostArgs,
    type DifyHostInstance,
    type DifyHostNetwork,
    type DifyHostSettings,
} from "../../../components/dify-host";
import { BASE_HOST_ARGS } from "../../components/host-args";
import { RamOAuthApplication, type RamOAuthApplicationArgs } from "../../../dynamic-providers/alibaba/ram-oauth-app";

type Args = Record<string, unknown>;

/** An extra ingress rule: alicloud.ecs.SecurityGroupRuleArgs fields, plus which group and which prefix list. */
interface ExtraRule extends Record<string, unknown> {
    /** "b": the second security group instead of the first. */
    group?: "a" | "b";
    /** Key of one of the scenario's prefix lists, used as the rule's prefixListId. */
    prefixList?: string;
}

const tags = { "managed-by": "pulumi", project: "dify-mcp-stack", stack: "policy" };

/** DifySecurityGroup as index.ts builds it from the defaults (allowedCidrs 0.0.0.0/0, no domain, no admin CIDR). */
function securityGroupArgs(name: string, vpcId: DifySecurityGroupArgs["vpcId"], args: Args): DifySecurityGroupArgs {
    return { namePrefix: name, vpcId, allowedCidrs: ["0.0.0.0/0"], httpsEnabled: false, tags, ...args };
}

/** `args` over `defaults`; a null in `args` removes the default (JSON has no undefined). */
function merged<T extends object>(defaults: T, args: Args): T {
    const result: Record<string, unknown> = { ...defaults, ...args };
    for (const [key, value] of Object.entries(args)) {
        if (value === null) {
            delete result[key];
        }
    }
    return result as T;
}

/** The host's `args` that are fields of DifyHostArgs.instance, by the name they have there; the rest are settings. */
const INSTANCE_ARGS: Readonly<Record<string, keyof DifyHostInstance>> = {
    instanceType: "instanceType",
    instanceCpuCores: "cpuCores",
    instanceMemoryGib: "memoryGib",
    imageId: "imageId",
    imageFromLookup: "imageFromLookup",
};

/** DifyHost as index.ts builds it from the defaults; `args` is flat: settings, INSTANCE_ARGS and `tags`. */
function hostArgs(name: string, network: DifyHostNetwork, args: Args): DifyHostArgs {
    const { tags: tagArgs, ...rest } = args;
    const instance: Args = {};
    const settings: Args = {};
    for (const [key, value] of Object.entries(rest)) {
        if (Object.hasOwn(INSTANCE_ARGS, key)) {
            instance[INSTANCE_ARGS[key]] = value;
        } else {
            settings[key] = value;
        }
    }
    return {
        settings: merged<DifyHostSettings>({ ...BASE_HOST_ARGS.settings, namePrefix: name, protectDataDisk: false }, settings),
        network,
        instance: merged<DifyHostInstance>({ ...BASE_HOST_ARGS.instance, cpuCores: 2, memoryGib: 4 }, instance),
        tags: tagArgs === null ? undefined : ((tagArgs ?? tags) as DifyHostArgs["tags"]),
    };
}

function oauthAppArgs(name: string, args: Args): RamOAuthApplicationArgs {
    return { appName: name, appType: "NativeApp", consoleApiUrl: "http://198.51.100.23", ...args } as RamOAuthApplicationArgs;
}

export const SCENARIOS: Record<string, (name: string, args: Args) => void> = {
    "security-group": (name, args) => {
        new DifySecurityGroup(name, securityGroupArgs(name, "vpc-policy", args));
    },
    host: (name, args) => {
        new DifyHost(name, hostArgs(name, { zoneId: "cn-hangzhou-h", vswitchId: "vsw-policy", securityGroupId: "sg-policy" }, args));
    },
    "oauth-app": (name, args) => {
        new RamOAuthApplication(name, oauthAppArgs(name, args));
    },
    /**
     * A DifySecurityGroup (args.securityGroup) plus ingress rules the component never writes, registered with the
     * real alicloud classes in its group the way a user extending the stack would: each copies the component's own
     * rule settings (components/security-group.ts) and changes only the fields under test (args.rules). A second
     * group like the first (args.secondGroup) and alicloud.ecs.EcsPrefixList resources (args.prefixLists: key →
     * CIDRs) on request.
     */
    "extra-rules": (name, args) => {
        const first = new DifySecurityGroup(name, securityGroupArgs(name, "vpc-policy", (args.securityGroup ?? {}) as Args));
        const second = args.secondGroup
            ? new DifySecurityGroup(`${name}-b`, securityGroupArgs(`${name}-b`, "vpc-policy", (args.securityGroup ?? {}) as Args))
            : undefined;
        const lists = new Map(
            Object.entries((args.prefixLists ?? {}) as Record<string, string[]>).map(([key, cidrs]) => [
                key,
                new alicloud.ecs.EcsPrefixList(`${name}-pl-${key}`, {
                    prefixListName: `${name}-${key}`,
                    addressFamily: "IPv4",
                    maxEntries: 200,
                    entries: cidrs.map((cidr) => ({ cidr, description: "policy test" })),
                }),
            ]),
        );
        ((args.rules ?? []) as ExtraRule[]).forEach(({ group, prefixList, ...fields }, i) => {
            const securityGroup = group === "b" ? second : first;
            if (securityGroup === undefined) {
                throw new Error(`rule ${i} asks for the second group, but secondGroup is not set`);
            }
            const list = prefixList === undefined ? undefined : lists.get(prefixList);
            new alicloud.ecs.SecurityGroupRule(`${name}-extra-${i}`, {
                securityGroupId: securityGroup.securityGroupId,
                type: "ingress",
                ipProtocol: "tcp",
                portRange: "22/22",
                policy: "accept",
                priority: 1,
                nicType: "intranet",
                description: "policy test",
                ...(list !== undefined ? { prefixListId: list.id } : {}),
                ...fields,
            });
        });
    },
    /**
     * Network, security group, host and RAM OAuth app wired as index.ts wires them; `args` has one object per
     * component: { securityGroup, host, oauthApp }.
     */
    stack: (name, args) => {
        const part = (key: string) => (args[key] ?? {}) as Args;
        const network = new DifyNetwork(name, {
            namePrefix: name,
            vpcCidr: "172.16.0.0/16",
            vswitchCidr: "172.16.0.0/24",
            zoneId: "cn-hangzhou-h",
            tags,
        });
        const securityGroup = new DifySecurityGroup(name, securityGroupArgs(name, network.vpcId, part("securityGroup")));
        const host = new DifyHost(
            name,
            hostArgs(name, { zoneId: network.zoneId, vswitchId: network.vswitchId, securityGroupId: securityGroup.securityGroupId }, part("host")),
        );
        new RamOAuthApplication(`${name}-oauth`, oauthAppArgs(`${name}-oauth`, { consoleApiUrl: host.difyUrl, ...part("oauthApp") }));
    },
};
