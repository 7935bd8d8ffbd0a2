import type { CheckResult, Status } from './types.js';

/** `PASS  id  message` lines, a fix line under each WARN/FAIL, and a count. */
export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.id.length), 8);
  const lines = results.map((r) => {
    const head = `${r.status}  ${r.id.padEnd(width)}  ${r.message}`;
    return r.fix && r.status !== 'PASS' ? `${head}\n${' '.repeat(6 + width + 2)}fix: ${r.fix}` : head;
  });
  const count = (s: Status): number => results.filter((r) => r.status === s).length;
  const unknown = count('UNKNOWN') > 0 ? `, ${count('UNKNOWN')} UNKNOWN` : '';
  return `${lines.join('\n')}\n\n${count('PASS')} PASS, ${count('WARN')} WARN, ${count('FAIL')} FAIL${unknown}\n`;
}

/** Non-zero on any FAIL: scripts and CI can gate a deployment on it. */
export function exitCode(results: readonly CheckResult[]): number {
  return results.some((r) => r.status === 'FAIL') ? 1 : 0;
}
