export * from './driver';
export * from './views';
export * from './stream-command';
export * from './timeline';
export * from './read-state';
