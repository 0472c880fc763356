import { overlayTakesVolatile } from '../../common/overlay';

test('overlayfs is asked for `volatile` on kernels from 5.10 on', () => {
  expect(['4.19.0-26-amd64', '5.4.0', '5.9.16'].map((r) => overlayTakesVolatile(r))).toEqual([false, false, false]);
  expect(['5.10.0-28-amd64', '6.1.0-18-amd64', '6.18.44-fc-v1098'].map((r) => overlayTakesVolatile(r))).toEqual([true, true, true]);
});
