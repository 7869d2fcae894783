// Dify release tags and their order, with no dependencies: shared by the console client, the stack config and
// the policy pack (policy/), which loads without the project's packages.
/** The oldest Dify this stack deploys: MCP tools arrived in 1.6, OAuth to MCP servers in 1.8.0. */
export const MIN_DIFY_VERSION = "1.8.0";

/** The first Dify versions that changed what a console client (and the stack) must do. */
export const DIFY_VERSION_THRESHOLDS = {
    /** `headers` on MCP providers (1.9.0). */
    mcpHeaders: "1.9.0",
    /** httpOnly cookies + X-CSRF-Token instead of JSON tokens + Bearer (commit 9a5f214623, first tag 1.9.2). */
    cookieAuthentication: "1.9.2",
    /**
     * Preset OAuth client (`authentication.client_id`) and `configuration` on MCP providers (1.10.0): the first
     * release that can use Alibaba's "Custom OAuth" MCP servers, which offer no dynamic client registration.
     */
    mcpPresetOAuthClient: "1.10.0",
    /** `/login` base64-decodes the password (commit b7649f61f8, first tag 1.11.2). */
    base64LoginPassword: "1.11.2",
} as const;

// Versions. Dify tags have no "v" and look like 1.10.1, 1.10.1-fix.1, 1.14.0-rc1, 2.0.0-beta.1.

export interface DifyVersionParts {
    major: number;
    minor: number;
    patch: number;
    /** Whatever follows the numeric core, without the dash: "fix.1", "rc1", "" for a release. */
    suffix: string;
}

export function parseDifyVersion(text: string): DifyVersionParts | undefined {
    const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.]?(.*))?$/.exec(text.trim());
    if (!match) {
        return undefined;
    }
    return {
        major: Number(match[1]),
        minor: Number(match[2]),
        patch: Number(match[3] ?? 0),
        suffix: match[4] ?? "",
    };
}

function compareCores(a: DifyVersionParts, b: DifyVersionParts): number {
    return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** Pre-releases sort before their release; any other suffix (Dify's hotfix tags like "fix.1") after it. */
function suffixRank(suffix: string): number {
    if (suffix === "") {
        return 0;
    }
    return /^(alpha|beta|rc|pre|dev)/i.test(suffix) ? -1 : 1;
}

function compareSuffixes(a: string, b: string): number {
    const rank = suffixRank(a) - suffixRank(b);
    if (rank !== 0 || a === b) {
        return rank;
    }
    // Same kind of suffix: compare dot/number-separated identifiers like semver does.
    const split = (s: string) => s.split(/[.-]|(?<=\D)(?=\d)|(?<=\d)(?=\D)/).filter((p) => p !== "");
    const left = split(a);
    const right = split(b);
    for (let i = 0; i < Math.max(left.length, right.length); i++) {
        const l = left[i];
        const r = right[i];
        if (l === undefined || r === undefined) {
            return l === undefined ? -1 : 1;
        }
        const ln = /^\d+$/.test(l) ? Number(l) : NaN;
        const rn = /^\d+$/.test(r) ? Number(r) : NaN;
        if (!isNaN(ln) && !isNaN(rn)) {
            if (ln !== rn) {
                return ln - rn;
            }
        } else if (l !== r) {
            return l < r ? -1 : 1;
        }
    }
    return 0;
}

/** Orders Dify versions: 1.9.2 < 1.10.0-rc1 < 1.10.0 < 1.10.1 < 1.10.1-fix.1 < 1.11.0. Unparsable sorts first. */
export function compareDifyVersions(a: string, b: string): number {
    const left = parseDifyVersion(a);
    const right = parseDifyVersion(b);
    if (!left || !right) {
        return (left ? 1 : 0) - (right ? 1 : 0);
    }
    const core = compareCores(left, right);
    return core !== 0 ? Math.sign(core) : Math.sign(compareSuffixes(left.suffix, right.suffix));
}

/**
 * Whether `version` has the behaviour introduced in `minimum`. Only the numeric core counts: a release
 * candidate of X.Y.Z already carries X.Y.Z's changes and a hotfix tag (X.Y.Z-fix.1) keeps them.
 */
export function difyVersionAtLeast(version: string, minimum: string): boolean {
    const left = parseDifyVersion(version);
    const right = parseDifyVersion(minimum);
    if (!left || !right) {
        return false;
    }
    return compareCores(left, right) >= 0;
}
