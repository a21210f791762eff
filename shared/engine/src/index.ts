export * from './driver';
export * from './views';
export * from './stream-command';
export * from './append-decided';
