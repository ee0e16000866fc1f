/**
 * A reader for NumPy `.npy` files (format versions 1–3): little- or big-endian float32/float64/int32/int64/
 * uint8/bool, C order. What PyTorch users have on disk; the CLI reads X and Y with it.
 */
export interface NpyArray {
  readonly shape: readonly number[];
  readonly dtype: string;
  /** Values widened to float64, in C (row-major) order. */
  readonly data: Float64Array;
}

export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function parseNpy(bytes: Uint8Array, what = 'the .npy file'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new NpyError(`parseNpy: ${what} does not start with the .npy magic bytes; save it with numpy.save().`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number, offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new NpyError(`parseNpy: ${what} has .npy format version ${major}; versions 1–3 are supported.`);
  }
  if (offset + headerLen > bytes.length) throw new NpyError(`parseNpy: ${what} is truncated inside its header.`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyError(`parseNpy: ${what} has an unreadable header (${header.trim().slice(0, 80)}).`);
  }
  if (fortran === 'True') throw new NpyError(`parseNpy: ${what} is in Fortran order; save it with numpy.save(path, numpy.ascontiguousarray(a)).`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((s) => !Number.isInteger(s) || s < 0)) throw new NpyError(`parseNpy: ${what} has an invalid shape (${shapeText}).`);
  const count = shape.reduce((a, b) => a * b, 1);
  const order = descr[0];
  const kind = descr.slice(1);
  const little = order === '<' || order === '|' || order === '=';
  if (order !== '<' && order !== '>' && order !== '|' && order !== '=') {
    throw new NpyError(`parseNpy: ${what} has dtype '${descr}', which this reader does not understand.`);
  }
  const readers: Record<string, [number, (o: number) => number]> = {
    f4: [4, (o) => view.getFloat32(o, little)],
    f8: [8, (o) => view.getFloat64(o, little)],
    i4: [4, (o) => view.getInt32(o, little)],
    i8: [8, (o) => Number(view.getBigInt64(o, little))],
    i2: [2, (o) => view.getInt16(o, little)],
    u1: [1, (o) => view.getUint8(o)],
    i1: [1, (o) => view.getInt8(o)],
    b1: [1, (o) => view.getUint8(o)],
  };
  const reader = readers[kind];
  if (!reader) {
    throw new NpyError(
      `parseNpy: ${what} has dtype '${descr}'; supported: float32, float64, int8/16/32/64, uint8, bool. Convert with a.astype(numpy.float32).`,
    );
  }
  const [size, read] = reader;
  const start = offset + headerLen;
  if (start + count * size > bytes.length) {
    throw new NpyError(`parseNpy: ${what} is truncated: shape (${shape.join(', ')}) needs ${count * size} data bytes but ${bytes.length - start} are present.`);
  }
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = read(start + i * size);
  return { shape, dtype: descr, data };
}
