/**
 * Adam in one native pass per variable, used only while `native` is the
 * active backend (every other backend keeps tfjs-core's AdamOptimizer as it
 * is). tfjs-core's applyGradients runs twelve element-wise kernels per
 * variable (each a pass over the weights and a kernel dispatch); here one
 * kernel reads the value, both moments and the gradient once and writes the
 * three new tensors, in tfjs-core's order of float32 operations, so the
 * results are the same to the bit (the kernel tests check this). The new
 * tensors are assigned to the variables exactly as tfjs-core assigns its own,
 * so optimizer state, checkpoints and getWeights() are unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.ts';
import { NATIVE_BACKEND } from './backend.ts';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats } from './data.ts';
import type { KernelArgs } from './kernel.ts';

export const ADAM_STEP = 'FaceganAdamStep';

/** Inputs value, m, v, grad (float32, one shape); outputs [value', m', v']. */
export const adamStepKernel = (addon: NativeAddon) => ({
  kernelName: ADAM_STEP,
  run: ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] => {
    const { value, m, v, grad } = inputs;
    const shape = value.shape;
    if (!allFloat32(backend, value, m, v, grad) || ![m, v, grad].every((t) => tf.util.arraysEqual(t.shape, shape))) {
      throw new Error(`${ADAM_STEP} needs float32 value, moments and gradient of one shape`);
    }
    const n = tf.util.sizeFromShape(shape);
    const out = [outputBuffers.take(n), outputBuffers.take(n), outputBuffers.take(n)];
    addon.adamStep(
      floats(backend, value),
      floats(backend, m),
      floats(backend, v),
      floats(backend, grad),
      out[0],
      out[1],
      out[2],
      (attrs as unknown as { constants: Float64Array }).constants,
    );
    return out.map((values) => backend.makeTensorInfo(shape, 'float32', values));
  },
});

export function registerAdamKernel(addon: NativeAddon): void {
  const kernel = adamStepKernel(addon);
  tf.registerKernel({
    kernelName: ADAM_STEP,
    backendName: NATIVE_BACKEND,
    kernelFunc: (args) => kernel.run(args as unknown as KernelArgs),
  });
}

type NamedTensor = { name: string; tensor: tf.Tensor };

/** The AdamOptimizer fields applyGradients uses (tfjs-core 4.x). */
interface AdamState {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}

const scalarValue = (t: tf.Tensor) => ((tf.backend() as MathBackendCPU).data.get(t.dataId).values as Float32Array)[0];

/** tfjs-core's AdamOptimizer.applyGradients, with each variable's update as one ADAM_STEP kernel. */
function applyGradientsNative(this: AdamState, variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
  const list = Array.isArray(variableGradients);
  const names = list ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
  const registered = tf.engine().registeredVariables;
  tf.tidy(() => {
    const f = Math.fround;
    const constants = Float64Array.from([
      this.beta1,
      this.beta2,
      1 - this.beta1,
      1 - this.beta2,
      f(1 - scalarValue(this.accBeta1)),
      f(1 - scalarValue(this.accBeta2)),
      this.epsilon,
      -this.learningRate,
    ]);
    names.forEach((name, i) => {
      const value = registered[name];
      this.accumulatedFirstMoment[i] ??= {
        originalName: `${name}/m`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      this.accumulatedSecondMoment[i] ??= {
        originalName: `${name}/v`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const gradient = list
        ? (variableGradients as NamedTensor[])[i].tensor
        : (variableGradients as tf.NamedTensorMap)[name];
      if (gradient == null) return;
      const m = this.accumulatedFirstMoment[i].variable,
        v = this.accumulatedSecondMoment[i].variable;
      const [newValue, newM, newV] = tf.engine().runKernel(ADAM_STEP, { value, m, v, grad: gradient }, {
        constants,
      } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      m.assign(newM);
      v.assign(newV);
      value.assign(newValue);
    });
    this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
    this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
  });
  this.incrementIterations();
}

let installed = false;

/** Routes AdamOptimizer.applyGradients to the fused kernel while `native` is the backend and every variable is float32. */
export function installNativeAdam(): void {
  if (installed) return;
  installed = true;
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients(g: tf.NamedTensorMap | NamedTensor[]): void };
  const original = proto.applyGradients;
  proto.applyGradients = function (this: AdamState, grads) {
    const list = Array.isArray(grads);
    const tensors = list ? (grads as NamedTensor[]).map((g) => g.tensor) : Object.values(grads as tf.NamedTensorMap);
    const onNative = tf.getBackend() === NATIVE_BACKEND && tensors.every((t) => t == null || t.dtype === 'float32');
    return onNative ? applyGradientsNative.call(this, grads) : original.call(this, grads);
  };
}
