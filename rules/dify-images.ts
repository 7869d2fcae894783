// The Docker Hub images each Dify release the stack knows pulls, and how to name them in a registry that copies
// Docker Hub. Only rules/certbot.ts imported (no imports of its own): the config parser (which refuses imageSource
// acr for a version not listed here) and the ACR component (one subscription rule per repository) share it.
import { CERTBOT_IMAGE } from "./certbot";

/**
 * Per Dify release tag, the images its `docker/docker-compose.yaml` uses with the release's `.env.example` as
 * `.env` (the default profiles the bootstrap starts: the vector store and database of `COMPOSE_PROFILES`), as
 * `docker compose config --images` prints them, plus the pinned certbot image the bootstrap runs for HTTPS
 * (rules/certbot.ts; the release's own `certbot` profile is not used), sorted. tests/rules/dify-images.test.ts
 * renders both releases' real files with the real Compose CLI and compares. A release missing here cannot use
 * imageSource acr until its list is added (and tested).
 */
export const DIFY_IMAGES: Readonly<Record<string, readonly string[]>> = {
    "1.8.0": [
        CERTBOT_IMAGE,
        "langgenius/dify-api:1.8.0",
        "langgenius/dify-plugin-daemon:0.2.0-local",
        "langgenius/dify-sandbox:0.2.12",
        "langgenius/dify-web:1.8.0",
        "nginx:latest",
        "postgres:15-alpine",
        "redis:6-alpine",
        "semitechnologies/weaviate:1.19.0",
        "ubuntu/squid:latest",
    ],
    "1.14.1": [
        "busybox:latest",
        CERTBOT_IMAGE,
        "langgenius/dify-api:1.14.1",
        "langgenius/dify-plugin-daemon:0.6.0-local",
        "langgenius/dify-sandbox:0.2.15",
        "langgenius/dify-web:1.14.1",
        "nginx:latest",
        "postgres:15-alpine",
        "redis:6-alpine",
        "semitechnologies/weaviate:1.27.0",
        "ubuntu/squid:latest",
    ],
};

/** The Dify versions whose images are listed, oldest first as written. */
export const DIFY_IMAGE_VERSIONS: readonly string[] = Object.keys(DIFY_IMAGES);

/** The images of a Dify release, or undefined when the stack does not list them. */
export function difyImages(version: string): readonly string[] | undefined {
    return Object.prototype.hasOwnProperty.call(DIFY_IMAGES, version) ? DIFY_IMAGES[version] : undefined;
}

/** Docker Hub's namespace of its official images ("nginx" is "library/nginx"). */
export const DOCKER_HUB_OFFICIAL_NAMESPACE = "library";

/** A Docker Hub image split the way a registry that copies Docker Hub names it: namespace/repository:tag. */
export interface DockerHubImage {
    /** "langgenius", or "library" for an official image. */
    namespace: string;
    /** "dify-api", "nginx". */
    repository: string;
    /** The tag; "latest" when the reference has none. */
    tag: string;
}

/**
 * Splits a Docker Hub image reference ("nginx:latest", "langgenius/dify-api:1.14.1", "certbot/certbot"), or
 * undefined for what is not one: a reference whose first part names a registry (has "." or ":", or is
 * "localhost", as Docker decides, and as the bootstrap's image_source does), a digest, more than two parts.
 */
export function parseDockerHubImage(reference: string): DockerHubImage | undefined {
    if (reference.includes("@")) {
        return undefined;
    }
    const parts = reference.split("/");
    if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost")) {
        return undefined;
    }
    if (parts.length > 2) {
        return undefined;
    }
    const [namespace, nameAndTag] = parts.length === 2 ? [parts[0], parts[1]] : [DOCKER_HUB_OFFICIAL_NAMESPACE, parts[0]];
    const colon = nameAndTag.indexOf(":");
    const repository = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
    const tag = colon < 0 ? "latest" : nameAndTag.slice(colon + 1);
    if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(namespace) || !/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(repository) || !/^[\w][\w.-]{0,127}$/.test(tag)) {
        return undefined;
    }
    return { namespace, repository, tag };
}

/** One Docker Hub repository and the tags of it that a release uses (one in every release listed). */
export interface DockerHubRepository {
    namespace: string;
    repository: string;
    tags: string[];
}

/**
 * The repositories of a list of images, each once with its tags, sorted by namespace/repository. Throws for an
 * image that is not on Docker Hub (none of Dify's is).
 */
export function dockerHubRepositories(images: readonly string[]): DockerHubRepository[] {
    const byName = new Map<string, DockerHubRepository>();
    for (const image of images) {
        const parsed = parseDockerHubImage(image);
        if (parsed === undefined) {
            throw new Error(`${JSON.stringify(image)} is not a Docker Hub image reference`);
        }
        const key = `${parsed.namespace}/${parsed.repository}`;
        const entry = byName.get(key) ?? { namespace: parsed.namespace, repository: parsed.repository, tags: [] };
        if (!entry.tags.includes(parsed.tag)) {
            entry.tags.push(parsed.tag);
        }
        byName.set(key, entry);
    }
    return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
}

/** A regular expression that matches exactly these tags: "^1\.14\.1$", or "^(a|b)$" for several. */
export function exactTagsRegexp(tags: readonly string[]): string {
    const escaped = tags.map((tag) => tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    return escaped.length === 1 ? `^${escaped[0]}$` : `^(${escaped.join("|")})$`;
}
