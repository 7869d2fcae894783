// Address blocks as security-group rules spell them, and how much of the internet they cover.
//
// IPv4 is read by the project's own parser, and the "most of the internet" line is the config parser's own: both
// from rules/input-rules.ts (parseIpv4Cidr: decimal, no leading zeros; MIN_ALLOWED_PREFIX), which has no
// dependencies, so the pack still loads on its own.
import { MIN_ALLOWED_PREFIX, parseIpv4Cidr } from "../rules/input-rules";

export type AddressFamily = "ipv4" | "ipv6";

/** A parsed CIDR block: the addresses [first, first + size). */
export interface AddressBlock {
    family: AddressFamily;
    /** As written in the rule. */
    text: string;
    prefix: number;
    first: bigint;
    size: bigint;
}

/**
 * The addresses the internet uses, per family: all of IPv4, and for IPv6 the global unicast block 2000::/3
 * (everything outside it is reserved, link-local, unique-local or multicast, never a remote client).
 */
const INTERNET: Readonly<Record<AddressFamily, { text: string; first: bigint; size: bigint }>> = {
    ipv4: { text: "0.0.0.0/0", first: 0n, size: 1n << 32n },
    ipv6: { text: "2000::/3", first: 1n << 125n, size: 1n << 125n },
};

/**
 * A single block is "the world" when it covers more than 1/2^MIN_ALLOWED_PREFIX of the internet: for IPv4 any
 * prefix shorter than /8 (0.0.0.0/0, 0.0.0.0/1, 128.0.0.0/2, …), for IPv6 more than a /11 of 2000::/3 (::/0,
 * ::/1, 2000::/3, 2000::/4, …). This is the config parser's limit for allowedCidrs.
 */
const SINGLE_BLOCK_SHARE_BITS = MIN_ALLOWED_PREFIX;
/** A set of blocks is "the world" when together they cover at least half of it (2^31 IPv4 addresses). */
const UNION_SHARE_BITS = 1;

const IPV6_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** Reads the groups of one side of "::"; an embedded dotted IPv4 address is allowed at the very end. */
function ipv6Groups(part: string, last: boolean): number[] | undefined {
    if (part === "") {
        return [];
    }
    const pieces = part.split(":");
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i];
        if (last && i === pieces.length - 1 && piece.includes(".")) {
            const v4 = parseIpv4Cidr(`${piece}/32`);
            if (v4 === undefined) {
                return undefined;
            }
            groups.push(v4.address >>> 16, v4.address & 0xffff);
        } else if (IPV6_GROUP.test(piece)) {
            groups.push(parseInt(piece, 16));
        } else {
            return undefined;
        }
    }
    return groups;
}

/** An IPv6 address in any RFC 4291 text form (full, "::"-compressed, leading zeros, embedded IPv4), or undefined. */
export function parseIpv6Address(text: string): bigint | undefined {
    const gap = text.indexOf("::");
    if (gap !== -1 && text.indexOf("::", gap + 1) !== -1) {
        return undefined;
    }
    let groups: number[];
    if (gap === -1) {
        const all = ipv6Groups(text, true);
        if (all === undefined || all.length !== 8) {
            return undefined;
        }
        groups = all;
    } else {
        const head = ipv6Groups(text.slice(0, gap), false);
        const tail = ipv6Groups(text.slice(gap + 2), true);
        if (head === undefined || tail === undefined || head.length + tail.length > 7) {
            return undefined;
        }
        groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
    }
    return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

function block(family: AddressFamily, text: string, address: bigint, prefix: number): AddressBlock {
    const bits = family === "ipv4" ? 32n : 128n;
    const size = 1n << (bits - BigInt(prefix));
    return { family, text, prefix, first: (address / size) * size, size };
}

/**
 * Reads a rule's source as Alibaba accepts it: an IPv4 or IPv6 CIDR block, or a bare address (one host), in
 * either field. Undefined when it is neither; policies then refuse the rule instead of guessing.
 */
export function parseAddressBlock(text: string): AddressBlock | undefined {
    const slash = text.indexOf("/");
    const address = slash === -1 ? text : text.slice(0, slash);
    const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
    if (!address.includes(":")) {
        const v4 = parseIpv4Cidr(`${address}/${prefixText ?? "32"}`);
        return v4 === undefined ? undefined : block("ipv4", text, BigInt(v4.address), v4.prefix);
    }
    if (prefixText !== undefined && !/^(0|[1-9]\d{0,2})$/.test(prefixText)) {
        return undefined;
    }
    const prefix = prefixText === undefined ? 128 : Number(prefixText);
    const v6 = parseIpv6Address(address);
    return v6 === undefined || prefix > 128 ? undefined : block("ipv6", text, v6, prefix);
}

/** How many internet addresses (see INTERNET) the blocks of one family cover together, overlaps counted once. */
export function internetAddressesCovered(blocks: readonly AddressBlock[], family: AddressFamily): bigint {
    const internet = INTERNET[family];
    const end = internet.first + internet.size;
    const ranges = blocks
        .filter((b) => b.family === family)
        .map((b) => [b.first > internet.first ? b.first : internet.first, b.first + b.size < end ? b.first + b.size : end] as const)
        .filter(([from, to]) => from < to)
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let covered = 0n;
    let reach = internet.first;
    for (const [from, to] of ranges) {
        const start = from > reach ? from : reach;
        if (to > start) {
            covered += to - start;
            reach = to;
        }
    }
    return covered;
}

/** True when this one block opens more than the single-block share of the internet. */
export function isWorldWideBlock(b: AddressBlock): boolean {
    return internetAddressesCovered([b], b.family) << BigInt(SINGLE_BLOCK_SHARE_BITS) > INTERNET[b.family].size;
}

/** True when the blocks of `family` together cover at least half of the internet. */
export function coverMostOfInternet(blocks: readonly AddressBlock[], family: AddressFamily): boolean {
    return internetAddressesCovered(blocks, family) << BigInt(UNION_SHARE_BITS) >= INTERNET[family].size;
}

/** "50%" / "100%" / "0.4%" of the family's internet, for messages. */
export function shareOfInternet(blocks: readonly AddressBlock[], family: AddressFamily): string {
    const permille = Number((internetAddressesCovered(blocks, family) * 1000n) / INTERNET[family].size);
    return permille % 10 === 0 ? `${permille / 10}%` : `${(permille / 10).toFixed(1)}%`;
}
