/**
 * Face identity as a differentiable function: face-api's FaceRecognitionNet
 * (a 128-d descriptor per face; two photos of one person sit about 0.46
 * apart, two people about 0.84) applied to generator-range faces inside a
 * gradient tape, so a loss can pull a generated face towards a person.
 *
 * The net itself is supplied by the caller (Node loads it from the package,
 * a page from the site), which keeps this module free of face-api's DOM code.
 * Faces go through face-api's own NetInput, so the descriptors are exactly
 * the ones `npm run eval` measures with.
 */
import * as tf from '@tensorflow/tfjs-core';

/** [N, size, size, 3] faces in [-1, 1] (any size: face-api resizes them) to [N, 128] descriptors; differentiable. */
export type FaceEmbedder = (faces: tf.Tensor4D) => tf.Tensor2D;

/** The slice of face-api used: FaceRecognitionNet.forwardInput and the NetInput class. */
export interface RecognitionNetLike {
  forwardInput(input: never): tf.Tensor2D;
}
export type NetInputClass = new (inputs: tf.Tensor3D[]) => unknown;

export function faceApiEmbedder(net: RecognitionNetLike, NetInput: NetInputClass): FaceEmbedder {
  const forward = net.forwardInput.bind(net) as (input: unknown) => tf.Tensor2D;
  return (faces) =>
    tf.tidy(() => {
      // face-api reads 0..255 pixels; a generator's tanh output never leaves [-1, 1], so the clip is only for photos.
      const pixels = tf.clipByValue(tf.mul(tf.add(faces, 1), 127.5), 0, 255) as tf.Tensor4D;
      // One image: squeeze, not unstack, whose gradient breaks when it has a single output (tfjs 4.22 stacks a bare tensor).
      const images =
        pixels.shape[0] === 1 ? [tf.squeeze(pixels, [0]) as tf.Tensor3D] : (tf.unstack(pixels) as tf.Tensor3D[]);
      return forward(new NetInput(images));
    });
}

/** Squared Euclidean distance per row of two [N, D] descriptor batches. */
export function squaredDistances(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.squaredDifference(a, b), 1) as tf.Tensor1D);
}
