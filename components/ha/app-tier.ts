import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import * as random from "@pulumi/random";
import { DifyBootstrap, INIT_PASSWORD_RULES } from "../dify-bootstrap";
import type { ExternalServices } from "../bootstrap/external-services";
import type { ZonePair } from "./network";
import { DifyReadiness } from "../../dynamic-providers/dify/readiness";
import { DIFY_VERSION_TAG, MEMORY_TAG, VCPU_TAG } from "../../rules/instance-tags";
import { difyMcpOAuthCallbackUrl } from "../../rules/oauth-callback";

/** The port the singleton's plugin daemon listens on (Dify's PLUGIN_DAEMON_PORT). */
export const PLUGIN_DAEMON_PORT = 5002;
/** The host name, inside the tier's PrivateZone, that follows the singleton. */
export const PLUGIN_DAEMON_RECORD = "plugin-daemon";
/** ALB health check of the app nodes: Dify's console API answers it without touching the database. */
export const APP_HEALTH_CHECK_PATH = "/console/api/ping";
/** TLS 1.2 and 1.3 with forward-secret ciphers only (ALB system policy). */
export const ALB_TLS_POLICY = "tls_cipher_policy_1_2_strict_with_1_3";
/** TTL (seconds) of the plugin-daemon record: short, so app nodes follow a replaced singleton within half a minute. */
export const PLUGIN_DAEMON_RECORD_TTL = 30;
/** Bounds of `appNodeCount` (the `haAppNodeCount` setting). */
export const APP_NODE_COUNT_RANGE = { min: 2, max: 20 } as const;

/** The PrivateZone of a tier: `<namePrefix>.internal` (a trailing "-" of the prefix dropped: a DNS label cannot end with one). */
export function privateZoneName(namePrefix: string): string {
    return `${namePrefix.replace(/-+$/, "")}.internal`;
}

/** Where app nodes reach the singleton's plugin daemon: the PrivateZone record that follows the singleton. */
export function pluginDaemonUrl(namePrefix: string): string {
    return `http://${PLUGIN_DAEMON_RECORD}.${privateZoneName(namePrefix)}:${PLUGIN_DAEMON_PORT}`;
}

/** Bounds of `nodeBootMinutes`: the lifecycle hook's timeout takes 30-21600 s (Alibaba's CreateLifecycleHook). */
export const NODE_BOOT_MINUTES_RANGE = { min: 1, max: 360 } as const;
/** Default `nodeBootMinutes`: a fresh node's first boot (image pulls, Dify's start) takes about 10 minutes. */
export const DEFAULT_NODE_BOOT_MINUTES = 15;

/**
 * How `appNodeCount` nodes are split over the two zones' scaling groups [A, B]: A gets the odd one (it holds the
 * singleton too, so a zone B loss leaves the larger half serving). 2 → 1 + 1, 3 → 2 + 1.
 */
export function zoneNodeCounts(appNodeCount: number): [number, number] {
    return [Math.ceil(appNodeCount / 2), Math.floor(appNodeCount / 2)];
}

/**
 * How the rolling refresh of one zone's group of `groupNodeCount` nodes replaces them: surge, never shrink. 100 %
 * must stay healthy (no old node goes before its replacement counts), and the group may hold one node more (the
 * group's maximum size of count + 1), so a new node is started first, and an old one is released only once the new
 * one is InService, which the group's SCALE_OUT lifecycle hook delays by `nodeBootMinutes`. The provider allows
 * 0-100 and 100-200. The maximum is rounded up so that count × it / 100 is count + 1 however ESS rounds down:
 * 1 node → 200 %, 2 → 150 %, 3 → 134 %.
 */
export function refreshPlan(groupNodeCount: number): { minHealthyPercentage: number; maxHealthyPercentage: number } {
    return {
        minHealthyPercentage: 100,
        maxHealthyPercentage: Math.min(200, 100 + Math.ceil(100 / groupNodeCount)),
    };
}

/** The host record of `domain` inside the DNS zone `dnsZone` (dify.example.com in example.com: "dify"). */
export function hostRecordIn(domain: string, dnsZone: string): string {
    const zone = dnsZone.replace(/\.$/, "").toLowerCase();
    const name = domain.replace(/\.$/, "").toLowerCase();
    if (!name.endsWith(`.${zone}`)) {
        throw new Error(
            `DifyAppTier: domain "${domain}" is not a name inside dnsZone "${dnsZone}" (a CNAME cannot sit at the zone's apex either); ` +
                "set dnsZone to the zone that contains domain, or leave it unset and create the record yourself",
        );
    }
    return name.slice(0, name.length - zone.length - 1);
}

/** The ECS instance type and image of the singleton and of the app nodes (index.ts resolves them as for `single`). */
export interface DifyAppTierInstance {
    /**
     * The ECS instance type of the singleton and of every app node. Changing it: the singleton is resized in place
     * (the provider stops and starts it); the app nodes' launch template gets a new version, which the rolling
     * refreshes (`instanceRefreshes`, one per zone) apply node by node.
     */
    instanceType: pulumi.Input<string>;
    /** vCPUs of `instanceType`, tagged `cpu-cores` on the singleton for the policy pack. Unset: no tag. */
    cpuCores?: pulumi.Input<number>;
    /** Memory (GiB) of `instanceType`, tagged `memory-gib` on the singleton; like `cpuCores`. */
    memoryGib?: pulumi.Input<number>;
    /**
     * The system image. Changing it (with `imageFromLookup` false): the singleton's system disk is rebuilt in place
     * (it bootstraps again from its user data, as on a first boot) and the app nodes are rolled with the new image.
     */
    imageId: pulumi.Input<string>;
    /** True when `imageId` came from the family lookup: later changes of it are then ignored (as DifyHost does). */
    imageFromLookup: boolean;
    /**
     * System disk category of every node, e.g. cloud_essd. Changing it rolls the app nodes; the singleton gets it as
     * the provider applies it to an instance (as for DifyHost's).
     */
    systemDiskCategory: pulumi.Input<string>;
    /** System disk size (GiB) of every node. Changing it rolls the app nodes; the singleton's disk grows in place. */
    systemDiskSize: pulumi.Input<number>;
}

/** Where the tier is placed: the DifyHaNetwork's VPC, vSwitches and zones, and the DifyHaSecurityGroups' groups. */
export interface DifyAppTierNetwork {
    /** The VPC of everything (the PrivateZone is bound to it). Changing it replaces the tier. */
    vpcId: pulumi.Input<string>;
    /** The two zones [A, B] of the vSwitches below, in the same order. Changing them replaces the ALB. */
    zoneIds: ZonePair<pulumi.Input<string>>;
    /** The ALB's vSwitches [zone A, zone B]. Changing them changes the ALB's zone mappings. */
    lbVswitchIds: ZonePair<pulumi.Input<string>>;
    /**
     * The app vSwitches [zone A, zone B]: the singleton lives in A; each zone's scaling group starts its nodes in its
     * own one. Changing them moves the singleton (in place) and changes where new app nodes start (running nodes
     * stay until they are replaced).
     */
    appVswitchIds: ZonePair<pulumi.Input<string>>;
    /** The app nodes' security group (admits 80/tcp from the lb vSwitches). Changing it rolls the app nodes. */
    appSecurityGroupId: pulumi.Input<string>;
    /** The singleton's security group (admits the plugin daemon's port from the app vSwitches). Changed in place. */
    singletonSecurityGroupId: pulumi.Input<string>;
    /** The ALB's security group (admits 443 and 80 from the allowed CIDRs). Changing it re-attaches the ALB. */
    albSecurityGroupId: pulumi.Input<string>;
}

/**
 * The arguments of DifyAppTier. The Dify settings mean what they mean for `single` (config/stack-config.ts documents
 * each); changing any of them that goes into the nodes' user data (difyVersion, the mirrors, imageRegistry, the
 * external services) replaces the singleton (create-before-delete) and rolls the app nodes, see DifyAppTier.
 */
export interface DifyAppTierArgs {
    /** Prefix of the resource names and of the PrivateZone (`<namePrefix>.internal`). Changing it renames in place, except the PrivateZone, which is replaced. */
    namePrefix: string;
    /** The region (Cloud Assistant of the readiness wait). Changing it changes nothing on a finished wait. */
    region: string;
    /** The DNS name Dify is served on: Dify's URLs are https://<domain>; `certificateId` must cover it. */
    domain: string;
    /** The Certificate Management Service certificate of the HTTPS listener (e.g. 12345-cn-hangzhou). Changing it swaps it in place. */
    certificateId: pulumi.Input<string>;
    /** The Dify release, e.g. "1.14.1". Changing it replaces the singleton (which migrates the database) and then rolls the app nodes. */
    difyVersion: pulumi.Input<string>;
    /** Docker Hub mirrors for the Docker daemon. Default none. Changing it: as difyVersion. */
    registryMirrors?: pulumi.Input<pulumi.Input<string>[]>;
    /** PyPI index for the plugin daemon and the sandbox. Default PyPI. Changing it: as difyVersion. */
    pipMirrorUrl?: pulumi.Input<string>;
    /** Registry with copies of Dify's images (imageSource acr). Default Docker Hub. Changing it: as difyVersion. */
    imageRegistry?: pulumi.Input<string>;
    /** Deploy a difyVersion without a pinned digest, unverified. Default false. */
    allowUnpinnedDifyVersion?: boolean;
    /**
     * Metadata only after PUT /latest/api/token on every node (the user data holds the database, Redis and OSS
     * credentials). Default true. Changing it updates the singleton in place and rolls the app nodes.
     */
    requireMetadataTokens?: boolean;
    /** Instance type, image and system disk of every node (each change of the app nodes' is applied by a rolling refresh). */
    instance: DifyAppTierInstance;
    /** Where the tier is placed. */
    network: DifyAppTierNetwork;
    /**
     * The app nodes, 2-20 (`haAppNodeCount`), split over the zones' scaling groups: zone A keeps ceil(n/2), zone B
     * floor(n/2) (`zoneNodeCounts`), so each zone runs at least one. Each group's maximum is one more, the surge of
     * its rolling refresh. Changing it resizes the groups in place and, for a group whose count changes (its refresh
     * plan follows the count), starts one more rolling refresh of that group (each of its nodes replaced once).
     */
    appNodeCount: number;
    /**
     * The managed services and shared keys (DifyDataTier's and the shared secrets); the tier adds `pluginDaemonUrl`.
     * They go into the nodes' user data only (secret). Changing them: as difyVersion.
     */
    externalServices: pulumi.Input<Omit<ExternalServices, "pluginDaemonUrl">>;
    /** How long `pulumi up` waits for Dify on https://<domain> (`readinessTimeoutMinutes`). Updated in place. */
    readinessTimeoutMinutes: number;
    /**
     * How long a new app node waits (an ESS SCALE_OUT lifecycle hook, then CONTINUE) before ESS counts it InService,
     * registers it with the ALB and, in a rolling refresh, releases an old node for it: long enough for a fresh
     * node's first boot (about 10 minutes). Default 15, 1-360 (the hook's 30-21600 s). It applies to every
     * scale-out, a health replacement included: such a node, too, serves only after this long. A roll of a zone's
     * k nodes takes about k × this. Changed in place on the hooks.
     */
    nodeBootMinutes?: number;
    /**
     * An Alibaba Cloud DNS zone of the account containing `domain`: the tier then creates the CNAME domain → the
     * ALB. Unset (default): create it yourself (`dnsInstructions`) as soon as the ALB exists: the first `pulumi up`
     * waits for https://<domain> and fails when it does not resolve in time (then run it again once it does).
     * Setting or unsetting it adds or removes the record.
     */
    dnsZone?: string;
    /**
     * Tags on every taggable resource (the nodes also get dify-version). Changing them updates in place; for the app
     * nodes it is a new launch template version, which the rolling refresh applies.
     */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * The app tier of the `ha` topology: an internet-facing ALB (HTTPS 443 with `certificateId`, HTTP 80 redirecting
 * to it) in front of two Auto Scaling groups of app nodes (role app: api, worker, web, sandbox, nginx), one per zone,
 * each in its zone's app vSwitch, and one singleton instance (role singleton: migrations, worker_beat, the plugin
 * daemon) in zone A that the app nodes reach through a PrivateZone record. Losing zone B leaves zone A's nodes
 * serving; losing zone A leaves zone B's nodes serving the web and API, but the singleton is gone with it (model
 * calls, tools and scheduled tasks stop until zone A is back or the singleton is moved).
 *
 * Upgrades (a new difyVersion, or any other setting in the user data): the singleton's user data changes, which
 * replaces it create-before-delete: the new singleton boots and migrates the database while the old one still
 * runs, the plugin-daemon record follows the new instance as soon as it exists, and the old one is deleted at the
 * end of `pulumi up`. Then (after the readiness wait; note that DifyReadiness ends its wait as soon as the public URL
 * answers, which the old app nodes do, so it does not yet hold the roll back until the new singleton has migrated)
 * one ESS instance refresh per zone group, each re-created whenever the app user data's settings digest changes,
 * replaces that group's nodes with the new launch template version by surge: a new node is started, waits
 * `nodeBootMinutes` (the SCALE_OUT lifecycle hook) before it counts, and only then is an old node released, so each
 * zone keeps its old node(s) serving until the new one is in. Zone B's refresh is created after zone A's, but
 * creating a refresh only starts it (StartInstanceRefresh): `pulumi up` does not wait for either roll, so the two
 * zones may roll at the same time; with surge and the hook each zone still keeps its old node until the new one is
 * in. Follow the rolls in the ESS console. A roll still running when the next `up` starts another one in the same
 * group fails that `up` (one refresh at a time per group); run it again when the roll is done. The first `up` also
 * rolls the nodes it has just created once, in the background (see skipMatching below). While both singletons run
 * (the overlap of the replacement), two plugin daemons and two worker_beat schedulers run.
 *
 * Why these choices (facts of @pulumi/alicloud 3.108 and Alibaba's API docs):
 * - The app nodes come from an ECS launch template, not an ESS scaling configuration: only the launch template
 *   takes `httpTokens` (metadata hardening), and the user data holds the database, Redis and OSS credentials.
 * - One group per zone, each with the priority policy (multiAzPolicy PRIORITY) and one vSwitch: StartInstanceRefresh
 *   works only for priority-policy groups, and a single priority group over both zones starts every node in the
 *   first zone. Both groups launch from the same template and register in the same ALB server group.
 * - The lifecycle hook, because ESS counts a node healthy once its instance runs, long before Dify answers on it.
 *   Unconfirmed: that an instance refresh's scale-outs trigger SCALE_OUT hooks (Alibaba's docs say hooks apply to
 *   scale-out activities and that a refresh releases old instances "after new ones are ready", not what ready means).
 *   If they do not, an old node may go before its replacement serves, and with the two rolls overlapping both zones
 *   could be without a serving node for up to a first boot.
 * - The refresh replaces every node (skipMatching false): with skipMatching, a refresh whose nodes all match
 *   (the first `up`) fails after the provider's five minutes of retries, and user data is not what matching compares.
 * - No refresh checkpoints: the hook already holds each replacement until the new node has booted.
 */
export class DifyAppTier extends pulumi.ComponentResource {
    readonly privateZone: alicloud.pvtz.Zone;
    readonly singletonBootstrap: DifyBootstrap;
    readonly singleton: alicloud.ecs.Instance;
    readonly pluginDaemonRecord: alicloud.pvtz.ZoneRecord;
    readonly appBootstrap: DifyBootstrap;
    readonly loadBalancer: alicloud.alb.LoadBalancer;
    readonly serverGroup: alicloud.alb.ServerGroup;
    readonly httpsListener: alicloud.alb.Listener;
    readonly httpListener: alicloud.alb.Listener;
    readonly launchTemplate: alicloud.ecs.EcsLaunchTemplate;
    /** The app nodes' scaling groups, [zone A, zone B]. */
    readonly scalingGroups: ZonePair<alicloud.ess.ScalingGroup>;
    /** Each group's SCALE_OUT lifecycle hook (`nodeBootMinutes`), [zone A, zone B]. */
    readonly bootHooks: ZonePair<alicloud.ess.LifecycleHook>;
    /** Each group's rolling refresh, [zone A, zone B]; B's is created after A's. */
    readonly instanceRefreshes: ZonePair<alicloud.ess.InstanceRefresh>;
    readonly cname?: alicloud.dns.AlidnsRecord;
    /** Waits (on `up`) for the singleton's bootstrap and for Dify on https://<domain>; depend on it before using Dify. */
    readonly readiness: DifyReadiness;

    /** The ALB's DNS name: the target of the CNAME record `domain`. */
    readonly albDnsName: pulumi.Output<string>;
    /** What to do about DNS: create the CNAME, or that the stack manages it. */
    readonly dnsInstructions: pulumi.Output<string>;
    /** Dify's public base URL, https://<domain>. */
    readonly difyUrl: pulumi.Output<string>;
    /** The redirect URI the RAM OAuth application must register. */
    readonly mcpOAuthCallbackUrl: pulumi.Output<string>;
    readonly singletonInstanceId: pulumi.Output<string>;
    /** The app nodes' scaling groups, [zone A, zone B]. */
    readonly scalingGroupIds: pulumi.Output<ZonePair<string>>;
    /** Where app nodes reach the plugin daemon, http://plugin-daemon.<namePrefix>.internal:5002. */
    readonly pluginDaemonUrl: pulumi.Output<string>;
    /** INIT_PASSWORD (secret) of the app nodes, which answer Dify's /init behind the ALB. */
    readonly initPassword: pulumi.Output<string>;

    constructor(name: string, args: DifyAppTierArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:ha:DifyAppTier", name, {}, opts);
        const { namePrefix, network, instance } = args;
        if (!Number.isInteger(args.appNodeCount) || args.appNodeCount < APP_NODE_COUNT_RANGE.min || args.appNodeCount > APP_NODE_COUNT_RANGE.max) {
            throw new Error(`DifyAppTier: appNodeCount is ${args.appNodeCount}; allowed: an integer from ${APP_NODE_COUNT_RANGE.min} to ${APP_NODE_COUNT_RANGE.max}`);
        }
        const nodeBootMinutes = args.nodeBootMinutes ?? DEFAULT_NODE_BOOT_MINUTES;
        if (!Number.isInteger(nodeBootMinutes) || nodeBootMinutes < NODE_BOOT_MINUTES_RANGE.min || nodeBootMinutes > NODE_BOOT_MINUTES_RANGE.max) {
            throw new Error(
                `DifyAppTier: nodeBootMinutes is ${nodeBootMinutes}; allowed: an integer from ${NODE_BOOT_MINUTES_RANGE.min} to ${NODE_BOOT_MINUTES_RANGE.max}`,
            );
        }
        const recordName = args.dnsZone !== undefined ? hostRecordIn(args.domain, args.dnsZone) : undefined;
        const requireTokens = args.requireMetadataTokens ?? true;
        const tags = args.tags ?? {};
        const nodeTags = pulumi
            .all([tags, args.difyVersion, instance.cpuCores, instance.memoryGib])
            .apply(([base, version, cpus, memory]) => ({
                ...base,
                [DIFY_VERSION_TAG]: version,
                ...(cpus !== undefined ? { [VCPU_TAG]: String(cpus) } : {}),
                ...(memory !== undefined ? { [MEMORY_TAG]: String(memory) } : {}),
            }));
        const toBase64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

        // PrivateZone: a fixed name for the singleton's plugin daemon, so the app nodes' user data (and with it the
        // settings digest that rolls them) does not change when a new singleton gets a new address.
        const zoneName = privateZoneName(namePrefix);
        this.pluginDaemonUrl = pulumi.output(pluginDaemonUrl(namePrefix));
        this.privateZone = new alicloud.pvtz.Zone(
            `${name}-zone`,
            { zoneName, remark: `Dify ${namePrefix}: internal names of the app tier`, tags },
            { parent: this },
        );
        new alicloud.pvtz.ZoneAttachment(`${name}-zone-vpc`, { zoneId: this.privateZone.id, vpcs: [{ vpcId: network.vpcId }] }, { parent: this });

        const externalServices = pulumi
            .output(args.externalServices)
            .apply((services): ExternalServices => ({ ...services, pluginDaemonUrl: pluginDaemonUrl(namePrefix) }));
        // One INIT_PASSWORD for every node: whichever node the ALB picks answers /init.
        const initPassword = new random.RandomPassword(`${name}-init-password`, INIT_PASSWORD_RULES, { parent: this });
        const bootstrapArgs = (role: "app" | "singleton") => ({
            role,
            initPassword: initPassword.result,
            externalServices,
            difyVersion: args.difyVersion,
            // The ALB terminates TLS for the domain: Dify's URLs are https://<domain>, the nodes serve HTTP in the VPC.
            publicAddress: args.domain,
            domain: args.domain,
            registryMirrors: args.registryMirrors,
            pipMirrorUrl: args.pipMirrorUrl,
            imageRegistry: args.imageRegistry,
            allowUnpinnedDifyVersion: args.allowUnpinnedDifyVersion,
        });

        // The singleton: what must run once. A changed user data replaces it (the default create-before-delete: the
        // new one boots and migrates while the old one still runs; the record then follows the new address).
        this.singletonBootstrap = new DifyBootstrap(`${name}-singleton-bootstrap`, bootstrapArgs("singleton"), { parent: this });
        this.singleton = new alicloud.ecs.Instance(
            `${name}-singleton`,
            {
                instanceName: `${namePrefix}-singleton`,
                hostName: `${namePrefix}-singleton`,
                instanceType: instance.instanceType,
                imageId: instance.imageId,
                vswitchId: network.appVswitchIds[0],
                securityGroups: [network.singletonSecurityGroupId],
                instanceChargeType: "PostPaid",
                systemDiskCategory: instance.systemDiskCategory,
                systemDiskSize: instance.systemDiskSize,
                // No public address: it goes out through the NAT gateway and is reached only inside the VPC.
                internetMaxBandwidthOut: 0,
                // Metadata (the user data with every credential) only after PUT /latest/api/token, as DifyHost.
                httpEndpoint: "enabled",
                httpTokens: requireTokens ? "required" : "optional",
                userData: this.singletonBootstrap.userData.apply(toBase64),
                tags: nodeTags,
            },
            {
                parent: this,
                // The provider would apply new user data by a stop and start that does not run the bootstrap again.
                replaceOnChanges: ["userData"],
                deleteBeforeReplace: false,
                ignoreChanges: instance.imageFromLookup ? ["imageId"] : [],
            },
        );
        // The ALB: HTTPS for the domain, HTTP only to redirect there.
        this.loadBalancer = new alicloud.alb.LoadBalancer(
            `${name}-alb`,
            {
                loadBalancerName: `${namePrefix}-alb`,
                loadBalancerEdition: "Standard",
                addressType: "Internet",
                // Dynamic: the ALB scales its addresses; it is reached through its DNS name (the CNAME), never an IP.
                addressAllocatedMode: "Dynamic",
                loadBalancerBillingConfig: { payType: "PayAsYouGo" },
                vpcId: network.vpcId,
                zoneMappings: [0, 1].map((i) => ({ zoneId: network.zoneIds[i], vswitchId: network.lbVswitchIds[i] })),
                // Off so that `pulumi destroy` can delete it.
                deletionProtectionEnabled: false,
                modificationProtectionConfig: { status: "NonProtection" },
                tags,
            },
            { parent: this },
        );
        const albSecurityGroup = new alicloud.alb.LoadBalancerSecurityGroupAttachment(
            `${name}-alb-sg`,
            { loadBalancerId: this.loadBalancer.id, securityGroupId: network.albSecurityGroupId },
            { parent: this },
        );
        this.serverGroup = new alicloud.alb.ServerGroup(
            `${name}-nodes-servers`,
            {
                serverGroupName: `${namePrefix}-app-nodes`,
                serverGroupType: "Instance",
                protocol: "HTTP",
                vpcId: network.vpcId,
                scheduler: "Wrr",
                healthCheckConfig: {
                    healthCheckEnabled: true,
                    healthCheckProtocol: "HTTP",
                    healthCheckMethod: "GET",
                    healthCheckPath: APP_HEALTH_CHECK_PATH,
                    healthCheckHttpVersion: "HTTP1.1",
                    healthCheckCodes: ["http_2xx"],
                    healthCheckConnectPort: 0,
                    healthCheckInterval: 5,
                    healthCheckTimeout: 5,
                    healthyThreshold: 2,
                    unhealthyThreshold: 3,
                },
                // A node leaving the group (scale-in, refresh) finishes its requests (Dify streams answers).
                connectionDrainConfig: { connectionDrainEnabled: true, connectionDrainTimeout: 60 },
                tags,
            },
            // ESS adds and removes the nodes: the servers are not the stack's to reconcile.
            { parent: this, ignoreChanges: ["servers"] },
        );
        const forward = [{ type: "ForwardGroup", forwardGroupConfig: { serverGroupTuples: [{ serverGroupId: this.serverGroup.id }] } }];
        this.httpsListener = new alicloud.alb.Listener(
            `${name}-https`,
            {
                loadBalancerId: this.loadBalancer.id,
                listenerProtocol: "HTTPS",
                listenerPort: 443,
                listenerDescription: `${namePrefix}-https`,
                certificates: { certificateId: args.certificateId },
                securityPolicyId: ALB_TLS_POLICY,
                http2Enabled: true,
                // Blocking workflow runs answer late; Dify's own nginx allows far longer.
                requestTimeout: 600,
                idleTimeout: 60,
                defaultActions: forward,
                tags,
            },
            { parent: this },
        );
        // A listener's default action can only forward: a rule for every path redirects to HTTPS instead.
        this.httpListener = new alicloud.alb.Listener(
            `${name}-http`,
            {
                loadBalancerId: this.loadBalancer.id,
                listenerProtocol: "HTTP",
                listenerPort: 80,
                listenerDescription: `${namePrefix}-http-redirect`,
                defaultActions: forward,
                tags,
            },
            { parent: this },
        );
        const redirect = new alicloud.alb.Rule(
            `${name}-http-to-https`,
            {
                listenerId: this.httpListener.id,
                ruleName: `${namePrefix}-http-to-https`,
                priority: 1,
                ruleConditions: [{ type: "Path", pathConfig: { values: ["/*"] } }],
                ruleActions: [
                    {
                        order: 1,
                        type: "Redirect",
                        redirectConfig: { protocol: "HTTPS", port: "443", httpCode: "301", host: "${host}", path: "${path}", query: "${query}" },
                    },
                ],
            },
            { parent: this },
        );

        // The app nodes: a launch template (it carries httpTokens; a scaling configuration cannot) and the group.
        this.appBootstrap = new DifyBootstrap(`${name}-app-bootstrap`, bootstrapArgs("app"), { parent: this });
        this.launchTemplate = new alicloud.ecs.EcsLaunchTemplate(
            `${name}-nodes-template`,
            {
                launchTemplateName: `${namePrefix}-app-node`,
                description: "Dify app node (role app) of the ha topology",
                instanceName: `${namePrefix}-app`,
                instanceType: instance.instanceType,
                imageId: instance.imageId,
                instanceChargeType: "PostPaid",
                vpcId: network.vpcId,
                securityGroupIds: [network.appSecurityGroupId],
                systemDisk: { category: instance.systemDiskCategory, size: instance.systemDiskSize, deleteWithInstance: true },
                // No public address: reached through the ALB, out through the NAT gateway.
                internetMaxBandwidthOut: 0,
                httpEndpoint: "enabled",
                httpTokens: requireTokens ? "required" : "optional",
                // ECS takes launch template user data base64-encoded (the provider passes it on as it is).
                userData: this.appBootstrap.userData.apply(toBase64),
                tags: nodeTags,
                templateTags: tags,
            },
            { parent: this, ignoreChanges: instance.imageFromLookup ? ["imageId"] : [] },
        );
        // One group per zone: the instance refresh needs the priority policy, which over two vSwitches would start
        // every node in the first zone. Zone A gets the odd node.
        const zones = ["a", "b"] as const;
        const counts = zoneNodeCounts(args.appNodeCount);
        const groups = zones.map(
            (zone, i) =>
                new alicloud.ess.ScalingGroup(
                    `${name}-nodes-${zone}`,
                    {
                        scalingGroupName: `${namePrefix}-app-nodes-${zone}`,
                        minSize: counts[i],
                        // One more: the surge of the rolling refresh.
                        maxSize: counts[i] + 1,
                        vswitchIds: [network.appVswitchIds[i]],
                        // PRIORITY: StartInstanceRefresh (the rolling upgrade) works only for priority-policy groups.
                        multiAzPolicy: "PRIORITY",
                        launchTemplateId: this.launchTemplate.id,
                        launchTemplateVersion: "Latest",
                        removalPolicies: ["OldestScalingConfiguration", "OldestInstance"],
                        // ECS: a node that stops is replaced. The ALB's own health check keeps traffic off a node
                        // still bootstrapping; an ALB-driven ESS health check would replace such a node before it is up.
                        healthCheckType: "ECS",
                        defaultCooldown: 300,
                        // Release (not recycle): the instance refresh refuses economical and forced recycling groups.
                        scalingPolicy: "release",
                        groupDeletionProtection: false,
                        tags,
                    },
                    { parent: this },
                ),
        );
        this.scalingGroups = [groups[0], groups[1]];
        // ESS counts a node healthy once its instance runs; the hook holds a new node in Pending Add (not yet
        // InService, not yet in the ALB server group) for the length of a first boot, then lets it in (CONTINUE),
        // so that a refresh releases an old node only after its replacement has had time to start Dify.
        const hooks = zones.map(
            (zone, i) =>
                new alicloud.ess.LifecycleHook(
                    `${name}-nodes-${zone}-boot`,
                    {
                        scalingGroupId: groups[i].id,
                        name: `${namePrefix}-app-boot-${zone}`,
                        lifecycleTransition: "SCALE_OUT",
                        defaultResult: "CONTINUE",
                        heartbeatTimeout: nodeBootMinutes * 60,
                    },
                    { parent: this },
                ),
        );
        this.bootHooks = [hooks[0], hooks[1]];
        const attachments = zones.map(
            (zone, i) =>
                new alicloud.ess.AlbServerGroupAttachment(
                    `${name}-nodes-${zone}-alb`,
                    {
                        scalingGroupId: groups[i].id,
                        albServerGroupId: this.serverGroup.id,
                        port: 80,
                        weight: 100,
                        // Nodes the group already started are registered too.
                        forceAttach: true,
                    },
                    { parent: this },
                ),
        );

        this.albDnsName = this.loadBalancer.dnsName;
        this.cname =
            recordName !== undefined && args.dnsZone !== undefined
                ? new alicloud.dns.AlidnsRecord(
                      `${name}-cname`,
                      { domainName: args.dnsZone, rr: recordName, type: "CNAME", value: this.albDnsName, ttl: 600 },
                      { parent: this },
                  )
                : undefined;

        // The wait of `up`: the singleton's bootstrap through Cloud Assistant (its failures end the wait at once), then
        // Dify on the public URL, which the app nodes answer through the ALB once the singleton has migrated.
        this.difyUrl = pulumi.output(`https://${args.domain}`);
        this.readiness = new DifyReadiness(
            `${name}-ready`,
            {
                difyUrl: this.difyUrl,
                instanceId: this.singleton.id,
                timeoutSeconds: args.readinessTimeoutMinutes * 60,
                regionId: args.region,
                // The URL is the ALB's: the app nodes (the old ones, during an upgrade) answer it before the new
                // singleton has migrated; the rolling refresh waits for the singleton's own "done".
                waitForBootstrap: true,
                unreachableHint: pulumi.interpolate`Check that ${args.domain} resolves to the load balancer (a CNAME to ${this.albDnsName}), that certificateId covers ${args.domain}, and the ALB's health checks of the app nodes.`,
            },
            { parent: this, dependsOn: [this.httpsListener, redirect, albSecurityGroup, ...attachments, ...(this.cname ? [this.cname] : [])] },
        );

        this.pluginDaemonRecord = new alicloud.pvtz.ZoneRecord(
            `${name}-plugin-daemon`,
            {
                zoneId: this.privateZone.id,
                rr: PLUGIN_DAEMON_RECORD,
                type: "A",
                value: this.singleton.privateIp,
                ttl: PLUGIN_DAEMON_RECORD_TTL,
                remark: "The singleton's plugin daemon",
            },
            // After the singleton is done (migrated, its plugin daemon up): in an upgrade the app nodes keep the
            // old singleton's daemon until the new one can answer. Nothing before the integration needs the daemon.
            { parent: this, dependsOn: [this.readiness] },
        );

        // The rolling upgrade, one refresh per zone group: re-created (StartInstanceRefresh) whenever the app nodes'
        // settings change, after the new singleton is up. The provider returns once the refresh has started (its
        // delete only forgets it), so B's dependsOn on A orders the starts, not the rolls: they may overlap, and
        // surge + the boot hook keep each zone's old node serving until its replacement is in.
        const refreshes: alicloud.ess.InstanceRefresh[] = [];
        zones.forEach((zone, i) => {
            const plan = refreshPlan(counts[i]);
            refreshes.push(
                new alicloud.ess.InstanceRefresh(
                    `${name}-nodes-${zone}-refresh`,
                    {
                        scalingGroupId: groups[i].id,
                        desiredConfigurationLaunchTemplateId: this.launchTemplate.id,
                        desiredConfigurationLaunchTemplateVersion: this.launchTemplate.latestVersionNumber.apply((v) => String(v)),
                        minHealthyPercentage: plan.minHealthyPercentage,
                        maxHealthyPercentage: plan.maxHealthyPercentage,
                        skipMatching: false,
                    },
                    {
                        parent: this,
                        dependsOn: [this.readiness, this.pluginDaemonRecord, attachments[i], hooks[i], ...refreshes],
                        replacementTrigger: this.appBootstrap.settingsDigest,
                    },
                ),
            );
        });
        this.instanceRefreshes = [refreshes[0], refreshes[1]];

        this.dnsInstructions = this.albDnsName.apply((target) =>
            args.dnsZone !== undefined
                ? `The stack manages the CNAME record ${args.domain} → ${target} in the Alibaba Cloud DNS zone ${args.dnsZone}.`
                : `Create a CNAME record ${args.domain} → ${target} at your DNS provider; pulumi up waits for https://${args.domain} to answer.`,
        );
        this.mcpOAuthCallbackUrl = this.difyUrl.apply(difyMcpOAuthCallbackUrl);
        this.singletonInstanceId = this.singleton.id;
        this.scalingGroupIds = pulumi.all([groups[0].id, groups[1].id]);
        // The app nodes answer /init behind the ALB; the singleton's own password is never asked for.
        this.initPassword = this.appBootstrap.initPassword;
        this.registerOutputs({
            albDnsName: this.albDnsName,
            dnsInstructions: this.dnsInstructions,
            difyUrl: this.difyUrl,
            mcpOAuthCallbackUrl: this.mcpOAuthCallbackUrl,
            singletonInstanceId: this.singletonInstanceId,
            scalingGroupIds: this.scalingGroupIds,
            pluginDaemonUrl: this.pluginDaemonUrl,
        });
    }
}
