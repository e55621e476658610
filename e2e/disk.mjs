// A small file system that a test can fill to the last byte: a tmpfs mounted on a fresh folder (mounting needs
// root, as CI runs). For the tests of what Herald does when its data directory's disk is full.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tmpfs of `size` (e.g. '2m'); `skip` says why when it cannot be mounted here (then `dir` is a plain folder). */
export function smallDisk(size) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-tmpfs-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  const mounted = m.status === 0;
  return {
    dir,
    skip: mounted ? null : `cannot mount a tmpfs (${(m.stderr || m.error?.message || '').trim()})`,
    /** Writes one file until the disk refuses (ENOSPC); its path, to unlink when the space should come back. */
    fill() {
      const path = join(dir, 'filler');
      const fd = openSync(path, 'w');
      const chunk = Buffer.alloc(16 * 1024, 1);
      try {
        while (true) writeSync(fd, chunk);
      } catch (e) {
        if (e.code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
      return path;
    },
    remove() {
      if (mounted) spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
