import { beforeEach, describe, expect, it } from "vitest";
import { RegisteredResource, installMocks, settle } from "./pulumi-mocks";
import { DifySecurityGroup, difyIngressRules } from "../../components/security-group";

const RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule";
const DIFY_INTERNAL_PORTS = ["5001/5001", "5002/5002", "5003/5003", "8194/8194"];

let registered: RegisteredResource[];

beforeEach(() => {
    registered = installMocks();
});

async function rulesFor(args: { allowedCidrs: string[]; adminCidr?: string; httpsEnabled: boolean }) {
    const before = registered.length;
    new DifySecurityGroup(`sg-${before}`, { namePrefix: "dify-test", vpcId: "vpc-1", tags: { stack: "test" }, ...args });
    await settle();
    return registered.slice(before).filter((r) => r.type === RULE).map((r) => r.inputs);
}

describe("DifySecurityGroup", () => {
    it("keeps SSH closed by default and opens only 80 to the allowed CIDRs", async () => {
        const rules = await rulesFor({ allowedCidrs: ["0.0.0.0/0"], httpsEnabled: false });
        expect(rules.map((r) => `${r.portRange} ${r.cidrIp}`)).toEqual(["80/80 0.0.0.0/0"]);
        expect(rules.every((r) => r.type === "ingress" && r.ipProtocol === "tcp" && r.policy === "accept")).toBe(true);
    });

    it("opens 22 to the admin CIDR only, and 443 when HTTPS is configured", async () => {
        const rules = await rulesFor({ allowedCidrs: ["203.0.113.0/24", "198.51.100.0/24"], adminCidr: "192.0.2.7/32", httpsEnabled: true });
        const byPort = (port: string) => rules.filter((r) => r.portRange === port).map((r) => r.cidrIp).sort();
        expect(byPort("22/22")).toEqual(["192.0.2.7/32"]);
        expect(byPort("80/80")).toEqual(["198.51.100.0/24", "203.0.113.0/24"]);
        expect(byPort("443/443")).toEqual(["198.51.100.0/24", "203.0.113.0/24"]);
        expect(rules).toHaveLength(5);
    });

    it("never opens Dify's host-published debug and service ports", async () => {
        const rules = await rulesFor({ allowedCidrs: ["0.0.0.0/0"], adminCidr: "192.0.2.0/24", httpsEnabled: true });
        for (const port of DIFY_INTERNAL_PORTS) {
            expect(rules.map((r) => r.portRange)).not.toContain(port);
        }
        expect(rules.some((r) => r.portRange === "-1/-1" || r.ipProtocol === "all")).toBe(false);
    });

    it("creates the group in the given VPC with tags", async () => {
        await rulesFor({ allowedCidrs: ["0.0.0.0/0"], httpsEnabled: false });
        const group = registered.find((r) => r.type === "alicloud:ecs/securityGroup:SecurityGroup");
        expect(group?.inputs.vpcId).toBe("vpc-1");
        expect(group?.inputs.tags).toEqual({ stack: "test" });
        expect(group?.inputs.securityGroupName).toBe("dify-test-sg");
    });

    it("derives rules as a pure function too", () => {
        expect(difyIngressRules({ allowedCidrs: ["10.0.0.0/8"], httpsEnabled: false }).map((r) => r.port)).toEqual([80]);
    });
});
