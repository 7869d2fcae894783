import { describe, expect, it } from "vitest";
import { InstanceTypeOffer, chooseHaZones, choosePlacement } from "../../config/placement";
import { DEFAULT_INSTANCE_TYPE_PREFERENCES } from "../../config/stack-config";

const offers: InstanceTypeOffer[] = [
    { id: "ecs.t6-c1m2.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-a"] },
    { id: "ecs.c8y.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-a"] },
    { id: "ecs.c7.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-k", "cn-hangzhou-h"] },
    { id: "ecs.g7.large", cpuCoreCount: 2, memorySize: 8, availabilityZones: ["cn-hangzhou-i"] },
    { id: "ecs.c7.medium", cpuCoreCount: 1, memorySize: 2, availabilityZones: ["cn-hangzhou-k"] },
];
const request = { preferences: [...DEFAULT_INSTANCE_TYPE_PREFERENCES], architecture: "x86_64" as const, region: "cn-hangzhou" };

describe("choosePlacement", () => {
    it("takes the first preference the region offers, in a zone that offers it", () => {
        expect(choosePlacement(offers, request)).toEqual({ instanceType: "ecs.c7.large", zoneId: "cn-hangzhou-h", cpuCoreCount: 2, memorySize: 4 });
    });

    it("skips burstable and ARM families even when preferred", () => {
        const placement = choosePlacement(offers, { ...request, preferences: ["ecs.t6-c1m2.large", "ecs.c8y.large", "ecs.g7.large"] });
        expect(placement.instanceType).toBe("ecs.g7.large");
        expect(choosePlacement(offers, { ...request, architecture: "arm64", preferences: ["ecs.c8y.large"] }).instanceType).toBe("ecs.c8y.large");
    });

    it("honours a configured zone, moving on to a type that zone offers", () => {
        expect(choosePlacement(offers, { ...request, zoneId: "cn-hangzhou-i" }).instanceType).toBe("ecs.g7.large");
    });

    it("validates an explicit type against what the region reports", () => {
        expect(() => choosePlacement(offers, { ...request, instanceType: "ecs.c7.medium" })).toThrow(
            /instanceType "ecs.c7.medium" has 1 vCPU and 2 GiB; Dify needs at least 2 vCPU and 4 GiB/,
        );
        expect(() => choosePlacement(offers, { ...request, instanceType: "ecs.c9i.large" })).toThrow(/is not offered in cn-hangzhou/);
        expect(() => choosePlacement(offers, { ...request, instanceType: "ecs.c7.large", zoneId: "cn-hangzhou-i" })).toThrow(
            /zoneId "cn-hangzhou-i" does not offer ecs.c7.large; allowed zones: cn-hangzhou-k, cn-hangzhou-h/,
        );
    });

    it("says what to set when no preference is offered", () => {
        expect(() => choosePlacement(offers.slice(0, 2), request)).toThrow(/set dify-mcp-stack:instanceType/);
    });
});

describe("chooseHaZones (topology ha)", () => {
    const haOffers: InstanceTypeOffer[] = [
        ...offers,
        { id: "ecs.c9i.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-j"] },
        { id: "ecs.c6.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: ["cn-hangzhou-j", "cn-hangzhou-i", "cn-hangzhou-b"] },
    ];

    it("takes the first preference offered in two zones, and the first two zones in sorted order", () => {
        // c9i.large comes before c7.large in the preferences but is offered in one zone only.
        expect(chooseHaZones(haOffers, request)).toEqual({
            instanceType: "ecs.c7.large",
            zoneIds: ["cn-hangzhou-h", "cn-hangzhou-k"],
            cpuCoreCount: 2,
            memorySize: 4,
        });
    });

    it("honours haZoneIds in their order, moving on to a type both zones offer", () => {
        const placement = chooseHaZones(haOffers, { ...request, zoneIds: ["cn-hangzhou-j", "cn-hangzhou-b"] });
        expect(placement).toMatchObject({ instanceType: "ecs.c6.large", zoneIds: ["cn-hangzhou-j", "cn-hangzhou-b"] });
    });

    it("skips burstable and ARM families as choosePlacement does", () => {
        const twoZones = ["cn-hangzhou-a", "cn-hangzhou-b"];
        const armAndBurstable: InstanceTypeOffer[] = [
            { id: "ecs.t6-c1m2.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: twoZones },
            { id: "ecs.c8y.large", cpuCoreCount: 2, memorySize: 4, availabilityZones: twoZones },
            { id: "ecs.g7.large", cpuCoreCount: 2, memorySize: 8, availabilityZones: twoZones },
        ];
        const preferences = ["ecs.t6-c1m2.large", "ecs.c8y.large", "ecs.g7.large"];
        expect(chooseHaZones(armAndBurstable, { ...request, preferences }).instanceType).toBe("ecs.g7.large");
    });

    it("refuses an explicit type a haZoneIds zone does not offer, naming haZoneIds and the zones that do", () => {
        expect(() => chooseHaZones(haOffers, { ...request, instanceType: "ecs.c7.large", zoneIds: ["cn-hangzhou-h", "cn-hangzhou-i"] })).toThrow(
            'dify-mcp-stack:haZoneIds contains "cn-hangzhou-i", which does not offer ecs.c7.large; allowed: two of the zones that offer it: cn-hangzhou-h, cn-hangzhou-k',
        );
    });

    it("fails clearly when the type is offered in fewer than two zones", () => {
        expect(() => chooseHaZones(haOffers, { ...request, instanceType: "ecs.g7.large" })).toThrow(
            'dify-mcp-stack:instanceType "ecs.g7.large" is offered in only one zone of cn-hangzhou (cn-hangzhou-i), and topology ha needs two',
        );
        const oneZoneEach = haOffers.filter((offer) => offer.availabilityZones.length < 2);
        expect(() => chooseHaZones(oneZoneEach, request)).toThrow(/is offered in two zones of cn-hangzhou, which topology ha needs; set dify-mcp-stack:instanceType/);
        expect(() => chooseHaZones(haOffers, { ...request, zoneIds: ["cn-hangzhou-a", "cn-hangzhou-k"] })).toThrow(
            /is offered in both zones of dify-mcp-stack:haZoneIds \(cn-hangzhou-a, cn-hangzhou-k\).*or choose other haZoneIds/,
        );
    });

    it("validates an explicit type as choosePlacement does", () => {
        expect(() => chooseHaZones(haOffers, { ...request, instanceType: "ecs.c7.medium" })).toThrow(/Dify needs at least 2 vCPU and 4 GiB/);
        expect(() => chooseHaZones(haOffers, { ...request, instanceType: "ecs.c8i.large" })).toThrow(/is not offered in cn-hangzhou/);
    });
});
