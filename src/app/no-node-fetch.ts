/**
 * Stands in for `node-fetch` in the browser bundle. TensorFlow.js' Node
 * platform file names it, and `astro dev` would otherwise try to serve it
 * (and its Node-only dependencies) to the page. Browsers have fetch.
 */
export default globalThis.fetch;
