import type { Readable } from 'node:stream';

/** The waveform picture every audio rendition is made from (4:1). */
export const WAVEFORM = { width: 2048, height: 512 } as const;
/** Decoded rate of the samples peaks are taken from: plenty for a picture 2048 columns wide. */
export const WAVEFORM_RATE = 8000;
const COLOUR = '#3b82f6';

/**
 * The peak level (0–1) of each of `columns` equal stretches of 16-bit mono PCM read from
 * `pcm`, in constant memory however long the sound: samples go into twice as many buckets
 * as columns, and when the buckets are full, neighbours merge and each bucket holds twice
 * the samples (so the length need not be known in advance).
 */
export async function peaks(pcm: Readable, columns: number): Promise<number[]> {
  let buckets = new Float64Array(columns * 2);
  let perBucket = 1;
  let filled = 0; // samples in the bucket being filled
  let index = 0;
  let odd: number | null = null; // a byte left over from the last chunk
  const add = (sample: number) => {
    if (filled === perBucket) {
      filled = 0;
      index += 1;
      if (index === buckets.length) {
        const merged = new Float64Array(buckets.length);
        for (let i = 0; i < columns; i++) merged[i] = Math.max(buckets[2 * i], buckets[2 * i + 1]);
        buckets = merged;
        perBucket *= 2;
        index = columns;
      }
    }
    const level = Math.abs(sample) / 32768;
    if (level > buckets[index]) buckets[index] = level;
    filled += 1;
  };
  for await (const chunk of pcm) {
    let bytes = chunk as Buffer;
    if (odd !== null) {
      bytes = Buffer.concat([Buffer.from([odd]), bytes]);
      odd = null;
    }
    const whole = bytes.length - (bytes.length % 2);
    for (let i = 0; i < whole; i += 2) add(bytes.readInt16LE(i));
    if (whole < bytes.length) odd = bytes[whole];
  }
  // Spread the buckets used over the columns.
  const used = filled > 0 ? index + 1 : index;
  return Array.from({ length: columns }, (_, column) => {
    if (used === 0) return 0;
    const from = Math.floor((column * used) / columns);
    const to = Math.max(from + 1, Math.floor(((column + 1) * used) / columns));
    let peak = 0;
    for (let i = from; i < to; i++) peak = Math.max(peak, buckets[i]);
    return peak;
  });
}

/** An SVG of `levels` as bars around a centre line (one pixel tall for silence), on transparent ground. */
export function waveformSvg(levels: readonly number[], width = WAVEFORM.width, height = WAVEFORM.height): string {
  const middle = height / 2;
  const column = width / levels.length;
  const bars = levels
    .map((level, i) => {
      const half = Math.max(0.5, level * middle);
      return `M${(i * column).toFixed(2)} ${(middle - half).toFixed(2)}h${column.toFixed(2)}v${(2 * half).toFixed(2)}h-${column.toFixed(2)}z`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><path fill="${COLOUR}" d="${bars}"/></svg>`;
}
