/**
 * The strict shape of values that end up in a shell script, Dify's `.env`, YAML, `daemon.json` or a URL: one
 * place for each rule, shared by the config parsers (`stack-config.ts`, `integration-config.ts`) and meant for
 * the dynamic providers too. Pure functions and constants, no imports: a provider's serialized closure can
 * carry them, and nothing else is pulled in.
 */

/** Characters a shell, YAML, JSON or Compose's `.env` would interpret (whitespace includes newlines). */
export const SPECIAL_CHARACTERS = /[\s$`'"\\;&|<>()]/;
/** The same set, as messages spell it. */
export const SPECIAL_CHARACTERS_TEXT = "$ ` ' \" \\ ; & | < > ( ) or whitespace";

const HOST_NAME = "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}";
const IPV4 = "(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const PORT = "(?::(?:6553[0-5]|655[0-2]\\d|65[0-4]\\d\\d|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3}))?";
/** https://host[:port][/path], the path of letters, digits and `._~/+-` only. */
const HTTPS_URL = new RegExp(`^https://(?:${HOST_NAME}|${IPV4})${PORT}(?:/[A-Za-z0-9._~/+-]*)?$`);
/** A bare host, or https://host[:port] with at most a trailing "/". */
const HTTPS_ENDPOINT = new RegExp(`^(?:https://)?(?:${HOST_NAME}|${IPV4})${PORT}/?$`);

/** A URL for messages: credentials (user:password@) replaced, control characters escaped. */
export function shownUrl(value: string): string {
    return JSON.stringify(value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, "$1***@"));
}

/** Credentials, special characters, a query or a fragment: what no URL or endpoint here may have. */
function urlPartsProblem(value: string): string | undefined {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@/.test(value)) {
        return "carries credentials (user:password@)";
    }
    if (SPECIAL_CHARACTERS.test(value)) {
        return `contains one of ${SPECIAL_CHARACTERS_TEXT}`;
    }
    if (/[?#]/.test(value)) {
        return "has a query (?) or fragment (#)";
    }
    return undefined;
}

/**
 * Why `value` is not a plain https URL (https://host[:port][/path]): credentials, a special character, a query,
 * a fragment or another scheme; undefined when it is one.
 */
export function httpsUrlProblem(value: string): string | undefined {
    const problem = urlPartsProblem(value);
    if (problem !== undefined) {
        return problem;
    }
    if (!value.startsWith("https://")) {
        return "is not an https URL";
    }
    if (!HTTPS_URL.test(value)) {
        return "is not https://host[:port]/path with a path of letters, digits and ._~/+-";
    }
    return undefined;
}

/** Why `value` is not an https API endpoint (a host, or https://host[:port]); undefined when it is one. */
export function httpsEndpointProblem(value: string): string | undefined {
    const problem = urlPartsProblem(value);
    if (problem !== undefined) {
        return problem;
    }
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value) && !value.startsWith("https://")) {
        return "is not https";
    }
    if (!HTTPS_ENDPOINT.test(value)) {
        return "is not a host name or https://host[:port] without a path";
    }
    return undefined;
}

/**
 * The shortest prefix of a block that may be opened to: a shorter one covers most of the address space. The config
 * parser refuses such blocks in allowedCidrs (only 0.0.0.0/0 itself may be given), and the policy pack counts a
 * single source block wider than 1/2^MIN_ALLOWED_PREFIX of the internet as "the world".
 */
export const MIN_ALLOWED_PREFIX = 8;

/** Alibaba Cloud's private VPC ranges: a VPC's block is one of them or inside one. */
export const VPC_PRIVATE_RANGES: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/** An IPv4 CIDR block as numbers: the address as an unsigned 32-bit integer and the prefix length. */
export interface Ipv4Cidr {
    address: number;
    prefix: number;
}

/**
 * Reads an IPv4 CIDR written in decimal without leading zeros ("010.0.0.0/8" would be octal to some tools);
 * undefined when it is not one. The address may still have host bits set (see `canonicalCidr`).
 */
export function parseIpv4Cidr(value: string): Ipv4Cidr | undefined {
    const match = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\/(0|[1-9]\d?)$/.exec(value);
    if (!match) {
        return undefined;
    }
    const octets = match.slice(1, 5).map(Number);
    const prefix = Number(match[5]);
    if (octets.some((o) => o > 255) || prefix > 32) {
        return undefined;
    }
    return { address: ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0, prefix };
}

function mask(prefix: number): number {
    return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The CIDR with its host bits cleared, as text: canonicalCidr("10.0.0.1/8") is "10.0.0.0/8". */
export function canonicalCidr(cidr: Ipv4Cidr): string {
    const address = (cidr.address & mask(cidr.prefix)) >>> 0;
    return `${[24, 16, 8, 0].map((shift) => (address >>> shift) & 255).join(".")}/${cidr.prefix}`;
}

/** True when `outer` contains every address of `inner`. */
export function cidrContains(outer: Ipv4Cidr, inner: Ipv4Cidr): boolean {
    return outer.prefix <= inner.prefix && ((inner.address & mask(outer.prefix)) >>> 0) === ((outer.address & mask(outer.prefix)) >>> 0);
}

/** True when two blocks share an address (for CIDR blocks: one contains the other). */
export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
    return cidrContains(a, b) || cidrContains(b, a);
}
