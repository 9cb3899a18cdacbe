/**
 * Faces are shared as URLs: `?seed=N` opens one face, and `&to=M&t=0.5`
 * a point on the morph from N to M. Other parameters (e.g. `?backend=`)
 * are kept as they are.
 */
export const MAX_SEED = 0xffffffff;

export interface FaceLink {
  seed: number;
  morph: { to: number; t: number } | null;
}

/** A seed from text: an integer in [0, 2^32). Throws a readable error otherwise. */
export function parseSeed(text: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed) || Number(trimmed) > MAX_SEED) {
    throw new RangeError(`"${text}" is not a seed: a seed is a whole number from 0 to ${MAX_SEED}`);
  }
  return Number(trimmed);
}

function parseT(text: string | null): number {
  const t = text === null ? 0 : Number(text);
  return Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
}

/** The face a URL asks for, or null when it names none. Throws on a malformed seed. */
export function readFaceLink(url: URL): FaceLink | null {
  const seed = url.searchParams.get('seed');
  if (seed === null) return null;
  const to = url.searchParams.get('to');
  return {
    seed: parseSeed(seed),
    morph: to === null ? null : { to: parseSeed(to), t: parseT(url.searchParams.get('t')) },
  };
}

/** `url` showing `link` (or no face when null), other parameters untouched. */
export function withFaceLink(url: URL, link: FaceLink | null): URL {
  const next = new URL(url);
  for (const key of ['seed', 'to', 't']) next.searchParams.delete(key);
  if (link) {
    next.searchParams.set('seed', String(link.seed));
    if (link.morph) {
      next.searchParams.set('to', String(link.morph.to));
      next.searchParams.set('t', link.morph.t.toFixed(3));
    }
  }
  return next;
}
