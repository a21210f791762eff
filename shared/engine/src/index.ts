export * from './driver';
export * from './views';
export * from './stream-command';
export * from './append-decided';
export * from './timeline';
export * from './read-state';
