// The guardrail policies, fed the resources the project's real code registers: index.ts itself, and its real
// components and dynamic resources built with settings the config parser refuses, captured under Pulumi mocks
// (registered-resources.ts) and handed to the policies in the shape the policy SDK gives them (policy-sdk.ts).
// Where the components cannot write a spelling at all (ipv6CidrIp, other port ranges and protocols), a captured
// rule is copied with that one field changed (variantOf), and every such test says so.
import { beforeAll, describe, expect, it } from "vitest";
import {
    DYNAMIC_RESOURCE,
    ECS_DISK,
    ECS_INSTANCE,
    RAM_OAUTH_APP,
    SECURITY_GROUP_RULE,
    checkOAuthApp,
    difyVersionAtLeast,
    isOAuthApp,
    parsePortRange,
    policies,
} from "../../policy/rules";
import { instanceTypeSizeFromName } from "../../rules/instance-size";
import { coverMostOfInternet, internetAddressesCovered, isWorldWideBlock, parseAddressBlock, parseIpv6Address } from "../../policy/addresses";
import {
    captureRegistrations,
    resourcesOfCase,
    theOne,
    variantOf,
    type CaptureCase,
    type CapturedResource,
} from "./registered-resources";
import { analysedInputs, lines, packWithout, policiesReporting, runPack, withUnknown, type Finding } from "./policy-sdk";

const BASE_CONFIG = { "alicloud:region": "cn-hangzhou", adminEmail: "ops@example.com", dashscopeApiKey: "sk-test-0123456789abcdef" };
const HTTPS_CONFIG = { ...BASE_CONFIG, domain: "dify.example.com", certEmail: "ops@example.com", adminCidr: "192.0.2.0/24", oauthAppType: "WebApp" };
/** The plain-HTTP opt-out: no 443, port 80 serves Dify itself. */
const PLAIN_HTTP_CONFIG = { ...BASE_CONFIG, plainHttp: "true" };

/** `count` consecutive IPv4 /8 blocks from `first`.0.0.0/8: 128 of them are exactly half of IPv4. */
const slash8s = (count: number, first = 0) => Array.from({ length: count }, (_, i) => `${first + i}.0.0.0/8`);
/** `count` consecutive IPv6 /11 blocks from 2000::/11: 128 of them are exactly half of 2000::/3. */
const v6Slash11s = (count: number) => Array.from({ length: count }, (_, i) => `${(0x2000 + i * 0x20).toString(16)}::/11`);
/** The component's own HTTPS setup, so that a case's findings are about the rules under test only. */
const QUIET_GROUP = { allowedCidrs: ["203.0.113.0/24"], httpsEnabled: true };

const CASES: CaptureCase[] = [
    // DifySecurityGroup with settings the config parser refuses.
    { scenario: "security-group", name: "sgadminworld", args: { ...QUIET_GROUP, adminCidr: "0.0.0.0/0" } },
    { scenario: "security-group", name: "sgadminhalf", args: { ...QUIET_GROUP, adminCidr: "0.0.0.0/1" } },
    { scenario: "security-group", name: "sgadminv6", args: { ...QUIET_GROUP, adminCidr: "::/0" } },
    { scenario: "security-group", name: "sgadminoctal", args: { ...QUIET_GROUP, adminCidr: "010.0.0.0/8" } },
    { scenario: "security-group", name: "sgadminzeroprefix", args: { ...QUIET_GROUP, adminCidr: "0.0.0.0/00" } },
    { scenario: "security-group", name: "sghalvesnohttps", args: { allowedCidrs: ["0.0.0.0/1", "128.0.0.0/1"], httpsEnabled: false } },
    { scenario: "security-group", name: "sghalveshttps", args: { allowedCidrs: ["0.0.0.0/1", "128.0.0.0/1"], httpsEnabled: true } },
    { scenario: "security-group", name: "sgslash8x128", args: { allowedCidrs: slash8s(128), httpsEnabled: false } },
    { scenario: "security-group", name: "sgslash8x127", args: { allowedCidrs: slash8s(127, 1), httpsEnabled: false } },
    // Rules the component never writes, added to its group with the real alicloud classes.
    { scenario: "extra-rules", name: "sshslash8x128", args: { securityGroup: QUIET_GROUP, rules: slash8s(128).map((cidrIp) => ({ cidrIp })) } },
    { scenario: "extra-rules", name: "sshslash8x127", args: { securityGroup: QUIET_GROUP, rules: slash8s(127, 1).map((cidrIp) => ({ cidrIp })) } },
    {
        scenario: "extra-rules",
        name: "sshsplitgroups",
        args: {
            securityGroup: QUIET_GROUP,
            secondGroup: true,
            rules: slash8s(128).map((cidrIp, i) => ({ cidrIp, group: i < 64 ? "a" : "b" })),
        },
    },
    { scenario: "extra-rules", name: "sshv6x128", args: { securityGroup: QUIET_GROUP, rules: v6Slash11s(128).map((ipv6CidrIp) => ({ ipv6CidrIp })) } },
    { scenario: "extra-rules", name: "sshv6x127", args: { securityGroup: QUIET_GROUP, rules: v6Slash11s(127).map((ipv6CidrIp) => ({ ipv6CidrIp })) } },
    {
        scenario: "extra-rules",
        name: "udpslash8",
        args: { securityGroup: QUIET_GROUP, rules: slash8s(128).map((cidrIp) => ({ cidrIp, ipProtocol: "udp", portRange: "53/53" })) },
    },
    { scenario: "extra-rules", name: "plworld", args: { securityGroup: QUIET_GROUP, prefixLists: { world: ["0.0.0.0/1", "128.0.0.0/1"] }, rules: [{ prefixList: "world" }] } },
    { scenario: "extra-rules", name: "ploffice", args: { securityGroup: QUIET_GROUP, prefixLists: { office: ["203.0.113.0/24"] }, rules: [{ prefixList: "office" }] } },
    { scenario: "extra-rules", name: "ploutside", args: { securityGroup: QUIET_GROUP, rules: [{ prefixListId: "pl-outside" }] } },
    // The default group (80 open to the world, no domain) plus 443 open to half the internet through /8 blocks.
    { scenario: "extra-rules", name: "https128", args: { rules: slash8s(128).map((cidrIp) => ({ cidrIp, portRange: "443/443" })) } },
    // DifyHost with settings the config parser refuses.
    { scenario: "host", name: "hostsmall", args: { instanceType: "ecs.t6-c1m1.large", instanceMemoryGib: 2 } },
    { scenario: "host", name: "hostsizedbytags", args: { instanceType: "ecs.hfc7.large" } },
    { scenario: "host", name: "hostunsized", args: { instanceType: "ecs.hfc7.large", instanceCpuCores: null, instanceMemoryGib: null } },
    // (No release below 1.8.0 is pinned: DifyBootstrap needs the opt-out to build it at all.)
    { scenario: "host", name: "hostolddify", args: { difyVersion: "1.7.2", allowUnpinnedDifyVersion: true } },
    { scenario: "host", name: "hostplaindisk", args: { encryptDataDisk: false } },
    // The real RamOAuthApplication class with settings integration-config.ts refuses.
    { scenario: "oauth-app", name: "appserver", args: { appType: "ServerApp" } },
    { scenario: "oauth-app", name: "appnomcpscope", args: { scopes: ["openid"] } },
    { scenario: "oauth-app", name: "appweb", args: { appType: "WebApp" } },
];

let defaultProgram: CapturedResource[];
let httpsProgram: CapturedResource[];
let plainHttpProgram: CapturedResource[];
let cases: CapturedResource[];

beforeAll(async () => {
    const [defaults, https, plain, built] = await Promise.all([
        captureRegistrations({ program: { config: BASE_CONFIG, secretKeys: ["dashscopeApiKey"] } }),
        captureRegistrations({ program: { config: HTTPS_CONFIG, secretKeys: ["dashscopeApiKey"] } }),
        captureRegistrations({ program: { config: PLAIN_HTTP_CONFIG, secretKeys: ["dashscopeApiKey"] } }),
        captureRegistrations({ cases: CASES }),
    ]);
    defaultProgram = defaults.resources;
    httpsProgram = https.resources;
    plainHttpProgram = plain.resources;
    cases = built.resources;
}, 240_000);

function caseResources(name: string): CapturedResource[] {
    const found = resourcesOfCase(cases, name);
    expect(found.length, `resources of case ${name}`).toBeGreaterThan(0);
    return found;
}

/** The resources with `original` swapped for `replacements`. */
function swapped(resources: readonly CapturedResource[], original: CapturedResource, ...replacements: CapturedResource[]): CapturedResource[] {
    return [...resources.filter((r) => r !== original), ...replacements];
}

const rule = (resources: readonly CapturedResource[], portRange: string) =>
    theOne(resources, SECURITY_GROUP_RULE, (r) => r.inputs.portRange === portRange);

const mandatory = (findings: readonly Finding[]) => findings.filter((f) => f.enforcementLevel === "mandatory");


describe("the real program (index.ts), captured under mocks", () => {
    it("registers what the pack looks at: security group rules, the instance, the data disk and the RAM OAuth app", () => {
        const types = new Set(defaultProgram.map((r) => r.type));
        for (const type of [SECURITY_GROUP_RULE, ECS_INSTANCE, ECS_DISK, RAM_OAUTH_APP]) {
            expect(types.has(type), type).toBe(true);
        }
        // The dynamic resources come with their provider's Check applied, as the engine analyses them.
        const app = theOne(defaultProgram, RAM_OAUTH_APP);
        expect(app.checkFailures).toEqual([]);
        expect(app.inputs.scopes).toBeUndefined();
        expect(app.checkedInputs?.scopes).toEqual(["/acs/mcp-server", "openid"]);
        expect(typeof app.checkedInputs?.__provider).toBe("string");
    });

    it("default settings (HTTPS on the EIP): nothing at all, with 443 open beside 80", async () => {
        expect(await runPack(defaultProgram)).toEqual([]);
        expect(rule(defaultProgram, "443/443").inputs.cidrIp).toBe("0.0.0.0/0");
        expect(rule(defaultProgram, "80/80").inputs.cidrIp).toBe("0.0.0.0/0");
    });

    it("plainHttp: no mandatory violation; HTTP without HTTPS is advised against", async () => {
        const findings = await runPack(plainHttpProgram);
        expect(mandatory(findings)).toEqual([]);
        const advisory = findings.filter((f) => f.enforcementLevel === "advisory");
        expect(lines(advisory)).toEqual([
            "http-needs-https: security group dify-sg lets the internet reach port 80 (dify-in-80-0-0-0-0-0) but not 443: " +
                "Dify's console, sign-in and OAuth callback go over plain HTTP. Unset dify-mcp-stack:plainHttp " +
                "(HTTPS with a Let's Encrypt certificate for the EIP or the domain, which opens 443), or narrow allowedCidrs to your own networks",
        ]);
        expect(advisory[0].urn).toBe(rule(plainHttpProgram, "80/80").urn);
    });

    it("with a domain, an admin CIDR and a WebApp: nothing at all", async () => {
        expect(await runPack(httpsProgram)).toEqual([]);
        expect(rule(httpsProgram, "22/22").inputs.cidrIp).toBe("192.0.2.0/24");
        expect(rule(httpsProgram, "443/443").inputs.cidrIp).toBe("0.0.0.0/0");
    });

    it("recognises the RAM OAuth app, and no other of the program's eight dynamic resources, as the OAuth app", () => {
        const dynamic = defaultProgram.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic"));
        expect(dynamic).toHaveLength(8);
        expect(dynamic.filter((r) => isOAuthApp(r.type, analysedInputs(r))).map((r) => r.name)).toEqual(["mcp-oauth"]);
        expect(checkOAuthApp(analysedInputs(theOne(defaultProgram, RAM_OAUTH_APP)))).toBeUndefined();
    });
});

describe("ssh-not-open-to-world and only-web-ports-open-to-world (one rule)", () => {
    const BOTH = ["only-web-ports-open-to-world", "ssh-not-open-to-world"];

    it("DifySecurityGroup with adminCidr 0.0.0.0/0: both, on the SSH rule", async () => {
        const resources = caseResources("sgadminworld");
        const findings = await runPack(resources);
        expect(policiesReporting(findings)).toEqual(BOTH);
        expect(new Set(findings.map((f) => f.urn))).toEqual(new Set([rule(resources, "22/22").urn]));
        expect(lines(findings)).toContain(
            "ssh-not-open-to-world: ingress tcp 22/22 from cidrIp 0.0.0.0/0 opens SSH (port 22) to the internet; restrict " +
                "the source to your admin network (adminCidr) or use Cloud Assistant / a bastion instead",
        );
    });

    it("the world as two /1 halves: DifySecurityGroup with adminCidr 0.0.0.0/1, and a copy of its rule for 128.0.0.0/1", async () => {
        const resources = caseResources("sgadminhalf");
        const ssh = rule(resources, "22/22");
        expect(policiesReporting(await runPack(resources))).toEqual(BOTH);
        // The component writes one adminCidr; the other half is the same rule with cidrIp changed.
        const otherHalf = variantOf(ssh, "upper", { cidrIp: "128.0.0.0/1" });
        const findings = await runPack([...resources, otherHalf]);
        expect(findings.filter((f) => f.policy === "ssh-not-open-to-world").map((f) => f.urn).sort()).toEqual([ssh.urn, otherHalf.urn].sort());
    });

    it("DifySecurityGroup with adminCidr ::/0 (the component puts it in cidrIp): both", async () => {
        const resources = caseResources("sgadminv6");
        expect(rule(resources, "22/22").inputs.cidrIp).toBe("::/0");
        expect(policiesReporting(await runPack(resources))).toEqual(BOTH);
    });

    // The component never writes ipv6CidrIp: the captured SSH rule of the HTTPS program with cidrIp replaced by it.
    it.each([
        ["::/0", BOTH],
        ["::0/0", BOTH],
        ["0::0/0", BOTH],
        ["0:0:0:0:0:0:0:0/0", BOTH],
        ["0000:0000::/0", BOTH],
        ["::/1", BOTH],
        ["2000::/3", BOTH],
        ["2000::/4", BOTH],
        ["2400::/10", BOTH],
        ["::ffff:0.0.0.0/0", BOTH],
        ["2400::/11", []],
        ["8000::/1", []],
        ["2001:db8::/32", []],
        ["2408:4000::1", []],
    ])("ipv6CidrIp %s on the SSH rule: %j", async (ipv6CidrIp, expected) => {
        const ssh = rule(httpsProgram, "22/22");
        const spelled = variantOf(ssh, "v6", { cidrIp: undefined, ipv6CidrIp });
        const findings = await runPack(swapped(httpsProgram, ssh, spelled));
        expect(policiesReporting(findings.filter((f) => f.urn === spelled.urn))).toEqual(expected);
    });

    // The component writes "<port>/<port>" over TCP only: the default program's world-open 80 rule with the port
    // range (and protocol) changed.
    it.each([
        [{ portRange: "80/80" }, []],
        [{ portRange: "443/443" }, []],
        [{ portRange: "22/22" }, BOTH],
        [{ portRange: "1/65535" }, BOTH],
        [{ portRange: "0/65535" }, BOTH],
        [{ portRange: "20/30" }, BOTH],
        [{ portRange: undefined }, BOTH],
        [{ portRange: "-1/-1", ipProtocol: "all" }, BOTH],
        [{ portRange: "-1/-1", ipProtocol: "ALL" }, BOTH],
        [{ portRange: "22/22", ipProtocol: "TCP" }, BOTH],
        [{ portRange: "5001/5001" }, ["only-web-ports-open-to-world"]],
        [{ portRange: "80/443" }, ["only-web-ports-open-to-world"]],
        [{ portRange: "80/80", ipProtocol: "udp" }, ["only-web-ports-open-to-world"]],
        [{ portRange: "53/53", ipProtocol: "udp" }, ["only-web-ports-open-to-world"]],
        [{ portRange: "22/22", ipProtocol: "udp" }, ["only-web-ports-open-to-world"]],
        [{ portRange: "-1/-1", ipProtocol: "icmp" }, []],
        [{ portRange: "-1/-1", ipProtocol: "gre" }, []],
        [{ portRange: "22/22", type: "egress" }, []],
        [{ portRange: "22/22", policy: "drop" }, []],
        [{ portRange: "22/22", policy: undefined }, BOTH],
    ])("the world-open rule with %j: %j", async (changes, expected) => {
        const http = rule(defaultProgram, "80/80");
        const changed = variantOf(http, "changed", changes);
        const findings = await runPack(swapped(defaultProgram, http, changed));
        expect(policiesReporting(mandatory(findings).filter((f) => f.urn === changed.urn))).toEqual(expected);
    });

    it.each([["0.0.0.0/7"], ["10.1.2.3/0"], ["128.0.0.0/2"]])("cidrIp %s (wider than /8, host bits or not) on SSH: both", async (cidrIp) => {
        const ssh = rule(httpsProgram, "22/22");
        const spelled = variantOf(ssh, "v4", { cidrIp });
        expect(policiesReporting((await runPack(swapped(httpsProgram, ssh, spelled))).filter((f) => f.urn === spelled.urn))).toEqual(BOTH);
    });

    it.each([["1.0.0.0/8"], ["203.0.113.7"], ["192.0.2.0/24"]])("cidrIp %s on SSH: allowed", async (cidrIp) => {
        const ssh = rule(httpsProgram, "22/22");
        const spelled = variantOf(ssh, "v4", { cidrIp });
        expect((await runPack(swapped(httpsProgram, ssh, spelled))).filter((f) => f.urn === spelled.urn)).toEqual([]);
    });
});

describe("security-group-rule-readable", () => {
    it.each([["sgadminoctal", "010.0.0.0/8"], ["sgadminzeroprefix", "0.0.0.0/00"]])(
        "DifySecurityGroup (case %s) with adminCidr %s: refused as unreadable, not passed",
        async (name, cidr) => {
            const resources = caseResources(name);
            expect(lines(await runPack(resources))).toEqual([
                `security-group-rule-readable: ingress rule cannot be checked: cidrIp "${cidr}" cannot be parsed; write an IPv4 ` +
                    "block in decimal (203.0.113.0/24) or an IPv6 block (2001:db8::/32)",
            ]);
        },
    );

    // Spellings the component cannot write: its SSH rule with one field changed.
    it.each([
        [{ portRange: "22-22" }, 'portRange "22-22" cannot be parsed'],
        [{ portRange: "22" }, 'portRange "22" cannot be parsed'],
        [{ portRange: "443/80" }, 'portRange "443/80" cannot be parsed'],
        [{ ipProtocol: "sctp" }, 'ipProtocol "sctp" is not one of tcp, udp, all, icmp, icmpv6, gre'],
        [{ cidrIp: undefined, ipv6CidrIp: "fe80::/10%eth0" }, 'ipv6CidrIp "fe80::/10%eth0" cannot be parsed'],
        [{ cidrIp: " 0.0.0.0/0" }, 'cidrIp " 0.0.0.0/0" cannot be parsed'],
    ])("the SSH rule with %j: %s", async (changes, problem) => {
        const ssh = rule(httpsProgram, "22/22");
        const changed = variantOf(ssh, "changed", changes);
        const findings = (await runPack(swapped(httpsProgram, ssh, changed))).filter((f) => f.urn === changed.urn);
        expect(policiesReporting(findings)).toContain("security-group-rule-readable");
        expect(findings.find((f) => f.policy === "security-group-rule-readable")?.message).toContain(problem);
    });
});

describe("no-world-open-across-rules (stack policy)", () => {
    it("128 SSH rules of /8 blocks in one group (half of IPv4, no block wider than /8): reported, and by no other policy", async () => {
        const resources = caseResources("sshslash8x128");
        const findings = await runPack(resources);
        expect(findings).toHaveLength(1);
        expect(findings[0].policy).toBe("no-world-open-across-rules");
        expect(findings[0].message).toMatch(
            /^128 ingress rule\(s\) of security group sshslash8x128-sg \(sshslash8x128-extra-0, .* and 124 more\) together open TCP 22 \(SSH\) to 50% of the IPv4 internet \(0\.0\.0\.0\/8, 1\.0\.0\.0\/8, .*\); only TCP 80\/443 may be open that widely$/,
        );
        expect(await runPack(resources, packWithout("no-world-open-across-rules"))).toEqual([]);
    });

    it("127 of them (just under half): allowed", async () => {
        expect(await runPack(caseResources("sshslash8x127"))).toEqual([]);
    });

    it("the same 128 blocks split over two security groups: allowed (each group opens a quarter)", async () => {
        expect(await runPack(caseResources("sshsplitgroups"))).toEqual([]);
    });

    it("128 IPv6 /11 blocks (half of 2000::/3) on SSH: reported; 127: allowed", async () => {
        const findings = await runPack(caseResources("sshv6x128"));
        expect(policiesReporting(findings)).toEqual(["no-world-open-across-rules"]);
        expect(findings[0].message).toContain("together open TCP 22 (SSH) to 50% of the IPv6 internet (2000::/11, 2020::/11,");
        expect(await runPack(caseResources("sshv6x127"))).toEqual([]);
    });

    it("UDP is not exempt: 128 /8 blocks on UDP 53", async () => {
        const findings = await runPack(caseResources("udpslash8"));
        expect(policiesReporting(findings)).toEqual(["no-world-open-across-rules"]);
        expect(findings[0].message).toContain("together open UDP 53 to 50% of the IPv4 internet");
    });

    it("an alicloud.ecs.EcsPrefixList holding 0.0.0.0/1 and 128.0.0.0/1 as an SSH rule's source: reported", async () => {
        const findings = await runPack(caseResources("plworld"));
        expect(lines(findings)).toEqual([
            "no-world-open-across-rules: 1 ingress rule(s) of security group plworld-sg (plworld-extra-0) together open " +
                "TCP 22 (SSH) to 100% of the IPv4 internet (0.0.0.0/1 (prefix list plworld-pl-world), 128.0.0.0/1 (prefix " +
                "list plworld-pl-world)); only TCP 80/443 may be open that widely",
        ]);
    });

    it("a prefix list of an office network: allowed; a prefix list from outside the stack: refused", async () => {
        expect(await runPack(caseResources("ploffice"))).toEqual([]);
        expect(lines(await runPack(caseResources("ploutside")))).toEqual([
            "no-world-open-across-rules: ingress rule ploutside-extra-0 admits prefix list pl-outside, which is not declared " +
                "in this stack, so the pack cannot see who it lets in; use cidrIp, or an alicloud.ecs.EcsPrefixList of this stack",
        ]);
    });

    it("in a first preview (group and prefix-list ids unknown) the rules are still grouped and read", async () => {
        const preview = (name: string) =>
            caseResources(name).map((r) => (r.type === SECURITY_GROUP_RULE ? withUnknown(r, ["securityGroupId", "prefixListId"]) : r));
        expect(policiesReporting(await runPack(preview("sshslash8x128")))).toEqual(["no-world-open-across-rules"]);
        expect(policiesReporting(await runPack(preview("plworld")))).toEqual(["no-world-open-across-rules"]);
        expect(await runPack(preview("sshsplitgroups"))).toEqual([]);
    });

    it("web ports are exempt: 443 open to half of IPv4 through 128 /8 rules", async () => {
        expect(await runPack(caseResources("https128"))).toEqual([]);
    });
});

describe("http-needs-https (stack policy, advisory)", () => {
    it("is advisory: plain HTTP (plainHttp) is a supported opt-out", () => {
        expect(policies.find((p) => p.name === "http-needs-https")?.enforcementLevel).toBe("advisory");
    });

    it("DifySecurityGroup with allowedCidrs 0.0.0.0/1 + 128.0.0.0/1 and no HTTPS: reported; with HTTPS: allowed", async () => {
        const findings = await runPack(caseResources("sghalvesnohttps"));
        expect(findings.map((f) => [f.policy, f.enforcementLevel])).toEqual([["http-needs-https", "advisory"]]);
        expect(findings[0].message).toMatch(/^security group sghalvesnohttps-sg lets the internet reach port 80 \(sghalvesnohttps-in-80-0-0-0-0-1, sghalvesnohttps-in-80-128-0-0-0-1\) but not 443/);
        expect(await runPack(caseResources("sghalveshttps"))).toEqual([]);
    });

    it("allowedCidrs of 128 /8 blocks (half of IPv4) without HTTPS: reported; 127 blocks: allowed", async () => {
        expect(policiesReporting(await runPack(caseResources("sgslash8x128")))).toEqual(["http-needs-https"]);
        expect(await runPack(caseResources("sgslash8x127"))).toEqual([]);
    });

    it("443 open as widely as 80, even through many blocks, satisfies it", async () => {
        expect(await runPack(caseResources("https128"))).toEqual([]);
    });
});

describe("data-disk-encrypted and data-disk-kept-unencrypted", () => {
    it("DifyHost registers its data disk encrypted, the flag pinned by ignoreChanges: allowed", async () => {
        const disk = theOne(defaultProgram, ECS_DISK);
        expect(disk.inputs.encrypted).toBe(true);
        expect(disk.ignoreChanges).toEqual(expect.arrayContaining(["encrypted"]));
        expect(await runPack([disk])).toEqual([]);
    });

    it("DifyHost with encryptDataDisk false (a new disk, unencrypted by choice): refused", async () => {
        const disk = theOne(caseResources("hostplaindisk"), ECS_DISK);
        expect(disk.inputs.encrypted).toBe(false);
        expect(lines(await runPack([disk]))).toEqual([
            "data-disk-encrypted: the disk is not encrypted (encrypted is false); Dify's volumes and generated secrets live " +
                "on it: create it with encrypted: true (optionally kmsKeyId for your own KMS key; DifyHost does unless " +
                "dify-mcp-stack:encryptDataDisk is false)",
        ]);
    });

    it("a disk that predates encryption, kept by DifyHost: not blocked, advised against", async () => {
        // What the engine analyses for it: DifyHost's disk with the ignored `encrypted` reset to the old inputs,
        // which had none, and (for the stack policy) the state read from the cloud: created, not encrypted.
        const kept = variantOf(theOne(defaultProgram, ECS_DISK), "kept", { encrypted: undefined });
        kept.outputs = { ...kept.outputs, encrypted: false, createTime: "2025-11-02T08:00:00Z", status: "In_use" };
        const findings = await runPack([kept]);
        expect(findings.map((f) => [f.policy, f.enforcementLevel])).toEqual([["data-disk-kept-unencrypted", "advisory"]]);
        expect(findings[0].message).toMatch(/^data disk dify-data-kept is not encrypted and is kept as it is/);
        expect(await runPack([kept], packWithout("data-disk-kept-unencrypted"))).toEqual([]);
        // A disk still to be created (a preview: no createTime yet) is not "kept".
        expect(await runPack([withUnknown(theOne(defaultProgram, ECS_DISK), ["createTime"])])).toEqual([]);
    });

    it("a disk that does not pin its encryption gets no such leeway", async () => {
        const unpinned = variantOf(theOne(defaultProgram, ECS_DISK), "unpinned", { encrypted: undefined });
        unpinned.ignoreChanges = [];
        expect(lines(await runPack([unpinned]))).toEqual([
            "data-disk-encrypted: the disk is not encrypted (encrypted is not set); Dify's volumes and generated secrets " +
                "live on it: create it with encrypted: true (optionally kmsKeyId for your own KMS key; DifyHost does unless " +
                "dify-mcp-stack:encryptDataDisk is false)",
        ]);
    });

    it("an instance's inline dataDisks (DifyHost uses none: its instance with one added)", async () => {
        const instance = theOne(httpsProgram, ECS_INSTANCE);
        const withDisk = (encrypted: boolean) =>
            variantOf(instance, "inline", { dataDisks: [{ name: "extra", category: "cloud_essd", size: 40, encrypted }] });
        expect(lines(await runPack([withDisk(false)]))).toEqual([
            "data-disk-encrypted: inline data disk(s) extra are not encrypted; set encrypted: true on each entry of dataDisks",
        ]);
        expect(await runPack([withDisk(true)])).toEqual([]);
    });
});

describe("instance-minimum-size and dify-version-minimum", () => {
    it("DifyHost on ecs.t6-c1m1.large: too small", async () => {
        expect(lines(await runPack(caseResources("hostsmall")))).toEqual([
            "instance-minimum-size: instance type ecs.t6-c1m1.large has 2 vCPU and 2 GiB; Dify needs at least 2 vCPU and 4 GiB",
        ]);
    });

    it("a type the name does not size is sized from the tags DifyHost sets from the region's answer, and refused without them", async () => {
        expect(await runPack(caseResources("hostsizedbytags"))).toEqual([]);
        const unsized = await runPack(caseResources("hostunsized"));
        expect(policiesReporting(unsized)).toEqual(["instance-minimum-size"]);
        expect(unsized[0].message).toMatch(/^instance type ecs\.hfc7\.large cannot be sized from its name/);
    });

    it("DifyHost with Dify 1.7.2: too old", async () => {
        expect(lines(await runPack(caseResources("hostolddify")))).toEqual([
            "dify-version-minimum: Dify 1.7.2 is older than 1.8.0, the first release this stack supports (MCP tools need it)",
        ]);
    });

    it("sizes instance types with the config parser's reading of the name", () => {
        expect(instanceTypeSizeFromName("ecs.c7.large")).toEqual({ vcpus: 2, memoryGib: 4 });
        expect(instanceTypeSizeFromName("ecs.g7.2xlarge")).toEqual({ vcpus: 8, memoryGib: 32 });
        expect(instanceTypeSizeFromName("ecs.u1-c1m2.large")).toEqual({ vcpus: 2, memoryGib: 4 });
        expect(instanceTypeSizeFromName("ecs.t6-c1m1.large")).toEqual({ vcpus: 2, memoryGib: 2 });
        expect(instanceTypeSizeFromName("ecs.e-c1m4.xlarge")).toEqual({ vcpus: 4, memoryGib: 16 });
        expect(instanceTypeSizeFromName("ecs.hfc7.large")).toBeUndefined();
        expect(instanceTypeSizeFromName("ecs.made-up.large")).toBeUndefined();
    });

    it("orders Dify versions numerically, with pre-releases before and fix tags after the release", () => {
        expect(difyVersionAtLeast("1.10.0", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.8.0", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.8.0-rc1", "1.8.0")).toBe(false);
        expect(difyVersionAtLeast("1.8.0-fix.1", "1.8.0")).toBe(true);
        expect(difyVersionAtLeast("1.7.99", "1.8.0")).toBe(false);
        expect(difyVersionAtLeast("latest", "1.8.0")).toBe(false);
    });
});

describe("oauth-app-user-sign-in and oauth-app-mcp-ready (the RamOAuthApplication dynamic resource)", () => {
    it("the real class with appType ServerApp: refused by the pack (its provider's own Check refuses it too)", async () => {
        const resources = caseResources("appserver");
        const app = theOne(resources, RAM_OAUTH_APP);
        expect(app.checkFailures?.map((f) => f.property)).toEqual(["appType"]);
        expect(lines(await runPack(resources))).toEqual([
            'oauth-app-user-sign-in: appType is "ServerApp"; must be WebApp or NativeApp: the OpenAPI MCP server only accepts ' +
                "apps a person signs in to (a ServerApp has no user sign-in and is rejected as the MCP server's OAuth client)",
        ]);
    });

    it("the real class without the /acs/mcp-server scope", async () => {
        expect(lines(await runPack(caseResources("appnomcpscope")))).toEqual([
            'oauth-app-mcp-ready: scopes [openid] must include "/acs/mcp-server"',
        ]);
    });

    it("another protocol version (the class always sends 2.1: its registration with that field changed)", async () => {
        const app = theOne(caseResources("appweb"), RAM_OAUTH_APP);
        expect(await runPack([app])).toEqual([]);
        expect(lines(await runPack([variantOf(app, "v2", { protocolVersion: "2.0" })]))).toEqual([
            'oauth-app-mcp-ready: protocolVersion is "2.0", must be "2.1" (OAuth 2.1)',
        ]);
    });

    it("the same app registered as an anonymous dynamic resource is still checked", async () => {
        const app = { ...theOne(caseResources("appserver"), RAM_OAUTH_APP), type: DYNAMIC_RESOURCE };
        expect(policiesReporting(await runPack([app]))).toEqual(["oauth-app-user-sign-in"]);
    });
});

describe("address blocks (policy/addresses.ts)", () => {
    it("reads IPv6 in every RFC 4291 spelling", () => {
        const zero = 0n;
        for (const spelling of ["::", "::0", "0::0", "0:0:0:0:0:0:0:0", "0000::", "::0.0.0.0"]) {
            expect(parseIpv6Address(spelling), spelling).toBe(zero);
        }
        expect(parseIpv6Address("2001:DB8::1")).toBe((0x20010db8n << 96n) | 1n);
        expect(parseIpv6Address("::ffff:192.0.2.1")).toBe((0xffffn << 32n) | 0xc0000201n);
        for (const bad of ["1::2::3", ":::", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "fe80::1%eth0", "g::"]) {
            expect(parseIpv6Address(bad), bad).toBeUndefined();
        }
    });

    it("reads blocks of either family, bare addresses as one host, and refuses what input-rules.ts refuses", () => {
        expect(parseAddressBlock("0.0.0.0/0")).toMatchObject({ family: "ipv4", prefix: 0, size: 1n << 32n });
        expect(parseAddressBlock("203.0.113.7")).toMatchObject({ family: "ipv4", prefix: 32, size: 1n });
        expect(parseAddressBlock("::/0")).toMatchObject({ family: "ipv6", prefix: 0 });
        expect(parseAddressBlock("2001:db8::")).toMatchObject({ family: "ipv6", prefix: 128 });
        for (const bad of ["010.0.0.0/8", "0.0.0.0/00", "0.0.0.0/33", "::/129", "::/01", "any", ""]) {
            expect(parseAddressBlock(bad), bad).toBeUndefined();
        }
    });

    it("counts coverage against the internet: all of IPv4, IPv6's 2000::/3", () => {
        const blocks = (...texts: string[]) => texts.map((t) => parseAddressBlock(t)!);
        expect(internetAddressesCovered(blocks("0.0.0.0/1", "0.0.0.0/2", "128.0.0.0/1"), "ipv4")).toBe(1n << 32n);
        expect(internetAddressesCovered(blocks("::/0"), "ipv6")).toBe(1n << 125n);
        expect(internetAddressesCovered(blocks("8000::/1"), "ipv6")).toBe(0n);
        expect(isWorldWideBlock(parseAddressBlock("0.0.0.0/7")!)).toBe(true);
        expect(isWorldWideBlock(parseAddressBlock("0.0.0.0/8")!)).toBe(false);
        expect(coverMostOfInternet(blocks(...slash8s(128)), "ipv4")).toBe(true);
        expect(coverMostOfInternet(blocks(...slash8s(127)), "ipv4")).toBe(false);
    });

    it("reads port ranges: unset and -1/-1 mean all ports", () => {
        expect(parsePortRange(undefined)).toEqual({ from: 1, to: 65535 });
        expect(parsePortRange("-1/-1")).toEqual({ from: 1, to: 65535 });
        expect(parsePortRange("22/22")).toEqual({ from: 22, to: 22 });
        expect(parsePortRange("22-22")).toBeUndefined();
        expect(parsePortRange("1/65536")).toBeUndefined();
    });
});
