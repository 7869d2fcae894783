import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderBootstrapApplication, renderUserData } from "./bootstrap/userdata";
import { difyPublicUrl } from "../config/stack-config";
import { PINNED_DIFY_VERSIONS, releaseVerification } from "../rules/dify-releases";

/**
 * What the user data is made of. Every field goes into the user data and into `settingsDigest`, so changing any of
 * them changes both (DifyHost's instance ignores user data changes; its DifyInstanceConfiguration applies the new
 * settings to the running instance); INIT_PASSWORD depends on none of them and stays.
 */
export interface DifyBootstrapArgs {
    /** Dify release tag to deploy, e.g. "1.14.1" (the `difyVersion` setting). */
    difyVersion: pulumi.Input<string>;
    /**
     * The EIP address, known before the instance boots so it can go into Dify's URLs (https://<address> without
     * a domain, with a Let's Encrypt IP certificate). It changes only with a new EIP.
     */
    publicAddress: pulumi.Input<string>;
    /**
     * With a domain, Dify is served on https://<domain> with a Let's Encrypt certificate; unset (default): on
     * https://<publicAddress>, with a Let's Encrypt certificate for the address. Changing it changes `publicUrl`.
     */
    domain?: pulumi.Input<string>;
    /**
     * The e-mail address Let's Encrypt sends certificate notices to; the stack config requires it with `domain`.
     * Unset (default): certbot registers without one.
     */
    certEmail?: pulumi.Input<string>;
    /**
     * Serve Dify on http://<publicAddress> without a certificate (the `plainHttp` opt-out; refused with `domain`).
     * Default false. Changing it changes `publicUrl` as well.
     */
    plainHttp?: boolean;
    /**
     * The data disk that keeps Dify's volumes and its generated secrets; the bootstrap finds it by its id (the
     * disk's serial), formats it only when blank, and refuses one that carries anything but a file system of
     * its own. It changes only with a new disk.
     */
    dataDiskId: pulumi.Input<string>;
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
}

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
    /** The digest of the settings and script the user data carries (DIFY_SETTINGS_DIGEST; renderBootstrapApplication). */
    readonly settingsDigest: pulumi.Output<string>;
    /** SHA-256 of the shipped bootstrap script. */
    readonly scriptDigest: pulumi.Output<string>;
    /** The user data's settings file without its DIFY_INIT_PASSWORD line (not secret: it holds none). */
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

        // Dify accepts at most 30 characters; the special characters avoid "$" (compose interpolates it),
        // quotes and "\" so the value survives .env and shell handling unchanged.
        const initPassword = new random.RandomPassword(
            `${name}-init-password`,
            { length: 24, special: true, overrideSpecial: "-_=/&.", minLower: 2, minUpper: 2, minNumeric: 2 },
            { parent: this },
        );

        this.initPassword = pulumi.secret(initPassword.result);
        this.publicUrl = pulumi
            .all([args.publicAddress, args.domain])
            .apply(([address, domain]) => difyPublicUrl(address, { domain, plainHttp: args.plainHttp ?? false }));
        // Two groups: pulumi.all types tuples of at most eight.
        const mirrors = pulumi.all([args.registryMirrors ?? [], args.pipMirrorUrl, args.imageRegistry]);
        // The settings without INIT_PASSWORD, once: the user data and the settings digest come from the same values,
        // and the digest, settings file and script stay out of the password's secrecy.
        const settings = pulumi
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
            }));
        this.userData = pulumi.secret(
            pulumi.all([settings, initPassword.result]).apply(([values, password]) => renderUserData({ ...values, initPassword: password })),
        );
        // The password is not part of any of these (renderBootstrapApplication leaves its line out).
        const application = settings.apply((values) => renderBootstrapApplication({ ...values, initPassword: "" }));
        this.settingsDigest = application.apply((rendered) => rendered.settingsDigest);
        this.scriptDigest = application.apply((rendered) => rendered.scriptDigest);
        this.bootstrapConfig = application.apply((rendered) => rendered.config);
        this.bootstrapScript = application.apply((rendered) => rendered.script);
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
