// How big an ECS instance must be for Dify, and how big a type is by its name. No imports: the config parser and
// the policy pack read sizes the same way.

export const MIN_VCPUS = 2;
export const MIN_MEMORY_GIB = 4;

export interface InstanceSize {
    vcpus: number;
    memoryGib: number;
}

/**
 * vCPU count and memory (GiB) of an instance type, read from its name for the families whose naming is regular;
 * undefined for others (the deploy-time lookup checks those).
 */
export function instanceTypeSizeFromName(instanceType: string): InstanceSize | undefined {
    const match = /^ecs\.([a-z0-9-]+)\.(small|medium|large|xlarge|(\d+)xlarge)$/.exec(instanceType.trim().toLowerCase());
    if (!match) {
        return undefined;
    }
    const [, family, size, multiple] = match;
    const vcpus =
        size === "small" ? 1 : size === "medium" ? 1 : size === "large" ? 2 : size === "xlarge" ? 4 : 4 * Number(multiple);
    // Memory per vCPU: "c1m2" style names say it; otherwise the family letter does (c: 2, g: 4, r: 8 GiB).
    const ratio = /c1m(\d+)/.exec(family);
    let memoryPerVcpu: number | undefined;
    if (ratio) {
        memoryPerVcpu = Number(ratio[1]);
    } else if (/^c\d/.test(family)) {
        memoryPerVcpu = 2;
    } else if (/^g\d/.test(family)) {
        memoryPerVcpu = 4;
    } else if (/^r\d/.test(family)) {
        memoryPerVcpu = 8;
    }
    if (memoryPerVcpu === undefined || size === "small") {
        return undefined;
    }
    return { vcpus, memoryGib: vcpus * memoryPerVcpu };
}

/** True when a size is enough for Dify. */
export function isLargeEnoughForDify(size: InstanceSize): boolean {
    return size.vcpus >= MIN_VCPUS && size.memoryGib >= MIN_MEMORY_GIB;
}
