/**
 * face-api's networks with weights served by this site (never fetched from
 * elsewhere), for the face worker and the page alike.
 */
import * as faceapi from '@vladmandic/face-api/dist/face-api.esm-nobundle.js';

export type Manifest = { weights: faceapi.tf.io.WeightsManifestEntry[] }[];

/** Fetch one net's weights file (a site URL from a `?url` import) and load them into `net`. */
export async function loadNet(
  net: { loadFromWeightMap(map: faceapi.tf.NamedTensorMap): void },
  manifest: Manifest,
  url: string,
): Promise<void> {
  // The weights' URLs are root-relative; a worker resolves them against its own script's URL, so make them absolute.
  const res = await fetch(new URL(url, self.location.origin));
  if (!res.ok) throw new Error(`face-api weights missing (${res.status} for ${url})`);
  net.loadFromWeightMap(
    faceapi.tf.io.decodeWeights(
      await res.arrayBuffer(),
      manifest.flatMap((g) => g.weights),
    ),
  );
}
