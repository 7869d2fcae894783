import { beforeEach, describe, expect, it } from "vitest";
import { RegisteredResource, installMocks, settle, valueOf } from "../pulumi-mocks";
import { DifyHaSecurityGroups, HaIngressRule, haIngressRules } from "../../../components/ha/security-groups";
import { haTierCidrs } from "../../../components/ha/network";

const GROUP = "alicloud:ecs/securityGroup:SecurityGroup";
const RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule";
const cidrs = haTierCidrs("172.16.0.0/16");

let registered: RegisteredResource[];

beforeEach(() => {
    registered = installMocks();
});

async function build(allowedCidrs = ["0.0.0.0/0"]) {
    const before = registered.length;
    const groups = new DifyHaSecurityGroups(`sgs-${before}`, {
        namePrefix: "dify-ha",
        vpcId: "vpc-1",
        lbCidrs: cidrs.lb,
        appCidrs: cidrs.app,
        allowedCidrs,
        tags: { stack: "test" },
    });
    await settle();
    const mine = registered.slice(before);
    const groupOf = (role: string) => mine.find((r) => r.type === GROUP && r.name.endsWith(`-${role}-sg`));
    // Rules point at their group by its mock id: `<resource name>-id`.
    const rulesOf = (role: string) =>
        mine.filter((r) => r.type === RULE && r.inputs.securityGroupId === `${groupOf(role)?.name}-id`).map((r) => r.inputs);
    return { groups, groupOf, rulesOf, mine };
}

const summary = (rules: Array<Record<string, unknown>>) =>
    rules.map((r) => `${r.policy} ${r.ipProtocol} ${r.portRange} ${r.cidrIp} p${r.priority}`).sort();

describe("DifyHaSecurityGroups", () => {
    it("creates the alb, app and singleton groups in the VPC, dropping traffic between members", async () => {
        const { groupOf, groups } = await build();
        for (const role of ["alb", "app", "singleton"]) {
            expect(groupOf(role)?.inputs).toMatchObject({
                vpcId: "vpc-1",
                securityGroupName: `dify-ha-${role}-sg`,
                securityGroupType: "normal",
                innerAccessPolicy: "Drop",
                tags: { stack: "test" },
            });
        }
        expect(await valueOf(groups.albSecurityGroupId)).toBe(`${groupOf("alb")?.name}-id`);
        expect(await valueOf(groups.appSecurityGroupId)).toBe(`${groupOf("app")?.name}-id`);
        expect(await valueOf(groups.singletonSecurityGroupId)).toBe(`${groupOf("singleton")?.name}-id`);
    });

    it("admits Dify's port 80 on the nodes only from the two lb vSwitch blocks", async () => {
        const { rulesOf } = await build();
        expect(summary(rulesOf("app"))).toEqual(["accept tcp 80/80 172.16.0.0/24 p1", "accept tcp 80/80 172.16.1.0/24 p1"]);
    });

    it("admits the plugin daemon's port 5002 on the singleton only from the two app vSwitch blocks", async () => {
        const { rulesOf } = await build();
        expect(summary(rulesOf("singleton"))).toEqual(["accept tcp 5002/5002 172.16.10.0/24 p1", "accept tcp 5002/5002 172.16.11.0/24 p1"]);
    });

    it("opens nothing else on the nodes: no SSH, no 0.0.0.0/0, no other port, only ingress", async () => {
        const { rulesOf, mine } = await build();
        for (const rule of [...rulesOf("app"), ...rulesOf("singleton")]) {
            expect(rule.cidrIp).not.toBe("0.0.0.0/0");
            expect(rule.portRange).not.toBe("22/22");
            expect(rule.ipProtocol).toBe("tcp");
            expect(["80/80", "5002/5002"]).toContain(rule.portRange);
        }
        expect(mine.filter((r) => r.type === RULE).every((r) => r.inputs.type === "ingress" && r.inputs.nicType === "intranet")).toBe(true);
    });

    it("admits 443 and 80 on the ALB from the allowed CIDRs only, everything else dropped at the lowest priority", async () => {
        const { rulesOf } = await build(["203.0.113.0/24", "198.51.100.0/24"]);
        expect(summary(rulesOf("alb"))).toEqual([
            "accept tcp 443/443 198.51.100.0/24 p1",
            "accept tcp 443/443 203.0.113.0/24 p1",
            "accept tcp 80/80 198.51.100.0/24 p1",
            "accept tcp 80/80 203.0.113.0/24 p1",
            "drop all -1/-1 0.0.0.0/0 p100",
        ]);
    });

    it("derives the rules as a pure function too", () => {
        const rules = haIngressRules({ lbCidrs: cidrs.lb, appCidrs: cidrs.app, allowedCidrs: ["0.0.0.0/0"] });
        const accepted = (list: HaIngressRule[]) => list.filter((r) => r.policy === "accept").map((r) => `${r.port} ${r.cidr}`);
        expect(accepted(rules.app)).toEqual(["80 172.16.0.0/24", "80 172.16.1.0/24"]);
        expect(accepted(rules.singleton)).toEqual(["5002 172.16.10.0/24", "5002 172.16.11.0/24"]);
        expect(accepted(rules.alb)).toEqual(["443 0.0.0.0/0", "80 0.0.0.0/0"]);
        expect(rules.alb.at(-1)).toMatchObject({ policy: "drop", protocol: "all", priority: 100 });
    });
});
