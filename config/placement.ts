import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import { StackSettings, isAvoidedFamily } from "./stack-config";
import { MIN_MEMORY_GIB, MIN_VCPUS, isLargeEnoughForDify } from "../rules/instance-size";

/** One instance type the region offers, as the ECS DescribeInstanceTypes lookup reports it. */
export interface InstanceTypeOffer {
    id: string;
    cpuCoreCount: number;
    memorySize: number;
    availabilityZones: string[];
}

/** Where the host goes: an instance type and a zone that offers it (the vSwitch is built in that zone). */
export interface Placement {
    instanceType: string;
    zoneId: string;
    cpuCoreCount: number;
    memorySize: number;
}

export interface PlacementRequest {
    instanceType?: string;
    zoneId?: string;
    preferences: string[];
    architecture: StackSettings["cpuArchitecture"];
    region: string;
}

function fitsDify(offer: InstanceTypeOffer): boolean {
    return isLargeEnoughForDify({ vcpus: offer.cpuCoreCount, memoryGib: offer.memorySize });
}

function zoneFor(offer: InstanceTypeOffer, zoneId: string | undefined): string | undefined {
    if (zoneId !== undefined) {
        return offer.availabilityZones.includes(zoneId) ? zoneId : undefined;
    }
    return [...offer.availabilityZones].sort()[0];
}

/**
 * Picks the instance type and zone. An explicit type must exist in the region, be large enough for Dify,
 * and be offered in the configured zone; otherwise the first preference the region offers wins.
 */
export function choosePlacement(offers: InstanceTypeOffer[], request: PlacementRequest): Placement {
    const byId = new Map(offers.map((offer) => [offer.id, offer]));
    if (request.instanceType !== undefined) {
        const offer = byId.get(request.instanceType);
        if (!offer) {
            throw new Error(
                `dify-mcp-stack:instanceType "${request.instanceType}" is not offered in ${request.region} for this charge type and disk category; choose another type or unset it to pick one automatically`,
            );
        }
        if (!fitsDify(offer)) {
            throw new Error(
                `dify-mcp-stack:instanceType "${request.instanceType}" has ${offer.cpuCoreCount} vCPU and ${offer.memorySize} GiB; Dify needs at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB`,
            );
        }
        const zoneId = zoneFor(offer, request.zoneId);
        if (!zoneId) {
            throw new Error(
                `dify-mcp-stack:zoneId "${request.zoneId}" does not offer ${request.instanceType}; allowed zones: ${offer.availabilityZones.join(", ") || "none"}`,
            );
        }
        return { instanceType: offer.id, zoneId, cpuCoreCount: offer.cpuCoreCount, memorySize: offer.memorySize };
    }
    for (const preferred of request.preferences) {
        const offer = byId.get(preferred);
        if (!offer || !fitsDify(offer) || isAvoidedFamily(offer.id, request.architecture)) {
            continue;
        }
        const zoneId = zoneFor(offer, request.zoneId);
        if (zoneId) {
            return { instanceType: offer.id, zoneId, cpuCoreCount: offer.cpuCoreCount, memorySize: offer.memorySize };
        }
    }
    const where = request.zoneId ? `zone ${request.zoneId}` : request.region;
    throw new Error(
        `none of dify-mcp-stack:instanceTypePreferences (${request.preferences.join(", ")}) is offered in ${where}; set dify-mcp-stack:instanceType to a type of at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB that the region sells`,
    );
}

/** Looks up what the region offers and chooses the placement; evaluated at preview, so mistakes show early. */
export function resolvePlacement(settings: StackSettings, opts?: pulumi.InvokeOutputOptions): pulumi.Output<Placement> {
    const offers = alicloud.ecs.getInstanceTypesOutput(
        {
            instanceType: settings.instanceType,
            instanceChargeType: settings.instanceChargeType,
            systemDiskCategory: settings.systemDiskCategory,
            isOutdated: false,
        },
        opts,
    );
    return offers.instanceTypes.apply((types) =>
        choosePlacement(
            types.map((t) => ({
                id: t.id,
                cpuCoreCount: t.cpuCoreCount,
                memorySize: t.memorySize,
                availabilityZones: t.availabilityZones,
            })),
            {
                instanceType: settings.instanceType,
                zoneId: settings.zoneId,
                preferences: settings.instanceTypePreferences,
                architecture: settings.cpuArchitecture,
                region: settings.region,
            },
        ),
    );
}

/**
 * The image: the pinned `imageId`, or the newest cloud-init image of the family. The host ignores later
 * changes of the looked-up id, so a newer public image never rebuilds the system disk.
 */
export function resolveImageId(settings: StackSettings, instanceType: pulumi.Input<string>, opts?: pulumi.InvokeOutputOptions): pulumi.Output<string> {
    if (settings.imageId !== undefined) {
        return pulumi.output(settings.imageId);
    }
    const images = alicloud.ecs.getImagesOutput(
        {
            owners: "system",
            imageFamily: settings.imageFamily,
            mostRecent: true,
            isSupportCloudInit: true,
            osType: "linux",
            architecture: settings.cpuArchitecture,
            instanceType,
        },
        opts,
    );
    return images.images.apply((found) => {
        if (found.length === 0) {
            throw new Error(
                `no public image of family ${settings.imageFamily} (dify-mcp-stack:imageFamily) supports cloud-init on this instance type in ${settings.region}; set dify-mcp-stack:imageId to an image id`,
            );
        }
        return found[0].id;
    });
}
