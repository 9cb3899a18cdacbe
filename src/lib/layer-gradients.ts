/**
 * The layers' gradients taken off tfjs' default paths, for every tape the project records (the GAN step, photo
 * projection, fine-tuning), on every backend; forward passes outside a tape and the saved models are unchanged:
 * - batch norm: in training mode its gradient in closed form, and with its moving statistics a per-channel scale
 *   and shift instead of tfjs-core's gradient, which tiles a per-channel factor to full size (batchnorm.ts);
 * - Conv2D and Dense: each half of the gradient only when the tape needs it (lazy-gradients.ts).
 */
import { installBatchNormGradients } from './batchnorm.ts';
import { installLazyGradients } from './lazy-gradients.ts';

export function installLayerGradients(): void {
  installBatchNormGradients();
  installLazyGradients();
}
