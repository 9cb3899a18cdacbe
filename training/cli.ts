/**
 * `npm run train -- ...`: train the face GAN on CelebA and export it for the
 * site. Exit codes: 0 done (or stopped cleanly with a checkpoint), 1 crash,
 * 2 bad usage or data, 3 diverged (NaN or infinite loss).
 */
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildGan, modelConfig, summarize } from '../src/lib/models.ts';
import { DataError, listImages } from './data.ts';
import { HELP, UsageError, dataFolderHint, parseTrainArgs, type TrainOptions } from './config.ts';
import { ResumeError, train, type TrainHooks } from './train.ts';
import { backendLine, initNodeBackend } from './node-backends.ts';

function printSummary(opts: TrainOptions): void {
  const gan = buildGan(modelConfig(opts.arch, opts.width, opts.zDim));
  for (const [label, model] of [
    ['Generator', gan.generator],
    ['Discriminator', gan.discriminator],
  ] as const) {
    const { lines, params } = summarize(model);
    console.log(`${label} (${opts.arch}, width ${gan.config.width})`);
    console.log(lines.join('\n'));
    console.log(`${label} parameters: ${params.toLocaleString('en-US')}\n`);
  }
  console.log(
    `Total parameters: ${(gan.generator.countParams() + gan.discriminator.countParams()).toLocaleString('en-US')}`,
  );
}

/** A bar on a terminal; plain periodic lines in CI logs. */
function progressHooks(quiet: boolean): TrainHooks & { stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format:
        'train |{bar}| {value}/{total} steps | {ips} img/s | ETA {eta_formatted} | D {dLoss} G {gLoss} D(x) {dReal} D(G(z)) {dFake}',
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  const f = (x: number) => x.toFixed(3);
  return {
    say: (line) => console.log(line),
    onStart: ({ startStep, totalSteps }) => {
      if (quiet) return;
      running = true;
      bar.start(totalSteps, startStep, { ips: '-', dLoss: '-', gLoss: '-', dReal: '-', dFake: '-' });
    },
    onStep: ({ step, result, imagesPerSecond }) => {
      if (!quiet)
        bar.update(step, {
          ips: imagesPerSecond.toFixed(1),
          dLoss: f(result.dLoss),
          gLoss: f(result.gLoss),
          dReal: f(result.dReal),
          dFake: f(result.dFake),
        });
    },
    stop: () => {
      if (running) bar.stop();
      running = false;
    },
  };
}

async function main(argv: string[]): Promise<number> {
  // PROD silences TensorFlow.js' console banners, which would bury the CLI's own messages.
  tf.env().set('PROD', true);
  let opts;
  try {
    opts = parseTrainArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message} (see --help)`);
      return 2;
    }
    throw err;
  }
  if (opts === 'help') {
    console.log(HELP);
    return 0;
  }
  if (opts.summary) {
    await tf.setBackend('cpu'); // building layers needs a backend; nothing heavy runs
    printSummary(opts);
    return 0;
  }

  let stopRequested = false;
  const onSignal = (sig: string) => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    console.error(`\n${sig}: finishing this step and writing a checkpoint (again to quit at once)`);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const hooks = progressHooks(opts.quiet);
  try {
    listImages(opts.data); // fail fast on a bad --data, before any backend starts
    let backend;
    try {
      process.env.FACEGAN_CONV_PRECISION = opts.convPrecision; // read when the native backend registers
      backend = await initNodeBackend(opts.backend);
    } catch (err) {
      console.error(`error: --backend ${opts.backend}: ${(err as Error).message}`);
      return 2;
    }
    console.log(backendLine(backend, opts.backend));
    const outcome = await train(opts, backend, { ...hooks, shouldStop: () => stopRequested });
    hooks.stop();
    if (outcome.status === 'diverged') {
      console.error(`error: ${outcome.message}`);
      return 3;
    }
    const how = outcome.status === 'budget' ? 'time budget spent' : outcome.status;
    console.log(
      `${how} at step ${outcome.step}; checkpoint ${outcome.checkpoint}` +
        (outcome.exportDir ? `; exported to ${outcome.exportDir}` : ''),
    );
    if (outcome.status !== 'finished') console.log(`continue with: npm run train -- --out ${opts.out} --resume`);
    return 0;
  } catch (err) {
    hooks.stop();
    if (err instanceof DataError) {
      console.error(`error: ${err.message}${dataFolderHint(opts.data)}`);
      return 2;
    }
    if (err instanceof ResumeError || err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
