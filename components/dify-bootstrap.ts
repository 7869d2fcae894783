import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BootstrapSettings, renderBootstrapApplication, renderUserData } from "./bootstrap/userdata";
import { difyPublicUrl } from "../config/stack-config";
import { PINNED_DIFY_VERSIONS, releaseVerification } from "../rules/dify-releases";
import type { DifyNodeRole, ExternalServices } from "./bootstrap/external-services";

/** Refuses the arguments a role cannot use (at construction, so `preview` says so), naming the argument. */
function checkRole(role: DifyNodeRole, args: DifyBootstrapArgs): void {
    if (role !== "single" && role !== "app" && role !== "singleton") {
        throw new Error(`DifyBootstrap: role is ${JSON.stringify(role)}; allowed: "single", "app" or "singleton"`);
    }
    if (role === "single") {
        if (args.externalServices !== undefined) {
            throw new Error('DifyBootstrap: externalServices is for the roles "app" and "singleton"; a "single" node runs its own PostgreSQL, Redis and storage');
        }
        if (args.dataDiskId === undefined) {
            throw new Error('DifyBootstrap: dataDiskId is required for the role "single" (its data disk keeps Dify\'s volumes and secrets)');
        }
        return;
    }
    const refused: Array<[keyof DifyBootstrapArgs, string]> = [
        ["dataDiskId", "it has no data disk (its state is in RDS, Redis and OSS)"],
        ["certEmail", "it gets no certificate (the load balancer terminates TLS)"],
        ["plainHttp", "it is served over the load balancer's HTTPS"],
    ];
    for (const [arg, why] of refused) {
        if (args[arg] !== undefined) {
            throw new Error(`DifyBootstrap: ${arg} is set for the role "${role}": ${why}`);
        }
    }
    if (args.externalServices === undefined) {
        throw new Error(`DifyBootstrap: externalServices is required for the role "${role}" (its PostgreSQL, Redis, OSS bucket and shared keys)`);
    }
}

/**
 * What the user data is made of. Every field goes into the user data and into `settingsDigest`, so changing any of
 * them changes both (DifyHost's instance ignores user data changes; its DifyInstanceConfiguration applies the new
 * settings to the running instance); INIT_PASSWORD depends on none of them and stays.
 */
export interface DifyBootstrapArgs {
    /** Dify release tag to deploy, e.g. "1.14.1" (the `difyVersion` setting). */
    difyVersion: pulumi.Input<string>;
    /**
     * What the node runs: "single" (default) all of Dify with its own PostgreSQL, Redis and vector store on the data
     * disk; "app" or "singleton" one of the two roles of the `ha` topology (HA_ROLE_SERVICES), with
     * `externalServices` in place of Dify's data containers. Changing it changes the user data and `settingsDigest`.
     */
    role?: DifyNodeRole;
    /**
     * The managed services and shared keys an `ha` node uses (required for "app" and "singleton", refused for
     * "single"). Their values go only into the secret user data, never into `bootstrapConfig`; changing any of them
     * changes the user data and `settingsDigest`.
     */
    externalServices?: pulumi.Input<ExternalServices>;
    /**
     * For "single": the EIP address, known before the instance boots so it can go into Dify's URLs (https://<address>
     * without a domain, with a Let's Encrypt IP certificate); it changes only with a new EIP. For "app" and
     * "singleton": the domain the load balancer serves (publicUrl https://<domain>; the load balancer terminates TLS,
     * the node serves plain HTTP inside the VPC).
     */
    publicAddress: pulumi.Input<string>;
    /**
     * With a domain, Dify is served on https://<domain> with a Let's Encrypt certificate; unset (default): on
     * https://<publicAddress>, with a Let's Encrypt certificate for the address. Changing it changes `publicUrl`.
     * For "app" and "singleton" the domain is `publicAddress`; if set, this must equal it.
     */
    domain?: pulumi.Input<string>;
    /**
     * The e-mail address Let's Encrypt sends certificate notices to; the stack config requires it with `domain`.
     * Unset (default): certbot registers without one. Refused for "app" and "singleton" (no certbot there).
     */
    certEmail?: pulumi.Input<string>;
    /**
     * Serve Dify on http://<publicAddress> without a certificate (the `plainHttp` opt-out; refused with `domain`).
     * Default false. Changing it changes `publicUrl` as well. Refused for "app" and "singleton".
     */
    plainHttp?: boolean;
    /**
     * The data disk that keeps Dify's volumes and its generated secrets; the bootstrap finds it by its id (the
     * disk's serial), formats it only when blank, and refuses one that carries anything but a file system of
     * its own. It changes only with a new disk. Required for "single"; refused for "app" and "singleton" (their state
     * is in RDS, Redis and OSS).
     */
    dataDiskId?: pulumi.Input<string>;
    /** Docker Hub mirrors for the Docker daemon (the resolved `registryMirrors` setting). Default none. */
    registryMirrors?: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * A registry holding copies of Dify's Docker Hub images under their Docker Hub names (AcrImageMirror's
     * `registryHost`, for imageSource acr): the bootstrap pulls each image from there and tags it with its
     * Docker Hub name. Unset (default): Docker Hub (through `registryMirrors`, if any).
     */
    imageRegistry?: pulumi.Input<string>;
    /** PyPI index for Dify's plugin daemon and sandbox. Unset (default): PyPI itself. */
    pipMirrorUrl?: pulumi.Input<string>;
    /**
     * The bootstrap verifies the fetched release against its pin in rules/dify-releases.ts; a `difyVersion` without
     * one is refused unless this is true (the `allowUnpinnedDifyVersion` setting), and then is not verified.
     */
    allowUnpinnedDifyVersion?: boolean;
    /**
     * The INIT_PASSWORD to use (at most 30 characters, none of $ ' " \ or spaces): the `ha` nodes share one, as any of
     * them may answer /init behind the load balancer. Unset (default): the bootstrap generates its own (`single`).
     * Changing it changes the user data.
     */
    initPassword?: pulumi.Input<string>;
}

/**
 * How INIT_PASSWORD is generated. Dify accepts at most 30 characters; the special characters avoid "$" (compose
 * interpolates it), quotes and "\\" so the value survives .env and shell handling unchanged.
 */
export const INIT_PASSWORD_RULES: random.RandomPasswordArgs = { length: 24, special: true, overrideSpecial: "-_=/&.", minLower: 2, minUpper: 2, minNumeric: 2 };

/**
 * The cloud-init user data that installs Docker and starts Dify, plus the one-time INIT_PASSWORD that keeps
 * strangers from creating the first admin before we do. The user data holds that password, so it is a secret.
 */
export class DifyBootstrap extends pulumi.ComponentResource {
    /** Cloud-init user data (plain text, secret). */
    readonly userData: pulumi.Output<string>;
    /** INIT_PASSWORD for Dify's /init step (secret). */
    readonly initPassword: pulumi.Output<string>;
    /** The public base URL Dify is configured with (CONSOLE_API_URL and friends). */
    readonly publicUrl: pulumi.Output<string>;
    /**
     * The digest of the settings and script the user data carries (DIFY_SETTINGS_DIGEST; renderBootstrapApplication).
     * For "app" and "singleton" it covers the external services' secrets too, and is secret when they are.
     */
    readonly settingsDigest: pulumi.Output<string>;
    /** SHA-256 of the shipped bootstrap script. */
    readonly scriptDigest: pulumi.Output<string>;
    /**
     * The user data's settings file without its DIFY_INIT_PASSWORD line (not secret: it holds none; for "app" and
     * "singleton" also without the external services' secrets, HA_SECRET_SETTINGS).
     */
    readonly bootstrapConfig: pulumi.Output<string>;
    /** The user data's bootstrap script, gzip+base64. */
    readonly bootstrapScript: pulumi.Output<string>;

    constructor(name: string, args: DifyBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:DifyBootstrap", name, {}, opts);

        // The release's pin from the one table (rules/dify-releases.ts), so the digest always belongs to the version
        // deployed; a version without one only with allowUnpinnedDifyVersion (the stack config refuses it first).
        const verification = (difyVersion: string) => {
            const found = releaseVerification(difyVersion);
            if (found.releaseDigest === undefined && !args.allowUnpinnedDifyVersion) {
                throw new Error(
                    `DifyBootstrap: Dify ${difyVersion} has no pinned digest (pinned: ${PINNED_DIFY_VERSIONS.join(", ")}; rules/dify-releases.ts); set allowUnpinnedDifyVersion to deploy it unverified`,
                );
            }
            return found;
        };
        if (typeof args.difyVersion === "string") {
            verification(args.difyVersion);
        }
        const role = args.role ?? "single";
        checkRole(role, args);
        const ha = role !== "single";

        // Dify accepts at most 30 characters; the special characters avoid "$" (compose interpolates it),
        // quotes and "\" so the value survives .env and shell handling unchanged.
        const initPassword =
            args.initPassword !== undefined
                ? { result: pulumi.output(args.initPassword) }
                : new random.RandomPassword(
                      `${name}-init-password`,
                      INIT_PASSWORD_RULES,
                      { parent: this },
                  );

        this.initPassword = pulumi.secret(initPassword.result);
        // An `ha` node is served on its domain (publicAddress) over the load balancer's HTTPS.
        this.publicUrl = ha
            ? pulumi.output(args.publicAddress).apply((domain) => `https://${domain}`)
            : pulumi
                  .all([args.publicAddress, args.domain])
                  .apply(([address, domain]) => difyPublicUrl(address, { domain, plainHttp: args.plainHttp ?? false }));
        // Two groups: pulumi.all types tuples of at most eight.
        const mirrors = pulumi.all([args.registryMirrors ?? [], args.pipMirrorUrl, args.imageRegistry]);
        // The settings without INIT_PASSWORD, once: the user data and the settings digest come from the same values,
        // and the digest, settings file and script stay out of the password's secrecy.
        const settings: pulumi.Output<BootstrapSettings> = ha
            ? pulumi
                  .all([args.difyVersion, this.publicUrl, args.publicAddress, args.domain, pulumi.output(args.externalServices!), mirrors])
                  .apply(([difyVersion, publicUrl, address, domain, externalServices, [registryMirrors, pipMirrorUrl, imageRegistry]]) => {
                      if (domain !== undefined && domain !== address) {
                          throw new Error(`DifyBootstrap: domain ${JSON.stringify(domain)} is not publicAddress ${JSON.stringify(address)}; an ${role} node's publicAddress is its domain`);
                      }
                      return {
                          difyVersion,
                          publicUrl,
                          role,
                          domain: address,
                          externalServices,
                          registryMirrors,
                          pipMirrorUrl,
                          imageRegistry,
                          ...verification(difyVersion),
                          initPassword: "",
                      };
                  })
            : pulumi
                  .all([args.difyVersion, this.publicUrl, args.dataDiskId, args.domain, args.certEmail, mirrors])
                  .apply(([difyVersion, publicUrl, dataDiskId, domain, certEmail, [registryMirrors, pipMirrorUrl, imageRegistry]]) => ({
                      difyVersion,
                      publicUrl,
                      dataDiskId,
                      domain,
                      certEmail,
                      registryMirrors,
                      pipMirrorUrl,
                      imageRegistry,
                      ...verification(difyVersion),
                      initPassword: "",
                  }));
        this.userData = pulumi.secret(
            pulumi.all([settings, initPassword.result]).apply(([values, password]) => renderUserData({ ...values, initPassword: password })),
        );
        // The password is not part of any of these (renderBootstrapApplication leaves its line out).
        const application = settings.apply((values) => renderBootstrapApplication({ ...values, initPassword: "" }));
        this.settingsDigest = application.apply((rendered) => rendered.settingsDigest);
        // For an `ha` node `application` is secret because externalServices is; the script and the settings file
        // without HA_SECRET_SETTINGS hold none of its secrets. The digest (a SHA-256 over them) stays as secret as
        // its inputs.
        const revealed = <T>(value: pulumi.Output<T>) => (ha ? pulumi.unsecret(value) : value);
        this.scriptDigest = revealed(application.apply((rendered) => rendered.scriptDigest));
        this.bootstrapConfig = revealed(application.apply((rendered) => rendered.config));
        this.bootstrapScript = revealed(application.apply((rendered) => rendered.script));
        this.registerOutputs({
            userData: this.userData,
            initPassword: this.initPassword,
            publicUrl: this.publicUrl,
            settingsDigest: this.settingsDigest,
            scriptDigest: this.scriptDigest,
            bootstrapConfig: this.bootstrapConfig,
            bootstrapScript: this.bootstrapScript,
        });
    }
}
