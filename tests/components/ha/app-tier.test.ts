import { beforeAll, describe, expect, it, vi } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import {
    MOCK_ALB_DNS_NAME,
    MOCK_INIT_PASSWORD,
    MOCK_PRIVATE_IP,
    RegisteredResource,
    installMocks,
    settle,
    valueOf,
} from "../pulumi-mocks";
import { STUB_REGISTRATIONS } from "../dynamic-stubs";
import {
    ALB_TLS_POLICY,
    APP_HEALTH_CHECK_PATH,
    DifyAppTier,
    type DifyAppTierArgs,
    hostRecordIn,
    refreshPlan,
    zoneNodeCounts,
} from "../../../components/ha/app-tier";
import type { ExternalServices } from "../../../components/bootstrap/external-services";

vi.mock("../../../dynamic-providers/dify/readiness", () => import("../dynamic-stubs"));

const INSTANCE = "alicloud:ecs/instance:Instance";
const ZONE = "alicloud:pvtz/zone:Zone";
const ZONE_ATTACHMENT = "alicloud:pvtz/zoneAttachment:ZoneAttachment";
const ZONE_RECORD = "alicloud:pvtz/zoneRecord:ZoneRecord";
const ALB = "alicloud:alb/loadBalancer:LoadBalancer";
const ALB_SG = "alicloud:alb/loadBalancerSecurityGroupAttachment:LoadBalancerSecurityGroupAttachment";
const SERVER_GROUP = "alicloud:alb/serverGroup:ServerGroup";
const LISTENER = "alicloud:alb/listener:Listener";
const RULE = "alicloud:alb/rule:Rule";
const TEMPLATE = "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate";
const SCALING_GROUP = "alicloud:ess/scalingGroup:ScalingGroup";
const ESS_ALB = "alicloud:ess/albServerGroupAttachment:AlbServerGroupAttachment";
const REFRESH = "alicloud:ess/instanceRefresh:InstanceRefresh";
const HOOK = "alicloud:ess/lifecycleHook:LifecycleHook";
const CNAME = "alicloud:dns/alidnsRecord:AlidnsRecord";

/** The managed services as DifyDataTier hands them over: secret, and every credential distinctive enough to search for. */
const SERVICES: Omit<ExternalServices, "pluginDaemonUrl"> = {
    database: {
        host: "pgm-mock.pg.rds.aliyuncs.com",
        port: 5432,
        username: "dify",
        password: "DbPasswordSecret1111",
        database: "dify",
        pluginDatabase: "dify_plugin",
    },
    redis: { host: "r-mock.redis.rds.aliyuncs.com", port: 6379, password: "RedisPasswordSecret2222" },
    storage: {
        bucket: "dify-test-files",
        region: "cn-hangzhou",
        endpoint: "https://oss-cn-hangzhou-internal.aliyuncs.com",
        accessKeyId: "TestAccessKeyIdSecret3333",
        accessKeySecret: "AccessKeySecretSecret4444",
    },
    secrets: { secretKey: "SecretKeySecret5555", pluginDaemonKey: "PluginDaemonKeySecret6666", pluginInnerApiKey: "InnerApiKeySecret7777" },
};
const SECRET_VALUES = [
    SERVICES.database.password,
    SERVICES.redis.password,
    SERVICES.storage.accessKeyId,
    SERVICES.storage.accessKeySecret,
    ...Object.values(SERVICES.secrets),
    MOCK_INIT_PASSWORD,
];

const BASE_ARGS: DifyAppTierArgs = {
    namePrefix: "dify-test",
    region: "cn-hangzhou",
    domain: "dify.example.com",
    certificateId: "12345-cn-hangzhou",
    difyVersion: "1.14.1",
    registryMirrors: [],
    instance: {
        instanceType: "ecs.c7.large",
        imageId: "ubuntu_22_04_x64_20G_alibase_20260522.vhd",
        imageFromLookup: true,
        systemDiskCategory: "cloud_essd",
        systemDiskSize: 60,
    },
    network: {
        vpcId: "vpc-1",
        zoneIds: ["cn-hangzhou-j", "cn-hangzhou-k"],
        lbVswitchIds: ["vsw-lb-a", "vsw-lb-b"],
        appVswitchIds: ["vsw-app-a", "vsw-app-b"],
        appSecurityGroupId: "sg-app",
        singletonSecurityGroupId: "sg-singleton",
        albSecurityGroupId: "sg-alb",
    },
    appNodeCount: 2,
    externalServices: pulumi.secret(SERVICES),
    readinessTimeoutMinutes: 45,
    tags: { project: "dify-mcp-stack", stack: "test" },
};

let registered: RegisteredResource[];

interface Built {
    tier: DifyAppTier;
    /** The resources this tier registered, as the mock monitor saw them (secrets unwrapped). */
    added: RegisteredResource[];
    /** Each child's resource options and its inputs as given (secrets still wrapped), by resource name. */
    options: Map<string, pulumi.CustomResourceOptions>;
    props: Map<string, Record<string, unknown>>;
}

async function build(name: string, args: DifyAppTierArgs = BASE_ARGS): Promise<Built> {
    const before = registered.length;
    const options = new Map<string, pulumi.CustomResourceOptions>();
    const props = new Map<string, Record<string, unknown>>();
    const tier = new DifyAppTier(name, args, {
        transformations: [
            (resource) => {
                options.set(resource.name, resource.opts as pulumi.CustomResourceOptions);
                props.set(resource.name, resource.props as Record<string, unknown>);
                return undefined;
            },
        ],
    });
    await valueOf(tier.dnsInstructions);
    await valueOf(tier.appBootstrap.settingsDigest);
    await settle();
    return { tier, added: registered.slice(before), options, props };
}

/** The resources of `type` this tier registered, in registration order (zone A's first). */
function allOf(built: Built, type: string): RegisteredResource[] {
    return built.added.filter((r) => r.type === type);
}

/** The one registered resource named `name`. */
function named(built: Built, name: string): RegisteredResource {
    const found = built.added.filter((r) => r.name === name);
    expect(found, name).toHaveLength(1);
    return found[0];
}

function oneOf(built: Built, type: string): RegisteredResource {
    const found = built.added.filter((r) => r.type === type);
    expect(found, type).toHaveLength(1);
    return found[0];
}

const decode = (base64: unknown) => Buffer.from(String(base64), "base64").toString("utf8");

let base: Built;

beforeAll(async () => {
    registered = installMocks();
    base = await build("tier");
});

describe("DifyAppTier: the singleton and its PrivateZone record", () => {
    it("runs one singleton in app vSwitch A with the singleton group, no public address and metadata tokens required", () => {
        const singleton = oneOf(base, INSTANCE).inputs;
        expect(singleton).toMatchObject({
            vswitchId: "vsw-app-a",
            securityGroups: ["sg-singleton"],
            internetMaxBandwidthOut: 0,
            httpEndpoint: "enabled",
            httpTokens: "required",
            instanceType: "ecs.c7.large",
        });
        expect(singleton.keyName).toBeUndefined();
        const userData = decode(singleton.userData);
        expect(userData.startsWith("#cloud-config\n")).toBe(true);
        expect(userData).toContain("DIFY_ROLE='singleton'");
        expect(userData).toContain("DIFY_PUBLIC_URL='https://dify.example.com'");
    });

    it("replaces the singleton (new one first) when its user data changes, instead of ignoring the change", () => {
        const opts = base.options.get("tier-singleton");
        expect(opts?.replaceOnChanges).toContain("userData");
        expect(opts?.ignoreChanges ?? []).not.toContain("userData");
        expect(opts?.deleteBeforeReplace).toBeFalsy();
    });

    it("binds <namePrefix>.internal to the VPC and points plugin-daemon at the singleton's private address", async () => {
        const zone = oneOf(base, ZONE).inputs;
        expect(zone.zoneName).toBe("dify-test.internal");
        expect(oneOf(base, ZONE_ATTACHMENT).inputs).toMatchObject({ zoneId: "tier-zone-id", vpcs: [{ vpcId: "vpc-1" }] });
        const record = oneOf(base, ZONE_RECORD).inputs;
        expect(record).toMatchObject({ zoneId: "tier-zone-id", rr: "plugin-daemon", type: "A", value: MOCK_PRIVATE_IP });
        expect(Number(record.ttl)).toBeLessThanOrEqual(60);
        expect(await valueOf(base.tier.pluginDaemonUrl)).toBe("http://plugin-daemon.dify-test.internal:5002");
    });

    it("moves the plugin-daemon record to a new singleton only once it is done, and rolls the app nodes after that", () => {
        const record = base.options.get("tier-plugin-daemon");
        expect(record?.dependsOn).toContain(base.tier.readiness);
        for (const zone of ["a", "b"]) {
            expect(base.options.get(`tier-nodes-${zone}-refresh`)?.dependsOn, zone).toContain(base.tier.pluginDaemonRecord);
        }
    });

    it("waits on up for the singleton's bootstrap and Dify on https://<domain>, once the ALB path to the nodes exists", async () => {
        const readiness = base.added.find((r) => r.type.endsWith("DifyReadiness"));
        expect(readiness?.inputs).toMatchObject({
            difyUrl: "https://dify.example.com",
            instanceId: "tier-singleton-id",
            timeoutSeconds: 45 * 60,
            regionId: "cn-hangzhou",
        });
        const registration = STUB_REGISTRATIONS.find((r) => r.name === "tier-ready");
        expect(base.tier.readiness).toBe(registration?.resource);
        const waitsFor = (registration?.opts?.dependsOn ?? []) as pulumi.Resource[];
        expect(waitsFor).toContain(base.tier.httpsListener);
        expect(await valueOf(base.tier.difyUrl)).toBe("https://dify.example.com");
        expect(await valueOf(base.tier.singletonInstanceId)).toBe("tier-singleton-id");
    });
});

describe("DifyAppTier: the app nodes", () => {
    it("runs one scaling group per zone, each in its own zone's app vSwitch, from the one launch template", () => {
        expect(allOf(base, SCALING_GROUP)).toHaveLength(2);
        const a = named(base, "tier-nodes-a").inputs;
        const b = named(base, "tier-nodes-b").inputs;
        expect(a.vswitchIds).toEqual(["vsw-app-a"]);
        expect(b.vswitchIds).toEqual(["vsw-app-b"]);
        for (const group of [a, b]) {
            expect(group).toMatchObject({
                launchTemplateId: "tier-nodes-template-id",
                launchTemplateVersion: "Latest",
                // The instance refresh requires the priority policy and release (not recycle) mode.
                multiAzPolicy: "PRIORITY",
                scalingPolicy: "release",
                healthCheckType: "ECS",
            });
        }
        expect(a.scalingGroupName).not.toBe(b.scalingGroupName);
    });

    it("keeps at least one node in each zone: 2 nodes as 1 + 1, each group able to grow by one for a roll", () => {
        for (const zone of ["a", "b"]) {
            const group = named(base, `tier-nodes-${zone}`).inputs;
            expect(group.minSize, zone).toBe(1);
            expect(group.maxSize, zone).toBe(2);
        }
    });

    it("splits 3 nodes as 2 in zone A (the odd one) and 1 in zone B, and any count 2-20 with each zone at least 1", async () => {
        const three = await build("three", { ...BASE_ARGS, appNodeCount: 3 });
        expect(named(three, "three-nodes-a").inputs).toMatchObject({ minSize: 2, maxSize: 3 });
        expect(named(three, "three-nodes-b").inputs).toMatchObject({ minSize: 1, maxSize: 2 });
        // Each group's roll surges by one node of its own size.
        expect(named(three, "three-nodes-a-refresh").inputs).toMatchObject({ minHealthyPercentage: 100, maxHealthyPercentage: 150 });
        expect(named(three, "three-nodes-b-refresh").inputs).toMatchObject({ minHealthyPercentage: 100, maxHealthyPercentage: 200 });
        for (let n = 2; n <= 20; n++) {
            const [a, b] = zoneNodeCounts(n);
            expect(a + b).toBe(n);
            expect(b).toBeGreaterThanOrEqual(1);
            expect(a - b === 0 || a - b === 1).toBe(true);
        }
    });

    it("starts nodes with the app group, no public address, metadata tokens and the app role's user data", () => {
        const template = oneOf(base, TEMPLATE).inputs;
        expect(template).toMatchObject({
            securityGroupIds: ["sg-app"],
            internetMaxBandwidthOut: 0,
            httpEndpoint: "enabled",
            httpTokens: "required",
            instanceType: "ecs.c7.large",
            systemDisk: { category: "cloud_essd", size: 60 },
        });
        const userData = decode(template.userData);
        expect(userData.startsWith("#cloud-config\n")).toBe(true);
        expect(userData).toContain("DIFY_ROLE='app'");
        // The app nodes find the plugin daemon by the PrivateZone name, not by the singleton's address.
        expect(userData).toContain("DIFY_PLUGIN_DAEMON_URL='http://plugin-daemon.dify-test.internal:5002'");
        expect(userData).not.toContain(MOCK_PRIVATE_IP);
        expect(base.options.get("tier-nodes-template")?.ignoreChanges).toContain("imageId");
    });

    it("registers both zones' nodes in the one ALB server group on port 80", () => {
        const attachments = allOf(base, ESS_ALB).map((r) => r.inputs);
        expect(attachments).toHaveLength(2);
        expect(attachments.map((a) => a.scalingGroupId)).toEqual(["tier-nodes-a-id", "tier-nodes-b-id"]);
        for (const attachment of attachments) {
            expect(attachment).toMatchObject({ albServerGroupId: "tier-nodes-servers-id", port: 80, forceAttach: true });
        }
        // ESS owns the server list.
        expect(base.options.get("tier-nodes-servers")?.ignoreChanges).toContain("servers");
        expect(allOf(base, SERVER_GROUP)).toHaveLength(1);
    });

    it("holds every new node for a first boot (15 minutes by default) before ESS counts it, in each group", async () => {
        const hooks = allOf(base, HOOK).map((r) => r.inputs);
        expect(hooks.map((h) => h.scalingGroupId)).toEqual(["tier-nodes-a-id", "tier-nodes-b-id"]);
        for (const hook of hooks) {
            expect(hook).toMatchObject({ lifecycleTransition: "SCALE_OUT", defaultResult: "CONTINUE", heartbeatTimeout: 900 });
        }
        const slow = await build("slow", { ...BASE_ARGS, nodeBootMinutes: 25 });
        expect(allOf(slow, HOOK).map((r) => r.inputs.heartbeatTimeout)).toEqual([1500, 1500]);
    });

    it("rolls each zone's group by surge after the singleton is ready, replacing every node, zone B's refresh after zone A's", () => {
        const a = named(base, "tier-nodes-a-refresh").inputs;
        const b = named(base, "tier-nodes-b-refresh").inputs;
        expect(allOf(base, REFRESH)).toHaveLength(2);
        for (const [refresh, group] of [
            [a, "tier-nodes-a-id"],
            [b, "tier-nodes-b-id"],
        ] as const) {
            expect(refresh).toMatchObject({
                scalingGroupId: group,
                desiredConfigurationLaunchTemplateId: "tier-nodes-template-id",
                desiredConfigurationLaunchTemplateVersion: "1",
                // Surge, never shrink: the one old node serves until its replacement is in (1 node: 100 %..200 %).
                minHealthyPercentage: 100,
                maxHealthyPercentage: 200,
                skipMatching: false,
            });
            expect(refresh.checkpoints ?? []).toEqual([]);
        }
        const optsA = base.options.get("tier-nodes-a-refresh");
        const optsB = base.options.get("tier-nodes-b-refresh");
        expect(optsA?.dependsOn).toContain(base.tier.readiness);
        expect(optsA?.dependsOn).toContain(base.tier.bootHooks[0]);
        expect(optsB?.dependsOn).toContain(base.tier.readiness);
        expect(optsB?.dependsOn).toContain(base.tier.bootHooks[1]);
        expect(optsB?.dependsOn).toContain(base.tier.instanceRefreshes[0]);
        expect(optsA?.dependsOn).not.toContain(base.tier.instanceRefreshes[1]);
    });

    it("plans each group's roll to keep all its nodes serving and surge by exactly one, for any group size", () => {
        expect(refreshPlan(1)).toEqual({ minHealthyPercentage: 100, maxHealthyPercentage: 200 });
        expect(refreshPlan(2)).toEqual({ minHealthyPercentage: 100, maxHealthyPercentage: 150 });
        for (let k = 1; k <= 10; k++) {
            const plan = refreshPlan(k);
            expect(plan.minHealthyPercentage).toBe(100);
            // The provider's ranges: 0-100 and 100-200.
            expect(plan.maxHealthyPercentage).toBeGreaterThan(100);
            expect(plan.maxHealthyPercentage).toBeLessThanOrEqual(200);
            expect(Math.floor((k * plan.maxHealthyPercentage) / 100)).toBe(k + 1);
        }
    });

    it("exports both groups' ids, zone A first", async () => {
        expect(await valueOf(base.tier.scalingGroupIds)).toEqual(["tier-nodes-a-id", "tier-nodes-b-id"]);
    });
});

describe("DifyAppTier: upgrades", () => {
    /** The replacementTrigger option of zone `zone`'s instance refresh of the tier built under `name`. */
    const triggerOf = (built: Built, name: string, zone: "a" | "b") =>
        valueOf(built.options.get(`${name}-nodes-${zone}-refresh`)?.replacementTrigger as pulumi.Output<string>);

    it("re-runs both zones' instance refreshes when difyVersion changes, and not for other settings", async () => {
        const baseTrigger = await triggerOf(base, "tier", "a");
        expect(baseTrigger).toBe(await valueOf(base.tier.appBootstrap.settingsDigest));
        expect(await triggerOf(base, "tier", "b")).toBe(baseTrigger);
        expect(baseTrigger).toMatch(/^[0-9a-f]{64}$/);
        // The digest the app nodes' user data carries.
        expect(decode(oneOf(base, TEMPLATE).inputs.userData)).toContain(`DIFY_SETTINGS_DIGEST='${baseTrigger}'`);

        const older = await build("older", { ...BASE_ARGS, difyVersion: "1.8.0" });
        expect(await triggerOf(older, "older", "a")).not.toBe(baseTrigger);
        expect(await triggerOf(older, "older", "b")).toBe(await triggerOf(older, "older", "a"));

        const resized = await build("resized", {
            ...BASE_ARGS,
            appNodeCount: 3,
            certificateId: "67890-cn-hangzhou",
            readinessTimeoutMinutes: 60,
            nodeBootMinutes: 20,
            tags: { project: "dify-mcp-stack", stack: "test", team: "ops" },
        });
        expect(await triggerOf(resized, "resized", "a")).toBe(baseTrigger);
        expect(await triggerOf(resized, "resized", "b")).toBe(baseTrigger);
    });
});

describe("DifyAppTier: the ALB", () => {
    it("is internet-facing in both zones on the lb vSwitches, pay-as-you-go, and deletable", () => {
        const alb = oneOf(base, ALB).inputs;
        expect(alb).toMatchObject({
            addressType: "Internet",
            loadBalancerEdition: "Standard",
            loadBalancerBillingConfig: { payType: "PayAsYouGo" },
            vpcId: "vpc-1",
            deletionProtectionEnabled: false,
        });
        expect(alb.zoneMappings).toEqual([
            { zoneId: "cn-hangzhou-j", vswitchId: "vsw-lb-a" },
            { zoneId: "cn-hangzhou-k", vswitchId: "vsw-lb-b" },
        ]);
        expect(oneOf(base, ALB_SG).inputs).toMatchObject({ loadBalancerId: "tier-alb-id", securityGroupId: "sg-alb" });
    });

    it("serves HTTPS on 443 with the certificate and a TLS 1.2+ policy, forwarding to the nodes", () => {
        const https = base.added.find((r) => r.type === LISTENER && r.inputs.listenerPort === 443)?.inputs;
        expect(https).toMatchObject({
            listenerProtocol: "HTTPS",
            certificates: { certificateId: "12345-cn-hangzhou" },
            securityPolicyId: ALB_TLS_POLICY,
            defaultActions: [{ type: "ForwardGroup", forwardGroupConfig: { serverGroupTuples: [{ serverGroupId: "tier-nodes-servers-id" }] } }],
        });
        expect(ALB_TLS_POLICY).toMatch(/^tls_cipher_policy_1_2/);
    });

    it("answers HTTP on 80 only with a redirect to HTTPS 443, for every path", () => {
        const http = base.added.find((r) => r.type === LISTENER && r.inputs.listenerPort === 80);
        expect(http?.inputs.listenerProtocol).toBe("HTTP");
        expect(http?.inputs.certificates).toBeUndefined();
        const rule = oneOf(base, RULE).inputs;
        expect(rule.listenerId).toBe("tier-http-id");
        expect(rule.ruleConditions).toEqual([{ type: "Path", pathConfig: { values: ["/*"] } }]);
        expect(rule.ruleActions).toEqual([
            {
                order: 1,
                type: "Redirect",
                redirectConfig: { protocol: "HTTPS", port: "443", httpCode: "301", host: "${host}", path: "${path}", query: "${query}" },
            },
        ]);
    });

    it("checks node health with GET /console/api/ping expecting 2xx", () => {
        const health = oneOf(base, SERVER_GROUP).inputs.healthCheckConfig as Record<string, unknown>;
        expect(health).toMatchObject({
            healthCheckEnabled: true,
            healthCheckProtocol: "HTTP",
            healthCheckMethod: "GET",
            healthCheckPath: APP_HEALTH_CHECK_PATH,
            healthCheckCodes: ["http_2xx"],
        });
        expect(APP_HEALTH_CHECK_PATH).toBe("/console/api/ping");
        expect(oneOf(base, SERVER_GROUP).inputs).toMatchObject({ protocol: "HTTP", vpcId: "vpc-1" });
    });
});

describe("DifyAppTier: DNS", () => {
    it("leaves the CNAME to the operator without dnsZone, and says what to create", async () => {
        expect(base.added.some((r) => r.type === CNAME)).toBe(false);
        expect(await valueOf(base.tier.albDnsName)).toBe(MOCK_ALB_DNS_NAME);
        expect(await valueOf(base.tier.dnsInstructions)).toContain(`Create a CNAME record dify.example.com → ${MOCK_ALB_DNS_NAME}`);
    });

    it("creates the CNAME in dnsZone when it is set", async () => {
        const managed = await build("managed", { ...BASE_ARGS, dnsZone: "example.com" });
        expect(oneOf(managed, CNAME).inputs).toMatchObject({ domainName: "example.com", rr: "dify", type: "CNAME", value: MOCK_ALB_DNS_NAME });
        expect(await valueOf(managed.tier.dnsInstructions)).toContain("The stack manages the CNAME record dify.example.com");
        expect(hostRecordIn("a.b.example.com", "example.com")).toBe("a.b");
        expect(() => hostRecordIn("dify.example.org", "example.com")).toThrow(/not a name inside dnsZone/);
        expect(() => hostRecordIn("example.com", "example.com")).toThrow(/not a name inside dnsZone/);
    });
});

describe("DifyAppTier: secrets", () => {
    it("keeps both roles' user data secret, on the bootstraps and on the singleton and the launch template", async () => {
        expect(await pulumi.isSecret(base.tier.singletonBootstrap.userData)).toBe(true);
        expect(await pulumi.isSecret(base.tier.appBootstrap.userData)).toBe(true);
        expect(await pulumi.isSecret(base.props.get("tier-singleton")?.userData as pulumi.Output<string>)).toBe(true);
        expect(await pulumi.isSecret(base.props.get("tier-nodes-template")?.userData as pulumi.Output<string>)).toBe(true);
    });

    it("exports INIT_PASSWORD only as a secret and no secret in any other output", async () => {
        expect(await pulumi.isSecret(base.tier.initPassword)).toBe(true);
        expect(await valueOf(base.tier.initPassword)).toBe(MOCK_INIT_PASSWORD);
        const tier = base.tier as unknown as Record<string, unknown>;
        const outputs = Object.entries(tier).filter(([key, value]) => pulumi.Output.isInstance(value) && key !== "initPassword" && key !== "urn");
        expect(outputs.map(([key]) => key)).toEqual(
            expect.arrayContaining([
                "albDnsName",
                "dnsInstructions",
                "difyUrl",
                "mcpOAuthCallbackUrl",
                "singletonInstanceId",
                "scalingGroupIds",
                "pluginDaemonUrl",
            ]),
        );
        for (const [key, output] of outputs) {
            const value = JSON.stringify(await valueOf(output as pulumi.Output<unknown>));
            for (const secret of SECRET_VALUES) {
                expect(value, key).not.toContain(secret);
            }
        }
    });

    it("puts the credentials into no input but the user data", () => {
        for (const resource of base.added) {
            const { userData, ...rest } = resource.inputs;
            void userData;
            const text = JSON.stringify(rest);
            for (const secret of SECRET_VALUES) {
                expect(text, `${resource.type} ${resource.name}`).not.toContain(secret);
            }
        }
    });
});

describe("DifyAppTier: tags and bad inputs", () => {
    it("tags every taggable resource, and the nodes with the Dify version", () => {
        for (const type of [ZONE, INSTANCE, ALB, SERVER_GROUP, TEMPLATE]) {
            expect(oneOf(base, type).inputs.tags, type).toMatchObject({ project: "dify-mcp-stack", stack: "test" });
        }
        for (const group of allOf(base, SCALING_GROUP)) {
            expect(group.inputs.tags, group.name).toMatchObject({ project: "dify-mcp-stack", stack: "test" });
        }
        expect(oneOf(base, INSTANCE).inputs.tags).toMatchObject({ "dify-version": "1.14.1" });
        expect(oneOf(base, TEMPLATE).inputs.tags).toMatchObject({ "dify-version": "1.14.1" });
    });

    it("refuses an app node count outside 2-20", () => {
        expect(() => new DifyAppTier("one", { ...BASE_ARGS, appNodeCount: 1 })).toThrow(/appNodeCount is 1; allowed: an integer from 2 to 20/);
        expect(() => new DifyAppTier("many", { ...BASE_ARGS, appNodeCount: 21 })).toThrow(/appNodeCount/);
    });

    it("refuses a node boot wait the lifecycle hook cannot hold (1-360 minutes)", () => {
        expect(() => new DifyAppTier("instant", { ...BASE_ARGS, nodeBootMinutes: 0 })).toThrow(/nodeBootMinutes is 0; allowed: an integer from 1 to 360/);
        expect(() => new DifyAppTier("forever", { ...BASE_ARGS, nodeBootMinutes: 361 })).toThrow(/nodeBootMinutes/);
    });
});
