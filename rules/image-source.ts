// Where the Dify host's images come from: the choices of the imageSource setting, their defaults, and the names
// of an Alibaba Cloud Container Registry (ACR) Enterprise Edition instance. No imports: the config parser, the
// ACR component and render:userdata share them.

/**
 * `docker-hub`: Docker Hub directly. `registry-mirror`: Docker Hub through the registry mirrors in the Docker
 * daemon's daemon.json. `acr`: copies of the images in an existing ACR Enterprise Edition instance, pulled over
 * the VPC.
 */
export type ImageSource = "docker-hub" | "registry-mirror" | "acr";
export const IMAGE_SOURCES: readonly ImageSource[] = ["docker-hub", "registry-mirror", "acr"];

/**
 * The registry mirror of imageSource registry-mirror when registryMirrors is unset: the one Alibaba's own Compute
 * Nest Dify template (aliyun-computenest/quickstart-dify, .computenest/config.yaml) writes into daemon.json for
 * cn-* regions other than cn-hongkong. Free and with no account set-up; Alibaba publishes no product page, SLA or
 * freshness guarantee for it.
 */
export const DEFAULT_REGISTRY_MIRRORS: readonly string[] = ["https://mirrors-ssl.aliyuncs.com/"];

/** ACR Enterprise Edition instance ids: "cri-" and lowercase letters and digits. */
export const ACR_INSTANCE_ID_PATTERN = /^cri-[a-z0-9]+$/;
export const ACR_INSTANCE_ID_RULE =
    'the id of an existing Container Registry Enterprise Edition instance in the stack\'s region, "cri-" and lowercase letters and digits, such as cri-a1b2c3d4e5f6g7h8';

/** A registry host as the bootstrap's settings take it: a DNS name, optionally with a port; no scheme, no path. */
export const REGISTRY_HOST_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?::\d{1,5})?$/;

/**
 * The VPC endpoint of an ACR Enterprise Edition instance's registry, `<instance name>-registry-vpc.<region>.cr.aliyuncs.com`
 * (the pattern Alibaba's documentation and the console show; the instance's VPC endpoint, once a VPC is linked).
 */
export function acrVpcRegistryHost(instanceName: string, region: string): string {
    return `${instanceName}-registry-vpc.${region}.cr.aliyuncs.com`;
}
