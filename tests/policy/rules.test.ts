// The guardrail policies, called the way the policy SDK calls them: validateResource(args, reportViolation).
import { describe, expect, it } from "vitest";
import {
    DYNAMIC_RESOURCE,
    ECS_INSTANCE,
    OSS_BUCKET,
    OSS_BUCKET_ACL,
    SECURITY_GROUP_RULE,
    difyVersionAtLeast,
    instanceTypeSize,
    policies,
    type ResourceValidationArgs,
    type ResourceValidationPolicy,
} from "../../policy/rules";

function resourceArgs(type: string, props: Record<string, unknown>): ResourceValidationArgs {
    return {
        type,
        props,
        urn: `urn:pulumi:test::dify-mcp-stack::${type}::subject`,
        name: "subject",
        opts: {
            protect: false,
            ignoreChanges: [],
            aliases: [],
            customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
            additionalSecretOutputs: [],
        },
        stackTags: new Map(),
        isType: () => false,
        asType: () => undefined,
        getConfig: <T extends object>() => ({}) as T,
        notApplicable: (reason?: string): never => {
            throw new Error(`not applicable: ${reason}`);
        },
    };
}

/** Runs every policy of the pack on one resource and returns the violations as "policy: message". */
async function violations(type: string, props: Record<string, unknown>): Promise<string[]> {
    const found: string[] = [];
    for (const policy of policies as ResourceValidationPolicy[]) {
        const validations = policy.validateResource === undefined ? [] :
            Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
        for (const validate of validations) {
            await validate(resourceArgs(type, props), (message) => found.push(`${policy.name}: ${message}`));
        }
    }
    return found;
}

const ingress = (portRange: string, cidrIp = "0.0.0.0/0", extra: Record<string, unknown> = {}) => ({
    type: "ingress", ipProtocol: "tcp", portRange, cidrIp, policy: "accept", nicType: "intranet", securityGroupId: "sg-1",
    ...extra,
});

describe("security group rules", () => {
    it("accepts 80 and 443 from anywhere", async () => {
        expect(await violations(SECURITY_GROUP_RULE, ingress("80/80"))).toEqual([]);
        expect(await violations(SECURITY_GROUP_RULE, ingress("443/443"))).toEqual([]);
    });

    it("rejects SSH from anywhere, naming the rule's range and source", async () => {
        const found = await violations(SECURITY_GROUP_RULE, ingress("22/22"));
        expect(found.some((v) => v.startsWith("ssh-not-open-to-world: ingress tcp 22/22 from 0.0.0.0/0"))).toBe(true);
    });

    it("rejects SSH from anywhere over IPv6 and through wide ranges or protocol all", async () => {
        const v6 = await violations(SECURITY_GROUP_RULE, ingress("22/22", "", { ipv6CidrIp: "::/0" }));
        expect(v6.some((v) => v.startsWith("ssh-not-open-to-world"))).toBe(true);
        const wide = await violations(SECURITY_GROUP_RULE, ingress("1/65535"));
        expect(wide.map((v) => v.split(":")[0]).sort()).toEqual(["only-web-ports-open-to-world", "ssh-not-open-to-world"]);
        const all = await violations(SECURITY_GROUP_RULE, ingress("-1/-1", "0.0.0.0/0", { ipProtocol: "all" }));
        expect(all.some((v) => v.startsWith("ssh-not-open-to-world"))).toBe(true);
    });

    it("allows SSH from a specific network, egress rules and drop rules", async () => {
        expect(await violations(SECURITY_GROUP_RULE, ingress("22/22", "203.0.113.0/24"))).toEqual([]);
        expect(await violations(SECURITY_GROUP_RULE, ingress("22/22", "0.0.0.0/0", { type: "egress" }))).toEqual([]);
        expect(await violations(SECURITY_GROUP_RULE, ingress("22/22", "0.0.0.0/0", { policy: "drop" }))).toEqual([]);
    });

    it("rejects any other port, or a range spanning 80-443, from anywhere", async () => {
        expect(await violations(SECURITY_GROUP_RULE, ingress("5001/5001"))).toEqual([
            "only-web-ports-open-to-world: ingress tcp 5001/5001 from 0.0.0.0/0 opens ports other than 80/443 to the " +
            "internet; only single-port rules for 80 or 443 may use 0.0.0.0/0",
        ]);
        const span = await violations(SECURITY_GROUP_RULE, ingress("80/443"));
        expect(span.map((v) => v.split(":")[0])).toEqual(["only-web-ports-open-to-world"]);
        const udp = await violations(SECURITY_GROUP_RULE, ingress("53/53", "0.0.0.0/0", { ipProtocol: "udp" }));
        expect(udp.map((v) => v.split(":")[0])).toEqual(["only-web-ports-open-to-world"]);
    });

    it("leaves ICMP from anywhere alone (no ports)", async () => {
        expect(await violations(SECURITY_GROUP_RULE, ingress("-1/-1", "0.0.0.0/0", { ipProtocol: "icmp" }))).toEqual([]);
    });

    it("reports a range it cannot parse instead of passing it", async () => {
        const found = await violations(SECURITY_GROUP_RULE, ingress("22-22"));
        expect(found.some((v) => v.includes('portRange "22-22" cannot be parsed'))).toBe(true);
    });
});

describe("ECS instance", () => {
    const instance = (instanceType: string, tags: Record<string, string> = { "dify-version": "1.8.0" }) =>
        ({ instanceType, imageId: "ubuntu_22_04", tags });

    it("sizes instance types from their names", () => {
        expect(instanceTypeSize("ecs.c7.large")).toEqual({ vcpu: 2, memoryGib: 4 });
        expect(instanceTypeSize("ecs.g7.2xlarge")).toEqual({ vcpu: 8, memoryGib: 32 });
        expect(instanceTypeSize("ecs.u1-c1m2.large")).toEqual({ vcpu: 2, memoryGib: 4 });
        expect(instanceTypeSize("ecs.t6-c1m1.large")).toEqual({ vcpu: 2, memoryGib: 2 });
        expect(instanceTypeSize("ecs.t5-lc1m2.small")).toEqual({ vcpu: 1, memoryGib: 2 });
        expect(instanceTypeSize("ecs.e-c1m4.xlarge")).toEqual({ vcpu: 4, memoryGib: 16 });
        expect(instanceTypeSize("ecs.made-up.large")).toBeUndefined();
        expect(instanceTypeSize("ecs.zz9.large")).toBeUndefined();
    });

    it("accepts 2 vCPU / 4 GiB and more", async () => {
        expect(await violations(ECS_INSTANCE, instance("ecs.c7.large"))).toEqual([]);
        expect(await violations(ECS_INSTANCE, instance("ecs.u1-c1m2.xlarge"))).toEqual([]);
    });

    it("rejects instances below 2 vCPU or 4 GiB with their size in the message", async () => {
        expect(await violations(ECS_INSTANCE, instance("ecs.t6-c1m1.large"))).toEqual([
            "instance-minimum-size: instance type ecs.t6-c1m1.large has 2 vCPU and 2 GiB; Dify needs at least 2 vCPU and 4 GiB",
        ]);
        const small = await violations(ECS_INSTANCE, instance("ecs.t5-lc1m4.small"));
        expect(small).toEqual([
            "instance-minimum-size: instance type ecs.t5-lc1m4.small has 1 vCPU and 4 GiB; Dify needs at least 2 vCPU and 4 GiB",
        ]);
    });

    it("uses cpu-cores / memory-gib tags for types outside the table, and rejects unknown untagged types", async () => {
        const tagged = instance("ecs.zz9.large", { "dify-version": "1.9.0", "cpu-cores": "2", "memory-gib": "8" });
        expect(await violations(ECS_INSTANCE, tagged)).toEqual([]);
        const tooSmall = instance("ecs.zz9.large", { "dify-version": "1.9.0", "cpu-cores": "2", "memory-gib": "2" });
        expect((await violations(ECS_INSTANCE, tooSmall))[0]).toMatch(/^instance-minimum-size: .*has 2 vCPU and 2 GiB/);
        const unknown = await violations(ECS_INSTANCE, instance("ecs.zz9.large"));
        expect(unknown).toHaveLength(1);
        expect(unknown[0]).toMatch(/^instance-minimum-size: instance type ecs.zz9.large is not in the policy's size table/);
    });

    it("checks the dify-version tag", async () => {
        expect(await violations(ECS_INSTANCE, instance("ecs.c7.large", { "dify-version": "1.10.1-fix.1" }))).toEqual([]);
        expect(await violations(ECS_INSTANCE, instance("ecs.c7.large", { "dify-version": "1.7.2" }))).toEqual([
            "dify-version-minimum: Dify 1.7.2 is older than 1.8.0, the first release this stack supports (MCP tools need it)",
        ]);
        const latest = await violations(ECS_INSTANCE, instance("ecs.c7.large", { "dify-version": "latest" }));
        expect(latest[0]).toMatch(/^dify-version-minimum: tag dify-version="latest" is not a release number/);
        const missing = await violations(ECS_INSTANCE, instance("ecs.c7.large", {}));
        expect(missing).toEqual([
            'dify-version-minimum: the instance has no "dify-version" tag; the Dify bootstrap sets it to the pinned Dify release',
        ]);
    });

    it("orders Dify versions numerically, with pre-releases before and fix tags after the release", () => {
        expect(difyVersionAtLeast("1.10.0", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.8.0", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("v1.8.1", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.8.0-rc1", "1.8.0")).toBe(false);
        expect(difyVersionAtLeast("1.8.0-fix.1", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.7.99", "1.8.0")).toBe(false);
        expect(difyVersionAtLeast("0.15.3", "1.8.0")).toBe(false);
    });
});

describe("RAM OAuth app (dynamic resource)", () => {
    const app = (props: Record<string, unknown>) => ({
        __provider: "exports.handler = ...",
        appName: "dify-mcp",
        appType: "WebApp",
        protocolVersion: "2.1",
        scopes: ["openid", "/acs/mcp-server"],
        ...props,
    });

    it("accepts OAuth 2.1 with the MCP scope", async () => {
        expect(await violations(DYNAMIC_RESOURCE, app({}))).toEqual([]);
    });

    it("rejects another protocol version or a missing MCP scope, naming both fields", async () => {
        expect(await violations(DYNAMIC_RESOURCE, app({ protocolVersion: "2.0", scopes: ["openid"] }))).toEqual([
            'oauth-app-mcp-ready: protocolVersion is "2.0", must be "2.1" (OAuth 2.1); ' +
            'scopes [openid] must include "/acs/mcp-server"',
        ]);
    });

    it("checks the app registered under the project's own type name", async () => {
        const type = "pulumi-nodejs:dynamic/alibaba:RamOAuthApplication";
        expect(await violations(type, app({}))).toEqual([]);
        expect(await violations(type, app({ scopes: ["openid"] }))).toHaveLength(1);
    });

    it("ignores other dynamic resources", async () => {
        expect(await violations(DYNAMIC_RESOURCE, { __provider: "x", difyUrl: "http://127.0.0.1", scopes: [] })).toEqual([]);
    });
});

describe("OSS buckets", () => {
    it("rejects public ACLs on buckets and bucket ACL resources, accepts private", async () => {
        expect(await violations(OSS_BUCKET, { bucket: "b", acl: "public-read" })).toEqual([
            'no-public-bucket: acl "public-read" makes the bucket readable by anyone; use "private" and signed URLs',
        ]);
        expect(await violations(OSS_BUCKET_ACL, { bucket: "b", acl: "public-read-write" })).toHaveLength(1);
        expect(await violations(OSS_BUCKET, { bucket: "b", acl: "private" })).toEqual([]);
        expect(await violations(OSS_BUCKET, { bucket: "b" })).toEqual([]);
    });
});
