/** Bins per doubling of the latency: each bin spans a factor 2^(1/8) ≈ 1.09, so a percentile is within ±4.5%. */
const BINS_PER_OCTAVE = 8;
/** The first bin holds everything up to 2^-3 ms (0.125 ms); the last everything above 2^20 ms (about 17 minutes). */
const LOWEST_EXPONENT = -3;
const HIGHEST_EXPONENT = 20;
/** 185 bins of 4 bytes: 740 bytes per histogram, whatever the number of requests. */
export const LATENCY_BINS = (HIGHEST_EXPONENT - LOWEST_EXPONENT) * BINS_PER_OCTAVE + 1;

/**
 * Latencies in a fixed log-scale histogram, so percentiles over any number of requests cost a
 * fixed amount of memory (no per-request arrays), and histograms of several periods add up.
 */
export class LatencyHistogram {
  private readonly bins = new Uint32Array(LATENCY_BINS);
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const i = ms <= 2 ** LOWEST_EXPONENT ? 0 : Math.min(LATENCY_BINS - 1, Math.ceil((Math.log2(ms) - LOWEST_EXPONENT) * BINS_PER_OCTAVE));
    this.bins[i] = (this.bins[i] as number) + 1;
    this.n++;
  }

  addAll(other: LatencyHistogram): void {
    for (let i = 0; i < LATENCY_BINS; i++) this.bins[i] = (this.bins[i] as number) + (other.bins[i] as number);
    this.n += other.n;
  }

  /**
   * The latency below which a fraction `q` (0..1) of the requests fall: the geometric middle of
   * the bin holding that rank, rounded to 0.1 ms. Undefined without requests.
   */
  percentile(q: number): number | undefined {
    if (this.n === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < LATENCY_BINS; i++) {
      seen += this.bins[i] as number;
      if (seen >= rank) return Math.round(binMiddle(i) * 10) / 10;
    }
    return Math.round(binMiddle(LATENCY_BINS - 1) * 10) / 10;
  }
}

function binMiddle(i: number): number {
  if (i === 0) return 2 ** LOWEST_EXPONENT;
  return 2 ** ((i - 0.5) / BINS_PER_OCTAVE + LOWEST_EXPONENT);
}
