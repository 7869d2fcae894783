import { beforeEach, describe, expect, it } from "vitest";
import { RegisteredResource, installMocks, settle, valueOf, MOCK_EIP_ADDRESS } from "../pulumi-mocks";
import { DifyHaNetwork, HA_MAX_VPC_PREFIX, haTierCidrs } from "../../../components/ha/network";
import { cidrsOverlap, cidrContains, parseIpv4Cidr, type Ipv4Cidr } from "../../../rules/input-rules";

const SWITCH = "alicloud:vpc/switch:Switch";
const ZONES: [string, string] = ["cn-hangzhou-j", "cn-hangzhou-k"];

let registered: RegisteredResource[];

beforeEach(() => {
    registered = installMocks();
});

async function build(vpcCidr = "172.16.0.0/16") {
    const network = new DifyHaNetwork("net", { namePrefix: "dify-ha", vpcCidr, zoneIds: ZONES, tags: { stack: "test" } });
    await settle();
    const byType = (type: string) => registered.filter((r) => r.type === type);
    return { network, byType };
}

const cidr = (text: string) => parseIpv4Cidr(text) as Ipv4Cidr;

describe("haTierCidrs", () => {
    it("derives two /24s per tier at fixed offsets, in order [zone A, zone B]", () => {
        expect(haTierCidrs("172.16.0.0/16")).toEqual({
            lb: ["172.16.0.0/24", "172.16.1.0/24"],
            app: ["172.16.10.0/24", "172.16.11.0/24"],
            data: ["172.16.20.0/24", "172.16.21.0/24"],
        });
        expect(haTierCidrs("10.8.0.0/13").data).toEqual(["10.8.20.0/24", "10.8.21.0/24"]);
    });

    it("keeps every block inside the VPC and apart from the others, down to the smallest VPC allowed", () => {
        for (const vpc of ["10.0.0.0/8", "192.168.0.0/16", `192.168.32.0/${HA_MAX_VPC_PREFIX}`]) {
            const blocks = Object.values(haTierCidrs(vpc)).flat();
            expect(blocks).toHaveLength(6);
            for (const [i, block] of blocks.entries()) {
                expect(cidrContains(cidr(vpc), cidr(block))).toBe(true);
                for (const other of blocks.slice(i + 1)) {
                    expect(cidrsOverlap(cidr(block), cidr(other))).toBe(false);
                }
            }
        }
    });

    it("refuses a VPC too small for the six vSwitches, and a block with host bits", () => {
        expect(() => haTierCidrs("172.16.0.0/20")).toThrow(/too small.*\/19 or shorter/);
        expect(() => haTierCidrs("172.16.0.1/16")).toThrow(/without host bits/);
        expect(() => haTierCidrs("not-a-cidr")).toThrow(/not an IPv4 CIDR/);
    });
});

describe("DifyHaNetwork", () => {
    it("creates one VPC and two vSwitches per tier, one in each zone, with the derived blocks", async () => {
        const { byType } = await build();
        const vpcs = byType("alicloud:vpc/network:Network");
        expect(vpcs).toHaveLength(1);
        expect(vpcs[0].inputs).toMatchObject({ cidrBlock: "172.16.0.0/16", vpcName: "dify-ha-vpc", tags: { stack: "test" } });

        const switches = byType(SWITCH);
        expect(switches.map((s) => s.name).sort()).toEqual(["net-app-a", "net-app-b", "net-data-a", "net-data-b", "net-lb-a", "net-lb-b"]);
        const cidrs = haTierCidrs("172.16.0.0/16");
        for (const tier of ["lb", "app", "data"] as const) {
            const [a, b] = ["a", "b"].map((zone) => switches.find((s) => s.name === `net-${tier}-${zone}`)?.inputs);
            expect(a).toMatchObject({ zoneId: ZONES[0], cidrBlock: cidrs[tier][0], vswitchName: `dify-ha-${tier}-a`, vpcId: "net-vpc-id" });
            expect(b).toMatchObject({ zoneId: ZONES[1], cidrBlock: cidrs[tier][1], vswitchName: `dify-ha-${tier}-b`, vpcId: "net-vpc-id" });
        }
    });

    it("exports the vSwitch ids per tier as [zone A, zone B], the zones and the plain blocks", async () => {
        const { network } = await build();
        expect(await Promise.all(network.lbVswitchIds.map(valueOf))).toEqual(["net-lb-a-id", "net-lb-b-id"]);
        expect(await Promise.all(network.appVswitchIds.map(valueOf))).toEqual(["net-app-a-id", "net-app-b-id"]);
        expect(await Promise.all(network.dataVswitchIds.map(valueOf))).toEqual(["net-data-a-id", "net-data-b-id"]);
        expect(await Promise.all(network.zoneIds.map(valueOf))).toEqual(ZONES);
        expect(network.lbCidrs).toEqual(["172.16.0.0/24", "172.16.1.0/24"]);
        expect(network.appCidrs).toEqual(["172.16.10.0/24", "172.16.11.0/24"]);
        expect(network.dataCidrs).toEqual(["172.16.20.0/24", "172.16.21.0/24"]);
        expect(await valueOf(network.vpcId)).toBe("net-vpc-id");
    });

    it("gives the app tier outbound internet: an enhanced NAT gateway in zone A's app vSwitch, a pay-by-traffic EIP, SNAT for both app vSwitches", async () => {
        const { network, byType } = await build();
        const nats = byType("alicloud:vpc/natGateway:NatGateway");
        expect(nats).toHaveLength(1);
        expect(nats[0].inputs).toMatchObject({
            natType: "Enhanced",
            networkType: "internet",
            vswitchId: "net-app-a-id",
            vpcId: "net-vpc-id",
            natGatewayName: "dify-ha-nat",
        });

        const eips = byType("alicloud:ecs/eipAddress:EipAddress");
        expect(eips).toHaveLength(1);
        expect(eips[0].inputs).toMatchObject({ internetChargeType: "PayByTraffic", paymentType: "PayAsYouGo", bandwidth: "100" });
        expect(byType("alicloud:ecs/eipAssociation:EipAssociation").map((r) => r.inputs)).toEqual([
            expect.objectContaining({ allocationId: "net-nat-eip-id", instanceId: "net-nat-id", instanceType: "Nat" }),
        ]);

        const snat = byType("alicloud:vpc/snatEntry:SnatEntry").map((r) => r.inputs);
        expect(snat.map((s) => s.sourceVswitchId).sort()).toEqual(["net-app-a-id", "net-app-b-id"]);
        expect(snat.every((s) => s.snatIp === MOCK_EIP_ADDRESS && s.snatTableId === "stb-net-nat")).toBe(true);

        expect(await valueOf(network.natGatewayId)).toBe("net-nat-id");
        expect(await valueOf(network.natEipAddress)).toBe(MOCK_EIP_ADDRESS);
    });

    it("never routes the lb or data tiers through the NAT gateway", async () => {
        const { byType } = await build();
        const sources = byType("alicloud:vpc/snatEntry:SnatEntry").map((r) => String(r.inputs.sourceVswitchId));
        expect(sources.some((s) => s.includes("-lb-") || s.includes("-data-"))).toBe(false);
        expect(byType("alicloud:vpc/snatEntry:SnatEntry").every((r) => r.inputs.sourceCidr === undefined)).toBe(true);
    });

    it("refuses the same zone twice and a VPC too small", () => {
        expect(() => new DifyHaNetwork("twice", { namePrefix: "p", vpcCidr: "172.16.0.0/16", zoneIds: ["z-a", "z-a"] })).toThrow(/two different zones/);
        expect(() => new DifyHaNetwork("small", { namePrefix: "p", vpcCidr: "172.16.0.0/24", zoneIds: ZONES })).toThrow(/too small/);
        expect(() => new DifyHaNetwork("bw", { namePrefix: "p", vpcCidr: "172.16.0.0/16", zoneIds: ZONES, natBandwidthMbps: 500 })).toThrow(/1 to 200/);
    });
});
