// Rules of the `ha` topology's managed services that the config parser and the policy pack both apply.

/** RDS keeps automatic backups 7 to 730 days (the rdsBackupRetentionDays setting; the pack's lower bound). */
export const RDS_BACKUP_RETENTION_DAYS = { min: 7, max: 730 } as const;
