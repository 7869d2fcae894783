import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import {
    CONFIG_DEFAULTS,
    CONFIG_NAMESPACE,
    StackConfigError,
    difyPublicUrl,
    parseStackSettings,
} from "../../config/stack-config";
import { parse } from "./parse-settings";
import { instanceTypeSizeFromName } from "../../rules/instance-size";

const root = path.resolve(__dirname, "..", "..");


/** The preset-OAuth-client warnings for a Dify version (unpinned versions parse with allowUnpinnedDifyVersion). */
function presetClientWarnings(difyVersion: string): string[] {
    return parse({ difyVersion, allowUnpinnedDifyVersion: "true" }).warnings.filter((warning) => /preset OAuth client/.test(warning));
}

function problemsOf(values: Record<string, unknown>, region?: string): string[] {
    try {
        parse(values, region);
    } catch (error) {
        expect(error).toBeInstanceOf(StackConfigError);
        return (error as StackConfigError).problems;
    }
    throw new Error("expected the configuration to be rejected");
}

describe("stack settings", () => {
    it("accepts an empty config with the documented defaults", () => {
        const { settings, warnings } = parse({});
        expect(warnings).toEqual([]);
        expect(settings.difyVersion).toBe("1.14.1");
        expect(settings.allowedCidrs).toEqual(["0.0.0.0/0"]);
        expect(settings.adminCidr).toBeUndefined();
        expect(settings.systemDiskSize).toBeGreaterThanOrEqual(40);
        expect(settings.systemDiskCategory).toBe("cloud_essd");
        expect(settings.instanceChargeType).toBe("PostPaid");
        expect(settings.namePrefix).toBe("dify-dev");
        // Mainland regions get a PyPI mirror for Dify's plugin installs.
        expect(settings.pipMirrorUrl).toBe("https://mirrors.aliyun.com/pypi/simple");
        expect(parse({}, "ap-southeast-1").settings.pipMirrorUrl).toBeUndefined();
    });

    it("keeps the data by default: encrypted, protected, snapshotted daily for 7 days; metadata with tokens only", () => {
        const { settings } = parse({});
        expect(settings).toMatchObject({
            encryptDataDisk: true,
            protectDataDisk: true,
            dataDiskSnapshotRetentionDays: 7,
            requireMetadataTokens: true,
        });
        expect(settings.dataDiskKmsKeyId).toBeUndefined();
        const off = parse({ encryptDataDisk: "false", protectDataDisk: "false", dataDiskSnapshotRetentionDays: "0", requireMetadataTokens: "false" }).settings;
        expect(off).toMatchObject({ encryptDataDisk: false, protectDataDisk: false, dataDiskSnapshotRetentionDays: 0, requireMetadataTokens: false });
    });

    it("takes a KMS key id for the data disk, only with encryption", () => {
        expect(parse({ dataDiskKmsKeyId: "key-hzz62f1cb66fa42qo9abc" }).settings.dataDiskKmsKeyId).toBe("key-hzz62f1cb66fa42qo9abc");
        expect(parse({ dataDiskKmsKeyId: "0e478b7a-4262-4802-b8cb-00d3fb408e2b" }).settings.dataDiskKmsKeyId).toBe("0e478b7a-4262-4802-b8cb-00d3fb408e2b");
        expect(problemsOf({ dataDiskKmsKeyId: "alias/acs/ecs" })[0]).toContain(`${CONFIG_NAMESPACE}:dataDiskKmsKeyId is "alias/acs/ecs"; allowed: a KMS key id`);
        expect(problemsOf({ dataDiskKmsKeyId: "key-hzz62f1cb66fa42qo9abc", encryptDataDisk: "false" })[0]).toContain("is set but encryptDataDisk is false");
        expect(problemsOf({ encryptDataDisk: "yes" })[0]).toContain(`${CONFIG_NAMESPACE}:encryptDataDisk is "yes"; allowed: true, false`);
    });

    it("rejects an instance smaller than 2 vCPU / 4 GiB, naming the key", () => {
        const [problem] = problemsOf({ instanceType: "ecs.c7.medium" }).concat(problemsOf({ instanceType: "ecs.u1-c1m1.large" }));
        expect(problem).toContain(`${CONFIG_NAMESPACE}:instanceType`);
        expect(problem).toMatch(/at least 2 vCPU and 4 GiB/);
        expect(problemsOf({ instanceType: "ecs.u1-c1m1.large" })[0]).toContain("2 vCPU, 2 GiB");
        expect(parse({ instanceType: "ecs.g7.xlarge" }).settings.instanceType).toBe("ecs.g7.xlarge");
    });

    it("rejects a Dify tag below 1.8.0 and warns for 1.8-1.9", () => {
        expect(problemsOf({ difyVersion: "1.7.2" })[0]).toMatch(/difyVersion is "1\.7\.2"; allowed: 1\.8\.0 or later/);
        expect(problemsOf({ difyVersion: "v1.9.0" })[0]).toContain("without \"v\"");
        expect(presetClientWarnings("1.9.2")).toHaveLength(1);
        expect(presetClientWarnings("1.10.1-fix.1")).toEqual([]);
        expect(parse({ difyVersion: "1.8.0" }).warnings[0]).toMatch(/preset OAuth client/);
    });

    it("refuses a Dify version without a pinned digest, naming the setting, the pinned versions and the opt-out", () => {
        expect(problemsOf({ difyVersion: "1.13.0" })).toEqual([
            `${CONFIG_NAMESPACE}:difyVersion is "1.13.0", which the stack has no pinned digest for, so the bootstrap could not verify the release it fetches; allowed: 1.8.0, 1.14.1 (rules/dify-releases.ts), or set ${CONFIG_NAMESPACE}:allowUnpinnedDifyVersion to true to deploy it unverified`,
        ]);
        // Pinned releases need no opt-out, and the default is off.
        expect(parse({ difyVersion: "1.8.0" }).settings.allowUnpinnedDifyVersion).toBe(false);
        expect(parse({}).settings.allowUnpinnedDifyVersion).toBe(false);
        expect(problemsOf({ difyVersion: "1.13.0", allowUnpinnedDifyVersion: "yes" })).toContain(`${CONFIG_NAMESPACE}:allowUnpinnedDifyVersion is "yes"; allowed: true, false`);
    });

    it("with allowUnpinnedDifyVersion, accepts an unpinned version and warns once that it will not be verified", () => {
        const { settings, warnings } = parse({ difyVersion: "1.13.0", allowUnpinnedDifyVersion: "true" });
        expect(settings).toMatchObject({ difyVersion: "1.13.0", allowUnpinnedDifyVersion: true });
        expect(warnings).toEqual([
            `${CONFIG_NAMESPACE}:difyVersion is 1.13.0, which the stack has no pinned digest for (pinned: 1.8.0, 1.14.1); with ${CONFIG_NAMESPACE}:allowUnpinnedDifyVersion the bootstrap runs the release it fetches from GitHub, Gitee or the tarball without verifying it.`,
        ]);
        // The opt-out changes nothing for a pinned version.
        expect(parse({ difyVersion: "1.14.1", allowUnpinnedDifyVersion: "true" }).warnings).toEqual([]);
    });

    it("rejects malformed CIDRs and SSH open to the world", () => {
        expect(problemsOf({ allowedCidrs: ["10.0.0.0/33"] })[0]).toContain(`${CONFIG_NAMESPACE}:allowedCidrs contains "10.0.0.0/33"`);
        expect(problemsOf({ adminCidr: "300.1.1.1/32" })[0]).toContain(`${CONFIG_NAMESPACE}:adminCidr`);
        expect(problemsOf({ adminCidr: "0.0.0.0/0" })[0]).toMatch(/opens SSH to the whole internet/);
        expect(problemsOf({ vpcCidr: "172.16.0.0" })[0]).toContain(`${CONFIG_NAMESPACE}:vpcCidr`);
    });

    it("rejects an unknown region format and a missing region", () => {
        expect(problemsOf({}, "Hangzhou")[0]).toMatch(/alicloud:region is "Hangzhou"; allowed: an Alibaba Cloud region id/);
        expect(problemsOf({}, "")[0]).toMatch(/alicloud:region is not set/);
        expect(parse({}, "cn-shanghai-finance-1").settings.region).toBe("cn-shanghai-finance-1");
    });

    it("requires an e-mail for certificates when a domain is set, and none without", () => {
        expect(problemsOf({ domain: "dify.example.com" })[0]).toContain(`${CONFIG_NAMESPACE}:certEmail is not set but domain is`);
        const { settings } = parse({ domain: "Dify.Example.com", certEmail: "ops@example.com" });
        expect(settings.domain).toBe("dify.example.com");
        // The EIP's IP certificate: certbot registers without an address, or with certEmail when it is given.
        expect(parse({}).settings.certEmail).toBeUndefined();
        expect(parse({ certEmail: "ops@example.com" }).settings.certEmail).toBe("ops@example.com");
    });

    it("serves HTTPS by default, on the domain or the EIP, and plain HTTP only as an opt-out that warns", () => {
        const https = parse({});
        expect(https.settings.plainHttp).toBe(false);
        expect(difyPublicUrl("203.0.113.9", https.settings)).toBe("https://203.0.113.9");
        expect(difyPublicUrl("203.0.113.9", parse({ domain: "dify.example.com", certEmail: "ops@example.com" }).settings)).toBe("https://dify.example.com");

        const plain = parse({ plainHttp: "true" });
        expect(plain.settings.plainHttp).toBe(true);
        expect(difyPublicUrl("203.0.113.9", plain.settings)).toBe("http://203.0.113.9");
        // One warning, naming what crosses the network in clear text.
        expect(plain.warnings).toHaveLength(1);
        expect(plain.warnings[0]).toContain(`${CONFIG_NAMESPACE}:plainHttp is true`);
        for (const exposed of ["INIT_PASSWORD", "admin password at every sign-in", "session cookies", "DashScope API key", "OAuth authorization code"]) {
            expect(plain.warnings[0]).toContain(exposed);
        }
        expect(problemsOf({ plainHttp: "true", domain: "dify.example.com", certEmail: "ops@example.com" })).toEqual([
            `${CONFIG_NAMESPACE}:plainHttp is true but ${CONFIG_NAMESPACE}:domain is set, and a domain is always served over HTTPS; allowed: plainHttp false (the default), or no domain`,
        ]);
        expect(problemsOf({ plainHttp: "yes" })[0]).toBe(`${CONFIG_NAMESPACE}:plainHttp is "yes"; allowed: true, false`);
    });

    it("warns that Let's Encrypt cannot validate through narrowed allowedCidrs, unless plain HTTP", () => {
        const narrowed = parse({ allowedCidrs: ["203.0.113.0/24"] }).warnings;
        expect(narrowed).toHaveLength(1);
        expect(narrowed[0]).toContain(`${CONFIG_NAMESPACE}:allowedCidrs does not include 0.0.0.0/0`);
        expect(narrowed[0]).toContain("/.well-known/acme-challenge/");
        expect(parse({ allowedCidrs: ["203.0.113.0/24"], plainHttp: "true" }).warnings.filter((w) => w.includes("allowedCidrs"))).toEqual([]);
    });

    it("lists every problem at once, each with the allowed values", () => {
        const problems = problemsOf({ systemDiskSize: "20", instanceChargeType: "Spot", systemDiskCategory: "ssd" });
        expect(problems).toHaveLength(3);
        expect(problems.join("\n")).toContain("allowed: a whole number from 40 to 500");
        expect(problems.join("\n")).toContain("allowed: PostPaid, PrePaid");
        expect(problems.join("\n")).toContain("allowed: cloud_essd, cloud_auto");
    });

    it("parses tags given as key=value strings", () => {
        expect(parse({ tags: ["team=platform", "cost=a=b"] }).settings.tags).toEqual({ team: "platform", cost: "a=b" });
        expect(problemsOf({ tags: ["novalue"] })[0]).toContain('"key=value"');
    });

    it("keeps Pulumi.yaml's declared defaults equal to the code's", () => {
        const project = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as {
            config: Record<string, { default?: unknown }>;
        };
        for (const [key, value] of Object.entries(CONFIG_DEFAULTS)) {
            const declared = project.config[`${CONFIG_NAMESPACE}:${key}`];
            expect(declared, `Pulumi.yaml declares ${key}`).toBeDefined();
            expect(declared.default, `default of ${key}`).toEqual(value);
        }
    });

    it("accepts the example dev stack", () => {
        const stack = yaml.load(fs.readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
        const values: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(stack.config)) {
            if (key.startsWith(`${CONFIG_NAMESPACE}:`)) {
                values[key.slice(CONFIG_NAMESPACE.length + 1)] = value;
            }
        }
        const { settings } = parse(values, stack.config["alicloud:region"] as string);
        expect(settings.region).toBe("cn-hangzhou");
    });
});

describe("helpers", () => {
    it("reads sizes from instance type names", () => {
        expect(instanceTypeSizeFromName("ecs.c7.large")).toEqual({ vcpus: 2, memoryGib: 4 });
        expect(instanceTypeSizeFromName("ecs.g8i.2xlarge")).toEqual({ vcpus: 8, memoryGib: 32 });
        expect(instanceTypeSizeFromName("ecs.u1-c1m2.large")).toEqual({ vcpus: 2, memoryGib: 4 });
        expect(instanceTypeSizeFromName("ecs.hfc7.large")).toBeUndefined();
    });

    it("orders release tags numerically, a hotfix tag after its release", () => {
        expect(presetClientWarnings("1.10.0")).toEqual([]);
        expect(presetClientWarnings("1.9.10")).toHaveLength(1);
        expect(presetClientWarnings("1.8.0-fix.1")).toHaveLength(1);
    });
});
