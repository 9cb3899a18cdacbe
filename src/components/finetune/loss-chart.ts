/**
 * The live loss chart (uPlot: small and fast enough to redraw every step).
 * Redraws are batched to one per animation frame.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class LossChart {
  private readonly plot: uPlot;
  private readonly data: [number[], number[], number[]] = [[], [], []];
  private pending = false;

  constructor(el: HTMLElement) {
    const width = Math.max(240, Math.min(560, el.clientWidth || 480));
    this.plot = new uPlot({
      width,
      height: 220,
      scales: { x: { time: false } },
      axes: [{ stroke: '#9aa1b2', grid: { stroke: '#2e3340' } }, { stroke: '#9aa1b2', grid: { stroke: '#2e3340' } }],
      series: [
        { label: 'step' },
        { label: 'D loss', stroke: '#ff8a8a', width: 1.5 },
        { label: 'G loss', stroke: '#7cc4ff', width: 1.5 },
      ],
    }, this.data, el);
  }

  add(step: number, dLoss: number, gLoss: number): void {
    this.data[0].push(step);
    this.data[1].push(dLoss);
    this.data[2].push(gLoss);
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData(this.data);
    });
  }

  /** Drop points after `step` (a run resumed from an earlier step) or all of them. */
  truncate(step = -1): void {
    let n = this.data[0].length;
    while (n > 0 && this.data[0][n - 1] > step) n--;
    for (const s of this.data) s.length = n;
    this.plot.setData(this.data);
  }

  get points(): number {
    return this.data[0].length;
  }
}
