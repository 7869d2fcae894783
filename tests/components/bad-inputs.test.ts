// Bad input stops at preview and never reaches a shell: every setting that ends up in a shell script, Dify's
// .env, YAML, daemon.json or a URL, with values that must be refused and where they are caught:
//   preview   - the config parser (parseStackSettings / parseIntegrationSettings), so `pulumi preview` fails
//               with the key, what was given (never a secret) and what is allowed;
//   bootstrap - the shipped bootstrap's own set_env_value, run for real;
//   user data - renderBootstrapConfig, which writes the bootstrap's settings file.
// Each bad row is something the stack accepted before these rules; each setting also has good rows, so the
// rules do not refuse what people really configure.
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runBootstrapFunctions } from "./tooling";
import { CONFIG_NAMESPACE, StackConfigError, parseStackSettings } from "../../config/stack-config";
import { parseIntegrationSettings } from "../../config/integration-config";
import { BootstrapSettings, compactScript, readBootstrapScript, renderBootstrapConfig } from "../../components/bootstrap/userdata";

type Values = Record<string, unknown>;

/** Settings read by parseIntegrationSettings; every other key is the stack's. */
const INTEGRATION_KEYS = new Set(["adminEmail", "adminName", "imsEndpoint", "mcpEndpoint", "mcpServerName", "tongyiPluginPackage"]);

interface PreviewRow {
    where: "preview";
    setting: string;
    value: unknown;
    /** Other settings the row needs (e.g. cpuArchitecture for an image id). */
    with?: Values;
    /** A fragment of the problem, which also names the key. */
    expected: string;
    /** Must not appear in any message (a password in a URL). */
    secret?: string;
}

interface BootstrapRow {
    where: "bootstrap";
    setting: string;
    key: string;
    value: string;
    expected: string;
}

interface UserDataRow {
    where: "user data";
    setting: "certEmail" | "domain" | "pipMirrorUrl";
    value: string;
    expected: string;
}

type Row = PreviewRow | BootstrapRow | UserDataRow;

const BAD: Row[] = [
    // certEmail: certbot's -m on the instance; nothing that a shell, sed or option parsing would read otherwise.
    { where: "preview", setting: "certEmail", value: "a$(reboot)@x.io", expected: "allowed: an e-mail address such as ops+dify@corp.example.cn" },
    { where: "preview", setting: "certEmail", value: "a`reboot`@x.io", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: '"ops"@example.com', expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops@example.com;reboot", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops|x@example.com", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops&x@example.com", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "-oops@example.com", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops..x@example.com", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops@exa_mple.com", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "certEmail", value: "ops@example.c0m", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "adminEmail", value: "o'neil@example.com", expected: "allowed: an e-mail address such as" },
    { where: "preview", setting: "adminEmail", value: "ops@example.com$(id)", expected: "allowed: an e-mail address" },
    { where: "preview", setting: "adminName", value: "Al", expected: "allowed: 3 to 30 characters" },

    // pipMirrorUrl: Dify's .env (Compose interpolates "$"), then pip inside the plugin daemon and sandbox.
    { where: "preview", setting: "pipMirrorUrl", value: "http://mirrors.aliyun.com/pypi/simple/", expected: "which is not an https URL" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/$HOME/simple/", expected: "contains one of $ `" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/$(reboot)/", expected: "contains one of $" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/`reboot`/", expected: "contains one of" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/simple;reboot", expected: "contains one of" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/simple|sh", expected: "contains one of" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/simple>x", expected: "contains one of" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/pypi/simple/?a=1&b=2", expected: "contains one of" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/pypi/simple/?index=1", expected: "has a query (?) or fragment (#)" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/pypi/simple/#main", expected: "has a query (?) or fragment (#)" },
    { where: "preview", setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/pypi/{x}/", expected: "is not https://host[:port]/path" },
    {
        where: "preview",
        setting: "pipMirrorUrl",
        value: "https://pip:hunter2@pypi.corp.example.cn/simple/",
        expected: 'is "https://***@pypi.corp.example.cn/simple/", which carries credentials',
        secret: "hunter2",
    },

    // registryMirrors: daemon.json strings, built by the bootstrap from a space-separated shell variable.
    { where: "preview", setting: "registryMirrors", value: ["https://$(reboot).mirror.aliyuncs.com"], expected: "contains one of $" },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com>/etc/passwd"], expected: "contains one of" },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com/*"], expected: "is not https://host[:port]/path" },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com?x=1"], expected: "has a query (?) or fragment (#)" },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com#x"], expected: "has a query (?) or fragment (#)" },
    {
        where: "preview",
        setting: "registryMirrors",
        value: ["https://robot:s3cr3t-token@a.mirror.aliyuncs.com"],
        expected: "which carries credentials (user:password@); allowed: https URLs of Docker Hub mirrors",
        secret: "s3cr3t-token",
    },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com", "https://a.mirror.aliyuncs.com"], expected: "twice" },

    // imageSource, acrInstanceId: the instance id goes into the preview warning's command line and the ACR API calls;
    // mirrors only with registry-mirror; acr only with an instance and a release whose images are listed.
    { where: "preview", setting: "imageSource", value: "dockerhub", expected: 'is "dockerhub"; allowed: docker-hub, registry-mirror, acr' },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com"], with: { imageSource: "docker-hub" }, expected: "is set but dify-mcp-stack:imageSource is docker-hub" },
    { where: "preview", setting: "registryMirrors", value: ["https://a.mirror.aliyuncs.com"], with: { imageSource: "acr", acrInstanceId: "cri-abc123" }, expected: "is set but dify-mcp-stack:imageSource is acr" },
    { where: "preview", setting: "acrInstanceId", value: "", with: { imageSource: "acr" }, expected: "is not set but dify-mcp-stack:imageSource is acr; allowed: the id of an existing Container Registry Enterprise Edition instance" },
    { where: "preview", setting: "acrInstanceId", value: "cri-abc;reboot", with: { imageSource: "acr" }, expected: '"cri-" and lowercase letters and digits' },
    { where: "preview", setting: "acrInstanceId", value: "cri-$(reboot)", with: { imageSource: "acr" }, expected: '"cri-" and lowercase letters and digits' },
    { where: "preview", setting: "acrInstanceId", value: "CRI-ABC123", with: { imageSource: "acr" }, expected: "allowed: the id of an existing Container Registry Enterprise Edition instance" },
    { where: "preview", setting: "acrInstanceId", value: "cri-abc123", expected: "is set but dify-mcp-stack:imageSource is registry-mirror; allowed: unset, or imageSource acr" },
    { where: "preview", setting: "difyVersion", value: "1.13.0", with: { imageSource: "acr", acrInstanceId: "cri-abc123" }, expected: "allowed with acr: 1.8.0, 1.14.1 (rules/dify-images.ts)" },

    // adminCidr: SSH, canonical and at most a /16.
    { where: "preview", setting: "adminCidr", value: "10.0.0.1/8", expected: 'which has host bits set; allowed: the block\'s network address, "10.0.0.0/8"' },
    { where: "preview", setting: "adminCidr", value: "203.0.113.7/24", expected: '"203.0.113.0/24"' },
    { where: "preview", setting: "adminCidr", value: "010.1.0.0/16", expected: "allowed: an IPv4 CIDR block written in decimal" },
    { where: "preview", setting: "adminCidr", value: "10.0.0.0/8", expected: "opens SSH to 16,777,216 addresses; allowed: /16 or longer" },
    { where: "preview", setting: "adminCidr", value: "192.168.0.0/15", expected: "allowed: /16 or longer" },

    // allowedCidrs: canonical, /8 or longer unless exactly 0.0.0.0/0, no duplicates, no overlaps.
    { where: "preview", setting: "allowedCidrs", value: ["0.0.0.0/1"], expected: "most of the internet; allowed: blocks of /8 or longer, or exactly 0.0.0.0/0" },
    { where: "preview", setting: "allowedCidrs", value: ["128.0.0.0/1"], expected: "most of the internet" },
    { where: "preview", setting: "allowedCidrs", value: ["64.0.0.0/2", "0.0.0.0/2"], expected: "most of the internet" },
    { where: "preview", setting: "allowedCidrs", value: ["10.0.0.1/8"], expected: '"10.0.0.0/8"' },
    { where: "preview", setting: "allowedCidrs", value: ["203.0.113.0/24", "203.0.113.0/24"], expected: 'contains "203.0.113.0/24" twice' },
    { where: "preview", setting: "allowedCidrs", value: ["203.0.113.0/24", "203.0.113.128/25"], expected: "which overlap" },
    { where: "preview", setting: "allowedCidrs", value: ["0.0.0.0/0", "203.0.113.0/24"], expected: 'contains "0.0.0.0/0" and "203.0.113.0/24", which overlap' },

    // vpcCidr / vswitchCidr: canonical, Alibaba's private ranges and masks, the vSwitch inside the VPC.
    { where: "preview", setting: "vpcCidr", value: "172.16.0.1/16", expected: '"172.16.0.0/16"' },
    { where: "preview", setting: "vpcCidr", value: "8.8.0.0/16", with: { vswitchCidr: "8.8.0.0/24" }, expected: "Alibaba Cloud's private VPC ranges" },
    { where: "preview", setting: "vpcCidr", value: "100.64.0.0/10", with: { vswitchCidr: "100.64.0.0/24" }, expected: "allowed: a block of 10.0.0.0/8" },
    { where: "preview", setting: "vpcCidr", value: "172.0.0.0/8", with: { vswitchCidr: "172.16.0.0/24" }, expected: "allowed: a block of" },
    { where: "preview", setting: "vpcCidr", value: "172.16.0.0/29", with: { vswitchCidr: "172.16.0.0/29" }, expected: "from /8 to /28" },
    { where: "preview", setting: "vswitchCidr", value: "10.0.0.0/24", expected: 'outside vpcCidr "172.16.0.0/16"; allowed: a block inside vpcCidr, such as 172.16.0.0/24' },
    { where: "preview", setting: "vswitchCidr", value: "172.16.0.5/24", expected: '"172.16.0.0/24"' },
    { where: "preview", setting: "vswitchCidr", value: "172.16.0.0/30", expected: "from /16 to /29 inside vpcCidr" },
    { where: "preview", setting: "vswitchCidr", value: "10.0.0.0/15", with: { vpcCidr: "10.0.0.0/8" }, expected: "from /16 to /29" },

    // tags: Alibaba Cloud's rules, and never the stack's own tags.
    { where: "preview", setting: "tags", value: ["aliyun-env=dev"], expected: 'starts its key or value with "aliyun" or "acs:"' },
    { where: "preview", setting: "tags", value: ["acs:team=ops"], expected: 'with "aliyun" or "acs:"' },
    { where: "preview", setting: "tags", value: ["owner=acs:ram"], expected: 'with "aliyun" or "acs:"' },
    { where: "preview", setting: "tags", value: ["docs=https://wiki.example.com"], expected: 'contains "http://" or "https://"' },
    { where: "preview", setting: "tags", value: [`${"k".repeat(129)}=v`], expected: "has a key of 129 characters (Alibaba Cloud allows 128)" },
    { where: "preview", setting: "tags", value: [`team=${"v".repeat(129)}`], expected: "has a value of 129 characters" },
    { where: "preview", setting: "tags", value: ["stack=prod"], expected: `would replace the stack's own tag "stack"` },
    { where: "preview", setting: "tags", value: ["managed-by=terraform"], expected: `own tag "managed-by"` },
    { where: "preview", setting: "tags", value: ["Project=x"], expected: `own tag "project"` },
    { where: "preview", setting: "tags", value: ["dify-version=0.1.0"], expected: `own tag "dify-version"` },
    { where: "preview", setting: "tags", value: ["cpu-cores=64"], expected: `own tag "cpu-cores"` },
    { where: "preview", setting: "tags", value: ["memory-gib=1"], expected: `own tag "memory-gib"` },
    { where: "preview", setting: "tags", value: ["team=a", "team=b"], expected: 'sets the key "team" twice' },
    { where: "preview", setting: "tags", value: ["line=a\nb"], expected: "has a control character" },
    {
        where: "preview",
        setting: "tags",
        value: Array.from({ length: 15 }, (_, i) => `t${i}=v`),
        expected: "has 15 tags; allowed: at most 14 (Alibaba Cloud allows 20 on a resource, and the stack sets 6 itself",
    },

    // imageId: only the systems bootstrap.sh installs Docker on, of the chosen architecture.
    { where: "preview", setting: "imageId", value: "m-bp1abcdefghijklmnop", expected: "a custom image's system cannot be checked at preview" },
    { where: "preview", setting: "imageId", value: "centos_7_9_x64_20G_alibase_20240628.vhd", expected: "Ubuntu 22.04 or 24.04, Alibaba Cloud Linux 3" },
    { where: "preview", setting: "imageId", value: "debian_12_6_x64_20G_alibase_20240819.vhd", expected: "a system the bootstrap supports" },
    { where: "preview", setting: "imageId", value: "ubuntu_20_04_x64_20G_alibase_20240130.vhd", expected: "a system the bootstrap supports" },
    { where: "preview", setting: "imageId", value: "aliyun_3_x64_20G_nocloud_alibase_20251030.vhd", expected: "a system the bootstrap supports" },
    { where: "preview", setting: "imageId", value: "ubuntu_22_04_x64_20G_alibase_20240220.vhd;reboot", expected: "a system the bootstrap supports" },
    { where: "preview", setting: "imageId", value: "ubuntu_22_04_arm64_20G_alibase_20240220.vhd", expected: "an arm64 image, but cpuArchitecture is x86_64" },
    {
        where: "preview",
        setting: "imageId",
        value: "aliyun_3_x64_20G_alibase_20241103.vhd",
        with: { cpuArchitecture: "arm64" },
        expected: "an x86_64 image, but cpuArchitecture is arm64",
    },

    // tongyiPluginPackage: an absolute path of a .difypkg, no shell characters.
    { where: "preview", setting: "tongyiPluginPackage", value: "/srv/plugins/tongyi.zip", expected: "allowed: the absolute path of a .difypkg file" },
    { where: "preview", setting: "tongyiPluginPackage", value: "plugins/tongyi.difypkg", expected: "the absolute path of a .difypkg file" },
    { where: "preview", setting: "tongyiPluginPackage", value: "~/tongyi.difypkg", expected: "the absolute path" },
    { where: "preview", setting: "tongyiPluginPackage", value: "/tmp/$(reboot).difypkg", expected: "the absolute path" },
    { where: "preview", setting: "tongyiPluginPackage", value: "/tmp/my plugin.difypkg", expected: "the absolute path" },
    { where: "preview", setting: "tongyiPluginPackage", value: "/tmp/a;b.difypkg", expected: "the absolute path" },

    // imsEndpoint / mcpEndpoint: https only, a host and nothing else.
    { where: "preview", setting: "imsEndpoint", value: "http://ims.aliyuncs.com", expected: "which is not https; allowed: an https endpoint" },
    { where: "preview", setting: "imsEndpoint", value: "https://ims.aliyuncs.com/v1", expected: "is not a host name or https://host[:port] without a path" },
    { where: "preview", setting: "imsEndpoint", value: "https://ak:hunter2@ims.aliyuncs.com", expected: "carries credentials", secret: "hunter2" },
    { where: "preview", setting: "mcpEndpoint", value: "http://openapi-mcp.cn-hangzhou.aliyuncs.com", expected: "which is not https" },
    { where: "preview", setting: "mcpEndpoint", value: "openapi-mcp.cn-hangzhou.aliyuncs.com;reboot", expected: "contains one of" },
    { where: "preview", setting: "mcpEndpoint", value: "ftp://openapi-mcp.cn-hangzhou.aliyuncs.com", expected: "which is not https" },

    // mcpServerName: a path segment of the MCP server's URL; 3-64 lowercase letters, digits, _ and -, no leading digit.
    { where: "preview", setting: "mcpServerName", value: "ab", expected: 'allowed: 3-64 lowercase letters, digits, "_" and "-", not starting with a digit' },
    { where: "preview", setting: "mcpServerName", value: `d${"x".repeat(64)}`, expected: "allowed: 3-64 lowercase letters" },
    { where: "preview", setting: "mcpServerName", value: "9lives", expected: "not starting with a digit" },
    { where: "preview", setting: "mcpServerName", value: "Dify-MCP", expected: "allowed: 3-64 lowercase letters" },
    { where: "preview", setting: "mcpServerName", value: "dify/../mcp", expected: "allowed: 3-64 lowercase letters" },
    { where: "preview", setting: "mcpServerName", value: "dify mcp", expected: "allowed: 3-64 lowercase letters" },

    // set_env_value: a line break in a value would add a line of its own to Dify's .env.
    { where: "bootstrap", setting: "pipMirrorUrl", key: "PIP_MIRROR_URL", value: "https://pypi.example.com/simple\nSECRET_KEY=chosen", expected: "contains a newline or carriage return" },
    { where: "bootstrap", setting: "certEmail", key: "CERTBOT_EMAIL", value: "ops@example.com\r", expected: "contains a newline or carriage return" },
    { where: "bootstrap", setting: "domain", key: "NGINX_SERVER_NAME", value: "dify.example.com\n", expected: "contains a newline or carriage return" },
    // Compose expands $ in .env values, so the container would receive something else.
    { where: "bootstrap", setting: "pipMirrorUrl", key: "PIP_MIRROR_URL", value: "https://pypi.example.com/${HOME}/simple", expected: "which Compose would expand" },
    { where: "bootstrap", setting: "(key)", key: "BAD KEY", value: "x", expected: 'refusing the key "BAD KEY"' },
    { where: "bootstrap", setting: "(key)", key: "A=B", value: "x", expected: "refusing the key" },

    // The settings file in the user data: one line per value.
    { where: "user data", setting: "certEmail", value: "ops@example.com\nDIFY_DOMAIN=evil.example.com", expected: "DIFY_CERT_EMAIL contains a line break" },
    { where: "user data", setting: "pipMirrorUrl", value: "https://pypi.example.com/simple\r", expected: "DIFY_PIP_MIRROR_URL contains a line break" },
];

interface GoodPreviewRow {
    setting: string;
    value: unknown;
    with?: Values;
}

const GOOD: GoodPreviewRow[] = [
    { setting: "certEmail", value: "ops+dify@corp.example.cn", with: { domain: "dify.corp.example.cn" } },
    { setting: "certEmail", value: "first.last_1%x@mail-1.example.com" },
    { setting: "adminEmail", value: "ops+dify@corp.example.cn" },
    { setting: "adminEmail", value: "Admin.Name@Example.COM" },
    // 30 code points: an emoji counts once, as Dify counts it.
    { setting: "adminName", value: `Ops 🚀${"x".repeat(25)}` },
    { setting: "pipMirrorUrl", value: "https://mirrors.aliyun.com/pypi/simple/" },
    { setting: "pipMirrorUrl", value: "https://pypi.tuna.tsinghua.edu.cn/simple" },
    { setting: "pipMirrorUrl", value: "https://10.0.0.5:8443/repository/pypi-proxy/simple/" },
    { setting: "registryMirrors", value: ["https://xxxx.mirror.aliyuncs.com", "https://mirrors-ssl.aliyuncs.com/"] },
    { setting: "registryMirrors", value: ["https://registry.corp.example.cn:5000"] },
    { setting: "imageSource", value: "docker-hub" },
    { setting: "imageSource", value: "registry-mirror" },
    { setting: "imageSource", value: "acr", with: { acrInstanceId: "cri-a1b2c3d4e5f6g7h8" } },
    { setting: "acrInstanceId", value: "cri-a1b2c3d4e5f6g7h8", with: { imageSource: "acr", difyVersion: "1.8.0" } },
    { setting: "adminCidr", value: "203.0.113.7/32" },
    { setting: "adminCidr", value: "10.20.0.0/16" },
    { setting: "allowedCidrs", value: ["0.0.0.0/0"] },
    { setting: "allowedCidrs", value: ["203.0.113.0/24", "198.51.100.7/32", "10.0.0.0/8"] },
    { setting: "vpcCidr", value: "10.0.0.0/8", with: { vswitchCidr: "10.1.2.0/24" } },
    { setting: "vpcCidr", value: "192.168.0.0/16", with: { vswitchCidr: "192.168.1.0/24" } },
    { setting: "vpcCidr", value: "172.16.0.0/12", with: { vswitchCidr: "172.20.0.0/16" } },
    { setting: "vswitchCidr", value: "172.16.8.0/21" },
    { setting: "vswitchCidr", value: "172.16.255.248/29" },
    { setting: "tags", value: ["environment=dev", "owner=platform-team", "cost=a=b", "note="] },
    { setting: "tags", value: Array.from({ length: 14 }, (_, i) => `t${i}=${"v".repeat(128)}`) },
    { setting: "imageId", value: "ubuntu_22_04_x64_20G_alibase_20240220.vhd" },
    { setting: "imageId", value: "ubuntu_24_04_x64_20G_alibase_20240812.vhd" },
    { setting: "imageId", value: "aliyun_3_x64_20G_alibase_20241103.vhd" },
    { setting: "imageId", value: "aliyun_3_arm64_20G_pro_alibase_20240716.vhd", with: { cpuArchitecture: "arm64" } },
    { setting: "imageId", value: "ubuntu_24_04_arm64_20G_alibase_20240812.vhd", with: { cpuArchitecture: "arm64" } },
    { setting: "tongyiPluginPackage", value: "/srv/plugins/langgenius-tongyi_0.1.0@abc+1.difypkg" },
    { setting: "imsEndpoint", value: "ims.aliyuncs.com" },
    { setting: "imsEndpoint", value: "https://ims.aliyuncs.com" },
    { setting: "mcpEndpoint", value: "openapi-mcp.ap-southeast-1.aliyuncs.com" },
    { setting: "mcpEndpoint", value: "https://openapi-mcp.cn-hangzhou.aliyuncs.com:443/" },
    { setting: "mcpServerName", value: "abc" },
    { setting: "mcpServerName", value: `d${"x".repeat(63)}` },
    { setting: "mcpServerName", value: "_dify-mcp_2" },
];

function source(values: Values) {
    return {
        get: (key: string) => {
            const value = values[key];
            return value === undefined ? undefined : typeof value === "string" ? value : JSON.stringify(value);
        },
    };
}

/** The problems the config parser reports for one setting (with the integration's required e-mail set). */
function previewProblems(setting: string, value: unknown, extra: Values = {}): string[] {
    const values = { adminEmail: "ops@example.com", ...extra, [setting]: value };
    const parse = INTEGRATION_KEYS.has(setting)
        ? () => parseIntegrationSettings(source(values), { stack: "dev" })
        : () => parseStackSettings(source(values), { stack: "dev", region: "cn-hangzhou" });
    try {
        parse();
    } catch (error) {
        expect(error).toBeInstanceOf(StackConfigError);
        return (error as StackConfigError).problems;
    }
    return [];
}

function label(value: unknown): string {
    const text = JSON.stringify(value);
    return text.length > 70 ? `${text.slice(0, 67)}...` : text;
}

const script = compactScript(readBootstrapScript());

/** Runs the shipped set_env_value on a small .env; returns the result and the file afterwards. */
function setEnvValue(key: string, value: string) {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bad-inputs-"));
    const envFile = path.join(workDir, ".env");
    const before = "CONSOLE_API_URL=\nPIP_MIRROR_URL=\n";
    fs.writeFileSync(envFile, before);
    const result = runBootstrapFunctions(`set_env_value "$1" "$2" "$VALUE"`, { workDir, script, args: [envFile, key], env: { VALUE: value } });
    return { result, before, after: fs.readFileSync(envFile, "utf8") };
}

const BOOTSTRAP_SETTINGS: BootstrapSettings = {
    difyVersion: "1.14.1",
    publicUrl: "https://dify.example.com",
    initPassword: "Ab1-_=/&.xyzXYZ789",
    dataDiskId: "d-bp1abcdef",
    domain: "dify.example.com",
    certEmail: "ops@example.com",
    registryMirrors: [],
    pipMirrorUrl: "https://mirrors.aliyun.com/pypi/simple/",
};

describe("bad inputs are refused where they are caught", () => {
    it.each(BAD.map((row) => [row.where, row.setting, label(row.value), row] as const))("%s: %s = %s", (_where, _setting, _label, row) => {
        if (row.where === "preview") {
            const problems = previewProblems(row.setting, row.value, row.with);
            const named = problems.filter((p) => p.startsWith(`${CONFIG_NAMESPACE}:${row.setting} `));
            expect(named.join("\n"), `problems: ${JSON.stringify(problems)}`).toContain(row.expected);
            if (row.secret !== undefined) {
                expect(problems.join("\n")).not.toContain(row.secret);
            }
        } else if (row.where === "bootstrap") {
            const { result, before, after } = setEnvValue(row.key, row.value);
            expect(result.status).not.toBe(0);
            expect(result.stderr).toContain(row.expected);
            // The file is left as it was, and a refused value is not logged (it may be a secret).
            expect(after).toBe(before);
            if (row.setting !== "(key)") {
                expect(result.stdout + result.stderr).not.toContain(row.value.trim());
            }
        } else {
            const render = () => renderBootstrapConfig({ ...BOOTSTRAP_SETTINGS, [row.setting]: row.value });
            expect(render).toThrow(row.expected);
            const message = (() => {
                try {
                    render();
                } catch (error) {
                    return (error as Error).message;
                }
                return "";
            })();
            expect(message).not.toContain(row.value.trim());
        }
    });
});

describe("good inputs still pass", () => {
    it.each(GOOD.map((row) => [row.setting, label(row.value), row] as const))("preview: %s = %s", (_setting, _label, row) => {
        expect(previewProblems(row.setting, row.value, row.with)).toEqual([]);
        const values = { adminEmail: "ops@example.com", ...row.with, [row.setting]: row.value };
        const settings: Record<string, unknown> = INTEGRATION_KEYS.has(row.setting)
            ? { ...parseIntegrationSettings(source(values), { stack: "dev" }) }
            : { ...parseStackSettings(source(values), { stack: "dev", region: "cn-hangzhou" }).settings };
        if (row.setting === "tags") {
            const entries = (row.value as string[]).map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]);
            expect(settings.tags).toEqual(Object.fromEntries(entries));
        } else {
            expect(settings[row.setting]).toEqual(row.value);
        }
    });

    it("bootstrap: set_env_value writes a value with / & \\ = and quotes unchanged", () => {
        const value = `a/b&c\\d=e HOME 'q' "d"`;
        const { result, after } = setEnvValue("PIP_MIRROR_URL", value);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(after).toBe(`CONSOLE_API_URL=\nPIP_MIRROR_URL=${value}\n`);
    });

    it("user data: renders one-line values", () => {
        expect(renderBootstrapConfig(BOOTSTRAP_SETTINGS)).toContain("DIFY_CERT_EMAIL='ops@example.com'\n");
    });
});

describe("the bootstrap expands no setting unquoted", () => {
    it("writes a registry mirror with glob characters as given, not as matching file names", () => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bad-inputs-glob-"));
        fs.mkdirSync(path.join(workDir, "https:", "m.example.com"), { recursive: true });
        fs.writeFileSync(path.join(workDir, "https:", "m.example.com", "matched-file"), "");
        const result = runBootstrapFunctions(`cd "$1" && configure_docker`, {
            workDir,
            script,
            args: [workDir],
            stubs: { systemctl: "true" },
            env: { DIFY_REGISTRY_MIRRORS: "https://m.example.com/* https://n.example.com" },
        });
        expect(result.stderr).toBe("");
        const daemon = JSON.parse(fs.readFileSync(path.join(workDir, "etc-docker", "daemon.json"), "utf8"));
        expect(daemon).toEqual({ "registry-mirrors": ["https://m.example.com/*", "https://n.example.com"] });
    });
});
