/**
 * The fixed train / held-out split of the CelebA data. Evaluation compares
 * generated faces with held-out photos that training never sees, so the
 * split is by identity (no person is on both sides): every image whose
 * CelebA identity id is a multiple of 10 is held out. Images with no
 * identity row are training images.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const HELD_OUT_RULE = 'CelebA identity id % 10 === 0';

/** File name -> identity id, from identity_CelebA.txt beside the image folder (empty if absent). */
export function readIdentities(imageDir: string): Map<string, number> {
  const file = join(dirname(imageDir), 'identity_CelebA.txt');
  const ids = new Map<string, number>();
  if (!existsSync(file)) return ids;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, id] = line.trim().split(/\s+/);
    if (name && id) ids.set(name, Number(id));
  }
  return ids;
}

export function isHeldOut(identity: number | undefined): boolean {
  return identity !== undefined && identity % 10 === 0;
}

/** Split file names into training and held-out lists, both sorted. */
export function splitFiles(
  files: readonly string[],
  identities: Map<string, number>,
): { train: string[]; heldOut: string[] } {
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const f of [...files].sort()) (isHeldOut(identities.get(f)) ? heldOut : train).push(f);
  return { train, heldOut };
}
