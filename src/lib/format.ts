/** Durations for people, one way everywhere: the about page, the fine-tune page's ETA, the CLIs. */

/** "42 s", "1 min 05 s", "2 h 05 min" (seconds are rounded; below 0 counts as 0). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h} h ${two(m)} min`;
  if (m > 0) return `${m} min ${two(s % 60)} s`;
  return `${s} s`;
}
