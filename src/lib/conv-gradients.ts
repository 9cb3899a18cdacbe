/**
 * Convolution gradients computed only where a tape needs them.
 *
 * tfjs-layers runs every Conv2D through tf.fused.conv2d, and while a gradient
 * is recorded a fused convolution with a linear activation is a custom
 * gradient that computes the input's and the filter's gradients together,
 * eagerly, whichever of them backprop asks for. A GAN step asks for half of
 * them: D's step needs no gradient for the images D reads (its first layer's
 * input gradient is thrown away), and G's step none for D's filters (D is
 * frozen there). At width 32 that was a filter-gradient convolution per D
 * layer and two data-gradient ones a step for nothing, about a tenth of the step.
 *
 * A plain tf.conv2d (plus tf.add for a bias) has the same forward and
 * tfjs-core's registered gradient, whose two halves run only when backprop
 * reaches the input or the filter. installLazyConvGradients() routes Conv2D
 * layers with a linear activation through it while a gradient is recorded; the
 * forward pass outside a tape, the weights and the saved model are unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The Conv2D fields its call() uses (tfjs-layers 4.x). */
interface Conv2DLayer {
  kernel: tfl.LayerVariable;
  bias: tfl.LayerVariable | null;
  strides: [number, number];
  padding: 'same' | 'valid' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
  activation: { getClassName(): string };
}
type Call = (this: Conv2DLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

const gradientDepth = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth;

let installed = false;

/** Routes Conv2D layers (linear activation, channels last) through tf.conv2d whenever a gradient is recorded. */
export function installLazyConvGradients(): void {
  if (installed) return;
  installed = true;
  const proto = Object.getPrototypeOf(tfl.layers.conv2d({ filters: 1, kernelSize: 1 })) as { call: Call };
  const original = proto.call;
  proto.call = function (this: Conv2DLayer, inputs, kwargs) {
    const lazy =
      gradientDepth() > 0 &&
      this.activation.getClassName() === 'linear' &&
      this.dataFormat === 'channelsLast' &&
      this.padding !== 'causal';
    if (!lazy) return original.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const y = tf.conv2d(
        x,
        this.kernel.read() as tf.Tensor4D,
        this.strides,
        this.padding as 'same' | 'valid',
        'NHWC',
        this.dilationRate,
      );
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  };
}
