/**
 * Convolution and dense-layer gradients computed only where a tape needs them.
 *
 * tfjs-layers runs every Conv2D through tf.fused.conv2d and every Dense layer
 * through tf.fused.matMul, and while a gradient is recorded a fused op with a
 * linear activation is a custom gradient that computes the input's and the
 * weights' gradients together, eagerly, whichever of them backprop asks for. A
 * GAN step asks for half of them: D's step needs no gradient for the images D
 * reads (its first layer's input gradient is thrown away), and G's step none for
 * D's weights (D is frozen there); photo projection needs no weight gradient at
 * all, fine-tuning none for D's weights or for z. At width 32 the step ran a
 * filter-gradient convolution per D layer and two data-gradient ones for
 * nothing, about a tenth of the step.
 *
 * tf.conv2d and tf.matMul (plus tf.add for a bias) have the same forward and
 * tfjs-core's registered gradients, whose halves run only when backprop reaches
 * the input or the weights. installLazyGradients() routes Conv2D (channels
 * last) and 2-D Dense layers with a linear activation through them while a
 * gradient is recorded; the forward pass outside a tape, the weights and the
 * saved model are unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The fields the two layers' call() uses (tfjs-layers 4.x). */
interface WeightedLayer {
  kernel: tfl.LayerVariable;
  bias: tfl.LayerVariable | null;
  activation: { getClassName(): string };
}
interface Conv2DLayer extends WeightedLayer {
  strides: [number, number];
  padding: 'same' | 'valid' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
}
type Call<L> = (this: L, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

const gradientDepth = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth;
const single = (inputs: tf.Tensor | tf.Tensor[]) => (Array.isArray(inputs) ? inputs[0] : inputs);

/** Replaces `proto.call` by `lazy` where `applies` holds while a gradient is recorded. */
function route<L extends WeightedLayer>(
  proto: { call: Call<L> },
  applies: (layer: L, x: tf.Tensor) => boolean,
  lazy: (layer: L, x: tf.Tensor) => tf.Tensor,
): void {
  const original = proto.call;
  proto.call = function (this: L, inputs, kwargs) {
    const x = single(inputs);
    if (gradientDepth() === 0 || this.activation.getClassName() !== 'linear' || !applies(this, x))
      return original.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const y = lazy(this, x);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  };
}

let installed = false;

/** Routes Conv2D and Dense layers with a linear activation through tf.conv2d and tf.matMul under a tape. */
export function installLazyGradients(): void {
  if (installed) return;
  installed = true;
  route<Conv2DLayer>(
    Object.getPrototypeOf(tfl.layers.conv2d({ filters: 1, kernelSize: 1 })) as { call: Call<Conv2DLayer> },
    (l) => l.dataFormat === 'channelsLast' && l.padding !== 'causal',
    (l, x) =>
      tf.conv2d(
        x as tf.Tensor4D,
        l.kernel.read() as tf.Tensor4D,
        l.strides,
        l.padding as 'same' | 'valid',
        'NHWC',
        l.dilationRate,
      ),
  );
  route<WeightedLayer>(
    Object.getPrototypeOf(tfl.layers.dense({ units: 1 })) as { call: Call<WeightedLayer> },
    (_, x) => x.rank === 2,
    (l, x) => tf.matMul(x as tf.Tensor2D, l.kernel.read() as tf.Tensor2D),
  );
}
