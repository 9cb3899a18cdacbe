/** The precision of the native backend's oneDNN convolutions (no imports: the CLI's option parser uses it). */

export const CONV_PRECISIONS = ['auto', 'bf16', 'f32'] as const;
export type ConvPrecision = (typeof CONV_PRECISIONS)[number];

/**
 * What oneDNN's convolutions read: 'bf16' rounds their inputs (activations,
 * gradients, filters) to bf16 and accumulates in f32, with f32 outputs and f32
 * master weights; 'f32' is plain float32; 'auto' (the default) is bf16 where the
 * CPU has bf16 dot products (AVX512_BF16 or AMX), where it is 1.2 to 1.4 times
 * faster a step, and f32 elsewhere, where oneDNN would emulate it. bf16 was
 * kept only after an equal-CPU-time training run evaluated no worse (see the
 * README's performance section).
 */
export function convPrecision(
  given: string | undefined = process.env.FACEGAN_CONV_PRECISION,
  source = 'FACEGAN_CONV_PRECISION',
): ConvPrecision {
  const value = (given ?? '').trim() || 'auto';
  if (!(CONV_PRECISIONS as readonly string[]).includes(value)) {
    throw new Error(`${source} must be one of ${CONV_PRECISIONS.join(', ')}, got "${given}"`);
  }
  return value as ConvPrecision;
}
