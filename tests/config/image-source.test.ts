// imageSource, registryMirrors and acrInstanceId: the defaults per region and every combination preview refuses.
import { describe, expect, it } from "vitest";
import { CONFIG_NAMESPACE, StackConfigError, isMainlandChinaRegion, parseStackSettings } from "../../config/stack-config";
import { ACR_INSTANCE_ID_PATTERN, DEFAULT_REGISTRY_MIRRORS, acrVpcRegistryHost } from "../../rules/image-source";

function source(values: Record<string, unknown>) {
    return {
        get: (key: string) => {
            const value = values[key];
            return value === undefined ? undefined : typeof value === "string" ? value : JSON.stringify(value);
        },
    };
}

function parse(values: Record<string, unknown>, region = "cn-hangzhou") {
    return parseStackSettings(source(values), { stack: "dev", region }).settings;
}

function problemsOf(values: Record<string, unknown>, region = "cn-hangzhou"): string[] {
    try {
        parseStackSettings(source(values), { stack: "dev", region });
    } catch (error) {
        expect(error).toBeInstanceOf(StackConfigError);
        return (error as StackConfigError).problems;
    }
    throw new Error("expected the configuration to be rejected");
}

const key = (name: string) => `${CONFIG_NAMESPACE}:${name}`;

describe("imageSource defaults", () => {
    it.each(["cn-hangzhou", "cn-beijing", "cn-shanghai", "cn-shenzhen", "cn-wulanchabu", "cn-shanghai-finance-1"])(
        "%s (mainland China): registry-mirror through https://mirrors-ssl.aliyuncs.com/",
        (region) => {
            const settings = parse({}, region);
            expect(settings.imageSource).toBe("registry-mirror");
            expect(settings.registryMirrors).toEqual(["https://mirrors-ssl.aliyuncs.com/"]);
            expect(settings.acrInstanceId).toBeUndefined();
        },
    );

    it.each(["cn-hongkong", "ap-southeast-1", "us-west-1", "eu-central-1", "ap-northeast-1"])("%s: Docker Hub, no mirrors", (region) => {
        const settings = parse({}, region);
        expect(settings.imageSource).toBe("docker-hub");
        expect(settings.registryMirrors).toEqual([]);
    });

    it("is registry-mirror with the given mirrors whenever registryMirrors is set, in any region", () => {
        for (const region of ["cn-hangzhou", "ap-southeast-1"]) {
            const settings = parse({ registryMirrors: ["https://a.mirror.aliyuncs.com"] }, region);
            expect(settings.imageSource).toBe("registry-mirror");
            expect(settings.registryMirrors).toEqual(["https://a.mirror.aliyuncs.com"]);
        }
    });

    it("counts an empty registryMirrors (Pulumi.yaml's declared default) as unset", () => {
        expect(parse({ registryMirrors: [] }).registryMirrors).toEqual([...DEFAULT_REGISTRY_MIRRORS]);
        expect(parse({ registryMirrors: [] }, "ap-southeast-1").imageSource).toBe("docker-hub");
        expect(parse({ imageSource: "", acrInstanceId: "" }, "ap-southeast-1").imageSource).toBe("docker-hub");
    });

    it("takes an explicit choice in every region", () => {
        expect(parse({ imageSource: "docker-hub" })).toMatchObject({ imageSource: "docker-hub", registryMirrors: [] });
        expect(parse({ imageSource: "registry-mirror" }, "ap-southeast-1")).toMatchObject({
            imageSource: "registry-mirror",
            registryMirrors: ["https://mirrors-ssl.aliyuncs.com/"],
        });
        expect(parse({ imageSource: "acr", acrInstanceId: "cri-abc123xyz" }, "ap-southeast-1")).toMatchObject({
            imageSource: "acr",
            acrInstanceId: "cri-abc123xyz",
            registryMirrors: [],
        });
    });

    it("knows mainland China as cn-* without cn-hongkong", () => {
        expect(isMainlandChinaRegion("cn-hangzhou")).toBe(true);
        expect(isMainlandChinaRegion("cn-hongkong")).toBe(false);
        expect(isMainlandChinaRegion("ap-southeast-1")).toBe(false);
    });
});

describe("imageSource problems at preview", () => {
    it("refuses an unknown source, naming the three", () => {
        expect(problemsOf({ imageSource: "dockerhub" })).toEqual([`${key("imageSource")} is "dockerhub"; allowed: docker-hub, registry-mirror, acr`]);
    });

    it("refuses registry mirrors with docker-hub, naming both settings", () => {
        const [problem] = problemsOf({ imageSource: "docker-hub", registryMirrors: ["https://a.mirror.aliyuncs.com"] });
        expect(problem).toBe(
            `${key("registryMirrors")} is set but ${key("imageSource")} is docker-hub, which pulls from Docker Hub directly; allowed: registryMirrors unset, or imageSource registry-mirror`,
        );
    });

    it("refuses registry mirrors with acr", () => {
        const problems = problemsOf({ imageSource: "acr", acrInstanceId: "cri-abc123", registryMirrors: ["https://a.mirror.aliyuncs.com"] });
        expect(problems).toEqual([
            `${key("registryMirrors")} is set but ${key("imageSource")} is acr, which pulls the images from the ACR instance; allowed: registryMirrors unset, or imageSource registry-mirror`,
        ]);
    });

    it("requires acrInstanceId with acr, and says the stack does not buy an instance", () => {
        const [problem] = problemsOf({ imageSource: "acr" });
        expect(problem).toContain(`${key("acrInstanceId")} is not set but ${key("imageSource")} is acr; allowed: the id of an existing Container Registry Enterprise Edition instance`);
        expect(problem).toContain("the stack does not buy one: Enterprise Edition is prepaid only");
    });

    it.each(["cri-ABC123", "cri_abc", "abc123", "cri-", "cri-abc 1", "cri-abc;reboot", "crpi-abc123"])("refuses the instance id %j", (id) => {
        const [problem] = problemsOf({ imageSource: "acr", acrInstanceId: id });
        expect(problem).toBe(`${key("acrInstanceId")} is ${JSON.stringify(id)}; allowed: the id of an existing Container Registry Enterprise Edition instance in the stack's region, "cri-" and lowercase letters and digits, such as cri-a1b2c3d4e5f6g7h8`);
    });

    it("refuses acrInstanceId without acr", () => {
        expect(problemsOf({ acrInstanceId: "cri-abc123" })).toEqual([`${key("acrInstanceId")} is set but ${key("imageSource")} is registry-mirror; allowed: unset, or imageSource acr`]);
    });

    it("refuses acr for a Dify version whose images are not listed, naming the versions that are", () => {
        const problems = problemsOf({ imageSource: "acr", acrInstanceId: "cri-abc123", difyVersion: "1.13.0", allowUnpinnedDifyVersion: "true" });
        expect(problems).toEqual([
            `${key("difyVersion")} is "1.13.0", whose images the stack does not list, and ${key("imageSource")} is acr, which copies exactly those images; allowed with acr: 1.8.0, 1.14.1 (rules/dify-images.ts), or imageSource registry-mirror or docker-hub`,
        ]);
        // Without acr any release 1.8.0 or later is fine; below 1.8.0 only the version problem is reported.
        expect(parse({ difyVersion: "1.13.0", allowUnpinnedDifyVersion: "true" }).difyVersion).toBe("1.13.0");
        expect(problemsOf({ imageSource: "acr", acrInstanceId: "cri-abc123", difyVersion: "1.7.0" })).toHaveLength(1);
        expect(parse({ imageSource: "acr", acrInstanceId: "cri-abc123", difyVersion: "1.8.0" }).difyVersion).toBe("1.8.0");
    });
});

describe("the ACR names", () => {
    it("builds the registry's VPC endpoint from the instance name and the region", () => {
        expect(acrVpcRegistryHost("dify", "cn-hangzhou")).toBe("dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com");
        expect(ACR_INSTANCE_ID_PATTERN.test("cri-0a1b2c3d4e5f")).toBe(true);
    });
});
