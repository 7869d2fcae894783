// The certbot the Dify host gets its certificates with, and the one the tests run against Pebble: one version.
// No imports, like the other rules: the config parser, the user data and the tests share it.

/**
 * certbot's release. 5.4.0 is the first whose webroot plugin issues IP-address certificates (`--ip-address`,
 * 5.3.0 for standalone/manual only); Let's Encrypt issues those with the `shortlived` profile only.
 * tests/components/certificates.test.ts installs `certbot==<this> acme==<this>` from PyPI and runs the bootstrap's
 * issuance and renewal against Pebble with it.
 */
export const CERTBOT_VERSION = "5.8.0";

/**
 * The image the bootstrap runs certbot from (`docker run --rm`), pulled like Dify's images (through
 * DIFY_IMAGE_REGISTRY or the registry mirrors) and copied by the ACR mirror with them. certbot's own Docker Hub
 * repository tags its releases "v<version>".
 */
export const CERTBOT_IMAGE = `certbot/certbot:v${CERTBOT_VERSION}`;

/** Let's Encrypt's production ACME directory, certbot's default; DIFY_ACME_SERVER replaces it on the instance. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";
