/**
 * A jest reporter that fails the run in CI (CI=true) when any test was skipped: .ci/run installs every tool a suite
 * needs (Chromium, python3-onnx), so a skip there means an install step broke and part of the product went untested.
 * Locally, suites whose tool is missing skip and print why; this reporter then only lists them.
 */
class NoSkipsInCi {
  constructor() {
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const skipped = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') skipped.push(`${file.testFilePath.replace(process.cwd() + '/', '')} › ${t.fullName}`);
      }
    }
    if (skipped.length === 0) return;
    const list = skipped.map((s) => `  - ${s}`).join('\n');
    if (process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0') {
      this.error = new Error(`${skipped.length} test(s) skipped in CI; every suite must run there (.ci/run installs its tools):\n${list}`);
      console.error(`\n${this.error.message}\n`);
    } else {
      console.log(`\n${skipped.length} test(s) skipped on this machine (a tool is missing; each suite printed why). CI runs them all:\n${list}\n`);
    }
  }

  getLastError() {
    return this.error;
  }
}

module.exports = NoSkipsInCi;
