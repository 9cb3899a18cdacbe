/**
 * The live loss chart (uPlot: small and fast enough to redraw every step):
 * what each phase of the run minimises, on a log scale (the projection's
 * and the tuning's losses differ by orders of magnitude). Redraws are
 * batched to one per animation frame.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { FinetunePhase } from '../../lib/finetune.ts';

const PHASE_SERIES: Record<FinetunePhase, number> = { project: 1, tune: 2, likeness: 3 };

/** One line per phase, each the loss that phase minimises, sized to its box (and resized with it). */
export class LossChart {
  private readonly plot: uPlot;
  private readonly data: (number | null)[][] = [[], [], [], []];
  private pending = false;

  constructor(private readonly el: HTMLElement) {
    this.plot = new uPlot(
      {
        ...this.size(),
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [
          { stroke: '#9aa1b2', grid: { stroke: '#2e3340' } },
          { stroke: '#9aa1b2', grid: { stroke: '#2e3340' } },
        ],
        series: [
          { label: 'step' },
          { label: 'projection loss (pixels + D features)', stroke: '#ffc46b', width: 1.5, spanGaps: false },
          { label: 'tuning loss (+ locality, L2-SP)', stroke: '#7cc4ff', width: 1.5, spanGaps: false },
          { label: 'likeness loss (descriptor distance)', stroke: '#9be39b', width: 1.5, spanGaps: false },
        ],
      },
      this.data as uPlot.AlignedData,
      el,
    );
    new ResizeObserver(() => this.plot.setSize(this.size())).observe(el);
  }

  private size(): { width: number; height: number } {
    const width = Math.max(240, this.el.clientWidth || 480);
    return { width, height: Math.round(Math.min(260, Math.max(180, width * 0.4))) };
  }

  add(step: number, phase: FinetunePhase, loss: number): void {
    this.data[0].push(step);
    for (let s = 1; s <= 3; s++) this.data[s].push(s === PHASE_SERIES[phase] ? loss : null);
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData(this.data as uPlot.AlignedData);
    });
  }

  /** Drop points after `step` (a run resumed from an earlier step) or all of them. */
  truncate(step = -1): void {
    let n = this.data[0].length;
    while (n > 0 && (this.data[0][n - 1] ?? -1) > step) n--;
    for (const s of this.data) s.length = n;
    this.plot.setData(this.data as uPlot.AlignedData);
  }

  get points(): number {
    return this.data[0].length;
  }
}
