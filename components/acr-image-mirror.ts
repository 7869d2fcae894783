import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import { DockerHubRepository, difyImages, dockerHubRepositories, exactTagsRegexp, DIFY_IMAGE_VERSIONS } from "../rules/dify-images";
import { acrVpcRegistryHost } from "../rules/image-source";

/** The CPU platforms a subscription rule can copy; the host's architecture decides. */
export type AcrImagePlatform = "linux/amd64" | "linux/arm64";

export interface AcrImageMirrorArgs {
    /**
     * The existing ACR Enterprise Edition instance (`cri-…`, the `acrInstanceId` setting) that holds the copies;
     * the stack never creates one (Enterprise Edition is prepaid). Changing it replaces every namespace,
     * repository, rule and the VPC link (each belongs to an instance) and changes `registryHost`, which changes
     * the host's user data and so replaces the ECS instance.
     */
    instanceId: string;
    /**
     * The region of the stack and of the instance (the `alicloud:region` setting); part of `registryHost`. The
     * provider works in one region, so changing it moves the whole stack.
     */
    region: string;
    /**
     * The Dify release whose images are copied (the `difyVersion` setting); it must be one `DIFY_IMAGES` lists
     * (rules/dify-images.ts), else the constructor throws (the config parser refuses such a stack first).
     * Changing it updates each rule's tag pattern in place, and creates or deletes the repositories and rules of
     * images that one release has and the other has not.
     */
    difyVersion: string;
    /** The stack's VPC (DifyNetwork.vpcId), linked to the instance's registry. Changing it replaces the link. */
    vpcId: pulumi.Input<string>;
    /**
     * The vSwitch in that VPC where the registry's VPC endpoint takes one address (DifyNetwork.vswitchId).
     * Changing it replaces the link.
     */
    vswitchId: pulumi.Input<string>;
    /**
     * The platform of the copies, the host's architecture: `linux/amd64` (default) or `linux/arm64`. Changing it
     * updates every rule in place; images already copied stay until the next sync overrides them.
     */
    platform?: AcrImagePlatform;
}

/** One Alibaba Cloud lookup's answer about the instance, as the component reads it. */
export interface AcrInstanceLookup {
    id: string;
    name: string;
    vpcEndpoints: string[];
}

/**
 * The host the bootstrap pulls from: the instance's registry VPC endpoint as Alibaba reports it once a VPC is
 * linked (a domain of `vpcEndpoints` ending in `-registry-vpc.<region>.cr.aliyuncs.com`), else the same name
 * built from the instance's name (before the first link exists the instance reports no VPC endpoint). Throws,
 * naming the setting, when the lookup found no instance with the id.
 */
export function acrRegistryHost(instances: readonly AcrInstanceLookup[], instanceId: string, region: string): string {
    const instance = instances.find((candidate) => candidate.id === instanceId);
    if (instance === undefined) {
        throw new pulumi.RunError(
            `dify-mcp-stack:acrInstanceId is "${instanceId}", but the account has no Container Registry Enterprise Edition instance with that id in ${region}; ` +
                "allowed: the id of an existing instance in the stack's region (Container Registry console > Instances; the stack does not buy one)",
        );
    }
    const suffix = `-registry-vpc.${region}.cr.aliyuncs.com`;
    return instance.vpcEndpoints.find((domain) => domain.endsWith(suffix)) ?? acrVpcRegistryHost(instance.name, region);
}

/** When the cost facts below were read. */
export const ACR_COST_CHECKED = "2026-11-30";
/** Where the price comes from. */
export const ACR_BILLING_PAGE = "https://www.alibabacloud.com/help/en/container-registry/latest/billing";

/**
 * What the stack cannot do for imageSource acr, as the preview warning says it: the instance (prepaid, with its
 * cost and source) and the first sync of the rules.
 */
export function acrManualStepsMessage(instanceId: string, ruleCount: number): string {
    return [
        `dify-mcp-stack:imageSource is acr: Dify's images are pulled from copies in the ACR Enterprise Edition instance ${instanceId}. Two steps are yours:`,
        `(1) The instance must exist in this region, and its edition must support artifact subscription (Basic or Advanced; Economy is unconfirmed). ` +
            `The stack does not buy it: Enterprise Edition is prepaid (subscription) only, no pay-as-you-go; Basic is "starting at USD 113/month" in China per ${ACR_BILLING_PAGE} (read ${ACR_COST_CHECKED}).`,
        `(2) The first sync: no Pulumi resource triggers one. Once \`pulumi up\` has created the ${ruleCount} subscription rules (stack output acrSubscriptionRuleIds), ` +
            `run \`aliyun cr CreateArtifactSubscriptionTask --InstanceId ${instanceId} --RuleId <rule>\` for each rule, or "Sync now" on each rule in the console, ` +
            "before the new instance's bootstrap pulls (it retries each image 5 times, a minute apart).",
    ].join(" ");
}

/** A namespace or repository name as a piece of a logical resource name. */
function slug(text: string): string {
    return text.replace(/[^a-z0-9-]/g, "-");
}

/**
 * Copies of a Dify release's Docker Hub images in an existing ACR Enterprise Edition instance, reachable from the
 * stack's VPC: one namespace per Docker Hub namespace (official images in `library`), one public repository and
 * one artifact subscription rule per Docker Hub repository (exactly the release's tag, one platform, overriding),
 * and the link of the instance's registry to the VPC with a PrivateZone record. `registryHost` is where the
 * bootstrap pulls `<namespace>/<repository>:<tag>` from.
 *
 * The namespaces are the stack's: a namespace of the same name that already exists in the instance makes the
 * create fail (import it, or use another instance), and `pulumi destroy` deletes them with their images.
 */
export class AcrImageMirror extends pulumi.ComponentResource {
    readonly namespaces: alicloud.cs.RegistryEnterpriseNamespace[];
    readonly repositories: alicloud.cs.RegistryEnterpriseRepo[];
    readonly subscriptionRules: alicloud.cr.ArtifactSubscriptionRule[];
    readonly vpcLink: alicloud.cr.VpcEndpointLinkedVpc;

    /**
     * The registry's VPC endpoint, e.g. `dify-registry-vpc.cn-hangzhou.cr.aliyuncs.com`. Known at preview (from
     * a lookup of the instance); it carries the rules and the VPC link as dependencies, so an instance whose user
     * data takes it is created after them.
     */
    readonly registryHost: pulumi.Output<string>;
    /** The subscription rules' ids (`crasr-…`), for the first sync (CreateArtifactSubscriptionTask). */
    readonly subscriptionRuleIds: pulumi.Output<string[]>;
    /** The repositories copied, as `namespace/repository`. */
    readonly repositoryNames: string[];

    constructor(name: string, args: AcrImageMirrorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:AcrImageMirror", name, {}, opts);
        const images = difyImages(args.difyVersion);
        if (images === undefined) {
            throw new Error(
                `AcrImageMirror: the images of Dify ${args.difyVersion} are not listed (rules/dify-images.ts lists ${DIFY_IMAGE_VERSIONS.join(", ")})`,
            );
        }
        const repositories: DockerHubRepository[] = dockerHubRepositories(images);
        const platform = args.platform ?? "linux/amd64";

        const namespaceNames = [...new Set(repositories.map((repo) => repo.namespace))];
        const namespaces = new Map<string, alicloud.cs.RegistryEnterpriseNamespace>();
        for (const namespace of namespaceNames) {
            namespaces.set(
                namespace,
                new alicloud.cs.RegistryEnterpriseNamespace(
                    `${name}-ns-${slug(namespace)}`,
                    { instanceId: args.instanceId, name: namespace, autoCreate: false, defaultVisibility: "PUBLIC" },
                    { parent: this },
                ),
            );
        }
        this.namespaces = [...namespaces.values()];

        this.repositories = [];
        this.subscriptionRules = [];
        for (const source of repositories) {
            const namespace = namespaces.get(source.namespace) as alicloud.cs.RegistryEnterpriseNamespace;
            const key = `${slug(source.namespace)}-${slug(source.repository)}`;
            // The subscription copies into a repository that exists (the provider's own examples and acceptance
            // test create it first; the namespace creates none, autoCreate being off).
            const repository = new alicloud.cs.RegistryEnterpriseRepo(
                `${name}-repo-${key}`,
                {
                    instanceId: args.instanceId,
                    namespace: namespace.name,
                    name: source.repository,
                    repoType: "PUBLIC",
                    summary: `Copy of Docker Hub ${source.namespace}/${source.repository} for Dify`,
                },
                { parent: this },
            );
            this.repositories.push(repository);
            this.subscriptionRules.push(
                new alicloud.cr.ArtifactSubscriptionRule(
                    `${name}-sync-${key}`,
                    {
                        instanceId: args.instanceId,
                        sourceProvider: "DOCKER_HUB",
                        sourceNamespaceName: source.namespace,
                        sourceRepoName: source.repository,
                        namespaceName: namespace.name,
                        repoName: repository.name,
                        tagRegexp: exactTagsRegexp(source.tags),
                        tagCount: source.tags.length,
                        platforms: [platform],
                        override: true,
                    },
                    { parent: this },
                ),
            );
        }
        this.repositoryNames = repositories.map((repo) => `${repo.namespace}/${repo.repository}`);

        this.vpcLink = new alicloud.cr.VpcEndpointLinkedVpc(
            `${name}-vpc-link`,
            {
                instanceId: args.instanceId,
                vpcId: args.vpcId,
                vswitchId: args.vswitchId,
                moduleName: "Registry",
                enableCreateDnsRecordInPvzt: true,
            },
            { parent: this },
        );

        // enableDetails false: the lookup then asks for no temporary login token.
        const lookup = alicloud.cs.getRegistryEnterpriseInstancesOutput({ ids: [args.instanceId], enableDetails: false }, { parent: this });
        const host = lookup.apply((result) =>
            acrRegistryHost(
                result.instances.map((instance) => ({ id: instance.id, name: instance.name, vpcEndpoints: instance.vpcEndpoints ?? [] })),
                args.instanceId,
                args.region,
            ),
        );
        // The ids stay known in a preview of an update, so the host stays known too; they carry the dependencies.
        this.registryHost = pulumi
            .all([host, this.vpcLink.id, ...this.subscriptionRules.map((rule) => rule.id)])
            .apply(([registry]) => registry);
        this.subscriptionRuleIds = pulumi.all(this.subscriptionRules.map((rule) => rule.artifactSubscriptionRuleId));

        if (pulumi.runtime.isDryRun()) {
            pulumi.log.warn(acrManualStepsMessage(args.instanceId, this.subscriptionRules.length), this);
        }

        this.registerOutputs({ registryHost: this.registryHost, subscriptionRuleIds: this.subscriptionRuleIds });
    }
}
