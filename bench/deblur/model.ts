/**
 * Small SRCNN-style deblurring network (method.md §7.3 analogue), fully convolutional (input [null, null, 1]):
 * conv1 1→16 k5 same ReLU → bn1 → conv2 16→16 k3 same ReLU → bn2 → head 16→1 k5 same, no bias, linear.
 * The head is the layer LVA adapts: width 16·5·5 = 400, one row per output pixel.
 */
import type * as TF from '@tensorflow/tfjs';

export type Tf = typeof TF;

export function buildSrcnn(tf: Tf, seed: number): TF.LayersModel {
  const model = tf.sequential({ name: 'srcnn_small' });
  model.add(tf.layers.conv2d({ name: 'conv1', inputShape: [null, null, 1], filters: 16, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }));
  model.add(tf.layers.batchNormalization({ name: 'bn1' }));
  model.add(tf.layers.conv2d({ name: 'conv2', filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed + 1 }) }));
  model.add(tf.layers.batchNormalization({ name: 'bn2' }));
  model.add(tf.layers.conv2d({ name: 'head', filters: 1, kernelSize: 5, padding: 'same', useBias: false, activation: 'linear', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }));
  return model;
}
