/**
 * What the fine-tuned generator in the page came from, for the manifest in
 * its download: the pretrained model it started from (named and hashed
 * only when a download needs it) and each run since. Kept beside a model
 * saved in this browser, so a restored model keeps its record.
 */
import { describeParent } from '../../browser/tuned-model.ts';
import type { ParentModel, Provenance, TuneRun } from '../../lib/model-bundle.ts';

const SAVED_KEY = 'facegan:finetuned-provenance';

/** 'site': the page's own pretrained model, fetched and hashed on first need. */
type Parent = ParentModel | null | 'site';

interface Kept {
  parent: Parent;
  runs: TuneRun[];
  likeness: number | null;
  note?: string;
}

function readSaved(): Provenance | null {
  try {
    const saved = JSON.parse(localStorage.getItem(SAVED_KEY) ?? 'null') as Provenance | null;
    return saved && Array.isArray(saved.runs) ? saved : null;
  } catch {
    return null;
  }
}

export class ProvenanceRecord {
  private record: Kept = { parent: 'site', runs: [], likeness: null };
  private siteParent: Promise<ParentModel> | null = null;

  constructor(private readonly modelBase: string) {}

  /** The page's pretrained model, untouched (a fresh start or a reset). */
  pretrained(): void {
    this.record = { parent: 'site', runs: [], likeness: null };
  }

  /** A model restored from this browser: the record saved with it, or an unknown past. */
  restored(): void {
    this.record = readSaved() ?? {
      parent: null,
      runs: [],
      likeness: null,
      note: 'restored from this browser without a record of how it was tuned',
    };
  }

  /** An imported model: its manifest's record, or (loose model files) an unknown past. */
  imported(from: Provenance | null): void {
    this.record = from
      ? { parent: from.parent, runs: [...from.runs], likeness: from.likeness, note: from.note }
      : { parent: null, runs: [], likeness: null, note: 'imported from model files that say nothing of its past' };
  }

  /** A run changed the model; it draws at likeness 1 until the slider moves. */
  addRun(run: TuneRun): void {
    this.record.runs.push(run);
    this.record.likeness = 1;
  }

  setLikeness(value: number): void {
    this.record.likeness = value;
  }

  /** The record with the parent named and hashed. */
  async resolve(): Promise<Provenance> {
    let { parent } = this.record;
    if (parent === 'site') {
      this.siteParent ??= describeParent(this.modelBase);
      // A failed look-up is tried again next time.
      parent = await this.siteParent.catch((err: unknown) => {
        this.siteParent = null;
        throw err;
      });
    }
    const { note } = this.record;
    return { parent, runs: [...this.record.runs], likeness: this.record.likeness, ...(note ? { note } : {}) };
  }

  /** Keep the record beside the model saved in this browser. */
  async save(): Promise<void> {
    localStorage.setItem(SAVED_KEY, JSON.stringify(await this.resolve()));
  }

  forget(): void {
    localStorage.removeItem(SAVED_KEY);
  }
}
