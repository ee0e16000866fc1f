/**
 * Deterministic data for the speech-enhancement analogue of the paper's Exp 2 (issue 14, method.md §7.2).
 *
 * - Clean speech: Debian's espeak-ng (synthetic speech: say so wherever results are reported), English voices
 *   with voice variants, speaking rates and pitches drawn from a seed, resampled from espeak's 22,050 Hz to
 *   16 kHz with dsp.ts's resampler and normalised to a fixed RMS level.
 * - Noises are generated here from a seed (no sox needed). Source noises (pretraining): white, pink, brown,
 *   mains hum, babble of other espeak utterances. Target noises (never seen in pretraining): a siren sweep, a
 *   bell-like inharmonic decay, a crying-like modulated tone, clapping-like impulses.
 * - Mixing as in the paper: the noise is looped or cropped at a random offset and scaled to
 *   SNR = 10·log10(P_clean / P_noise); source SNRs −5, 0, 5, 10 dB, target SNRs −1, +1 dB. Results are
 *   quantised to 16 bits, as the paper saves 16-bit WAVs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mulberry32, shuffleInPlace } from '../../src/core/random.js';
import { fft, ifft, resample } from './dsp.js';
import { quantise16, readWav } from './wav.js';

export const SAMPLE_RATE = 16000;
export const SOURCE_SNRS = [-5, 0, 5, 10] as const;
export const TARGET_SNRS = [-1, 1] as const;
/** RMS of every clean utterance after normalisation (−30 dBFS), so mixtures stay below full scale (clapping peaks reach ~20× its RMS). */
export const SPEECH_RMS = 10 ** (-30 / 20);

export const SOURCE_NOISES = ['white', 'pink', 'brown', 'hum', 'babble'] as const;
export const TARGET_NOISES = ['siren', 'bell', 'crying', 'clapping'] as const;
export type SourceNoise = (typeof SOURCE_NOISES)[number];
export type TargetNoise = (typeof TARGET_NOISES)[number];
export type NoiseKind = SourceNoise | TargetNoise;

/** Written for this project: varied phonetic content, 6–12 words each. */
export const SENTENCES: readonly string[] = [
  'The bright lamp swung slowly above the wooden table.',
  'A cold wind pushed the small boat toward the rocks.',
  'She measured the flour twice before baking the bread.',
  'Thick fog rolled over the hills before dawn.',
  'The old clock in the hallway stopped at noon.',
  'We found three silver coins beneath the loose floorboard.',
  'His voice echoed through the empty concert hall.',
  'The children painted yellow stars on the classroom ceiling.',
  'Fresh oranges were stacked high in the market stall.',
  'A quiet river curves around the edge of the village.',
  'The pilot checked every gauge before the long flight.',
  'Heavy rain flooded the narrow street by evening.',
  'Please move the blue chair closer to the window.',
  'The museum closes early on the first Monday of June.',
  'Seven geese flew north over the frozen lake.',
  'He fixed the broken fence with rope and nails.',
  'Our train leaves the station at a quarter past nine.',
  'The garden smelled of mint after the summer storm.',
  'Nobody noticed the cat sleeping inside the laundry basket.',
  'The judge listened carefully to both witnesses.',
  'A sharp knife makes the vegetables easier to slice.',
  'They watched the fireworks from the roof of the hotel.',
  'Warm soup is the best cure for a long winter day.',
  'The engineer drew a map of every tunnel under the city.',
  'Bring a thick jacket because the mountain path is cold.',
  'The violin player tuned each string with great care.',
  'Dozens of tiny fish darted between the coral.',
  'My brother keeps his bicycle in the garage.',
  'The letter arrived three weeks after it was sent.',
  'Smoke rose from the chimney of the farmhouse.',
  'The doctor asked him to breathe in deeply.',
  'Jagged cliffs guard the northern side of the island.',
  'The baker sold every loaf before eight in the morning.',
  'A yellow kite was caught in the branches of the oak.',
  'The team practised the new song until midnight.',
  'Water dripped steadily from the cracked pipe.',
  'Her grandmother knitted a scarf with red and green stripes.',
  'The quick reporter typed the story on a borrowed laptop.',
  'Lightning struck the tall pine behind the school.',
  'The shop on the corner repairs watches and shoes.',
];

export const VOICES: readonly string[] = ['en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-029', 'en-us-nyc'];
export const VARIANTS: readonly string[] = ['m1', 'm2', 'm3', 'm4', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5', 'klatt', 'klatt2'];

export interface Speaker {
  readonly voice: string;
  readonly variant: string;
  /** espeak-ng -s, words per minute */
  readonly speed: number;
  /** espeak-ng -p, 0–99 */
  readonly pitch: number;
}

export interface Utterance {
  readonly text: string;
  readonly speaker: Speaker;
  /** 16 kHz, RMS = SPEECH_RMS */
  readonly samples: Float64Array;
}

/**
 * Installs espeak-ng through apt (apt-get update, then install) when it is missing; throws with the command to run
 * when it cannot. `env` is the environment of the probes and of apt-get (the process's by default).
 */
export function ensureEspeak(env: NodeJS.ProcessEnv = process.env): string {
  const probe = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8', env });
  if (probe.status === 0) return probe.stdout.trim();
  console.error('espeak-ng not found; installing it with apt-get (Debian package espeak-ng) …');
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const cmd = asRoot ? [] : ['sudo', '-n'];
  for (const args of [['apt-get', 'update'], ['apt-get', 'install', '-y', 'espeak-ng']]) {
    const full = [...cmd, ...args];
    const r = spawnSync(full[0]!, full.slice(1), { stdio: 'inherit', env });
    if (r.status !== 0) {
      throw new Error(
        `could not install espeak-ng (\`${full.join(' ')}\` exited with ${r.status ?? r.error?.message}); install it yourself with \`apt-get install espeak-ng\` (Debian/Ubuntu) and rerun`,
      );
    }
  }
  const again = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8', env });
  if (again.status !== 0) throw new Error('espeak-ng was installed but does not run (`espeak-ng --version` failed)');
  return again.stdout.trim();
}

function scaleToRms(x: Float64Array, rms: number): Float64Array {
  let p = 0;
  for (let i = 0; i < x.length; i++) p += x[i]! * x[i]!;
  const g = rms / Math.sqrt(p / x.length);
  return x.map((v) => v * g);
}

/** Trim leading/trailing samples below 1e-3 of the peak (espeak pads with silence), keeping 50 ms margins. */
function trimSilence(x: Float64Array, sr: number): Float64Array {
  let peak = 0;
  for (const v of x) peak = Math.max(peak, Math.abs(v));
  const thr = 1e-3 * peak;
  let a = 0, b = x.length - 1;
  while (a < b && Math.abs(x[a]!) < thr) a++;
  while (b > a && Math.abs(x[b]!) < thr) b--;
  const m = Math.round(0.05 * sr);
  return x.slice(Math.max(0, a - m), Math.min(x.length, b + 1 + m));
}

/** Speak one sentence with espeak-ng and return it at 16 kHz, trimmed and RMS-normalised. */
export function speak(text: string, speaker: Speaker): Utterance {
  const wav = execFileSync('espeak-ng', ['-v', `${speaker.voice}+${speaker.variant}`, '-s', String(speaker.speed), '-p', String(speaker.pitch), '--stdout', text], {
    maxBuffer: 64 * 2 ** 20,
  });
  const raw = readWav(new Uint8Array(wav.buffer, wav.byteOffset, wav.byteLength), `espeak-ng output for "${text}"`);
  const x = trimSilence(resample(raw.samples, raw.sampleRate, SAMPLE_RATE), SAMPLE_RATE);
  return { text, speaker, samples: scaleToRms(x, SPEECH_RMS) };
}

/** A seeded speaker: voice, variant, speed 140–185 wpm, pitch 30–70. */
export function drawSpeaker(rnd: () => number): Speaker {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  return { voice: pick(VOICES), variant: pick(VARIANTS), speed: 140 + Math.floor(rnd() * 46), pitch: 30 + Math.floor(rnd() * 41) };
}

/** `count` utterances: sentence i mod 40 (shuffled by the seed), each with a seeded speaker. */
export function utterances(count: number, seed: number): Utterance[] {
  const rnd = mulberry32(seed);
  const order = SENTENCES.map((_, i) => i);
  shuffleInPlace(order, rnd);
  const out: Utterance[] = [];
  for (let i = 0; i < count; i++) out.push(speak(SENTENCES[order[i % order.length]!]!, drawSpeaker(rnd)));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Noises, 16 kHz, unit RMS (the mixer rescales them to the SNR anyway)

function gauss(rnd: () => number): number {
  let u = rnd();
  while (u === 0) u = rnd();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

function unitRms(x: Float64Array): Float64Array {
  return scaleToRms(x, 1);
}

/** Gaussian noise shaped to power ∝ 1/f^exponent (above 20 Hz) by scaling its DFT. */
function coloured(len: number, exponent: number, rnd: () => number): Float64Array {
  let n = 1;
  while (n < len) n <<= 1;
  const re = new Float64Array(n), im = new Float64Array(n);
  for (let i = 0; i < len; i++) re[i] = gauss(rnd);
  fft(re, im);
  for (let k = 0; k < n; k++) {
    const f = (Math.min(k, n - k) * SAMPLE_RATE) / n;
    const g = f < 1 ? 0 : Math.max(f, 20) ** (-exponent / 2);
    re[k] = re[k]! * g;
    im[k] = im[k]! * g;
  }
  ifft(re, im);
  return unitRms(re.slice(0, len));
}

/** Mains hum: 50 Hz and harmonics 1–10 (amplitude 1/k, seeded phases), slow amplitude drift, a little hiss. */
function hum(len: number, rnd: () => number): Float64Array {
  const ph = Array.from({ length: 10 }, () => 2 * Math.PI * rnd());
  const drift = 2 * Math.PI * rnd();
  const x = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    const t = i / SAMPLE_RATE;
    let s = 0;
    for (let k = 1; k <= 10; k++) s += Math.sin(2 * Math.PI * 50 * k * t + ph[k - 1]!) / k;
    x[i] = s * (1 + 0.2 * Math.sin(2 * Math.PI * 0.3 * t + drift)) + 0.02 * gauss(rnd);
  }
  return unitRms(x);
}

/** Babble: `talkers` utterances (not the clean ones) summed, each looped from a seeded offset. */
function babble(len: number, rnd: () => number, talkers: readonly Utterance[]): Float64Array {
  if (talkers.length === 0) throw new Error('babble noise needs talker utterances: pass babbleTalkers (utterances not used as clean speech)');
  const x = new Float64Array(len);
  for (const u of talkers) {
    const s = u.samples, off = Math.floor(rnd() * s.length);
    for (let i = 0; i < len; i++) x[i] = x[i]! + s[(off + i) % s.length]!;
  }
  return unitRms(x);
}

/** Siren: a wail sweeping 650–1,550 Hz with a period of 3–4 s, harmonics 1–4 at 1/k². */
function siren(len: number, rnd: () => number): Float64Array {
  const period = 3 + rnd(), phase0 = 2 * Math.PI * rnd();
  const x = new Float64Array(len);
  let phase = 0;
  for (let i = 0; i < len; i++) {
    const t = i / SAMPLE_RATE;
    const f = 1100 + 450 * Math.sin((2 * Math.PI * t) / period + phase0);
    phase += (2 * Math.PI * f) / SAMPLE_RATE;
    let s = 0;
    for (let k = 1; k <= 4; k++) s += Math.sin(k * phase) / (k * k);
    x[i] = s;
  }
  return unitRms(x);
}

/** Bell: strikes every 0.9–1.5 s, each a sum of inharmonic partials of a seeded 500–800 Hz fundamental with exponential decays. */
function bell(len: number, rnd: () => number): Float64Array {
  const f0 = 500 + 300 * rnd();
  const ratios = [0.5, 1, 1.183, 1.506, 2, 2.514, 2.662, 3.011, 4.166];
  const taus = [1.2, 0.9, 0.7, 0.55, 0.45, 0.35, 0.3, 0.22, 0.15];
  const x = new Float64Array(len);
  for (let start = Math.floor(0.2 * rnd() * SAMPLE_RATE); start < len; start += Math.floor((0.9 + 0.6 * rnd()) * SAMPLE_RATE)) {
    const amp = 0.6 + 0.4 * rnd();
    const ph = ratios.map(() => 2 * Math.PI * rnd());
    const end = Math.min(len, start + 4 * SAMPLE_RATE);
    for (let i = start; i < end; i++) {
      const t = (i - start) / SAMPLE_RATE;
      let s = 0;
      for (let k = 0; k < ratios.length; k++) s += Math.exp(-t / taus[k]!) * Math.sin(2 * Math.PI * f0 * ratios[k]! * t + ph[k]!) / (1 + 0.3 * k);
      x[i] = x[i]! + amp * s;
    }
  }
  return unitRms(x);
}

/**
 * Crying-like: bursts of 0.6–1.3 s separated by 0.2–0.5 s pauses; in a burst a 380–520 Hz fundamental rises then
 * falls, with 6 Hz vibrato, 12 harmonics shaped by a broad 1–3 kHz emphasis, and a smooth on/off envelope.
 */
function crying(len: number, rnd: () => number): Float64Array {
  const x = new Float64Array(len);
  let i = 0;
  while (i < len) {
    const dur = Math.floor((0.6 + 0.7 * rnd()) * SAMPLE_RATE), f0 = 380 + 140 * rnd(), rise = 0.15 + 0.2 * rnd();
    const vib = 2 * Math.PI * rnd();
    let phase = 0;
    for (let j = 0; j < dur && i + j < len; j++) {
      const u = j / dur, t = j / SAMPLE_RATE;
      const f = f0 * (1 + rise * Math.sin(Math.PI * u)) * (1 + 0.03 * Math.sin(2 * Math.PI * 6 * t + vib));
      phase += (2 * Math.PI * f) / SAMPLE_RATE;
      let s = 0;
      for (let k = 1; k <= 12; k++) {
        const fk = k * f;
        if (fk > 7500) break;
        s += Math.sin(k * phase) * (1 / k) * (1 + 2 * Math.exp(-(((fk - 2000) / 1000) ** 2)));
      }
      const env = Math.sin(Math.PI * u) ** 0.5;
      x[i + j] = env * s;
    }
    i += dur + Math.floor((0.2 + 0.3 * rnd()) * SAMPLE_RATE);
  }
  return unitRms(x);
}

/** Clapping-like: impulses every 0.12–0.45 s, each a noise burst (5–12 ms decay) through a 1–2.5 kHz resonator. */
function clapping(len: number, rnd: () => number): Float64Array {
  const x = new Float64Array(len);
  for (let start = Math.floor(0.1 * rnd() * SAMPLE_RATE); start < len; start += Math.floor((0.12 + 0.33 * rnd()) * SAMPLE_RATE)) {
    const tau = (0.005 + 0.007 * rnd()) * SAMPLE_RATE, amp = 0.5 + 0.5 * rnd();
    const fc = 1000 + 1500 * rnd(), r = 0.97;
    const a1 = 2 * r * Math.cos((2 * Math.PI * fc) / SAMPLE_RATE), a2 = -r * r;
    let y1 = 0, y2 = 0;
    const end = Math.min(len, start + Math.floor(8 * tau) + 400);
    for (let i = start; i < end; i++) {
      const e = i - start < 8 * tau ? amp * Math.exp(-(i - start) / tau) * gauss(rnd) : 0;
      const y = e + a1 * y1 + a2 * y2;
      y2 = y1;
      y1 = y;
      x[i] = x[i]! + y;
    }
  }
  return unitRms(x);
}

export interface NoiseOptions {
  /** Utterances to build babble from; must not include the clean speech of the mixtures. */
  readonly babbleTalkers?: readonly Utterance[];
}

/** `seconds` of noise of the given kind at 16 kHz, unit RMS, deterministic for (kind, seed). */
export function noise(kind: NoiseKind, seconds: number, seed: number, options: NoiseOptions = {}): Float64Array {
  const len = Math.round(seconds * SAMPLE_RATE);
  const rnd = mulberry32(seed);
  switch (kind) {
    case 'white':
      return unitRms(Float64Array.from({ length: len }, () => gauss(rnd)));
    case 'pink':
      return coloured(len, 1, rnd);
    case 'brown':
      return coloured(len, 2, rnd);
    case 'hum':
      return hum(len, rnd);
    case 'babble':
      return babble(len, rnd, options.babbleTalkers ?? []);
    case 'siren':
      return siren(len, rnd);
    case 'bell':
      return bell(len, rnd);
    case 'crying':
      return crying(len, rnd);
    case 'clapping':
      return clapping(len, rnd);
  }
}

export interface Mixture {
  /** clean speech, 16-bit quantised, possibly scaled down with the noisy signal to avoid clipping */
  readonly clean: Float64Array;
  readonly noisy: Float64Array;
  readonly snrDb: number;
  /** where in the (looped) noise the mixture starts */
  readonly offset: number;
}

/**
 * Mix as in the paper: loop/crop `noiseSignal` from a random offset, scale it so 10·log10(P_clean/P_noise) =
 * snrDb, add, and quantise both outputs to 16 bits. If the mixture would clip, clean and noisy are scaled down
 * by the same factor (the SNR is unchanged).
 */
export function mix(clean: Float64Array, noiseSignal: Float64Array, snrDb: number, rnd: () => number): Mixture {
  if (noiseSignal.length === 0) throw new RangeError('mix: the noise signal is empty');
  const offset = Math.floor(rnd() * noiseSignal.length);
  const n = new Float64Array(clean.length);
  let pc = 0, pn = 0;
  for (let i = 0; i < clean.length; i++) {
    n[i] = noiseSignal[(offset + i) % noiseSignal.length]!;
    pc += clean[i]! * clean[i]!;
    pn += n[i]! * n[i]!;
  }
  const g = Math.sqrt(pc / (pn * 10 ** (snrDb / 10)));
  const noisy = new Float64Array(clean.length);
  let peak = 0;
  for (let i = 0; i < clean.length; i++) {
    noisy[i] = clean[i]! + g * n[i]!;
    peak = Math.max(peak, Math.abs(noisy[i]!), Math.abs(clean[i]!));
  }
  const s = peak > 0.99 ? 0.99 / peak : 1;
  return { clean: quantise16(clean.map((v) => v * s)), noisy: quantise16(noisy.map((v) => v * s)), snrDb, offset };
}

// ---------------------------------------------------------------------------------------------------------
// Data sets

export interface Pair {
  /** index into the utterance list */
  readonly utterance: number;
  readonly noise: NoiseKind;
  readonly snrDb: number;
  readonly clean: Float64Array;
  readonly noisy: Float64Array;
}

export interface PairOptions extends NoiseOptions {
  /** seconds of each noise to loop/crop from; train and test sets should use different `noiseSeed`s. @defaultValue 20 */
  readonly noiseSeconds?: number;
}

/**
 * Every utterance mixed with every noise kind, each at an SNR drawn from `snrs` (seeded). One noise recording
 * per kind is generated from `noiseSeed` (use a different seed for held-out sets: unseen noise realisations).
 */
export function makePairs(utts: readonly Utterance[], kinds: readonly NoiseKind[], snrs: readonly number[], seed: number, noiseSeed: number, options: PairOptions = {}): Pair[] {
  const rnd = mulberry32(seed);
  const seconds = options.noiseSeconds ?? 20;
  const out: Pair[] = [];
  kinds.forEach((kind, k) => {
    const n = noise(kind, seconds, noiseSeed * 101 + k, options);
    utts.forEach((u, i) => {
      const snrDb = snrs[Math.floor(rnd() * snrs.length)]!;
      const m = mix(u.samples, n, snrDb, rnd);
      out.push({ utterance: i, noise: kind, snrDb, clean: m.clean, noisy: m.noisy });
    });
  });
  return out;
}
