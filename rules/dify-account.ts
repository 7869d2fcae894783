// Dify's rules for its admin account. No imports: the config parser and the DifyAdmin provider share them.

/** Dify's account name limits: 3 to 30 characters (counted as code points, so an emoji is one). */
export function isDifyAccountName(name: string): boolean {
    return /^.{3,30}$/u.test(name);
}
export const DIFY_ACCOUNT_NAME_RULE = "3 to 30 characters (Dify's account name limits)";

/** Dify's password rule (libs/password.py): 8+ characters with at least one letter and one digit. */
export const DIFY_PASSWORD_PATTERN = /^(?=.*[a-zA-Z])(?=.*\d).{8,}$/;
export const DIFY_PASSWORD_RULE = "at least 8 characters with at least one letter and one digit (Dify's rule)";

/** Dify's INIT_PASSWORD limit. */
export const DIFY_INIT_PASSWORD_MAX_LENGTH = 30;
