// Writes that readers never see half-done: write a temporary file beside the target,
// fsync it, then rename over the target (atomic on POSIX file systems). Folders likewise:
// fill a temporary sibling folder, then rename it into place.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = temporaryPath(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "w");
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes the folder `dir` through `fill(tmp)`: the files go to a sibling temporary folder, which
 * then replaces `dir` (a previous `dir` is moved aside and removed), so `dir` never holds a partial
 * or mixed set of files. On failure the temporary folder is removed and a previous `dir` kept.
 */
export function writeDirAtomic(dir: string, fill: (tmp: string) => void): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.${process.pid}.tmp`);
  const old = join(parent, `.${basename(dir)}.${process.pid}.old`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    fill(tmp);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
    rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir) && existsSync(old)) renameSync(old, dir);
    throw err;
  }
}

/**
 * After a process `pid` that was writing `dir` through writeDirAtomic died: removes its temporary
 * folder, and puts the previous `dir` back when the process died between the two renames. `dir`
 * is then the last complete folder (or absent when there was none).
 */
export function recoverDirAtomic(dir: string, pid: number): void {
  const parent = dirname(dir);
  const tmp = join(parent, `.${basename(dir)}.${pid}.tmp`);
  const old = join(parent, `.${basename(dir)}.${pid}.old`);
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(dir) && existsSync(old)) renameSync(old, dir);
  rmSync(old, { recursive: true, force: true });
}
