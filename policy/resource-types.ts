// The type tokens the pack matches resources by: @pulumi/alicloud 3.108's (`static __pulumiType` of each class).
// Kept as plain strings so that the pack needs no @pulumi/alicloud of its own.

// ECS and networking
export const ECS_INSTANCE = "alicloud:ecs/instance:Instance";
/** The data disk DifyHost creates. */
export const ECS_DISK = "alicloud:ecs/ecsDisk:EcsDisk";
export const SECURITY_GROUP = "alicloud:ecs/securityGroup:SecurityGroup";
export const SECURITY_GROUP_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule";
/**
 * No stack creates one. Kept because a SecurityGroupRule (which the stack does create) may name one as its source
 * (prefixListId): the pack reads a list declared in the same program instead of refusing every such rule.
 */
export const ECS_PREFIX_LIST = "alicloud:ecs/ecsPrefixList:EcsPrefixList";
/** Binds an EIP to an instance (DifyHost's public address) or to a NAT gateway (the ha tier's egress). */
export const EIP_ASSOCIATION = "alicloud:ecs/eipAssociation:EipAssociation";
export const VPC = "alicloud:vpc/network:Network";

// The ha topology: app nodes in an Auto Scaling group, data in managed services
export const SCALING_GROUP = "alicloud:ess/scalingGroup:ScalingGroup";
export const SCALING_CONFIGURATION = "alicloud:ess/scalingConfiguration:ScalingConfiguration";
/** What a scaling group may launch from instead of a scaling configuration (DifyAppTier's app nodes do). */
export const ECS_LAUNCH_TEMPLATE = "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate";
/** The older launch template resource, same API. */
export const LAUNCH_TEMPLATE = "alicloud:ecs/launchTemplate:LaunchTemplate";
export const RDS_INSTANCE = "alicloud:rds/instance:Instance";
export const RDS_BACKUP_POLICY = "alicloud:rds/backupPolicy:BackupPolicy";
/** Allocates an RDS instance's internet (public) connection string. */
export const RDS_PUBLIC_CONNECTION = "alicloud:rds/connection:Connection";
/** A public address for an RDS cluster endpoint. */
export const RDS_ENDPOINT_ADDRESS = "alicloud:rds/dbInstanceEndpointAddress:DbInstanceEndpointAddress";
export const REDIS_INSTANCE = "alicloud:kvstore/instance:Instance";
/** Allocates a Tair/Redis instance's public connection string. */
export const REDIS_PUBLIC_CONNECTION = "alicloud:kvstore/connection:Connection";
export const OSS_BUCKET = "alicloud:oss/bucket:Bucket";
export const OSS_BUCKET_ACL = "alicloud:oss/bucketAcl:BucketAcl";
export const OSS_BUCKET_PUBLIC_ACCESS_BLOCK = "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock";
export const OSS_BUCKET_ENCRYPTION = "alicloud:oss/bucketServerSideEncryption:BucketServerSideEncryption";
