import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { CONFIG_NAMESPACE, StackConfigError, parseStackSettings } from "../../config/stack-config";
import { parse } from "./parse-settings";

const k = (name: string) => `${CONFIG_NAMESPACE}:${name}`;


function problemsOf(values: Record<string, unknown>, region?: string): string[] {
    try {
        parse(values, region);
    } catch (error) {
        expect(error).toBeInstanceOf(StackConfigError);
        return (error as StackConfigError).problems;
    }
    throw new Error("expected the configuration to be rejected");
}

/** The smallest accepted ha stack. */
const HA = { topology: "ha", domain: "dify.example.com", certificateId: "12345-cn-hangzhou" };
/** What every ha stack without dnsZone is told at preview. */
const CREATE_CNAME_WARNING = expect.stringContaining(`${k("dnsZone")} is not set, so the stack does not create the DNS record for dify.example.com`);

/** The ha-only settings, each set to a value other than its default. */
const HA_ONLY_VALUES: Record<string, unknown> = {
    certificateId: "12345-cn-hangzhou",
    haZoneIds: ["cn-hangzhou-h", "cn-hangzhou-i"],
    haAppNodeCount: "3",
    rdsInstanceClass: "pg.n4.2c.2m",
    rdsStorageGb: "100",
    rdsEngineVersion: "17.0",
    rdsBackupRetentionDays: "30",
    redisInstanceClass: "redis.shard.mid.2.ce",
    redisEngineVersion: "6.0",
    dnsZone: "example.com",
};

/** What pulumi.Config.get returns for a key only Pulumi.yaml's declared default sets. */
const project = yaml.load(fs.readFileSync(path.resolve(__dirname, "../../Pulumi.yaml"), "utf8")) as {
    config: Record<string, { default?: unknown }>;
};
function declaredDefaults(): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const [key, declared] of Object.entries(project.config)) {
        if ("default" in declared) {
            values[key.slice(CONFIG_NAMESPACE.length + 1)] = declared.default;
        }
    }
    return values;
}

describe("topology ha: defaults", () => {
    it("fills every ha setting with its documented default", () => {
        const { settings, warnings } = parse(HA);
        expect(warnings).toEqual([CREATE_CNAME_WARNING]);
        expect(settings.topology).toBe("ha");
        expect(settings.ha).toEqual({
            certificateId: "12345-cn-hangzhou",
            zoneIds: undefined,
            appNodeCount: 2,
            rdsInstanceClass: "pg.n2.2c.2m",
            rdsStorageGb: 50,
            rdsEngineVersion: "16.0",
            rdsBackupRetentionDays: 7,
            redisInstanceClass: "redis.shard.small.2.ce",
            redisEngineVersion: "7.0",
            dnsZone: undefined,
        });
        // No Let's Encrypt: certEmail is not required, and a restricted allowedCidrs draws no warning about it.
        expect(parse({ ...HA, allowedCidrs: ["203.0.113.0/24"] }).warnings).toEqual([CREATE_CNAME_WARNING]);
    });

    it("tells at preview that the CNAME is the user's to create unless dnsZone lets the stack create it", () => {
        expect(parse(HA).warnings[0]).toContain("create a CNAME dify.example.com → the ALB's DNS name");
        expect(parse({ ...HA, dnsZone: "example.com" }).warnings).toEqual([]);
    });

    it("reads Pulumi.yaml's declared defaults as unset", () => {
        expect(parse({ ...declaredDefaults(), ...HA })).toEqual(parse(HA));
    });

    it("takes every ha setting", () => {
        const { settings } = parse({ ...HA, ...HA_ONLY_VALUES });
        expect(settings.ha).toEqual({
            certificateId: "12345-cn-hangzhou",
            zoneIds: ["cn-hangzhou-h", "cn-hangzhou-i"],
            appNodeCount: 3,
            rdsInstanceClass: "pg.n4.2c.2m",
            rdsStorageGb: 100,
            rdsEngineVersion: "17.0",
            rdsBackupRetentionDays: 30,
            redisInstanceClass: "redis.shard.mid.2.ce",
            redisEngineVersion: "6.0",
            dnsZone: "example.com",
        });
        // International regions name zones with the letter right after the region's number.
        expect(parse({ ...HA, haZoneIds: ["ap-southeast-1a", "ap-southeast-1b"] }, "ap-southeast-1").settings.ha?.zoneIds).toEqual([
            "ap-southeast-1a",
            "ap-southeast-1b",
        ]);
        // An unquoted YAML number is a major version too.
        expect(parse({ ...HA, rdsEngineVersion: "15", redisEngineVersion: "5" }).settings.ha).toMatchObject({ rdsEngineVersion: "15.0", redisEngineVersion: "5.0" });
    });

    it("ignores single's zoneId and certEmail, with a warning for each", () => {
        const { settings, warnings } = parse({ ...HA, zoneId: "cn-hangzhou-h", certEmail: "ops@example.com" });
        expect(settings.zoneId).toBeUndefined();
        expect(settings.certEmail).toBeUndefined();
        expect(warnings).toEqual([
            CREATE_CNAME_WARNING,
            expect.stringContaining(`${k("zoneId")} is set but ${k("topology")} is ha, which ignores it: the nodes, the ALB and the databases go in the two zones of ${k("haZoneIds")}`),
            expect.stringContaining(`${k("certEmail")} is set but ${k("topology")} is ha, which ignores it: the ALB serves the certificate ${k("certificateId")}`),
        ]);
    });
});

describe("topology ha: refusals name the setting and what is allowed", () => {
    it("accepts only single or ha", () => {
        expect(problemsOf({ topology: "cluster" })).toEqual([`${k("topology")} is "cluster"; allowed: single, ha`]);
    });

    it("needs domain and certificateId", () => {
        const problems = problemsOf({ topology: "ha" });
        expect(problems).toContain(`${k("domain")} is not set but ${k("topology")} is ha; allowed: the DNS name Dify is served on, such as dify.example.com, which the certificate certificateId covers`);
        expect(problems).toContainEqual(
            expect.stringContaining(`${k("certificateId")} is not set but ${k("topology")} is ha, whose ALB serves HTTPS for domain with it; allowed: the Certificate Management Service certificate id`),
        );
        expect(problems).toHaveLength(2);
    });

    it("checks the certificate id's form", () => {
        for (const bad of ["12345", "cas-12345-cn-hangzhou", "12345-CN-HANGZHOU", "12345_cn-hangzhou", "12345-cn-hangzhou;x"]) {
            expect(problemsOf({ ...HA, certificateId: bad })).toEqual([
                `${k("certificateId")} is ${JSON.stringify(bad)}; allowed: the Certificate Management Service certificate id as ALB listeners take it: the certificate's numeric id, "-" and the region of the certificate service, e.g. 12345-cn-hangzhou (China site) or 12345-ap-southeast-1 (international site)`,
            ]);
        }
        expect(parse({ ...HA, certificateId: "9876543-ap-southeast-1" }).settings.ha?.certificateId).toBe("9876543-ap-southeast-1");
    });

    it("refuses plainHttp: the ALB terminates HTTPS", () => {
        expect(problemsOf({ ...HA, plainHttp: "true" })).toEqual([
            `${k("plainHttp")} is true but ${k("topology")} is ha, where the ALB terminates HTTPS on 443 with certificateId (port 80 only redirects to https), and the app nodes have no public address to serve plain HTTP on; allowed with topology ha: false (the default)`,
        ]);
        expect(parse({ ...HA, plainHttp: "false" }).settings.plainHttp).toBe(false);
    });

    it("refuses adminCidr: app nodes have no public address", () => {
        expect(problemsOf({ ...HA, adminCidr: "203.0.113.7/32" })).toEqual([
            `${k("adminCidr")} is set but ${k("topology")} is ha, whose app nodes have no public address (only the ALB is reachable from the internet), so there is nothing for SSH from 203.0.113.7/32 to reach; allowed with topology ha: unset`,
        ]);
    });

    it("checks haZoneIds: two distinct zones of the region", () => {
        const rule = "allowed: two distinct zone ids of the region, such as cn-hangzhou-h and cn-hangzhou-i, or unset for the first two zones that offer the instance type";
        expect(problemsOf({ ...HA, haZoneIds: ["cn-hangzhou-h"] })).toEqual([`${k("haZoneIds")} has 1 zone (cn-hangzhou-h); ${rule}`]);
        expect(problemsOf({ ...HA, haZoneIds: ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"] })).toEqual([
            `${k("haZoneIds")} has 3 zones (cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j); ${rule}`,
        ]);
        expect(problemsOf({ ...HA, haZoneIds: ["cn-hangzhou-h", "cn-hangzhou-h"] })).toEqual([
            `${k("haZoneIds")} names "cn-hangzhou-h" twice, and one zone is no protection against its outage; ${rule}`,
        ]);
        expect(problemsOf({ ...HA, haZoneIds: ["cn-hangzhou-h", "cn-shanghai-b"] })).toEqual([
            `${k("haZoneIds")} contains "cn-shanghai-b", which is not a zone id of cn-hangzhou; ${rule}`,
        ]);
        expect(problemsOf({ ...HA, haZoneIds: ["cn-hangzhou", "cn-hangzhou-hh"] })[0]).toContain('contains "cn-hangzhou", which is not a zone id of cn-hangzhou');
        expect(problemsOf({ ...HA, haZoneIds: "cn-hangzhou-h" })).toEqual([`${k("haZoneIds")} must be a list of strings (YAML sequence)`]);
        // Pulumi.yaml's declared default, an empty list, is unset.
        expect(parse({ ...HA, haZoneIds: [] }).settings.ha?.zoneIds).toBeUndefined();
    });

    it("checks the sizes and counts against their ranges", () => {
        expect(problemsOf({ ...HA, haAppNodeCount: "1" })).toEqual([`${k("haAppNodeCount")} is "1"; allowed: a whole number from 2 to 20`]);
        expect(problemsOf({ ...HA, haAppNodeCount: "21" })).toEqual([`${k("haAppNodeCount")} is "21"; allowed: a whole number from 2 to 20`]);
        expect(problemsOf({ ...HA, rdsStorageGb: "10" })).toEqual([`${k("rdsStorageGb")} is "10"; allowed: a whole number from 20 to 32000`]);
        expect(problemsOf({ ...HA, rdsBackupRetentionDays: "3" })).toEqual([`${k("rdsBackupRetentionDays")} is "3"; allowed: a whole number from 7 to 730`]);
        expect(problemsOf({ ...HA, rdsBackupRetentionDays: "731" })).toEqual([`${k("rdsBackupRetentionDays")} is "731"; allowed: a whole number from 7 to 730`]);
    });

    it("checks the engine versions: PostgreSQL with pgvector, Redis 5.0 to 7.0", () => {
        expect(problemsOf({ ...HA, rdsEngineVersion: "13.0" })).toEqual([
            `${k("rdsEngineVersion")} is "13.0"; allowed: 14.0, 15.0, 16.0, 17.0 (the RDS PostgreSQL versions with pgvector, Dify's vector store)`,
        ]);
        expect(problemsOf({ ...HA, redisEngineVersion: "4.0" })).toEqual([`${k("redisEngineVersion")} is "4.0"; allowed: 5.0, 6.0, 7.0 (Redis Open-Source Edition major versions)`]);
    });

    it("checks the RDS and Redis classes, refusing a Basic Edition RDS class", () => {
        expect(problemsOf({ ...HA, rdsInstanceClass: "mysql.n2.medium.2c" })).toEqual([
            `${k("rdsInstanceClass")} is "mysql.n2.medium.2c"; allowed: the code of an ApsaraDB RDS for PostgreSQL High-availability Edition class the region sells, such as pg.n2.2c.2m (2 cores, 4 GB)`,
        ]);
        for (const basic of ["pg.n2.2c.1m", "pg.x8.medium.1"]) {
            expect(problemsOf({ ...HA, rdsInstanceClass: basic })).toEqual([
                `${k("rdsInstanceClass")} is "${basic}", a Basic Edition class (one node, no standby in the second zone: its code ends in .1 or .1m); allowed: the code of an ApsaraDB RDS for PostgreSQL High-availability Edition class the region sells, such as pg.n2.2c.2m (2 cores, 4 GB)`,
            ]);
        }
        expect(problemsOf({ ...HA, redisInstanceClass: "tair.rdb.1g" })).toEqual([
            `${k("redisInstanceClass")} is "tair.rdb.1g"; allowed: the code of a Redis Open-Source Edition class of Tair (Redis OSS-compatible), such as redis.shard.small.2.ce (cloud native, standard architecture, 1 GB)`,
        ]);
    });

    it("checks that dnsZone is a zone domain is a name inside", () => {
        const rule = "allowed: the Alibaba Cloud DNS zone that domain is a name inside, such as example.com for dify.example.com, or unset to create the record yourself";
        expect(parse({ ...HA, dnsZone: "Example.com" }).settings.ha?.dnsZone).toBe("example.com");
        expect(parse({ ...HA, domain: "dify.team.example.com", dnsZone: "team.example.com" }).settings.ha?.dnsZone).toBe("team.example.com");
        expect(problemsOf({ ...HA, dnsZone: "example.org" })).toEqual([`${k("dnsZone")} is "example.org", but domain "dify.example.com" is not a name inside it; ${rule}`]);
        // "ample.com" is a suffix of the text but not a parent zone.
        expect(problemsOf({ ...HA, dnsZone: "ample.com" })[0]).toContain('is "ample.com", but domain "dify.example.com" is not a name inside it');
        expect(problemsOf({ ...HA, dnsZone: "dify.example.com" })).toEqual([
            `${k("dnsZone")} is "dify.example.com", the same name as domain, and the stack's CNAME record cannot be at the zone's apex; ${rule}`,
        ]);
        expect(problemsOf({ ...HA, dnsZone: "example..com" })).toEqual([`${k("dnsZone")} is "example..com"; ${rule}`]);
    });

    it("collects every problem at once", () => {
        const problems = problemsOf({ topology: "ha", plainHttp: "true", adminCidr: "203.0.113.7/32", haAppNodeCount: "0", redisEngineVersion: "8.0" });
        expect(problems.map((problem) => problem.split(" ")[0])).toEqual([
            k("plainHttp"),
            k("domain"),
            k("certificateId"),
            k("adminCidr"),
            k("haAppNodeCount"),
            k("redisEngineVersion"),
        ]);
    });
});

describe("topology single", () => {
    it("is the default, with no ha settings", () => {
        const { settings, warnings } = parse({});
        expect(settings.topology).toBe("single");
        expect("ha" in settings).toBe(false);
        expect(warnings).toEqual([]);
        expect(parse({ topology: "single" })).toEqual(parse({}));
    });

    it("parses a stack to the same settings as before the setting existed, plus topology", () => {
        // The fields a single stack had before topology ha; a new one would change what existing stacks see.
        const before = [
            "region", "namePrefix", "zoneId", "instanceType", "instanceTypePreferences", "cpuArchitecture", "imageFamily", "imageId",
            "instanceChargeType", "systemDiskCategory", "systemDiskSize", "dataDiskCategory", "dataDiskSize", "dataDiskSnapshotRetentionDays",
            "protectDataDisk", "encryptDataDisk", "dataDiskKmsKeyId", "requireMetadataTokens", "eipBandwidthMbps", "vpcCidr", "vswitchCidr",
            "allowedCidrs", "adminCidr", "sshPublicKey", "difyVersion", "allowUnpinnedDifyVersion", "domain", "certEmail", "plainHttp",
            "imageSource", "acrInstanceId", "registryMirrors", "pipMirrorUrl", "readinessTimeoutMinutes", "tags",
        ];
        const single = { domain: "dify.example.com", certEmail: "ops@example.com", adminCidr: "203.0.113.7/32", zoneId: "cn-hangzhou-h" };
        const { settings } = parse(single);
        expect(Object.keys(settings).sort()).toEqual([...before, "topology"].sort());
        expect(settings).toMatchObject({ ...single, topology: "single" });
        // Single keeps its own rules: a domain needs certEmail, plainHttp is allowed (with its warning).
        expect(problemsOf({ domain: "dify.example.com" })[0]).toContain(`${k("certEmail")} is not set but domain is`);
        expect(parse({ plainHttp: "true" }).warnings).toEqual([expect.stringContaining(`${k("plainHttp")} is true`)]);
    });

    it("reads Pulumi.yaml's declared ha defaults without a warning", () => {
        expect(parse(declaredDefaults())).toEqual(parse({}));
    });

    it("warns that ha settings are ignored, naming them, and does not check them", () => {
        const { settings, warnings } = parse(HA_ONLY_VALUES);
        expect("ha" in settings).toBe(false);
        expect(warnings).toEqual([
            `${k("topology")} is single, so ${Object.keys(HA_ONLY_VALUES).map(k).join(", ")} are ignored: they apply only with topology ha. Remove them, or set ${k("topology")} to ha.`,
        ]);
        expect(parse({ rdsStorageGb: "10" }).warnings).toEqual([
            `${k("topology")} is single, so ${k("rdsStorageGb")} is ignored: it applies only with topology ha. Remove it, or set ${k("topology")} to ha.`,
        ]);
        // Set to its default, a setting changes nothing either way.
        expect(parse({ haAppNodeCount: "2", rdsEngineVersion: "16.0", haZoneIds: [] }).warnings).toEqual([]);
    });
});
