/**
 * The `lva` command line: `lva adapt`, `lva inspect`, `lva source-stats`. Exit codes are part of the interface
 * (see {@link EXIT}); output files are written atomically and never over the input.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { match } from 'ts-pattern';
import { isLvaError, OptionError } from '../core/errors.js';
import { sourceStatisticsFromJSON, sourceStatisticsToJSON, type SourceStatistics } from '../core/source-statistics.js';
import {
  adaptOnnxModel,
  computeOnnxSourceStatistics,
  embedOnnxSourceStatistics,
  inspectOnnxModel,
  InvalidModelError,
  RuntimeUnavailableError,
  UnsupportedModelError,
  type OnnxAdaptReport,
  type OnnxInspection,
  type OnnxProgress,
} from '../adapters/onnx/index.js';
import { DataFileError, readArrayFile, readGroupsFile } from './data.js';
import { faultPoint } from '../io/faults.js';

/** Exit codes of every command. */
export const EXIT = {
  /** Success: the model was adapted and written (or the inspection printed). */
  ok: 0,
  /** Usage error: unknown command or option, missing or malformed argument, --out exists without --force. */
  usage: 1,
  /** Bad input: unreadable or unsupported model, malformed or mis-shaped X/Y, bad source statistics. */
  badInput: 2,
  /** Declined or refused: the solver kept the pretrained head, validation got worse, or verification failed. Nothing written. */
  notWritten: 3,
  /** Unexpected internal error (a bug: please report it with the message). */
  internal: 4,
} as const;

const EXIT_TEXT = `Exit codes:
  0  ok: the model was adapted and written (inspect: printed)
  1  usage error: unknown command/option, missing or malformed argument, output exists without --force
  2  bad input: unreadable/unsupported model, malformed or mis-shaped X/Y, bad --source-stats file
  3  declined or refused: the solver kept the pretrained head, the validation error got worse, or the
     result failed verification; the model was not written (the --report, if asked for, still is)
  4  internal error (a bug; please report it)`;

const MAIN_HELP = `lva: Layer Variational Analysis for ONNX models: a closed-form, regularised update of a
pretrained network's last linear layer (Gemm, MatMul + Add, or Conv) from a few target-domain rows.

Usage:
  lva adapt MODEL.onnx --x X --y Y --out OUT.onnx [options]   adapt the head, write a new model
  lva inspect MODEL.onnx [--json]                              show the head LVA would adapt
  lva source-stats MODEL.onnx --x X --out STATS.json           source feature statistics for --source-stats
  lva source-stats MODEL.onnx --x X --embed --out M.lva.onnx   or embedded in a copy of the model (used by adapt)
  lva <command> --help                                         options of one command

X and Y may be .npy, .csv (numeric, header optional) or .json (nested arrays).

${EXIT_TEXT}
`;

const ADAPT_HELP = `lva adapt MODEL.onnx --x X --y Y --out OUT.onnx [options]

Reads the head's input features by running MODEL on X (onnxruntime-web), solves the LVA update in float64,
writes the new head weights in their original layout and type, verifies the written model on X, and saves
it to OUT atomically. MODEL is never modified.

Required:
  --x FILE               target inputs, in the model's input layout (.npy, .csv, .json)
  --y FILE               targets, shaped like the head's output (or one row of values per sample)
  --out FILE             where to write the adapted model

Options:
  --report FILE          also write the full report (diagnostics, λ, timings) as JSON
  --regularization R     auto (default: λ by cross-validation) | none (pseudo-inverse) | a number λ ≥ 0
  --groups FILE          one integer group id per sample of X (.npy, .json array or one-column .csv), for
                         samples that are not independent (frames of one utterance): auto then chooses λ by
                         cross-validation over whole groups. Regression heads only
  --node NAME            the head node (default: the Gemm/MatMul/Conv feeding the graph output)
  --input-name NAME      the graph input X is fed to (default: the only input)
  --batch-size N         samples per onnxruntime run (default 256)
  --source-stats FILE    source feature statistics (from \`lva source-stats\`) for the source-feature metric
  --source-x FILE        or the source inputs themselves (statistics computed on the fly). Without either,
                         statistics embedded in MODEL (\`lva source-stats --embed\`) are used when present
  --unlabelled-x FILE    no source data, but more target inputs than labels: their statistics replace the
                         source statistics in the metric (not with --source-stats/--source-x)
  --allow-stale-source-stats
                         use embedded statistics even though the head changed since they were embedded
  --carry-source-stats   write the statistics used into OUT, stamped with the new head, so OUT adapts with them
  --validation-x FILE    held-out target inputs and targets: the update is kept only if their squared
  --validation-y FILE      error does not get worse (otherwise exit 3, nothing written)
  --loss KIND            auto (default): squared error for regression heads, cross-entropy for heads
                         followed by Softmax/LogSoftmax/Sigmoid (Y one-hot rows or one integer label per
                         sample); logit: logit-space LVA (one solve); mse: Y are logits fitted by least squares
  --force                overwrite OUT and the report if they exist
  -h, --help             this help

${EXIT_TEXT}
`;

const INSPECT_HELP = `lva inspect MODEL.onnx [--node NAME] [--json]

Prints the model's inputs and outputs and the head LVA would adapt: operator, feature tensor, weight storage,
shapes, parameter count and the activation after it (or why no head can be adapted). Runs nothing.

Options:
  --node NAME   describe this node as the head
  --json        print the inspection as JSON
  -h, --help    this help

${EXIT_TEXT}
`;

const STATS_HELP = `lva source-stats MODEL.onnx --x X --out STATS.json [options]
lva source-stats MODEL.onnx --x X --embed --out MODEL.lva.onnx [options]

Runs MODEL on source-domain inputs X and writes the head's input feature statistics (JSON), for
\`lva adapt --source-stats\`: the ridge penalty then measures the change of the head on source inputs.
With --embed, writes a copy of MODEL with the statistics in its metadata_props instead (every other byte
unchanged); \`lva adapt\` then uses them without --source-stats.

Options:
  --embed       write MODEL with the statistics embedded, not a JSON file
  --precision P float32 (default; a 512-wide head adds 0.7 MB) or float64 (exact, 1.4 MB), with --embed
  --node NAME, --input-name NAME, --batch-size N   as for \`lva adapt\`
  --force       overwrite OUT if it exists
  -h, --help    this help

${EXIT_TEXT}
`;

/** Where the CLI writes; injectable for tests. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Show progress on stderr (the real CLI: only when stderr is a TTY). */
  readonly progress: boolean;
}

class UsageError extends Error {
  override name = 'UsageError';
}

const ADAPT_OPTIONS = {
  x: { type: 'string' },
  y: { type: 'string' },
  out: { type: 'string' },
  report: { type: 'string' },
  regularization: { type: 'string' },
  node: { type: 'string' },
  'input-name': { type: 'string' },
  'batch-size': { type: 'string' },
  'source-stats': { type: 'string' },
  'source-x': { type: 'string' },
  'unlabelled-x': { type: 'string' },
  groups: { type: 'string' },
  'validation-x': { type: 'string' },
  'validation-y': { type: 'string' },
  loss: { type: 'string' },
  'allow-stale-source-stats': { type: 'boolean' },
  'carry-source-stats': { type: 'boolean' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const INSPECT_OPTIONS = {
  node: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const STATS_OPTIONS = {
  x: { type: 'string' },
  out: { type: 'string' },
  embed: { type: 'boolean' },
  precision: { type: 'string' },
  node: { type: 'string' },
  'input-name': { type: 'string' },
  'batch-size': { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const known = Object.keys(options).map((k) => `--${k}`).join(', ');
    throw new UsageError(`lva ${command}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}. Options: ${known}. See \`lva ${command} --help\`.`);
  }
}

function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length === 0) throw new UsageError(`lva ${command}: missing ${what}. See \`lva ${command} --help\`.`);
  if (positionals.length > 1) throw new UsageError(`lva ${command}: expected one ${what}, received ${positionals.length} (${positionals.join(', ')}). See \`lva ${command} --help\`.`);
  return positionals[0]!;
}

function required(command: string, value: string | undefined, flag: string, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`lva ${command}: missing ${flag} ${what}. See \`lva ${command} --help\`.`);
  return value;
}

function parseRegularization(v: string | undefined): 'auto' | 'none' | number | undefined {
  if (v === undefined) return undefined;
  if (v === 'auto' || v === 'none') return v;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`lva adapt: --regularization must be auto, none or a number ≥ 0; received "${v}".`);
  }
  return n;
}

function parseBatchSize(command: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`lva ${command}: --batch-size must be a positive integer; received "${v}".`);
  return n;
}

function readModel(path: string): Uint8Array {
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new DataFileError(`cannot read model ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
}

function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}

/** Checks an output path before any work: not an input, parent directory exists, no clobbering without --force. */
function checkOutput(command: string, out: string, inputs: readonly string[], force: boolean, flag: string): void {
  for (const input of inputs) {
    if (samePath(out, input)) throw new UsageError(`lva ${command}: ${flag} ${out} is the input file ${input}; inputs are never overwritten. Choose another path.`);
  }
  const dir = dirname(resolve(out));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`lva ${command}: the directory of ${flag} ${out} does not exist; create ${dir} first.`);
  if (existsSync(out) && !force) throw new UsageError(`lva ${command}: ${flag} ${out} already exists; pass --force to overwrite it.`);
}

/**
 * Writes via a temporary file in the same directory, fsynced, then moved into place: readers never see a partial file,
 * and a process killed at any point leaves either the old file or the new one, never a mix.
 * Without `force` the final step is a hard link, which fails if the target appeared meanwhile. Temporary files that
 * a killed run left behind (their process is gone) are removed first.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string, force: boolean): void {
  const dir = dirname(resolve(path));
  removeStaleTemporaries(dir, basename(path));
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const fd = openSync(tmp, 'wx');
  try {
    try {
      const half = data.length >> 1;
      let off = 0;
      while (off < half) off += writeSync(fd, data, off, half - off);
      faultPoint('cli:write-temp');
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    faultPoint('cli:rename');
    if (force) renameSync(tmp, path);
    else {
      linkSync(tmp, path);
      unlinkSync(tmp);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${path} appeared while adapting; pass --force to overwrite it.`);
    throw e;
  }
}

/** Deletes `.NAME.PID.*.tmp` files in `dir` whose process no longer runs (left by a run that was killed). */
function removeStaleTemporaries(dir: string, name: string): void {
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const f of entries) {
    if (!f.startsWith(prefix) || !f.endsWith('.tmp')) continue;
    const pid = Number(f.slice(prefix.length).split('.')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, f));
    } catch {
      /* removed by someone else */
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** JSON with typed arrays as arrays and non-finite numbers as strings ("Infinity" means the pretrained head was kept). */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
      return v;
    },
    2,
  );
}

/** The report without the (possibly large) weight arrays: outcome, diagnostics and timings. */
export function reportForJson(report: OnnxAdaptReport, paths: { model: string; out: string | null }): unknown {
  const { result, ...rest } = report;
  const { head: _h, delta: _d, ...resultRest } = result as typeof result & { head?: unknown; delta?: unknown };
  void _h;
  void _d;
  return { tool: 'lva-transfer', model: paths.model, out: paths.out, ...rest, result: resultRest };
}

function progressPrinter(io: CliIo): ((p: OnnxProgress) => void) | undefined {
  if (!io.progress) return undefined;
  const names: Record<OnnxProgress['phase'], string> = { source: 'source features', features: 'features', validation: 'validation', verify: 'verifying' };
  return (p) => io.stderr(`\r\x1b[K${names[p.phase]} ${p.done}/${p.total}${p.done === p.total ? '\n' : ''}`);
}

function table(rows: [string, string][]): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

const fmt = (v: number): string => (v === 0 ? '0' : !Number.isFinite(v) ? String(v) : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2));

/** How λ was chosen, for the summary: ", by leave-one-out" or ", by 4-fold cross-validation over 16 samples". */
function selectionText(sel: OnnxAdaptReport['result']['diagnostics']['regularization']['selection'], grouped: boolean): string {
  if (!sel) return '';
  if (sel.validation) return `, chosen by ${sel.validation.folds}-fold cross-validation over ${sel.validation.groups} ${grouped ? 'groups (--groups)' : 'samples'}`;
  return sel.rule === 'gcv' ? ', chosen by GCV' : `, chosen by leave-one-out (${sel.rule})`;
}

const SOURCE_TEXT: Record<OnnxAdaptReport['sourceStatistics'], string> = {
  explicit: 'given (--source-stats / --source-x)',
  attached: 'embedded in the model (metadata_props)',
  'unlabelled-target': 'from unlabelled target inputs (--unlabelled-x)',
  none: 'none: identity metric (embed them with `lva source-stats --embed`)',
};

function summary(report: OnnxAdaptReport, out: string, grouped = false): string {
  const d = report.result.diagnostics;
  const reg = d.regularization;
  const norm = (xs: readonly number[]) => Math.sqrt(xs.reduce((s, v) => s + v * v, 0));
  const t = report.timings;
  const rows: [string, string][] = [
    ['outcome', report.outcome === 'written' ? `written to ${out}` : `${report.outcome}: not written${report.message ? ` (${report.message})` : ''}`],
    ['result', report.result.kind],
    ['head', `${report.opType} "${report.node}"${report.activation ? ` → ${report.activation} (${report.space === 'classification' ? 'classification' : 'fitted on the pre-activation'})` : ''}`],
    ['weights', `${report.weight.name} [${report.weight.dims.join(', ')}] ${report.weight.dtype}, ${report.weight.storage}${report.bias ? `; bias ${report.bias.name} [${report.bias.dims.join(', ')}]` : ''}`],
    ['samples / rows', `${report.samples} / ${report.rows} (${report.mode === 'rows' ? 'rows in memory' : 'streamed, GCV'})`],
    ['width / outputs', `${d.width} / ${d.outputs}, rank ${d.rank}`],
    ['regularization', `${reg.mode}: λ = ${fmt(reg.lambda)}${Number.isFinite(reg.relativeLambda) ? ` (${fmt(reg.relativeLambda)} × mean eigenvalue)` : ''}, metric ${d.metric}${selectionText(reg.selection, grouped)}`],
    ['source statistics', SOURCE_TEXT[report.sourceStatistics]],
    ['residual ‖Q‖', `${fmt(norm(d.residualBefore))} → ${fmt(norm(d.residualAfter))}`],
  ];
  if (report.validation) rows.push(['validation MSE', `${fmt(report.validation.before)} → ${fmt(report.validation.after)}`]);
  if (report.verification) rows.push(['verification', `${report.verification.passed ? 'passed' : 'FAILED'}: max error ${fmt(report.verification.maxError)} on ${report.verification.samples} samples`]);
  if (d.flags.length) rows.push(['flags', d.flags.join(', ')]);
  rows.push(['time', `features ${t.features.toFixed(2)} s, solve ${t.solve.toFixed(2)} s, verify ${t.verify.toFixed(2)} s, total ${t.total.toFixed(2)} s`]);
  return table(rows);
}

async function adapt(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('adapt', args, ADAPT_OPTIONS);
  if (values.help) {
    io.stdout(ADAPT_HELP);
    return EXIT.ok;
  }
  const model = onePositional('adapt', positionals, 'MODEL.onnx');
  const xPath = required('adapt', values.x, '--x', 'FILE (target inputs)');
  const yPath = required('adapt', values.y, '--y', 'FILE (targets)');
  const out = required('adapt', values.out, '--out', 'FILE (the adapted model)');
  const regularization = parseRegularization(values.regularization);
  const batchSize = parseBatchSize('adapt', values['batch-size']);
  const losses = ['auto', 'mse', 'cross-entropy', 'logit'] as const;
  if (values.loss !== undefined && !(losses as readonly string[]).includes(values.loss)) {
    throw new UsageError(`lva adapt: --loss must be one of ${losses.join(', ')}; received "${values.loss}".`);
  }
  const loss = values.loss as (typeof losses)[number] | undefined;
  const force = values.force === true;
  if ((values['validation-x'] === undefined) !== (values['validation-y'] === undefined)) {
    throw new UsageError(`lva adapt: --validation-x and --validation-y go together; received only ${values['validation-x'] !== undefined ? '--validation-x' : '--validation-y'}.`);
  }
  if (values['source-stats'] !== undefined && values['source-x'] !== undefined) {
    throw new UsageError('lva adapt: pass --source-stats or --source-x, not both.');
  }
  if (values['unlabelled-x'] !== undefined && (values['source-stats'] !== undefined || values['source-x'] !== undefined)) {
    throw new UsageError('lva adapt: --unlabelled-x is for when there is no source information; pass it or --source-stats/--source-x, not both.');
  }
  const inputs = [model, xPath, yPath, ...[values['source-stats'], values['source-x'], values['unlabelled-x'], values.groups, values['validation-x'], values['validation-y']].filter((p): p is string => p !== undefined)];
  checkOutput('adapt', out, inputs, force, '--out');
  if (values.report !== undefined) {
    checkOutput('adapt', values.report, inputs, force, '--report');
    if (samePath(values.report, out)) throw new UsageError('lva adapt: --report and --out name the same file; choose two paths.');
  }

  const bytes = readModel(model);
  const x = readArrayFile(xPath, '--x');
  const y = readArrayFile(yPath, '--y');
  const groups = values.groups !== undefined ? readGroupsFile(values.groups, '--groups', x.shape[0] ?? 0) : undefined;
  let source: SourceStatistics | { x: ReturnType<typeof readArrayFile> } | undefined;
  if (values['source-x'] !== undefined) source = { x: readArrayFile(values['source-x'], '--source-x') };
  if (values['source-stats'] !== undefined) {
    const path = values['source-stats'];
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new DataFileError(`--source-stats ${path}: cannot read it as JSON (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
    }
    try {
      source = sourceStatisticsFromJSON(json);
    } catch (e) {
      throw new DataFileError(`--source-stats ${path}: ${(e as Error).message}`);
    }
  }
  const validation =
    values['validation-x'] !== undefined && values['validation-y'] !== undefined
      ? { x: readArrayFile(values['validation-x'], '--validation-x'), y: readArrayFile(values['validation-y'], '--validation-y') }
      : undefined;
  faultPoint('cli:read');
  const onProgress = progressPrinter(io);
  const { bytes: adapted, report } = await adaptOnnxModel(bytes, { x, y }, {
    ...(validation ? { validation } : {}),
    ...(regularization !== undefined ? { regularization } : {}),
    ...(groups ? { groups } : {}),
    ...(values.node !== undefined ? { node: values.node } : {}),
    ...(values['input-name'] !== undefined ? { inputName: values['input-name'] } : {}),
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(source ? { source } : {}),
    ...(loss !== undefined ? { loss } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(values['unlabelled-x'] !== undefined ? { unlabelled: { x: readArrayFile(values['unlabelled-x'], '--unlabelled-x') } } : {}),
    ...(values['allow-stale-source-stats'] ? { allowStaleSourceStatistics: true } : {}),
    ...(values['carry-source-stats'] ? { carrySourceStatistics: true } : {}),
  });
  if (report.outcome === 'written') writeFileAtomic(out, adapted, force);
  faultPoint('cli:report');
  if (values.report !== undefined) writeFileAtomic(values.report, toJson(reportForJson(report, { model, out: report.outcome === 'written' ? out : null })) + '\n', force);
  io.stdout(`lva adapt ${model}\n${summary(report, out, groups !== undefined)}`);
  return report.outcome === 'written' ? EXIT.ok : EXIT.notWritten;
}

function describeInspection(model: string, r: OnnxInspection): string {
  const shape = (s: readonly (number | string | null)[] | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(unknown)');
  const rows: [string, string][] = [
    ['model', `${model} (IR ${r.irVersion}, ${r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}${r.producer ? `, ${r.producer}` : ''})`],
    ['inputs', r.inputs.map((i) => `${i.name} ${shape(i.shape)} ${i.dtype}`).join('; ')],
    ['outputs', r.outputs.map((o) => `${o.name} ${shape(o.shape)} ${o.dtype}`).join('; ')],
    ['graph', `${r.nodes} nodes, ${r.initializers} initializers, ${r.constantNodes} Constant nodes`],
  ];
  const h = r.head;
  if (h) {
    rows.push(
      ['head', `${h.opType} "${h.node}"${h.gemm ? ` (alpha ${h.gemm.alpha}, beta ${h.gemm.beta}, transB ${h.gemm.transB ? 1 : 0})` : ''}`],
      ['features', `${h.feature} ${shape(h.featureShape)}: width ${h.inputWidth}${h.conv ? ` (C ${h.conv.channels} × k ${h.conv.kernel.join('×')}, strides ${h.conv.strides.join(',')}, pads ${h.conv.pads.join(',')}, auto_pad ${h.conv.autoPad})` : ''}`],
      ['outputs (m)', String(h.outputs)],
      ['weight', `${h.weight.name} [${h.weight.dims.join(', ')}] ${h.weight.dtype}, ${h.weight.storage}`],
      ['bias', h.bias ? `${h.bias.name} [${h.bias.dims.join(', ')}] ${h.bias.dtype}, ${h.bias.storage}${h.biasShared ? ' (one value shared by all outputs: kept fixed)' : ''}` : 'none'],
      ['parameters', `${h.parameters} rewritten by LVA`],
      ['after the head', h.trailing.length ? `${h.trailing.join(' → ')} → ${h.graphOutput}` : `graph output ${h.graphOutput}`],
      ['activation', h.activation ? `${h.activation}: classification head (cross-entropy LVA; --loss mse fits logits)` : 'none (regression head)'],
    );
  } else {
    rows.push(['head', `none: ${r.problem ?? 'unknown'}`]);
  }
  const s = r.sourceStatistics;
  rows.push([
    'source statistics',
    !s
      ? 'none embedded (`lva source-stats MODEL --x XSRC --embed --out …` adds them)'
      : 'problem' in s
        ? `unreadable: ${s.problem}`
        : `embedded for "${s.head}" (width ${s.width}, ${s.count} source rows, ${s.precision})${s.current ? '' : '; STALE: the head changed since (lva adapt refuses them without --allow-stale-source-stats)'}`,
  ]);
  return table(rows);
}

async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('inspect', args, INSPECT_OPTIONS);
  if (values.help) {
    io.stdout(INSPECT_HELP);
    return EXIT.ok;
  }
  const model = onePositional('inspect', positionals, 'MODEL.onnx');
  const r = inspectOnnxModel(readModel(model), values.node !== undefined ? { node: values.node } : {});
  io.stdout(values.json ? toJson(r) + '\n' : describeInspection(model, r));
  return r.head ? EXIT.ok : EXIT.badInput;
}

async function sourceStats(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('source-stats', args, STATS_OPTIONS);
  if (values.help) {
    io.stdout(STATS_HELP);
    return EXIT.ok;
  }
  const model = onePositional('source-stats', positionals, 'MODEL.onnx');
  const xPath = required('source-stats', values.x, '--x', 'FILE (source inputs)');
  const embed = values.embed === true;
  const out = required('source-stats', values.out, '--out', embed ? 'FILE (the model with the statistics embedded)' : 'FILE (statistics JSON)');
  const batchSize = parseBatchSize('source-stats', values['batch-size']);
  const precision = values.precision;
  if (precision !== undefined && (!embed || (precision !== 'float32' && precision !== 'float64'))) {
    throw new UsageError(embed ? `lva source-stats: --precision must be float32 or float64; received "${precision}".` : 'lva source-stats: --precision applies to --embed only (the JSON file is float64).');
  }
  const force = values.force === true;
  checkOutput('source-stats', out, [model, xPath], force, '--out');
  const onProgress = progressPrinter(io);
  const common = {
    ...(values.node !== undefined ? { node: values.node } : {}),
    ...(values['input-name'] !== undefined ? { inputName: values['input-name'] } : {}),
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(onProgress ? { onProgress } : {}),
  };
  if (embed) {
    const { bytes, statistics } = await embedOnnxSourceStatistics(readModel(model), readArrayFile(xPath, '--x'), { ...common, ...(precision ? { precision: precision as 'float32' | 'float64' } : {}) });
    writeFileAtomic(out, bytes, force);
    io.stdout(table([['model', `${out}: ${model} with source statistics embedded (head "${statistics.head.name}", width ${statistics.head.width}, ${statistics.statistics.count} source rows, ${statistics.precision})`]]));
    return EXIT.ok;
  }
  const stats = await computeOnnxSourceStatistics(readModel(model), readArrayFile(xPath, '--x'), common);
  writeFileAtomic(out, JSON.stringify(sourceStatisticsToJSON(stats)) + '\n', force);
  io.stdout(table([['statistics', `${out}: width ${stats.width}, ${stats.count} source rows`]]));
  return EXIT.ok;
}

/** Exit code for an error: usage, bad input, or internal. */
function classify(e: unknown): number {
  if (e instanceof UsageError || e instanceof OptionError) return EXIT.usage;
  if (e instanceof DataFileError || e instanceof InvalidModelError || e instanceof UnsupportedModelError || e instanceof RuntimeUnavailableError) return EXIT.badInput;
  if (isLvaError(e)) return EXIT.badInput;
  return EXIT.internal;
}

/** Runs the CLI on `argv` (without `node` and the script) and returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.stderr(MAIN_HELP);
    return EXIT.usage;
  }
  try {
    return await match(command)
      .with('adapt', () => adapt(rest, io))
      .with('inspect', () => inspect(rest, io))
      .with('source-stats', () => sourceStats(rest, io))
      .with('--help', '-h', 'help', () => {
        io.stdout(MAIN_HELP);
        return EXIT.ok;
      })
      .otherwise((c) => {
        io.stderr(`lva: unknown command "${c}"; expected adapt, inspect or source-stats. See \`lva --help\`.\n`);
        return EXIT.usage;
      });
  } catch (e) {
    const code = classify(e);
    const message = e instanceof Error ? e.message : String(e);
    io.stderr(code === EXIT.internal ? `lva: internal error: ${e instanceof Error ? (e.stack ?? message) : message}\n` : `lva: ${message}\n`);
    return code;
  }
}
