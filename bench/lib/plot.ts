/** SVG figures with vega-lite (compiled) rendered by vega's headless View: no browser, no native dependencies. */
import { writeFileSync } from 'node:fs';
import * as vega from 'vega';
import * as vl from 'vega-lite';

export async function writeSvg(path: string, spec: vl.TopLevelSpec): Promise<void> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  writeFileSync(path, svg);
}
