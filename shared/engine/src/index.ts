export * from './driver';
export * from './views';
