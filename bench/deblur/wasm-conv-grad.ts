/**
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so conv layers cannot be trained on wasm, and the cpu
 * backend took ≈ 10 s per batch of 32 16×16 images for this network. This registers the kernel for wasm
 * (stride 1, dilation 1, NHWC, padding 'same' or 'valid') as kH·kW matmuls of shifted input slices with dy.
 * The kept intermediate leaks one kH·kW·Cin·Cout buffer per call (a few KB per step); fine for a benchmark.
 */
import * as tf from '@tensorflow/tfjs';

let registered = false;

export function registerWasmConv2DBackpropFilter(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const a = attrs as unknown as { strides: number | [number, number]; pad: string | number; dataFormat: string; filterShape: [number, number, number, number]; dilations?: number | [number, number] };
      const strides = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      if (strides[0] !== 1 || strides[1] !== 1) throw new Error('Conv2DBackpropFilter(wasm shim): stride 1 only');
      if (a.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter(wasm shim): NHWC only');
      if (a.pad !== 'same' && a.pad !== 'valid') throw new Error('Conv2DBackpropFilter(wasm shim): same/valid only');
      const [kh, kw, cin, cout] = a.filterShape;
      const xInfo = inputs['x']!;
      const dyInfo = inputs['dy']!;
      const out = tf.tidy(() => {
        const x = (xInfo instanceof tf.Tensor ? xInfo : tf.engine().makeTensorFromTensorInfo(xInfo)) as tf.Tensor4D;
        const dy = (dyInfo instanceof tf.Tensor ? dyInfo : tf.engine().makeTensorFromTensorInfo(dyInfo)) as tf.Tensor4D;
        const [b, ho, wo] = dy.shape;
        const pt = a.pad === 'same' ? Math.floor((kh - 1) / 2) : 0;
        const pl = a.pad === 'same' ? Math.floor((kw - 1) / 2) : 0;
        const xp = a.pad === 'same' ? tf.pad(x, [[0, 0], [pt, kh - 1 - pt], [pl, kw - 1 - pl], [0, 0]]) : x;
        const dy2 = dy.reshape([b * ho * wo, cout]);
        const parts: tf.Tensor[] = [];
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const s = tf.slice(xp, [0, i, j, 0], [b, ho, wo, cin]).reshape([b * ho * wo, cin]);
            parts.push(tf.matMul(s, dy2, true, false));
          }
        }
        return tf.keep(tf.stack(parts).reshape([kh, kw, cin, cout]));
      });
      return { dataId: out.dataId, shape: out.shape, dtype: out.dtype };
    },
  });
}
