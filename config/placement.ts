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

/** The offer of an explicitly set instanceType: it must exist in the region and be large enough for Dify. */
function explicitOffer(byId: Map<string, InstanceTypeOffer>, instanceType: string, region: string): InstanceTypeOffer {
    const offer = byId.get(instanceType);
    if (!offer) {
        throw new Error(
            `dify-mcp-stack:instanceType "${instanceType}" is not offered in ${region} for this charge type and disk category; choose another type or unset it to pick one automatically`,
        );
    }
    if (!fitsDify(offer)) {
        throw new Error(
            `dify-mcp-stack:instanceType "${instanceType}" has ${offer.cpuCoreCount} vCPU and ${offer.memorySize} GiB; Dify needs at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB`,
        );
    }
    return offer;
}

/**
 * Picks the instance type and zone. An explicit type must exist in the region, be large enough for Dify,
 * and be offered in the configured zone; otherwise the first preference the region offers wins.
 */
export function choosePlacement(offers: InstanceTypeOffer[], request: PlacementRequest): Placement {
    const byId = new Map(offers.map((offer) => [offer.id, offer]));
    if (request.instanceType !== undefined) {
        const offer = explicitOffer(byId, request.instanceType, request.region);
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

/** What the region offers for the stack's charge type and system disk (ECS DescribeInstanceTypes), at preview. */
function instanceTypeOffers(settings: StackSettings, opts?: pulumi.InvokeOutputOptions): pulumi.Output<InstanceTypeOffer[]> {
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
        types.map((t) => ({ id: t.id, cpuCoreCount: t.cpuCoreCount, memorySize: t.memorySize, availabilityZones: t.availabilityZones })),
    );
}

/** Looks up what the region offers and chooses the placement; evaluated at preview, so mistakes show early. */
export function resolvePlacement(settings: StackSettings, opts?: pulumi.InvokeOutputOptions): pulumi.Output<Placement> {
    return instanceTypeOffers(settings, opts).apply((offers) =>
        choosePlacement(
            offers,
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

/** Where topology ha's nodes go: an instance type and two distinct zones that both offer it. */
export interface HaPlacement {
    instanceType: string;
    /** Zone 1 (NAT gateway, singleton, RDS and Redis primaries) and zone 2. */
    zoneIds: [string, string];
    cpuCoreCount: number;
    memorySize: number;
}

export interface HaPlacementRequest {
    instanceType?: string;
    /** `haZoneIds`: both must offer the type; unset, the first two zones (sorted) that do. */
    zoneIds?: [string, string];
    preferences: string[];
    architecture: StackSettings["cpuArchitecture"];
    region: string;
}

/** The two zones of `offer` for ha, or undefined when it is offered in fewer than two (or not in both haZoneIds). */
function haZonesFor(offer: InstanceTypeOffer, zoneIds: [string, string] | undefined): [string, string] | undefined {
    if (zoneIds !== undefined) {
        return zoneIds.every((zone) => offer.availabilityZones.includes(zone)) ? zoneIds : undefined;
    }
    const zones = [...new Set(offer.availabilityZones)].sort();
    return zones.length >= 2 ? [zones[0], zones[1]] : undefined;
}

/**
 * Picks the instance type and the two zones of topology ha, like `choosePlacement` but needing two zones: an
 * explicit type must exist in the region, be large enough for Dify and be offered in both zones; otherwise the
 * first preference offered in two zones (both of `haZoneIds` when set) wins. The zones keep haZoneIds' order, or
 * are the first two in sorted order (as `choosePlacement` takes the first).
 */
export function chooseHaZones(offers: InstanceTypeOffer[], request: HaPlacementRequest): HaPlacement {
    const byId = new Map(offers.map((offer) => [offer.id, offer]));
    const wanted = request.zoneIds;
    const placed = (offer: InstanceTypeOffer, zoneIds: [string, string]): HaPlacement => ({
        instanceType: offer.id,
        zoneIds,
        cpuCoreCount: offer.cpuCoreCount,
        memorySize: offer.memorySize,
    });
    if (request.instanceType !== undefined) {
        const offer = explicitOffer(byId, request.instanceType, request.region);
        const zoneIds = haZonesFor(offer, wanted);
        if (zoneIds) {
            return placed(offer, zoneIds);
        }
        const distinct = [...new Set(offer.availabilityZones)].sort();
        const offered = distinct.join(", ") || "none";
        if (wanted !== undefined) {
            const missing = wanted.filter((zone) => !offer.availabilityZones.includes(zone));
            throw new Error(
                `dify-mcp-stack:haZoneIds contains ${missing.map((zone) => `"${zone}"`).join(" and ")}, which ${missing.length === 1 ? "does" : "do"} not offer ${offer.id}; allowed: two of the zones that offer it: ${offered}`,
            );
        }
        throw new Error(
            `dify-mcp-stack:instanceType "${offer.id}" is offered in ${distinct.length === 1 ? "only one zone" : "no zone"} of ${request.region} (${offered}), and topology ha needs two; choose a type that two zones offer, or unset it to pick one automatically`,
        );
    }
    for (const preferred of request.preferences) {
        const offer = byId.get(preferred);
        if (!offer || !fitsDify(offer) || isAvoidedFamily(offer.id, request.architecture)) {
            continue;
        }
        const zoneIds = haZonesFor(offer, wanted);
        if (zoneIds) {
            return placed(offer, zoneIds);
        }
    }
    const where = wanted !== undefined ? `both zones of dify-mcp-stack:haZoneIds (${wanted.join(", ")})` : `two zones of ${request.region}`;
    throw new Error(
        `none of dify-mcp-stack:instanceTypePreferences (${request.preferences.join(", ")}) is offered in ${where}, which topology ha needs; set dify-mcp-stack:instanceType to a type of at least ${MIN_VCPUS} vCPU and ${MIN_MEMORY_GIB} GiB that two zones of the region sell${wanted !== undefined ? ", or choose other haZoneIds (or unset them)" : ""}`,
    );
}

/**
 * Topology ha's instance type and two zones (`chooseHaZones`) from what the region offers; evaluated at preview
 * like `resolvePlacement`. `zoneId` is not used (ha reads `haZoneIds`).
 */
export function resolveHaZones(settings: StackSettings, opts?: pulumi.InvokeOutputOptions): pulumi.Output<HaPlacement> {
    return instanceTypeOffers(settings, opts).apply((offers) =>
        chooseHaZones(
            offers,
            {
                instanceType: settings.instanceType,
                zoneIds: settings.ha?.zoneIds,
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
