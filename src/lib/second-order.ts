/**
 * What a gradient of a gradient (R1's penalty on D's input gradient) needs
 * beyond tfjs-core 4.22: a gradient for the comparison ops that first-order
 * gradients use as masks. LeakyRelu's gradient is where(x > 0, dy, alpha dy);
 * differentiating that again walks through Greater, which has no registered
 * gradient, and the tape refuses. A comparison is piecewise constant, so its
 * gradient is zero almost everywhere: registering exactly that is correct.
 */
import * as tf from '@tensorflow/tfjs-core';

const COMPARISONS = ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual'];

let registered = false;

export function registerSecondOrderGradients(): void {
  if (registered) return;
  registered = true;
  for (const kernelName of COMPARISONS) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, [a, b]) => ({ a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) }),
    });
  }
}
