// The one e-mail rule: the admin's sign-in, Let's Encrypt's contact address, and every Dify resource's adminEmail.
// No imports, so a provider's serialized closure and the policy pack can carry it.

/**
 * An e-mail address: a local part of letters, digits and `._%+-` (starting with a letter or digit, no "..",
 * not ending in "."), "@", then a dotted domain of letters, digits and hyphens with a TLD of letters. No shell,
 * quote, sed or glob character can pass: Let's Encrypt's address reaches certbot's `-m` on the instance (and the
 * settings file, shell-quoted), and an address starting with "-" would read as an option.
 */
export const EMAIL_PATTERN =
    /^(?=[^@]{1,64}@)[A-Za-z0-9](?:[A-Za-z0-9_%+-]|\.(?!\.))*(?<!\.)@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

/** What `isEmailAddress` allows, for messages. */
export const EMAIL_RULE =
    'an e-mail address such as ops+dify@corp.example.cn (letters, digits and ._%+- before the "@", a dotted domain of letters, digits and "-" after it)';

/** True for an address `EMAIL_PATTERN` accepts, at most 254 characters long. */
export function isEmailAddress(value: string): boolean {
    return value.length <= 254 && EMAIL_PATTERN.test(value);
}
