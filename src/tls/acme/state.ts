import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, writeFileAtomic } from '../../stores/private-file.js';

/**
 * What the ACME manager last did, written under DATA_DIR for `doctor` (which never talks to
 * the CA) and for the operator. Each instance writes its own view; the one that ordered knows most.
 */
export interface AcmeState {
  readonly directoryUrl: string;
  readonly hosts: readonly string[];
  /** ordering | waiting (renewal scheduled) | failing (backing off) | held-elsewhere (another instance orders) */
  readonly status: 'ordering' | 'waiting' | 'failing' | 'held-elsewhere';
  readonly lastSuccess?: string | undefined;
  readonly lastAttempt?: string | undefined;
  readonly lastError?: string | undefined;
  readonly failures: number;
  readonly nextAttempt?: string | undefined;
  readonly certificateValidTo?: string | undefined;
}

/** The folder under DATA_DIR that holds the account key and the state. */
export function acmeDir(dataDir: string): string {
  return join(dataDir, 'acme');
}

export function stateFile(dataDir: string): string {
  return join(acmeDir(dataDir), 'state.json');
}

export function writeAcmeState(dataDir: string, state: AcmeState): void {
  mkdirSync(acmeDir(dataDir), { recursive: true, mode: PRIVATE_DIR_MODE });
  writeFileAtomic(stateFile(dataDir), `${JSON.stringify(state, null, 2)}\n`);
}

/** The last state written, or undefined when none (ACME never ran here) or unreadable. */
export function readAcmeState(dataDir: string): AcmeState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dataDir), 'utf8')) as AcmeState;
  } catch {
    return undefined;
  }
}
