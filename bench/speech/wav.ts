/**
 * Minimal RIFF/WAVE I/O for the speech benchmark: 16-bit PCM, mono. Samples are floats in [−1, 1) (int16 / 32768).
 * Writing rounds and clips to int16, as the paper's mixing step saves 16-bit integers (method.md §7.2).
 */

export interface Wav {
  readonly sampleRate: number;
  readonly samples: Float64Array;
}

function fourcc(b: Uint8Array, o: number): string {
  return String.fromCharCode(b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!);
}

/** Parse a mono 16-bit PCM WAV file. `name` is used in error messages. */
export function readWav(bytes: Uint8Array, name = 'WAV data'): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || fourcc(bytes, 0) !== 'RIFF' || fourcc(bytes, 8) !== 'WAVE') {
    throw new Error(`readWav: ${name} is not a RIFF/WAVE file (no 'RIFF…WAVE' header)`);
  }
  let o = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  while (o + 8 <= bytes.length) {
    const id = fourcc(bytes, o);
    let size = view.getUint32(o + 4, true);
    const body = o + 8;
    if (id === 'fmt ') {
      let format = view.getUint16(body, true);
      if (format === 0xfffe && size >= 26) format = view.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE subformat
      fmt = { format, channels: view.getUint16(body + 2, true), rate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) throw new Error(`readWav: ${name} has a data chunk before its fmt chunk`);
      if (fmt.format !== 1 || fmt.bits !== 16 || fmt.channels !== 1) {
        throw new Error(
          `readWav: ${name} is format ${fmt.format}, ${fmt.bits}-bit, ${fmt.channels} channel(s); expected 16-bit PCM mono (convert with: sox in.wav -b 16 -c 1 out.wav)`,
        );
      }
      // espeak-ng --stdout writes a placeholder size (0x7ffff000-ish) since it cannot seek: clamp to the bytes present
      size = Math.min(size, bytes.length - body);
      const n = Math.floor(size / 2);
      const samples = new Float64Array(n);
      for (let i = 0; i < n; i++) samples[i] = view.getInt16(body + 2 * i, true) / 32768;
      return { sampleRate: fmt.rate, samples };
    }
    o = body + size + (size & 1);
  }
  throw new Error(`readWav: ${name} has no data chunk`);
}

/** Encode mono samples as 16-bit PCM WAV (rounded, clipped to [−32768, 32767]). */
export function writeWav(samples: ArrayLike<number>, sampleRate: number): Uint8Array {
  const n = samples.length;
  const out = new Uint8Array(44 + 2 * n);
  const v = new DataView(out.buffer);
  const put = (o: number, s: string): void => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  v.setUint32(4, 36 + 2 * n, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  put(36, 'data');
  v.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))), true);
  return out;
}

/** Round-trip through int16 without writing a file: what a 16-bit WAV would hold. */
export function quantise16(samples: ArrayLike<number>): Float64Array {
  const out = new Float64Array(samples.length);
  for (let i = 0; i < out.length; i++) out[i] = (Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))) | 0) / 32768; // `| 0`: no −0
  return out;
}
