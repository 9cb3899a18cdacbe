/**
 * Multiply-adds of a GanTrainer.step, counted from the models' layers, so
 * that images/s can be read as achieved GFLOP/s. Convolutions and dense
 * layers only (the usual convention); element-wise work is not counted.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';

type Shape = (number | null)[];

/** Forward multiply-adds per image of each conv / deconv / dense layer, in order. */
export function layerMacs(model: LayersModel): number[] {
  const macs: number[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const inShape = layer.inputSpec?.[0]?.shape ?? (layer.input as { shape: Shape }).shape;
    const outShape = (layer.output as { shape: Shape }).shape;
    const cfg = layer.getConfig() as { kernelSize?: number[] };
    const inC = inShape[inShape.length - 1] ?? 0;
    const k = (cfg.kernelSize ?? [1, 1]).reduce((a, b) => a * b, 1);
    if (cls === 'Conv2D') {
      const [, h, w, c] = outShape as number[];
      macs.push(h * w * c * k * inC);
    } else if (cls === 'Conv2DTranspose') {
      const [, h, w] = (layer.input as { shape: Shape }).shape as number[];
      const outC = outShape[outShape.length - 1] as number;
      macs.push(h * w * inC * outC * k);
    } else if (cls === 'Dense') {
      macs.push(inC * (outShape[outShape.length - 1] as number));
    }
  }
  return macs;
}

/**
 * FLOPs per image of one step. D step: G forward, D forward on real and on
 * fake, and per pass D's filter gradients plus input gradients for all but
 * D's first layer. G step: G and D forward, D's input gradients (all layers,
 * D's weights frozen), G's filter gradients and input gradients for all but
 * G's first layer (its input is z).
 */
export function stepFlopsPerImage(generator: LayersModel, discriminator: LayersModel): number {
  const g = layerMacs(generator),
    d = layerMacs(discriminator);
  const G = g.reduce((a, b) => a + b, 0),
    D = d.reduce((a, b) => a + b, 0);
  const macs = 4 * G - g[0] + 8 * D - 2 * d[0];
  return 2 * macs;
}
