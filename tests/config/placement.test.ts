import { describe, expect, it } from "vitest";
import { InstanceTypeOffer, choosePlacement } from "../../config/placement";
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
