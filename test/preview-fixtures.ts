import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * An MP4 (H.264) of `seconds` whose picture changes each second (ffmpeg's `testsrc` shows a
 * counter), `size` like `320x240`, made by ffmpeg's own test source at test time.
 */
export function makeVideo(seconds: number, size = '320x240', ffmpeg = process.env.FFMPEG_PATH || 'ffmpeg'): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'assetgate-video-'));
  try {
    const out = path.join(dir, 'clip.mp4');
    execFileSync(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc=duration=${seconds}:size=${size}:rate=10`,
      '-pix_fmt',
      'yuv420p',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      out,
    ]);
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
