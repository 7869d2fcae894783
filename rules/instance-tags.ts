// The tags the Dify host puts on its ECS instance for the policy pack to read. No imports: the config parser
// (which keeps user tags off these keys), the host and the policy pack share them.

/** The Dify release the instance runs. */
export const DIFY_VERSION_TAG = "dify-version";
/** vCPU count and memory (GiB) from the region's answer, for instance types whose name does not tell the size. */
export const VCPU_TAG = "cpu-cores";
export const MEMORY_TAG = "memory-gib";
