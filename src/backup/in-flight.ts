import { rmSync } from 'node:fs';

/**
 * Partial files and tool processes of backups in progress. If the process exits in the middle
 * (the cluster primary exits once its workers have stopped; a fatal error), the `exit` hook
 * still removes the partial file and ends pg_dump, so no `.partial` outlives its writer.
 */
const partials = new Set<string>();
const kills = new Set<() => void>();
let hooked = false;

function onExit(): void {
  for (const kill of kills) kill();
  for (const path of partials) rmSync(path, { force: true });
}

export function trackInFlight(partial: string, kill: () => void): () => void {
  if (!hooked) {
    process.on('exit', onExit);
    hooked = true;
  }
  partials.add(partial);
  kills.add(kill);
  return () => {
    partials.delete(partial);
    kills.delete(kill);
  };
}

/** Partial files being written by this process right now (retention leaves them alone). */
export function inFlightPartials(): ReadonlySet<string> {
  return partials;
}
