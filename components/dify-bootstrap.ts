import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderUserData } from "./bootstrap/userdata";
import { difyPublicUrl } from "../config/stack-config";

/**
 * What the user data is made of. Every field goes into the user data, so changing any of them changes it (and
 * DifyHost replaces the instance for a new user data); INIT_PASSWORD depends on none of them and stays.
 */
export interface DifyBootstrapArgs {
    /** Dify release tag to deploy, e.g. "1.14.1" (the `difyVersion` setting). */
    difyVersion: pulumi.Input<string>;
    /**
     * The EIP address, known before the instance boots so it can go into Dify's URLs (http://<address> without
     * a domain). It changes only with a new EIP.
     */
    publicAddress: pulumi.Input<string>;
    /**
     * With a domain, Dify is served on https://<domain> with a Let's Encrypt certificate; unset (default): on
     * http://<publicAddress>. Changing it changes `publicUrl` as well.
     */
    domain?: pulumi.Input<string>;
    /** The e-mail address Let's Encrypt sends certificate notices to; required with `domain`, unset by default. */
    certEmail?: pulumi.Input<string>;
    /**
     * The data disk that keeps Dify's volumes and its generated secrets; the bootstrap finds it by its id (the
     * disk's serial), formats it only when blank, and refuses one that carries anything but a file system of
     * its own. It changes only with a new disk.
     */
    dataDiskId: pulumi.Input<string>;
    /** Docker Hub mirrors for the Docker daemon, for mainland-China regions. Default none. */
    registryMirrors?: pulumi.Input<pulumi.Input<string>[]>;
    /** PyPI index for Dify's plugin daemon and sandbox. Unset (default): PyPI itself. */
    pipMirrorUrl?: pulumi.Input<string>;
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

    constructor(name: string, args: DifyBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dify-mcp-stack:index:DifyBootstrap", name, {}, opts);

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
            .apply(([address, domain]) => difyPublicUrl(address, domain));
        this.userData = pulumi.secret(
            pulumi
                .all([
                    args.difyVersion,
                    this.publicUrl,
                    initPassword.result,
                    args.dataDiskId,
                    args.domain,
                    args.certEmail,
                    args.registryMirrors ?? [],
                    args.pipMirrorUrl,
                ])
                .apply(([difyVersion, publicUrl, password, dataDiskId, domain, certEmail, registryMirrors, pipMirrorUrl]) =>
                    renderUserData({
                        difyVersion,
                        publicUrl,
                        initPassword: password,
                        dataDiskId,
                        domain,
                        certEmail,
                        registryMirrors,
                        pipMirrorUrl,
                    }),
                ),
        );
        this.registerOutputs({ userData: this.userData, initPassword: this.initPassword, publicUrl: this.publicUrl });
    }
}
