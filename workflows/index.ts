// The workflow bundle's entry point: every workflow type the worker registers.
export { build } from './build';
export { buildPart } from './part';
export { pipeline } from './pipeline';
