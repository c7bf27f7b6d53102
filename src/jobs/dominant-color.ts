/**
 * The colour that covers most of a picture, as `#rrggbb`: pixels fall into 16 levels
 * per channel (4096 bins, as sharp's `stats().dominant` counts them) and the answer is
 * the mean of the fullest bin, so a flat colour comes back exactly. Transparent pixels
 * show nothing and count for nothing; a picture with none visible has no colour.
 *
 * `rgba`: 8-bit pixels, 4 bytes each (a small rendition is enough: the thumbnail's).
 */
export function dominantColor(rgba: Uint8Array): string | undefined {
  const counts = new Uint32Array(4096);
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i + 3] === 0) continue;
    counts[binOf(rgba, i)]! += 1;
  }
  let fullest = 0;
  for (let bin = 1; bin < counts.length; bin++) if (counts[bin]! > counts[fullest]!) fullest = bin;
  if (counts[fullest] === 0) return undefined;
  const sum = [0, 0, 0];
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i + 3] === 0) continue;
    if (binOf(rgba, i) !== fullest) continue;
    for (let c = 0; c < 3; c++) sum[c]! += rgba[i + c]!;
  }
  const count = counts[fullest]!;
  return `#${sum.map((total) => hex(Math.round(total / count))).join('')}`;
}

/** The bin of the pixel at `i`: the top 4 bits of red, green and blue. */
function binOf(rgba: Uint8Array, i: number): number {
  return ((rgba[i]! >> 4) << 8) | ((rgba[i + 1]! >> 4) << 4) | (rgba[i + 2]! >> 4);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
