import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';

/**
 * `chattr +i` is the one real way to make a folder refuse writes to root (root ignores chmod).
 * It needs CAP_LINUX_IMMUTABLE and a file system that has the flag (ext4, xfs, btrfs; not
 * tmpfs or overlayfs), so tests that use it skip elsewhere, saying which of the two is missing.
 */

/** chattr on the paths; true when it worked. */
export function chattr(flag: '+i' | '-i', paths: string[]): boolean {
  return spawnSync('chattr', [flag, ...paths], { encoding: 'utf8' }).status === 0;
}

/** The skip reason when `chattr +i` was refused under `dir`: what it needs and what is here. */
export function chattrSkipReason(dir: string): string {
  const fs = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  const fsType = fs.status === 0 ? fs.stdout.trim() : 'unknown';
  const probe = spawnSync('chattr', ['+i', dir], { encoding: 'utf8' });
  if (probe.status === 0) spawnSync('chattr', ['-i', dir]);
  const said = probe.error
    ? 'chattr is not installed (e2fsprogs)'
    : probe.status === 0
      ? 'the folder took the flag, a file in it did not'
      : probe.stderr.trim().split('\n')[0] || `chattr exited ${String(probe.status)}`;
  return `chattr +i: needs root with CAP_LINUX_IMMUTABLE on ext4/xfs/btrfs (here: uid ${userInfo().uid} on ${fsType}; ${said})`;
}
