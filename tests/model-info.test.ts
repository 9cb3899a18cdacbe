// The model page's evaluation table is built from whatever `npm run eval --manifest` recorded.
import { describe, expect, it } from 'vitest';
import { evalRows, type PartialManifest } from '../src/components/about/model-info.ts';
import { formatDuration } from '../src/lib/format.ts';

const result = (fid: number, detection: number, extra: object = {}) => ({
  source: 'x',
  samples: 500,
  seed: 1,
  detection_rate: detection,
  fid,
  reference: { split: 'held-out', images: 1547 },
  ...extra,
});

describe('evaluation rows', () => {
  it('lists every recorded result, best Fréchet distance at 64 px first, with labels, and marks the shipped generator', () => {
    const at64 = { detection_rate: 0.97, fid: 0.02 };
    const manifest = {
      metrics: {
        eval: {
          untrained_dcgan: result(0.53, 0),
          generator: result(0.046, 0.966, { size: 128, at64, at128: { detection_rate: 0.966, fid: 0.046 } }),
          held_out_floor: result(0.014, 0.978, { samples: 808, reference: { split: 'held-out', images: 739 } }),
          pytorch: result(0.2, 0.5, { label: 'PyTorch DCGAN, same CPU time' }),
        },
      },
    } as unknown as PartialManifest;
    const rows = evalRows(manifest);
    expect(rows.map((r) => r.key)).toEqual(['held_out_floor', 'generator', 'pytorch', 'untrained_dcgan']);
    expect(rows.map((r) => r.label)).toEqual([
      'Held-out photos, half vs half (the floor)',
      'This generator',
      'PyTorch DCGAN, same CPU time',
      'untrained dcgan',
    ]);
    expect(rows.filter((r) => r.shipped).map((r) => r.key)).toEqual(['generator']);
    expect(rows[0]).toMatchObject({
      samples: 808,
      referenceImages: 739,
      at64: { detectionRate: 0.978, fid: 0.014 },
      at128: null,
    });
    // A 128 px generator's row: its own numbers at 128, and at 64 area-downscaled.
    expect(rows[1]).toMatchObject({
      at64: { detectionRate: 0.97, fid: 0.02 },
      at128: { detectionRate: 0.966, fid: 0.046 },
    });
  });

  it('leaves out malformed entries and copes with a manifest without evaluations', () => {
    const manifest = {
      metrics: { eval: { broken: { fid: 'high' }, generator: result(0.05, 0.9) } },
    } as unknown as PartialManifest;
    expect(evalRows(manifest).map((r) => r.key)).toEqual(['generator']);
    expect(evalRows({} as PartialManifest)).toEqual([]);
    expect(evalRows(null)).toEqual([]);
  });
});

describe('formatDuration', () => {
  it('prints durations one way for the about page, the fine-tune ETA and the CLI', () => {
    expect([0, 42.4, 65, 3599.6, 3600, 7500].map(formatDuration)).toEqual([
      '0 s',
      '42 s',
      '1 min 05 s',
      '1 h 00 min',
      '1 h 00 min',
      '2 h 05 min',
    ]);
    expect(formatDuration(-3)).toBe('0 s');
  });
});
