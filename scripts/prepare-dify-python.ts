// Builds Dify's Python environment (tests/harness/dify-python-env.sh) before the tests start, so its first,
// slow build (a few minutes, 2.3 GB from PyPI) shows its progress here instead of inside a test's time limit.
// Run by scripts/test.sh; a second run costs one stat.
import { ensureDifyPython } from "../tests/harness/dify-python";

const environment = ensureDifyPython();
console.error(
    `dify-python: ${environment.python} (${environment.built ? `built in ${environment.seconds.toFixed(0)} s` : "cached"})`,
);
