/**
 * Vitest globalSetup of the e2e project (vitest.config.ts): runs only when an
 * e2e file is in the run, and makes (or finds) the one site build that all the
 * run's e2e files then serve (see site-build.ts). A failed build fails the e2e
 * files with its log, and leaves the unit tests of the same run alone.
 */
import { sharedSiteBuild, SITE_BUILD_ENV, SITE_BUILD_ERROR_ENV } from './site-build.ts';

export default async function setup(): Promise<void> {
  const started = Date.now();
  try {
    // Test files run in forks started after this, which inherit the environment.
    process.env[SITE_BUILD_ENV] = await sharedSiteBuild();
    delete process.env[SITE_BUILD_ERROR_ENV];
    console.log(
      `e2e: site build ${process.env[SITE_BUILD_ENV]} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    process.env[SITE_BUILD_ERROR_ENV] = `The site build for the e2e tests failed: ${(err as Error).message}`;
  }
}
